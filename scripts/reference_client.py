"""The transformers + torch reference, driven over a JSON-lines pipe in its own virtualenv (scripts/bench_reference.py
runs there): make bench and scripts/bench_base.py both measure against it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from devkit import ROOT, SOURCE_DIR

BASE_ENV = dict(os.environ)


class Reference:
    """transformers + torch in its own virtualenv, driven over a JSON-lines pipe."""

    def __init__(self, python: str, source: Path = SOURCE_DIR, activation: str = "log1p_relu") -> None:
        self.proc = subprocess.Popen(
            [python, str(ROOT / "scripts" / "bench_reference.py"), str(source), activation],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            # PASSIVE: torch's OpenMP workers must not spin on a core while the ONNX systems are measured.
            env={**BASE_ENV, "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"},
        )
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("reference process exited")
        data: dict[str, Any] = json.loads(line)
        return data

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
