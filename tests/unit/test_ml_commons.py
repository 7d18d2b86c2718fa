"""OpenSearch ml-commons' parameters on the expand API (issue 43, part 1): ``sparse_embedding_format`` and
``content_type`` as a remote sparse model's connector sends them (upper-case), and the ``response`` token maps
neural-search reads; each map equals the function's own vector for that text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devkit.events import LambdaContext, http_event
from handler import app, runtime
from handler.http import openapi
from splade_expander.formats import DECIMALS

TEXTS = ["chronic obstructive pulmonary disease", "e.g. the U.S. asthma guidelines"]


def post(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.lambda_handler(http_event(payload), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(("fmt", "content"), [("WORD", "PASSAGE"), ("word", None), ("LEXICAL", "QUERY")])
def test_word_maps_are_the_vectors_terms(fmt: str, content: str | None) -> None:
    """WORD (and LEXICAL, any case) gives one term map per text, in order: string keys, numeric weights, equal to
    the Expander's own vector for that text and kind (QUERY is kind query, PASSAGE kind document); no `data`."""
    payload: dict[str, Any] = {"texts": TEXTS, "sparse_embedding_format": fmt}
    if content is not None:
        payload["content_type"] = content
    status, body = post(payload)
    assert status == 200 and set(body) == {"model", "response", "usage"}
    kind = "query" if content == "QUERY" else "document"
    want = [v.to_terms(DECIMALS) for v in runtime.expander.expand(TEXTS, kind=kind)]
    assert body["response"] == want and len(body["response"]) == len(TEXTS)
    assert all(isinstance(k, str) and isinstance(w, float) and w > 0 for m in body["response"] for k, w in m.items())
    assert "." in body["response"][1]  # a punctuation WordPiece is a term like any other (no dotted term dropped)


def test_token_id_maps_are_keyed_by_vocabulary_ids() -> None:
    """TOKEN_ID gives id strings (non-negative integers, as sparse_vector fields want) -> the same weights."""
    status, body = post({"texts": TEXTS, "sparse_embedding_format": "TOKEN_ID", "content_type": "passage"})
    assert status == 200
    for got, vector in zip(body["response"], runtime.expander.expand(TEXTS), strict=True):
        rounded = vector.to_indices(DECIMALS)
        assert got == {str(i): v for i, v in zip(rounded["indices"], rounded["values"], strict=True)}
        assert all(k.isdigit() for k in got)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"sparse_embedding_format": "dense"}, "sparse_embedding_format"),
        ({"content_type": "document"}, "content_type"),
        ({"content_type": "QUERY", "kind": "document"}, "content_type"),
        ({"sparse_embedding_format": "word", "chunks": True}, "chunks"),
        ({"sparse_embedding_format": 7}, "sparse_embedding_format"),
    ],
)
def test_bad_ml_commons_parameters_are_400_naming_the_field(payload: dict[str, Any], field: str) -> None:
    """An unknown value, a content_type that contradicts kind, chunks with token maps: 400 invalid_request."""
    status, body = post({"text": "asthma", **payload})
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_request", field)


def test_a_matching_kind_beside_content_type_is_accepted() -> None:
    """content_type QUERY with kind query is the same request."""
    assert post({"text": "asthma", "content_type": "Query", "kind": "query"})[0] == 200


def test_the_openapi_document_describes_both_parameters_and_the_maps() -> None:
    """The request schema lists both spellings ml-commons uses; the response schema has `response`."""
    doc = openapi.openapi_document()
    props = doc["components"]["schemas"]["ExpandRequest"]["properties"]
    assert {"WORD", "TOKEN_ID", "word"} <= set(props["sparse_embedding_format"]["enum"])
    assert {"QUERY", "PASSAGE"} <= set(props["content_type"]["enum"])
    response = doc["components"]["schemas"]["ExpandResponse"]
    assert response["properties"]["response"]["items"]["additionalProperties"] == {"type": "number"}


def test_the_printed_step_of_the_longest_texts_fits_and_one_more_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The step size (``make opensearch-step``) for a 24-window budget and texts of up to 8 windows is 3: three
    texts of 8 windows each are answered, four are the documented 413 too_much_work (ml-commons does not split a
    refused batch). A budget below MaxWindows is reported as not fitting, with the two ways out."""
    from dataclasses import replace

    from splade_expander.windows import window_starts
    from splade_tools.opensearch import step_size

    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, max_request_windows=24))
    step = step_size(24, max_texts=64, max_windows=8)
    assert (step.step, step.fits) == (3, True)
    expander = runtime.expander
    n = 8 * (expander.content_tokens - expander.window_overlap)  # tokens that need exactly 8 windows
    assert len(window_starts(n, expander.content_tokens, expander.window_overlap)[0]) == 8
    text = "asthma " * n
    assert len(expander.token_ids([text])[0]) == n
    status, body = post({"texts": [text] * step.step, "sparse_embedding_format": "word"})
    assert status == 200 and len(body["response"]) == 3
    status, body = post({"texts": [text] * (step.step + 1), "sparse_embedding_format": "word"})
    assert (status, body["error"]["code"]) == (413, "too_much_work")
    low = step_size(24, max_texts=64, max_windows=64)
    assert (low.step, low.fits) == (1, False) and "MaxWindows=24" in low.advice() and "truncate" in low.advice()
