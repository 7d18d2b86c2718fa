"""The real `sam build` (BuildMethod: makefile, no Docker) produces the arm64 artifact the template deploys."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import MODEL_DIR, ROOT

pytestmark = pytest.mark.integration
SAM = ROOT / "build" / "venv-sam" / "bin" / "sam"


def test_sam_build_makes_the_arm64_artifact(tmp_path: Path) -> None:
    """`sam build` runs make build-SpladeFunction and yields handler + model + aarch64 dependencies."""
    if not SAM.exists():
        pytest.fail(f"{SAM} is missing: run `make sam-venv` (make test does it)")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run(
        [str(SAM), "build", "--build-dir", str(tmp_path / "sam")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    artifact = tmp_path / "sam" / "SpladeFunction"
    assert (artifact / "handler" / "app.py").is_file()
    shipped = hashlib.sha256((MODEL_DIR / "model.onnx").read_bytes()).hexdigest()
    assert hashlib.sha256((artifact / "model_assets" / "model.onnx").read_bytes()).hexdigest() == shipped
    (binding,) = artifact.glob("onnxruntime/capi/onnxruntime_pybind11_state*.so")
    assert "cpython-312-aarch64" in binding.name
    assert binding.read_bytes()[18:20] == (183).to_bytes(2, "little")  # ELF e_machine: AArch64
    built_template = (tmp_path / "sam" / "template.yaml").read_text()
    assert "CodeUri: SpladeFunction" in built_template
