"""The sample events in events/ and what each must give, wherever it runs (emulator, sam local)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))
from local_invoke import SAMPLE_OBJECTS as _SAMPLE_OBJECTS  # noqa: E402

SAMPLE_EVENTS = sorted((ROOT / "events").glob("*.json"))

# ("http", status, error code) | ("direct", errorType or None, text in the message) | ("ingest", None, None).
EXPECTED: dict[str, tuple[str, Any, Any]] = {
    "http-api-v2-expand.json": ("http", 200, None),
    "http-api-v2-expand-base64.json": ("http", 200, None),
    "http-api-v2-model.json": ("http", 200, None),
    "http-api-v2-openapi.json": ("http", 200, None),
    "rest-v1-expand.json": ("http", 200, None),
    "function-url-expand.json": ("http", 200, None),
    "direct-expand.json": ("direct", None, None),
    "bad-direct-wrong-type.json": ("direct", "InvalidRequestError", "texts[1]"),
    "bad-http-api-v2-malformed-json.json": ("http", 400, "invalid_request"),
    "bad-http-api-v2-not-json.json": ("http", 415, "unsupported_media_type"),
    "bad-http-api-v2-wrong-type.json": ("http", 400, "invalid_request"),
    "bad-http-api-v2-unknown-route.json": ("http", 404, "not_found"),
    "bad-http-api-v2-wrong-method.json": ("http", 405, "method_not_allowed"),
    "s3-put.json": ("ingest", None, None),
    "sqs-s3-ingest.json": ("ingest", None, None),
    "sqs-s3-test-event.json": ("ingest", None, None),
    "eventbridge-object-created.json": ("ingest", None, None),
    "stepfunctions-map-batch.json": ("ingest", None, None),
}

# The objects the sample ingest events name are `make invoke`'s (scripts/local_invoke.py), served from
# splade-ingest; outputs go to splade-output.
INGEST_BUCKET = "splade-ingest"
OUTPUT_BUCKET = "splade-output"
SAMPLE_OBJECTS: dict[str, bytes] = _SAMPLE_OBJECTS


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ by file name."""
    data: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return data


def function_for(name: str) -> str:
    """The template's function that serves a sample event: ingest events go to the ingest function."""
    return "IngestFunction" if EXPECTED[name][0] == "ingest" else "ApiFunction"


def request_texts(event: dict[str, Any]) -> list[str]:
    """The texts an HTTP (any payload format) or direct expand event asks for."""
    if "body" not in event:
        return list(event["texts"])
    body: str = event["body"]
    raw = base64.b64decode(body).decode() if event.get("isBase64Encoded") else body
    return list(json.loads(raw)["texts"])


def seed_sample_objects(s3: Any) -> None:
    """Create both buckets and the objects the sample ingest events name."""
    for bucket in (INGEST_BUCKET, OUTPUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for key, body in SAMPLE_OBJECTS.items():
        s3.put_object(Bucket=INGEST_BUCKET, Key=key, Body=body)
