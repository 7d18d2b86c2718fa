"""S3 document ingest: SQS / S3 / EventBridge / Step Functions events -> vectors as JSON Lines.

Output for ``s3://in/<key>``: ``s3://$OUTPUT_BUCKET/$OUTPUT_PREFIX<key>.jsonl`` (one line per document) and,
when some documents were bad, ``<key>.errors.jsonl`` (line number and reason each). The keys are
deterministic, so a redelivered message overwrites instead of duplicating.

Nothing is lost: an object that cannot be processed raises, so an SQS message is reported in
``batchItemFailures`` (retried, then moved to the DLQ by the queue's redrive policy), and the other
event kinds fail the invocation (Lambda / Step Functions retry it). boto3 is imported here only, lazily.
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from .documents import (
    BATCH_CHARS,
    BATCH_DOCS,
    Document,
    ObjectFailedError,
    ObjectRef,
    OutputWriter,
    expand_documents,
    kind_of,
    open_stream,
    read_documents,
)
from .errors import SpladeError
from .service import expander, model_block, settings
from .telemetry import logger, metrics

TIME_MARGIN_MS = settings.ingest_time_margin_ms  # stop taking new objects with less time than this left
MIN_TIME_MS = 1000  # abort the current object (its upload too) when this little time is left


class IngestFailedError(SpladeError):
    """Some objects of a direct S3 / EventBridge / Step Functions event failed (the invocation fails)."""

    status = 500
    code = "ingest_failed"


@cache
def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    # Standard retry mode, 5 attempts; AWS_RETRY_MODE / AWS_MAX_ATTEMPTS (standard boto3 settings) override.
    mode = os.getenv("AWS_RETRY_MODE", "standard")
    attempts = int(os.getenv("AWS_MAX_ATTEMPTS", "5"))
    retries: Any = {"mode": mode, "total_max_attempts": attempts}
    if settings.s3_endpoint_url:  # S3-compatible servers are addressed by path: bucket names are not DNS names there
        config = Config(retries=retries, s3={"addressing_style": "path"})
        return boto3.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)
    return boto3.client("s3", config=Config(retries=retries))


# ----------------------------------------------------------------------------- events -> object refs
def is_test_event(message: Any) -> bool:
    """The message S3 sends once when a notification is configured: acknowledged, nothing to do."""
    return isinstance(message, dict) and message.get("Event") == "s3:TestEvent"


def refs_from_s3_notification(message: dict[str, Any]) -> list[ObjectRef]:
    if is_test_event(message):
        logger.info("acknowledged s3:TestEvent", extra={"bucket": message.get("Bucket")})
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise ObjectFailedError("not an S3 event notification (no Records)", code="unrecognized_message")
    refs = []
    for record in records:
        if not str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        key = unquote_plus(obj["key"])  # S3 notifications URL-encode keys ("+" for space)
        refs.append(ObjectRef(s3["bucket"]["name"], key, obj.get("versionId"), obj.get("eTag"), obj.get("size")))
    return refs


def refs_from_eventbridge(event: dict[str, Any]) -> list[ObjectRef]:
    detail = event["detail"]
    obj = detail["object"]
    key = unquote_plus(obj["key"])
    bucket = detail["bucket"]["name"]
    raw = obj["key"] if obj["key"] != key else None  # decoded first; the literal key if that is missing
    return [ObjectRef(bucket, key, obj.get("version-id"), obj.get("etag"), obj.get("size"), raw)]


def refs_from_message(body: str) -> list[ObjectRef]:
    try:
        message = json.loads(body)
    except ValueError:
        raise ObjectFailedError("the message body is not JSON", code="unrecognized_message") from None
    if isinstance(message, dict) and message.get("source") == "aws.s3" and "detail" in message:
        return refs_from_eventbridge(message)
    if not isinstance(message, dict):
        raise ObjectFailedError("the message body is not an S3 event", code="unrecognized_message")
    return refs_from_s3_notification(message)


# ----------------------------------------------------------------------------- one object
def _output_key(key: str, suffix: str) -> str:
    return f"{settings.output_prefix}{key}{suffix}"


def _is_own_output(ref: ObjectRef) -> bool:
    return (
        bool(settings.output_prefix)
        and ref.key.startswith(settings.output_prefix)
        and (ref.bucket == settings.output_bucket or not settings.output_bucket)
    )


def _get_object(ref: ObjectRef) -> tuple[ObjectRef, dict[str, Any]]:
    try:
        return ref, _get_object_once(ref)
    except ObjectFailedError as exc:
        if exc.code != "missing_object" or not ref.raw_key:
            raise
    alt = ObjectRef(ref.bucket, ref.raw_key, ref.version_id, ref.etag, ref.size)
    return alt, _get_object_once(alt)


def _get_object_once(ref: ObjectRef) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    s3 = s3_client()
    args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        args["VersionId"] = ref.version_id
    try:
        return dict(s3.get_object(**args))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchVersion"):
            raise ObjectFailedError(
                f"s3://{ref.bucket}/{ref.key} does not exist (deleted?)", code="missing_object"
            ) from None
        if code in ("AccessDenied", "403"):
            raise ObjectFailedError(f"access denied to s3://{ref.bucket}/{ref.key}", code="access_denied") from None
        raise


def process_object(ref: ObjectRef, deadline: Any) -> dict[str, Any]:
    """Expand one object into its output key. Raises ObjectFailedError when it cannot be processed."""
    if _is_own_output(ref) or ref.key.endswith("/"):
        logger.info("skipped", extra={"bucket": ref.bucket, "key": ref.key, "reason": "output prefix or folder"})
        return {"key": ref.key, "skipped": True}
    if not settings.output_bucket:
        raise ObjectFailedError("OUTPUT_BUCKET is not configured", code="not_configured")
    if ref.size is not None and ref.size > settings.max_object_bytes:
        raise ObjectFailedError(
            f"{ref.size} bytes exceed MAX_OBJECT_BYTES ({settings.max_object_bytes})", code="object_too_large"
        )
    start = time.perf_counter()
    ref, response = _get_object(ref)
    if int(response.get("ContentLength") or 0) > settings.max_object_bytes:
        response["Body"].close()
        raise ObjectFailedError(
            f"the object exceeds MAX_OBJECT_BYTES ({settings.max_object_bytes})", code="object_too_large"
        )
    kind = kind_of(ref.key, response.get("ContentType"))
    if kind == "unsupported":
        response["Body"].close()
        raise ObjectFailedError(
            f"unsupported object type for {ref.key!r} (use .txt, .md, text/*, .jsonl, .ndjson, .gz)",
            code="unsupported_type",
        )
    source = {
        "bucket": ref.bucket,
        "key": ref.key,
        "version_id": response.get("VersionId") or ref.version_id,
        "etag": str(response.get("ETag") or ref.etag or "").strip('"'),
    }
    job = _Job(OutputWriter(s3_client(), settings.output_bucket, _output_key(ref.key, ".jsonl")), source, deadline)
    try:
        batch: list[Document] = []
        batch_chars = 0
        stream = open_stream(response["Body"], ref.key, settings.max_object_bytes)
        max_doc_bytes = expander.max_chars * 4 if expander.max_chars else settings.max_object_bytes  # UTF-8 <= 4 B
        docs = read_documents(
            stream, ref, kind, text_field=settings.text_field, id_field=settings.id_field, max_doc_bytes=max_doc_bytes
        )
        for item in docs:
            if isinstance(item, dict):
                job.error(None, item)
                continue
            batch.append(item)
            batch_chars += len(item.text)
            if len(batch) >= BATCH_DOCS or batch_chars >= BATCH_CHARS:  # bounded tokenizer memory per batch
                job.flush(batch)
                batch, batch_chars = [], 0
        job.flush(batch)
        job.out.close()
    except BaseException:
        job.out.abort()
        raise
    finally:  # on every path, a stream stopped early (deadline, bad object, abort) gives its connection back
        response["Body"].close()
    _write_errors(ref.key, job.errors)
    documents, errors = job.out.lines, len(job.errors)
    seconds = round(time.perf_counter() - start, 3)
    logger.info(
        "ingested", extra={"bucket": ref.bucket, "key": ref.key, "documents": documents, "errors": errors, "s": seconds}
    )
    metrics.add_metric(name="DocumentsWritten", unit=MetricUnit.Count, value=documents)
    metrics.add_metric(name="DocumentErrors", unit=MetricUnit.Count, value=errors)
    return {"key": ref.key, "output": job.out.key, "documents": documents, "errors": errors}


class _Job:
    """The output writer, error records and source block of one object being ingested."""

    def __init__(self, out: OutputWriter, source: dict[str, Any], deadline: Any) -> None:
        self.out, self.source, self.deadline = out, source, deadline
        self.model = model_block()
        self.errors: list[dict[str, Any]] = []

    def error(self, doc: Document | None, record: dict[str, Any]) -> None:
        entry = {"source": {**self.source, "line": record["line"]}, "code": record["code"], "reason": record["reason"]}
        self.errors.append({"id": doc.id, **entry} if doc is not None else entry)

    def flush(self, batch: list[Document]) -> None:
        if not batch:
            return
        if self.deadline() < MIN_TIME_MS:
            raise ObjectFailedError("the function is about to time out; the object will be retried", code="timeout")
        results, bad = expand_documents(expander, batch, settings.output_format)
        for doc, record in bad:
            self.error(doc, {**record, "line": doc.line})
        for doc, vector in results:
            self.out.write({"id": doc.id, "source": {**self.source, "line": doc.line}, "model": self.model, **vector})


def _write_errors(key: str, errors: list[dict[str, Any]]) -> None:
    s3 = s3_client()
    error_key = _output_key(key, ".errors.jsonl")
    if errors:
        body = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in errors).encode()
        s3.put_object(Bucket=settings.output_bucket, Key=error_key, Body=body, ContentType="application/x-ndjson")
    else:  # a retry after the object was fixed must not leave stale error records behind
        s3.delete_object(Bucket=settings.output_bucket, Key=error_key)


# ----------------------------------------------------------------------------- event kinds
def _deadline(context: Any) -> Any:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining if callable(remaining) else (lambda: 900_000)


def _start_object(ref: ObjectRef, deadline: Any) -> dict[str, Any]:
    """Process one object unless the function is too close to its timeout to start it."""
    if deadline() < TIME_MARGIN_MS:
        raise ObjectFailedError("not started: the function is close to its timeout", code="timeout")
    return process_object(ref, deadline)


def _process_refs(refs: list[ObjectRef], context: Any) -> list[dict[str, Any]]:
    deadline = _deadline(context)
    return [_start_object(ref, deadline) for ref in refs]


def _log_failure(exc: Exception, **where: Any) -> tuple[str, str]:
    """Log why an object failed: a clear code and reason (a stack trace only for unexpected errors)."""
    metrics.add_metric(name="ObjectFailures", unit=MetricUnit.Count, value=1)
    if isinstance(exc, ObjectFailedError):
        logger.error("object failed", extra={**where, "code": exc.code, "reason": exc.message})
        return exc.code, exc.message
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__)
    logger.exception("object failed", extra={**where, "code": code, "reason": str(exc)[:500]})
    return code, str(exc)[:500]


def _record_handler(context: Any) -> Any:
    def handle(record: SQSRecord) -> list[dict[str, Any]]:
        try:
            return _process_refs(refs_from_message(record.body), context)
        except Exception as exc:  # the processor reports it in batchItemFailures: SQS retries, then the DLQ
            _log_failure(exc, message_id=record.message_id)
            raise

    return handle


def _process_each(refs: list[ObjectRef], context: Any) -> dict[str, Any]:
    """Process every object, then fail the invocation if any failed (the successes are kept)."""
    deadline = _deadline(context)
    done, failed = [], []
    for ref in refs:
        try:
            done.append(_start_object(ref, deadline))
        except Exception as exc:  # every object is tried; the invocation fails at the end if any failed
            code, reason = _log_failure(exc, bucket=ref.bucket, key=ref.key)
            failed.append({"key": ref.key, "code": code, "reason": reason})
    if failed:
        raise IngestFailedError(f"{len(failed)} of {len(refs)} objects failed: {json.dumps(failed)[:2000]}")
    return {"processed": done, "failed": []}


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispatch an ingest event (SQS batch, S3 notification, EventBridge, Step Functions item batch)."""
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        result = process_partial_response(event, _record_handler(context), processor, context)
        return dict(result)
    if records and records[0].get("eventSource") == "aws:s3":
        return _process_each(refs_from_s3_notification(event), context)
    if event.get("source") == "aws.s3":
        return _process_each(refs_from_eventbridge(event), context)
    batch_input = event.get("BatchInput") or {}
    bucket = str(batch_input.get("bucket") or batch_input.get("Bucket") or "")
    items = event.get("Items") or []
    refs = [
        ObjectRef(
            item.get("Bucket") or bucket, item["Key"], None, item.get("Etag") or item.get("ETag"), item.get("Size")
        )
        for item in items
        if isinstance(item, dict) and "Key" in item
    ]
    if len(refs) != len(items) or any(not r.bucket for r in refs):
        raise ObjectFailedError(
            "Step Functions items need Key and a bucket (BatchInput.bucket)", code="unrecognized_message"
        )
    return _process_each(refs, context)
