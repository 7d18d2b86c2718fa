"""Elasticsearch calls the function through the shipped `_inference` custom service endpoint (issue 44): a contract
test that follows Elasticsearch's own code (devkit/esinference.py names each file and commit), since no
Elasticsearch server can run here. The endpoint under integrations/elasticsearch/ is loaded as shipped, each batch's
request filled as CustomRequest fills it (the key from secret_parameters into the x-api-key header), sent through
the built artifact under the Lambda runtime emulator as the Function URL delivers it (the key checked against a
local IAM-enforced Secrets Manager), and the response read with the shipped json_parser paths as
SparseEmbeddingResponseParser reads it: equal-length token and weight lists whose pairs equal the function's own
vectors, for documents and queries."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from devkit import ROOT
from devkit import esinference as es
from devkit.aws import ApiKeyWorld
from devkit.corpus import CONNECTOR_TEXTS, longest_texts
from devkit.emulator import Emulator
from devkit.enginecalls import Call, keyed_function, sender
from handler import runtime
from splade_tools import opensearch
from splade_tools.integrations import load, placeholders

pytestmark = pytest.mark.integration
SHIPPED = ROOT / "integrations" / "elasticsearch"
FUNCTION_URL = "https://abcdefghijklmnopqrstuvwxyz234567.lambda-url.us-east-1.on.aws/"
KEY = "k-" + "e" * 38
TEXTS = CONNECTOR_TEXTS
# The kind each input type reaches: a translation names ingest and search; Elasticsearch's internal calls
# (semantic_text, semantic and sparse_vector queries) and an unspecified type get the default.
KIND = {"ingest": "document", "search": "query", "internal_ingest": "document", "internal_search": "document",
        "unspecified": "document", None: "document"}  # fmt: skip


def endpoint(key: str = KEY, batch_size: int = 2) -> dict[str, Any]:
    return dict(load(SHIPPED / "inference-endpoint.json", FUNCTION_URL=FUNCTION_URL, API_KEY=key,
                     BATCH_SIZE=batch_size))  # fmt: skip


@pytest.fixture(scope="module")
def keyed() -> Iterator[tuple[Emulator, ApiKeyWorld]]:
    with keyed_function(KEY) as served:
        yield served


def own(emu: Emulator, texts: list[str], kind: str) -> list[dict[str, float]]:
    """The function's own vectors (format indices) as Elasticsearch would hold them: id strings, float32."""
    call = Call(texts, f"{FUNCTION_URL}v1/expand", {"x-api-key": KEY, "content-type": "application/json"},
                   json.dumps({"texts": texts, "kind": kind}))  # fmt: skip
    status, body = sender(emu, "function_url")(call)
    assert status == 200, body
    data = json.loads(body)["data"]
    return [{str(i): float(np.float32(v)) for i, v in zip(d["indices"], d["values"], strict=True)} for d in data]


@pytest.mark.parametrize("input_type", list(KIND))
def test_the_custom_service_gets_the_functions_vectors(keyed: tuple[Emulator, ApiKeyWorld], input_type: Any) -> None:
    """Five texts at batch_size 2: three calls, each with the key header from secret_parameters, a body whose
    `texts` is exactly the batch and whose `kind` is the translated input type; the parsed embeddings are one per
    text, token and weight lists of equal length, equal (float32) to the function's vectors for that kind."""
    emu, _ = keyed
    ep = endpoint()
    calls = [es.request(ep, batch, input_type) for batch in es.batches(ep, TEXTS)]
    assert [c.texts for c in calls] == [TEXTS[:2], TEXTS[2:4], TEXTS[4:]]
    for call in calls:
        body = json.loads(call.body)
        assert body == {"texts": call.texts, "kind": KIND[input_type], "format": "indices"}
        assert call.headers["x-api-key"] == KEY and call.url == f"{FUNCTION_URL}v1/expand"
    got = es.infer(ep, TEXTS, input_type, sender(emu, "function_url"))
    assert got == own(emu, TEXTS, KIND[input_type])
    assert all(k.isdigit() for m in got for k in m)


def test_a_wrong_key_and_a_missing_secret_parameter_are_errors(keyed: tuple[Emulator, ApiKeyWorld]) -> None:
    """A key the stack does not hold: 403 invalid_api_key, Elasticsearch's unsuccessful-status error (nothing
    indexed). An endpoint whose header names a secret it lacks is refused before any call (ValidatingSubstitutor)."""
    emu, _ = keyed
    with pytest.raises(es.InferenceError, match=r"\[403\].*invalid_api_key"):
        es.infer(endpoint("wrong"), TEXTS[:1], "ingest", sender(emu, "function_url"))
    broken = endpoint()
    broken["service_settings"]["secret_parameters"] = {"key": KEY}
    with pytest.raises(es.InferenceError, match=r"placeholder \[\$\{api_key\}\] in field \[header.x-api-key\]"):
        es.request(broken, TEXTS[:1], "ingest")


def test_todays_main_would_have_failed_this_contract(keyed: tuple[Emulator, ApiKeyWorld]) -> None:
    """What the contract catches: a translation to a kind the API does not know is 400 `invalid_request` naming
    `kind`; paths that do not match the response (the term-map format) are the parser's error."""
    emu, _ = keyed
    ep = endpoint()
    ep["service_settings"]["input_type"]["translation"]["search"] = "search_query"
    with pytest.raises(es.InferenceError, match=r"\[400\].*\"field\":\s*\"kind\""):
        es.infer(ep, TEXTS[:1], "search", sender(emu, "function_url"))
    terms = endpoint()
    terms["service_settings"]["request"] = terms["service_settings"]["request"].replace('"indices"', '"terms"')
    with pytest.raises(es.InferenceError, match="Unable to find field"):
        es.infer(terms, TEXTS[:1], "ingest", sender(emu, "function_url"))


def test_the_batch_size_at_the_printed_step_gets_no_413(capsys: pytest.CaptureFixture[str]) -> None:
    """batch_size sized like OpenSearch's step (make opensearch-step): with MaxWindows 4 and a 10-window budget
    the step is 2, and batches of two of the longest texts MaxWindows allows pass; batch_size 3 is refused 413
    too_much_work, which the custom service reports (it does not split a batch)."""
    assert opensearch.main(["--model-dir", str(runtime.settings.model_dir), "--max-windows", "4",
                            "--max-request-windows", "10"]) == 0  # fmt: skip
    match = re.search(r"input_docs_processed_step_size: (\d+)", capsys.readouterr().out)
    assert match is not None and int(match.group(1)) == 2
    texts = longest_texts(runtime.expander, 4, 4)
    with keyed_function(KEY, {"MAX_WINDOWS": "4", "MAX_REQUEST_WINDOWS": "10"}) as (small, _):
        send = sender(small, "function_url")
        assert len(es.infer(endpoint(batch_size=int(match.group(1))), texts, "internal_ingest", send)) == 4
        with pytest.raises(es.InferenceError, match=r"\[413\].*too_much_work"):
            es.infer(endpoint(batch_size=3), texts, "internal_ingest", send)


def test_the_indexes_pipeline_and_queries_fit_together() -> None:
    """semantic_text and the sparse_vector query name the endpoint; the pipeline writes the field the
    sparse_vector index declares and the query reads; every file and placeholder is in docs/elasticsearch.md."""
    semantic = load(SHIPPED / "index-semantic-text.json", INFERENCE_ID="splade")
    assert semantic["mappings"]["properties"]["text"] == {"type": "semantic_text", "inference_id": "splade"}
    sparse = load(SHIPPED / "index-sparse-vector.json")
    (processor,) = load(SHIPPED / "ingest-pipeline.json", INFERENCE_ID="splade")["processors"]
    target = processor["inference"]["input_output"]["output_field"]
    assert sparse["mappings"]["properties"][target] == {"type": "sparse_vector"}
    query = load(SHIPPED / "query-sparse-vector.json", INFERENCE_ID="splade", QUERY_TEXT="copd")["query"]
    assert query["sparse_vector"] == {"field": target, "inference_id": "splade", "query": "copd"}
    assert load(SHIPPED / "query-semantic.json", QUERY_TEXT="copd")["query"]["semantic"]["field"] == "text"
    docs = (ROOT / "docs" / "elasticsearch.md").read_text()
    for path in SHIPPED.glob("*.json"):
        assert f"integrations/elasticsearch/{path.name}" in docs, path.name
        for name in placeholders(json.loads(path.read_text())):
            assert f"{name}=" in docs, (path.name, name)
