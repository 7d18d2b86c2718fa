"""Shared fixtures: built model directories, Expanders, the numpy reference, event fixtures."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "model_assets"
FP32_DIR = ROOT / "build" / "model_fp32"
SOURCE_DIR = ROOT / "build" / "source"
EVENTS_DIR = Path(__file__).resolve().parent / "events"

sys.path.insert(0, str(ROOT / "scripts"))
from tests.support.aws import AwsWorld  # noqa: E402


def load_event(name: str) -> dict[str, Any]:
    """A JSON event fixture from tests/events (or the user-facing events/ folder)."""
    for folder in (EVENTS_DIR, ROOT / "events"):
        path = folder / (name if name.endswith(".json") else f"{name}.json")
        if path.is_file():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
    raise FileNotFoundError(name)


def _need(path: Path) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make model` (make test does it)")


@pytest.fixture(scope="session")
def expander():  # type: ignore[no-untyped-def]
    from handler.expander import Expander

    _need(MODEL_DIR / "model.onnx")
    return Expander(MODEL_DIR, threads=2)


@pytest.fixture(scope="session")
def expander_fp32():  # type: ignore[no-untyped-def]
    from handler.expander import Expander

    _need(FP32_DIR / "model.onnx")
    return Expander(FP32_DIR, threads=2)


@pytest.fixture(scope="session")
def reference():  # type: ignore[no-untyped-def]
    from tests.reference import ReferenceSplade

    _need(SOURCE_DIR / "model.safetensors")
    return ReferenceSplade(SOURCE_DIR)


# Settings the handler reads once at import (handler.service); set before any test imports it.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("OUTPUT_BUCKET", "splade-output")
os.environ.setdefault("OUTPUT_PREFIX", "vectors/")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "splade-expander")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SpladeExpanderTest")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("MODEL_DIR", str(MODEL_DIR))
os.environ.setdefault("MAX_OBJECT_BYTES", "2000000")
os.environ.setdefault("AWS_MAX_ATTEMPTS", "3")  # fewer S3 retries (and backoff sleeps) in tests


@dataclass
class LambdaContext:
    """The fields of the Lambda context object that the handler and powertools read."""

    function_name: str = "splade-expander"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:splade-expander"
    aws_request_id: str = "6f1d2a4e-0000-4000-8000-000000000001"
    log_group_name: str = "/aws/lambda/splade-expander"
    log_stream_name: str = "2026/11/26/[$LATEST]0123456789abcdef"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture(scope="session")
def aws() -> Iterator[AwsWorld]:
    """moto_server with IAM enforced, for the whole session. The in-process handler runs with the ingest
    function's role (the template's statements); tests use ``aws.client(...)`` (admin)."""
    world = AwsWorld()
    env = world.function_env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield world
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        world.close()


@pytest.fixture(scope="session")
def moto_server(aws: AwsWorld) -> str:
    """The URL of the session's IAM-enforced moto_server."""
    return aws.url
