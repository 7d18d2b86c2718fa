"""The asyncio client: the same calls as Client, awaited, over a pooled httpx.AsyncClient."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from splade_expander.vectors import SparseVector

from . import core
from .common import USER_AGENT, Common, reply
from .options import expand_options


class AsyncClient(Common):
    """``await client.expand(texts)``: as Client, for asyncio programs. Connections are pooled per event loop: an
    AsyncClient used from a second ``asyncio.run`` opens a new pool there (httpx binds a pool to its loop)."""

    def __init__(self, url: str, **settings: Any) -> None:
        super().__init__(url, **settings)
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _pool(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http = httpx.AsyncClient(timeout=self.timeout, headers={"user-agent": USER_AGENT})
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
        url, headers, body = self._request(send)
        try:
            return reply(await self._pool().request(send.method, url, content=body, headers=headers))
        except httpx.HTTPError as exc:
            return core.Reply(error=exc)

    async def model(self) -> dict[str, Any]:
        return dict(await self._run(core.model(self.retry)))

    async def limits(self) -> core.Limits:
        return self._limits or self._capped(await self.model())

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
