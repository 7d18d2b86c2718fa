"""The library's value types: a text's SPLADE vector (``SparseVector``) and a window's (``Chunk``).

Imports neither onnxruntime nor tokenizers (numpy only): a client that receives vectors over HTTP, or code that
reads them from JSON Lines, uses the same type without loading a model runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .prune import Prune, keep_count


@dataclass(frozen=True)
class SparseVector:
    """One text's SPLADE vector: ``indices`` (int32) sorted by weight descending, ``values`` (float32).

    ``chunks`` (only with ``expand(..., chunks=True)``): each window's own vector, in text order, with the
    character span ``[start, end)`` of the text it covers."""

    indices: np.ndarray
    values: np.ndarray
    tokens: int  # tokens of the text the vector covers (the window framing not counted)
    windows: int  # model windows run for this text
    vocab: Sequence[str] = field(default=(), repr=False, compare=False)
    chunks: tuple[Chunk, ...] = field(default=(), repr=False)
    encoder: str = "document"  # what produced it: a queries.Encoder (the document model, query/ model, or idf)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __eq__(self, other: object) -> bool:
        """Same terms, weights, token and window counts (the dataclass default compares arrays and raises)."""
        if not isinstance(other, SparseVector):
            return NotImplemented
        return (
            self.tokens == other.tokens
            and self.windows == other.windows
            and np.array_equal(self.indices, other.indices)
            and np.array_equal(self.values, other.values)
            and self.chunks == other.chunks
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays: compared by value, not hashable

    def _rounded(self, decimals: int | None) -> tuple[list[int], list[float]]:
        """Indices and values, rounded to ``decimals``; a weight that rounds to 0 is dropped (zero weights are
        never returned, and rank_features refuses them). Sorted descending, so those are the tail."""
        values = self.values.astype(np.float64)
        if decimals is None:
            return self.indices.tolist(), values.tolist()
        rounded = np.round(values, decimals)
        kept = int(np.count_nonzero(rounded > 0))
        return self.indices[:kept].tolist(), rounded[:kept].tolist()

    def to_indices(self, decimals: int | None = None) -> dict[str, list[Any]]:
        """``{"indices": [...], "values": [...]}`` (Elasticsearch/Qdrant/Pinecone/Milvus sparse shape)."""
        indices, values = self._rounded(decimals)
        return {"indices": indices, "values": values}

    def to_terms(self, decimals: int | None = None) -> dict[str, float]:
        """``{term: weight}`` with the tokenizer's WordPiece strings (OpenSearch rank_features shape)."""
        if not self.vocab:
            raise ValueError("this vector has no vocabulary attached; use to_indices()")
        vocab = self.vocab
        indices, values = self._rounded(decimals)
        return {vocab[i]: v for i, v in zip(indices, values, strict=True)}

    def dense(self, vocab_size: int) -> np.ndarray:
        out = np.zeros(vocab_size, dtype=np.float32)
        out[self.indices] = self.values
        return out


@dataclass(frozen=True)
class Chunk:
    """One window of a text: its vector and the character span ``[start, end)`` of the text it covers, from
    the tokenizer's offsets (``text[start:end]`` is the window's text)."""

    span: tuple[int, int]
    vector: SparseVector


def empty_vector(vocab: Sequence[str] = ()) -> SparseVector:
    """The vector of a text with no tokens: no terms, no windows."""
    return SparseVector(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32), 0, 0, vocab)


def sparsify(
    vec: np.ndarray, zeroed: np.ndarray, vocab: Sequence[str], tokens: int, windows: int, *, top_k: int | None,
    min_weight: float, prune: Prune | None = None,
) -> SparseVector:  # fmt: skip
    """A dense [vocab] row -> its SparseVector: the ``zeroed`` ids (special tokens) cleared, weights >= min_weight,
    sorted by weight descending then index ascending, cut to ``top_k`` and by ``prune``. ``vec`` is changed."""
    vec[zeroed] = 0.0
    keep = vec > 0.0
    if min_weight > 0.0:
        keep &= vec >= np.float32(min_weight)
    idx = np.flatnonzero(keep)
    vals = vec[idx]
    order = np.lexsort((idx, -vals))  # weight descending, then index ascending
    if top_k is not None:
        order = order[:top_k]
    if prune is not None:
        order = order[: keep_count(vals[order].astype(np.float32), prune)]
    return SparseVector(idx[order].astype(np.int32), vals[order].astype(np.float32), tokens, windows, vocab)
