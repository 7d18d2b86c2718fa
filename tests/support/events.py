"""The sample events in events/ and what each must give, wherever it runs (emulator, sam local)."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

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
    """Put the objects the sample ingest events name (their ETags are the sample events' eTags)."""
    for key, body in SAMPLE_OBJECTS.items():
        s3.put_object(Bucket=INGEST_BUCKET, Key=key, Body=body)


# ----------------------------------------------------------------------------- event builders (tests never build
# an event by hand): S3 notifications, SQS batches, EventBridge and Step Functions items, as AWS shapes them.
_SEQUENCE = itertools.count(1)
_BASE = time.time_ns() // 1000


def next_sequencer() -> str:
    """An S3-style sequencer (18 hex digits) greater than every one handed out before in this process."""
    return f"{_BASE + next(_SEQUENCE):018X}"


def s3_record(
    key: str,
    *,
    bucket: str = INGEST_BUCKET,
    etag: str | None = None,
    size: int = 0,
    sequencer: str | None = None,
    event: str = "ObjectCreated:Put",
    version_id: str | None = None,
) -> dict[str, Any]:
    """One S3 notification record; the key URL-encoded the way S3 encodes it. DELETE records carry no eTag."""
    record: dict[str, Any] = copy.deepcopy(load_event("s3-put.json")["Records"][0])
    record["eventName"] = event
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": sequencer or next_sequencer()}
    if not event.startswith("ObjectRemoved"):
        obj.update(size=size, eTag=etag or "0" * 32)
    if version_id:
        obj["versionId"] = version_id
    record["s3"]["object"] = obj
    return record


def s3_notification(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def put_object(s3: Any, key: str, body: bytes, bucket: str = INGEST_BUCKET) -> dict[str, Any]:
    """PUT an object and return the ObjectCreated notification S3 sends for it (real ETag, size, sequencer)."""
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    return s3_notification(s3_record(key, bucket=bucket, etag=etag, size=len(body)))


def delete_object(s3: Any, key: str, bucket: str = INGEST_BUCKET) -> dict[str, Any]:
    """DELETE an object and return the ObjectRemoved notification S3 sends for it."""
    s3.delete_object(Bucket=bucket, Key=key)
    return s3_notification(s3_record(key, bucket=bucket, event="ObjectRemoved:Delete"))


def sqs_event(*bodies: dict[str, Any] | str) -> tuple[dict[str, Any], list[str]]:
    """An SQS batch (the event source mapping's shape) whose message bodies are these; and the message ids."""
    template = load_event("sqs-s3-ingest.json")["Records"][0]
    records, ids = [], []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = body if isinstance(body, str) else json.dumps(body)
        records.append(record)
        ids.append(record["messageId"])
    return {"Records": records}, ids


def eventbridge_event(
    key: str,
    *,
    detail_type: str = "Object Created",
    bucket: str = INGEST_BUCKET,
    etag: str | None = None,
    size: int = 0,
    source: str = "aws.s3",
) -> dict[str, Any]:
    """An EventBridge S3 event (Object Created / Object Deleted)."""
    event: dict[str, Any] = copy.deepcopy(load_event("eventbridge-object-created.json"))
    event.update({"detail-type": detail_type, "source": source})
    event["detail"]["bucket"]["name"] = bucket
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": next_sequencer()}
    if detail_type == "Object Created":
        obj.update(size=size, etag=etag or "0" * 32)
    event["detail"]["object"] = obj
    return event


def items_event(items: list[dict[str, Any]], bucket: str = INGEST_BUCKET) -> dict[str, Any]:
    """A Step Functions Distributed Map item batch (ListObjectsV2 items: Key, Etag, Size)."""
    event: dict[str, Any] = copy.deepcopy(load_event("stepfunctions-map-batch.json"))
    event["BatchInput"] = {"bucket": bucket}
    event["Items"] = [{**event["Items"][0], **item} for item in items]
    return event


def listed_item(s3: Any, key: str, body: bytes, bucket: str = INGEST_BUCKET) -> dict[str, Any]:
    """PUT an object and return it as ListObjectsV2 lists it (a Step Functions item)."""
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    return {"Key": key, "Etag": etag, "Size": len(body)}
