"""Lambda's size limits for a zip deployment, checked by `make build`: over 250 MB unzipped is refused with a
clear message; over 50 MB zipped is accepted with a note that the deploy goes through S3; a converted model
directory ships as the zip's model_assets/ with its idf.json and query/ model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devkit import MODEL_DIR, ROOT
from scripts import build_artifact


def test_over_250_mb_unzipped_is_refused_naming_the_limit() -> None:
    """One byte over 262,144,000 unzipped: SystemExit that names Lambda's 250 MB limit and what to do (make image,
    the container-image path, or int8)."""
    build_artifact.check_lambda_limits(build_artifact.LAMBDA_UNZIPPED_LIMIT, None)
    with pytest.raises(SystemExit, match="over Lambda's 250 MB limit") as refused:
        build_artifact.check_lambda_limits(build_artifact.LAMBDA_UNZIPPED_LIMIT + 1, None)
    assert "int8" in str(refused.value) and "make image MODEL_DIR=" in str(refused.value)


def test_a_zip_over_50_mb_must_go_through_s3() -> None:
    """Up to 52,428,800 bytes zipped: no note; above: a note naming S3 and sam deploy."""
    assert build_artifact.check_lambda_limits(100_000_000, build_artifact.LAMBDA_DIRECT_UPLOAD_LIMIT) is None
    note = build_artifact.check_lambda_limits(200_000_000, build_artifact.LAMBDA_DIRECT_UPLOAD_LIMIT + 1)
    assert note is not None and "through S3" in note and "sam deploy" in note


def test_a_model_directory_ships_with_its_idf_and_query_model(tmp_path: Path) -> None:
    """copy_sources(model_dir): model.onnx and its weights, tokenizer.json, manifest.json, idf.json and query/ land
    in the artifact's model_assets/; the library and the function ship whole, by folder, and nothing else of ours
    (not the local tools, devkit or scripts); a directory without model.onnx is refused with the convert hint."""
    model = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model)
    (model / "idf.json").write_text("{}")
    shutil.copytree(MODEL_DIR, model / "query")
    build_artifact.copy_sources(tmp_path / "artifact", model)
    shipped = sorted(p.relative_to(tmp_path / "artifact" / "model_assets").as_posix()
                     for p in (tmp_path / "artifact" / "model_assets").rglob("*") if p.is_file())  # fmt: skip
    assert {"model.onnx", "model.onnx.data", "tokenizer.json", "manifest.json", "idf.json"} <= set(shipped)
    assert {"query/model.onnx", "query/model.onnx.data", "query/tokenizer.json"} <= set(shipped)
    ours = sorted(p.relative_to(tmp_path / "artifact").as_posix() for p in (tmp_path / "artifact").rglob("*.py"))
    checkout = sorted(
        p.relative_to(ROOT).as_posix()
        for package in ("splade_expander", "handler")
        for p in (ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    )
    assert ours == checkout
    assert {"handler/app.py", "handler/ingest/objects.py", "splade_expander/expander.py"} <= set(ours)
    assert not any(p.startswith(("splade_tools/", "devkit/", "scripts/")) for p in ours)
    (model / "model.onnx").unlink()
    with pytest.raises(SystemExit, match="make convert"):
        build_artifact.copy_sources(tmp_path / "again", model)
