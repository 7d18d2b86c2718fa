"""Benchmark pieces for cold start and short texts (`make bench`): the floor graph, fresh-process timings, the
Lambda init under the runtime emulator, and the chart.

The floor for a text of T tokens is the least any SPLADE projection of this vocabulary can cost: one int8
``MatMulInteger`` of the real [30522, 128] table with an int8 [128, T] block, then ``ReduceMax``, in one tiny ORT
graph at 1 thread. The cold-start floor is ``import numpy, onnxruntime, tokenizers``. Every figure here is
measured in the same run as its floor, alternated, and reported as a ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from devkit import MODEL_DIR, ROOT

TABLE = "word_embeddings.uint8"


def floor_session(model_dir: Path = MODEL_DIR) -> ort.InferenceSession:
    """The floor graph over the model's own int8 table, at 1 thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(floor_model(model_dir), options, providers=["CPUExecutionProvider"])


def vocabulary_table(model: onnx.ModelProto) -> np.ndarray:
    """The model's int8 vocabulary table ([vocab, hidden], uint8 with zero point 128) as it is stored now: the tied
    table only as the projection's chunks (``word_embeddings.uint8.chunk<N>``, joined in order), an untied one
    whole under ``word_embeddings.uint8``."""
    tables = {i.name: i for i in model.graph.initializer if i.name == TABLE or i.name.startswith(TABLE + ".chunk")}
    if TABLE in tables:
        return numpy_helper.to_array(tables[TABLE])
    chunks = sorted((int(name.rsplit("chunk", 1)[1]), init) for name, init in tables.items())
    if not chunks:
        raise ValueError(f"the graph has no {TABLE} table nor its chunks: is it an int8 build (make model)?")
    return np.concatenate([numpy_helper.to_array(init) for _, init in chunks])


def floor_model(model_dir: Path = MODEL_DIR) -> bytes:
    """The floor graph (serialized): ``MatMulInteger`` of the model's int8 table with an int8 [128, T] block, then
    ``ReduceMax``."""
    model = onnx.load(str(model_dir / "model.onnx"))
    table = numpy_helper.from_array(vocabulary_table(model), "table")
    nodes = [
        helper.make_node("MatMulInteger", ["table", "h", "zero_point"], ["acc"]),
        helper.make_node("ReduceMax", ["acc", "axes"], ["pooled"], keepdims=0),
    ]
    inits = [
        table,
        helper.make_tensor("zero_point", TensorProto.UINT8, [], [128]),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
    ]
    graph = helper.make_graph(
        nodes,
        "floor",
        [helper.make_tensor_value_info("h", TensorProto.INT8, [128, "T"])],
        [helper.make_tensor_value_info("pooled", TensorProto.INT32, [30522])],
        inits,
    )
    floor = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    data: bytes = floor.SerializeToString()
    return data


def per_text(
    expand: Callable[[list[str]], Any], texts: dict[int, str], reps: int = 80
) -> dict[int, tuple[float, float]]:
    """For each text of T WordPiece tokens: expand([text]) / floor(T), the issue's floor, and expand([text]) /
    floor(T + 2), the floor at the positions the model must project ([CLS] and [SEP] are pooled too). Medians of
    ``reps`` calls each, the three alternated."""
    floor = floor_session()
    rng = np.random.default_rng(0)
    ratios = {}
    for tokens, text in texts.items():
        blocks = {n: rng.integers(-127, 128, size=(128, n), dtype=np.int8) for n in (tokens, tokens + 2)}
        calls: dict[str, Callable[[], object]] = {
            "ours": partial(expand, [text]),
            "floor": partial(floor.run, None, {"h": blocks[tokens]}),
            "floor_positions": partial(floor.run, None, {"h": blocks[tokens + 2]}),
        }
        times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(5):
            for call in calls.values():
                call()
        for _ in range(reps):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        ours = statistics.median(times["ours"])
        ratios[tokens] = (ours / statistics.median(times["floor"]), ours / statistics.median(times["floor_positions"]))
    return ratios


# ----------------------------------------------------------------------------- cold start, fresh processes
FLOOR_IMPORTS = """
import time, json
t0 = time.perf_counter()
import numpy, onnxruntime, tokenizers
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""
EXPANDER_COLD = """
import time, json
t0 = time.perf_counter()
from splade_expander.expander import Expander
expander = Expander(threads=1)
expander.expand(["chronic obstructive pulmonary disease"])
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""
APP_INIT = """
import contextlib, io, json, statistics, time
t0 = time.perf_counter()
import handler.app
init = time.perf_counter() - t0
from devkit.events import LambdaContext, http_event
event = http_event({"texts": ["chronic obstructive pulmonary disease"]})
times = []
with contextlib.redirect_stdout(io.StringIO()):  # the EMF metrics line of each invocation
    for _ in range(21):
        start = time.perf_counter()
        handler.app.lambda_handler(event, LambdaContext())
        times.append(time.perf_counter() - start)
print(json.dumps({"seconds": init, "first": times[0], "warm": statistics.median(times[1:])}))
"""
LIBRARY_LOADS = """
import time, json
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
def options():
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # as the Expander loads a built graph
    return o
t0 = time.perf_counter()
Tokenizer.from_file({tokenizer!r})
t1 = time.perf_counter()
ort.InferenceSession({floor!r}, options(), providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
ort.InferenceSession({model!r}, options(), providers=["CPUExecutionProvider"])
t3 = time.perf_counter()
print(json.dumps({{"seconds": t3 - t0, "tokenizer": t1 - t0, "smallest_session": t2 - t1, "model_session": t3 - t2}}))
"""
BASELINE_COLD = """
import time, json
t0 = time.perf_counter()
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
options.intra_op_num_threads = 1
session = ort.InferenceSession({model!r}, options, providers=["CPUExecutionProvider"])
tokenizer = Tokenizer.from_file({tokenizer!r})
enc = tokenizer.encode("chronic obstructive pulmonary disease")
ids = np.array([enc.ids], dtype=np.int64)
logits = session.run(None, {{"input_ids": ids, "attention_mask": np.ones_like(ids)}})[0]
np.max(np.log1p(np.maximum(logits, 0)), axis=1)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""
TORCH_COLD = """
import time, json
t0 = time.perf_counter()
import torch
from transformers import AutoTokenizer, BertForMaskedLM
torch.set_num_threads(1)
torch.set_grad_enabled(False)
model = BertForMaskedLM.from_pretrained({source!r}).eval()
tokenizer = AutoTokenizer.from_pretrained({source!r})
batch = tokenizer(["chronic obstructive pulmonary disease"], return_tensors="pt")
torch.log1p(torch.relu(model(**batch).logits)).max(dim=1)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""


def fresh(code: str, python: str = sys.executable, bytecode: bool = True) -> dict[str, Any]:
    """Run ``code`` in a new interpreter at 1 thread; its last stdout line is JSON. ``bytecode``: Python may keep
    compiled modules (as pip did for the libraries); off, our modules are compiled at every start, as in the
    Lambda zip, which ships no .pyc."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"ORT_THREADS": "1", "OMP_NUM_THREADS": "1", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    env.setdefault("OUTPUT_BUCKET", "bench-out")
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    out = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def cold_starts(rounds: int = 7, reference_python: str | None = None, source: Path | None = None) -> dict[str, Any]:
    """Medians of ``rounds`` fresh processes, each system alternated within a round (same machine load)."""
    from devkit import SOURCE_DIR

    logits_dir = ROOT / "build" / "model_logits"
    codes: dict[str, tuple[str, str, bool]] = {
        "floor": (FLOOR_IMPORTS, sys.executable, True),
        "expander": (EXPANDER_COLD, sys.executable, True),
        "app": (APP_INIT, sys.executable, True),
        "app_compiling": (APP_INIT, sys.executable, False),
        "fastembed_style": (
            BASELINE_COLD.format(model=str(logits_dir / "model.onnx"), tokenizer=str(logits_dir / "tokenizer.json")),
            sys.executable,
            True,
        ),
    }
    floor_file = Path(tempfile.gettempdir()) / "splade-bench-floor.onnx"
    # its table in external data, as the model's own weights are (scripts/build_model.py write_model)
    onnx.save_model(
        onnx.load_from_string(floor_model()), str(floor_file), save_as_external_data=True,
        location=floor_file.name + ".data", size_threshold=1024,
    )  # fmt: skip
    codes["library_loads"] = (
        LIBRARY_LOADS.format(
            tokenizer=str(MODEL_DIR / "tokenizer.json"), floor=str(floor_file), model=str(MODEL_DIR / "model.onnx")
        ),
        sys.executable,
        True,
    )
    if reference_python:  # absolute (the processes run elsewhere), but not resolved: a venv's python is a symlink
        python = os.path.abspath(reference_python)
        codes["torch"] = (TORCH_COLD.format(source=str(source or SOURCE_DIR)), python, True)
    fresh(APP_INIT)  # compiles and keeps our modules' bytecode, as pip did for the libraries
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
    for _ in range(rounds):
        for name, (code, python, bytecode) in codes.items():
            runs[name].append(fresh(code, python, bytecode))
    result: dict[str, Any] = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    for part in ("tokenizer", "smallest_session", "model_session"):  # the libraries' own loads, fresh process
        result[part] = statistics.median(r[part] for r in runs["library_loads"])
    result["first_request_penalty"] = statistics.median(r["first"] - r["warm"] for r in runs["app"])
    result["warm_request"] = statistics.median(r["warm"] for r in runs["app"])
    return result


def emulator_init_ms(starts: int = 3, artifact: Path | None = None) -> float:
    """Median ``Init Duration`` the Lambda runtime emulator reports for the built artifact (what Lambda bills)."""
    from devkit.emulator import ARTIFACT, Emulator
    from devkit.events import http_event

    inits = []
    for _ in range(starts):
        with Emulator({"ORT_THREADS": "1"}, artifact=artifact or ARTIFACT) as emulator:
            emulator.invoke(http_event({"text": "lung"}))
            inits += emulator.init_durations_ms()
    return float(statistics.median(inits))


# ----------------------------------------------------------------------------- chart
def host() -> str:
    """The CPU model and the CPUs this process may use, for every figure's caption."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {len(os.sched_getaffinity(0))} CPUs"


def chart(path: Path, lengths: list[int], docs_per_s: dict[str, list[float | None]], cold: dict[str, float]) -> None:
    """Two panels: docs/s by text length at 1 thread, and cold start, for each system (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    x = np.arange(len(lengths))
    width = 0.8 / len(docs_per_s)
    for i, (name, values) in enumerate(docs_per_s.items()):
        heights = [v or 0.0 for v in values]
        left.bar(x + (i - (len(docs_per_s) - 1) / 2) * width, heights, width, label=name)
    left.set_xticks(x, [f"{n:,}" for n in lengths])
    left.set_xlabel("tokens per text (the baselines truncate at 512, their limit)")
    left.set_ylabel("docs/s, 1 thread, batch 1")
    left.set_yscale("log")
    left.legend(fontsize=8)
    left.set_title("Throughput by text length")
    names = list(cold)
    cold_ms = [cold[n] * 1e3 for n in names]
    right.barh(names, cold_ms, color=[f"C{i}" for i in range(len(names))])
    for i, ms in enumerate(cold_ms):
        right.text(ms, i, f" {ms:,.0f} ms", va="center", fontsize=8)
    right.set_xscale("log")
    right.set_xlim(right=max(cold_ms) * 8)
    right.set_xlabel("import + load + first vector (ms, log)")
    right.set_title("Cold start, fresh process")
    right.invert_yaxis()
    fig.suptitle(f"make bench on {host()}; one run, systems alternated", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def emulator_init_with_and_without_pyc(rounds: int = 3) -> tuple[float, float]:
    """Median Init Duration of the built artifact (with its .pyc) and of a copy without them, alternated: what
    shipping bytecode saves each cold start (Lambda cannot write __pycache__ into /var/task)."""
    import shutil
    import tempfile

    from devkit.emulator import ARTIFACT

    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "artifact"
        shutil.copytree(ARTIFACT, bare, ignore=shutil.ignore_patterns("__pycache__"))
        with_pyc, without = [], []
        for _ in range(rounds):
            with_pyc.append(emulator_init_ms(1))
            without.append(emulator_init_ms(1, bare))
    return float(statistics.median(with_pyc)), float(statistics.median(without))
