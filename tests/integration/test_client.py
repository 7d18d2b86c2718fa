"""The client (splade_client) against the real function on 127.0.0.1: the built artifact under the Lambda runtime
emulator behind devkit/apishim.py, which checks SigV4 with a verifier written from AWS's specification (itself
checked against AWS's test suite in tests/unit/test_sigv4.py), never with botocore's signer. The function runs with
small limits (MAX_TEXTS 4, a 6-window work budget, MAX_WINDOWS 8) so batching and splitting happen, and with the
API key option's secret in a local IAM-enforced Secrets Manager for the key tests."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from devkit.apishim import ApiShim, api
from devkit.aws import ApiKeyWorld
from devkit.corpus import prose_paragraphs
from devkit.emulator import Emulator
from devkit.enginecalls import keyed_function
from handler import runtime
from splade_client import AsyncClient, AuthError, Client, RequestError, Retry, UnavailableError
from splade_expander.formats import DECIMALS

pytestmark = pytest.mark.integration
KEY = "k-" + "c" * 38
ACCESS, SECRET = "AKIDLOCALTEST", "local-secret-key"
LIMITS = {"MAX_TEXTS": "4", "MAX_REQUEST_WINDOWS": "6", "MAX_WINDOWS": "8"}
FAST = Retry(attempts=4, base=0.0, cap=0.0)


def texts(n: int) -> list[str]:
    """``n`` texts of mixed lengths: one short text in three, the others prose paragraphs of two or three windows."""
    words = " ".join(prose_paragraphs()).split()
    prose = [" ".join(words[i * 600 : i * 600 + 200 + (i % 3) * 120]) for i in range(n)]
    return [prose[i] if i % 3 else f"short text number {i} about lungs" for i in range(n)]


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Emulator, ApiKeyWorld]]:
    with keyed_function(KEY, LIMITS) as served:
        yield served


def iam_client(shim: ApiShim, cls: Any = Client, **kwargs: Any) -> Any:
    return cls(shim.url, auth="iam", service=shim.service, region="us-east-1",
               credentials=Credentials(ACCESS, SECRET), retry=FAST, **kwargs)  # fmt: skip


def check_vectors(got: list[Any], sent: list[str], kind: str = "document") -> None:
    """One vector per text, in order, each the function's own (the in-process library's, rounded as the API
    rounds): ids equal, weights within 1e-6."""
    want = runtime.expander.expand(sent, kind=kind)
    assert len(got) == len(sent)
    for g, w in zip(got, want, strict=True):
        rounded = w.to_indices(DECIMALS)
        assert g.indices.tolist() == rounded["indices"]
        assert max(abs(a - b) for a, b in zip(g.values.tolist(), rounded["values"], strict=True)) < 1e-6


def test_sigv4_batches_by_max_texts_splits_on_413_and_keeps_order(world: tuple[Emulator, ApiKeyWorld]) -> None:
    """23 mixed texts through the HTTP API shape signed for execute-api: batches of at most MAX_TEXTS, a batch over
    the 6-window budget halved on 413 too_much_work until it fits, every text answered once, in order, equal to the
    function's vectors; the limits came from GET /v1/model."""
    emulator, _ = world
    sent = texts(23)
    with api(emulator, auth="iam", secrets={ACCESS: SECRET}) as shim, iam_client(shim) as client:
        got = client.expand(sent)
        posts = [c for c in shim.calls if c[0] == "POST"]
    check_vectors(got, sent)
    assert ("GET", "/v1/model", 0, 200) in shim.calls and client.limits().max_texts == 4
    assert all(n <= 4 for _, _, n, _ in posts)
    assert any(status == 413 for *_, status in posts)  # the budget forced splits
    assert sum(n for _, _, n, status in posts if status == 200) == len(sent)  # none twice, none lost


def test_without_a_413_the_calls_are_ceil_n_over_max_texts(world: tuple[Emulator, ApiKeyWorld]) -> None:
    """40 short texts at MAX_TEXTS 4: exactly 10 POSTs, all answered 200."""
    emulator, _ = world
    sent = [f"asthma inhaler {i}" for i in range(40)]
    with api(emulator, auth="iam", secrets={ACCESS: SECRET}) as shim, iam_client(shim) as client:
        check_vectors(client.expand(sent), sent)
        posts = [c for c in shim.calls if c[0] == "POST"]
    assert len(posts) == math.ceil(40 / 4) and {c[3] for c in posts} == {200}


def test_a_function_url_signed_for_lambda(world: tuple[Emulator, ApiKeyWorld]) -> None:
    """The client signs for `lambda` when told (a Function URL with IAM auth); the shim checks that scope."""
    emulator, _ = world
    with api(emulator, auth="iam", service="lambda", secrets={ACCESS: SECRET}) as shim, iam_client(shim) as client:
        check_vectors(client.expand(["heart attack symptoms"], kind="query"), ["heart attack symptoms"], "query")
        with iam_client(shim) as wrong_scope:
            wrong_scope.auth.service = "execute-api"
            with pytest.raises(AuthError) as refused:
                wrong_scope.model()
    assert (refused.value.status, refused.value.code) == (403, "forbidden")


def test_a_bad_signature_is_403_and_never_reaches_the_function(world: tuple[Emulator, ApiKeyWorld]) -> None:
    """A wrong secret: API Gateway's 403 as AuthError (code forbidden), no retry, nothing forwarded."""
    emulator, _ = world
    with api(emulator, auth="iam", secrets={ACCESS: "another"}) as shim, iam_client(shim) as client:
        with pytest.raises(AuthError) as refused:
            client.expand(["x"])
        assert shim.calls == [] and len(shim.refused) == 1 and "does not match" in shim.refused[0]
    assert refused.value.status == 403


def test_the_api_key_opens_the_function_url(world: tuple[Emulator, ApiKeyWorld]) -> None:
    """auth='apikey': the x-api-key header reaches the function, which checks it against the stack's secret; a
    wrong key is AuthError 403 invalid_api_key naming the header."""
    emulator, _ = world
    with api(emulator, auth="none", source="function_url") as shim:
        with Client(shim.url, auth="apikey", api_key=KEY, retry=FAST) as client:
            check_vectors(client.expand(["copd", "router password"]), ["copd", "router password"])
        with Client(shim.url, auth="apikey", api_key="wrong", retry=FAST) as client, pytest.raises(AuthError) as bad:
            client.expand(["copd"])
    assert (bad.value.status, bad.value.code, bad.value.field) == (403, "invalid_api_key", "x-api-key")


def test_429_and_503_are_retried_and_then_given_up(world: tuple[Emulator, ApiKeyWorld]) -> None:
    """A shim that answers 429 then 503: the call succeeds on the third attempt. Five 503s with four attempts:
    UnavailableError with the last status; a 4xx is never retried."""
    emulator, _ = world
    with api(emulator, auth="iam", secrets={ACCESS: SECRET}, faults=[429, 503]) as shim, iam_client(shim) as client:
        assert client.model()["limits"]["max_texts"] == 4 and not shim.faults
    with api(emulator, auth="iam", secrets={ACCESS: SECRET}, faults=[503] * 5) as shim, iam_client(shim) as client:
        with pytest.raises(UnavailableError) as gave_up:
            client.model()
        assert shim.faults == [503] and shim.calls == []
    assert (gave_up.value.status, gave_up.value.attempts) == (503, 4)


def test_4xx_errors_name_the_field_in_the_callers_texts(world: tuple[Emulator, ApiKeyWorld]) -> None:
    """A text over MAX_WINDOWS at position 9 (third batch): text_too_long naming texts[9], not the batch's index;
    a bad option: 400 invalid_request naming it; a wrong kind or option name fails before any call."""
    emulator, _ = world
    sent = [f"text {i}" for i in range(12)]
    sent[9] = " ".join(prose_paragraphs())[:40_000]
    with api(emulator, auth="iam", secrets={ACCESS: SECRET}) as shim, iam_client(shim) as client:
        with pytest.raises(RequestError) as too_long:
            client.expand(sent)
        with pytest.raises(RequestError) as bad:
            client.expand(["x"], top_k=0)
        with pytest.raises(ValueError, match="kind"):
            client.expand(["x"], kind="passage")
        with pytest.raises(TypeError, match="topk"):
            client.expand(["x"], topk=3)
    assert (too_long.value.status, too_long.value.code, too_long.value.field) == (413, "text_too_long", "texts[9]")
    assert (bad.value.status, bad.value.code, bad.value.field) == (400, "invalid_request", "top_k")


def test_the_async_client_gives_the_same_vectors(world: tuple[Emulator, ApiKeyWorld]) -> None:
    """AsyncClient: the same batching and splitting, the same vectors, in order; terms=True attaches each id's
    term (to_terms works without a model here)."""
    emulator, _ = world
    sent = texts(9)

    async def run(shim: ApiShim) -> list[Any]:
        async with iam_client(shim, AsyncClient) as client:
            return list(await client.expand(sent, terms=True))

    with api(emulator, auth="iam", secrets={ACCESS: SECRET}) as shim:
        got = asyncio.run(run(shim))
    check_vectors(got, sent)
    assert got[1].to_terms(DECIMALS) == runtime.expander.expand([sent[1]])[0].to_terms(DECIMALS)
