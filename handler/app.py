"""Lambda entry point: tell the event apart (events.classify) and dispatch. Nothing else happens here.

Importing this module is the Lambda init phase: the model loads once (handler.runtime).
"""

from __future__ import annotations

from typing import Any

from . import artifact  # noqa: F401  # isort: skip  # first: a build for another machine fails before numpy loads
from splade_expander.errors import SpladeError

from .events import EventShape, classify
from .http import api, service
from .telemetry import count_rejection, logger, metrics


def _correlation_id(event: Any) -> str | None:
    context = event.get("requestContext") if isinstance(event, dict) else None
    return context.get("requestId") if isinstance(context, dict) else None


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    shape = classify(event)
    logger.append_keys(event_source=shape.source)
    logger.set_correlation_id(_correlation_id(event))
    if shape.is_http:
        return api.resolve(shape, event, context)
    if shape is not EventShape.DIRECT:
        from .ingest.entry import handle as handle_ingest  # boto3 stays off the HTTP path and out of cold start

        return handle_ingest(event, context, shape)
    try:
        return service.expand_payload(event)
    except SpladeError as exc:
        count_rejection(exc.code)
        raise
