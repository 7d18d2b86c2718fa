"""Retrieval quality on a BEIR-format dataset: ``make eval [DATA=<dir>] [MODEL_DIR=<model dir>]``.

DATA holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
``qrels/test.tsv`` (``query-id corpus-id score``, a header line). Documents are expanded as ``document``
(``title`` + ``text``), queries as ``query``, and a document's score is the dot product. One line per system:

    <system> nDCG@10=<x> MRR@10=<y> Recall@100=<z>

* ``splade-model``: queries by the model (``query_encoder: model``);
* ``splade-idf``: queries by idf weights, no model run: the model directory's ``idf.json`` when it has one, else
  the idf of this corpus (what ``make idf DATA=<dir>`` would write);
* ``bm25``: bm25s (Lucene's BM25, k1 1.5, b 0.75) over English-stemmed words without stopwords;
* ``hybrid-model+bm25``, ``hybrid-idf+bm25``: the mean of the two systems' min-max normalized scores.

Binary relevance (qrels score > 0), standard definitions: nDCG@10 with gain 1 per relevant document, MRR cut at
10, Recall@100 over each query's relevant documents; queries without a relevant document are left out. The
figures are also written to ``<model dir>/eval.json`` (beside the manifest, so the model build stays
deterministic).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scripts.idf import count, document_text, write_idf
from splade_expander.defaults import MODEL_DIR as PACKAGE_MODEL_DIR
from splade_expander.expander import Expander, SparseVector
from splade_tools.progress import Progress

DEFAULT_DATA = Path(__file__).resolve().parent.parent / "eval" / "pydoc"
BATCH = 32


def load_beir(data: Path) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """(doc id -> text, query id -> text, query id -> relevant doc ids)."""
    corpus: dict[str, str] = {}
    for line in (data / "corpus.jsonl").read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            corpus[str(record["_id"])] = document_text(record) or ""
    queries = {}
    for line in (data / "queries.jsonl").read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            queries[str(record["_id"])] = record["text"]
    qrels: dict[str, set[str]] = {}
    for number, line in enumerate((data / "qrels" / "test.tsv").read_text().splitlines()):
        parts = line.split("\t")
        if number == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # the header
        if len(parts) >= 3 and int(parts[2]) > 0 and parts[1] in corpus:
            qrels.setdefault(parts[0], set()).add(parts[1])
    return corpus, {q: t for q, t in queries.items() if q in qrels}, qrels


def matrix(vectors: list[SparseVector], vocab_size: int) -> Any:
    from scipy.sparse import csr_matrix

    rows = np.repeat(np.arange(len(vectors)), [len(v) for v in vectors])
    cols = np.concatenate([v.indices for v in vectors]) if vectors else np.zeros(0, np.int32)
    vals = np.concatenate([v.values for v in vectors]) if vectors else np.zeros(0, np.float32)
    return csr_matrix((vals.astype(np.float64), (rows, cols)), shape=(len(vectors), vocab_size))


def metrics(
    scores: np.ndarray, doc_ids: list[str], query_ids: list[str], qrels: dict[str, set[str]]
) -> dict[str, float]:
    ndcg, mrr, recall = [], [], []
    for row, qid in zip(scores, query_ids, strict=True):
        relevant = qrels[qid]
        order = np.lexsort((np.arange(len(row)), -row))[:100]  # score descending, ties by corpus order
        ranked = [doc_ids[i] for i in order]
        hits = [d in relevant for d in ranked]
        dcg = sum(1.0 / math.log2(r + 2) for r, hit in enumerate(hits[:10]) if hit)
        ideal = sum(1.0 / math.log2(r + 2) for r in range(min(len(relevant), 10)))
        ndcg.append(dcg / ideal)
        mrr.append(next((1.0 / (r + 1) for r, hit in enumerate(hits[:10]) if hit), 0.0))
        recall.append(sum(hits) / len(relevant))
    return {"nDCG@10": float(np.mean(ndcg)), "MRR@10": float(np.mean(mrr)), "Recall@100": float(np.mean(recall))}


def bm25_scores(docs: list[str], queries: list[str]) -> np.ndarray:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(docs, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
    return np.array([retriever.get_scores(q) for q in tokens], dtype=np.float64)


def normalized(scores: np.ndarray) -> np.ndarray:
    low, high = scores.min(axis=1, keepdims=True), scores.max(axis=1, keepdims=True)
    out: np.ndarray = (scores - low) / np.where(high > low, high - low, 1.0)
    return out


def expand_corpus(expander: Expander, texts: list[str], bar: bool) -> list[SparseVector]:
    progress = Progress(len(texts), bar)
    vectors: list[SparseVector] = []
    for start in range(0, len(texts), BATCH):
        vectors += expander.expand(texts[start : start + BATCH])
        progress.update(len(texts[start : start + BATCH]), 0, start + BATCH)
    progress.update(0, 0, len(texts), force=True)
    if bar:
        sys.stderr.write("\n")
    return vectors


def idf_expander(expander: Expander, model_dir: Path, docs: list[str], work: Path) -> tuple[Expander, str]:
    """The model's own idf.json when it has one; else a copy of the model with this corpus's idf."""
    if expander.idf is not None:
        return expander, "the model's idf.json"
    copy = work / "model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("eval.json", "query"))
    write_idf(count(iter(docs), expander.tokenizer), copy, expander.tokenizer)
    return Expander(copy, threads=expander.threads, max_windows=expander.max_windows), "this corpus's idf"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a BEIR-format directory")
    parser.add_argument("--model-dir", type=Path, default=PACKAGE_MODEL_DIR)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads; 0: every CPU")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)
    bar = sys.stderr.isatty() if args.progress is None else args.progress
    corpus, queries, qrels = load_beir(args.data)
    doc_ids, docs = list(corpus), list(corpus.values())
    query_ids, query_texts = list(queries), list(queries.values())
    expander = Expander(args.model_dir, threads=args.threads or None, max_windows=100_000)  # every window counts
    print(f"{args.data}: {len(docs)} documents, {len(query_ids)} queries; model {args.model_dir}", file=sys.stderr)
    doc_matrix = matrix(expand_corpus(expander, docs, bar), expander.vocab_size)
    scores: dict[str, np.ndarray] = {}
    model_queries = expander.expand(query_texts, kind="query", query_encoder="model")
    scores["splade-model"] = (matrix(model_queries, expander.vocab_size) @ doc_matrix.T).toarray()
    with tempfile.TemporaryDirectory() as work:
        idf_model, idf_source = idf_expander(expander, args.model_dir, docs, Path(work))
        idf_queries = idf_model.expand(query_texts, kind="query", query_encoder="idf")
    scores["splade-idf"] = (matrix(idf_queries, expander.vocab_size) @ doc_matrix.T).toarray()
    scores["bm25"] = bm25_scores(docs, query_texts)
    for name in ("model", "idf"):
        scores[f"hybrid-{name}+bm25"] = (normalized(scores[f"splade-{name}"]) + normalized(scores["bm25"])) / 2
    results = {system: metrics(s, doc_ids, query_ids, qrels) for system, s in scores.items()}
    for system, values in results.items():
        print(f"{system} " + " ".join(f"{k}={v:.3f}" for k, v in values.items()))
    print(f"(splade-idf weights: {idf_source})", file=sys.stderr)
    eval_path = args.model_dir / "eval.json"
    saved = json.loads(eval_path.read_text()) if eval_path.is_file() else {}
    saved[args.data.resolve().name] = {
        "documents": len(docs), "queries": len(query_ids), "idf": idf_source,
        "model_sha256": expander.model_info["sha256"],
        "results": {s: {k: round(v, 4) for k, v in r.items()} for s, r in results.items()},
    }  # fmt: skip
    eval_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
