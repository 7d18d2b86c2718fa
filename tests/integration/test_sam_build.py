"""The real `sam build` (BuildMethod: makefile, no Docker) produces the artifact the template deploys, for both
architectures and both functions."""

from __future__ import annotations

import filecmp
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from devkit import MODEL_DIR, ROOT

pytestmark = pytest.mark.integration
SAM = ROOT / "build" / "venv-sam" / "bin" / "sam"
ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # e_machine: AArch64, x86-64
PLATFORM_TAG = {"arm64": "aarch64", "x86_64": "x86_64"}


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(same_tree(a / d, b / d) for d in cmp.common_dirs)


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_sam_build_makes_both_functions(tmp_path: Path, arch: str) -> None:
    """`sam build` runs make build-ApiFunction / build-IngestFunction: one python3.13 artifact for ARCH, twice."""
    if not SAM.exists():
        pytest.fail(f"{SAM} is missing: run `make sam-venv` (make test does it)")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "ARCH": arch}
    result = subprocess.run(
        [str(SAM), "build", "--build-dir", str(tmp_path / "sam"), "--parameter-overrides", f"Architecture={arch}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    api, ingest = tmp_path / "sam" / "ApiFunction", tmp_path / "sam" / "IngestFunction"
    assert (api / "handler" / "app.py").is_file()
    for name in ("model.onnx", "model.onnx.data"):  # the graph and its weights
        shipped = hashlib.sha256((MODEL_DIR / name).read_bytes()).hexdigest()
        assert hashlib.sha256((api / "model_assets" / name).read_bytes()).hexdigest() == shipped
    (binding,) = api.glob("onnxruntime/capi/onnxruntime_pybind11_state*.so")
    assert f"cpython-313-{PLATFORM_TAG[arch]}" in binding.name
    assert binding.read_bytes()[18:20] == ELF_MACHINE[arch].to_bytes(2, "little")
    assert same_tree(api, ingest)  # one artifact, copied from the Makefile's cache
    assert not (api / ".built").exists()
    built_template = (tmp_path / "sam" / "template.yaml").read_text()
    assert "CodeUri: ApiFunction" in built_template and "CodeUri: IngestFunction" in built_template
