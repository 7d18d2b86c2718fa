"""Document frequencies over WordPiece ids, and the BM25-style idf that ``idf.json`` holds.

    idf(t) = log(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

over the N documents of a corpus, df(t) counting the documents whose text contains token t at least once (every
window, special tokens never counted). Counts add up: per-object counts (ingest's ``OUTPUT_DF``, the CLI's
``--df``) merge into the corpus's by summing, so a corpus indexed through S3 gives its idf without a second pass.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

FORMAT = "splade-df/1"


class DocFreq:
    """Documents seen and, per vocabulary id, how many of them contain it."""

    def __init__(self, vocab_size: int, documents: int = 0, counts: np.ndarray | None = None) -> None:
        self.vocab_size = vocab_size
        self.documents = documents
        self.counts = np.zeros(vocab_size, dtype=np.int64) if counts is None else counts

    def add(self, token_ids: Iterable[Sequence[int]]) -> None:
        """One document per sequence of ids."""
        for ids in token_ids:
            self.documents += 1
            if len(ids):
                self.counts[np.unique(np.asarray(ids, dtype=np.int64))] += 1

    def merge(self, other: DocFreq) -> None:
        if other.vocab_size != self.vocab_size:
            raise ValueError(f"document frequencies over {other.vocab_size} and {self.vocab_size} terms do not add up")
        self.documents += other.documents
        self.counts += other.counts

    def to_json(self) -> dict[str, Any]:
        present = np.flatnonzero(self.counts)
        return {
            "format": FORMAT,
            "documents": self.documents,
            "vocab_size": self.vocab_size,
            "df": {str(i): int(self.counts[i]) for i in present},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocFreq:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a document-frequency file (format {data.get('format')!r}, expected {FORMAT!r})")
        df = cls(int(data["vocab_size"]), int(data["documents"]))
        for key, count in data["df"].items():
            df.counts[int(key)] = int(count)
        return df

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def loads(cls, data: bytes) -> DocFreq:
        return cls.from_json(json.loads(data))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled sparse (a batch's counts cross from a splade-expand worker: a few hundred ids, not the vocab)."""
        present = np.flatnonzero(self.counts)
        return (_sparse, (self.vocab_size, self.documents, present, self.counts[present]))

    def idf(self, vocab: Sequence[str], special_ids: Iterable[int]) -> dict[str, float]:
        """``idf.json``: token -> BM25 idf, for every vocabulary token except the special ones."""
        if self.documents == 0:
            raise ValueError("no documents were counted: idf needs a corpus")
        n = self.documents
        skip = set(special_ids)
        return {
            vocab[i]: round(math.log(1.0 + (n - int(c) + 0.5) / (int(c) + 0.5)), 6)
            for i, c in enumerate(self.counts)
            if i not in skip and vocab[i]
        }


def _sparse(vocab_size: int, documents: int, ids: np.ndarray, counts: np.ndarray) -> DocFreq:
    df = DocFreq(vocab_size, documents)
    df.counts[ids] = counts
    return df
