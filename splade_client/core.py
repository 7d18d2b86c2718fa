"""What a client call does, without any I/O (the sync and async clients only carry the messages): batching by the
server's limits, splitting a batch the server refuses as too big, retrying what a retry can fix, and reading the
answers into the library's SparseVector, in the caller's order.

The steps are generators: they yield a ``Send`` (and get back a ``Reply``) or a ``Sleep``, and return the result.

- Batches: consecutive texts, at most ``max_texts`` each and at most ``max_body_bytes`` of JSON.
- A 413 of ``too_many_texts``, ``too_much_work``, ``body_too_large`` or ``response_too_large`` (or API Gateway's own
  413) on a batch of two or more texts: the batch is halved and both halves sent, in order; on one text it is the
  caller's error (that text alone is too much).
- 429, 500, 502, 503, 504 and transport errors: retried up to ``attempts`` times with capped, fully jittered
  exponential backoff (a ``Retry-After`` of seconds is honoured, within the cap); then UnavailableError.
- Other 4xx: RequestError (AuthError for 401/403) with the field renamed to the caller's index.
"""

from __future__ import annotations

import json
import random
import re
from collections import deque
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from splade_expander.vectors import SparseVector

from .errors import AuthError, RequestError, UnavailableError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SPLIT_CODES = frozenset({"too_many_texts", "too_much_work", "body_too_large", "response_too_large"})
EXPAND_PATH, MODEL_PATH = "/v1/expand", "/v1/model"
ENVELOPE_BYTES = 512  # the request body's JSON around the texts (options, brackets), counted per batch


@dataclass(frozen=True)
class Send:
    method: str
    path: str
    body: bytes | None = None


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Reply:
    """An answer (``status``, lower-cased ``headers``, ``body``) or a transport failure (``error``)."""

    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: BaseException | None = None


Step = Generator[Send | Sleep, Reply | None, Any]


@dataclass(frozen=True)
class Retry:
    """``attempts`` tries in all; the n-th wait is uniform in [0, min(cap, base * 2**n)] (full jitter)."""

    attempts: int = 5
    base: float = 0.1
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and re.fullmatch(r"\d+(\.\d+)?", retry_after.strip()):
            return min(self.cap, float(retry_after))
        return self.rng.uniform(0, min(self.cap, self.base * 2**attempt))


@dataclass(frozen=True)
class Limits:
    """What ``GET /v1/model`` says one request may carry."""

    max_texts: int
    max_body_bytes: int

    @classmethod
    def from_model(cls, answer: Mapping[str, Any]) -> Limits:
        limits = answer.get("limits", {})
        return cls(int(limits.get("max_texts", 64)), int(limits.get("max_body_bytes", 6_000_000)))


def call(send: Send, retry: Retry) -> Step:
    """One request with retries; returns the final Reply (2xx, or a status no retry fixes)."""
    last: Reply | None = None
    for attempt in range(retry.attempts):
        reply = yield send
        assert reply is not None
        last = reply
        if reply.error is None and reply.status not in RETRY_STATUSES:
            return reply
        if attempt + 1 < retry.attempts:
            yield Sleep(retry.delay(attempt, reply.headers.get("retry-after")))
    assert last is not None
    what = f"HTTP {last.status}" if last.error is None else f"{type(last.error).__name__}: {last.error}"
    raise UnavailableError(f"{send.method} {send.path}: {what} after {retry.attempts} attempts",
                           None if last.error else last.status, retry.attempts)  # fmt: skip


def _error_body(reply: Reply) -> dict[str, Any]:
    try:
        body = json.loads(reply.body)
    except ValueError:
        return {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return dict(body["error"])
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers: {"message": "Forbidden"}
        return {"message": str(body["message"])}
    return {}


def request_error(reply: Reply, offset: int = 0) -> RequestError:
    """The typed error of a 4xx reply; ``texts[i]`` of a batch starting at ``offset`` becomes ``texts[offset+i]``."""
    error = _error_body(reply)
    code = str(error.get("code") or {403: "forbidden", 413: "payload_too_large"}.get(reply.status, "http_error"))
    name = error.get("field")
    if isinstance(name, str) and (m := re.fullmatch(r"texts\[(\d+)\](.*)", name)):
        name = f"texts[{offset + int(m.group(1))}]{m.group(2)}"
    kind = AuthError if reply.status in (401, 403) else RequestError
    return kind(reply.status, code, str(error.get("message", reply.body[:200].decode("utf-8", "replace"))),
                name, error.get("reason"))  # fmt: skip


def model(retry: Retry) -> Step:
    """``GET /v1/model``: the model and its limits."""
    reply = yield from call(Send("GET", MODEL_PATH), retry)
    if reply.status >= 400:
        raise request_error(reply)
    return json.loads(reply.body)


def batches(texts: Sequence[str], limits: Limits) -> Iterator[tuple[int, int]]:
    """Consecutive [start, end) ranges within both limits (a text alone over the byte limit goes alone)."""
    start, size = 0, ENVELOPE_BYTES
    for i, text in enumerate(texts):
        cost = len(json.dumps(text).encode()) + 1
        if i > start and (i - start >= limits.max_texts or size + cost > limits.max_body_bytes):
            yield start, i
            start, size = i, ENVELOPE_BYTES
        size += cost
    if start < len(texts):
        yield start, len(texts)


def vectors(reply: Reply, count: int) -> list[SparseVector]:
    """The answer's ``data`` as SparseVectors (float32 weights, int32 ids; terms attached when sent)."""
    body = json.loads(reply.body)
    items = body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) != count:
        raise UnavailableError(f"the API answered {len(items) if isinstance(items, list) else 'no'} vectors for "
                               f"{count} texts", reply.status)  # fmt: skip
    encoder = str(body.get("model", {}).get("encoder", "document"))
    out = []
    for item in sorted(items, key=lambda d: int(d["index"])):
        indices = np.asarray(item["indices"], dtype=np.int32)
        terms = item.get("terms")
        vocab = _Terms(indices, terms) if isinstance(terms, dict) else ()
        out.append(SparseVector(indices, np.asarray(item["values"], dtype=np.float32), int(item.get("tokens", 0)),
                                int(item.get("windows", 0)), vocab, encoder=encoder))  # fmt: skip
    return out


class _Terms(Sequence[str]):
    """The vocabulary entries of one answer's ids (what ``SparseVector.to_terms`` looks up)."""

    def __init__(self, indices: np.ndarray, terms: Mapping[str, float]) -> None:
        self._by_id = dict(zip(indices.tolist(), terms, strict=True))

    def __getitem__(self, i: Any) -> Any:
        return self._by_id[int(i)]

    def __len__(self) -> int:
        return len(self._by_id)


def expand(texts: Sequence[str], options: Mapping[str, Any], limits: Limits, retry: Retry) -> Step:
    """Every text's vector, in order: batches, halving on a splittable 413, typed errors."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string: wrap it in a list")
    results: list[SparseVector | None] = [None] * len(texts)
    pending = deque(batches(texts, limits))
    while pending:
        start, end = pending.popleft()
        body = json.dumps({"texts": list(texts[start:end]), **options}, ensure_ascii=False).encode()
        reply = yield from call(Send("POST", EXPAND_PATH, body), retry)
        if reply.status == 413 and end - start > 1:
            code = _error_body(reply).get("code")
            if code is None or code in SPLIT_CODES:
                middle = (start + end) // 2
                pending.extendleft([(middle, end), (start, middle)])
                continue
        if reply.status >= 400:
            raise request_error(reply, start)
        results[start:end] = vectors(reply, end - start)
    assert all(v is not None for v in results)
    return results
