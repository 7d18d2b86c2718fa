"""Ingest output loaded into real engines (Qdrant local mode, Milvus Lite): their scores equal the exact dot
products and their rankings equal a brute-force search; Pinecone and OpenSearch / Elasticsearch bodies follow
those engines' documented rules."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devkit.aws import ingest_object
from devkit.corpus import ENGINE_QUERIES, prose_paragraphs
from handler import runtime
from splade_tools import engines

pytestmark = pytest.mark.integration
QUERIES = ENGINE_QUERIES
TOP = 10
REL = 1e-4


@pytest.fixture(scope="module")
def corpus(aws: Any) -> list[dict[str, Any]]:
    """80 prose paragraphs through the ingest path (SQS event, S3 object, OUTPUT_FORMAT=both): the output lines.
    Ids mix strings, integers and a UUID so each engine's id rules are exercised."""
    prose = prose_paragraphs()[:80]
    ids: list[Any] = [f"doc-{i}" if i % 3 else i for i in range(80)]
    ids[5] = str(uuid.UUID(int=5))
    body = "\n".join(json.dumps({"id": d, "text": t}) for d, t in zip(ids, prose, strict=True)).encode()
    key = f"engines-{uuid.uuid4().hex[:6]}/corpus.jsonl"
    lines = ingest_object(aws.client("s3"), key, body, output_format="both")[".jsonl"]
    assert [line["id"] for line in lines] == ids
    return lines


def upsert(client: Any, collection: str, points: list[dict[str, Any]]) -> None:
    """engines.qdrant_point / qdrant_chunk_point records into a Qdrant collection."""
    from qdrant_client import models

    client.upsert(
        collection,
        [
            models.PointStruct(
                id=p["id"], vector={k: models.SparseVector(**v) for k, v in p["vector"].items()}, payload=p["payload"]
            )
            for p in points
        ],
    )


def sparse_query(vector: Any) -> Any:
    """A SparseVector from Expander.expand as a Qdrant query vector."""
    from qdrant_client import models

    return models.SparseVector(indices=vector.indices.tolist(), values=vector.values.tolist())


def exact_top(lines: list[dict[str, Any]], query: Any) -> dict[str, float]:
    """Brute force: every document's dot product with the query (float64 over the float32 weights)."""
    q = dict(zip(query.indices.tolist(), query.values.astype(np.float64).tolist(), strict=True))
    return {
        str(line["id"]): float(sum(w * q.get(i, 0.0) for i, w in zip(line["indices"], line["values"], strict=True)))
        for line in lines
    }


def assert_ranked_like_brute_force(got: list[tuple[str, float]], exact: dict[str, float]) -> None:
    """Each returned score is the exact dot product (rel 1e-4); the scores are the exact top ones, in order."""
    assert len(got) == TOP
    for doc_id, score in got:
        assert math.isclose(score, exact[doc_id], rel_tol=REL), (doc_id, score, exact[doc_id])
    best = sorted(exact.values(), reverse=True)[:TOP]
    assert np.allclose([s for _, s in got], best, rtol=REL)


def test_qdrant_local_mode_scores_are_exact_dot_products(corpus) -> None:
    """A named sparse vector in Qdrant (local mode): UUIDv5 / uint64 ids, the original id in the payload, and the
    search equals brute force for each query vector."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection(
        "docs", vectors_config={}, sparse_vectors_config={engines.VECTOR_NAME: models.SparseVectorParams()}
    )
    points = [engines.qdrant_point(line) for line in corpus]
    assert all(isinstance(p["id"], int) or uuid.UUID(p["id"]) for p in points)
    assert engines.qdrant_point(corpus[5])["id"] == corpus[5]["id"]  # a UUID id stays itself
    upsert(client, "docs", points)
    for query in runtime.expander.expand(QUERIES, kind="query"):
        hits = client.query_points(
            "docs",
            query=sparse_query(query),
            using=engines.VECTOR_NAME,
            limit=TOP,
            with_payload=True,
        ).points
        assert hits[0].score > 0
        assert_ranked_like_brute_force(
            [(str((h.payload or {})["id"]), h.score) for h in hits], exact_top(corpus, query)
        )


def test_milvus_lite_sparse_float_vector_scores_are_exact_dot_products(corpus, tmp_path: Path) -> None:
    """A SPARSE_FLOAT_VECTOR field in Milvus Lite with an inner-product index: search equals brute force."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(tmp_path / "milvus.db"))
    schema = client.create_schema(auto_id=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=512)
    schema.add_field(engines.VECTOR_NAME, DataType.SPARSE_FLOAT_VECTOR)
    index = client.prepare_index_params()
    index.add_index(field_name=engines.VECTOR_NAME, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection("docs", schema=schema, index_params=index)
    client.insert("docs", [engines.milvus_row(line) for line in corpus])
    queries = runtime.expander.expand(QUERIES, kind="query")
    results = client.search(
        "docs",
        data=[dict(zip(q.indices.tolist(), q.values.tolist(), strict=True)) for q in queries],
        anns_field=engines.VECTOR_NAME,
        limit=TOP,
        search_params={"metric_type": "IP"},
    )
    for query, hits in zip(queries, results, strict=True):
        assert_ranked_like_brute_force([(h.get("pk"), h["distance"]) for h in hits], exact_top(corpus, query))


def test_pinecone_records_follow_the_sparse_upsert_rules(corpus) -> None:
    """Pinecone sparse upserts: a string id, unique uint32 indices and as many finite float values, non-empty."""
    for line in corpus:
        record = engines.pinecone_record(line)
        assert sorted(record) == ["id", "sparse_values"] and isinstance(record["id"], str) and record["id"]
        indices, values = record["sparse_values"]["indices"], record["sparse_values"]["values"]
        assert indices and len(indices) == len(values) == len(set(indices))
        assert all(isinstance(i, int) and 0 <= i < 2**32 for i in indices)
        assert all(isinstance(v, float) and math.isfinite(v) for v in values)


def test_opensearch_bulk_bodies_follow_rank_features_rules(corpus) -> None:
    """`_bulk` for rank_features / sparse_vector: an index action with a string _id before each document; every
    term of the line kept (dotted ones too), values positive and finite; `dots=False` drops exactly the dotted."""
    body = list(engines.opensearch_bulk(corpus, "docs"))
    assert len(body) == 2 * len(corpus)
    dotted = 0
    for line, action, doc in zip(corpus, body[::2], body[1::2], strict=True):
        assert json.loads(action) == {"index": {"_index": "docs", "_id": str(line["id"])}}
        features = json.loads(doc)[engines.VECTOR_NAME]
        assert features == line["terms"] and all(v > 0 and math.isfinite(v) for v in features.values())
        dotted += sum("." in t for t in features)
    assert dotted > 0  # the corpus has "." terms, so the rule was exercised
    old = list(engines.opensearch_bulk(corpus, "docs", dots=False))
    for line, doc in zip(corpus, old[1::2], strict=True):
        assert json.loads(doc)[engines.VECTOR_NAME] == {t: w for t, w in line["terms"].items() if "." not in t}
    with pytest.raises(ValueError, match="OUTPUT_FORMAT=terms"):
        list(engines.opensearch_bulk([{"id": 1, "indices": [1], "values": [1.0]}], "docs"))


@pytest.fixture(scope="module")
def chunked(aws: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """24 long documents (3 to 8 paragraphs each) through ingest with OUTPUT_CHUNKS=true and OUTPUT_FORMAT=both:
    the pooled lines and the chunk lines."""
    prose = prose_paragraphs()
    texts = [" ".join(prose[i * 3 : i * 3 + 3 + i % 6]) for i in range(24)]
    body = "\n".join(json.dumps({"id": f"long-{i}", "text": t}) for i, t in enumerate(texts)).encode()
    key = f"engines-{uuid.uuid4().hex[:6]}/chunked.jsonl"
    out = ingest_object(aws.client("s3"), key, body, output_format="both", output_chunks=True)
    lines, parts = out[".jsonl"], out[".chunks.jsonl"]
    assert len(parts) > len(lines) == 24
    return lines, parts


def test_qdrant_groups_chunk_points_by_document_best_chunk_first(chunked) -> None:
    """One Qdrant point per chunk, grouped by document id (group_size 1): each document scores as its best
    chunk's exact dot product, and the documents rank like a brute-force max over chunks."""
    from qdrant_client import QdrantClient, models

    _, parts = chunked
    client = QdrantClient(":memory:")
    client.create_collection(
        "chunks", vectors_config={}, sparse_vectors_config={engines.VECTOR_NAME: models.SparseVectorParams()}
    )
    points = [engines.qdrant_chunk_point(p) for p in parts]
    assert points[0]["payload"] == {"doc": parts[0]["id"], "chunk": 0, "span": parts[0]["span"]}
    assert len({p["id"] for p in points}) == len(parts)
    upsert(client, "chunks", points)
    for query in runtime.expander.expand(QUERIES, kind="query"):
        groups = client.query_points_groups(
            "chunks",
            query=sparse_query(query),
            using=engines.VECTOR_NAME,
            group_by="doc",
            group_size=1,
            limit=TOP,
            with_payload=True,
        ).groups
        best: dict[str, float] = {}  # brute force: each document's max over its chunks' exact dot products
        for p in parts:
            best[p["id"]] = max(best.get(p["id"], 0.0), exact_top([p], query)[p["id"]])
        assert_ranked_like_brute_force([(str(g.id), g.hits[0].score) for g in groups], best)


def test_opensearch_bulk_nests_the_chunks_in_order(chunked) -> None:
    """`_bulk` with chunk lines: each document gets `chunks` in chunk order with span and a rank_features map
    following the same rules; the pooled map is the max of the chunk maps for every kept term."""
    lines, parts = chunked
    body = list(engines.opensearch_bulk(lines, "docs", chunks=parts))
    per_doc: dict[str, list[dict[str, Any]]] = {}
    for p in parts:
        per_doc.setdefault(str(p["id"]), []).append(p)
    for line, doc in zip(lines, body[1::2], strict=True):
        nested = json.loads(doc)["chunks"]
        mine = per_doc[str(line["id"])]
        assert [c["chunk"] for c in nested] == list(range(len(mine))) and [c["span"] for c in nested] == [
            p["span"] for p in mine
        ]
        for c, part in zip(nested, mine, strict=True):
            assert c[engines.VECTOR_NAME] == part["terms"]  # every term, dotted ones too
            assert all(v > 0 and math.isfinite(v) for v in c[engines.VECTOR_NAME].values())
        pooled = json.loads(doc)[engines.VECTOR_NAME]
        for term, weight in pooled.items():
            assert weight == max(c[engines.VECTOR_NAME].get(term, 0.0) for c in nested)
