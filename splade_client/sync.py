"""The blocking client: one connection pool (httpx), reused across calls."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from splade_expander.vectors import SparseVector

from . import core
from .common import USER_AGENT, Common, reply
from .options import expand_options


class Client(Common):
    """``POST /v1/expand`` and ``GET /v1/model`` of a deployed expander (arguments: common.Common)."""

    def __init__(self, url: str, **settings: Any) -> None:
        super().__init__(url, **settings)
        self._http = httpx.Client(timeout=self.timeout, headers={"user-agent": USER_AGENT})

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
        url, headers, body = self._request(send)
        try:
            return reply(self._http.request(send.method, url, content=body, headers=headers))
        except httpx.HTTPError as exc:
            return core.Reply(error=exc)

    def model(self) -> dict[str, Any]:
        """The model and its limits (``GET /v1/model``)."""
        return dict(self._run(core.model(self.retry)))

    def limits(self) -> core.Limits:
        return self._limits or self._capped(self.model())

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
