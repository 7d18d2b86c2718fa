"""The document-batch core that S3 ingest (objects.py) and ``splade-expand`` (cli.py) share: how documents are
cut into batches, how a batch becomes the records of every output, and how the outputs are named.

One batch -> ``Records``: a vector record per document (``{"id", "source": {..., "line"}, "model", <format>}``),
its chunk records (``{"id", "chunk", "span", <format>, "tokens"}``), the error records of its bad lines and of
documents too long to expand (in line order), and the token ids of its documents for document frequencies.
The caller gives the source block (``{"bucket", "key", "version_id", "etag"}`` or ``{"path"}``); nothing else
differs between the two, so both write the same JSON Lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .documents import Document, DocumentError, expand_documents
from .prune import Prune

BATCH_DOCS = 64  # documents per Expander call
BATCH_CHARS = 400_000  # ~90k tokens per Expander call: tokenizer memory stays ~60 MB
BATCH_ITEMS = 1_000  # lines per batch, good or bad: ingest checks the time left at least this often
UTF8_MAX = 4  # bytes per character at most


Item = Document | DocumentError


def dumps_line(record: dict[str, Any]) -> bytes:
    """One record as a JSON Lines line: compact, UTF-8 as is (what every output of ingest and splade-expand holds)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def max_doc_bytes(max_chars: int | None, limit: int) -> int:
    """The largest document worth reading: ``max_chars`` (the Expander's bound, MAX_WINDOWS) in UTF-8, or
    ``limit`` when texts are unbounded."""
    return max_chars * UTF8_MAX if max_chars else limit


def resume_point(item: Item) -> tuple[int, int]:
    """(lines done, byte offset) just before ``item``: where a later run starts reading again."""
    return (item.line or 1) - 1, item.offset


@dataclass
class Batch:
    """Consecutive items of one source: its documents and its bad lines, and the first of them."""

    docs: list[Document] = field(default_factory=list)
    bad: list[DocumentError] = field(default_factory=list)
    first: Item | None = None
    chars: int = 0

    def add(self, item: Item) -> None:
        if self.first is None:
            self.first = item
        if isinstance(item, Document):
            self.docs.append(item)
            self.chars += len(item.text)
        else:
            self.bad.append(item)

    @property
    def full(self) -> bool:
        """The cut rule: BATCH_DOCS documents, BATCH_CHARS characters, or BATCH_ITEMS lines in all."""
        items = len(self.docs) + len(self.bad)
        return len(self.docs) >= BATCH_DOCS or self.chars >= BATCH_CHARS or items >= BATCH_ITEMS


def batches(items: Iterable[Item]) -> Iterator[tuple[Batch, Item | None]]:
    """Full batches in order, then the rest; each with the item after it (None after the last batch). An empty
    source gives one empty batch."""
    batch = Batch()
    for item in items:
        if batch.full:
            yield batch, item
            batch = Batch()
        batch.add(item)
    yield batch, None


@dataclass
class Records:
    """What one batch gives each output."""

    vectors: list[dict[str, Any]]
    chunks: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    token_ids: list[list[int]]  # of the documents written, for document frequencies (empty unless asked)

    @property
    def documents(self) -> int:
        return len(self.vectors)


def records(
    expander: Any, batch: Batch, source: dict[str, Any], *, fmt: str, prune: Prune | None = None,
    chunks: bool = False, df: bool = False,
) -> Records:  # fmt: skip
    """The records of one batch: vectors (and chunks) of its documents in order; the errors of its bad lines and
    of the documents too long to expand, in line order; token ids when ``df``."""
    results, too_long = expand_documents(expander, batch.docs, fmt, prune, chunks=chunks)
    model = expander.model_info
    vectors = [{"id": d.id, "source": {**source, "line": d.line}, "model": model, **v} for d, v, _ in results]
    parts = [{"id": d.id, **part} for d, _, ps in results for part in ps]
    bad = sorted(batch.bad + too_long, key=lambda e: e.line or 0)
    token_ids = expander.token_ids([d.text for d, _, _ in results]) if df else []
    return Records(vectors, parts, [e.record(source) for e in bad], token_ids)
