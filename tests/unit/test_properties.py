"""Property tests (hypothesis): any JSON body gets a 200 or a documented 4xx; any unicode string expands
to a valid vector."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit import ROOT
from devkit.events import LambdaContext, http_event
from handler import app, runtime
from handler.http.openapi import ERROR_CODES
from splade_expander import options
from splade_expander.errors import InvalidRequestError, PayloadTooLargeError


def _documented_codes() -> set[tuple[int, str]]:
    """(status, code) rows of the error table in docs/api.md: what users are told, read independently of code."""
    rows = set()
    for line in (ROOT / "docs" / "api.md").read_text().splitlines():
        match = re.match(r"\| (\d{3}) \| `([a-z_]+)` \|", line)
        if match:
            rows.add((int(match[1]), match[2]))
    return rows


DOCUMENTED = {row for row in _documented_codes() if row[0] < 500}
FIELD_NAMES = [f.name for f in options.FIELDS]
SPECIAL_IDS = {0, 100, 101, 102, 103}

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)  # JSON integers past float range
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
# Request-shaped objects: real field names (and some others) with arbitrary values, so validation is reached.
request_like = st.dictionaries(st.sampled_from([*FIELD_NAMES, "extra"]), json_values, max_size=6)
# Any code point, lone surrogates included (hypothesis leaves them out of text() unless asked).
unicode_text = st.text(
    alphabet=st.characters(codec=None, categories=None) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    max_size=300,
)


def post(body: str) -> tuple[int, dict[str, Any]]:
    event = http_event(raw=body)
    response = app.lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


# Requests that validate: so a fair share of the examples reach the 200 branch and its checks.
valid_requests = st.fixed_dictionaries(
    {"texts": st.lists(st.text(max_size=200), min_size=1, max_size=4)},
    optional={
        "top_k": st.none() | st.integers(1, 64),
        "format": st.sampled_from(["indices", "terms", "both"]),
        "kind": st.sampled_from(["document", "query"]),
        "truncate": st.booleans(),
    },
)


def check_vectors_match_the_library(request: dict[str, Any], body: dict[str, Any]) -> None:
    """A 200 holds one item per text, in order, each with as many terms as the library gives that text (at most
    top_k): no text dropped, no vector emptied or padded on the way out."""
    texts = request["texts"] if "texts" in request else [request["text"]]
    assert sorted(body) == ["data", "model", "usage"]
    assert body["usage"]["texts"] == len(texts) == len(body["data"])
    assert [item["index"] for item in body["data"]] == list(range(len(texts)))
    if request.get("min_weight") or request.get("prune") is not None:
        return  # the weights kept then depend on the rule; tests/unit/test_prune.py covers them
    kind = request.get("kind", "document")
    reference = runtime.expander.expand(texts, kind=kind, truncate=bool(request.get("truncate", False)))
    top_k = request.get("top_k")
    for item, vec in zip(body["data"], reference, strict=True):
        expected = len(vec.indices) if top_k is None else min(top_k, len(vec.indices))
        got = len(item["indices"]) if "indices" in item else len(item["terms"])
        assert got == expected, (item, expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | request_like | valid_requests)
def test_any_json_body_gets_200_or_a_documented_4xx(value: Any) -> None:
    """Whatever JSON value is posted, the answer is a 200 whose vectors match the library's, or a documented 4xx
    code."""
    status, body = post(json.dumps(value))
    if status == 200:
        check_vectors_match_the_library(value, body)
    else:
        assert (status, body["error"]["code"]) in DOCUMENTED, (status, body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values | request_like)
def test_any_direct_event_returns_a_response_or_a_typed_error(value: Any) -> None:
    """Direct invocation with any JSON value returns a response or raises one of the two typed errors."""
    try:
        response = app.lambda_handler(value, LambdaContext())
    except (InvalidRequestError, PayloadTooLargeError):
        return
    assert sorted(response) == ["data", "model", "usage"]


@settings(max_examples=300, deadline=None)
@given(unicode_text)
def test_any_unicode_string_expands_to_a_valid_vector(expander, text: str) -> None:
    """Any unicode string (lone surrogates included) gives finite, positive, sorted weights and no special token."""
    (vec,) = expander.expand([text])
    assert vec.indices.dtype == np.int32 and vec.values.dtype == np.float32
    assert np.all(np.isfinite(vec.values)) and np.all(vec.values > 0)
    assert np.all(np.diff(vec.values) <= 0)
    assert not set(vec.indices.tolist()) & SPECIAL_IDS
    assert len(set(vec.indices.tolist())) == len(vec)
    assert (vec.windows == 0) == (vec.tokens == 0)


def test_the_documented_error_table_is_the_openapi_error_list() -> None:
    """docs/api.md's error table and the OpenAPI document's error codes name the same (status, code) pairs."""
    openapi = {(status, code) for status, codes in ERROR_CODES.items() for code in codes}
    assert _documented_codes() == openapi
    assert len(openapi) >= 10
