"""`sam local` under Docker: availability checks, `sam local invoke`, `start-lambda` / `start-api` services, and a
relay that lets containers reach a loopback server on the host through the bridge gateway, and nothing else.

Networking (the rule for every test here): clients on the host contact only 127.0.0.1 (SAM publishes container
ports there); containers reach the host only at the Docker bridge gateway, where a relay forwards to a
loopback-only server. Nothing contacts any other address.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from . import ROOT
from .servers import free_port, wait_for_port

SAM = ROOT / "build" / "venv-sam" / "bin" / "sam"
ARCHES = ("x86_64", "arm64")
# arm64 runs under qemu-user: init + first vector take ~20 s there (2 s native), past the API function's 29 s
# limit on a busy machine. The emulated runs get more time; these are emulated figures, not performance.
EMULATED_TIMEOUT_S = 300


def image_for(arch: str) -> str:
    """The invoke image: INVOKE_IMAGE names another one (the real public.ecr.aws image on a user's machine)."""
    return os.environ.get("INVOKE_IMAGE") or f"splade-lambda-python:3.13-{arch}"


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def require_docker(arch: str | None = None) -> None:
    """Skip (fail under CI=true) unless Docker answers, `sam build` ran and the invoke images exist."""

    def missing(reason: str) -> None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}; `make test` sets Docker up as root on Linux")
        pytest.skip(reason)

    if shutil.which("docker") is None or _docker("info").returncode != 0:
        missing("Docker is not answering (make test starts it when run as root on Linux)")
    for a in ARCHES if arch is None else (arch,):
        if not (ROOT / "build" / f"sam-{a}" / "template.yaml").is_file():
            missing(f"build/sam-{a} is missing: run `make sam-build`")
        if _docker("image", "inspect", image_for(a)).returncode != 0:
            missing(f"image {image_for(a)} is missing: run `make sam-images`")


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge (what host-gateway means), the only way containers reach
    the host. Docker leaves Gateway out of the default bridge's IPAM config, so read the bridge interface."""
    out = _docker("network", "inspect", "bridge", "-f", "{{json .}}")
    if out.returncode != 0:
        raise RuntimeError(f"cannot inspect the bridge network: {out.stderr}")
    network = json.loads(out.stdout)
    for config in network.get("IPAM", {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
    device = network.get("Options", {}).get("com.docker.network.bridge.name", "docker0")
    ip = subprocess.run(["ip", "-o", "-4", "addr", "show", device], capture_output=True, text=True, check=False)
    if ip.returncode != 0 or " inet " not in ip.stdout:
        raise RuntimeError(f"no IPv4 address on {device}: {ip.stderr}")
    return ip.stdout.split(" inet ", 1)[1].split("/", 1)[0]


class GatewayRelay:
    """Listen on the bridge gateway and forward each connection to a server on 127.0.0.1."""

    def __init__(self, target_port: int, host: str | None = None) -> None:
        self.target_port = target_port
        self.host = host or bridge_gateway()
        self.listener = socket.create_server((self.host, 0))
        self.port: int = self.listener.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop = True
        self.listener.close()


class DnsSink:
    """A DNS server on the bridge gateway's port 53 that answers every query REFUSED and records the names asked:
    the resolver containers use (scripts/docker_host.sh starts dockerd with ``--dns`` there), so a test sees every
    name a container tries to reach. Needs root (port 53)."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or bridge_gateway()
        self.names: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.host, 53))
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def question(packet: bytes) -> str:
        """The QNAME of a DNS query (RFC 1035 4.1.2: length-prefixed labels after the 12-byte header)."""
        labels, i = [], 12
        while i < len(packet) and packet[i]:
            labels.append(packet[i + 1 : i + 1 + packet[i]].decode("ascii", "replace"))
            i += 1 + packet[i]
        return ".".join(labels).lower()

    def _serve(self) -> None:
        while True:
            try:
                packet, peer = self.sock.recvfrom(512)
            except OSError:
                return
            if len(packet) < 12:
                continue
            self.names.append(self.question(packet))
            flags = bytes([0x80 | (packet[2] & 0x79), 0x80 | 5])  # a response, REFUSED (rcode 5)
            with suppress(OSError):
                self.sock.sendto(packet[:2] + flags + packet[4:12] + packet[12:], peer)

    def close(self) -> None:
        self.sock.close()


def env_file(path: Path, **variables: str) -> Path:
    """A `--env-vars` file setting these variables in every function (SAM only passes declared ones)."""
    path.write_text(json.dumps({"Parameters": variables}))
    return path


IMAGE_TEMPLATE = ROOT / "build" / "template-image.yaml"  # make image writes it (scripts/template_image.py)


def _local_args(arch: str, env_vars: Path | None, image: str | None = None) -> list[str]:
    """The zip built by `sam build` on the invoke image, or (``image``) the image template running that image."""
    overrides = f"Architecture={arch}" + (f" ApiTimeout={EMULATED_TIMEOUT_S}" if arch == "arm64" else "")
    if image is None:
        args = ["--template", str(ROOT / "build" / f"sam-{arch}" / "template.yaml"), "--invoke-image", image_for(arch)]
    else:
        args, overrides = ["--template", str(IMAGE_TEMPLATE)], f"{overrides} ImageUri={image}"
    args += ["--skip-pull-image", "--parameter-overrides", overrides]
    return args + (["--env-vars", str(env_vars)] if env_vars else [])


def _sam_env() -> dict[str, str]:
    # SAM hands the credentials of its own session to the containers: the ingest role's, which the session's
    # IAM-enforced moto_server checks (devkit/aws.py puts them in os.environ); AWS is never reached.
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    creds = {name: os.environ.get(name) or "local" for name in names}
    return {**os.environ, **creds, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}


def sam_invoke(
    function: str, event: Path, arch: str, env_vars: Path | None = None, image: str | None = None
) -> tuple[Any, str]:
    """The real `sam local invoke` (of the zip, or of the container ``image`` through the image template): (the
    function's response, SAM's and the function's log on stderr)."""
    cmd = [str(SAM), "local", "invoke", function, "--event", str(event), *_local_args(arch, env_vars, image)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=_sam_env(), timeout=600, check=False, cwd=ROOT)
    if result.returncode != 0 or not result.stdout.strip():
        raise AssertionError(f"sam local invoke failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


@contextmanager
def sam_service(command: str, arch: str, env_vars: Path | None, log: Path) -> Iterator[str]:
    """`sam local start-lambda` or `start-api` on a free 127.0.0.1 port, warm containers; yields its base URL."""
    port = free_port()
    cmd = [str(SAM), "local", command, "--host", "127.0.0.1", "--port", str(port), *_local_args(arch, env_vars)]
    cmd += ["--warm-containers", "EAGER", "--container-host-interface", "127.0.0.1"]
    before = _sam_containers()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_sam_env(), cwd=ROOT)
    try:
        try:
            wait_for_port(port, timeout=300, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"sam local {command}: {exc}\n{log.read_text()[-3000:]}") from None
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)  # SAM stops its warm containers on Ctrl-C
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        leftover = _sam_containers() - before  # what SAM started and did not stop
        if leftover:
            _docker("rm", "-f", *sorted(leftover))


def _sam_containers() -> set[str]:
    out = _docker("ps", "-aq", "--filter", "label=sam.cli.container.type")
    return set(out.stdout.split())
