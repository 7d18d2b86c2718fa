"""Chunk vectors (`chunks=True` / `"chunks": true`): one per window, with the character span it covers, equal to
the reference forward pass of that window, and pooled back to the text's vector."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from devkit.corpus import prose_paragraphs
from devkit.events import http_event, http_response_body
from handler import app
from handler.http import service
from splade_expander.errors import PayloadTooLargeError

ACCENTED = " Café déjà vu — naïve façade, 東京 and ﬁne ligatures."


def long_text() -> str:
    """Over 700 tokens of prose with non-ASCII characters in the middle and at the end (4 windows)."""
    paragraphs = prose_paragraphs()[:12]
    return paragraphs[0] + ACCENTED + " ".join(paragraphs[1:]) + ACCENTED


def test_spans_cover_exactly_each_windows_tokens(expander) -> None:
    """Each chunk's span starts at its window's first token and ends at its last: the tokens whose offsets fall
    inside `text[start:end]` are exactly the window's tokens, and consecutive windows overlap."""
    text = long_text()
    (vec,) = expander.expand([text], chunks=True)
    enc = expander.tokenizer.encode(text, add_special_tokens=False)
    assert vec.windows == len(vec.chunks) >= 3
    covered = []
    for chunk in vec.chunks:
        start, end = chunk.span
        inside = [k for k, (a, b) in enumerate(enc.offsets) if a >= start and b <= end]
        assert len(inside) == chunk.vector.tokens and inside == list(range(inside[0], inside[-1] + 1))
        assert enc.offsets[inside[0]][0] == start and enc.offsets[inside[-1]][1] == end
        assert text[start:end] == text[start:end].strip()
        covered.append((inside[0], inside[-1]))
    assert covered[0][0] == 0 and covered[-1][1] == len(enc.ids) - 1
    assert all(b[0] <= a[1] for a, b in itertools.pairwise(covered))  # they overlap
    assert text[vec.chunks[-1].span[0] : vec.chunks[-1].span[1]].endswith("ligatures.")


def test_chunk_vectors_equal_the_reference_forward_pass_of_their_window(expander_fp32, reference) -> None:
    """fp32 graph: each chunk's vector is the numpy reference SPLADE vector of [CLS] + its window + [SEP]
    (max abs diff <= 1e-4), and the pooled vector is their element-wise max."""
    text = long_text()
    (vec,) = expander_fp32.expand([text], chunks=True)
    enc = expander_fp32.tokenizer.encode(text, add_special_tokens=False)
    size = expander_fp32.vocab_size
    specials = expander_fp32.special_ids
    for chunk in vec.chunks:
        ids = [i for i, (a, b) in zip(enc.ids, enc.offsets, strict=True) if a >= chunk.span[0] and b <= chunk.span[1]]
        want = reference.splade(expander_fp32.specials.frame(ids))
        want[specials] = 0.0
        assert np.abs(chunk.vector.dense(size) - want).max() <= 1e-4
    pooled = np.max([c.vector.dense(size) for c in vec.chunks], axis=0)
    assert np.array_equal(pooled, vec.dense(size))


def test_one_window_text_has_one_chunk_equal_to_its_vector_and_empty_text_none(expander) -> None:
    """A short text has one chunk, the pooled vector itself, spanning its stripped text; an empty text has none;
    chunks=False leaves them out; truncate gives the first window only."""
    short, blank, long = "  lung disease in smokers ", "   ", long_text()
    one, empty, truncated = expander.expand([short, blank, long], chunks=True, truncate=True)
    assert [c.span for c in one.chunks] == [(2, 25)] and short[2:25] == "lung disease in smokers"
    assert np.array_equal(one.chunks[0].vector.indices, one.indices)
    assert empty.chunks == () and len(truncated.chunks) == 1
    assert expander.expand([short])[0].chunks == ()


def test_chunks_are_pruned_like_the_pooled_vector(expander) -> None:
    """top_k and prune apply to every chunk too (each keeps the same rule, on its own weights)."""
    (vec,) = expander.expand([long_text()], chunks=True, top_k=5)
    assert len(vec) == 5 and all(len(c.vector) == 5 for c in vec.chunks)
    (ratio,) = expander.expand([long_text()], chunks=True, prune={"type": "max_ratio", "value": 0.5})
    for chunk in ratio.chunks:
        values = chunk.vector.values
        assert values.min() >= np.float32(0.5) * values.max()


def test_http_chunks_field_renders_span_chunk_and_tokens(lambda_context) -> None:
    """`"chunks": true` over HTTP: each item gets `chunks` with exactly chunk, span, the format's fields and
    tokens, in window order; without it the key is absent."""
    text = long_text()
    status, body = http_response_body(
        app.lambda_handler(http_event({"texts": [text, "asthma"], "chunks": True, "format": "both"}), lambda_context)
    )
    assert status == 200
    first, second = body["data"]
    assert [c["chunk"] for c in first["chunks"]] == list(range(first["windows"]))
    assert all(sorted(c) == ["chunk", "indices", "span", "terms", "tokens", "values"] for c in first["chunks"])
    assert len(second["chunks"]) == 1 and second["chunks"][0]["indices"] == second["indices"]
    assert second["chunks"][0]["span"] == [0, 6]
    _, plain = http_response_body(app.lambda_handler(http_event({"text": "asthma"}), lambda_context))
    assert "chunks" not in plain["data"][0]


def test_http_chunks_must_be_a_boolean(lambda_context) -> None:
    """A non-boolean `chunks` is a 400 invalid_request naming the field."""
    status, body = http_response_body(app.lambda_handler(http_event({"text": "a", "chunks": "yes"}), lambda_context))
    assert status == 400
    assert body["error"] == {
        "code": "invalid_request",
        "message": "chunks must be a boolean, not string",
        "field": "chunks",
    }


def test_chunks_count_toward_the_response_size_guard(monkeypatch) -> None:
    """The same request fits without chunks and is a 413 response_too_large with them, at a limit between."""
    request = {"texts": [long_text()] * 4, "format": "both"}
    plain = service.serialized_bytes(service.expand_payload(request))
    with_chunks = service.serialized_bytes(service.expand_payload({**request, "chunks": True}))
    assert with_chunks > 2 * plain
    monkeypatch.setattr(service, "RESPONSE_LIMIT_BYTES", (plain + with_chunks) // 2)
    service.expand_payload(request)
    with pytest.raises(PayloadTooLargeError) as caught:
        service.expand_payload({**request, "chunks": True})
    assert caught.value.code == "response_too_large"
