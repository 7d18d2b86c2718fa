"""Models past the zip, as container images under the real `sam local invoke`: a BERT with multilingual-v1's
105,879-word vocabulary and an XLM-R with 250,002 ids (reduced width, so CI stays fast), converted, built into an
image by scripts/function_image.sh on the project's offline base, and run through the image template
(scripts/template_image.py) on x86_64 and on arm64 under qemu. A GTE (doc-v3-gte's configuration, reduced width)
runs the same way: its base-size int8 artifact fits a zip (make bench), and the image holds that same artifact, so
this proves its graph under the Lambda runtime on both architectures. The full base-size image is `make bench`'s."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devkit import ROOT
from devkit.events import load_event, request_options, request_texts, same_vector
from devkit.gte import DOC_V3_GTE, SMALL, write_gte
from devkit.pretrained import Spec, write_pretrained
from devkit.sam import ARCHES, IMAGE_TEMPLATE, require_docker, sam_invoke
from scripts.template_image import image_template, source
from splade_convert import cli as convert_cli
from splade_expander.expander import Expander

pytestmark = [pytest.mark.integration, pytest.mark.docker]
MODELS: dict[str, Callable[[Path], Path]] = {
    "bert-105879": lambda dest: write_pretrained(dest, Spec("bert", vocab=105_879, seed=4)),
    "xlm-roberta-250002": lambda dest: write_pretrained(dest, Spec("xlm-roberta", vocab=250_002)),
    "gte-doc-v3": lambda dest: write_gte(dest, {**DOC_V3_GTE, **SMALL}, outliers=2, seed=3),
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each model converted to int8 (2 layers x 64), and the image template written."""
    require_docker()
    IMAGE_TEMPLATE.write_text(json.dumps(image_template(source()), indent=1))
    out = {}
    for name, write in MODELS.items():
        root = tmp_path_factory.mktemp(name)
        src = write(root / "src")
        args = ["--source", str(src), "--out", str(root / "model"), "--manifest", "--model-name", f"random-{name}"]
        assert convert_cli.main([*args, "--precision", "int8"]) == 0
        out[name] = root / "model"
    return out


@pytest.fixture(scope="module", params=[(m, a) for m in MODELS for a in ARCHES], ids=lambda p: f"{p[0]}-{p[1]}")
def image(request: pytest.FixtureRequest, converted: dict[str, Path]) -> Iterator[tuple[str, str, Path]]:
    """(tag, arch, model dir): the model's image for that architecture, removed afterwards."""
    name, arch = request.param
    tag = f"splade-image-test-{name}:{arch}"
    script = ROOT / "scripts" / "function_image.sh"
    run = subprocess.run(
        [str(script), arch, str(converted[name]), tag], capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "COMPILE_WITH": ""},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"image {tag} ({arch}" in run.stdout
    yield tag, arch, converted[name]
    rapid = tag.replace(f":{arch}", f":rapid-{arch}")
    subprocess.run(["docker", "image", "rm", "-f", tag, rapid], capture_output=True, check=False)


@pytest.mark.parametrize("event_name", ["http-api-v2-expand", "direct-expand"])
def test_the_image_returns_the_models_own_vectors(image: tuple[str, str, Path], event_name: str) -> None:
    """sam local invoke ApiFunction on the image gives, for the sample event's texts and options, the vectors the
    Expander gives on the same model directory, and names that model (its vocabulary size) in the response."""
    tag, arch, model_dir = image
    response, log = sam_invoke("ApiFunction", ROOT / "events" / f"{event_name}.json", arch, image=tag)
    event = load_event(event_name)
    expander = Expander(model_dir, threads=1)
    want = expander.expand(request_texts(event), **request_options(event))
    body = json.loads(response["body"]) if "statusCode" in response else response
    assert "statusCode" not in response or response["statusCode"] == 200, response
    assert (body["model"]["name"], body["model"]["vocab_size"]) == (expander.manifest["name"], expander.vocab_size)
    assert len(body["data"]) == len(want)
    for item, vec in zip(body["data"], want, strict=True):
        assert same_vector(item, vec.indices.tolist(), vec.values.tolist()), item
    assert f"Invoking Container created from {tag}" in log


BASE_MODELS = {
    "xlm-roberta-250002": Spec("xlm-roberta", layers=12, hidden=768, heads=12, outliers=6, vocab=250_002, seed=7),
    "bert-105879": Spec("bert", layers=12, hidden=768, heads=12, outliers=6, vocab=105_879, seed=7),
}


@pytest.mark.base_size
@pytest.mark.parametrize("name", list(BASE_MODELS))
def test_a_base_size_model_runs_as_an_image(tmp_path: Path, name: str) -> None:
    """Full base size (12 x 768, int8, 6 outlier channels): XLM-R's 250,002 ids are over the zip's 250 MB unzipped
    and ship only as an image, multilingual-v1's 105,879 words fit a zip only on arm64 without .pyc; as images,
    sam local invoke on x86_64 returns the Expander's vectors for the sample expand event."""
    require_docker("x86_64")
    IMAGE_TEMPLATE.write_text(json.dumps(image_template(source()), indent=1))
    src = write_pretrained(tmp_path / "src", BASE_MODELS[name])
    model = tmp_path / "model"
    args = ["--source", str(src), "--out", str(model), "--manifest", "--precision", "int8", "--layers", "int8"]
    assert convert_cli.main([*args, "--model-name", f"random-{name}-base"]) == 0
    tag = f"splade-image-test-{name}-base:x86_64"
    run = subprocess.run(
        [str(ROOT / "scripts" / "function_image.sh"), "x86_64", str(model), tag], capture_output=True, text=True,
        timeout=1800, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    unzipped = float(run.stdout.rsplit("/var/task ", 1)[1].split(" MiB")[0]) * 2**20
    if name == "xlm-roberta-250002":  # what only an image holds (mBERT's fits a zip on arm64 without .pyc only)
        assert unzipped > 262_144_000, unzipped
    try:
        response, _ = sam_invoke("ApiFunction", ROOT / "events" / "direct-expand.json", "x86_64", image=tag)
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag, tag.replace(":x86_64", ":rapid-x86_64")], check=False)
    expander = Expander(model, threads=1)
    event = load_event("direct-expand")
    want = expander.expand(request_texts(event), **request_options(event))
    assert response["model"]["vocab_size"] == expander.vocab_size == BASE_MODELS[name].vocab
    for item, vec in zip(response["data"], want, strict=True):
        assert same_vector(item, vec.indices.tolist(), vec.values.tolist()), item
