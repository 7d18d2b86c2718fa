"""The deployment artifact's own record (``build.json`` beside ``handler/``, written by scripts/build_artifact.py):
the architecture and Python it was built for, and its model. Checked first at init, before numpy or ONNX Runtime
load, so an artifact built for the other architecture fails with a message that says what to change instead of an
ELF error from a compiled library. Without a record (a source checkout) there is nothing to check."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

RECORD = Path(__file__).resolve().parent.parent / "build.json"
ARCHITECTURES = {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}


def check(record: Path = RECORD, machine: str | None = None, python: str | None = None) -> dict[str, Any] | None:
    """The artifact's record, or None without one; RuntimeError when it was built for another machine or Python."""
    if not record.is_file():
        return None
    built: dict[str, Any] = json.loads(record.read_text())
    machine = machine or os.uname().machine
    running = ARCHITECTURES.get(machine, machine)
    python = python or f"{sys.version_info[0]}.{sys.version_info[1]}"
    if built["architecture"] not in ("host", running):
        raise RuntimeError(
            f"this deployment artifact was built for {built['architecture']}, but the function runs on {running}: "
            f"build and deploy one architecture (samconfig.toml: parameter_overrides Architecture={running}, which "
            f"`sam build` and `sam deploy` both read; or ARCH={running} with --parameter-overrides "
            f"Architecture={running})"
        )
    if built["python"] != python:
        raise RuntimeError(
            f"this deployment artifact was built for Python {built['python']}, but the runtime is Python {python}"
        )
    return built


build = check()
