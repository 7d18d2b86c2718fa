"""Where an adapter's vectors come from, chosen by one argument: a client of the deployed API
(``splade_client.Client``, with an ``AsyncClient`` for native async) or the library in this process
(``splade_expander.Expander``). Documents are expanded as ``kind: document``, queries as ``kind: query`` (idf
weights where the model has ``idf.json``, else its query model, else the document model: the server's choice)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from splade_expander.vectors import SparseVector


class Backend:
    """``source``: a Client, an Expander, or anything with ``expand(texts, kind=...)`` giving SparseVectors.
    ``async_source``: an AsyncClient for the async methods (else they run ``source`` in a worker thread).
    ``options``: passed to every expand (``top_k``, ``min_weight``, ...)."""

    def __init__(self, source: Any, *, async_source: Any = None, **options: Any) -> None:
        if not hasattr(source, "expand"):
            raise TypeError(f"source must be a splade_client.Client or a splade_expander.Expander, not {source!r}")
        self.source, self.async_source, self.options = source, async_source, options

    def documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return list(self.source.expand(list(texts), kind="document", **self.options)) if texts else []

    def queries(self, texts: Sequence[str]) -> list[SparseVector]:
        return list(self.source.expand(list(texts), kind="query", **self.options)) if texts else []

    async def adocuments(self, texts: Sequence[str]) -> list[SparseVector]:
        if self.async_source is not None and texts:
            return list(await self.async_source.expand(list(texts), kind="document", **self.options))
        return await asyncio.to_thread(self.documents, texts)

    async def aqueries(self, texts: Sequence[str]) -> list[SparseVector]:
        if self.async_source is not None and texts:
            return list(await self.async_source.expand(list(texts), kind="query", **self.options))
        return await asyncio.to_thread(self.queries, texts)


def as_backend(source: Any, **kwargs: Any) -> Backend:
    return source if isinstance(source, Backend) else Backend(source, **kwargs)


def pairs(vector: SparseVector) -> tuple[list[int], list[float]]:
    """Ids and float32 weights as Python lists (the frameworks' sparse shapes)."""
    return vector.indices.tolist(), vector.values.tolist()


def mapping(vector: SparseVector) -> dict[int, float]:
    """``{id: weight}`` (LlamaIndex's SparseEmbedding, langchain-milvus's sparse dict)."""
    return dict(zip(*pairs(vector), strict=True))
