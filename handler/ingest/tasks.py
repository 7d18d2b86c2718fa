"""Ingest events -> typed tasks: which object, which version, created or removed; a continuation carries its
checkpoint. Shapes served: SQS records whose body is an S3 notification, an EventBridge S3 event or a continuation
of this function; direct S3 notifications; EventBridge "Object Created" / "Object Deleted"; Step Functions
Distributed Map item batches. Anything else raises UnrecognizedEventError naming the shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from splade_expander.errors import UnrecognizedEventError

from ..events import EventShape, classify
from .states import Checkpoint, ObjectRef

CONTINUATION = "splade_ingest"  # the marker of this function's own continuation messages
EVENTBRIDGE_TYPES = {"Object Created": False, "Object Deleted": True}  # detail-type -> removed


@dataclass
class Task:
    ref: ObjectRef
    checkpoint: Checkpoint | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ref": self.ref.to_dict()}
        if self.checkpoint is not None:
            data["checkpoint"] = self.checkpoint.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        checkpoint = data.get("checkpoint")
        return cls(ObjectRef.from_dict(data["ref"]), Checkpoint.from_dict(checkpoint) if checkpoint else None)


def continuation_body(tasks: list[Task]) -> str:
    return json.dumps({CONTINUATION: 1, "tasks": [t.to_dict() for t in tasks]}, separators=(",", ":"))


# S3 event names that remove the source: deletes, and lifecycle expirations (their own event type, which S3 sends
# instead of ObjectRemoved when a lifecycle rule expires an object; S3 user guide "Event notification types").
REMOVED_EVENTS = ("ObjectRemoved:", "LifecycleExpiration:")


def is_test_event(message: Any) -> bool:
    """The message S3 sends once when a notification is configured: acknowledged, nothing to do."""
    return isinstance(message, dict) and message.get("Event") == "s3:TestEvent"


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "an object with keys " + ", ".join(sorted(map(str, value))[:8])
    return f"a JSON {type(value).__name__}"


def from_s3_notification(message: dict[str, Any]) -> list[Task]:
    if is_test_event(message):
        return []
    records = message.get("Records")
    if not isinstance(records, list) or not records:
        raise UnrecognizedEventError(f"not an S3 event notification: {_describe(message)}")
    tasks = []
    for record in records:
        source = record.get("eventSource") if isinstance(record, dict) else None
        if source != "aws:s3":
            raise UnrecognizedEventError(f"a record with eventSource {source!r} is not an S3 event")
        name = str(record.get("eventName", ""))
        if not name.startswith(("ObjectCreated:", *REMOVED_EVENTS)):
            raise UnrecognizedEventError(
                f"S3 eventName {name!r} is not ObjectCreated, ObjectRemoved or LifecycleExpiration"
            )
        s3 = record["s3"]
        obj = s3["object"]
        ref = ObjectRef(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(obj["key"]),  # S3 notifications URL-encode keys ("+" for space)
            version_id=obj.get("versionId") or None,
            etag=obj.get("eTag") or None,
            size=obj.get("size"),
            sequencer=obj.get("sequencer") or None,
            removed=name.startswith(REMOVED_EVENTS),
        )
        tasks.append(Task(ref))
    return tasks


def from_eventbridge(event: dict[str, Any]) -> list[Task]:
    detail_type = event.get("detail-type")
    if event.get("source") != "aws.s3" or detail_type not in EVENTBRIDGE_TYPES:
        raise UnrecognizedEventError(
            f"EventBridge event {event.get('source')!r} / {detail_type!r} is not an S3 Object Created or Object Deleted"
        )
    detail = event["detail"]
    obj = detail["object"]
    key = unquote_plus(obj["key"])
    ref = ObjectRef(
        bucket=detail["bucket"]["name"],
        key=key,
        version_id=obj.get("version-id") or None,
        etag=obj.get("etag") or None,
        size=obj.get("size"),
        sequencer=obj.get("sequencer") or None,
        removed=EVENTBRIDGE_TYPES[detail_type],
        raw_key=obj["key"] if obj["key"] != key else None,
    )
    return [Task(ref)]


def from_items(event: dict[str, Any]) -> list[Task]:
    """A Step Functions Distributed Map batch of ListObjectsV2 items (Key, Etag, Size), bucket in BatchInput."""
    batch_input = event.get("BatchInput") or {}
    bucket = str(batch_input.get("bucket") or batch_input.get("Bucket") or "")
    items = event.get("Items") or []
    tasks = []
    for item in items:
        if not isinstance(item, dict) or "Key" not in item or not (item.get("Bucket") or bucket):
            raise UnrecognizedEventError("Step Functions items need Key and a bucket (BatchInput.bucket)")
        etag = item.get("Etag") or item.get("ETag")
        tasks.append(Task(ObjectRef(item.get("Bucket") or bucket, item["Key"], None, etag, item.get("Size"))))
    return tasks


def from_message(body: str) -> list[Task]:
    """The tasks of one SQS message body; UnrecognizedEventError for a poison message."""
    try:
        message = json.loads(body)
    except ValueError:
        raise UnrecognizedEventError("the message body is not JSON") from None
    if not isinstance(message, dict):
        raise UnrecognizedEventError(f"the message body is {_describe(message)}, not an S3 event")
    if CONTINUATION in message:
        return [Task.from_dict(t) for t in message.get("tasks") or []]
    if "detail-type" in message:
        return from_eventbridge(message)
    return from_s3_notification(message)


def from_event(event: dict[str, Any], shape: EventShape | None = None) -> list[Task]:
    """The tasks of a non-SQS ingest event of ``shape`` (classified here when not given)."""
    shape = shape or classify(event)
    if shape is EventShape.S3:
        return from_s3_notification(event)
    if shape is EventShape.EVENTBRIDGE:
        return from_eventbridge(event)
    if shape is EventShape.STEPFUNCTIONS:
        return from_items(event)
    if shape is EventShape.OTHER_RECORDS:
        source = event["Records"][0].get("eventSource")
        names = {"aws:kinesis": "Kinesis", "aws:dynamodb": "DynamoDB stream", "aws:sns": "SNS"}
        what = names.get(str(source), f"eventSource {source!r}")
        raise UnrecognizedEventError(f"{what} records are not an ingest event this function serves")
    raise UnrecognizedEventError(f"not an ingest event: {_describe(event)}")
