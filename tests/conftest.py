"""Shared fixtures: the test environment, built model directories, Expanders, the numpy reference, the local AWS.

The servers, emulators and event builders live in ``devkit`` (shared with scripts/); this file only wires them
into pytest."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit import FP32_DIR, MODEL_DIR, SOURCE_DIR
from devkit.aws import AwsWorld
from devkit.emulator import FUNCTION_ENV
from devkit.events import LambdaContext

# The function environment (derived from handler/config.py), with what in-process tests change: a small object
# limit, fewer S3 retries, their own metrics namespace, credentials for the local AWS. The handler reads its
# settings once at import, so they are in place before collection (pytest_configure) and restored after.
TEST_ENV = {
    **FUNCTION_ENV,
    "MODEL_DIR": str(MODEL_DIR),
    "MAX_OBJECT_BYTES": "2000000",
    "POWERTOOLS_METRICS_NAMESPACE": "SpladeExpanderTest",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_MAX_ATTEMPTS": "3",
}
_SAVED: dict[str, str | None] = {}


def _set_env(values: dict[str, str]) -> None:
    for key, value in values.items():
        _SAVED.setdefault(key, os.environ.get(key))
        os.environ[key] = value


def pytest_configure(config: pytest.Config) -> None:
    _set_env({k: v for k, v in TEST_ENV.items() if k not in os.environ})


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in _SAVED.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _need(path: Path) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make model` (make test does it)")


@pytest.fixture(scope="session")
def expander() -> Any:
    from splade_expander.expander import Expander

    _need(MODEL_DIR / "model.onnx")
    return Expander(MODEL_DIR, threads=2)


@pytest.fixture(scope="session")
def expander_fp32() -> Any:
    from splade_expander.expander import Expander

    _need(FP32_DIR / "model.onnx")
    return Expander(FP32_DIR, threads=2)


@pytest.fixture(scope="session")
def reference() -> Any:
    from devkit.reference import ReferenceSplade

    _need(SOURCE_DIR / "model.safetensors")
    return ReferenceSplade(SOURCE_DIR)


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture(scope="session")
def aws() -> Iterator[AwsWorld]:
    """moto_server with IAM enforced, for the whole session. The in-process handler runs with the ingest
    function's role (the template's statements); tests use ``aws.client(...)`` (admin)."""
    world = AwsWorld()
    _set_env(world.function_env())  # restored at pytest_unconfigure
    try:
        yield world
    finally:
        world.close()


@pytest.fixture(scope="session")
def moto_server(aws: AwsWorld) -> str:
    """The URL of the session's IAM-enforced moto_server."""
    return aws.url
