"""Error types and the one registry of error codes, each with where it appears, its HTTP status and whether a
retry can fix it.

Direct (non-HTTP) callers see the class name as Lambda's ``errorType``; HTTP callers get
``{"error": {"code", "message", "field"?, "reason"?}}`` with ``status``. ``reason`` tells apart the checks that
share one public code (``REASONS``). Ingest's errors files use the object and line codes. The OpenAPI document,
the docs' error tables and the permanent/transient split derive from ``CODES``; a test fails when the code raises
a code that is not registered (tests/unit/test_errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Code:
    """One public error code: ``where`` it appears (``request``: an HTTP/direct error body; ``object``: an
    object-level record or log line of ingest; ``line``: an errors-file record of one line or document), its
    HTTP status (requests), and for objects whether no retry can fix it (recorded and acknowledged)."""

    code: str
    where: frozenset[str]
    status: int | None = None
    permanent: bool = False


def _codes(*rows: tuple[str, str, int | None, bool]) -> dict[str, Code]:
    return {code: Code(code, frozenset(where.split()), status, permanent) for code, where, status, permanent in rows}


CODES = _codes(
    # code                    where            status  permanent
    ("invalid_request",        "request",        400, False),
    ("missing_api_key",        "request",        401, False),
    ("invalid_api_key",        "request",        403, False),
    ("unrecognized_event",     "request object", 400, False),
    ("not_found",              "request",        404, False),
    ("method_not_allowed",     "request",        405, False),
    ("too_many_texts",         "request",        413, False),
    ("text_too_long",          "request line",   413, False),
    ("body_too_large",         "request",        413, False),
    ("too_much_work",          "request",        413, False),
    ("response_too_large",     "request",        413, False),
    ("unsupported_media_type", "request",        415, False),
    ("internal_error",         "request",        500, False),
    ("ingest_failed",          "request",        500, False),
    ("object_too_large",       "object",         None, True),
    ("unsupported_type",       "object",         None, True),
    ("binary_object",          "object",         None, True),
    ("not_utf8",               "object line",    None, True),
    ("unreadable_object",      "object",         None, True),
    ("too_many_runs",          "object",         None, True),
    ("access_denied",          "object",         None, False),
    ("timeout",                "object",         None, False),
    ("commit_conflict",        "object",         None, False),
    ("not_configured",         "object",         None, False),
    ("missing_object",         "object",         None, False),
    ("invalid_json",           "line",           None, False),
    ("not_an_object",          "line",           None, False),
    ("missing_text",           "line",           None, False),
    ("text_not_string",        "line",           None, False),
    ("line_too_long",          "line",           None, False),
    ("more_errors",            "line",           None, False),
)  # fmt: skip
# Checks that share one public code, told apart by the error body's ``reason``.
REASONS = {
    "text_too_long": ("max_text_chars", "max_windows", "chars_bound"),
}


def codes_where(where: str) -> list[str]:
    """The registered codes that appear in ``where`` (request, object or line), in registry order."""
    return [c.code for c in CODES.values() if where in c.where]


ECHO_CHARS = 200  # at most this much of any user input appears in an error message or field
MESSAGE_CHARS = 1_000  # and no message is longer than this: error bodies stay tiny whatever was sent


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """User input as it may appear in an error: its repr, cut to ``limit`` characters with the rest counted."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class SpladeError(Exception):
    """Base class: an error the service reports to its caller."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self, message: str, *, field: str | None = None, code: str | None = None, index: int | None = None,
        reason: str | None = None,
    ) -> None:  # fmt: skip
        """``index``: the position of the failing text in the request (its field is then ``texts[index]``);
        ``reason``: which check of a shared code (REASONS)."""
        super().__init__(message)
        self.message = message
        self.index = index
        self.field = f"texts[{index}]" if field is None and index is not None else field
        self.reason = reason
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": echo(self.message, MESSAGE_CHARS)}
        if self.field is not None:
            body["field"] = echo(self.field)
        if self.reason is not None:
            body["reason"] = self.reason
        return {"error": body}


class InvalidRequestError(SpladeError, ValueError):
    """The input has the wrong shape or type (HTTP 400)."""

    status = 400
    code = "invalid_request"


class PayloadTooLargeError(SpladeError):
    """A configured limit is exceeded: too many texts, a text too long, a body too large (HTTP 413)."""

    status = 413
    code = "payload_too_large"


class ApiKeyMissingError(SpladeError):
    """ApiAuth=apikey: the request has no x-api-key header (HTTP 401)."""

    status = 401
    code = "missing_api_key"


class ApiKeyInvalidError(SpladeError):
    """ApiAuth=apikey: the x-api-key header is neither the current nor the previous key (HTTP 403)."""

    status = 403
    code = "invalid_api_key"


class UnsupportedMediaTypeError(SpladeError):
    """The body is not JSON (HTTP 415)."""

    status = 415
    code = "unsupported_media_type"


class NotFoundError(SpladeError):
    """No such route (HTTP 404)."""

    status = 404
    code = "not_found"


class MethodNotAllowedError(SpladeError):
    """The route exists but not for this method (HTTP 405)."""

    status = 405
    code = "method_not_allowed"


class UnrecognizedEventError(SpladeError):
    """The event is none of the shapes this function serves (a Kinesis or DynamoDB record, an S3 event name
    other than ObjectCreated / ObjectRemoved, an EventBridge detail-type other than Object Created / Deleted).

    It fails loudly: a direct invocation raises it, and an SQS message with such a body is reported as a batch
    item failure (a poison message: it reaches the DLQ after maxReceiveCount)."""

    status = 400
    code = "unrecognized_event"


# Object failures that no retry can fix: recorded in the errors file and acknowledged, never sent to the DLQ.
PERMANENT_CODES = frozenset(c.code for c in CODES.values() if c.permanent)


class ObjectFailedError(SpladeError):
    """An S3 object cannot be processed. ``permanent`` (its code is in PERMANENT_CODES): recorded and
    acknowledged; otherwise (access denied, out of time, S3 errors) the message is retried and finally reaches
    the DLQ."""

    status = 422
    code = "object_failed"

    @property
    def permanent(self) -> bool:
        return self.code in PERMANENT_CODES


class IngestFailedError(SpladeError):
    """Some objects of a direct S3 / EventBridge / Step Functions event failed (the invocation fails)."""

    status = 500
    code = "ingest_failed"


class ModelAssetsError(RuntimeError):
    """The model files are missing or unusable. Raised when an Expander is built, so in Lambda the init phase
    fails loudly (the function never serves a request without its model); it is never an HTTP response."""


class InternalError(SpladeError):
    """An unexpected failure; the message carries the request id, never a stack trace (HTTP 500)."""

    status = 500
    code = "internal_error"
