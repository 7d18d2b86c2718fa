"""The framework adapters (splade_adapters) on the frameworks' own stores and real local engines: langchain-qdrant
and llama-index-vector-stores-qdrant and qdrant-haystack on Qdrant ``:memory:``, langchain-milvus on Milvus Lite;
each over the client (the real function under the Lambda runtime emulator behind the SigV4-checking API shim) and
over the library in this process. For the queries test_engines.py uses, every store's scores equal the exact dot
products of the vectors the adapter gave it (float32 weights, relative 1e-4) and its top 10 equals a brute-force
search over those vectors; the client's vectors equal the library's (the API's 6-decimal rounding apart)."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.credentials import Credentials

from devkit.apishim import api
from devkit.corpus import ENGINE_QUERIES, prose_paragraphs
from devkit.emulator import Emulator
from handler import runtime
from splade_adapters.backend import Backend
from splade_client import AsyncClient, Client
from splade_expander.vectors import SparseVector

pytestmark = pytest.mark.integration
TOP, REL = 10, 1e-4
ACCESS, SECRET = "AKIDADAPTERS", "adapters-secret"
TEXTS = prose_paragraphs()[:80]
IDS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"doc-{i}")) for i in range(len(TEXTS))]
SCORE_DIFFS: dict[str, float] = {}  # the largest relative score difference per store and source (printed)


@pytest.fixture(scope="module")
def shim() -> Iterator[Any]:
    with Emulator() as emulator, api(emulator, auth="iam", secrets={ACCESS: SECRET}) as served:
        yield served


@pytest.fixture(scope="module", params=["client", "library"])
def source(request: pytest.FixtureRequest, shim: Any) -> Iterator[tuple[str, Backend]]:
    """One argument chooses where vectors come from: the deployed API (sync and async clients) or the library."""
    if request.param == "library":
        yield "library", Backend(runtime.expander)
        return
    creds = {"auth": "iam", "service": "execute-api", "region": "us-east-1", "credentials": Credentials(ACCESS, SECRET)}
    client, aclient = Client(shim.url, **creds), AsyncClient(shim.url, **creds)
    yield "client", Backend(client, async_source=aclient)
    client.close()
    asyncio.run(aclient.aclose())


def exact(docs: list[SparseVector], query: SparseVector) -> dict[str, float]:
    """Brute force over the vectors the store was given: float64 dot products of their float32 weights."""
    q = dict(zip(query.indices.tolist(), query.values.astype(np.float64).tolist(), strict=True))
    found = {}
    for doc_id, v in zip(IDS, docs, strict=True):
        weights = zip(v.indices.tolist(), v.values.astype(np.float64).tolist(), strict=True)
        found[doc_id] = float(sum(w * q.get(i, 0.0) for i, w in weights))
    return found


def check_ranking(name: str, got: list[tuple[str, float]], docs: list[SparseVector], query: SparseVector) -> None:
    truth = exact(docs, query)
    assert len(got) == TOP, name
    worst = 0.0
    for doc_id, score in got:
        assert math.isclose(score, truth[doc_id], rel_tol=REL), (name, doc_id, score, truth[doc_id])
        worst = max(worst, abs(score - truth[doc_id]) / truth[doc_id])
    assert np.allclose([s for _, s in got], sorted(truth.values(), reverse=True)[:TOP], rtol=REL), name
    SCORE_DIFFS[name] = max(SCORE_DIFFS.get(name, 0.0), worst)


def for_each_query(name: str, backend: Backend, search: Callable[[str], list[tuple[str, float]]]) -> None:
    docs = backend.documents(TEXTS)
    for text, query in zip(ENGINE_QUERIES, backend.queries(ENGINE_QUERIES), strict=True):
        check_ranking(name, search(text), docs, query)


def test_client_and_library_give_the_same_vectors(source: tuple[str, Backend]) -> None:
    """Documents (kind document) and queries (kind query) equal the library's own, ids exactly, weights within the
    API's 6-decimal rounding; the async path gives the same."""
    _, backend = source
    documents = (backend.documents(TEXTS[:12]), runtime.expander.expand(TEXTS[:12]))
    queries = (backend.queries(ENGINE_QUERIES), runtime.expander.expand(ENGINE_QUERIES, kind="query"))
    for got, want in (documents, queries):
        for g, w in zip(got, want, strict=True):
            assert g.indices.tolist() == w.indices[: len(g)].tolist() and np.allclose(
                g.values, w.values[: len(g)], atol=1e-6
            )
    again = asyncio.run(backend.aqueries(ENGINE_QUERIES))
    assert [v.indices.tolist() for v in again] == [v.indices.tolist() for v in backend.queries(ENGINE_QUERIES)]


def test_langchain_qdrant(source: tuple[str, Backend]) -> None:
    """QdrantVectorStore in RetrievalMode.SPARSE with SpladeSparseEmbeddings: the store's scores are the exact dot
    products and its top 10 the brute-force top 10; aembed_* give what embed_* give."""
    from langchain_qdrant import QdrantVectorStore, RetrievalMode

    from splade_adapters.langchain import SpladeSparseEmbeddings

    name, backend = source
    sparse = SpladeSparseEmbeddings(backend)
    store = QdrantVectorStore.from_texts(TEXTS, ids=IDS, location=":memory:", collection_name="docs",
                                         retrieval_mode=RetrievalMode.SPARSE, sparse_embedding=sparse)  # fmt: skip

    def search(q: str) -> list[tuple[str, float]]:
        return [(d.metadata["_id"], s) for d, s in store.similarity_search_with_score(q, k=TOP)]

    for_each_query(f"langchain-qdrant/{name}", backend, search)
    assert asyncio.run(sparse.aembed_query("lung disease")) == sparse.embed_query("lung disease")
    assert asyncio.run(sparse.aembed_documents(TEXTS[:3])) == sparse.embed_documents(TEXTS[:3])


def test_langchain_milvus(source: tuple[str, Backend], tmp_path: Path) -> None:
    """Milvus (Milvus Lite file) with SpladeMilvusSparseEmbedding on a SPARSE_FLOAT_VECTOR field, metric IP."""
    from langchain_milvus import Milvus

    from splade_adapters.langchain import SpladeMilvusSparseEmbedding

    name, backend = source
    store = Milvus(
        embedding_function=SpladeMilvusSparseEmbedding(backend), connection_args={"uri": str(tmp_path / "m.db")},
        collection_name="docs", index_params={"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP"},
        search_params={"metric_type": "IP", "params": {}},  # its default carries drop_ratio_build 0.2 (refused)
        auto_id=False, drop_old=True,
    )  # fmt: skip
    store.add_texts(TEXTS, ids=IDS)

    def search(q: str) -> list[tuple[str, float]]:
        return [(d.metadata["pk"], s) for d, s in store.similarity_search_with_score(q, k=TOP)]

    for_each_query(f"langchain-milvus/{name}", backend, search)


def test_llamaindex_qdrant(source: tuple[str, Backend]) -> None:
    """llama-index's QdrantVectorStore with the adapter's sparse_doc_fn / sparse_query_fn (hybrid enabled, a
    constant dense vector), queried in SPARSE mode; SpladeSparseEmbedding's single, batch and async calls agree
    with those functions."""
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from splade_adapters.llamaindex import SpladeSparseEmbedding, qdrant_sparse_functions

    name, backend = source
    doc_fn, query_fn = qdrant_sparse_functions(backend)
    store = QdrantVectorStore(client=QdrantClient(":memory:"), collection_name="docs", enable_hybrid=True,
                              sparse_doc_fn=doc_fn, sparse_query_fn=query_fn)  # fmt: skip
    store.add([TextNode(text=t, id_=i, embedding=[1.0, 0.0]) for t, i in zip(TEXTS, IDS, strict=True)])

    def search(q: str) -> list[tuple[str, float]]:
        found = store.query(VectorStoreQuery(query_str=q, mode=VectorStoreQueryMode.SPARSE, similarity_top_k=TOP))
        return list(zip(found.ids or [], found.similarities or [], strict=True))

    for_each_query(f"llama-index-qdrant/{name}", backend, search)
    embedding = SpladeSparseEmbedding(source=backend)
    (ids, weights) = query_fn(["lung disease"])
    assert embedding.get_query_embedding("lung disease") == dict(zip(ids[0], weights[0], strict=True))
    assert asyncio.run(embedding.aget_query_embedding("lung disease")) == embedding.get_query_embedding("lung disease")
    (ids, weights) = doc_fn(TEXTS[:3])
    assert embedding.get_text_embedding_batch(TEXTS[:3]) == [
        dict(zip(i, w, strict=True)) for i, w in zip(ids, weights, strict=True)
    ]
    assert asyncio.run(embedding.aget_text_embedding(TEXTS[0])) == embedding.get_text_embedding(TEXTS[0])


def test_haystack_qdrant(source: tuple[str, Backend]) -> None:
    """qdrant-haystack's QdrantDocumentStore (sparse embeddings on) filled by SpladeSparseDocumentEmbedder, searched
    by QdrantSparseEmbeddingRetriever with SpladeSparseTextEmbedder's query; run_async gives what run gives."""
    from haystack import Document
    from haystack_integrations.components.retrievers.qdrant import QdrantSparseEmbeddingRetriever
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    from splade_adapters.haystack import SpladeSparseDocumentEmbedder, SpladeSparseTextEmbedder

    name, backend = source
    store = QdrantDocumentStore(location=":memory:", use_sparse_embeddings=True, recreate_index=True, embedding_dim=2)
    documents = SpladeSparseDocumentEmbedder(backend).run(
        [Document(id=i, content=t) for i, t in zip(IDS, TEXTS, strict=True)]
    )
    store.write_documents(documents["documents"])
    embedder, retriever = (
        SpladeSparseTextEmbedder(backend),
        QdrantSparseEmbeddingRetriever(document_store=store, top_k=TOP),
    )

    def search(q: str) -> list[tuple[str, float]]:
        found = retriever.run(query_sparse_embedding=embedder.run(q)["sparse_embedding"])["documents"]
        return [(d.id, float(d.score or 0.0)) for d in found]

    for_each_query(f"qdrant-haystack/{name}", backend, search)
    assert asyncio.run(embedder.run_async("lung disease")) == embedder.run("lung disease")
    assert documents["documents"][0].sparse_embedding == SpladeSparseDocumentEmbedder(backend).run(
        [Document(id=IDS[0], content=TEXTS[0])])["documents"][0].sparse_embedding  # fmt: skip


FRAMEWORKS = {"langchain_core", "langchain_qdrant", "langchain_milvus", "llama_index", "haystack",
              "haystack_integrations"}  # fmt: skip


@pytest.mark.parametrize(
    ("module", "needs"),
    [
        ("splade_adapters", set()),
        ("splade_adapters.langchain", {"langchain_core", "langchain_qdrant", "langchain_milvus"}),
        ("splade_adapters.llamaindex", {"llama_index"}),
        ("splade_adapters.haystack", {"haystack"}),
    ],
)
def test_each_adapter_imports_only_its_own_framework(module: str, needs: set[str]) -> None:
    """The per-extra smoke test (one venv holds every extra): in a fresh interpreter each adapter module imports
    and loads only its framework (so its extra alone suffices), and none loads onnxruntime or the client."""
    import subprocess
    import sys

    watched = sorted(FRAMEWORKS | {"onnxruntime", "splade_client"})
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({watched!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(eval(out.stdout)) == needs, out.stdout  # our own printed list


def test_print_the_score_differences() -> None:
    """Prints the largest relative score difference each store returned (for the closing note); runs last."""
    for name, diff in sorted(SCORE_DIFFS.items()):
        print(f"{name}: max relative score difference {diff:.2e}")
