"""`make bench` keeps running: its quick mode (`scripts/bench.py --quick`: every stage of splade-tiny once, tiny
rounds and sizes, no base-size models) runs to the end in `make test` and prints every table. The figures of a quick
run are not measurements; a stage that crashes or a table that goes missing fails here."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from devkit import ROOT

pytestmark = pytest.mark.integration

TABLES = [
    "## Throughput (docs/s, higher is better)",
    "## Latency at 1 thread, one text per call (ms)",
    "## Cold start (fresh processes, 1 thread, median of 1, alternated)",
    "## One text per call vs the floor graph (1 thread, medians of 3, alternated)",
    "## Memory, size, overhead",
    "## What it costs on Lambda (scripts/bench_cost.py)",
]
ROWS = [  # one row of each stage that prints into the shared table
    "| peak RSS, one request of 64 x 512 tokens",
    "| ingest: 200-line JSONL via SQS event",
    "| ingest throughput vs HEAD (same run, alternated)",
    "| `splade-expand`, 200-document JSONL, 1 process x 1 thread",
    "| prune of a ~100-token text",
    "| docs/s at 1 thread, batch 1, vs HEAD",
    "| worst accepted request (64 texts, 256 windows, format both)",
    "| splade-tiny (shipped) | HTTP query, model",
]


def test_the_quick_bench_runs_every_stage_and_prints_every_table() -> None:
    """`scripts/bench.py --quick --baseline HEAD` exits 0 and prints each table, the per-text ratios against the
    floor graph built from the model's stored vocabulary chunks, and a row of every stage (ingest and the A/B
    against a baseline checkout included)."""
    reference = ROOT / "build" / "venv-reference" / "bin" / "python"  # used when make bench-reference ran
    cmd = [sys.executable, "scripts/bench.py", "--quick", "--baseline", "HEAD", "--reference-python", str(reference)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    missing = [line for line in TABLES + ROWS if line not in out]
    assert not missing, (missing, out[-3000:])
    per_text = re.findall(r"^\| (16|64|128|256) \| \*\*([0-9.]+)x\*\* \|", out, re.M)
    assert [n for n, _ in per_text] == ["16", "64", "128", "256"] and all(float(r) > 0 for _, r in per_text)
    assert "Bring your own model: base size" not in out  # quick mode leaves the base-size models to make bench
    assert (ROOT / "build" / "bench-quick.png").is_file()
