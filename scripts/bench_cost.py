"""make bench's cost table: dollars per million documents (ingest) and queries (HTTP) at four memory sizes, on
arm64 and x86_64 prices, from speeds measured in this run (scripts/cost.py holds the arithmetic and assumptions).

    python scripts/bench_cost.py [--init-ms MS]      (make bench-cost; make bench prints it too)

Per model (splade-tiny, and the base-size random BERT and DistilBERT of scripts/bench_base.py):
- ingest: documents of 64, 256 and 1,024 tokens through the ingest batch path (read as documents, expanded in
  batches by splade_expander/batches.py, rendered and serialized as output lines), at 1 thread and at 2, alternated;
- queries: one short query's expand at 1 thread (model-encoded, and idf with an idf.json counted over the bench
  corpus), plus what lambda_handler adds to an HTTP API v2 call beyond the expand (measured on splade-tiny);
- init: the Lambda runtime emulator's measured init (splade-tiny), spawn to first vector (base sizes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devkit import MODEL_DIR, ROOT
from devkit.corpus import prose_paragraphs, texts_with_tokens
from devkit.pretrained import BASE_SIZES
from scripts import bench_base, idf
from scripts.cost import (
    ARCHES,
    MEMORY_SIZES,
    Prices,
    assumptions,
    per_million_calls,
    per_million_documents,
    per_thousand_inits,
)  # fmt: skip
from splade_expander.batches import batches, dumps_line, records
from splade_expander.documents import Document
from splade_expander.expander import Expander

LENGTHS = (64, 256, 1024)
QUERY = "how do i reset my router password"
ROUNDS = 3
WORK = ROOT / "build" / "cost"


@dataclass
class Measured:
    """One model's speeds at one core, and what a second thread added (gain: 2-thread speed / 1-thread - 1)."""

    name: str
    docs_per_s: dict[int, float]  # by document length in tokens
    gain: dict[int, float]
    query_s: dict[str, float]  # by query encoder: seconds per HTTP call
    query_gain: float
    init_s: float
    init_basis: str


def ingest_batches(expander: Expander, texts: list[str]) -> int:
    """The ingest work on ``texts``: the batch core's batches, records and serialized output lines."""
    docs = [Document(i, text, i + 1) for i, text in enumerate(texts)]
    for batch, _ in batches(docs):
        for record in records(expander, batch, {"path": "bench"}, fmt="indices").vectors:
            dumps_line(record)
    return len(texts)


def ingest_speeds(model_dir: Path, docs: int, rounds: int = ROUNDS) -> tuple[dict[int, float], dict[int, float]]:
    """(docs/s at 1 thread, second-thread gain) for each length in LENGTHS: 1 and 2 threads alternated, best of
    ``rounds`` each."""
    expanders = {threads: Expander(model_dir, threads=threads) for threads in (1, 2)}
    rates, gains = {}, {}
    for tokens in LENGTHS:
        texts = texts_with_tokens(expanders[1].tokenizer, tokens, docs)
        best = dict.fromkeys(expanders, 0.0)
        for expander in expanders.values():
            ingest_batches(expander, texts[:4])
        for _ in range(rounds):
            for threads, expander in expanders.items():
                start = time.perf_counter()
                count = ingest_batches(expander, texts)
                best[threads] = max(best[threads], count / (time.perf_counter() - start))
        rates[tokens], gains[tokens] = best[1], best[2] / best[1] - 1
    return rates, gains


def query_gain(model_dir: Path, reps: int = 200) -> float:
    """What a second thread adds to one short query's expand (median times, alternated)."""
    one, two = Expander(model_dir, threads=1), Expander(model_dir, threads=2)
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(reps):
        for threads, expander in ((1, one), (2, two)):
            start = time.perf_counter()
            expander.expand([QUERY], kind="query", query_encoder="model")
            times[threads].append(time.perf_counter() - start)
    return statistics.median(times[1]) / statistics.median(times[2]) - 1


def handler_share(reps: int = 300) -> float:
    """Seconds a one-query HTTP API v2 call spends in lambda_handler beyond Expander.expand (medians, 1 thread,
    alternated): parsing, validation, rendering, logging and metrics."""
    os.environ["ORT_THREADS"] = "1"
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from devkit.events import LambdaContext, http_event
    from handler import app, runtime

    context = LambdaContext()
    event = http_event({"texts": [QUERY], "kind": "query", "query_encoder": "model"})
    calls, expands = [], []
    with contextlib.redirect_stdout(io.StringIO()):  # the EMF metrics line of each call
        response = app.lambda_handler(event, context)
        assert response["statusCode"] == 200, response
        for _ in range(reps):
            start = time.perf_counter()
            app.lambda_handler(event, context)
            calls.append(time.perf_counter() - start)
            start = time.perf_counter()
            runtime.expander.expand([QUERY], kind="query", query_encoder="model")
            expands.append(time.perf_counter() - start)
    return max(0.0, statistics.median(calls) - statistics.median(expands))


def query_seconds(expander: Expander, encoder: str, reps: int = 200) -> float:
    """Median seconds of one short query's expand with ``encoder`` (``model`` or ``idf``) at 1 thread."""
    expander.expand([QUERY], kind="query", query_encoder=encoder)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        expander.expand([QUERY], kind="query", query_encoder=encoder)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def with_idf(model_dir: Path) -> Path:
    """A copy of ``model_dir`` (links) with an idf.json counted over the bench corpus, for the idf query rows."""
    out = WORK / f"{model_dir.name}-idf"
    if not (out / "idf.json").is_file():
        out.mkdir(parents=True, exist_ok=True)
        for path in model_dir.iterdir():
            if path.is_file() and not (out / path.name).exists():
                (out / path.name).symlink_to(path.resolve())
        corpus = out / "corpus.jsonl"
        corpus.write_text("".join(json.dumps({"text": p}) + "\n" for p in prose_paragraphs()))
        idf.main(["--data", str(corpus), "--out", str(out)])
    return out


def measure(init_ms: float | None, quick: bool = False) -> list[Measured]:
    """splade-tiny and the two base-size models, each measured in this run (``quick``: splade-tiny only, a few
    calls each: the stage runs, its figures are not measurements)."""
    from scripts import perf

    reps = 3 if quick else 200
    share = handler_share(reps)
    rates, gains = ingest_speeds(MODEL_DIR, 4 if quick else 64, rounds=1 if quick else ROUNDS)
    tiny = Expander(with_idf(MODEL_DIR), threads=1)
    queries = {encoder: query_seconds(tiny, encoder, reps) + share for encoder in ("model", "idf")}
    if init_ms is None:
        init_ms = perf.emulator_init_ms(1 if quick else 3)
    basis = "the emulator's measured init"
    gain = query_gain(MODEL_DIR, reps)
    out = [Measured("splade-tiny (shipped)", rates, gains, queries, gain, init_ms / 1e3, basis)]
    for family in () if quick else ("bert", "distilbert"):
        model_dir = bench_base.prepare(family)["int8"]
        rates, gains = ingest_speeds(model_dir, 16)
        query = query_seconds(Expander(model_dir, threads=1), "model") + share
        cold = statistics.median(
            bench_base.fresh(bench_base.COLD.format(dir=str(model_dir)))["seconds"] for _ in range(3)
        )
        size = f"{BASE_SIZES[family]['layers']}x{BASE_SIZES[family]['hidden']}"
        name = f"random {family} {size} int8"
        out.append(Measured(name, rates, gains, {"model": query}, query_gain(model_dir), cold, "spawn to first vector"))
    return out


def dollars(value: float) -> str:
    return f"${value:#.3g}" if value < 1000 else f"${value:,.0f}"


def rows(m: Measured, prices: Prices) -> list[tuple[str, str, float | None, Callable[[str, int], float]]]:
    """(workload, its one-core speed, the second thread's gain, dollars by (arch, memory)) for one model."""
    out: list[tuple[str, str, float | None, Callable[[str, int], float]]] = []
    for tokens in LENGTHS:
        rate, gain = m.docs_per_s[tokens], m.gain[tokens]

        def docs(arch: str, mb: int, rate: float = rate, gain: float = gain) -> float:
            return per_million_documents(rate, gain, mb, arch, prices)

        out.append((f"ingest, {tokens:,}-token documents ($/M docs)", f"{rate:,.1f} docs/s", gain, docs))
    for encoder, seconds in m.query_s.items():

        def calls(arch: str, mb: int, seconds: float = seconds) -> float:
            return per_million_calls(seconds, m.query_gain, mb, arch, prices)

        out.append((f"HTTP query, {encoder} ($/M queries)", f"{seconds * 1e3:.2f} ms", m.query_gain, calls))

    def inits(arch: str, mb: int) -> float:
        return per_thousand_inits(m.init_s, mb, arch, prices)

    out.append((f"init ({m.init_basis}; $/1,000 cold starts)", f"{m.init_s * 1e3:,.0f} ms", None, inits))
    return out


def table(models: list[Measured], prices: Prices) -> str:
    """The Markdown table: one row per model and workload, one column per architecture and memory size."""
    columns = [(arch, mb) for arch in ARCHES for mb in MEMORY_SIZES]
    head = "| model | workload | one core | 2nd thread | " + " | ".join(f"{a} {mb:,} MB" for a, mb in columns) + " |"
    lines = [head, "|---|---|---|---|" + "---|" * len(columns)]
    for m in models:
        for workload, basis, gain, cost in rows(m, prices):
            cells = " | ".join(dollars(cost(a, mb)) for a, mb in columns)
            second = f"{gain:+.0%}" if gain is not None else "n/a"
            lines.append(f"| {m.name} | {workload} | {basis} | {second} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, init_ms: float | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--init-ms", type=float, default=init_ms, help="splade-tiny's init (default: measure it)")
    parser.add_argument("--quick", action="store_true", help="splade-tiny only, a few calls each (make test)")
    args = parser.parse_args(argv)
    prices = Prices.from_env()
    models = measure(args.init_ms, args.quick)
    print(table(models, prices))
    print("\nAssumptions:\n")
    print(assumptions(prices))
    return 0


if __name__ == "__main__":
    sys.exit(main())
