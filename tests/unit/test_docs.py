"""The docs say what the code does: the shipped model's sha256 and the response fields in the samples, the tests
the docs cite as proof, and the make targets they name. (Benchmark figures are not tested: each carries the
command and conditions it was measured under.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from devkit import MODEL_DIR, ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = {path: path.read_text() for path in DOCS}
MODEL_SHA = json.loads((MODEL_DIR / "manifest.json").read_text())["model_sha256"]


def _where(pattern: str) -> list[tuple[Path, Any]]:
    """(doc, match) for every match of ``pattern`` (a match is a tuple when the pattern has several groups)."""
    return [(path, m) for path, text in TEXT.items() for m in re.findall(pattern, text)]


def test_sample_responses_show_the_shipped_model() -> None:
    """Every sample model block shows the sha256 of the model `make model` builds (a prefix) and the fields a
    response's model block has, in its order."""
    samples = _where(r'\{"model": \{([^}]*)\}')
    assert len(samples) >= 2, samples
    for path, block in samples:
        sha = re.search(r'"sha256": "([0-9a-f]+)…"', block)
        assert sha and MODEL_SHA.startswith(sha.group(1)), (path.name, block)
        assert re.findall(r'"(\w+)":', block) == ["name", "precision", "sha256", "vocab_size", "encoder"], path.name


def test_the_tests_the_docs_cite_exist() -> None:
    """`test_file::test_name` and `tests/.../test_file.py::test_name` in the docs name tests that exist (a
    parametrized id counts by its function)."""
    sources = {p.stem: p.read_text() for p in (ROOT / "tests").rglob("test_*.py")}
    cited = _where(r"(?:tests/(?:unit|integration)/)?(test_[a-z_]+)(?:\.py)?::(test_[a-z0-9_]+)")
    assert len(cited) >= 40
    missing = [f"{path.name}: {module}::{name}" for path, (module, name) in cited
               if f"def {name}(" not in sources.get(module, "")]  # fmt: skip
    assert missing == []


def test_the_make_targets_the_docs_name_exist() -> None:
    """Every `make <target>` in the README and docs/ is a target of the Makefile."""
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z][\w-]*(?: [a-zA-Z][\w-]*)*):", makefile, re.M))
    targets = {t for line in targets for t in line.split()}
    named = {name for _, name in _where(r"`make ([a-z][a-z0-9-]*[a-z0-9])\b")}
    assert named and named - targets - {"build-"} == set()
