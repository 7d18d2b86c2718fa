"""Lambda entry point: tell the event kind apart and dispatch. Nothing else happens here.

Importing this module is the Lambda init phase: the model loads once (handler.service).
"""

from __future__ import annotations

from typing import Any

from . import api, service
from .errors import SpladeError
from .telemetry import count_rejection, logger, metrics


def event_kind(event: Any) -> str:
    """``http_v2`` | ``function_url`` | ``rest_v1`` | ``ingest`` | ``direct``."""
    if not isinstance(event, dict):
        return "direct"
    context = event.get("requestContext")
    if isinstance(context, dict):
        if isinstance(context.get("http"), dict):
            domain = str(context.get("domainName", ""))
            return "function_url" if ".lambda-url." in domain else "http_v2"
        if "httpMethod" in event:
            return "rest_v1"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict) and "eventSource" in records[0]:
        return "ingest"
    if "detail-type" in event and "source" in event:  # EventBridge (non-S3 shapes are refused by ingest)
        return "ingest"
    if isinstance(event.get("Items"), list) and "texts" not in event and "text" not in event:
        return "ingest"
    return "direct"


RESOLVERS = {"http_v2": api.http_api, "function_url": api.function_url, "rest_v1": api.rest_api}


def _correlation_id(event: Any) -> str | None:
    context = event.get("requestContext") if isinstance(event, dict) else None
    return context.get("requestId") if isinstance(context, dict) else None


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = event_kind(event)
    logger.append_keys(event_kind=kind)
    logger.set_correlation_id(_correlation_id(event))
    if kind in RESOLVERS:
        return api.resolve(RESOLVERS[kind], event, context)
    if kind == "ingest":
        from .ingest import handle as handle_ingest  # boto3 stays off the HTTP path and out of cold start

        return handle_ingest(event, context)
    try:
        return service.expand_payload(event)
    except SpladeError as exc:
        count_rejection(exc.code)
        raise
