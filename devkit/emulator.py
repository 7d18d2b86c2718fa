"""The built artifact under the real Lambda Runtime Interface Emulator, and a local S3 with the sample objects.

The emulator (``aws-lambda-rie-x86_64``, shipped inside the ``aws-sam-cli`` wheel) runs
``python -S -m awslambdaric handler.app.lambda_handler`` with only the artifact (like ``/var/task``) and a
runtime directory holding awslambdaric and boto3 (like ``/var/runtime``) on ``PYTHONPATH``, in a controlled
environment. Emulator traits handled here: it answers HTTP 200 even for function errors (read the body),
it cannot take concurrent requests (one emulator, one request at a time), it has no ``--help``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from handler.config import Settings

from . import INGEST_BUCKET, OUTPUT_BUCKET, ROOT, SAMPLE_OBJECTS
from .aws import create_buckets
from .servers import MotoServer, free_port, stop, wait_for_port

RIE = ROOT / "build" / "rie" / f"aws-lambda-rie-{'arm64' if platform.machine() in ('aarch64', 'arm64') else 'x86_64'}"
ARTIFACT = ROOT / "build" / "artifact-host"
RUNTIME = ROOT / "build" / "runtime-host"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"

# The library variables the template sets (tests/unit/test_config.py checks them against template.yaml).
POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "splade-expander",
    "POWERTOOLS_METRICS_NAMESPACE": "SpladeExpander",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
# The function environment as template.yaml sets it, from the declarations in handler/config.py: every default,
# the local output bucket, no ingest queue (the template points INGEST_QUEUE_URL at its queue).
FUNCTION_ENV = {**Settings.variables(deployed_only=True), "OUTPUT_BUCKET": OUTPUT_BUCKET, **POWERTOOLS_ENV}


class Emulator:
    """One emulator process serving one function; ``invoke`` sends one event at a time."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        artifact: Path = ARTIFACT,
        runtime: Path = RUNTIME,
        timeout_s: int = 120,
        memory_mb: int = 2048,
    ) -> None:
        for path in (RIE, artifact / "handler" / "app.py", runtime / "awslambdaric"):
            if not path.exists():
                raise SystemExit(f"{path} is missing: run `make build-host`")
        self.port = free_port()
        self.log_file = tempfile.NamedTemporaryFile(prefix="rie-", suffix=".log", delete=False)  # noqa: SIM115
        self.lock = threading.Lock()
        python = getattr(sys, "_base_executable", sys.executable)
        environment = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "HOME": tempfile.gettempdir(),
            "PYTHONPATH": f"{artifact}:{runtime}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LAMBDA_TASK_ROOT": str(artifact),
            "LAMBDA_RUNTIME_DIR": str(runtime),
            "AWS_LAMBDA_FUNCTION_NAME": "splade-expander",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            **FUNCTION_ENV,
            **(env or {}),
        }
        cmd = [
            str(RIE),
            "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
            "--runtime-api-address", f"127.0.0.1:{free_port()}",
            python, "-S", "-m", "awslambdaric", "handler.app.lambda_handler",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=environment, cwd=artifact, stdout=self.log_file, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, timeout=20, proc=self.proc)
        except RuntimeError:
            raise RuntimeError(f"emulator exited ({self.proc.returncode}):\n{self.logs()[-3000:]}") from None

    def invoke_raw(self, payload: bytes, timeout: float = 180.0) -> tuple[int, bytes]:
        """POST one invocation; returns (HTTP status, response body)."""
        with self.lock:  # the emulator panics on concurrent requests
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}{INVOKE_PATH}", data=payload, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

    def invoke(self, event: Any) -> Any:
        """Invoke with a JSON event; returns the decoded response (a function error is a dict with errorType)."""
        status, body = self.invoke_raw(json.dumps(event).encode())
        if status != 200:
            raise RuntimeError(f"emulator answered HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def logs(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def init_durations_ms(self) -> list[float]:
        return [float(m) for m in re.findall(r"INIT REPORT\(durationMs: ([0-9.]+)\)", self.logs())]

    def runtime_pids(self) -> list[int]:
        """PIDs of the function's runtime process(es): the emulator's children (any of its threads)."""
        pids = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            pids += [int(pid) for pid in task.read_text().split()]
        return pids

    def _status_kb(self, field: str) -> int:
        total = 0
        for pid in self.runtime_pids():
            status = Path(f"/proc/{pid}/status")
            for line in status.read_text().splitlines() if status.exists() else []:
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        return total

    def rss_kb(self) -> int:
        """Resident memory of the function's runtime process now."""
        return self._status_kb("VmRSS")

    def peak_rss_kb(self) -> int:
        """Peak resident memory (high-water mark) of the function's runtime process."""
        return self._status_kb("VmHWM")

    def close(self) -> None:
        stop(self.proc)
        self.log_file.close()
        os.unlink(self.log_file.name)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalS3(MotoServer):
    """moto_server with the sample buckets and objects, for ingest events."""

    def __init__(self) -> None:
        super().__init__()
        try:
            self._seed()
        except BaseException:
            self.close()
            raise

    def _seed(self) -> None:
        import boto3

        self.s3 = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                               aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        create_buckets(self.s3, INGEST_BUCKET, OUTPUT_BUCKET)
        for key, body in SAMPLE_OBJECTS.items():
            self.s3.put_object(Bucket=INGEST_BUCKET, Key=key, Body=body)

    def outputs(self) -> dict[str, str]:
        listing = self.s3.list_objects_v2(Bucket=OUTPUT_BUCKET).get("Contents", [])
        return {
            o["Key"]: self.s3.get_object(Bucket=OUTPUT_BUCKET, Key=o["Key"])["Body"].read().decode() for o in listing
        }
