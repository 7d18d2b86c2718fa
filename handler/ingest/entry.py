"""S3 document ingest: SQS / S3 / EventBridge / Step Functions events -> vectors as JSON Lines.

Output for ``s3://in/<key>``: ``s3://$OUTPUT_BUCKET/$OUTPUT_PREFIX<key>.jsonl`` (one line per document) and,
when something was bad, ``<key>.errors.jsonl``. Where each failure goes (docs/ingest.md "Ingest failures"):

- a bad line: an error record, the rest are written;
- a permanent object failure (unsupported type, binary, over size, corrupt gzip): one object-level record in
  the errors file, metric ``PermanentObjectFailures``, acknowledged (no retry, no DLQ, no alarm);
- a missing object, an older event than the output: logged and counted (``MissingObjects``,
  ``SupersededEvents``), acknowledged, nothing written;
- a transient failure (throttling, 5xx, network, out of time without a queue) and access denied: metric
  ``ObjectFailures`` (alarmed), the message is reported in ``batchItemFailures`` (retried, then the DLQ);
  a direct invocation fails (Lambda's async retries, then the OnFailure queue);
- a message that is no ingest event: ``UnrecognizedEvents``, a batch item failure (the DLQ after maxReceiveCount).

An object that one invocation cannot finish is checkpointed and continued through ``INGEST_QUEUE_URL``;
so are messages the invocation had no time to start. boto3 is imported only on this path (runtime.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from splade_expander.errors import IngestFailedError, ObjectFailedError, UnrecognizedEventError

from .. import runtime
from ..events import EventShape, classify
from ..telemetry import logger, metrics
from . import s3cond
from .objects import Objects
from .run_outputs import drop_carry
from .states import Outcome, Status
from .tasks import Task, continuation_body, from_event, from_message

OUTCOME_METRICS = {
    Status.SUPERSEDED: "SupersededEvents",
    Status.MISSING: "MissingObjects",
    Status.FAILED: "PermanentObjectFailures",
    Status.CONTINUED: "Continuations",
    Status.DELETED: "DeletedSources",
}


def _remaining(context: Any) -> Callable[[], int]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining if callable(remaining) else (lambda: 900_000)


# ----------------------------------------------------------------------------- one task
def _is_own_output(key: str, bucket: str) -> bool:
    return (
        bool(runtime.settings.output_prefix)
        and key.startswith(runtime.settings.output_prefix)
        and (bucket == runtime.settings.output_bucket or not runtime.settings.output_bucket)
    )


def process_task(task: Task, remaining: Callable[[], int]) -> Outcome:
    """One event on one object; raises for a transient failure (the event is retried)."""
    ref = task.ref
    if _is_own_output(ref.key, ref.bucket) or ref.key.endswith("/"):
        return Outcome(Status.SKIPPED, ref.key, reason="output prefix or folder")
    if not runtime.settings.output_bucket:
        raise ObjectFailedError("OUTPUT_BUCKET is not configured", code="not_configured")
    objects = Objects(runtime.s3_client())
    if ref.removed:
        return objects.remove(ref)
    checkpoint = task.checkpoint
    if checkpoint is None:
        started = objects.start(ref)
        if isinstance(started, Outcome):
            return started
        checkpoint = started
    outcome = objects.expand(ref, checkpoint, remaining, can_continue=bool(runtime.settings.ingest_queue_url))
    if outcome.status is Status.MISSING and ref.raw_key and task.checkpoint is None:  # EventBridge: the literal key
        return process_task(Task(replace(ref, key=ref.raw_key, raw_key=None)), remaining)
    return outcome


def _log_outcome(outcome: Outcome) -> None:
    """One log line and the metrics of a finished run."""
    logger.info(f"object {outcome.status}", extra=outcome.summary())
    if outcome.status is Status.WRITTEN:
        metrics.add_metric(name="DocumentsWritten", unit=MetricUnit.Count, value=outcome.documents)
        metrics.add_metric(name="DocumentErrors", unit=MetricUnit.Count, value=outcome.errors)
    elif outcome.status in OUTCOME_METRICS:
        metrics.add_metric(name=OUTCOME_METRICS[outcome.status], unit=MetricUnit.Count, value=1)
    if outcome.code == "too_many_runs":  # alarmed (RunCapAlarm): a chain MAX_OBJECT_RUNS stopped
        metrics.add_metric(name="RunCapReached", unit=MetricUnit.Count, value=1)


def _log_failure(exc: Exception, **where: Any) -> dict[str, Any]:
    """Log why an event failed, with a clear code (a stack trace only for unexpected errors)."""
    if isinstance(exc, UnrecognizedEventError):
        metrics.add_metric(name="UnrecognizedEvents", unit=MetricUnit.Count, value=1)
        logger.error("unrecognized event", extra={**where, "code": exc.code, "reason": exc.message})
        return {**where, "code": exc.code, "reason": exc.message}
    metrics.add_metric(name="ObjectFailures", unit=MetricUnit.Count, value=1)  # alarmed: transient or denied
    if isinstance(exc, ObjectFailedError):
        logger.error("object failed", extra={**where, "code": exc.code, "reason": exc.message})
        return {**where, "code": exc.code, "reason": exc.message}
    code = s3cond.error_code(exc) or type(exc).__name__
    logger.exception("object failed", extra={**where, "code": code, "reason": str(exc)[:500]})
    return {**where, "code": code, "reason": str(exc)[:500]}


def send_tasks(tasks: list[Task]) -> None:
    """Queue tasks for a later invocation (a checkpointed object, or objects there was no time to start)."""
    runtime.sqs_client().send_message(QueueUrl=runtime.settings.ingest_queue_url, MessageBody=continuation_body(tasks))


def _drop_stale(outcomes: list[Outcome]) -> None:
    """After the continuation is queued: the previous run's carry object is no longer needed."""
    for key in (k for o in outcomes for k in o.stale):
        drop_carry(runtime.s3_client(), runtime.settings.output_bucket, key)


def process_tasks(tasks: list[Task], remaining: Callable[[], int]) -> tuple[list[Outcome], list[Task]]:
    """Run tasks in order until done or out of time: (outcomes, the tasks left to continue later)."""
    outcomes: list[Outcome] = []
    for i, task in enumerate(tasks):
        if remaining() < runtime.settings.ingest_time_margin_ms:  # no new object with less time
            if not runtime.settings.ingest_queue_url:
                raise ObjectFailedError("not started: the function is close to its timeout", code="timeout")
            return outcomes, tasks[i:]
        outcome = process_task(task, remaining)
        _log_outcome(outcome)
        outcomes.append(outcome)
        if outcome.status.queues_again:
            checkpoint = outcome.checkpoint if outcome.status is Status.CONTINUED else None
            return outcomes, [Task(outcome.ref or task.ref, checkpoint), *tasks[i + 1 :]]
    return outcomes, []


def _continue(left: list[Task]) -> None:
    if not left:
        return
    if not runtime.settings.ingest_queue_url:
        raise ObjectFailedError("the object must be run again but INGEST_QUEUE_URL is not set", code="commit_conflict")
    send_tasks(left)


# ----------------------------------------------------------------------------- event shapes
def _message_processor(context: Any) -> Callable[[SQSRecord], list[dict[str, Any]]]:
    """What the batch processor calls for each SQS message of the batch (Powertools' "record")."""
    remaining = _remaining(context)

    def process_message(record: SQSRecord) -> list[dict[str, Any]]:  # Powertools passes it as record=
        message = record
        try:
            outcomes, left = process_tasks(from_message(message.body), remaining)
            _continue(left)
            _drop_stale(outcomes)
            return [o.summary() for o in outcomes]
        except Exception as exc:  # the processor reports it in batchItemFailures: SQS retries, then the DLQ
            _log_failure(exc, message_id=message.message_id)
            raise

    return process_message


def _process_direct(tasks: list[Task], context: Any) -> dict[str, Any]:
    """Run every task of a direct event; fail the invocation at the end if any failed (successes are kept)."""
    remaining = _remaining(context)
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    queued: list[Task] = []
    for task in tasks:
        if queued:  # out of time already: the rest goes to the queue too
            queued.append(task)
            continue
        try:
            outcomes, left = process_tasks([task], remaining)
            done.extend(o.summary() for o in outcomes if not o.status.queues_again)
            queued.extend(left)
        except Exception as exc:  # every object is tried; the invocation fails at the end if any failed
            failed.append(_log_failure(exc, bucket=task.ref.bucket, key=task.ref.key))
    try:
        _continue(queued)
    except Exception as exc:
        failed.extend(_log_failure(exc, bucket=t.ref.bucket, key=t.ref.key) for t in queued)

    if failed:
        raise IngestFailedError(f"{len(failed)} of {len(tasks)} objects failed: {json.dumps(failed)[:2000]}")
    return {"processed": done, "continued": [t.ref.key for t in queued], "failed": []}


def handle(event: dict[str, Any], context: Any, shape: EventShape | None = None) -> dict[str, Any]:
    """Dispatch an ingest event (SQS batch, S3 notification, EventBridge, Step Functions item batch) by its shape
    (classify; classified here when not given)."""
    shape = shape or classify(event)
    if shape is EventShape.SQS:
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return dict(process_partial_response(event, _message_processor(context), processor, context))
    try:
        tasks = from_event(event, shape)
    except UnrecognizedEventError as exc:
        _log_failure(exc)
        raise
    if shape is EventShape.S3 and not tasks:
        logger.info("acknowledged s3:TestEvent")
    return _process_direct(tasks, context)
