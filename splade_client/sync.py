"""The blocking client: one connection pool (httpx), reused across calls."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from splade_expander.vectors import SparseVector

from . import core
from .auth import Auth, make_auth
from .options import DEFAULT_TIMEOUT, expand_options

USER_AGENT = "splade-expander-client/0.2"


class Client:
    """``POST /v1/expand`` and ``GET /v1/model`` of a deployed expander.

    ``url``: the stack's ``ApiUrl`` (HTTP API, SigV4 for ``execute-api``) or ``FunctionUrl`` (SigV4 for ``lambda``,
    or the API key with ``auth="apikey"``). ``timeout``: seconds per attempt, below API Gateway's 30 s integration
    limit by default. ``retry``: attempts and backoff (core.Retry). ``max_texts``: a batch size below the server's.
    """

    def __init__(
        self, url: str, *, auth: str | Auth = "iam", api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT,
        retry: core.Retry | None = None, max_texts: int | None = None, **sigv4: Any,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.auth = make_auth(self.url, auth, api_key, **sigv4)
        self.retry = retry or core.Retry()
        self._max_texts = max_texts
        self._limits: core.Limits | None = None
        self._http = httpx.Client(timeout=timeout, headers={"user-agent": USER_AGENT})

    def _run(self, step: core.Step) -> Any:
        try:
            message = next(step)
            while True:
                if isinstance(message, core.Sleep):
                    time.sleep(message.seconds)
                    message = step.send(None)
                else:
                    message = step.send(self._send(message))
        except StopIteration as done:
            return done.value

    def _send(self, send: core.Send) -> core.Reply:
        url = self.url + send.path
        body = send.body or b""
        headers = {"content-type": "application/json"} if send.body is not None else {}
        headers.update(self.auth.headers(send.method, url, body, headers))
        try:
            answer = self._http.request(send.method, url, content=body if send.body is not None else None,
                                        headers=headers)  # fmt: skip
        except httpx.HTTPError as exc:
            return core.Reply(error=exc)
        return core.Reply(answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.content)

    def model(self) -> dict[str, Any]:
        """The model and its limits (``GET /v1/model``)."""
        return dict(self._run(core.model(self.retry)))

    def limits(self) -> core.Limits:
        if self._limits is None:
            found = core.Limits.from_model(self.model())
            cap = min(found.max_texts, self._max_texts or found.max_texts)
            self._limits = core.Limits(cap, found.max_body_bytes)
        return self._limits

    def expand(self, texts: Sequence[str], *, kind: str = "document", **options: Any) -> list[SparseVector]:
        """One SparseVector per text, in order (``kind``: document or query; ``top_k``, ``min_weight``,
        ``truncate``, ``query_encoder``, ``prune``, ``terms=True`` to attach each id's term)."""
        if not texts:
            return []
        return list(self._run(core.expand(texts, expand_options(kind, **options), self.limits(), self.retry)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
