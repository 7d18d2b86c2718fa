"""Shared fixtures: built model directories, Expanders, the numpy reference, event fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "model_assets"
FP32_DIR = ROOT / "build" / "model_fp32"
SOURCE_DIR = ROOT / "build" / "source"
EVENTS_DIR = Path(__file__).resolve().parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A JSON event fixture from tests/events (or the user-facing events/ folder)."""
    for folder in (EVENTS_DIR, ROOT / "events"):
        path = folder / (name if name.endswith(".json") else f"{name}.json")
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
    raise FileNotFoundError(name)


def _need(path: Path) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make model` (make test does it)")


@pytest.fixture(scope="session")
def expander():  # type: ignore[no-untyped-def]
    from handler.expander import Expander

    _need(MODEL_DIR / "model.onnx")
    return Expander(MODEL_DIR, threads=2)


@pytest.fixture(scope="session")
def expander_fp32():  # type: ignore[no-untyped-def]
    from handler.expander import Expander

    _need(FP32_DIR / "model.onnx")
    return Expander(FP32_DIR, threads=2)


@pytest.fixture(scope="session")
def reference():  # type: ignore[no-untyped-def]
    from tests.reference import ReferenceSplade

    _need(SOURCE_DIR / "model.safetensors")
    return ReferenceSplade(SOURCE_DIR)
