"""Sparse vector -> output shapes: indices/values, a term map, or both."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .vectors import SparseVector

__all__ = ["FORMATS", "Format", "render", "render_chunks"]


class Format(StrEnum):
    """The output format of vectors (the request's ``format``, OUTPUT_FORMAT, ``--format``)."""

    INDICES = "indices"  # indices + values: Elasticsearch, Qdrant, Pinecone, Milvus
    TERMS = "terms"  # {term: weight}: OpenSearch rank_features
    BOTH = "both"


FORMATS = tuple(Format)
DECIMALS = 6  # weights are ~0-4; six decimals keep every digit float32 has and drop float noise


def render(vector: SparseVector, fmt: str) -> dict[str, Any]:
    """The vector's fields for ``fmt``: ``indices``+``values``, ``terms``, or all three."""
    out: dict[str, Any] = {}
    if fmt in (Format.INDICES, Format.BOTH):
        out.update(vector.to_indices(DECIMALS))
    if fmt in (Format.TERMS, Format.BOTH):
        out["terms"] = vector.to_terms(DECIMALS)
    return out


def render_chunks(vector: SparseVector, fmt: str) -> list[dict[str, Any]]:
    """The vector's chunks (``expand(..., chunks=True)``): ``{"chunk", "span", <fmt fields>, "tokens"}`` each."""
    return [
        {"chunk": j, "span": list(c.span), **render(c.vector, fmt), "tokens": c.vector.tokens}
        for j, c in enumerate(vector.chunks)
    ]
