"""A base-size model packaged as a zip and as a container image, in one run: the init the Lambda runtime emulator
measures (its ``INIT REPORT``, not the REPORT line's ``Init Duration``) and the sizes.

    python scripts/bench_image.py [--model-dir build/base/bert-int8] [--rounds 3]

Both run in Docker on the project's offline base image for this machine's architecture, under the same emulator
(SAM's aws-lambda-rie): the zip's /var/task bind-mounted read-only into the base image, as Lambda mounts a zip,
and the image built by scripts/function_image.sh with the same /var/task inside. Rounds alternate. Containers
publish on 127.0.0.1 only and are removed afterwards. Without Docker it prints one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devkit import ROOT
from devkit.emulator import FUNCTION_ENV, RIE
from scripts import bench_base, build_artifact

WORK = ROOT / "build" / "bench-image"
ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
BASE = f"splade-lambda-python:3.13-{ARCH}"
TAG = f"splade-bench-image:{ARCH}"
INVOKE = "/2015-03-31/functions/function/invocations"


def docker(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def build(model_dir: Path, python: str) -> tuple[Path, dict[str, float]]:
    """The artifact (with .pyc when ``python`` is a Python 3.13), its zip, and the image; their sizes in MB."""
    task = WORK / "task"
    args = ["--dest", str(task), "--arch", ARCH, "--model-dir", str(model_dir), "--image"]
    args += ["--compile-with", python] if python else []
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_artifact.py"), *args], check=True, capture_output=True
    )
    zipped = build_artifact.make_zip(task, WORK / "function.zip")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "COMPILE_WITH": python}
    script = ROOT / "scripts" / "function_image.sh"
    subprocess.run([str(script), ARCH, str(model_dir), TAG], check=True, capture_output=True, env=env)
    sizes = {
        "unzipped": build_artifact.tree_size(task) / 1e6,
        "zipped": zipped / 1e6,
        "image": int(docker("image", "inspect", "-f", "{{.Size}}", TAG).stdout) / 1e6,
        "base": int(docker("image", "inspect", "-f", "{{.Size}}", BASE).stdout) / 1e6,
    }
    return task, sizes


def init_ms(image: str, task: Path | None) -> float:
    """Start one container under the emulator, invoke it once, and read the emulator's INIT REPORT."""
    env = {**FUNCTION_ENV, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048", "AWS_REGION": "us-east-1"}
    cmd = ["run", "-d", "-p", "127.0.0.1::8080", "-v", f"{RIE}:/rie:ro", "--entrypoint", "/rie"]
    cmd += [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]
    cmd += ["-v", f"{task}:/var/task:ro"] if task is not None else []
    container = docker(*cmd, image, "/var/runtime/bootstrap", "handler.app.lambda_handler").stdout.strip()
    try:
        port = docker("port", container, "8080/tcp").stdout.split(":")[-1].strip()
        event = (ROOT / "events" / "direct-expand.json").read_bytes()
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}{INVOKE}", data=event, method="POST")
                with urllib.request.urlopen(request, timeout=120) as response:
                    json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        logs = docker("logs", container).stdout + docker("logs", container).stderr
        found = re.findall(r"INIT REPORT\(durationMs: ([0-9.]+)\)", logs)
        if not found:
            raise RuntimeError(f"no INIT REPORT in the emulator's log:\n{logs[-2000:]}")
        return float(found[0])
    finally:
        docker("rm", "-f", container)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the random BERT-base of make bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile-with", default="", help="a Python 3.13 for the .pyc (make bench passes PYC_PYTHON)")
    args = parser.parse_args(argv)
    if shutil.which("docker") is None or docker("info").returncode != 0 or docker("image", "inspect", BASE).returncode:
        print(f"bench_image: skipped (Docker is not answering or {BASE} is missing: make sam-images)")
        return 0
    model_dir = args.model_dir or bench_base.prepare("bert")["int8"]
    WORK.mkdir(parents=True, exist_ok=True)
    task, sizes = build(model_dir, args.compile_with)
    times: dict[str, list[float]] = {"zip": [], "image": []}
    try:
        for _ in range(args.rounds):
            times["zip"].append(init_ms(BASE, task))
            times["image"].append(init_ms(TAG, None))
    finally:
        docker("image", "rm", "-f", TAG)
    zip_ms, image_ms = statistics.median(times["zip"]), statistics.median(times["image"])
    name = json.loads((model_dir / "manifest.json").read_text()).get("name", model_dir.name)
    print(f"| {name} ({ARCH}): zip vs container image | zip | image |\n|---|---|---|")
    print(f"| init under the emulator (INIT REPORT, median of {args.rounds}, alternated) | {zip_ms:.0f} ms | "
          f"{image_ms:.0f} ms ({image_ms / zip_ms:.2f}x) |")  # fmt: skip
    print(f"| size | {sizes['zipped']:.1f} MB zipped, {sizes['unzipped']:.1f} MB unzipped | {sizes['image']:.1f} MB "
          f"image ({sizes['base']:.1f} MB of it the base) |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
