"""Benchmark: the fused int8 Expander vs a fastembed-style ONNX baseline vs transformers + torch, one run.

    make bench            (make bench-reference first installs the torch reference in its own venv)

Every system gets the same texts (English prose from Python's own docs, offline). Systems are interleaved
per configuration so the ratios compare like with like on a shared, noisy machine. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from devkit import FP32_DIR, MODEL_DIR, ROOT, SOURCE_DIR
from devkit.corpus import HAND_WRITTEN, prose_paragraphs, texts_with_tokens
from devkit.servers import MotoServer
from scripts import bench_base, bench_cost, bench_gte, perf
from scripts.reference_client import Reference
from splade_expander.expander import Expander

BASE_ENV = dict(os.environ)
LOGITS_DIR = ROOT / "build" / "model_logits"
CHART_LENGTHS = [16, 64, 128, 256, 512, 2048]
PER_TEXT_LENGTHS = [16, 64, 128, 256]


@dataclass(frozen=True)
class Scale:
    """How much each stage measures. ``FULL`` is ``make bench``; ``QUICK`` (``--quick``, run by ``make test``) runs
    every stage of splade-tiny once with tiny rounds and sizes, so a stage that crashes fails CI; its figures are
    not measurements."""

    texts: int = 128  # texts per throughput measurement
    reps: int = 60  # calls per latency measurement
    ingest_lines: int = 10_000
    cli_lines: int = 10_000
    per_text: int = 80  # medians of this many calls per length (vs the floor graph)
    batch_rounds: int = 8
    cold_rounds: int = 7
    init_rounds: int = 3
    overhead_reps: int = 300
    prune_rounds: int = 200
    worst_reps: int = 3
    baseline_rounds: int = 6
    cli_rounds: int = 2
    by_length_tokens: int = 64 * 64  # tokens per length of the chart (at least 4 texts)
    base_models: bool = True  # bench_base and the base-size rows of the cost table


FULL = Scale()
QUICK = Scale(
    texts=8, reps=3, ingest_lines=200, cli_lines=200, per_text=3, batch_rounds=1, cold_rounds=1, init_rounds=1,
    overhead_reps=3, prune_rounds=3, worst_reps=1, baseline_rounds=1, cli_rounds=1, by_length_tokens=0,
    base_models=False,
)  # fmt: skip


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {elapsed:5.0f}s {label:<44}"
        )
        sys.stderr.flush()
        if self.done == self.total:
            sys.stderr.write("\n")


class Baseline:
    """fastembed-style: the same weights as ONNX with [batch, seq, vocab] logits out, pooling in numpy."""

    def __init__(self, threads: int) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(LOGITS_DIR / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(LOGITS_DIR / "tokenizer.json"))
        self.tokenizer.enable_truncation(512)
        self.tokenizer.enable_padding()

    def expand(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        logits = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        pooled: np.ndarray = np.max(np.log1p(np.maximum(logits, 0)) * mask[:, :, None], axis=1)
        return pooled


def throughput(fn: Callable[[list[str]], object], texts: list[str], batch: int) -> float:
    fn(texts[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - start)


def batch_gain(fn: Callable[[list[str]], object], texts: list[str], rounds: int = 8) -> tuple[float, float, float]:
    """(docs/s at batch 1, at batch 16, median of the per-round ratios): the two alternated round by round, so
    each pair sees the same machine load."""
    pairs = [(throughput(fn, texts, 1), throughput(fn, texts, 16)) for _ in range(rounds)]
    return (
        statistics.median(p[0] for p in pairs),
        statistics.median(p[1] for p in pairs),
        statistics.median(p[1] / p[0] for p in pairs),
    )


def latency(fn: Callable[[list[str]], object], texts: list[str], reps: int) -> tuple[float, float]:
    fn(texts[:1])
    times = []
    for r in range(reps):
        start = time.perf_counter()
        fn([texts[r % len(texts)]])
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 95) * 1e3)


PEAK_RSS = """
import json

def hwm_mb():  # this process's own high-water mark (ru_maxrss would include the parent's before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

from splade_expander.expander import Expander
from scripts import bench_base
from devkit.corpus import texts_with_tokens
e = Expander()
texts = texts_with_tokens(e.tokenizer, 510, 64)
e.expand(texts[:1])
base = hwm_mb()
vecs = e.expand(texts)
print(json.dumps({"loaded_mb": base, "peak_mb": hwm_mb(), "tokens": sum(v.tokens for v in vecs),
                  "windows": sum(v.windows for v in vecs)}))
"""


INGEST = """
import json, time
import boto3
from handler import app  # from PYTHONPATH: this checkout's, or the baseline worktree's
from devkit.aws import create_buckets
from devkit.corpus import prose_paragraphs
from devkit.events import LambdaContext, put_object, sqs_event

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

s3 = boto3.client("s3")
create_buckets(s3, "bench-in", "bench-out")
prose = prose_paragraphs()
lines = [json.dumps({{"id": i, "text": prose[i % len(prose)]}}) for i in range({lines})]
body = "\\n".join(lines).encode()
event, _ = sqs_event(put_object(s3, "bench/corpus.jsonl", body, bucket="bench-in"))
base = hwm_mb()
start = time.perf_counter()
result = app.lambda_handler(event, LambdaContext(remaining_ms=900_000))
elapsed = time.perf_counter() - start
out = s3.get_object(Bucket="bench-out", Key="vectors/bench/corpus.jsonl.jsonl")["Body"].read()
assert result == {{"batchItemFailures": []}} and out.count(b"\\n") == {lines}, result
print(json.dumps({{"docs_per_s": {lines} / elapsed, "seconds": elapsed, "peak_mb": hwm_mb(), "loaded_mb": base,
                  "output_mb": len(out) / 1e6}}))
"""


def ingest_bench(lines: int, root: Path = ROOT) -> dict[str, Any]:
    """10,000-line JSONL through the ingest path (SQS event -> S3 read -> expand -> S3 multipart write)
    against a moto_server on loopback, in a fresh process so its peak RSS is its own. ``root``: the checkout
    whose handler runs (a baseline worktree, with this checkout's model)."""
    with MotoServer() as server:
        env = {
            **BASE_ENV, "PYTHONPATH": str(root), "AWS_ENDPOINT_URL_S3": server.url, "MODEL_DIR": str(MODEL_DIR),
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
            "OUTPUT_BUCKET": "bench-out", "OUTPUT_PREFIX": "vectors/", "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", INGEST.format(lines=lines)],
            capture_output=True, text=True, env=env, check=False, cwd=root,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"ingest benchmark failed:\n{out.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def baseline_checkout(ref: str) -> Path:
    """A detached worktree of ``ref`` under build/ (re-used when it is already at that commit)."""
    path = ROOT / "build" / "bench-baseline"
    commit = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    if path.exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=False)
        if head.stdout == commit:
            return path
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=True)
    subprocess.run(["git", "worktree", "add", "--detach", str(path), commit.strip()], cwd=ROOT, check=True)
    return path


EXPANDER_TPUT = """
import json, os, time
from tokenizers import Tokenizer
from devkit.corpus import prose_paragraphs
if os.path.isdir("splade_expander"):  # the cwd: this checkout, or the baseline worktree
    from splade_expander import Expander
else:  # a baseline from before the library had a package of its own
    from handler.expander import Expander
e = Expander(os.environ["MODEL_DIR"], threads=1)
prose = [p for p in prose_paragraphs() if 24 <= len(e.tokenizer.encode(p, add_special_tokens=False)) <= 254][:128]
out = {{}}
for batch in (1, 16):
    e.expand(prose[:batch])
    start = time.perf_counter()
    for i in range(0, len(prose), batch):
        e.expand(prose[i : i + batch])
    out[batch] = len(prose) / (time.perf_counter() - start)
print(json.dumps(out))
"""


def baseline_model(root: Path) -> Path:
    """The baseline's own model, built by its own build_model.py from the same weights (once per worktree), with
    its own packages first on the path (the dev venv's path names this checkout's)."""
    out = root / "model_assets"
    if not (out / "model.onnx").is_file():
        env = {**os.environ, "PYTHONPATH": str(root)}
        subprocess.run(
            [sys.executable, str(root / "scripts" / "build_model.py"), "--source", str(SOURCE_DIR), "--out", str(out),
             "--precision", "int8", "--manifest"],
            check=True, capture_output=True, env=env, cwd=root,
        )  # fmt: skip
    return out


INIT_TIME = """
import json, time
t0 = time.perf_counter()
import handler.app  # from the cwd: this checkout, or the baseline worktree
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def init_seconds(root: Path, model_dir: Path) -> float:
    """``import handler.app`` (the Lambda init phase: imports, model load, warm-up) in a fresh process of ``root``."""
    env = {**BASE_ENV, "PYTHONPATH": str(root), "MODEL_DIR": str(model_dir), "ORT_THREADS": "1"}
    env |= {"POWERTOOLS_LOG_LEVEL": "WARNING", "OUTPUT_BUCKET": "bench-out"}
    out = subprocess.run(
        [sys.executable, "-c", INIT_TIME], capture_output=True, text=True, env=env, check=True, cwd=root
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def expander_throughput(root: Path, model_dir: Path) -> dict[str, float]:
    env = {**BASE_ENV, "PYTHONPATH": str(root), "MODEL_DIR": str(model_dir), "ORT_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", EXPANDER_TPUT.format()], capture_output=True, text=True, env=env, check=True, cwd=root
    )
    data: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def print_vs_baseline(baseline: str, rounds: int = FULL.baseline_rounds) -> None:
    """docs/s at 1 thread, batch 1 and 16: this checkout vs the baseline (its code and its model), in fresh
    processes alternated round by round; the median of the per-round ratios (each pair saw the same load)."""
    root = baseline_checkout(baseline)
    old_model = baseline_model(root)
    pairs = [(expander_throughput(ROOT, MODEL_DIR), expander_throughput(root, old_model)) for _ in range(rounds)]
    for batch in ("1", "16"):
        this = statistics.median(p[0][batch] for p in pairs)
        base = statistics.median(p[1][batch] for p in pairs)
        ratio = statistics.median(p[0][batch] / p[1][batch] for p in pairs)
        print(
            f"| docs/s at 1 thread, batch {batch}, vs {baseline} (its code and model; fresh processes alternated over "
            f"{rounds} rounds, medians) | {this:,.0f} vs {base:,.0f}: **{ratio:.2f}x** | >= 0.95x |"
        )
    inits = [(init_seconds(ROOT, MODEL_DIR), init_seconds(root, old_model)) for _ in range(max(rounds, 5))]
    ratio = statistics.median(a / b for a, b in inits)
    this, base = statistics.median(a for a, _ in inits), statistics.median(b for _, b in inits)
    print(
        f"| `import handler.app` (init: imports, model load, warm-up) vs {baseline}, fresh processes alternated over "
        f"{len(inits)} rounds, medians | {this * 1e3:.0f} ms vs {base * 1e3:.0f} ms: **{ratio:.2f}x** | <= 1.05x |"
    )


def print_ingest(lines: int, baseline: str) -> None:
    """Ingest docs/s and peak RSS; with a baseline, both checkouts alternate (2 rounds, best of each) so the
    ratio is measured under the same machine load."""
    rounds: dict[str, list[dict[str, Any]]] = {"this": [], "baseline": []}
    base_root = baseline_checkout(baseline) if baseline else None
    for _ in range(2 if base_root else 1):
        if base_root is not None:
            rounds["baseline"].append(ingest_bench(lines, base_root))
        rounds["this"].append(ingest_bench(lines))
    best = max(rounds["this"], key=lambda r: r["docs_per_s"])
    print(
        f"| ingest: {lines:,}-line JSONL via SQS event, moto_server S3 (fresh process, best of "
        f"{len(rounds['this'])}) | {best['docs_per_s']:,.0f} docs/s ({best['seconds']:.1f} s, "
        f"{best['output_mb']:.1f} MB out), peak RSS {best['peak_mb']:.0f} MB | <= 300 MB |"
    )
    if rounds["baseline"]:
        old = max(rounds["baseline"], key=lambda r: r["docs_per_s"])
        print(
            f"| ingest throughput vs {baseline} (same run, alternated) | {old['docs_per_s']:,.0f} docs/s there: "
            f"**{best['docs_per_s'] / old['docs_per_s']:.2f}x** | >= 0.90x |"
        )


def cli_run(corpus: Path, out: Path, workers: int, threads: int) -> float:
    """docs/s of one ``splade-expand`` run over ``corpus`` (a fresh process tree, model load included)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(Path(sys.executable).parent / "splade-expand"), str(corpus), "-o", str(out)]
    start = time.perf_counter()
    subprocess.run([*cmd, "--workers", str(workers), "--threads", str(threads)], check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    return sum(1 for _ in (out / f"{corpus.name}.jsonl").open()) / elapsed


def print_cli(lines: int, rounds: int = FULL.cli_rounds) -> None:
    """splade-expand on a ``lines``-document JSONL: one process at 1 thread, one process at 2 threads, and one
    process per CPU at 1 thread each; alternated, best of ``rounds`` each."""
    work = ROOT / "build" / "bench-cli"
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.jsonl"
    prose = prose_paragraphs()
    corpus.write_text("".join(json.dumps({"id": i, "text": prose[i % len(prose)]}) + "\n" for i in range(lines)))
    cpus = os.cpu_count() or 1
    setups = {"1 process x 1 thread": (1, 1), f"1 process x {cpus} threads": (1, cpus)}
    setups[f"{cpus} processes x 1 thread"] = (cpus, 1)
    best = dict.fromkeys(setups, 0.0)
    for _ in range(rounds):
        for name, (workers, threads) in setups.items():
            best[name] = max(best[name], cli_run(corpus, work / "out", workers, threads))
    base = best["1 process x 1 thread"]
    for name, rate in best.items():
        target = " >= 1.7x" if name.startswith(f"{cpus} processes") else ""
        print(
            f"| `splade-expand`, {lines:,}-document JSONL, {name} (best of {rounds}, alternated) | "
            f"{rate:,.0f} docs/s: **{rate / base:.2f}x** one process at 1 thread |{target} |"
        )
    shutil.rmtree(work / "out", ignore_errors=True)


def prune_overhead(expander: Expander, rounds: int = FULL.prune_rounds) -> dict[str, float]:
    """Median expand time of one ~100-token text with each prune kind / without, alternated."""
    (text,) = texts_with_tokens(expander.tokenizer, 100, 1)
    kinds: dict[str, Any] = {
        "none": None,
        "max_ratio 0.4": {"type": "max_ratio", "value": 0.4},
        "alpha_mass 0.6": {"type": "alpha_mass", "value": 0.6},
        "top_k 64": {"type": "top_k", "value": 64},
    }
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for name, rule in kinds.items():
            start = time.perf_counter()
            expander.expand([text], prune=rule)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["none"])
    return {k: statistics.median(v) / base for k, v in times.items() if k != "none"}


def handler_overhead(reps: int, texts: list[str]) -> list[tuple[int, float, float]]:
    """(tokens, median ms through lambda_handler, median ms of Expander.expand alone) for one-text HTTP API v2
    requests, 1 thread, interleaved so both see the same machine load."""
    os.environ["ORT_THREADS"] = "1"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    from devkit.events import LambdaContext, http_event
    from handler import app, runtime

    context = LambdaContext()
    results = []
    for text in texts:
        event = http_event({"texts": [text]})
        expand_times, handler_times = [], []
        with contextlib.redirect_stdout(io.StringIO()):  # the EMF metrics line printed per invocation
            for _ in range(5):
                app.lambda_handler(event, context)
            for _ in range(reps):
                start = time.perf_counter()
                runtime.expander.expand([text])
                expand_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                app.lambda_handler(event, context)
                handler_times.append(time.perf_counter() - start)
        tokens = runtime.expander.expand([text])[0].tokens
        results.append((tokens, statistics.median(handler_times) * 1e3, statistics.median(expand_times) * 1e3))
    return results


def worst_requests(reps: int = FULL.worst_reps) -> dict[str, Any]:
    """The costliest requests the default limits accept and refuse, through lambda_handler at 1 thread.

    Accepted: 64 texts of <= 20,000 characters using all 256 windows of the work budget (4 texts of 'a. ' x 6,600
    = 240 windows, 16 texts of 254 tokens spread over 19,558 characters, 44 of 20,000 spaces), format both, no
    top_k: the most tokenizing and the most inference one request can buy. Refused: one more dense text."""
    os.environ["ORT_THREADS"] = "1"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    from devkit.events import LambdaContext, http_event
    from handler import app
    from handler.http import service

    spread = ("a." + " " * 152) * 127  # 254 tokens (one window) over 19,558 characters
    dense = "a. " * 6600
    texts = [dense] * 4 + [spread] * 16 + [" " * 20_000] * 44

    def run(request: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        event = http_event(request)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            response: dict[str, Any] = app.lambda_handler(event, LambdaContext())
        return time.perf_counter() - start, response

    accepted = [run({"texts": texts, "format": "both"}) for _ in range(reps)]
    status = accepted[0][1]["statusCode"]
    body = json.loads(accepted[0][1]["body"])
    refused = [run({"texts": [dense] * 5, "format": "both"}) for _ in range(reps)]
    return {
        "status": status,
        "windows": sum(d["windows"] for d in body["data"]) if status == 200 else None,
        "seconds": statistics.median(t for t, _ in accepted),
        "response_bytes": service.serialized_bytes(accepted[0][1]),
        "refused_status": refused[0][1]["statusCode"],
        "refused_code": json.loads(refused[0][1]["body"])["error"]["code"],
        "refused_seconds": statistics.median(t for t, _ in refused),
    }


def print_worst(worst: dict[str, Any]) -> None:
    print(
        f"| worst accepted request (64 texts, {worst['windows']} windows, format both), 1 thread | "
        f"{worst['seconds']:.2f} s, status {worst['status']}, response {worst['response_bytes'] / 1e6:.2f} MB | "
        "<= 5 s, < 6 MB |"
    )
    print(
        f"| one window over the budget (5 x 'a. ' x 6,600), 1 thread | {worst['refused_seconds'] * 1e3:.0f} ms to "
        f"{worst['refused_status']} {worst['refused_code']} | before inference |"
    )


def fresh_process(code: str) -> dict[str, Any]:
    env = {**BASE_ENV, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


@dataclass
class Run:
    """One full bench run: the systems it measures, and what each stage measured (``results``, filled in order)."""

    args: argparse.Namespace
    scale: Scale
    tok: Tokenizer
    texts: list[str]
    short: list[str]
    long: list[str]
    reference: Reference | None
    ref_python: str
    ours: dict[int, Expander]
    ours32: dict[int, Expander]
    base: dict[int, Baseline]
    configs: list[tuple[int, int]]
    bar: Progress
    results: dict[str, Any] = field(default_factory=dict)


def fmt(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _start(args: argparse.Namespace, scale: Scale) -> Run:
    """The texts, the reference process (when installed) and the systems, loaded once."""
    tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    prose = [p for p in prose_paragraphs() if 24 <= len(tok.encode(p, add_special_tokens=False)) <= 254]
    texts = prose[: scale.texts]
    mean_tokens = statistics.mean(len(tok.encode(t, add_special_tokens=False)) for t in texts)
    short = texts_with_tokens(tok, 100, 20)
    long = texts_with_tokens(tok, 400, 20)

    reference: Reference | None = None
    ref_note = ""
    ref_python = args.reference_python
    if ref_python and Path(ref_python).is_file():
        try:
            reference = Reference(ref_python)
            ref_note = f"transformers + torch {reference.info.get('torch')} CPU"
        except (OSError, RuntimeError) as exc:
            ref_note = f"reference unavailable ({exc})"
    else:
        ref_note = "reference not installed: run `make bench-reference` (torch==2.13.0 CPU) and re-run"
    print(f"texts: {len(texts)} prose paragraphs, mean {mean_tokens:.0f} tokens; reference: {ref_note}", flush=True)

    ours = {t: Expander(MODEL_DIR, threads=t) for t in (1, 2)}
    ours32 = {t: Expander(FP32_DIR, threads=t) for t in (1, 2)}
    base = {t: Baseline(t) for t in (1, 2)}
    configs = [(t, b) for t in (1, 2) for b in (1, 16)]
    steps = len(configs) * 4 + 2 * 3 + 5 + len(CHART_LENGTHS) + 3
    bar = Progress(steps)
    return Run(args, scale, tok, texts, short, long, reference, ref_python, ours, ours32, base, configs, bar)


def _measure_fidelity(r: Run) -> None:
    """Sanity: the reference and our fp32 graph agree on the same weights."""
    texts, ours32, reference = r.texts, r.ours32, r.reference
    fidelity = None
    if reference is not None:  # sanity: the reference and our fp32 graph agree on the same weights
        ref_vecs = np.array(reference.ask(op="vectors", texts=texts[:16], threads=2)["vectors"], dtype=np.float32)
        ours_vecs = np.array([v.dense(30522) for v in ours32[2].expand(texts[:16])])
        ref_vecs[:, ours32[2].special_ids] = 0
        fidelity = float(np.abs(ref_vecs - ours_vecs).max())
    r.results["fidelity"] = fidelity


def _measure_throughput(r: Run) -> None:
    """docs/s of every system at 1 and 2 threads, batch 1 and 16, interleaved per configuration."""
    texts, ours, ours32, base, reference, bar = r.texts, r.ours, r.ours32, r.base, r.reference, r.bar
    configs = r.configs
    tput: dict[str, dict[tuple[int, int], float | None]] = {"int8": {}, "fp32": {}, "baseline": {}, "torch": {}}
    for t, b in configs:
        tput["int8"][(t, b)] = throughput(ours[t].expand, texts, b)
        bar.step(f"int8 fused  threads={t} batch={b}")
        tput["fp32"][(t, b)] = throughput(ours32[t].expand, texts, b)
        bar.step(f"fp32 fused  threads={t} batch={b}")
        tput["baseline"][(t, b)] = throughput(base[t].expand, texts, b)
        bar.step(f"baseline    threads={t} batch={b}")
        tput["torch"][(t, b)] = (
            reference.ask(op="throughput", texts=texts, threads=t, batch=b)["docs_per_s"] if reference else None
        )
        bar.step(f"torch       threads={t} batch={b}")
    r.results["tput"] = tput


def _measure_latency(r: Run) -> None:
    """p50 / p95 of one ~100- and one ~400-token text per call at 1 thread."""
    ours, base, reference, bar = r.ours, r.base, r.reference, r.bar
    reps, short, long = r.scale.reps, r.short, r.long
    lat: dict[str, dict[str, tuple[float, float] | None]] = {"int8": {}, "baseline": {}, "torch": {}}
    for name, sample in (("~100", short), ("~400", long)):
        lat["int8"][name] = latency(ours[1].expand, sample, reps)
        bar.step(f"latency int8 {name} tokens")
        lat["baseline"][name] = latency(base[1].expand, sample, reps)
        bar.step(f"latency baseline {name} tokens")
        if reference is not None:
            answer = reference.ask(op="latency", texts=sample, threads=1, reps=reps)
            lat["torch"][name] = (answer["p50_ms"], answer["p95_ms"])
        else:
            lat["torch"][name] = None
        bar.step(f"latency torch {name} tokens")
    r.results["lat"] = lat


def _measure_by_length(r: Run) -> None:
    """docs/s at 1 thread, batch 1, by text length (the chart); closes the reference."""
    tok, ours, base, reference, bar = r.tok, r.ours, r.base, r.reference, r.bar
    by_length: dict[str, list[float | None]] = {"fused int8 (ours)": [], "fastembed-style ONNX": [], "torch": []}
    for tokens in CHART_LENGTHS:
        sample = texts_with_tokens(tok, tokens, max(4, r.scale.by_length_tokens // tokens))
        by_length["fused int8 (ours)"].append(throughput(ours[1].expand, sample, 1))
        by_length["fastembed-style ONNX"].append(throughput(base[1].expand, sample, 1))
        by_length["torch"].append(
            reference.ask(op="throughput", texts=sample, threads=1, batch=1)["docs_per_s"] if reference else None
        )
        bar.step(f"by length: {tokens} tokens")
    if reference is not None:
        reference.close()
    r.results["by_length"] = by_length


def _measure_process(r: Run) -> None:
    """Per-text overhead, batching, cold starts, peak RSS, the emulator's init, the handler's overhead."""
    tok, texts, ours, reference, bar = r.tok, r.texts, r.ours, r.reference, r.bar
    ref_python = r.ref_python
    scale = r.scale
    lengths = {n: texts_with_tokens(tok, n, 1)[0] for n in PER_TEXT_LENGTHS}
    per_text = perf.per_text(ours[1].expand, lengths, reps=scale.per_text)
    bar.step("per-text overhead vs the floor graph")
    batching = batch_gain(ours[1].expand, texts, rounds=scale.batch_rounds)
    bar.step("batch 16 vs batch 1, alternated")

    cold_ref = ref_python if reference is not None else None
    colds = perf.cold_starts(scale.cold_rounds, cold_ref)
    bar.step(f"cold starts x{scale.cold_rounds}, alternated")
    rss = fresh_process(PEAK_RSS)
    bar.step("peak RSS 64 x 512 tokens")
    init_ms, init_bare_ms = perf.emulator_init_with_and_without_pyc(scale.init_rounds)
    bar.step("Init Duration under the emulator")
    overheads = handler_overhead(scale.overhead_reps, [HAND_WRITTEN[0], texts[0]])
    bar.step("handler overhead")
    bar.step("done")
    r.results.update(per_text=per_text, batching=batching, colds=colds, rss=rss, init_ms=init_ms)
    r.results.update(init_bare_ms=init_bare_ms, overheads=overheads)


def _print_throughput(r: Run) -> None:
    configs, tput = r.configs, r.results["tput"]
    print("\n## Throughput (docs/s, higher is better)\n")
    print(
        "| threads | batch | fused int8 (ours) | fused fp32 | fastembed-style ONNX | transformers+torch | int8/torch |"
    )
    print("|---|---|---|---|---|---|---|")
    for t, b in configs:
        ref = tput["torch"][(t, b)]
        ratio = f"**{tput['int8'][(t, b)] / ref:.1f}x**" if ref else "n/a"
        print(
            f"| {t} | {b} | {fmt(tput['int8'][(t, b)])} | {fmt(tput['fp32'][(t, b)])} | "
            f"{fmt(tput['baseline'][(t, b)])} | {fmt(ref)} | {ratio} |"
        )


def _print_latency(r: Run) -> None:
    lat = r.results["lat"]
    print("\n## Latency at 1 thread, one text per call (ms)\n")
    print("| text | fused int8 p50 | p95 | fastembed-style p50 | transformers+torch p50 |")
    print("|---|---|---|---|---|")
    for name in ("~100", "~400"):
        i8, bl, tr = lat["int8"][name], lat["baseline"][name], lat["torch"][name]
        assert i8 is not None and bl is not None
        print(f"| {name} tokens | {i8[0]:.1f} | {i8[1]:.1f} | {bl[0]:.1f} | {fmt(tr[0] if tr else None, 1)} |")


def _print_cold_start(r: Run) -> None:
    colds, init_ms, init_bare_ms = r.results["colds"], r.results["init_ms"], r.results["init_bare_ms"]
    floor = colds["floor"]
    print(f"\n## Cold start (fresh processes, 1 thread, median of {r.scale.cold_rounds}, alternated)\n")
    print("| what | time | vs the floor | target |")
    print("|---|---|---|---|")
    print(f"| floor: `import numpy, onnxruntime, tokenizers` | {floor:.3f} s | 1x | |")
    print(
        f"| `Expander()` + first vector (import, load, first vector) | {colds['expander']:.3f} s | "
        f"**{colds['expander'] / floor:.2f}x** | <= 1.35x |"
    )
    print(
        f"| `import handler.app` (the Lambda init phase: imports, model load, warm-up run) | {colds['app']:.3f} s | "
        f"**{colds['app'] / floor:.2f}x** | <= 2.0x |"
    )
    print(
        f"| the same, our modules compiled at start (the zip ships no .pyc) | {colds['app_compiling']:.3f} s | "
        f"{colds['app_compiling'] / floor:.2f}x | |"
    )
    print(
        f"| first request after init minus a warm one (HTTP API v2, 1 text) | "
        f"{colds['first_request_penalty'] * 1e3:+.2f} ms (warm: {colds['warm_request'] * 1e3:.2f} ms) | | <= 5 ms |"
    )
    print(
        f"| Init Duration under the Lambda runtime emulator (what Lambda bills; median of 3) | {init_ms:.0f} ms; "
        f"without the shipped .pyc {init_bare_ms:.0f} ms (alternated) | | |"
    )
    tokenizer_s, smallest_s, model_s = colds["tokenizer"], colds["smallest_session"], colds["model_session"]
    print(
        f"| the libraries' own loads after the floor, fresh process: `Tokenizer.from_file` {tokenizer_s * 1e3:.1f} ms, "
        f"the smallest ORT session (the floor graph) {smallest_s * 1e3:.1f} ms, this model's session "
        f"{model_s * 1e3:.1f} ms | floor + tokenizer + smallest session: "
        f"**{(floor + tokenizer_s + smallest_s) / floor:.2f}x**; + this model's session instead: "
        f"**{(floor + tokenizer_s + model_s) / floor:.2f}x** | the least any Expander costs |"
    )
    others = {k: colds[k] for k in ("fastembed_style", "torch") if k in colds}
    for name, seconds in others.items():
        print(
            f"| {name.replace('_', '-')}: import + load + first vector | {seconds:.3f} s | {seconds / floor:.2f}x | |"
        )


def _print_per_text(r: Run) -> None:
    per_text, batching = r.results["per_text"], r.results["batching"]
    print(f"\n## One text per call vs the floor graph (1 thread, medians of {r.scale.per_text}, alternated)\n")
    print("| tokens (T) | expand / floor(T) | expand / floor(T + 2): [CLS] and [SEP] are positions too | target |")
    print("|---|---|---|---|")
    for tokens, (over, over_positions) in per_text.items():
        target = "<= 1.5x" if tokens <= 16 else "<= 1.25x"
        print(f"| {tokens} | **{over:.2f}x** | {over_positions:.2f}x | {target} |")
    b1, b16, gain = batching
    print(
        f"\nbatch 16 vs batch 1 at 1 thread, alternated over {r.scale.batch_rounds} rounds: {b16:,.0f} vs "
        f"{b1:,.0f} docs/s (medians); median of the per-round ratios **{gain:.2f}x** (target >= 1x)"
    )


def _print_chart(r: Run) -> None:
    args, colds, by_length = r.args, r.results["colds"], r.results["by_length"]
    cold_chart = {"fused int8 (ours)": colds["expander"], "fastembed-style ONNX": colds["fastembed_style"]}
    if "torch" in colds:
        cold_chart["torch"] = colds["torch"]
    perf.chart(args.chart, CHART_LENGTHS, by_length, cold_chart)
    print(f"\nchart: {args.chart.relative_to(ROOT) if args.chart.is_relative_to(ROOT) else args.chart}")
    print("\n| docs/s at 1 thread, batch 1 | " + " | ".join(f"{n:,} tokens" for n in CHART_LENGTHS) + " |")
    print("|---|" + "---|" * len(CHART_LENGTHS))
    for name, values in by_length.items():
        print(f"| {name} | " + " | ".join(fmt(v) for v in values) + " |")


def _print_more(r: Run) -> None:
    """Memory, size, handler overhead, ingest, the CLI, pruning, the last main, the work budget, fidelity."""
    args, scale, ours, rss, overheads = r.args, r.scale, r.ours, r.results["rss"], r.results["overheads"]
    fidelity = r.results["fidelity"]
    size = sum(path.stat().st_size for path in MODEL_DIR.glob("model.onnx*"))  # the graph and its weights
    print("\n## Memory, size, overhead\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    print(
        f"| peak RSS, one request of 64 x 512 tokens ({rss['windows']} windows) | {rss['peak_mb']:.0f} MB "
        f"(after load {rss['loaded_mb']:.0f} MB) | <= 400 MB |"
    )
    for tokens, handler_ms, expand_ms in overheads:
        overhead = (handler_ms - expand_ms) / expand_ms * 100
        print(
            f"| one-text ({tokens} tokens) HTTP API v2 call through lambda_handler vs Expander.expand alone "
            f"(1 thread, median of {scale.overhead_reps}) | {handler_ms:.2f} ms vs {expand_ms:.2f} ms: "
            f"{handler_ms - expand_ms:+.2f} ms, **{overhead:+.0f}%** | <= 10% |"
        )
    print_ingest(scale.ingest_lines, args.baseline)
    print_cli(scale.cli_lines, scale.cli_rounds)
    overhead_by_kind = prune_overhead(ours[1], scale.prune_rounds)
    print(
        f"| prune of a ~100-token text, expand time vs no pruning (1 thread, medians of {scale.prune_rounds}, "
        "alternated) | " + ", ".join(f"{k}: {v:.3f}x" for k, v in overhead_by_kind.items()) + " | <= 1.05x |"
    )
    if args.baseline:
        print_vs_baseline(args.baseline, scale.baseline_rounds)
    print(f"| model.onnx + model.onnx.data (int8) | {size / 1e6:.1f} MB | |")
    print_worst(worst_requests(scale.worst_reps))
    if fidelity is not None:
        print(f"| max abs diff, torch reference vs fused fp32 (16 texts) | {fidelity:.2e} | <= 1e-4 |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", default="", help="python of the torch reference venv")
    parser.add_argument("--quick", action="store_true", help="every stage once, tiny sizes (make test runs it)")
    parser.add_argument("--texts", type=int, help="texts per throughput measurement (128)")
    parser.add_argument("--reps", type=int, help="calls per latency measurement (60)")
    parser.add_argument("--ingest-lines", type=int, help="JSONL lines for the ingest benchmark (10,000)")
    parser.add_argument("--only-worst", action="store_true", help="only the worst-request (work budget) rows")
    parser.add_argument("--only-ingest", action="store_true", help="only the ingest rows (with the baseline)")
    parser.add_argument("--only-cli", action="store_true", help="only the splade-expand rows")
    parser.add_argument("--only-base", action="store_true", help="only the base-size bring-your-own model rows")
    parser.add_argument("--only-cost", action="store_true", help="only the cost table (scripts/bench_cost.py)")
    parser.add_argument("--only-baseline", action="store_true", help="only throughput and init vs --baseline")
    parser.add_argument("--cli-lines", type=int, help="JSONL documents for the splade-expand rows (10,000)")
    parser.add_argument("--baseline", default="", help="git ref whose ingest throughput this run is compared with")
    parser.add_argument("--chart", type=Path, help="where the chart is written (docs/bench.png; quick: build/)")
    args = parser.parse_args(argv)
    args.chart = args.chart or ROOT / ("build/bench-quick.png" if args.quick else "docs/bench.png")
    given = {k: getattr(args, k) for k in ("texts", "reps", "ingest_lines", "cli_lines") if getattr(args, k)}
    scale = replace(QUICK if args.quick else FULL, **given)
    if args.only_ingest:
        print("| measure | value | target |\n|---|---|---|")
        print_ingest(scale.ingest_lines, args.baseline)
        return 0
    if args.only_base:
        status = bench_base.main(["--reference-python", args.reference_python])
        bench_gte.rows()
        return status
    if args.only_cost:
        return bench_cost.main([])
    if args.only_baseline:
        print("| measure | value | target |\n|---|---|---|")
        print_vs_baseline(args.baseline or "HEAD", scale.baseline_rounds)
        return 0
    if args.only_cli:
        print("| measure | value | target |\n|---|---|---|")
        print_cli(scale.cli_lines, scale.cli_rounds)
        return 0
    if args.only_worst:
        print("| measure | value | target |\n|---|---|---|")
        print_worst(worst_requests(scale.worst_reps))
        return 0

    run = _start(args, scale)
    for measure in (_measure_fidelity, _measure_throughput, _measure_latency, _measure_by_length, _measure_process):
        measure(run)
    for report in (_print_throughput, _print_latency, _print_cold_start, _print_per_text, _print_chart, _print_more):
        report(run)
    if scale.base_models:
        print("\n## Bring your own model: base size (scripts/bench_base.py)\n")
        bench_base.main(["--reference-python", run.ref_python or ""])
        bench_gte.rows()
    print("\n## What it costs on Lambda (scripts/bench_cost.py)\n")
    bench_cost.main([] if scale.base_models else ["--quick"], init_ms=run.results["init_ms"])
    print(f"\nmachine: {perf.host()}, onnxruntime {ort.__version__}, numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
