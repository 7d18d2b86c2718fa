"""Query encoders: inference-free idf weights from idf.json (OpenSearch's doc-only encoding) and an asymmetric
query/ model; the request chooses with query_encoder; the response says which encoder ran."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from devkit import MODEL_DIR
from devkit.corpus import prose_paragraphs
from devkit.events import http_event, http_response_body
from devkit.pretrained import Spec, write_pretrained
from handler import app, runtime
from scripts import idf
from splade_convert import cli as convert_cli
from splade_expander.errors import InvalidRequestError, ModelAssetsError
from splade_expander.expander import Expander

QUERY = "How do I reset my router's password? Reset it, then RESET again."


@pytest.fixture(scope="module")
def idf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled model with an idf.json counted over 300 prose paragraphs."""
    path = tmp_path_factory.mktemp("idf") / "model"
    shutil.copytree(MODEL_DIR, path)
    corpus = path.parent / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(prose_paragraphs()[:300])))
    assert idf.main(["--data", str(corpus), "--out", str(path)]) == 0
    return path


def test_idf_json_is_bm25_idf_of_the_corpus_wordpieces(idf_dir: Path) -> None:
    """idf.json holds log(1 + (N - df + 0.5) / (df + 0.5)) per vocabulary token, df counted here independently
    over each document's distinct WordPiece ids; special tokens have no entry."""
    table = json.loads((idf_dir / "idf.json").read_text())
    expander = Expander(idf_dir, threads=1)
    docs = prose_paragraphs()[:300]
    df: dict[int, int] = {}
    for text in docs:
        for token in set(expander.tokenizer.encode(text, add_special_tokens=False).ids):
            df[token] = df.get(token, 0) + 1
    for token_id in (expander.tokenizer.token_to_id(t) for t in ("the", "lung", "##s", "zebra")):
        assert token_id is not None
        n = df.get(token_id, 0)
        want = math.log(1 + (300 - n + 0.5) / (n + 0.5))
        assert table[expander.vocab[token_id]] == pytest.approx(want, abs=1e-6)
    assert not {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"} & set(table)
    assert len(table) == expander.vocab_size - 5


def test_idf_query_vector_is_each_distinct_token_weighted_by_idf(idf_dir: Path) -> None:
    """kind=query with idf.json: no model run (windows 0), each distinct token of the query once with its idf
    weight, heaviest first; a token missing from idf.json gets no weight."""
    table = json.loads((idf_dir / "idf.json").read_text())
    expander = Expander(idf_dir, threads=1)
    (vec,) = expander.expand([QUERY], kind="query")
    ids = expander.tokenizer.encode(QUERY, add_special_tokens=False).ids
    want = {t: np.float32(table[expander.vocab[t]]) for t in set(ids)}
    assert (vec.encoder, vec.windows, vec.tokens) == ("idf", 0, len(ids))
    assert dict(zip(vec.indices.tolist(), vec.values.tolist(), strict=True)) == {k: float(v) for k, v in want.items()}
    assert list(vec.values) == sorted(vec.values, reverse=True)
    del table["reset"]
    (idf_dir.parent / "partial").mkdir(exist_ok=True)
    partial = idf_dir.parent / "partial" / "model"
    if not partial.exists():
        shutil.copytree(idf_dir, partial)
    (partial / "idf.json").write_text(json.dumps(table))
    (fewer,) = Expander(partial, threads=1).expand([QUERY], kind="query")
    assert expander.tokenizer.token_to_id("reset") not in fewer.indices.tolist() and len(fewer) == len(vec) - 1


def test_query_encoder_model_runs_the_model_and_documents_never_use_idf(idf_dir: Path) -> None:
    """query_encoder=model gives the model's query vector; kind=document ignores idf.json; top_k and prune apply
    to idf vectors too."""
    with_idf = Expander(idf_dir, threads=1)
    plain = Expander(MODEL_DIR, threads=1)
    (model_vec,) = with_idf.expand([QUERY], kind="query", query_encoder="model")
    assert model_vec.encoder == "document" and model_vec == plain.expand([QUERY], kind="query")[0]
    assert with_idf.expand([QUERY])[0] == plain.expand([QUERY])[0]
    (top,) = with_idf.expand([QUERY], kind="query", top_k=3)
    assert len(top) == 3
    (pruned,) = with_idf.expand([QUERY], kind="query", prune={"type": "max_ratio", "value": 0.9})
    assert pruned.values.min() >= np.float32(0.9) * pruned.values.max()


def test_query_encoder_errors_name_the_field(idf_dir: Path) -> None:
    """idf without idf.json, or any query_encoder with kind=document, is an InvalidRequestError on query_encoder."""
    with pytest.raises(InvalidRequestError, match=r"needs idf\.json") as missing:
        Expander(MODEL_DIR, threads=1).expand(["a"], kind="query", query_encoder="idf")
    with pytest.raises(InvalidRequestError, match="kind=query only") as document:
        Expander(idf_dir, threads=1).expand(["a"], query_encoder="idf")
    assert missing.value.field == document.value.field == "query_encoder"


def test_an_idf_json_for_another_vocabulary_fails_the_load(tmp_path: Path) -> None:
    """Tokens the tokenizer does not know, or a negative weight, fail loading with the file named."""
    model = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model)
    (model / "idf.json").write_text(json.dumps({"lung": 2.0, "Ġlung": 1.0}))
    with pytest.raises(ModelAssetsError, match="not in the model's vocabulary"):
        Expander(model, threads=1)
    (model / "idf.json").write_text(json.dumps({"lung": -1.0}))
    with pytest.raises(ModelAssetsError, match="finite number >= 0"):
        Expander(model, threads=1)


def test_an_asymmetric_query_model_encodes_queries(tmp_path: Path) -> None:
    """A query/ subdirectory (its own graph, same vocabulary) encodes kind=query; documents keep the main model;
    with an idf.json as well, idf is the default and query_encoder=model picks the query model."""
    model = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model)
    src = write_pretrained(tmp_path / "src", Spec("distilbert", hidden=32, heads=2))
    assert convert_cli.main(["--source", str(src), "--out", str(model / "query"), "--manifest"]) == 0
    query_only = Expander(model / "query", threads=1)
    expander = Expander(model, threads=1)
    (vec,) = expander.expand([QUERY], kind="query")
    assert vec.encoder == "query" and vec == query_only.expand([QUERY], kind="query")[0]
    assert expander.expand([QUERY])[0] == Expander(MODEL_DIR, threads=1).expand([QUERY])[0]
    assert expander.encoders["default_query_encoder"] == "query" and "query" in expander.encoders
    (model / "idf.json").write_text(json.dumps({"reset": 3.0}))
    both = Expander(model, threads=1)
    assert both.expand([QUERY], kind="query")[0].encoder == "idf"
    assert both.expand([QUERY], kind="query", query_encoder="model")[0].encoder == "query"


def test_http_model_block_says_which_encoder_ran(lambda_context, monkeypatch, idf_dir: Path) -> None:
    """The response's model block has encoder document / idf; GET /v1/model lists the encoders and the default;
    a bad query_encoder is a 400 naming the field."""
    monkeypatch.setattr(runtime, "expander", Expander(idf_dir, threads=1))
    _, doc = http_response_body(app.lambda_handler(http_event({"text": QUERY}), lambda_context))
    _, query = http_response_body(app.lambda_handler(http_event({"text": QUERY, "kind": "query"}), lambda_context))
    assert doc["model"]["encoder"] == "document" and query["model"]["encoder"] == "idf"
    assert query["data"][0]["windows"] == 0
    _, model = http_response_body(app.lambda_handler(http_event(method="GET", path="/v1/model"), lambda_context))
    encoders = model["model"]["encoders"]
    assert encoders["default_query_encoder"] == "idf" and encoders["idf"]["tokens"] == 30522 - 5
    status, bad = http_response_body(
        app.lambda_handler(http_event({"text": "a", "kind": "query", "query_encoder": "bm25"}), lambda_context)
    )
    assert status == 400 and bad["error"]["field"] == "query_encoder"
