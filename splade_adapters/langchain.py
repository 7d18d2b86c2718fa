"""LangChain: ``SpladeSparseEmbeddings`` for langchain-qdrant's ``QdrantVectorStore(sparse_embedding=...)`` and
``SpladeMilvusSparseEmbedding`` for langchain-milvus (``Milvus(embedding_function=...)`` on a sparse field).
``pip install 'splade-expander[langchain]'``."""

from __future__ import annotations

from typing import Any

from langchain_milvus.utils.sparse import BaseSparseEmbedding
from langchain_qdrant import SparseEmbeddings, SparseVector

from .backend import Backend, as_backend, mapping, pairs


def _qdrant(vector: Any) -> SparseVector:
    indices, values = pairs(vector)
    return SparseVector(indices=indices, values=values)


class SpladeSparseEmbeddings(SparseEmbeddings):
    """``SpladeSparseEmbeddings(Client(url))`` or ``SpladeSparseEmbeddings(Expander())``; ``async_source=``
    an AsyncClient for native async (docs/python.md)."""

    def __init__(self, source: Any, **kwargs: Any) -> None:
        self.backend: Backend = as_backend(source, **kwargs)

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return [_qdrant(v) for v in self.backend.documents(texts)]

    def embed_query(self, text: str) -> SparseVector:
        return _qdrant(self.backend.queries([text])[0])

    async def aembed_documents(self, texts: list[str]) -> list[SparseVector]:
        return [_qdrant(v) for v in await self.backend.adocuments(texts)]

    async def aembed_query(self, text: str) -> SparseVector:
        return _qdrant((await self.backend.aqueries([text]))[0])


class SpladeMilvusSparseEmbedding(BaseSparseEmbedding):
    """For langchain-milvus: ``{id: weight}`` dicts for a SPARSE_FLOAT_VECTOR field (metric IP)."""

    def __init__(self, source: Any, **kwargs: Any) -> None:
        self.backend: Backend = as_backend(source, **kwargs)

    def embed_query(self, query: str) -> dict[int, float]:
        return mapping(self.backend.queries([query])[0])

    def embed_documents(self, texts: list[str]) -> list[dict[int, float]]:
        return [mapping(v) for v in self.backend.documents(texts)]

    async def aembed_query(self, query: str) -> dict[int, float]:
        return mapping((await self.backend.aqueries([query]))[0])

    async def aembed_documents(self, texts: list[str]) -> list[dict[int, float]]:
        return [mapping(v) for v in await self.backend.adocuments(texts)]
