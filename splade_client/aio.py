"""The asyncio client: the same calls as Client, awaited, over one pooled httpx.AsyncClient."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from splade_expander.vectors import SparseVector

from . import core
from .auth import Auth, make_auth
from .options import DEFAULT_TIMEOUT, expand_options
from .sync import USER_AGENT


class AsyncClient:
    """``await client.expand(texts)``: as Client (see there), for asyncio programs. Connections are pooled per
    event loop: an AsyncClient used from a second ``asyncio.run`` opens a new pool there (httpx binds a pool to
    the loop that opened it)."""

    def __init__(
        self, url: str, *, auth: str | Auth = "iam", api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT,
        retry: core.Retry | None = None, max_texts: int | None = None, **sigv4: Any,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.auth = make_auth(self.url, auth, api_key, **sigv4)
        self.retry = retry or core.Retry()
        self._max_texts = max_texts
        self._limits: core.Limits | None = None
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _pool(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http = httpx.AsyncClient(timeout=self._timeout, headers={"user-agent": USER_AGENT})
            self._loop = loop
        return self._http

    async def _run(self, step: core.Step) -> Any:
        try:
            message = next(step)
            while True:
                if isinstance(message, core.Sleep):
                    await asyncio.sleep(message.seconds)
                    message = step.send(None)
                else:
                    message = step.send(await self._send(message))
        except StopIteration as done:
            return done.value

    async def _send(self, send: core.Send) -> core.Reply:
        url = self.url + send.path
        body = send.body or b""
        headers = {"content-type": "application/json"} if send.body is not None else {}
        headers.update(self.auth.headers(send.method, url, body, headers))
        try:
            answer = await self._pool().request(send.method, url, content=body if send.body is not None else None,
                                              headers=headers)  # fmt: skip
        except httpx.HTTPError as exc:
            return core.Reply(error=exc)
        return core.Reply(answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.content)

    async def model(self) -> dict[str, Any]:
        return dict(await self._run(core.model(self.retry)))

    async def limits(self) -> core.Limits:
        if self._limits is None:
            found = core.Limits.from_model(await self.model())
            self._limits = core.Limits(min(found.max_texts, self._max_texts or found.max_texts), found.max_body_bytes)
        return self._limits

    async def expand(self, texts: Sequence[str], *, kind: str = "document", **options: Any) -> list[SparseVector]:
        if not texts:
            return []
        step = core.expand(texts, expand_options(kind, **options), await self.limits(), self.retry)
        return list(await self._run(step))

    async def aclose(self) -> None:
        if self._http is not None and self._loop is asyncio.get_running_loop():
            await self._http.aclose()
        self._http = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
