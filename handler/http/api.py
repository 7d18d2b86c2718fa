"""HTTP routes (powertools event_handler) for HTTP API v2, REST API v1 and Function URLs.

``make_resolver`` builds one resolver per payload format and registers every route of routes.ROUTES on it (no
shared Router: each handler reads its own resolver's event). Errors become ``{"error": {"code", "message",
"field"}}`` with the status of their type (see errors.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from . import lazy_packages  # noqa: F401  # isort: skip  # before the first Powertools event_handler import
from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    CORSConfig,
    LambdaFunctionUrlResolver,
    Response,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as PowertoolsNotFound

from splade_expander.errors import (
    InternalError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    SpladeError,
    UnsupportedMediaTypeError,
    echo,
)

from .. import runtime
from ..events import EventShape
from ..telemetry import count_rejection, logger
from . import service
from .request import parse_request
from .routes import ROUTES, allowed_methods

JSON = "application/json"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(status_code=status, content_type=JSON, body=text, headers=headers or {})


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body(event: Any, max_bytes: int) -> Any:
    """The request body as a JSON value: checks media type, base64, size, UTF-8 and JSON syntax."""
    content_type = (event.headers.get("content-type") or event.headers.get("Content-Type") or "").lower()
    media = content_type.split(";")[0].strip()
    if media and media != JSON and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(f"the body must be JSON (Content-Type: {JSON}), not {echo(media)}")
    raw_body = event.body or ""
    if event.is_base64_encoded:
        if len(raw_body) > max_bytes * 4 // 3 + 4:
            raise PayloadTooLargeError(f"the body exceeds {max_bytes} bytes", code="body_too_large")
        try:
            data = base64.b64decode(raw_body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("the body is marked base64 but is not valid base64") from None
    else:
        data = raw_body.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"the body has {len(data)} bytes; the limit is {max_bytes}", code="body_too_large")
    if not data.strip():
        raise InvalidRequestError("the body is empty; send a JSON object")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequestError("the body is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidRequestError("the body is nested too deeply") from None
    except ValueError as exc:
        raise InvalidRequestError(f"the body is not valid JSON: {exc}") from None


def post_expand(event: Any) -> Response[str]:
    payload = read_json_body(event, runtime.settings.max_body_bytes)
    response = json_response(200, service.expand(parse_request(payload, runtime.settings)))
    body = response.body or ""
    if len(body) * 6 + service.ENVELOPE_BYTES > service.RESPONSE_LIMIT_BYTES:  # could be too large: measure
        service.check_response_size(body, service.RESPONSE_LIMIT_BYTES - service.ENVELOPE_BYTES)
    return response


def get_model(_: Any) -> Response[str]:
    return json_response(200, {"model": service.model_block(), "limits": service.limits_block()})


def get_openapi(_: Any) -> Response[str]:
    from .openapi import openapi_document  # only this route needs it: kept out of the init phase

    return json_response(200, openapi_document())


HANDLERS: dict[str, Callable[[Any], Response[str]]] = {
    "expand": post_expand,
    "model": get_model,
    "openapi": get_openapi,
}


def _error_response(resolver: ApiGatewayResolver, exc: SpladeError) -> Response[str]:
    count_rejection(exc.code)
    headers = {"Allow": ", ".join(allowed_methods(resolver.current_event.path))} if exc.status == 405 else None
    return json_response(exc.status, exc.to_dict(), headers)


def _not_found(resolver: ApiGatewayResolver) -> Response[str]:
    event = resolver.current_event
    path = event.path
    allowed = allowed_methods(path)  # trailing slashes were removed before routing
    if allowed:
        return _error_response(
            resolver,
            MethodNotAllowedError(f"{echo(event.http_method)} is not allowed on {echo(path)}; use {allowed[0]}"),
        )
    return _error_response(
        resolver, NotFoundError(f"no route {echo(event.http_method)} {echo(path)}; see GET /v1/openapi.json")
    )


def _unexpected(resolver: ApiGatewayResolver, exc: Exception) -> Response[str]:
    request_id = getattr(resolver.lambda_context, "aws_request_id", "unknown")
    logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
    return _error_response(resolver, InternalError(f"internal error; request id {request_id}"))


# The request headers a browser may send: JSON plus a SigV4 signature (the HTTP API requires IAM auth), or the API
# key (ApiAuth=apikey, the Function URL).
CORS_HEADERS = [
    "Content-Type", "Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256", "X-Api-Key"
]  # fmt: skip


def _cors(origins: tuple[str, ...]) -> CORSConfig | None:
    """CORS for ALLOWED_ORIGINS (off when empty): preflight OPTIONS answered with 204, and each response to an
    allowed origin carries Access-Control-Allow-Origin."""
    if not origins:
        return None
    return CORSConfig(allow_origin=origins[0], extra_origins=list(origins[1:]), allow_headers=CORS_HEADERS, max_age=600)


def make_resolver(cls: type[ApiGatewayResolver], origins: tuple[str, ...] = ()) -> ApiGatewayResolver:
    """A resolver of one payload format with every route of ROUTES and the error handlers registered on it."""
    resolver = cls(strip_prefixes=[], cors=_cors(origins))

    def bind(handler: Callable[[Any], Response[str]]) -> Callable[[], Response[str]]:
        return lambda: handler(resolver.current_event)

    for route in ROUTES:
        resolver.route(route.path, route.method)(bind(HANDLERS[route.operation]))
    resolver.exception_handler(SpladeError)(lambda exc: _error_response(resolver, exc))
    resolver.exception_handler(PowertoolsNotFound)(lambda _: _not_found(resolver))
    resolver.not_found(lambda _: _not_found(resolver))
    resolver.exception_handler(Exception)(lambda exc: _unexpected(resolver, exc))
    return resolver


RESOLVER_TYPES: dict[EventShape, type[ApiGatewayResolver]] = {  # one per events.HTTP_SHAPES
    EventShape.HTTP_V2: APIGatewayHttpResolver,
    EventShape.REST_V1: APIGatewayRestResolver,
    EventShape.FUNCTION_URL: LambdaFunctionUrlResolver,
}
RESOLVERS = {source: make_resolver(cls, runtime.settings.allowed_origins) for source, cls in RESOLVER_TYPES.items()}


def _without_trailing_slash(event: dict[str, Any]) -> dict[str, Any]:
    """``/v1/expand/`` is ``/v1/expand`` on every payload format (REST v1 already treats it so; v2 and Function
    URLs would not match it). The caller's event is not changed."""
    fixed = {}
    for key in ("rawPath", "path"):
        path = event.get(key)
        if isinstance(path, str) and len(path) > 1 and path.endswith("/"):
            fixed[key] = path.rstrip("/") or "/"
    return {**event, **fixed} if fixed else event


def resolve(source: EventShape, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Resolve an HTTP event of shape ``source`` (events.classify) with that payload format's resolver. With an
    API key configured, a Function URL request is checked first (apikey.py): refused before any route."""
    if source is EventShape.FUNCTION_URL and runtime.settings.api_key_secret_id:
        from .apikey import refusal  # boto3 only for keyed requests: the init phase does not pay for it

        try:
            refused = refusal(event)
        except Exception:  # the secret cannot be read (a missing grant, a throttled call): closed, never open
            logger.exception("API key check failed", extra={"error_type": "secret_unreadable"})
            request_id = getattr(context, "aws_request_id", "unknown")
            refused = InternalError(f"internal error; request id {request_id}")
        if refused is not None:
            count_rejection(refused.code)
            text = json.dumps(refused.to_dict(), ensure_ascii=False, separators=(",", ":"))
            return {"statusCode": refused.status, "headers": {"Content-Type": JSON}, "body": text}
    result: dict[str, Any] = RESOLVERS[source].resolve(_without_trailing_slash(event), context)
    return result
