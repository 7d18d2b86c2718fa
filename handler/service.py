"""The expand service shared by HTTP and direct invocation: settings, the Expander, request -> response.

The settings and the Expander are module-level singletons: the model loads once, during the Lambda
init phase, when this module is imported.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from .config import Settings
from .errors import InvalidRequestError, PayloadTooLargeError, echo
from .expander import KINDS, Expander, is_finite_number
from .formats import FORMATS, render
from .telemetry import capture_method, logger, metrics

settings = Settings.from_env()
expander = Expander(settings=settings)


@dataclass(frozen=True)
class Field:
    """One request field: its JSON type and constraints. Drives validation and the OpenAPI schema."""

    name: str
    type: str  # JSON Schema type
    description: str
    default: Any = None
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    nullable: bool = False
    items: str | None = None  # item type of an array


FIELDS: tuple[Field, ...] = (
    Field("texts", "array", "Texts to expand (1 to MAX_TEXTS). Use `text` for one text.", items="string"),
    Field("text", "string", "One text to expand (instead of `texts`)."),
    Field("kind", "string", "`document` (windows over long text) or `query` (one window).", "document", KINDS),
    Field("top_k", "integer", "Keep at most this many terms, heaviest first; null keeps all.", None, (), 1, True),
    Field("min_weight", "number", "Keep terms whose weight is >= this value.", 0.0, (), 0.0),
    Field("format", "string", "`indices` (indices + values), `terms` ({term: weight}) or `both`.", "indices", FORMATS),
    Field("truncate", "boolean", "Only the first window of a long text (default: every window, max-pooled).", False),
)
FIELD_NAMES = {f.name for f in FIELDS}


def _type_ok(value: Any, json_type: str) -> bool:
    if json_type == "string":
        return isinstance(value, str)
    if json_type == "boolean":
        return isinstance(value, bool)
    if json_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if json_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and is_finite_number(value)
    if json_type == "array":
        return isinstance(value, list)
    return False


def _article(json_type: str) -> str:
    return f"an {json_type}" if json_type[0] in "aeiou" else f"a {json_type}"


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@dataclass(frozen=True)
class ExpandRequest:
    texts: list[str]
    kind: str = "document"
    top_k: int | None = None
    min_weight: float = 0.0
    format: str = "indices"
    truncate: bool = False


def parse_request(payload: Any, limits: Settings = settings) -> ExpandRequest:
    """Validate a request object against FIELDS and the limits; raise a typed error naming the field.

    Shape and type errors (400) are found before limits (413), and both before any inference.
    """
    if not isinstance(payload, dict):
        raise InvalidRequestError(f"the request must be a JSON object, not {_json_type_name(payload)}")
    for key in payload:
        if key not in FIELD_NAMES:
            raise InvalidRequestError(f"unknown field {echo(repr(key))}", field=echo(str(key)))
    if ("texts" in payload) == ("text" in payload):
        raise InvalidRequestError("give exactly one of `texts` (a list) or `text` (a string)", field="texts")
    values: dict[str, Any] = {}
    for f in FIELDS:
        if f.name not in payload:
            continue
        value = payload[f.name]
        if value is None and f.nullable:
            values[f.name] = None
            continue
        if not _type_ok(value, f.type):
            got = _json_type_name(value)
            if f.type == "number" and isinstance(value, float):
                got = "a non-finite number"
            elif f.type == "number" and isinstance(value, int) and not isinstance(value, bool):
                got = "an integer beyond the float range"
            raise InvalidRequestError(f"{f.name} must be {_article(f.type)}, not {got}", field=f.name)
        if f.enum and value not in f.enum:
            raise InvalidRequestError(f"{f.name} must be one of {', '.join(f.enum)}", field=f.name)
        if f.minimum is not None and value < f.minimum:
            raise InvalidRequestError(f"{f.name} must be >= {f.minimum:g}", field=f.name)
        values[f.name] = value
    texts = values.pop("texts", None)
    if texts is None:
        texts = [values.pop("text")]
    values.pop("text", None)
    if not texts:
        raise InvalidRequestError("texts must not be empty", field="texts")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequestError(f"texts[{i}] must be a string, not {_json_type_name(text)}", field=f"texts[{i}]")
    if len(texts) > limits.max_texts:
        raise PayloadTooLargeError(
            f"{len(texts)} texts exceed the limit of {limits.max_texts} per request",
            field="texts",
            code="too_many_texts",
        )
    for i, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            raise PayloadTooLargeError(
                f"texts[{i}] has {len(text)} characters; the limit is {limits.max_text_chars}",
                field=f"texts[{i}]",
                code="text_too_long",
            )
    return ExpandRequest(texts=texts, **values)


def model_block() -> dict[str, Any]:
    return expander.model_info


def limits_block() -> dict[str, Any]:
    return {
        "max_texts": settings.max_texts,
        "max_text_chars": settings.max_text_chars,
        "max_body_bytes": settings.max_body_bytes,
        "window_tokens": settings.window_tokens,
        "max_windows": settings.max_windows,
        "max_request_windows": settings.max_request_windows,
    }


@capture_method
def expand(request: ExpandRequest) -> dict[str, Any]:
    """Run the Expander for a validated request and build the response object."""
    start = time.perf_counter()
    vectors = expander.expand(
        request.texts,
        kind=request.kind,
        top_k=request.top_k,
        min_weight=request.min_weight,
        truncate=request.truncate,
        max_total_windows=settings.max_request_windows,
    )
    inference_ms = (time.perf_counter() - start) * 1e3
    data = [
        {"index": i, **render(v, request.format), "tokens": v.tokens, "windows": v.windows}
        for i, v in enumerate(vectors)
    ]
    tokens = sum(v.tokens for v in vectors)
    windows = sum(v.windows for v in vectors)
    metrics.add_metric(name="Texts", unit=MetricUnit.Count, value=len(vectors))
    metrics.add_metric(name="Tokens", unit=MetricUnit.Count, value=tokens)
    metrics.add_metric(name="Windows", unit=MetricUnit.Count, value=windows)
    metrics.add_metric(name="InferenceMs", unit=MetricUnit.Milliseconds, value=round(inference_ms, 3))
    # The EMF line above already records the counts per request; this line is for debugging sessions.
    logger.debug(
        "expanded", extra={"texts": len(vectors), "tokens": tokens, "windows": windows, "ms": round(inference_ms, 2)}
    )
    return {"model": model_block(), "data": data, "usage": {"texts": len(vectors), "tokens": tokens}}


# Lambda fails an invocation whose response exceeds 6 MB. That counts the serialized response: the runtime's
# json.dumps, with non-ASCII escaped and, for HTTP, the body string escaped once more inside the envelope.
RESPONSE_LIMIT_BYTES = 6_000_000
ENVELOPE_BYTES = 4_096  # statusCode, headers, cookies, isBase64Encoded around an HTTP body


def serialized_bytes(value: Any) -> int:
    """Bytes of ``value`` as the Lambda runtime serializes a response (json.dumps defaults, ASCII only)."""
    return len(json.dumps(value))


def check_response_size(value: Any, limit: int | None = None) -> None:
    """Refuse (413 ``response_too_large``) a response Lambda could not return, instead of failing as a 5xx."""
    limit = RESPONSE_LIMIT_BYTES if limit is None else limit
    size = serialized_bytes(value)
    if size > limit:
        raise PayloadTooLargeError(
            f"the response would be {size} bytes, over Lambda's {limit}-byte limit; "
            "ask for fewer terms (top_k, min_weight), format indices, or fewer texts per request",
            code="response_too_large",
        )


def expand_payload(payload: Any) -> dict[str, Any]:
    """Validate a request object and expand it (direct invocation; the HTTP route checks its own envelope)."""
    response = expand(parse_request(payload))
    check_response_size(response)
    return response
