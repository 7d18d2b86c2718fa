"""The Lambda handler in-process: HTTP API v2, REST v1, Function URL and direct invocation."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from devkit import ROOT
from devkit.events import direct_event, foreign_records, http_binary_event, http_event, http_response_body, load_event
from handler import app, events, runtime
from handler.http import service
from splade_expander import options
from splade_expander.errors import InvalidRequestError, PayloadTooLargeError

HTTP_EVENTS = ["http-api-v2-expand", "http-api-v2-expand-base64", "rest-v1-expand", "function-url-expand"]


def call(event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    status, body = http_response_body(app.lambda_handler(event, context))
    return status, body


def test_event_sources_are_told_apart() -> None:
    """Each sample event is classified as the caller that sends it."""
    kinds = {name: events.event_source(load_event(name)) for name in [*HTTP_EVENTS, "direct-expand"]}
    assert kinds == {
        "http-api-v2-expand": "http_v2",
        "http-api-v2-expand-base64": "http_v2",
        "rest-v1-expand": "rest_v1",
        "function-url-expand": "function_url",
        "direct-expand": "direct",
    }


def test_one_classifier_names_every_ingest_shape() -> None:
    """classify gives each sample event its own kind (each ingest shape, each HTTP format, direct); app.py and
    ingest.py dispatch on it, every HTTP kind has its resolver, and the coarse source is derived from it."""
    from handler.http import api

    kinds = {p.stem: events.classify(load_event(p.name)) for p in sorted((ROOT / "events").glob("*.json"))}
    assert kinds["sqs-s3-ingest"] is events.EventShape.SQS and kinds["s3-put"] is events.EventShape.S3
    assert kinds["eventbridge-object-created"] is events.EventShape.EVENTBRIDGE
    assert kinds["stepfunctions-map-batch"] is events.EventShape.STEPFUNCTIONS
    assert kinds["power-tuning-batch"] is events.EventShape.DIRECT
    assert events.classify(foreign_records("aws:kinesis")) is events.EventShape.OTHER_RECORDS
    assert set(api.RESOLVER_TYPES) == set(events.HTTP_SHAPES) == {k for k in events.EventShape if k.is_http}
    assert {k.source for k in events.EventShape} == {"http_v2", "function_url", "rest_v1", "ingest", "direct"}


def test_every_event_source_returns_the_same_vectors_as_the_expander(lambda_context) -> None:
    """HTTP v2 (plain and base64), REST v1, Function URL and direct give identical, correct vectors."""
    request = load_event("direct-expand")
    expected = runtime.expander.expand(request["texts"], top_k=request["top_k"])
    bodies = []
    for name in HTTP_EVENTS:
        status, body = call(load_event(name), lambda_context)
        assert status == 200, (name, body)
        bodies.append(body)
    bodies.append(app.lambda_handler(load_event("direct-expand"), lambda_context))
    for body in bodies:
        assert body == bodies[0]
        assert sorted(body) == ["data", "model", "usage"]
        for item, vec in zip(body["data"], expected, strict=True):
            assert sorted(item) == ["index", "indices", "terms", "tokens", "values", "windows"]
            assert item["indices"] == vec.indices.tolist()
            assert item["values"] == pytest.approx(vec.values.tolist(), abs=1e-6)
            assert list(item["terms"]) == [vec.vocab[i] for i in vec.indices.tolist()]
            assert (item["tokens"], item["windows"]) == (vec.tokens, vec.windows)
    assert bodies[0]["model"] == {**runtime.expander.model_info, "encoder": "document"}
    assert bodies[0]["usage"] == {"texts": 2, "tokens": sum(v.tokens for v in expected)}
    assert "pulmonary" in bodies[0]["data"][0]["terms"]


def test_single_text_and_formats(lambda_context) -> None:
    """`text` is one text; format indices gives indices+values only, terms gives terms only."""
    status, body = call(http_event({"text": "lung disease", "format": "terms", "top_k": 5}), lambda_context)
    assert status == 200 and len(body["data"]) == 1
    assert sorted(body["data"][0]) == ["index", "terms", "tokens", "windows"] and len(body["data"][0]["terms"]) == 5
    status, body = call(http_event({"texts": ["lung disease"]}), lambda_context)
    assert sorted(body["data"][0]) == ["index", "indices", "tokens", "values", "windows"]


def test_model_route_reports_model_and_limits(lambda_context) -> None:
    """GET /v1/model returns the model block and the configured limits."""
    status, body = call(load_event("http-api-v2-model"), lambda_context)
    assert status == 200
    assert body["model"]["name"] == "splade-tiny" and body["model"]["vocab_size"] == 30522
    assert body["limits"] == {
        "max_texts": runtime.settings.max_texts,
        "max_text_chars": runtime.settings.max_text_chars,
        "max_body_bytes": runtime.settings.max_body_bytes,
        "window_tokens": runtime.settings.window_tokens,
        "max_windows": runtime.settings.max_windows,
        "max_request_windows": 256,
    }


def test_openapi_document_is_valid_and_lists_the_routes(lambda_context) -> None:
    """GET /v1/openapi.json is a valid OpenAPI 3 document with the three routes and the request fields."""
    status, doc = call(load_event("http-api-v2-openapi"), lambda_context)
    assert status == 200
    validate(doc)
    assert doc["openapi"].startswith("3.")
    assert sorted(doc["paths"]) == ["/v1/expand", "/v1/model", "/v1/openapi.json"]
    props = doc["components"]["schemas"]["ExpandRequest"]["properties"]
    assert sorted(props) == sorted(f.name for f in options.FIELDS)
    assert props["format"]["enum"] == ["indices", "terms", "both"]


BIG = "x" * 200


@pytest.mark.parametrize(
    ("event", "status", "code", "field"),
    [
        (lambda: http_event(raw='{"texts": ["a"'), 400, "invalid_request", None),
        (lambda: http_event(raw=""), 400, "invalid_request", None),
        (lambda: http_event(raw="[1, 2]"), 400, "invalid_request", None),
        (lambda: http_event(raw='{"texts": [NaN]}'), 400, "invalid_request", None),
        (lambda: http_event(raw="[" * 100_000 + "]" * 100_000), 400, "invalid_request", None),
        (lambda: http_event({"texts": ["a", 3]}), 400, "invalid_request", "texts[1]"),
        (lambda: http_event({"texts": "a"}), 400, "invalid_request", "texts"),
        (lambda: http_event({"texts": []}), 400, "invalid_request", "texts"),
        (lambda: http_event({"texts": ["a"], "text": "b"}), 400, "invalid_request", "texts"),
        (lambda: http_event({}), 400, "invalid_request", "texts"),
        (lambda: http_event({"texts": ["a"], "topk": 3}), 400, "invalid_request", "topk"),
        (lambda: http_event({"texts": ["a"], "top_k": 0}), 400, "invalid_request", "top_k"),
        (lambda: http_event({"texts": ["a"], "top_k": "5"}), 400, "invalid_request", "top_k"),
        (lambda: http_event({"texts": ["a"], "min_weight": -1}), 400, "invalid_request", "min_weight"),
        (lambda: http_event({"texts": ["a"], "kind": "passage"}), 400, "invalid_request", "kind"),
        (lambda: http_event({"texts": ["a"], "format": "dense"}), 400, "invalid_request", "format"),
        (lambda: http_event({"texts": ["a"], "truncate": "yes"}), 400, "invalid_request", "truncate"),
        (lambda: http_event({"texts": ["a"] * 65}), 413, "too_many_texts", "texts"),
        (lambda: http_event({"texts": ["a", "x" * 20_001]}), 413, "text_too_long", "texts[1]"),
        (lambda: http_event(raw=json.dumps({"texts": [BIG] * 64}) + " " * 6_000_000), 413, "body_too_large", None),
        (lambda: http_event({"texts": ["a"]}, content_type="text/plain"), 415, "unsupported_media_type", None),
        (lambda: {**http_event(raw="!!notbase64!!"), "isBase64Encoded": True}, 400, "invalid_request", None),
        (lambda: http_binary_event(b"\xff\xfe{"), 400, "invalid_request", None),
        (lambda: load_event("bad-http-api-v2-unknown-route"), 404, "not_found", None),
        (lambda: load_event("bad-http-api-v2-wrong-method"), 405, "method_not_allowed", None),
        (lambda: load_event("bad-http-api-v2-malformed-json"), 400, "invalid_request", None),
        (lambda: load_event("bad-http-api-v2-not-json"), 415, "unsupported_media_type", None),
        (lambda: load_event("bad-http-api-v2-wrong-type"), 400, "invalid_request", "texts[1]"),
    ],
)
def test_error_matrix(event, status, code, field, lambda_context) -> None:
    """Each bad request gets its documented status, stable code and field, never a 500."""
    got_status, body = call(event(), lambda_context)
    assert (got_status, body["error"]["code"]) == (status, code), body
    assert body["error"].get("field") == field
    assert sorted(body) == ["error"] and body["error"]["message"]


def test_405_names_the_allowed_method(lambda_context) -> None:
    """A wrong method on a known route says which method is allowed (Allow header)."""
    response = app.lambda_handler(load_event("bad-http-api-v2-wrong-method"), lambda_context)
    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "POST"


def test_a_bad_text_in_64_fails_before_any_inference(lambda_context, monkeypatch) -> None:
    """64 texts where text 37 is a number: 400 with field texts[37] and the model never runs."""
    runs: list[int] = []
    monkeypatch.setattr(runtime.expander.session, "run", lambda *a, **k: runs.append(1))
    texts: list[Any] = [f"text number {i}" for i in range(64)]
    texts[37] = 37
    status, body = call(http_event({"texts": texts}), lambda_context)
    assert status == 400 and body["error"]["field"] == "texts[37]"
    assert runs == []


def test_unexpected_failure_is_a_500_with_request_id_and_no_trace(lambda_context, monkeypatch) -> None:
    """An unexpected exception becomes 500 internal_error carrying the request id, no stack trace."""

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(runtime.expander, "expand", boom)
    status, body = call(load_event("http-api-v2-expand"), lambda_context)
    assert status == 500 and body["error"]["code"] == "internal_error"
    assert lambda_context.aws_request_id in body["error"]["message"]
    assert "secret" not in json.dumps(body) and "Traceback" not in json.dumps(body)


def test_direct_invocation_raises_typed_errors(lambda_context) -> None:
    """Direct callers get InvalidRequestError / PayloadTooLargeError (Lambda's errorType)."""
    with pytest.raises(InvalidRequestError) as info:
        app.lambda_handler(load_event("bad-direct-wrong-type"), lambda_context)
    assert info.value.field == "texts[1]"
    with pytest.raises(PayloadTooLargeError) as too_many:
        app.lambda_handler(direct_event(texts=["a"] * 65), lambda_context)
    assert too_many.value.code == "too_many_texts"
    with pytest.raises(InvalidRequestError):
        app.lambda_handler(["not", "an", "object"], lambda_context)


def test_logs_never_contain_the_texts(lambda_context, caplog) -> None:
    """Even at DEBUG, the structured logs carry counts and the correlation id, never the submitted text."""
    from handler.telemetry import logger

    secret = "zebra quokka confidential memo"
    level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        with caplog.at_level("DEBUG"):
            status, _ = call(http_event({"texts": [secret]}), lambda_context)
    finally:
        logger.setLevel(level)
    assert status == 200
    lines = [json.loads(logger.registered_formatter.format(r)) for r in caplog.records if r.name == logger.name]
    assert lines and not [line for line in lines if "quokka" in json.dumps(line)]
    (expanded,) = [line for line in lines if line.get("message") == "expanded"]
    assert expanded["texts"] == 1 and expanded["correlation_id"] == "Jx1bQhEFoAMEVxw="


def _with_path(source: str, path: str, method: str | None = None) -> dict[str, Any]:
    """The sample expand request of payload format ``source``, at ``path`` (and ``method``)."""
    return http_event(source=source, path=path, method=method)


@pytest.mark.parametrize("name", ["http_v2", "rest_v1", "function_url"])
def test_every_route_answers_on_every_payload_format(name: str, lambda_context) -> None:
    """Each route, with and without a trailing slash, and the 404/405 cases, on v2, REST v1 and Function URL."""
    for path in ("/v1/expand", "/v1/expand/"):
        event = _with_path(name, path)
        status, body = call(event, lambda_context)
        assert (status, body["usage"]["texts"]) == (200, 2), (path, body)
        assert _with_path(name, path) == event  # the caller's event is left as it was
    for path in ("/v1/model", "/v1/model/", "/v1/openapi.json", "/v1/openapi.json/"):
        event = _with_path(name, path, "GET")
        event["body"] = None
        status, body = call(event, lambda_context)
        assert status == 200 and ("model" in body or "paths" in body), (path, body)
    status, body = call(_with_path(name, "/v1/nothing/", "GET"), lambda_context)
    assert (status, body["error"]["code"]) == (404, "not_found")
    response = app.lambda_handler(_with_path(name, "/v1/expand/", "GET"), lambda_context)
    assert response["statusCode"] == 405 and json.loads(response["body"])["error"]["code"] == "method_not_allowed"
    allow = (response.get("headers") or {}).get("Allow") or (response.get("multiValueHeaders") or {}).get("Allow")
    assert allow in ("POST", ["POST"])


def test_error_bodies_echo_at_most_200_characters_of_input(lambda_context) -> None:
    """A 3.2 MB unknown field name, 3 MB of U+2028 or a huge path give error bodies of a few hundred bytes."""
    for key in ("k" * 3_200_000, "\u2028" * 1_000_000):
        raw = json.dumps({"texts": ["a"], key: 1}, ensure_ascii=False)
        response = app.lambda_handler(http_event(raw=raw), lambda_context)
        body = json.loads(response["body"])
        assert (response["statusCode"], body["error"]["code"]) == (400, "invalid_request")
        assert len(json.dumps(response)) < 2_000, len(json.dumps(response))
        assert body["error"]["field"].endswith("more characters)")
    response = app.lambda_handler(_with_path("http_v2", "/x" * 500_000, "GET"), lambda_context)
    assert response["statusCode"] == 404 and len(response["body"]) < 1_000


def test_huge_integer_weight_says_what_is_wrong(lambda_context) -> None:
    """A 400-digit min_weight is 'an integer beyond the float range', not 'a number, not number'."""
    status, body = call(http_event(raw='{"texts": ["a"], "min_weight": ' + "9" * 400 + "}"), lambda_context)
    assert status == 400
    assert body["error"]["message"] == "min_weight must be a number, not an integer beyond the float range"


def test_a_response_over_the_lambda_limit_is_a_413(lambda_context, monkeypatch) -> None:
    """A response whose serialized envelope would pass the limit is 413 response_too_large with a hint, on HTTP
    (the body string escaped inside the envelope) and direct invocation; just under the limit it is a 200."""
    event = http_event({"texts": ["Chronic obstructive pulmonary disease"], "format": "both"})
    ok = app.lambda_handler(event, lambda_context)
    envelope = len(json.dumps(ok["body"]))  # the body as the runtime escapes it inside the envelope
    # What the runtime really sends (the body escaped inside statusCode, headers, ...) fits the room left for it.
    assert service.serialized_bytes(ok) - envelope <= service.ENVELOPE_BYTES
    monkeypatch.setattr(service, "RESPONSE_LIMIT_BYTES", envelope + service.ENVELOPE_BYTES)
    at_limit = app.lambda_handler(event, lambda_context)
    assert at_limit["statusCode"] == 200
    assert service.serialized_bytes(at_limit) <= service.RESPONSE_LIMIT_BYTES  # the whole response, not the body
    monkeypatch.setattr(service, "RESPONSE_LIMIT_BYTES", envelope + service.ENVELOPE_BYTES - 1)
    status, body = call(event, lambda_context)
    assert (status, body["error"]["code"]) == (413, "response_too_large")
    assert "top_k" in body["error"]["message"]
    direct = direct_event(texts=["Chronic obstructive pulmonary disease"], format="both")
    size = service.serialized_bytes(app.lambda_handler(direct, lambda_context))
    monkeypatch.setattr(service, "RESPONSE_LIMIT_BYTES", size - 1)
    with pytest.raises(PayloadTooLargeError) as err:
        app.lambda_handler(direct, lambda_context)
    assert err.value.code == "response_too_large"


def test_each_rejection_writes_a_metric_named_for_its_code(lambda_context, capsys) -> None:
    """Rejected HTTP and direct requests each emit an EMF metric Rejected_<code> = 1."""
    capsys.readouterr()
    app.lambda_handler(http_event({"texts": ["x"] * 65}), lambda_context)
    with pytest.raises(InvalidRequestError):
        app.lambda_handler(direct_event(texts=[1]), lambda_context)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    assert [line.get("Rejected_too_many_texts") for line in lines if "Rejected_too_many_texts" in line] == [[1.0]]
    assert [line.get("Rejected_invalid_request") for line in lines if "Rejected_invalid_request" in line] == [[1.0]]


def test_a_request_over_the_work_budget_is_refused_before_inference(lambda_context, monkeypatch) -> None:
    """5 texts of 'a. ' x 6,600 (within MAX_TEXT_CHARS, 60 windows each) need 300 > 256 windows: 413
    too_much_work, and the model never runs; the same texts within the budget are served."""
    assert runtime.settings.max_request_windows == 0 and service.request_windows() == 256
    runs: list[int] = []
    real_run = runtime.expander.session.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(runtime.expander.session, "run", counted)
    dense = "a. " * 6600
    status, body = call(http_event({"texts": [dense] * 5}), lambda_context)
    assert (status, body["error"]["code"], body["error"]["field"]) == (413, "too_much_work", "texts")
    assert "300 windows" in body["error"]["message"] and runs == []
    with pytest.raises(PayloadTooLargeError) as err:
        app.lambda_handler(direct_event(texts=[dense] * 5), lambda_context)
    assert err.value.code == "too_much_work"
    status, body = call(http_event({"texts": [dense] * 4, "top_k": 4}), lambda_context)
    assert status == 200 and sum(d["windows"] for d in body["data"]) == 240 and runs
    status, body = call(http_event({"texts": [dense] * 5, "truncate": True, "top_k": 4}), lambda_context)
    assert status == 200 and [d["windows"] for d in body["data"]] == [1] * 5


def test_cors_is_off_by_default_and_answers_preflight_when_origins_are_set(lambda_context, monkeypatch) -> None:
    """Without ALLOWED_ORIGINS a preflight OPTIONS is a 405; with it, 204 with the CORS headers, and responses
    to an allowed origin (only) carry Access-Control-Allow-Origin."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    from handler.http import api

    preflight = http_event(
        method="OPTIONS", headers={"origin": "https://app.example", "access-control-request-method": "POST"}
    )
    assert app.lambda_handler(copy.deepcopy(preflight), lambda_context)["statusCode"] == 405
    origins = ("https://app.example", "https://admin.example")
    resolver = api.make_resolver(APIGatewayHttpResolver, origins)
    monkeypatch.setitem(api.RESOLVERS, events.EventShape.HTTP_V2, resolver)
    response = api.resolve(events.EventShape.HTTP_V2, copy.deepcopy(preflight), lambda_context)
    assert response["statusCode"] == 204
    assert response["headers"]["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response["headers"]["Access-Control-Allow-Methods"]
    assert "X-Amz-Date" in response["headers"]["Access-Control-Allow-Headers"]
    for origin, allowed in (("https://admin.example", True), ("https://evil.example", False)):
        event = http_event(headers={"origin": origin})
        response = api.resolve(events.EventShape.HTTP_V2, event, lambda_context)
        assert response["statusCode"] == 200
        assert (response["headers"].get("Access-Control-Allow-Origin") == origin) is allowed
