"""`make eval` end to end on the bundled BEIR-format set: one line per system in the documented form, the same
figures in eval.json beside the model, and the model's MRR@10 recomputed from vectors the Expander gives."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from devkit import MODEL_DIR, ROOT
from scripts import eval as evaluate
from splade_expander.expander import Expander

pytestmark = pytest.mark.integration
LINE = re.compile(r"^(\S+) nDCG@10=(\d\.\d{3}) MRR@10=(\d\.\d{3}) Recall@100=(\d\.\d{3})$")


def test_make_eval_prints_one_line_per_system_and_writes_eval_json(tmp_path: Path) -> None:
    """Five systems, each `<system> nDCG@10=x MRR@10=y Recall@100=z`; eval.json holds the same figures; the
    splade-model MRR@10 equals one recomputed here from Expander vectors and dot products."""
    model = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model, ignore=shutil.ignore_patterns("eval.json", "idf.json"))
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "eval", f"MODEL_DIR={model}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    rows = {m.group(1): m for m in map(LINE.match, result.stdout.splitlines()) if m}
    assert list(rows) == ["splade-model", "splade-idf", "bm25", "hybrid-model+bm25", "hybrid-idf+bm25"]
    saved = json.loads((model / "eval.json").read_text())["pydoc"]
    assert saved["documents"] == saved["queries"] == 77 and saved["idf"] == "this corpus's idf"
    for system, match in rows.items():
        assert saved["results"][system]["MRR@10"] == pytest.approx(float(match.group(3)), abs=5e-4)
    corpus, queries, qrels = evaluate.load_beir(evaluate.DEFAULT_DATA)
    expander = Expander(model, threads=1, max_windows=100_000)
    size = expander.vocab_size
    docs = np.array([v.dense(size) for v in expander.expand(list(corpus.values()))])
    reciprocal = []
    for qid, vec in zip(queries, expander.expand(list(queries.values()), kind="query"), strict=True):
        scores = docs @ vec.dense(size)
        order = np.lexsort((np.arange(len(scores)), -scores))[:10]
        ranked = [list(corpus)[i] for i in order]
        reciprocal.append(next((1 / (r + 1) for r, d in enumerate(ranked) if d in qrels[qid]), 0.0))
    assert float(rows["splade-model"].group(3)) == pytest.approx(np.mean(reciprocal), abs=5e-4)
