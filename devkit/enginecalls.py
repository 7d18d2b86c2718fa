"""What the search engines' emulations (devkit/mlcommons.py, devkit/esinference.py) send, and how the tests hand it
to the function: one HTTP call as an event of the source it arrives by, through the runtime emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlparse

from .aws import ApiKeyWorld
from .emulator import Emulator
from .events import http_event


@dataclass(frozen=True)
class Call:
    """One HTTP call an engine makes: the chunk of texts, the URL, headers and body."""

    texts: list[str]
    url: str
    headers: dict[str, str]
    body: str


Send = Callable[[Call], tuple[int, str]]


def sender(emu: Emulator, source: str) -> Send:
    """A call as API Gateway (``http_v2``) or the Function URL (``function_url``) hands it to the function."""

    def send(call: Call) -> tuple[int, str]:
        event = http_event(raw=call.body, source=source, path=urlparse(call.url).path, headers=call.headers)
        answer = emu.invoke(event)
        return int(answer["statusCode"]), str(answer["body"])

    return send


@contextmanager
def keyed_function(key: str, env: dict[str, str] | None = None) -> Iterator[tuple[Emulator, ApiKeyWorld]]:
    """The built function under the emulator with ApiAuth=apikey's secret (``key``) in a local Secrets Manager."""
    world = ApiKeyWorld(key)
    try:
        with Emulator({**world.function_env(), **(env or {})}) as emulator:
            yield emulator, world
    finally:
        world.close()
