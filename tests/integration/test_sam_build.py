"""The real `sam build` (BuildMethod: makefile, no Docker) produces the artifact the template deploys, for both
architectures and both functions."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from devkit import FP32_DIR, MODEL_DIR, ROOT

pytestmark = pytest.mark.integration
SAM = ROOT / "build" / "venv-sam" / "bin" / "sam"
ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # e_machine: AArch64, x86-64
PLATFORM_TAG = {"arm64": "aarch64", "x86_64": "x86_64"}


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(same_tree(a / d, b / d) for d in cmp.common_dirs)


def sam_build(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `sam build` in the checkout, with ``env`` added to this process's environment (MODEL_DIR unset)."""
    if not SAM.exists():
        pytest.fail(f"{SAM} is missing: run `make sam-venv` (make test does it)")
    base = {k: v for k, v in os.environ.items() if k not in ("MODEL_DIR", "ARCH", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(
        [str(SAM), "build", *args],
        cwd=ROOT,
        env={**base, "SAM_CLI_TELEMETRY": "0", **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_sam_build_makes_both_functions(tmp_path: Path, arch: str) -> None:
    """`sam build` runs make build-ApiFunction / build-IngestFunction: one python3.13 artifact for ARCH, twice."""
    result = sam_build("--build-dir", str(tmp_path / "sam"), "--parameter-overrides", f"Architecture={arch}", ARCH=arch)
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


def write_samconfig(path: Path, model_dir: Path | str, arch: str) -> Path:
    """The repository's samconfig.toml with another model_dir and Architecture, as a user would edit it."""
    text = (ROOT / "samconfig.toml").read_text()
    text = text.replace('model_dir = "model_assets"', f'model_dir = "{model_dir}"')
    text = text.replace('"Architecture=arm64"', f'"Architecture={arch}"')
    assert f'"{model_dir}"' in text and f"Architecture={arch}" in text
    path.write_text(text)
    return path


def test_sam_build_ships_the_model_and_architecture_named_in_samconfig(tmp_path: Path) -> None:
    """With model_dir and Architecture set once in the deploy configuration (a converted fp32 model, x86_64) and
    nothing else, the real `sam build` ships that model (its manifest sha256 in the built function) for that
    architecture, and records both in build.json; the default configuration ships splade-tiny."""
    config = write_samconfig(tmp_path / "samconfig.toml", FP32_DIR, "x86_64")
    result = sam_build("--config-file", str(config), "--build-dir", str(tmp_path / "sam"), SAMCONFIG=str(config))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    converted = json.loads((FP32_DIR / "manifest.json").read_text())["model_sha256"]
    bundled = json.loads((MODEL_DIR / "manifest.json").read_text())["model_sha256"]
    assert converted != bundled
    for function in ("ApiFunction", "IngestFunction"):
        built = tmp_path / "sam" / function
        assert json.loads((built / "model_assets" / "manifest.json").read_text())["model_sha256"] == converted
        record = json.loads((built / "build.json").read_text())
        assert record["architecture"] == "x86_64" and record["model_sha256"] == converted
        (binding,) = built.glob("onnxruntime/capi/onnxruntime_pybind11_state*.so")
        assert binding.read_bytes()[18:20] == ELF_MACHINE["x86_64"].to_bytes(2, "little")
    assert f"artifact: x86_64, model {FP32_DIR} ({converted})" in result.stderr
    assert "architecture: x86_64" in result.stderr  # SAM's own build reads the same overrides


def test_sam_build_refuses_a_missing_model_naming_it(tmp_path: Path) -> None:
    """A model_dir without a converted model fails the build loudly, naming the directory and make convert."""
    missing = tmp_path / "not-converted"
    config = write_samconfig(tmp_path / "samconfig.toml", missing, "arm64")
    result = sam_build("--config-file", str(config), "--build-dir", str(tmp_path / "sam"), SAMCONFIG=str(config))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"MODEL_DIR={missing}" in output and "make convert" in output
