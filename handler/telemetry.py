"""Logger, metrics and tracer singletons (powertools), created once at import.

The X-Ray tracer is created only when tracing is on (``POWERTOOLS_TRACE_DISABLED=false``, set by the
template's ``EnableTracing`` parameter): building a powertools ``Tracer`` imports the X-Ray SDK and botocore,
which costs 0.1-0.3 s of cold start (measured) that a function without tracing should not pay.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

F = TypeVar("F", bound=Callable[..., Any])

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME", "splade-expander")
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "SpladeExpander"), service=SERVICE)
# An invocation that records no metric (a GET, say) is not a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def count_rejection(code: str) -> None:
    """One metric per error code (``Rejected_too_many_texts`` ...), so 4xx and 5xx traffic shows per cause."""
    metrics.add_metric(name=f"Rejected_{code}", unit=MetricUnit.Count, value=1)


TRACING = os.getenv("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() in ("false", "0", "no")
if TRACING:
    from aws_lambda_powertools import Tracer

    tracer: Any = Tracer(service=SERVICE)
else:
    tracer = None


def capture_method(func: F) -> F:
    """``tracer.capture_method`` when tracing is on, the function itself otherwise."""
    if tracer is None:
        return func
    wrapped: F = tracer.capture_method(func)
    return wrapped
