"""make eval's pieces: the metric definitions on hand-checked rankings, the BEIR loader, the bundled pydoc set,
and document-frequency counts that add up across objects."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from scripts import eval as evaluate
from scripts import make_pydoc_set
from splade_expander.docfreq import DocFreq


def test_metrics_match_hand_computed_values() -> None:
    """Two queries over five documents: nDCG@10, MRR@10 and Recall@100 by their standard definitions with binary
    relevance; ties keep corpus order."""
    docs = ["a", "b", "c", "d", "e"]
    scores = np.array([[0.9, 0.1, 0.8, 0.0, 0.5], [0.2, 0.2, 0.1, 0.9, 0.0]])
    qrels = {"q1": {"c", "e"}, "q2": {"b"}}
    got = evaluate.metrics(scores, docs, ["q1", "q2"], qrels)
    # q1 ranks a, c, e, b, d: hits at ranks 2 and 3. q2 ranks d, a, b (a before b: a tie), c, e: hit at rank 3.
    ndcg1 = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg2 = (1 / math.log2(4)) / 1
    assert got["nDCG@10"] == pytest.approx((ndcg1 + ndcg2) / 2)
    assert got["MRR@10"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert got["Recall@100"] == 1.0


def test_mrr_is_cut_at_10() -> None:
    """A first relevant document at rank 11 gives MRR@10 0 and nDCG@10 0, but counts for Recall@100."""
    scores = np.array([np.arange(20, 0, -1, dtype=float)])
    docs = [f"d{i}" for i in range(20)]
    got = evaluate.metrics(scores, docs, ["q"], {"q": {"d10"}})
    assert got == {"nDCG@10": 0.0, "MRR@10": 0.0, "Recall@100": 1.0}


def test_the_bundled_pydoc_set_is_what_the_script_makes(tmp_path: Path) -> None:
    """eval/pydoc is committed; on the Python it was made with, the script writes the same files. Each query has
    exactly one relevant document, its own section."""
    corpus, queries, qrels = evaluate.load_beir(evaluate.DEFAULT_DATA)
    assert len(corpus) == len(queries) == len(qrels) == 77
    assert all(qrels[q] == {q.replace("q-", "doc-", 1)} for q in queries)
    made = json.loads((evaluate.DEFAULT_DATA / "queries.jsonl").read_text().splitlines()[0])
    assert made == {"_id": "q-assert", "text": 'The "assert" statement'}
    made_with = "Python {}.{}.".format(*sys.version_info[:2])
    if made_with in (evaluate.DEFAULT_DATA / "README.md").read_text():  # other Pythons have other topics
        make_pydoc_set.main(["--out", str(tmp_path)])
        for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
            assert (tmp_path / name).read_bytes() == (evaluate.DEFAULT_DATA / name).read_bytes()


def test_document_frequencies_add_up_across_objects() -> None:
    """Counts of two halves merged equal the counts of the whole; the JSON form round-trips; different
    vocabularies refuse to merge."""
    docs = [[5, 5, 7], [7, 9], [], [1, 2, 3, 5]]
    whole, first, second = DocFreq(10), DocFreq(10), DocFreq(10)
    whole.add(docs)
    first.add(docs[:2])
    second.add(docs[2:])
    first.merge(DocFreq.from_json(json.loads(second.dumps())))
    assert first.documents == whole.documents == 4
    assert np.array_equal(first.counts, whole.counts) and whole.counts[5] == 2 and whole.counts[7] == 2
    with pytest.raises(ValueError, match="do not add up"):
        whole.merge(DocFreq(11))
    idf = whole.idf([f"t{i}" for i in range(10)], special_ids=[0])
    assert "t0" not in idf and idf["t5"] == pytest.approx(math.log(1 + (4 - 2 + 0.5) / 2.5), abs=1e-6)
