"""Adapters for RAG frameworks' sparse-embedding interfaces, over the deployed API (splade_client) or the library
in this process (splade_expander), chosen by the one ``source`` argument. Each framework has its own module and
extra, imported only when used:

    splade_adapters.langchain   SpladeSparseEmbeddings (langchain-qdrant),
                                SpladeMilvusSparseEmbedding (langchain-milvus)
    splade_adapters.llamaindex  SpladeSparseEmbedding, qdrant_sparse_functions (llama-index-vector-stores-qdrant)
    splade_adapters.haystack    SpladeSparseTextEmbedder, SpladeSparseDocumentEmbedder (haystack-ai, qdrant-haystack)
"""

from __future__ import annotations

from .backend import Backend

__all__ = ["Backend"]
