"""Every Lambda event the tests and scripts send, built here from the sample events in events/ (AWS's own
shapes), and what each sample event must give wherever it runs (in process, emulator, sam local).

Nothing else builds an event by hand: HTTP (v2, REST v1, Function URL), direct, S3 notifications, SQS batches,
EventBridge, Step Functions item batches, foreign records, and the Lambda context object."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from . import INGEST_BUCKET, ROOT, SAMPLE_OBJECTS

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
    # AWS Lambda Power Tuning payloads (scripts/power_tuning_events.py; docs/deploy.md)
    "power-tuning-batch.json": ("direct", None, None),
    "power-tuning-query.json": ("direct", None, None),
    "power-tuning-document-256.json": ("direct", None, None),
}
POWER_TUNING = sorted(name for name in EXPECTED if name.startswith("power-tuning-"))

# The objects the sample ingest events name are `make invoke`'s (scripts/local_invoke.py), served from
# splade-ingest; outputs go to splade-output.


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ by file name (``.json`` optional)."""
    data: dict[str, Any] = json.loads((ROOT / "events" / name).with_suffix(".json").read_text())
    return data


def function_for(name: str) -> str:
    """The template's function that serves a sample event (by the handler's own classifier, as `make sam-invoke`)."""
    from handler.events import event_source

    return "IngestFunction" if event_source(load_event(name)) == "ingest" else "ApiFunction"


def request_body(event: dict[str, Any]) -> dict[str, Any]:
    """The expand request an HTTP (any payload format) or direct event carries."""
    if "body" not in event:
        return event
    body: str = event["body"]
    raw = base64.b64decode(body).decode() if event.get("isBase64Encoded") else body
    request: dict[str, Any] = json.loads(raw)
    return request


def request_texts(event: dict[str, Any]) -> list[str]:
    """The texts an HTTP (any payload format) or direct expand event asks for."""
    return list(request_body(event)["texts"])


def request_options(event: dict[str, Any]) -> dict[str, Any]:
    """The Expander.expand options of an expand event's request (its kind, top_k and query encoder)."""
    body = request_body(event)
    options = {"kind": body.get("kind", "document"), "top_k": body.get("top_k")}
    return {**options, "query_encoder": body.get("query_encoder")}


def same_vector(item: dict[str, Any], indices: list[int], values: list[float], tol: float = 1e-5) -> bool:
    """A response item holds this vector: the same terms with weights within ``tol``, except that a term below
    1e-4 may be on one side only (a full vector's near-zero weights move with the thread count's float sums)."""
    got, want = dict(zip(item["indices"], item["values"], strict=True)), dict(zip(indices, values, strict=True))
    if any(max(got.get(i, 0.0), want.get(i, 0.0)) >= 1e-4 for i in got.keys() ^ want.keys()):
        return False
    return all(abs(got[i] - want[i]) <= tol for i in got.keys() & want.keys())


def seed_sample_objects(s3: Any) -> None:
    """Put the objects the sample ingest events name (their ETags are the sample events' eTags)."""
    for key, body in SAMPLE_OBJECTS.items():
        s3.put_object(Bucket=INGEST_BUCKET, Key=key, Body=body)


# ----------------------------------------------------------------------------- HTTP and direct
HTTP_SAMPLES = {"http_v2": "http-api-v2-expand.json", "rest_v1": "rest-v1-expand.json",
                "function_url": "function-url-expand.json"}  # fmt: skip
_UNSET: Any = object()


def http_event(
    payload: Any = _UNSET,
    *,
    source: str = "http_v2",
    raw: str | None = None,
    b64: bool = False,
    method: str | None = None,
    path: str | None = None,
    content_type: str | None = _UNSET,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP event of payload format ``source`` (``http_v2`` | ``rest_v1`` | ``function_url``), as API Gateway
    or a Function URL sends it. ``payload`` is JSON-encoded (``raw``: the body text as is; neither: the sample's
    body); ``b64``: base64-encoded as for binary media; ``content_type=None`` drops the header."""
    event: dict[str, Any] = copy.deepcopy(load_event(HTTP_SAMPLES[source]))
    text = raw if raw is not None else (event["body"] if payload is _UNSET else json.dumps(payload))
    event["body"] = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode() if b64 else text
    event["isBase64Encoded"] = b64
    context = event["requestContext"]
    if source == "rest_v1":
        if path is not None:
            event["path"] = context["path"] = path
        if method is not None:
            event["httpMethod"] = context["httpMethod"] = method
    else:
        if path is not None:
            event["rawPath"] = context["http"]["path"] = path
        if method is not None:
            context["http"]["method"] = method
    if content_type is not _UNSET:
        for name in [h for h in event["headers"] if h.lower() == "content-type"]:
            del event["headers"][name]
        if content_type is not None:
            event["headers"]["content-type"] = content_type
    event["headers"].update(headers or {})
    return event


def http_binary_event(data: bytes, source: str = "http_v2") -> dict[str, Any]:
    """An HTTP event whose body is these bytes, base64-encoded (not necessarily UTF-8 or JSON)."""
    event = http_event(raw="", source=source)
    event["body"], event["isBase64Encoded"] = base64.b64encode(data).decode(), True
    return event


def direct_event(**request: Any) -> dict[str, Any]:
    """A direct invocation's event: the request object itself."""
    return dict(request)


def http_response_body(response: dict[str, Any]) -> tuple[int, Any]:
    """(status, parsed body) of the function's HTTP response, base64 or not."""
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body)


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


class Countdown(LambdaContext):
    """A context whose remaining time is plenty for ``calls - 1`` checks and then half the ingest margin: a
    deterministic stand-in for the clock. Ingest checks it once before each object and once before each batch,
    so a run of one object gets through ``calls - 2`` full batches and then checkpoints."""

    def __init__(self, calls: int) -> None:
        self.calls = calls

    def get_remaining_time_in_millis(self) -> int:
        from handler import runtime

        self.calls -= 1
        return 300_000 if self.calls > 0 else runtime.settings.ingest_time_margin_ms // 2


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
    if not event.startswith(("ObjectRemoved", "LifecycleExpiration")):
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


def foreign_records(event_source: str) -> dict[str, Any]:
    """A batch from another event source (``aws:kinesis``, ``aws:dynamodb``, ``aws:sns``): not an ingest event."""
    payloads: dict[str, dict[str, Any]] = {
        "aws:kinesis": {"kinesis": {"data": "e30="}},
        "aws:dynamodb": {"dynamodb": {}},
        "aws:sns": {"Sns": {"Message": "{}"}},
    }
    return {"Records": [{"eventSource": event_source, **payloads.get(event_source, {})}]}


def listed_item(s3: Any, key: str, body: bytes, bucket: str = INGEST_BUCKET) -> dict[str, Any]:
    """PUT an object and return it as ListObjectsV2 lists it (a Step Functions item)."""
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    return {"Key": key, "Etag": etag, "Size": len(body)}
