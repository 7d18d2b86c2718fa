"""Base-size bring-your-own models in ``make bench``: random BERT (12 x 768), DistilBERT (6 x 768) and RoBERTa
(12 x 768, byte-level BPE padded to roberta-base's 50,265 ids) checkpoints with outlier channels, converted with an
int8 encoder, against transformers + torch fp32 on the same weights.

    python scripts/bench_base.py [--reference-python build/venv-reference/bin/python] [--budget-only DIR]
                                 [--families bert,distilbert,roberta,mbert,gte,tiny]

Prints markdown rows: fidelity (int8 and fp32 against torch), docs/s at 1 thread (~100-token texts, batch 1,
alternated), local cold start (spawn -> first vector), peak RSS of a maximal request, the measured work budget
(written into the converted model's manifest as ``max_request_windows``) and the arm64 artifact's size.
``--budget-only DIR`` measures and writes the budget of one model directory (``make bench-budget MODEL_DIR=...``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from devkit import ROOT
from devkit.corpus import texts_with_tokens
from devkit.pretrained import BASE_SIZES, Spec, write_pretrained
from devkit.reference import fidelity
from scripts import build_artifact
from scripts.reference_client import Reference
from splade_convert import cli as convert_cli
from splade_expander.expander import Expander

WORK = ROOT / "build" / "base"
BUDGET_SECONDS = 4.5  # the costliest accepted request at 1 thread: splade-tiny's 256 windows take ~4.4 s
# Shapes measured: family and vocabulary (None: the bundled 30,522 WordPieces; else the tokenizer padded to the
# real model's size, devkit/pretrained.py): roberta-base's 50,265 ids, multilingual-v1's (mBERT's) 105,879.
SHAPES: dict[str, tuple[str, int | None]] = {
    "bert": ("bert", None),
    "distilbert": ("distilbert", None),
    "roberta": ("roberta", 50_265),
    "mbert": ("bert", 105_879),
}
FAMILIES = tuple(SHAPES)
BASE_ENV = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def prepare(shape: str) -> dict[str, Path]:
    """The checkpoint of a SHAPES entry and its int8 and fp32 conversions under build/base/ (reused when present)."""
    family, vocab = SHAPES[shape]
    src = WORK / f"{shape}-src"
    if not (src / "model.safetensors").is_file():
        size = BASE_SIZES[family]
        spec = Spec(
            family, layers=size["layers"], hidden=size["hidden"], heads=size["heads"], outliers=6, seed=7, vocab=vocab
        )  # fmt: skip
        write_pretrained(src, spec)
    dirs = {"src": src}
    for precision in ("int8", "fp32"):
        out = WORK / f"{shape}-{precision}"
        if not (out / "manifest.json").is_file():
            args = ["--source", str(src), "--out", str(out), "--precision", precision, "--layers", precision]
            convert_cli.main([*args, "--manifest", "--model-name", f"random-{shape}-base"])
        dirs[precision] = out
    return dirs


def seconds_per_window(expander: Expander, windows: int) -> float:
    """Median seconds per 256-token window over a request of ``windows`` windows (1 thread, 3 repeats)."""
    (text,) = texts_with_tokens(expander.tokenizer, (expander.window_tokens - 2) * windows, 1)
    expander.expand([text[:2000]])
    times = []
    for _ in range(3):
        start = time.perf_counter()
        (vec,) = expander.expand([text])
        times.append((time.perf_counter() - start) / vec.windows)
    return statistics.median(times)


def docs_per_s(expander: Expander, texts: list[str]) -> float:
    """docs/s of one pass over ``texts``, one text per call (batch 1)."""
    start = time.perf_counter()
    for text in texts:
        expander.expand([text])
    return len(texts) / (time.perf_counter() - start)


def best_docs_per_s(expanders: dict[str, Expander], texts: list[str], rounds: int) -> dict[str, float]:
    """Each expander's best docs/s over ``rounds`` rounds, alternated round by round (each saw the same load)."""
    rates: dict[str, list[float]] = {name: [] for name in expanders}
    for _ in range(rounds):
        for name, expander in expanders.items():
            rates[name].append(docs_per_s(expander, texts))
    return {name: max(r) for name, r in rates.items()}


def write_budget(model_dir: Path) -> tuple[int, float]:
    """Measure the model's seconds per window and record ``max_request_windows`` in its manifest."""
    expander = Expander(model_dir, threads=1, max_windows=100_000)
    per_window = seconds_per_window(expander, 4)
    budget = max(1, int(BUDGET_SECONDS / per_window))
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["max_request_windows"] = budget
    manifest["max_request_windows_basis"] = f"{per_window:.3f} s per window at 1 thread (make bench)"
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return budget, per_window


def fresh(code: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**BASE_ENV}, cwd=ROOT
    )
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


COLD = """
import json, time
start = time.perf_counter()
from splade_expander.expander import Expander
e = Expander({dir!r}, threads=1)
e.expand(["a first short text to expand"])
print(json.dumps({{"seconds": time.perf_counter() - start}}))
"""

PEAK = """
import json
from splade_expander.expander import Expander
from devkit.corpus import texts_with_tokens
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
e = Expander({dir!r}, threads=1, max_windows=100_000)
texts = texts_with_tokens(e.tokenizer, e.window_tokens - 2, e.request_windows)
# truncate: one full window per text (a cut "give or take one token" can spill a 255th token into a second window)
vecs = e.expand(texts, max_total_windows=e.request_windows, truncate=True)
print(json.dumps({{"peak_mb": hwm(), "windows": sum(v.windows for v in vecs)}}))
"""


def artifact_size(model_dir: Path) -> tuple[float, float]:
    """(unzipped MB, zipped MB) of the arm64 artifact shipping ``model_dir``."""
    dest, zipped = WORK / "artifact-arm64", WORK / "splade-base-arm64.zip"
    # --image: measured whatever the size (a zip over 250 MB is then reported as needing the image)
    args = ["--dest", str(dest), "--arch", "arm64", "--image", "--model-dir", str(model_dir)]
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_artifact.py"), *args], check=True, capture_output=True
    )
    unzipped = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    return unzipped / 1e6, build_artifact.make_zip(dest, zipped) / 1e6


def rows(reference_python: str, families: tuple[str, ...] = FAMILIES) -> None:
    for family in families:
        dirs = prepare(family)
        budget, per_window = write_budget(dirs["int8"])
        ours = Expander(dirs["int8"], threads=1)
        ours32 = Expander(dirs["fp32"], threads=1)
        texts = texts_with_tokens(ours.tokenizer, 100, 16)
        base, vocab = SHAPES[family]
        size = f"{BASE_SIZES[base]['layers']}x{BASE_SIZES[base]['hidden']}" + (f" ({vocab:,} ids)" if vocab else "")
        label = f"random {base} {size}, 6 outlier channels, int8 encoder"
        ref = Reference(reference_python, dirs["src"]) if reference_python else None
        if ref is not None:
            want = [np.array(v, dtype=np.float64) for v in ref.ask(op="vectors", texts=texts)["vectors"]]
            for vec in want:
                vec[ours.special_ids] = 0.0
            got = [v.dense(ours.vocab_size) for v in ours.expand(texts)]
            got32 = [v.dense(ours.vocab_size) for v in ours32.expand(texts)]
            f8, f32 = fidelity(got, want), fidelity(got32, want)
            print(
                f"| {label}: int8 vs transformers fp32 (16 texts) | mean cos {f8['mean_cos']:.4f}, min "
                f"{f8['min_cos']:.4f}, top-32 overlap {f8['top_overlap']:.3f} | >= 0.995, >= 0.98, >= 0.9 |"
            )
            print(f"| {family} {size}: fp32 graph vs transformers, max abs diff | {f32['max_abs']:.2e} | <= 1e-3 |")
            rates: dict[str, list[float]] = {"ours": [], "torch": []}
            for _ in range(2):
                rates["ours"].append(docs_per_s(ours, texts))
                rates["torch"].append(ref.ask(op="throughput", texts=texts, threads=1, batch=1)["docs_per_s"])
            mine, theirs = max(rates["ours"]), max(rates["torch"])
            print(
                f"| {family} {size}: docs/s at 1 thread, ~100-token texts, batch 1 (best of 2, alternated) | "
                f"int8 {mine:.1f} vs torch fp32 {theirs:.1f}: **{mine / theirs:.2f}x** | >= 3x |"
            )
            ref.close()
        cold = statistics.median(fresh(COLD.format(dir=str(dirs["int8"])))["seconds"] for _ in range(3))
        print(f"| {family} {size}: local cold start, spawn -> first vector (median of 3) | {cold:.2f} s | <= 1.5 s |")
        print(
            f"| {family} {size}: work budget (manifest max_request_windows) | {budget} windows "
            f"({per_window:.3f} s each at 1 thread: the costliest request ~{budget * per_window:.1f} s) | |"
        )
        peak = fresh(PEAK.format(dir=str(dirs["int8"])))
        print(
            f"| {family} {size}: peak RSS, a maximal request ({peak['windows']} windows) | "
            f"{peak['peak_mb']:.0f} MB | <= 1 GB |"
        )
        unzipped, zipped = artifact_size(dirs["int8"])
        fits = "fits the zip" if unzipped * 1e6 <= build_artifact.LAMBDA_UNZIPPED_LIMIT else "**over: make image**"
        print(
            f"| {family} {size} int8: arm64 artifact | {zipped:.1f} MB zipped, {unzipped:.1f} MB unzipped ({fits}) | "
            "<= 250 MB unzipped |"
        )


def tiny_encoder_rows() -> None:
    """splade-tiny with an int8 encoder against the shipped fp32 encoder (both with the int8 projection): fidelity
    to the fp32 graph and docs/s at 1 thread, alternated. The shipped choice is the better of the two."""
    from devkit import FP32_DIR, MODEL_DIR, SOURCE_DIR

    out = WORK / "tiny-int8-encoder"
    if not (out / "manifest.json").is_file():
        convert_cli.main(["--source", str(SOURCE_DIR), "--out", str(out), "--precision", "int8", "--layers", "int8"])
        (out / "tokenizer.json").write_bytes((MODEL_DIR / "tokenizer.json").read_bytes())
    shipped, int8_encoder, exact = (Expander(d, threads=1) for d in (MODEL_DIR, out, FP32_DIR))
    texts = texts_with_tokens(shipped.tokenizer, 100, 32)
    want = [v.dense(exact.vocab_size).astype(np.float64) for v in exact.expand(texts)]
    rates = best_docs_per_s({"fp32": shipped, "int8": int8_encoder}, texts, rounds=3)
    for name, expander in (("fp32", shipped), ("int8", int8_encoder)):
        f = fidelity([v.dense(exact.vocab_size) for v in expander.expand(texts)], want)
        print(
            f"| splade-tiny, {name} encoder + int8 projection{' (shipped)' if name == 'fp32' else ''}: vs the fp32 "
            f"graph, docs/s at 1 thread (~100 tokens, best of 3) | mean cos {f['mean_cos']:.5f}, min "
            f"{f['min_cos']:.5f}; {rates[name]:.0f} docs/s | |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", default="")
    parser.add_argument("--budget-only", type=Path, help="measure and record one model directory's work budget")
    parser.add_argument("--families", default=",".join(FAMILIES), help="which base-size families to measure")
    args = parser.parse_args(argv)
    if args.budget_only:
        budget, per_window = write_budget(args.budget_only)
        print(f"{args.budget_only}: {per_window:.3f} s per window at 1 thread -> max_request_windows {budget}")
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    reference = args.reference_python if args.reference_python and Path(args.reference_python).is_file() else ""
    print("| base-size measure | value | target |\n|---|---|---|")
    families = tuple(f for f in args.families.split(",") if f)
    if "tiny" in families or families == FAMILIES:
        tiny_encoder_rows()
    rows(reference, tuple(f for f in families if f in SHAPES))
    return 0  # GTE (no transformers class: against its own fp32 graph) follows from scripts/bench_gte.py


if __name__ == "__main__":
    sys.exit(main())
