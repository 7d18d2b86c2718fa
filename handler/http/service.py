"""The expand service shared by HTTP and direct invocation: a validated request -> the response object,
with its metrics and the response-size guard. The singletons it uses live in runtime.py."""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from splade_expander.errors import PayloadTooLargeError
from splade_expander.formats import DECIMALS, render, render_chunks
from splade_expander.vectors import SparseVector

from .. import runtime
from ..telemetry import capture_method, logger, metrics
from .request import ExpandRequest, parse_request


def model_block(encoder: str | None = None) -> dict[str, Any]:
    """The model's name, precision, sha256 and vocabulary; with ``encoder``, what produced the vectors
    (``document``, ``query`` or ``idf``); without, every encoder the model has (GET /v1/model)."""
    expander = runtime.expander
    if encoder is None:
        return {**expander.model_info, "encoders": expander.encoders}
    return {**expander.model_info, "encoder": encoder}


def request_windows() -> int:
    """MAX_REQUEST_WINDOWS, or (0, the default) the model's own budget from its manifest."""
    return runtime.settings.max_request_windows or runtime.expander.request_windows


def limits_block() -> dict[str, Any]:
    settings = runtime.settings
    return {
        "max_texts": settings.max_texts,
        "max_text_chars": settings.max_text_chars,
        "max_body_bytes": settings.max_body_bytes,
        "window_tokens": settings.window_tokens,
        "max_windows": settings.max_windows,
        "max_request_windows": request_windows(),
    }


@capture_method
def expand(request: ExpandRequest) -> dict[str, Any]:
    """Run the Expander for a validated request and build the response object."""
    start = time.perf_counter()
    vectors = runtime.expander.expand(
        request.texts,
        kind=request.kind,
        top_k=request.top_k,
        min_weight=request.min_weight,
        truncate=request.truncate,
        prune=request.prune,
        chunks=request.chunks,
        query_encoder=request.query_encoder,
        max_total_windows=request_windows(),
    )
    inference_ms = (time.perf_counter() - start) * 1e3
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
    encoder = runtime.expander.encoder_for(request.kind, request.query_encoder)
    usage = {"texts": len(vectors), "tokens": tokens}
    if request.sparse_embedding_format is not None:  # ml-commons: one token map per text (connector: $.response)
        return {"model": model_block(encoder), "response": token_maps(vectors, request.sparse_embedding_format),
                "usage": usage}  # fmt: skip
    return {"model": model_block(encoder), "data": vector_items(vectors, request), "usage": usage}


def vector_items(vectors: list[SparseVector], request: ExpandRequest) -> list[dict[str, Any]]:
    """``data``: per text its index, the request's format, token and window counts (and chunks when asked)."""
    data = [
        {"index": i, **render(v, request.format), "tokens": v.tokens, "windows": v.windows}
        for i, v in enumerate(vectors)
    ]
    if request.chunks:  # they count toward the response-size guard like the rest of the response
        for item, v in zip(data, vectors, strict=True):
            item["chunks"] = render_chunks(v, request.format)
    return data


def token_maps(vectors: list[SparseVector], sparse_embedding_format: str) -> list[dict[str, float]]:
    """``response``: per text, term -> weight (``word``, ``lexical``) or vocabulary id string -> weight
    (``token_id``), the weights rounded as every format rounds them; what OpenSearch's neural-search reads."""
    if sparse_embedding_format == "token_id":
        maps = []
        for v in vectors:
            rounded = v.to_indices(DECIMALS)
            maps.append(dict(zip(map(str, rounded["indices"]), rounded["values"], strict=True)))
        return maps
    return [v.to_terms(DECIMALS) for v in vectors]


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
    response = expand(parse_request(payload, runtime.settings))
    check_response_size(response)
    return response
