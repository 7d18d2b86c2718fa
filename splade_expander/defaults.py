"""The library's defaults and bounds, declared once: the Expander's arguments default to these, and the function's
variables (config.Settings) take their defaults and ranges from them. No environment is read here."""

from __future__ import annotations

import os
from pathlib import Path

# The bundled model: beside the package in a checkout (make model) and in the Lambda zip; for an installed wheel,
# where `splade-convert --bundled` builds it (the wheel carries no model: docs/python.md says why).
CHECKOUT_MODEL_DIR = Path(__file__).resolve().parent.parent / "model_assets"


def _user_model_dir() -> Path:
    try:
        return Path("~/.cache/splade-expander/model").expanduser()
    except RuntimeError:  # no home directory (some sandboxes): a relative path, never an import error
        return Path(".cache/splade-expander/model")


USER_MODEL_DIR = _user_model_dir()
MODEL_DIR = CHECKOUT_MODEL_DIR if (CHECKOUT_MODEL_DIR / "model.onnx").is_file() else USER_MODEL_DIR
WINDOW_TOKENS = 256  # tokens per model window, its framing ([CLS]/[SEP] or <s>/</s>) included
WINDOW_TOKENS_RANGE = (16, 512)
MAX_WINDOWS = 64  # windows one text may use (longer texts are refused)
TOKENS_PER_RUN = 128  # padded tokens per ONNX run (a longer window runs alone)
TOKENS_PER_RUN_RANGE = (16, 65536)
MAX_THREADS = 64


def available_cpus() -> int:
    """CPUs this process may run on (Lambda gives vCPUs in proportion to memory)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
