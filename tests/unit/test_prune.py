"""Pruning with OpenSearch's semantics (top_k, max_ratio, abs_value, alpha_mass), checked against an independent
implementation written here, on real vectors, ties and boundary values; and the API's validation of it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from devkit.corpus import fidelity_texts
from devkit.events import direct_event, http_event, http_response_body
from handler import app
from handler.config import Settings
from splade_expander.errors import InvalidRequestError

F32 = np.float32


def reference(weights: dict[int, float], kind: str, value: float) -> list[int]:
    """The kept ids, by a plain reading of PruneUtils at neural-search commit 0d928a9 (pruneByTopK,
    pruneByMaxRatio, pruneByValue, pruneByAlphaMass): Java float arithmetic (float32), the alpha_mass total summed
    in double and cast to float; entries visited by weight descending, ties by id ascending (our order for ties)."""
    ordered = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    if kind == "top_k":
        return [i for i, _ in ordered[: int(value)]]
    if kind == "max_ratio":  # entry.getValue() >= ratio * maxValue
        max_value = max((F32(w) for w in weights.values()), default=F32(0))
        return [i for i, w in ordered if F32(w) >= F32(F32(value) * max_value)]
    if kind == "abs_value":  # entry.getValue() >= thresh
        return [i for i, w in ordered if F32(w) >= F32(value)]
    total = F32(sum(float(F32(w)) for w in weights.values()))  # (float) stream().mapToDouble().sum()
    top_sum, kept = F32(0), []
    for i, w in ordered:  # topSum += value; if (topSum <= alpha * sum) keep (no break: every entry is visited)
        top_sum = F32(top_sum + F32(w))
        if top_sum <= F32(F32(value) * total):
            kept.append(i)
    return kept


def sparsify(expander: Any, weights: dict[int, float], prune: dict[str, Any]) -> list[int]:
    vec = np.zeros(expander.vocab_size, dtype=np.float32)
    for i, w in weights.items():
        vec[i] = w
    from splade_expander.prune import Prune

    out = expander._sparsify(vec, 1, 1, None, 0.0, prune=Prune.parse(prune))
    return [int(i) for i in out.indices.tolist()]


CASES = [
    ("top_k", 1),
    ("top_k", 7),
    ("top_k", 10_000),
    ("max_ratio", 0.0),
    ("max_ratio", 0.4),
    ("max_ratio", 0.9),
    ("abs_value", 0.0),
    ("abs_value", 0.5),
    ("abs_value", 1.7),
    ("alpha_mass", 0.0),
    ("alpha_mass", 0.3),
    ("alpha_mass", 0.8),
    ("alpha_mass", 0.999),
]


@pytest.mark.parametrize(("kind", "value"), CASES)
def test_each_kind_equals_the_reference_on_real_vectors(expander, kind: str, value: float) -> None:
    """On 40 real texts, the pruned vector is exactly the reference's selection of the unpruned one, with the
    same weights."""
    texts = [t for t in fidelity_texts() if t.strip()][:40]
    full = expander.expand(texts)
    pruned = expander.expand(texts, prune={"type": kind, "value": value})
    for whole, cut in zip(full, pruned, strict=True):
        weights = dict(zip(whole.indices.tolist(), whole.values.tolist(), strict=True))
        assert cut.indices.tolist() == reference(weights, kind, value)
        assert cut.values.tolist() == [weights[i] for i in cut.indices.tolist()]


def test_ties_go_to_the_lower_token_id(expander) -> None:
    """Equal weights: top_k keeps the lower ids first; the inclusive thresholds keep every tied term."""
    weights = {3000: 2.0, 2000: 1.0, 2500: 1.0, 1500: 1.0, 4000: 0.5}
    assert sparsify(expander, weights, {"type": "top_k", "value": 2}) == [3000, 1500]
    assert sparsify(expander, weights, {"type": "top_k", "value": 3}) == [3000, 1500, 2000]
    assert sparsify(expander, weights, {"type": "max_ratio", "value": 0.5}) == [3000, 1500, 2000, 2500]
    assert sparsify(expander, weights, {"type": "abs_value", "value": 1.0}) == [3000, 1500, 2000, 2500]
    # total 5.5, alpha 0.5 -> 2.75: 2.0 is kept, 3.0 crosses it and is not, nor is anything after it
    assert sparsify(expander, weights, {"type": "alpha_mass", "value": 0.5}) == [3000]
    for kind, value in CASES:
        assert sparsify(expander, weights, {"type": kind, "value": value}) == reference(weights, kind, value)


def test_boundaries_match_opensearch(expander) -> None:
    """max_ratio 0 and abs_value 0 keep every term; alpha_mass 0 keeps nothing (PruneUtils adds before it
    compares); a running sum exactly at alpha keeps that term (<=); top_k beyond the length keeps everything."""
    weights = {1100: 4.0, 1200: 3.0, 1300: 2.0, 1400: 1.0}  # total 10
    everything = [1100, 1200, 1300, 1400]
    assert sparsify(expander, weights, {"type": "max_ratio", "value": 0}) == everything
    assert sparsify(expander, weights, {"type": "abs_value", "value": 0}) == everything
    assert sparsify(expander, weights, {"type": "top_k", "value": 99}) == everything
    assert sparsify(expander, weights, {"type": "alpha_mass", "value": 0}) == []
    assert sparsify(expander, weights, {"type": "alpha_mass", "value": 0.7}) == [1100, 1200]  # 7 <= 0.7 x 10
    assert sparsify(expander, weights, {"type": "alpha_mass", "value": 0.69}) == [1100]  # 7 > 6.9: not kept
    assert sparsify(expander, weights, {"type": "max_ratio", "value": 0.75}) == [1100, 1200]  # 3/4 exactly
    assert sparsify(expander, weights, {"type": "abs_value", "value": 2.0}) == [1100, 1200, 1300]


@pytest.mark.parametrize(
    ("prune", "field"),
    [
        ({"type": "top_k", "value": 0}, "prune.value"),
        ({"type": "top_k", "value": 1.5}, "prune.value"),
        ({"type": "top_k", "value": -3}, "prune.value"),
        ({"type": "max_ratio", "value": 1}, "prune.value"),
        ({"type": "max_ratio", "value": -0.1}, "prune.value"),
        ({"type": "alpha_mass", "value": 1.0}, "prune.value"),
        ({"type": "abs_value", "value": -1}, "prune.value"),
        ({"type": "abs_value", "value": "1"}, "prune.value"),
        ({"type": "abs_value", "value": True}, "prune.value"),
        ({"type": "top_p", "value": 0.5}, "prune.type"),
        ({"type": "top_k"}, "prune"),
        ({"type": "top_k", "value": 3, "extra": 1}, "prune"),
        ("top_k", "prune"),
    ],
)
def test_bad_prune_is_a_400_naming_the_field(prune: Any, field: str, lambda_context) -> None:
    """Each value out of OpenSearch's ranges, an unknown type or a malformed object is 400 invalid_request."""
    status, body = http_response_body(app.lambda_handler(http_event({"text": "lung", "prune": prune}), lambda_context))
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "invalid_request", field), body


def test_prune_with_top_k_or_min_weight_is_refused(lambda_context, expander) -> None:
    """One way to prune per request: prune with top_k or min_weight is a 400 (HTTP), an InvalidRequestError
    (direct, library)."""
    prune = {"type": "top_k", "value": 3}
    for extra in ({"top_k": 5}, {"min_weight": 0.1}, {"top_k": None}):
        event = http_event({"text": "lung", "prune": prune, **extra})
        status, body = http_response_body(app.lambda_handler(event, lambda_context))
        assert (status, body["error"]["field"]) == (400, "prune"), body
    with pytest.raises(InvalidRequestError):
        app.lambda_handler(direct_event(text="lung", prune=prune, top_k=2), lambda_context)
    with pytest.raises(InvalidRequestError):
        expander.expand(["lung"], prune=prune, min_weight=0.2)


def test_http_and_direct_prune_equal_the_library(lambda_context, expander) -> None:
    """prune over HTTP and direct invocation gives the library's pruned vector; null means no pruning."""
    text = "Chronic obstructive pulmonary disease (COPD) is a progressive lung disease."
    prune = {"type": "alpha_mass", "value": 0.5}
    (vec,) = expander.expand([text], prune=prune)
    _, body = http_response_body(app.lambda_handler(http_event({"text": text, "prune": prune}), lambda_context))
    direct = app.lambda_handler(direct_event(text=text, prune=prune), lambda_context)
    for response in (body, direct):
        assert response["data"][0]["indices"] == vec.indices.tolist()
    _, whole = http_response_body(app.lambda_handler(http_event({"text": text, "prune": None}), lambda_context))
    assert len(whole["data"][0]["indices"]) > len(vec)
    assert json.dumps(body).count("error") == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PRUNE_TYPE": "top_p", "PRUNE_VALUE": "3"}, "PRUNE_TYPE / PRUNE_VALUE"),
        ({"PRUNE_TYPE": "max_ratio", "PRUNE_VALUE": "1.5"}, "PRUNE_TYPE / PRUNE_VALUE"),
        ({"PRUNE_TYPE": "top_k", "PRUNE_VALUE": "ten"}, "PRUNE_VALUE='ten' is not a number"),
    ],
)
def test_a_bad_prune_environment_fails_naming_it(env: dict[str, str], message: str) -> None:
    """PRUNE_TYPE / PRUNE_VALUE out of range fail Settings (the init phase) with the variables named."""
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)
    assert Settings.from_env({"PRUNE_TYPE": "top_k", "PRUNE_VALUE": "64"}).prune_value == 64.0
