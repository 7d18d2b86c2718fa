"""The client's errors: what the API refused (with its code and the request field, indexed in the caller's texts),
and what stayed unavailable after the retries."""

from __future__ import annotations


class ClientError(Exception):
    """Any failure of a client call."""


class ConfigurationError(ClientError):
    """The client cannot make a request as set up (no credentials, no region, an unknown auth)."""


class RequestError(ClientError):
    """A 4xx answer: ``status``, the API's ``code`` (``invalid_request``, ``text_too_long``, ...), its message, and
    ``field`` (``texts[7]`` names the caller's 8th text, whatever batch it was sent in), ``reason`` where given."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, reason: str | None = None):
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status, self.code, self.message, self.field, self.reason = status, code, message, field, reason


class AuthError(RequestError):
    """401/403: a missing or refused signature or API key (API Gateway's own 403 has code ``forbidden``)."""


class UnavailableError(ClientError):
    """429 or 5xx (or no connection, or a timeout) on every attempt: ``status`` of the last one (None: no answer)."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 0):
        super().__init__(message)
        self.status, self.attempts = status, attempts
