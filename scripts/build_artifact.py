"""Build the Lambda deployment artifact: the library and the function (by folder), model assets, the trimmed
runtime closure.

    python scripts/build_artifact.py --dest DIR --arch arm64 --python-version 3.13   (what `sam build` ships)
    python scripts/build_artifact.py --dest DIR --host                               (runs on this machine)

Dependencies are installed with ``pip install --no-deps --only-binary=:all: --target`` from requirements.txt,
which pins the whole runtime closure (tokenizers does not need huggingface_hub to load a local file, and
onnxruntime's sympy/protobuf/flatbuffers are only for its offline tools). For another platform every
manylinux tag is listed, since pip does not widen them. Then tests, stubs, caches and onnxruntime's offline
tools are trimmed; numpy's shared libraries are never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL_FILES = ("model.onnx", "tokenizer.json", "manifest.json")
# The graph's weights (an older build keeps them in model.onnx), inference-free queries (make idf), make eval's figures
OPTIONAL_MODEL_FILES = ("model.onnx.data", "idf.json", "eval.json")
QUERY_MODEL_DIR = "query"  # an asymmetric query model: its own model.onnx + tokenizer.json
LAMBDA_UNZIPPED_LIMIT = 262_144_000  # 250 MB: the function code and its layers, unzipped
LAMBDA_DIRECT_UPLOAD_LIMIT = 52_428_800  # 50 MB: a zip uploaded directly (larger ones go through S3)
MANYLINUX = ["manylinux2014", *(f"manylinux_2_{minor}" for minor in range(17, 35))]
ARCH_TAGS = {"arm64": "aarch64", "x86_64": "x86_64"}

# Paths (relative to the artifact root) removed after install: offline tools, tests, typing stubs.
TRIM_DIRS = (
    "onnxruntime/tools",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/datasets",
    "onnxruntime/backend",
    "numpy/f2py",
    "numpy/_pyinstaller",
    # Loaded only on attribute access (numpy's lazy __getattr__); nothing in the handler, ORT, tokenizers or
    # Powertools touches them (checked with sys.modules after HTTP and ingest calls). 6 MB unzipped, 2.5 MB zipped.
    "numpy/random",
    "numpy/polynomial",
    "numpy/ma",
    "numpy/fft",
    "numpy/tests",
    "numpy/testing",
    "tokenizers/tools",
    "aws_lambda_powertools/utilities/parser",
    "aws_lambda_powertools/utilities/data_masking",
    "aws_lambda_powertools/utilities/idempotency",
    "aws_lambda_powertools/utilities/feature_flags",
    "aws_lambda_powertools/utilities/streaming",
    "aws_lambda_powertools/utilities/parameters",
    "aws_lambda_powertools/utilities/kafka",
    # Swagger UI's JavaScript bundle (served only by enable_swagger(), which the function never calls), 1.7 MB.
    "aws_lambda_powertools/event_handler/openapi/swagger_ui",
    # dateutil's time-zone tarball (dateutil.zoneinfo; botocore parses timestamps with dateutil.tz only).
    "dateutil/zoneinfo",
)
# The function ships its own boto3/botocore: the runtime's copy depends on the region and the runtime's update, and
# S3's conditional writes (IfMatch on PutObject and CompleteMultipartUpload) need botocore >= 1.35.69. Only the
# service models the function calls are kept (botocore's data for every AWS service is ~30 MB unzipped).
BOTOCORE_SERVICES = ("s3", "sqs", "sts", "secretsmanager")  # secretsmanager: the API key (ApiAuth=apikey)
SERVICE_DATA_DIRS = ("botocore/data", "boto3/data")
TRIM_GLOBS = (
    "onnxruntime/capi/libonnxruntime.so*",  # the C-API library; the Python binding links ORT statically
    # numpy's test extension modules (only numpy's conftest.py and testing/print_coercion_tables.py import them;
    # _simd is the SIMD test bridge): 1.6 MB unzipped on arm64.
    "numpy/_core/_multiarray_tests.*",
    "numpy/_core/_operand_flag_tests.*",
    "numpy/_core/_rational_tests.*",
    "numpy/_core/_struct_ufunc_tests.*",
    "numpy/_core/_umath_tests.*",
    "numpy/_core/_simd.*",
    "numpy/conftest.py",
)
TRIM_DIR_NAMES = ("__pycache__", "tests")
TRIM_FILE_NAMES = ("RECORD",)  # the installer's file lists (*.dist-info/RECORD); METADATA and versions stay
# With .pyc compiled for the runtime, these pure-Python packages (the AWS SDK, imported on the ingest path only)
# ship their bytecode without the sources, which keeps the arm64 zip within 40 MB (0.7 MB zipped); their
# tracebacks then show no source lines.
SOURCELESS = ("botocore", "boto3", "s3transfer", "urllib3", "dateutil")
TRIM_SUFFIXES = (".pyi", ".pyc", ".pxd", ".h")


def pip_install(dest: Path, arch: str | None, python_version: str | None) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--no-deps"]
    cmd += ["--only-binary=:all:", "--no-compile", "--target", str(dest), "-r", str(ROOT / "requirements.txt")]
    if arch is not None:
        machine = ARCH_TAGS[arch]
        for tag in MANYLINUX:
            cmd += ["--platform", f"{tag}_{machine}"]
        cmd += ["--implementation", "cp", "--python-version", python_version or "3.13"]
    subprocess.run(cmd, check=True)


def _trimmed_file(path: Path) -> bool:
    if path.suffix in TRIM_SUFFIXES and "numpy.libs" not in path.parts:
        return True
    return path.name in TRIM_FILE_NAMES and path.parent.name.endswith(".dist-info")


def trim(dest: Path) -> None:
    for rel in TRIM_DIRS:
        shutil.rmtree(dest / rel, ignore_errors=True)
    for rel in SERVICE_DATA_DIRS:
        for service in (dest / rel).iterdir() if (dest / rel).is_dir() else ():
            if service.is_dir() and service.name not in BOTOCORE_SERVICES:
                shutil.rmtree(service)
    for pattern in TRIM_GLOBS:
        for path in dest.glob(pattern):
            path.unlink()
    for path in sorted(dest.rglob("*"), reverse=True):
        if path.is_dir() and path.name in TRIM_DIR_NAMES and "numpy.libs" not in path.parts:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and _trimmed_file(path):
            path.unlink()
    shutil.rmtree(dest / "bin", ignore_errors=True)


# What the zip ships of ours, by folder: the library and the function (splade_tools, devkit and scripts never).
SHIPPED_PACKAGES = ("splade_expander", "handler")


def copy_sources(dest: Path, model_dir: Path = ROOT / "model_assets") -> None:
    """The library and the function (SHIPPED_PACKAGES, every module, no caches), and ``model_dir`` as the zip's
    ``model_assets/`` (with its idf.json and query/ model)."""
    for package in SHIPPED_PACKAGES:
        for src in sorted((ROOT / package).rglob("*.py")):
            target = dest / src.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    (dest / "model_assets").mkdir()
    for name in SHIPPED_MODEL_FILES:
        src = model_dir / name
        if not src.is_file():
            hint = "run `make model`" if model_dir == ROOT / "model_assets" else "convert it with `make convert`"
            raise SystemExit(f"{src} is missing: {hint}")
        shutil.copy2(src, dest / "model_assets" / name)
    for name in OPTIONAL_MODEL_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, dest / "model_assets" / name)
    query = model_dir / QUERY_MODEL_DIR
    if (query / "model.onnx").is_file():
        (dest / "model_assets" / QUERY_MODEL_DIR).mkdir()
        for name in (*SHIPPED_MODEL_FILES, "model.onnx.data"):
            if (query / name).is_file():
                shutil.copy2(query / name, dest / "model_assets" / QUERY_MODEL_DIR / name)


NOT_COMPILED = r"(aws_xray_sdk|wrapt)/"  # imported only with tracing on (EnableTracing), which the docs price in


def compile_bytecode(dest: Path, python: str, version: str) -> int:
    """Byte-compile every module in ``dest`` with ``python`` (which must be Python ``version``), as
    unchecked-hash .pyc: Lambda's /var/task is read-only, so without them every cold start compiles numpy,
    Powertools and the handler from source (~270 ms of a 620 ms init under the emulator), and timestamp-based
    .pyc would not match the zip's fixed dates. Returns the number of .pyc files written."""
    probe = [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    try:
        got = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit(f"--compile-with {python}: that Python does not run") from None
    if got != version:
        raise SystemExit(f"{python} is Python {got}; the artifact's .pyc must be compiled by Python {version}")
    cmd = [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", "-x", NOT_COMPILED]
    subprocess.run([*cmd, "-s", str(dest), "-p", "/var/task", str(dest)], check=True)
    make_sourceless(dest)
    return sum(1 for _ in dest.rglob("*.pyc"))


def make_sourceless(dest: Path) -> None:
    """For the SOURCELESS packages, each module's compiled ``__pycache__/m.cpython-XY.pyc`` replaces ``m.py`` as
    ``m.pyc`` (Python imports a .pyc in the source's place when there is no source)."""
    for package in SOURCELESS:
        for source in sorted((dest / package).rglob("*.py")):
            (compiled,) = (source.parent / "__pycache__").glob(f"{source.stem}.cpython-*.pyc")
            compiled.replace(source.with_suffix(".pyc"))
            source.unlink()
        for cache in (dest / package).rglob("__pycache__"):
            cache.rmdir()


BUILD_RECORD = "build.json"  # beside handler/: what this artifact was built for (handler/artifact.py checks it)


def write_build_record(dest: Path, arch: str, python_version: str, model_dir: Path) -> dict[str, str]:
    """Record the artifact's architecture, Python and model, so the function can refuse a mismatch at init."""
    manifest = json.loads((dest / "model_assets" / "manifest.json").read_text())
    record = {
        "architecture": arch,
        "python": python_version,
        "model_dir": str(model_dir),
        "model_sha256": str(manifest.get("model_sha256") or manifest.get("sha256", "")),
    }
    (dest / BUILD_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return record


def check_lambda_limits(unzipped: int, zipped: int | None) -> str | None:
    """None when the artifact deploys as is; a note when it must go through S3; SystemExit over 250 MB."""
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        raise SystemExit(
            f"the artifact is {unzipped / 1e6:.1f} MB unzipped, over Lambda's 250 MB limit "
            f"({LAMBDA_UNZIPPED_LIMIT} bytes) for a zip deployment: deploy it as a container image "
            "(make image MODEL_DIR=<this model> ARCH=<arch>, then template-image.yaml: docs/deploy.md), or use an "
            "int8 model (make convert PRECISION=int8 LAYERS=int8) or a smaller checkpoint"
        )
    if zipped is not None and zipped > LAMBDA_DIRECT_UPLOAD_LIMIT:
        return (
            f"note: the zip is {zipped / 1e6:.1f} MB, over the 50 MB of a direct upload: deploy it through S3 "
            "(`sam deploy` uploads to its S3 bucket first; `aws lambda update-function-code --s3-bucket ...`)"
        )
    return None


def make_zip(src: Path, zip_path: Path) -> int:
    """A deterministic zip of ``src`` (sorted entries, fixed timestamps, exec bits kept)."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(src)), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    return zip_path.stat().st_size


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--arch", choices=sorted(ARCH_TAGS), default="arm64")
    parser.add_argument("--python-version", default="3.13")
    parser.add_argument("--host", action="store_true", help="build for this machine and interpreter")
    parser.add_argument("--zip", type=Path, help="also write a deterministic zip here and report its size")
    parser.add_argument(
        "--image", action="store_true", help="for a container image (scripts/function_image.sh): no 250 MB zip limit"
    )
    parser.add_argument("--model-dir", type=Path, default=ROOT / "model_assets", help="the model to ship")
    parser.add_argument(
        "--compile-with", default="", help="a python of the target version: ship unchecked-hash .pyc (faster init)"
    )
    args = parser.parse_args(argv)

    dest: Path = args.dest.resolve()
    if dest.exists():
        for child in dest.iterdir():  # SAM owns ARTIFACTS_DIR itself: empty it, keep it
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    copy_sources(dest, args.model_dir.resolve())
    pip_install(dest, None if args.host else args.arch, None if args.host else args.python_version)
    trim(dest)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}" if args.host else args.python_version
    record = write_build_record(dest, "host" if args.host else args.arch, version, args.model_dir.resolve())
    print(f"model {record['model_dir']} (sha256 {record['model_sha256'][:12]}...)")
    if args.compile_with:
        print(f"compiled {compile_bytecode(dest, args.compile_with, version)} modules with {args.compile_with}")
    else:
        print(
            f"note: no Python {version} given (--compile-with): the artifact ships no .pyc, so every cold start "
            "compiles its modules from source"
        )
    unzipped = tree_size(dest)
    target = "host" if args.host else f"{args.arch} / cp{args.python_version.replace('.', '')}"
    print(f"artifact {dest} ({target}): {unzipped / 1e6:.1f} MB unzipped")
    if args.image:  # a container image may be 10 GB
        return 0
    check_lambda_limits(unzipped, None)
    if args.zip:
        zipped = make_zip(dest, args.zip)
        bundled = args.model_dir.resolve() == (ROOT / "model_assets").resolve()
        targets = " (splade-tiny targets: <= 40 MB zipped, <= 130 MB unzipped)" if bundled else ""
        print(f"zip {args.zip}: {zipped / 1e6:.1f} MB zipped{targets}")
        note = check_lambda_limits(unzipped, zipped)
        if note:
            print(note)
    os.sync()
    return 0


if __name__ == "__main__":
    sys.exit(main())
