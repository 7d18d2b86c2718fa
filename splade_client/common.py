"""What Client and AsyncClient share: their settings, how a core.Send becomes an HTTP request, and the limits."""

from __future__ import annotations

from typing import Any

import httpx

from . import core
from .auth import Auth, make_auth
from .options import DEFAULT_TIMEOUT

USER_AGENT = "splade-expander-client/0.2"


class Common:
    """``url``: the stack's ``ApiUrl`` (HTTP API, SigV4 for ``execute-api``) or ``FunctionUrl`` (SigV4 for
    ``lambda``, or the API key with ``auth="apikey"``). ``timeout``: seconds per attempt, below API Gateway's
    30 s integration limit by default. ``retry``: attempts and backoff (core.Retry). ``max_texts``: a batch size
    below the server's. ``sigv4``: ``service``, ``region``, ``credentials``, ``session`` for auth.SigV4."""

    def __init__(
        self, url: str, *, auth: str | Auth = "iam", api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT,
        retry: core.Retry | None = None, max_texts: int | None = None, **sigv4: Any,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.auth = make_auth(self.url, auth, api_key, **sigv4)
        self.retry = retry or core.Retry()
        self.timeout = timeout
        self._max_texts = max_texts
        self._limits: core.Limits | None = None

    def _request(self, send: core.Send) -> tuple[str, dict[str, str], bytes | None]:
        """URL, headers (auth included: SigV4 signs exactly these bytes) and body of one Send."""
        url = self.url + send.path
        headers = {"content-type": "application/json"} if send.body is not None else {}
        headers.update(self.auth.headers(send.method, url, send.body or b"", headers))
        return url, headers, send.body

    def _capped(self, model: dict[str, Any]) -> core.Limits:
        found = core.Limits.from_model(model)
        self._limits = core.Limits(min(found.max_texts, self._max_texts or found.max_texts), found.max_body_bytes)
        return self._limits


def reply(answer: httpx.Response) -> core.Reply:
    return core.Reply(answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.content)
