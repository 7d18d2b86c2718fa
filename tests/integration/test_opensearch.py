"""OpenSearch calls the function through the shipped ml-commons connectors (issue 43): contract tests that follow
ml-commons @ 950f056 and neural-search @ 936d3c4 (devkit/mlcommons.py names each source file and method), since no
OpenSearch server can run here. Each connector under integrations/opensearch/ is loaded as shipped, its request
filled the way ml-commons fills it, sent through the built artifact under the Lambda runtime emulator (the HTTP API
event for the SigV4 connector; the Function URL with the key read from a local Secrets Manager for the Amazon
OpenSearch Service one), its response read through the connector's response_filter and ml-commons' wrapping, and
checked the way neural-search's TokenWeightUtil checks it; the maps must equal the function's own vectors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from devkit import ROOT
from devkit import mlcommons as ml
from devkit.aws import ApiKeyWorld
from devkit.corpus import CONNECTOR_TEXTS, longest_texts
from devkit.emulator import Emulator
from devkit.enginecalls import Call, Send, keyed_function, sender
from handler import runtime
from splade_tools import engines, opensearch
from splade_tools.integrations import load, placeholders

pytestmark = pytest.mark.integration
SHIPPED = ROOT / "integrations" / "opensearch"
API_URL = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"  # the stack's ApiUrl output
FUNCTION_URL = "https://abcdefghijklmnopqrstuvwxyz234567.lambda-url.us-east-1.on.aws/"  # FunctionUrl (slash included)
KEY = "k-" + "q" * 38
TEXTS = CONNECTOR_TEXTS
FORMATS = ["WORD", "TOKEN_ID"]
CONTENT = ["PASSAGE", "QUERY", None]  # None: a symmetric model's call (no content_type parameter)


def sigv4_connector(step: int = 2) -> dict[str, Any]:
    values = {"ACCESS_KEY": "AKIDEXAMPLE", "SECRET_KEY": "secret", "REGION": "us-east-1", "STEP_SIZE": str(step)}
    return dict(load(SHIPPED / "connector-sigv4.json", API_URL=API_URL, **values))


def apikey_connector(step: int = 2) -> dict[str, Any]:
    values = {
        "API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:splade-api-key-AbCdEf",
        "CONNECTOR_ROLE_ARN": "arn:aws:iam::123456789012:role/splade-connector",
    }
    return dict(load(SHIPPED / "connector-apikey.json", STEP_SIZE=str(step), FUNCTION_URL=FUNCTION_URL, **values))


def own_vectors(send: Send, url: str, texts: list[str], kind: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The function's own answer for the same texts (format both): the reference the maps must equal."""
    body = json.dumps({"texts": texts, "kind": kind, "format": "both"})
    status, text = send(Call(texts, url, headers, body))
    assert status == 200, text
    return list(json.loads(text)["data"])


def expected(data: list[dict[str, Any]], fmt: str) -> list[dict[str, float]]:
    if fmt == "WORD":
        return [d["terms"] for d in data]
    return [{str(i): v for i, v in zip(d["indices"], d["values"], strict=True)} for d in data]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def keyed() -> Iterator[tuple[Emulator, ApiKeyWorld]]:
    with keyed_function(KEY) as served:
        yield served


def check(maps: list[dict[str, float]], data: list[dict[str, Any]], fmt: str) -> None:
    assert len(maps) == len(TEXTS)
    assert maps == expected(data, fmt)  # floatValue() of 6-decimal weights: compared as Python floats
    if fmt == "TOKEN_ID":
        assert all(ml.sparse_vector_keys_ok(m) for m in maps)
    else:
        assert "." in maps[1]  # a dotted term reaches OpenSearch like any other


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("content", CONTENT)
def test_the_sigv4_connector_gives_neural_search_the_functions_vectors(
    emu: Emulator, fmt: str, content: str | None
) -> None:
    """Self-managed OpenSearch (aws_sigv4, execute-api): 5 texts at step 2 are 3 calls, each body holding exactly
    its chunk's texts (quotes, <, &, non-ASCII as Gson writes them); the maps read through `$.response` and the
    wrapping pass TokenWeightUtil's checks and equal the function's vectors for the kind content_type names
    (QUERY -> query; PASSAGE or none -> document), in order; TOKEN_ID keys suit a sparse_vector field."""
    connector = sigv4_connector()
    send = sender(emu, "http_v2")
    algo = ml.algo_parameters(fmt if content or fmt != "WORD" else None, content)
    calls = ml.calls(connector, TEXTS, algo)
    assert [c.texts for c in calls] == [TEXTS[:2], TEXTS[2:4], TEXTS[4:]]
    assert all(json.loads(c.body)["texts"] == c.texts and c.url == f"{API_URL}/v1/expand" for c in calls)
    assert all(json.loads(c.body)["content_type"] == content for c in calls)
    maps = ml.predict(connector, TEXTS, algo, send)
    kind = "query" if content == "QUERY" else "document"
    check(maps, own_vectors(send, calls[0].url, TEXTS, kind, calls[0].headers), fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("content", ["PASSAGE", "QUERY"])
def test_the_apikey_connector_reads_the_key_from_the_stacks_secret(
    keyed: tuple[Emulator, ApiKeyWorld], fmt: str, content: str
) -> None:
    """Amazon OpenSearch Service (http, secretArn): the x-api-key header is the secret's api_key as the stack
    stores it; the Function URL answers each call and the maps equal the function's vectors. A secret with another
    key is refused 403 invalid_api_key, which ml-commons surfaces as the inference error (nothing indexed)."""
    emu, world = keyed
    connector = apikey_connector()
    send = sender(emu, "function_url")
    maps = ml.predict(connector, TEXTS, ml.algo_parameters(fmt, content), send, secret=world.secret())
    calls = ml.calls(connector, TEXTS, ml.algo_parameters(fmt, content), secret=world.secret())
    assert calls[0].headers["x-api-key"] == KEY and calls[0].url == f"{FUNCTION_URL}v1/expand"
    kind = "query" if content == "QUERY" else "document"
    check(maps, own_vectors(send, calls[0].url, TEXTS, kind, calls[0].headers), fmt)
    with pytest.raises(ml.MLCommonsError, match=r"403 .*invalid_api_key"):
        ml.predict(connector, TEXTS, ml.algo_parameters(fmt, content), send, secret={"api_key": "not-the-key"})


def test_todays_main_would_have_failed_this_contract(emu: Emulator) -> None:
    """What the contract catches: a body without the ml-commons parameters gives `data`, which TokenWeightUtil
    refuses (no `response` key after the filter misses); a WORD map keyed by terms is refused by sparse_vector."""
    connector = sigv4_connector()
    (action,) = connector["actions"]
    action["request_body"] = '{ "texts": ${parameters.input} }'
    with pytest.raises(ml.MLCommonsError, match="'response' key"):
        ml.predict(connector, TEXTS[:2], {}, sender(emu, "http_v2"))
    words = ml.predict(sigv4_connector(), TEXTS[:2], ml.algo_parameters("WORD", None), sender(emu, "http_v2"))
    assert not ml.sparse_vector_keys_ok(words[0])


def test_the_connector_urls_are_trusted_by_the_shipped_setting() -> None:
    """plugins.ml_commons.trusted_connector_endpoints_regex as shipped passes ml-commons' regex safety check and
    matches (whole-string) both connectors' URLs as the stack's outputs make them, and nothing else."""
    regexes = json.loads((SHIPPED / "trusted-endpoints.json").read_text())["persistent"][
        "plugins.ml_commons.trusted_connector_endpoints_regex"
    ]
    for connector in (sigv4_connector(), apikey_connector()):
        (action,) = connector["actions"]
        assert ml.trusted(action["url"], regexes), action["url"]
    for other in ("https://evil.example.com/v1/expand", "http://a1b2c3.execute-api.us-east-1.amazonaws.com/v1/x",
                  "https://a1b2c3.execute-api.us-east-1.amazonaws.com.evil.io/v1/expand"):  # fmt: skip
        assert not ml.trusted(other, regexes), other


def test_the_model_pipeline_indexes_and_queries_fit_together(emu: Emulator) -> None:
    """The registration is a remote sparse_encoding model (asymmetric: neural-search sends QUERY/PASSAGE); the
    pipeline writes the field both index mappings declare (rank_features; sparse_vector with index.sparse for
    3.3+) and the queries read; query_tokens filled with the function's query map is engines.neural_sparse_query's
    body, dotted terms kept; every shipped file's placeholders are the ones docs/opensearch.md fills."""
    model = json.loads((SHIPPED / "model.json").read_text())
    assert (model["function_name"], model["model_config"]["model_type"]) == ("remote", "sparse_encoding")
    assert model["model_config"]["additional_config"]["is_asymmetric"] is True
    (processor,) = json.loads((SHIPPED / "ingest-pipeline.json").read_text())["processors"]
    (target,) = processor["sparse_encoding"]["field_map"].values()
    ranked = json.loads((SHIPPED / "index-rank-features.json").read_text())
    seismic = json.loads((SHIPPED / "index-sparse-vector.json").read_text())
    assert ranked["mappings"]["properties"][target] == {"type": "rank_features"}
    assert seismic["mappings"]["properties"][target]["type"] == "sparse_vector"
    assert seismic["settings"]["index.sparse"] is True
    assert seismic["mappings"]["properties"][target]["method"]["name"] == "seismic"
    by_model = load(SHIPPED / "query-model.json", QUERY_TEXT="copd", MODEL_ID="m1")
    assert by_model["query"]["neural_sparse"][target] == {"query_text": "copd", "model_id": "m1"}
    (tokens,) = ml.predict(sigv4_connector(), [TEXTS[1]], ml.algo_parameters("WORD", "QUERY"),
                           sender(emu, "http_v2"))  # fmt: skip
    assert any("." in t for t in tokens)
    filled = load(SHIPPED / "query-tokens.json", QUERY_TOKENS=tokens)
    assert filled == engines.neural_sparse_query(tokens, target)
    docs = (ROOT / "docs" / "opensearch.md").read_text()
    for path in SHIPPED.glob("*.json"):
        assert f"integrations/opensearch/{path.name}" in docs, path.name
        for name in placeholders(json.loads(path.read_text())):
            assert f"{name}=" in docs, (path.name, name)


def test_the_printed_step_never_413s_and_one_past_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    """A deployment with MaxWindows 4 and a work budget of 10 windows: the step tool prints 2; five texts each as
    long as MaxWindows allows go through at that step (3 calls, no 413); at step 3 the first call is refused with
    413 too_much_work and ml-commons, which does not split a refused call, fails the whole inference."""
    assert opensearch.main(["--model-dir", str(runtime.settings.model_dir), "--max-windows", "4",
                            "--max-request-windows", "10"]) == 0  # fmt: skip
    step = int(re.search(r"input_docs_processed_step_size: (\d+)", capsys.readouterr().out).group(1))  # type: ignore[union-attr]
    assert step == 2
    texts = longest_texts(runtime.expander, 5, 4)
    with Emulator({"MAX_WINDOWS": "4", "MAX_REQUEST_WINDOWS": "10"}) as small:
        send = sender(small, "http_v2")
        maps = ml.predict(sigv4_connector(step), texts, ml.algo_parameters("WORD", "PASSAGE"), send)
        assert len(maps) == 5 and all(maps)
        with pytest.raises(ml.MLCommonsError, match=r"413 .*too_much_work"):
            ml.predict(sigv4_connector(step + 1), texts, ml.algo_parameters("WORD", "PASSAGE"), send)
