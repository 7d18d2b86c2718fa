"""The process-wide singletons: the settings, the Expander and the AWS clients. Nothing else.

Importing this module is what the Lambda init phase pays for: the settings are read and the model loads once.
The AWS clients are created on first use (boto3 is imported only then: the HTTP path never pays for it).
Code reads them as ``runtime.settings`` / ``runtime.expander`` at call time, so a test patches one place.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

from splade_expander.expander import Expander

from .config import Settings
from .telemetry import logger

_started = time.perf_counter()
settings = Settings.from_env()
expander = Expander(**settings.expander_options())
expander.warm()  # the first request costs what a warm one does (ONNX Runtime allocates on its first run)
# One line per init, before the first invocation: the model that serves and what loading it cost (the emulator
# test reads its place in the log to prove the model loads in the init phase, once).
logger.info(
    "model loaded",
    extra={"model_sha256": expander.model_info["sha256"], "load_ms": round((time.perf_counter() - _started) * 1e3, 1)},
)


def _register_snapshot_hooks() -> bool:
    """With SnapStart (template EnableSnapStart), warm the session and tokenizer again just before the snapshot,
    so restored environments start with them paged in. ``snapshot_restore_py`` ships in the Lambda runtime only
    (not in the offline images or here): without it there is nothing to register."""
    try:
        from snapshot_restore_py import register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(expander.warm)
    return True


snapshot_hooks = _register_snapshot_hooks()


def _client_config() -> Any:
    from botocore.config import Config

    # Standard retry mode, 5 attempts; AWS_RETRY_MODE / AWS_MAX_ATTEMPTS (standard boto3 settings) override.
    retries: Any = {
        "mode": os.getenv("AWS_RETRY_MODE", "standard"),
        "total_max_attempts": int(os.getenv("AWS_MAX_ATTEMPTS", "5")),
    }
    if settings.s3_endpoint_url:  # S3-compatible servers are addressed by path: bucket names are not DNS names there
        return Config(retries=retries, s3={"addressing_style": "path"})
    return Config(retries=retries)


@cache
def s3_client() -> Any:
    import boto3
    import botocore

    # The SDK the function runs with (it ships in the zip: S3's conditional writes need botocore >= 1.35.69; the
    # first-deploy checklist in docs/deploy.md reads this line).
    logger.info(
        "AWS SDK", extra={"boto3": boto3.__version__, "botocore": botocore.__version__, "from": botocore.__file__}
    )
    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url or None, config=_client_config())


@cache
def secrets_client() -> Any:
    import boto3

    return boto3.client("secretsmanager", config=_client_config())  # AWS_ENDPOINT_URL_SECRETS_MANAGER for local


@cache
def sqs_client() -> Any:
    import boto3

    return boto3.client("sqs", config=_client_config())  # AWS_ENDPOINT_URL_SQS (boto3's own setting) for local
