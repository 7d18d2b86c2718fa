"""The engine records' limits, as the engines document them: Pinecone's non-zero cap per sparse vector (refused
with the fix named, or cut to the heaviest terms on request, never silently), and dotted feature names (dropped
for OpenSearch rank_features, kept for Elasticsearch sparse_vector >= 8.16 on request)."""

from __future__ import annotations

import json
import random

import pytest

from splade_tools import engines


def line(n: int) -> dict[str, object]:
    """An output line with ``n`` terms, weights descending (as ingest writes them), plus one tie at the end."""
    values = [round(3.0 - i * 0.001, 6) for i in range(n)]
    return {"id": "doc-1", "indices": list(range(100, 100 + n)), "values": values}


def test_pinecone_takes_a_vector_at_its_limit_as_it_is() -> None:
    """1,000 non-zero values (Pinecone's limit per sparse vector): the record carries them all, unchanged."""
    record = engines.pinecone_record(line(engines.PINECONE_MAX_NONZERO))
    assert record["sparse_values"] == {"indices": line(1000)["indices"], "values": line(1000)["values"]}


def test_pinecone_refuses_one_term_past_its_limit_and_names_the_fix() -> None:
    """1,001 non-zero values: a ValueError naming the document, the count, the limit and both fixes."""
    with pytest.raises(ValueError) as info:
        engines.pinecone_record(line(1001))
    message = str(info.value)
    assert "'doc-1' has 1001 non-zero terms, over Pinecone's 1000" in message
    assert "PRUNE_TYPE=top_k PRUNE_VALUE=1000" in message and "keep_heaviest=True" in message


def test_pinecone_keeps_the_heaviest_terms_only_when_asked() -> None:
    """keep_heaviest=True: the 1,000 heaviest of 1,001 terms, whatever their order in the line."""
    shuffled = line(1001)
    order = list(reversed(range(1001)))
    shuffled = {**shuffled, "indices": [shuffled["indices"][i] for i in order],  # type: ignore[index]
                "values": [shuffled["values"][i] for i in order]}  # type: ignore[index]  # fmt: skip
    kept = engines.pinecone_record(shuffled, keep_heaviest=True)["sparse_values"]
    assert len(kept["indices"]) == 1000 and 100 + 1000 not in kept["indices"]  # the lightest term is the one cut
    assert min(kept["values"]) == round(3.0 - 999 * 0.001, 6)


def test_dotted_terms_are_kept_except_on_the_rank_feature_query_path() -> None:
    """`.`, `...` and `e.g` are feature names like any other for OpenSearch rank_features, neural_sparse and
    Elasticsearch >= 8.16 sparse_vector (kept by default); dots=False (Elasticsearch < 8.16) and the rank_feature
    query (which reads `splade.e.g` as a field path) leave them out; non-positive weights go either way."""
    terms = {"lung": 2.0, ".": 1.0, "...": 0.5, "e.g": 0.4, "zero": 0.0}
    kept = {"lung": 2.0, ".": 1.0, "...": 0.5, "e.g": 0.4}
    assert engines.feature_map(terms) == kept and engines.feature_map(terms, dots=False) == {"lung": 2.0}
    body = list(engines.opensearch_bulk([{"id": 7, "terms": terms}], "docs"))
    assert json.loads(body[1]) == {"splade": kept}
    assert json.loads(list(engines.opensearch_bulk([{"id": 7, "terms": terms}], "d", dots=False))[1]) == {
        "splade": {"lung": 2.0}
    }
    assert engines.neural_sparse_query(terms) == {"query": {"neural_sparse": {"splade": {"query_tokens": kept}}}}
    assert engines.rank_feature_query(terms) == {
        "query": {"bool": {"should": [{"rank_feature": {"field": "splade.lung", "linear": {}, "boost": 2.0}}]}}
    }


def test_lucene_feature_keeps_nine_significant_bits() -> None:
    """FeatureField's encoding, bit for bit: a weight with at most 9 significant bits is kept exactly (1.5, 2.0,
    0.75, 3.0078125); any other loses less than 2^-8 of itself, always downwards; so a rank_features score differs
    from the exact dot product by less than 2^-8 relative (the docs' "not exact in OpenSearch")."""
    for exact in (1.5, 2.0, 0.75, 3.0078125, 1.0 + 255 / 256):
        assert engines.lucene_feature(exact) == exact
    assert engines.lucene_feature(1.0 + 1 / 512) == 1.0 and engines.lucene_feature(2.236904) == 2.234375
    rng = random.Random(7)
    doc = {f"t{i}": rng.uniform(0.01, 3.0) for i in range(300)}
    query = {f"t{i}": rng.uniform(0.01, 3.0) for i in range(0, 600, 7)}
    for w in doc.values():
        assert 0 <= w - engines.lucene_feature(w) < w * 2**-8
    exact = sum(w * doc[t] for t, w in query.items() if t in doc)
    stored = sum(w * engines.lucene_feature(doc[t]) for t, w in query.items() if t in doc)
    assert 0 < exact - stored < exact * 2**-8
