"""Lambda events, classified once: an HTTP payload format, an ingest shape, or a direct invocation.

``classify`` tells every event apart once (HTTP payload formats, each ingest shape, direct invocation):
app.py and ingest.py dispatch on its EventShape, and the local runner uses it too. Ingest shapes served: SQS
records whose body is an S3 notification, an EventBridge S3 event or a continuation of this function; direct S3
notifications; EventBridge "Object Created" / "Object Deleted"; Step Functions Distributed Map item batches.
Anything else raises UnrecognizedEventError naming the shape.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class EventShape(StrEnum):
    """What an event is, decided once (``classify``): an HTTP payload format, an ingest shape, or direct."""

    HTTP_V2 = "http_v2"
    FUNCTION_URL = "function_url"
    REST_V1 = "rest_v1"
    SQS = "sqs"  # SQS records: S3 notifications, EventBridge S3 events or continuations in their bodies
    S3 = "s3"  # an S3 notification invoking the function directly
    EVENTBRIDGE = "eventbridge"
    STEPFUNCTIONS = "stepfunctions"  # a Distributed Map item batch
    OTHER_RECORDS = "other_records"  # Kinesis, DynamoDB, SNS...: refused by ingest, naming the source
    DIRECT = "direct"  # an expand request as the event itself

    @property
    def is_http(self) -> bool:
        return self in HTTP_SHAPES

    @property
    def source(self) -> str:
        """The coarse source the logs and the local tools use: an HTTP format, ``ingest`` or ``direct``."""
        return self.value if self.is_http or self is EventShape.DIRECT else "ingest"


HTTP_SHAPES = (EventShape.HTTP_V2, EventShape.FUNCTION_URL, EventShape.REST_V1)


def classify(event: Any) -> EventShape:
    """The one classifier: every caller (app.py, ingest.py, the local runner) asks it."""
    if not isinstance(event, dict):
        return EventShape.DIRECT
    context = event.get("requestContext")
    if isinstance(context, dict):
        if isinstance(context.get("http"), dict):
            domain = str(context.get("domainName", ""))
            return EventShape.FUNCTION_URL if ".lambda-url." in domain else EventShape.HTTP_V2
        if "httpMethod" in event:
            return EventShape.REST_V1
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict) and "eventSource" in records[0]:
        source = records[0]["eventSource"]
        return {"aws:sqs": EventShape.SQS, "aws:s3": EventShape.S3}.get(source, EventShape.OTHER_RECORDS)
    if "detail-type" in event and "source" in event:  # EventBridge (non-S3 shapes are refused by ingest)
        return EventShape.EVENTBRIDGE
    if isinstance(event.get("Items"), list) and "texts" not in event and "text" not in event:
        return EventShape.STEPFUNCTIONS
    return EventShape.DIRECT


def event_source(event: Any) -> str:
    """``http_v2`` | ``function_url`` | ``rest_v1`` | ``ingest`` | ``direct`` (``classify(event).source``)."""
    return classify(event).source
