"""LlamaIndex: ``SpladeSparseEmbedding`` (a ``BaseSparseEmbedding``: single, batch, async) and
``qdrant_sparse_functions`` for ``QdrantVectorStore(sparse_doc_fn=..., sparse_query_fn=..., enable_hybrid=True)``.
``pip install 'splade-expander[llamaindex]'``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding, SparseEmbedding
from pydantic import PrivateAttr

from .backend import Backend, as_backend, mapping, pairs

BatchSparse = tuple[list[list[int]], list[list[float]]]


class SpladeSparseEmbedding(BaseSparseEmbedding):
    """``SpladeSparseEmbedding(source=Client(url))`` or ``SpladeSparseEmbedding(source=Expander())``."""

    _backend: Backend = PrivateAttr()

    def __init__(self, source: Any, async_source: Any = None, model_name: str = "splade", **kwargs: Any) -> None:
        super().__init__(model_name=model_name, **kwargs)
        self._backend = as_backend(source, async_source=async_source)

    @classmethod
    def class_name(cls) -> str:
        return "SpladeSparseEmbedding"

    def _get_query_embedding(self, query: str) -> SparseEmbedding:
        return mapping(self._backend.queries([query])[0])

    async def _aget_query_embedding(self, query: str) -> SparseEmbedding:
        return mapping((await self._backend.aqueries([query]))[0])

    def _get_text_embedding(self, text: str) -> SparseEmbedding:
        return mapping(self._backend.documents([text])[0])

    async def _aget_text_embedding(self, text: str) -> SparseEmbedding:
        return mapping((await self._backend.adocuments([text]))[0])

    def _get_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return [mapping(v) for v in self._backend.documents(texts)]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return [mapping(v) for v in await self._backend.adocuments(texts)]


def qdrant_sparse_functions(
    source: Any,
) -> tuple[Callable[[list[str]], BatchSparse], Callable[[list[str]], BatchSparse]]:
    """``(sparse_doc_fn, sparse_query_fn)``: texts -> (ids per text, weights per text), documents and queries."""
    backend = as_backend(source)

    def batch(vectors: list[Any]) -> BatchSparse:
        found = [pairs(v) for v in vectors]
        return [i for i, _ in found], [w for _, w in found]

    return (lambda texts: batch(backend.documents(texts))), (lambda texts: batch(backend.queries(texts)))
