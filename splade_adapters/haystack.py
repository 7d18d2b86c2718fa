"""Haystack: ``SpladeSparseTextEmbedder`` (``run(text)`` -> ``{"sparse_embedding"}``) and
``SpladeSparseDocumentEmbedder`` (``run(documents)`` -> ``{"documents"}`` with ``sparse_embedding`` set), with the
``run()`` shapes of the fastembed sparse embedders; for ``QdrantSparseEmbeddingRetriever`` and friends.
``pip install 'splade-expander[haystack]'``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, component
from haystack.dataclasses import SparseEmbedding

from .backend import Backend, as_backend, pairs


def _sparse(vector: Any) -> SparseEmbedding:
    indices, values = pairs(vector)
    return SparseEmbedding(indices=indices, values=values)


@component
class SpladeSparseTextEmbedder:
    """A query's sparse embedding (``kind: query``). ``prefix``/``suffix`` are added to the text, as fastembed's."""

    def __init__(self, source: Any, *, async_source: Any = None, prefix: str = "", suffix: str = "") -> None:
        self.backend: Backend = as_backend(source, async_source=async_source)
        self.prefix, self.suffix = prefix, suffix

    @component.output_types(sparse_embedding=SparseEmbedding)
    def run(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise TypeError("SpladeSparseTextEmbedder expects a string; use SpladeSparseDocumentEmbedder for documents")
        return {"sparse_embedding": _sparse(self.backend.queries([self.prefix + text + self.suffix])[0])}

    @component.output_types(sparse_embedding=SparseEmbedding)
    async def run_async(self, text: str) -> dict[str, Any]:
        vectors = await self.backend.aqueries([self.prefix + text + self.suffix])
        return {"sparse_embedding": _sparse(vectors[0])}


@component
class SpladeSparseDocumentEmbedder:
    """Documents' sparse embeddings (``kind: document``); ``meta_fields_to_embed`` joined before the content with
    ``embedding_separator``, as fastembed's document embedders do. The input documents are not changed."""

    def __init__(
        self, source: Any, *, async_source: Any = None, prefix: str = "", suffix: str = "",
        meta_fields_to_embed: list[str] | None = None, embedding_separator: str = "\n",
    ) -> None:  # fmt: skip
        self.backend: Backend = as_backend(source, async_source=async_source)
        self.prefix, self.suffix = prefix, suffix
        self.meta_fields_to_embed, self.embedding_separator = meta_fields_to_embed or [], embedding_separator

    def _text(self, document: Document) -> str:
        meta = [str(document.meta[k]) for k in self.meta_fields_to_embed if document.meta.get(k) is not None]
        return self.prefix + self.embedding_separator.join([*meta, document.content or ""]) + self.suffix

    def _check(self, documents: list[Document]) -> None:
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise TypeError("SpladeSparseDocumentEmbedder expects a list of Documents; use the text embedder for text")

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        self._check(documents)
        vectors = self.backend.documents([self._text(d) for d in documents])
        return {"documents": [replace(d, sparse_embedding=_sparse(v)) for d, v in zip(documents, vectors, strict=True)]}

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, Any]:
        self._check(documents)
        vectors = await self.backend.adocuments([self._text(d) for d in documents])
        return {"documents": [replace(d, sparse_embedding=_sparse(v)) for d, v in zip(documents, vectors, strict=True)]}
