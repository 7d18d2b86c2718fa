"""Output lines (ingest's JSON Lines, or HTTP ``data`` items) -> the record each search engine takes as is.

Library helpers for loading vectors; the Lambda handler never imports this module.

    qdrant_point      {"id": uint64 | UUID, "vector": {"splade": {"indices", "values"}}, "payload": {"id": ...}}
    qdrant_chunk_point  the same for a chunk line, payload {"doc", "chunk", "span"} (group by "doc")
    milvus_row        {"pk": "<id>", "splade": {index: value}}            (a SPARSE_FLOAT_VECTOR field)
    pinecone_record   {"id": "<id>", "sparse_values": {"indices", "values"}}, at most PINECONE_MAX_NONZERO
    opensearch_bulk   `_bulk` lines for a rank_features (OpenSearch) or sparse_vector (Elasticsearch) field,
                      with the chunks (OUTPUT_CHUNKS) as a nested field when given
    neural_sparse_query  an OpenSearch `neural_sparse` query by `query_tokens` (2.14+), every term kept
    rank_feature_query   the older `bool` of `rank_feature` clauses; terms with a dot are left out (below)

Qdrant point ids must be unsigned 64-bit integers or UUIDs: other ids become a UUIDv5 of their text, and the
original id is kept in the payload. Terms with a dot (".", "e.g", "u.s") are kept by default: OpenSearch's
rank_features mapper takes any feature name (RankFeaturesFieldMapper.parse builds FeatureField(name, feature, value)
with no dot check, opensearch-project/OpenSearch@37ac378), neural_sparse queries build their FeatureField queries
from the token itself, and Elasticsearch's sparse_vector accepts dotted names since 8.16 (elastic/elasticsearch
#111981). Elasticsearch before 8.16 refuses them (``dots=False`` drops them), and a ``rank_feature`` query names
its feature as a field path (``splade.e.g`` is read as the path splade -> e -> g), so rank_feature_query leaves
them out. Every value must be a positive finite number. Lucene's FeatureField keeps 9 significant bits of a
weight (relative precision 2^-8): OpenSearch and Elasticsearch scores are dot products of rounded weights, where
Qdrant and Milvus keep float32.
Pinecone refuses a sparse vector with more than 1,000 non-zero values (Pinecone docs: "Understanding indexes",
sparse index limitations, and "Limits" for the sparse values of sparse-dense records): a longer one is refused
here with the fix named, or, with ``keep_heaviest=True``, cut to its 1,000 heaviest terms; never silently.
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

PINECONE_MAX_NONZERO = 1000  # non-zero values per sparse vector (see the module docstring)
QDRANT_NAMESPACE = uuid.UUID("6f1d2a4e-5b7c-5d2e-9a41-3c0b8e7f1a90")  # fixed: the same id maps to the same UUID
VECTOR_NAME = "splade"


def qdrant_id(doc_id: Any) -> int | str:
    """``doc_id`` when it is an unsigned 64-bit integer, else a UUIDv5 of its text (a UUID string stays itself)."""
    if isinstance(doc_id, int) and not isinstance(doc_id, bool) and 0 <= doc_id < 2**64:
        return doc_id
    text = doc_id if isinstance(doc_id, str) else json.dumps(doc_id, sort_keys=True)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return str(uuid.uuid5(QDRANT_NAMESPACE, text))


def _pairs(line: dict[str, Any]) -> tuple[list[int], list[float]]:
    if "indices" not in line:
        raise ValueError("the line has no indices/values: write the output with OUTPUT_FORMAT=indices or both")
    return list(line["indices"]), list(line["values"])


def qdrant_point(line: dict[str, Any]) -> dict[str, Any]:
    indices, values = _pairs(line)
    return {
        "id": qdrant_id(line["id"]),
        "vector": {VECTOR_NAME: {"indices": indices, "values": values}},
        "payload": {"id": line["id"]},
    }


def qdrant_chunk_point(part: dict[str, Any]) -> dict[str, Any]:
    """A ``.chunks.jsonl`` line -> one Qdrant point per chunk: id = UUIDv5 of ``<id>#<chunk>``, the document id in
    the payload (``doc``) to group by, with the chunk number and its span."""
    indices, values = _pairs(part)
    return {
        "id": qdrant_id(f"{part['id']}#{part['chunk']}"),
        "vector": {VECTOR_NAME: {"indices": indices, "values": values}},
        "payload": {"doc": part["id"], "chunk": part["chunk"], "span": part["span"]},
    }


def milvus_row(line: dict[str, Any]) -> dict[str, Any]:
    indices, values = _pairs(line)
    return {"pk": str(line["id"]), VECTOR_NAME: dict(zip(indices, values, strict=True))}


def pinecone_record(line: dict[str, Any], *, keep_heaviest: bool = False) -> dict[str, Any]:
    """A Pinecone sparse record. A vector over PINECONE_MAX_NONZERO terms raises ValueError naming the document
    and the fix, unless ``keep_heaviest`` (then its PINECONE_MAX_NONZERO heaviest terms, by weight)."""
    indices, values = _pairs(line)
    if len(indices) > PINECONE_MAX_NONZERO:
        if not keep_heaviest:
            raise ValueError(
                f"document {line['id']!r} has {len(indices)} non-zero terms, over Pinecone's {PINECONE_MAX_NONZERO} "
                f"per sparse vector: expand it with top_k={PINECONE_MAX_NONZERO} (PRUNE_TYPE=top_k "
                f"PRUNE_VALUE={PINECONE_MAX_NONZERO} for ingest), or pass keep_heaviest=True"
            )
        kept = sorted(range(len(values)), key=lambda i: (-values[i], indices[i]))[:PINECONE_MAX_NONZERO]
        indices, values = [indices[i] for i in kept], [values[i] for i in kept]
    return {"id": str(line["id"]), "sparse_values": {"indices": indices, "values": values}}


def feature_map(terms: dict[str, float], *, dots: bool = True) -> dict[str, float]:
    """The terms a rank_features / sparse_vector field accepts: a positive finite value; ``dots=False`` also drops
    names with a dot (Elasticsearch before 8.16)."""
    return {t: w for t, w in terms.items() if (dots or "." not in t) and w > 0 and math.isfinite(w)}


def _terms(line: dict[str, Any], dots: bool) -> dict[str, float]:
    if "terms" not in line:
        raise ValueError("the line has no terms: write the output with OUTPUT_FORMAT=terms or both")
    return feature_map(line["terms"], dots=dots)


def opensearch_bulk(
    lines: Iterable[dict[str, Any]],
    index: str,
    field: str = VECTOR_NAME,
    chunks: Iterable[dict[str, Any]] = (),
    *,
    dots: bool = True,
) -> Iterator[str]:
    """NDJSON `_bulk` body lines (action, then document) for lines written with OUTPUT_FORMAT=terms or both.

    ``chunks``: the ``.chunks.jsonl`` lines (OUTPUT_CHUNKS); each document then also gets a nested field
    ``chunks: [{"chunk", "span", <field>}]`` in chunk order, for a ``nested`` query with ``score_mode: max``.
    ``dots=False``: drop terms with a dot (Elasticsearch before 8.16 only)."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for part in chunks:
        by_id.setdefault(str(part["id"]), []).append(part)
    for line in lines:
        doc: dict[str, Any] = {field: _terms(line, dots)}
        parts = sorted(by_id.get(str(line["id"]), ()), key=lambda p: p["chunk"])
        if parts:
            doc["chunks"] = [{"chunk": p["chunk"], "span": p["span"], field: _terms(p, dots)} for p in parts]
        yield json.dumps({"index": {"_index": index, "_id": str(line["id"])}})
        yield json.dumps(doc, ensure_ascii=False)


def neural_sparse_query(terms: dict[str, float], field: str = VECTOR_NAME) -> dict[str, Any]:
    """OpenSearch ``neural_sparse`` by ``query_tokens`` (2.14+): the query's terms as they are, dots included."""
    return {"query": {"neural_sparse": {field: {"query_tokens": feature_map(terms)}}}}


def rank_feature_query(terms: dict[str, float], field: str = VECTOR_NAME) -> dict[str, Any]:
    """The ``bool`` of linear ``rank_feature`` clauses (OpenSearch before 2.14, Elasticsearch before 8.15's
    sparse_vector query). A clause names ``<field>.<term>`` as a field path, so a term with a dot is left out."""
    clauses = [
        {"rank_feature": {"field": f"{field}.{t}", "linear": {}, "boost": w}}
        for t, w in feature_map(terms, dots=False).items()
    ]
    return {"query": {"bool": {"should": clauses}}}


def lucene_feature(weight: float) -> float:
    """The weight OpenSearch and Elasticsearch score with: Lucene ``FeatureField`` indexes
    ``Float.floatToIntBits(w) >>> 15`` as the term frequency and decodes ``freq << 15`` (the float's top 17 bits:
    sign, exponent, 8 mantissa bits), so a weight keeps 9 significant bits and loses < 2^-8 of itself, truncated."""
    (bits,) = struct.unpack(">I", struct.pack(">f", weight))
    (value,) = struct.unpack(">f", struct.pack(">I", (bits >> 15) << 15))
    return float(value)
