"""Bad input through the built artifact under the Lambda runtime emulator: HTTP v2, REST v1, direct and
ingest. Every case has an exact expected status / errorType / error record; none may be a 500, a crash,
a hung emulator or a lost good document."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from devkit.emulator import Emulator
from devkit.events import delete_object, http_binary_event, http_event, load_event, put_object, sqs_event
from handler import runtime

pytestmark = pytest.mark.integration
SPECIAL_IDS = {0, 100, 101, 102, 103}


def v2(
    body: Any = None,
    *,
    raw: str | None = None,
    b64: bool = False,
    method: str = "POST",
    path: str = "/v1/expand",
    ctype: str | None = "application/json",
) -> dict[str, Any]:
    return http_event(body, raw=raw, b64=b64, method=method, path=path, content_type=ctype)


def v1(body: Any = None, *, raw: str | None = None, path: str = "/v1/expand") -> dict[str, Any]:
    return http_event(body, source="rest_v1", raw=raw, path=path)


OK = ("http", 200, None, None)
# (event, (kind, status-or-errorType, code, field))
CASES: dict[str, tuple[Callable[[], Any], tuple[str, Any, Any, Any]]] = {
    "v2-malformed-json": (lambda: v2(raw='{"texts": ["a",'), ("http", 400, "invalid_request", None)),
    "v2-trailing-garbage": (lambda: v2(raw='{"texts": ["a"]} x'), ("http", 400, "invalid_request", None)),
    "v2-body-array": (lambda: v2(raw="[1, 2]"), ("http", 400, "invalid_request", None)),
    "v2-body-string": (lambda: v2(raw='"text"'), ("http", 400, "invalid_request", None)),
    "v2-body-empty": (lambda: v2(raw=""), ("http", 400, "invalid_request", None)),
    "v2-texts-number": (lambda: v2({"texts": 5}), ("http", 400, "invalid_request", "texts")),
    "v2-texts-item-number": (lambda: v2({"texts": ["a", 1]}), ("http", 400, "invalid_request", "texts[1]")),
    "v2-texts-item-object": (lambda: v2({"texts": [{"t": 1}]}), ("http", 400, "invalid_request", "texts[0]")),
    "v2-texts-null": (lambda: v2({"texts": None}), ("http", 400, "invalid_request", "texts")),
    "v2-texts-item-null": (lambda: v2({"texts": [None]}), ("http", 400, "invalid_request", "texts[0]")),
    "v2-text-null": (lambda: v2({"text": None}), ("http", 400, "invalid_request", "text")),
    "v2-kind-null": (lambda: v2({"text": "a", "kind": None}), ("http", 400, "invalid_request", "kind")),
    "v2-top-k-null-is-default": (lambda: v2({"text": "a", "top_k": None}), OK),
    "v2-min-weight-null": (
        lambda: v2({"text": "a", "min_weight": None}),
        ("http", 400, "invalid_request", "min_weight"),
    ),
    "v2-format-null": (lambda: v2({"text": "a", "format": None}), ("http", 400, "invalid_request", "format")),
    "v2-truncate-null": (lambda: v2({"text": "a", "truncate": None}), ("http", 400, "invalid_request", "truncate")),
    "v2-empty-list": (lambda: v2({"texts": []}), ("http", 400, "invalid_request", "texts")),
    "v2-empty-strings": (lambda: v2({"texts": ["", " ", "\n\t"]}), OK),
    "v2-10000-texts": (lambda: v2({"texts": ["a"] * 10_000}), ("http", 413, "too_many_texts", "texts")),
    "v2-5mb-text": (lambda: v2({"texts": ["word " * 1_000_000]}), ("http", 413, "text_too_long", "texts[0]")),
    "v2-body-over-limit": (lambda: v2(raw=" " * 6_000_001 + "{}"), ("http", 413, "body_too_large", None)),
    "v2-deeply-nested": (lambda: v2(raw="[" * 50_000 + "]" * 50_000), ("http", 400, "invalid_request", None)),
    "v2-nested-texts": (lambda: v2({"texts": [[["a"]]]}), ("http", 400, "invalid_request", "texts[0]")),
    "v2-non-utf8-body": (
        lambda: http_binary_event('{"text": "caf\xe9"}'.encode("latin-1")),
        ("http", 400, "invalid_request", None),
    ),
    "v2-invalid-base64": (
        lambda: {**v2(raw="%%%not base64%%%"), "isBase64Encoded": True},
        ("http", 400, "invalid_request", None),
    ),
    "v2-base64-ok": (lambda: v2({"text": "lung"}, b64=True), OK),
    "v2-content-type-text": (
        lambda: v2({"text": "a"}, ctype="text/plain"),
        ("http", 415, "unsupported_media_type", None),
    ),
    "v2-content-type-form": (
        lambda: v2(raw="text=a", ctype="application/x-www-form-urlencoded"),
        ("http", 415, "unsupported_media_type", None),
    ),
    "v2-content-type-charset": (lambda: v2({"text": "a"}, ctype="application/json; charset=utf-8"), OK),
    "v2-content-type-missing": (lambda: v2({"text": "a"}, ctype=None), OK),
    "v2-unknown-field": (lambda: v2({"text": "a", "topk": 3}), ("http", 400, "invalid_request", "topk")),
    "v2-top-k-negative": (lambda: v2({"text": "a", "top_k": -1}), ("http", 400, "invalid_request", "top_k")),
    "v2-top-k-zero": (lambda: v2({"text": "a", "top_k": 0}), ("http", 400, "invalid_request", "top_k")),
    "v2-top-k-huge": (lambda: v2({"text": "a", "top_k": 10**30}), OK),
    "v2-top-k-float": (lambda: v2({"text": "a", "top_k": 3.5}), ("http", 400, "invalid_request", "top_k")),
    "v2-top-k-string": (lambda: v2({"text": "a", "top_k": "3"}), ("http", 400, "invalid_request", "top_k")),
    "v2-min-weight-nan": (lambda: v2(raw='{"text": "a", "min_weight": NaN}'), ("http", 400, "invalid_request", None)),
    "v2-min-weight-infinity": (
        lambda: v2(raw='{"text": "a", "min_weight": Infinity}'),
        ("http", 400, "invalid_request", None),
    ),
    "v2-min-weight-overflow": (
        lambda: v2(raw='{"text": "a", "min_weight": 1e999}'),
        ("http", 400, "invalid_request", "min_weight"),
    ),
    "v2-min-weight-huge-int": (
        lambda: v2(raw='{"text": "a", "min_weight": 1' + "0" * 400 + "}"),
        ("http", 400, "invalid_request", "min_weight"),
    ),
    "v2-top-k-huge-int": (lambda: v2(raw='{"text": "a", "top_k": 1' + "0" * 400 + "}"), OK),
    "v2-min-weight-negative": (
        lambda: v2({"text": "a", "min_weight": -0.5}),
        ("http", 400, "invalid_request", "min_weight"),
    ),
    "v2-min-weight-bool": (
        lambda: v2({"text": "a", "min_weight": True}),
        ("http", 400, "invalid_request", "min_weight"),
    ),
    "v2-kind-unknown": (lambda: v2({"text": "a", "kind": "passage"}), ("http", 400, "invalid_request", "kind")),
    "v2-format-unknown": (lambda: v2({"text": "a", "format": "dense"}), ("http", 400, "invalid_request", "format")),
    "v2-truncate-string": (lambda: v2({"text": "a", "truncate": "true"}), ("http", 400, "invalid_request", "truncate")),
    "v2-both-text-and-texts": (lambda: v2({"text": "a", "texts": ["b"]}), ("http", 400, "invalid_request", "texts")),
    "v2-lone-surrogate": (lambda: v2(raw='{"texts": ["lung \\ud800 disease", "\\udfff"]}'), OK),
    "v2-zero-width-and-rtl": (
        lambda: v2(
            {"texts": ["lung\u200b\u200c\u200d\ufeff disease", "\u202eesaesid gnul\u202c", "\u05e9\u05dc\u05d5\u05dd"]}
        ),
        OK,
    ),
    "v2-combining-marks": (
        lambda: v2({"texts": ["e\u0301\u0302\u0303" * 50, "Z\u0351\u0352\u0357a\u035b\u0346lgo"]}),
        OK,
    ),
    "v2-control-chars": (lambda: v2({"texts": ["\x00\x01\x07 lung \x1b[31m"]}), OK),
    "v2-wrong-method": (lambda: v2(None, method="GET", ctype=None), ("http", 405, "method_not_allowed", None)),
    "v2-unknown-route": (lambda: v2({"text": "a"}, path="/v2/expand"), ("http", 404, "not_found", None)),
    "v1-malformed-json": (lambda: v1(raw="{"), ("http", 400, "invalid_request", None)),
    "v1-wrong-type": (lambda: v1({"texts": ["a", False]}), ("http", 400, "invalid_request", "texts[1]")),
    "v1-too-many-texts": (lambda: v1({"texts": ["a"] * 65}), ("http", 413, "too_many_texts", "texts")),
    "v1-unknown-route": (lambda: v1({"text": "a"}, path="/expand"), ("http", 404, "not_found", None)),
    "v1-ok": (lambda: v1({"texts": ["lung", ""]}), OK),
    "direct-wrong-type": (lambda: {"texts": ["a", 2]}, ("direct", "InvalidRequestError", None, "texts[1]")),
    "direct-unknown-field": (lambda: {"text": "a", "bogus": 1}, ("direct", "InvalidRequestError", None, "bogus")),
    "direct-10000-texts": (lambda: {"texts": ["a"] * 10_000}, ("direct", "PayloadTooLargeError", None, "64")),
    "direct-text-too-long": (lambda: {"text": "x" * 20_001}, ("direct", "PayloadTooLargeError", None, "texts[0]")),
    "direct-list-event": (lambda: ["a", "b"], ("direct", "InvalidRequestError", None, "not array")),
    "direct-string-event": (lambda: "lung disease", ("direct", "InvalidRequestError", None, "not string")),
    "direct-null-event": (lambda: None, ("direct", "InvalidRequestError", None, "not null")),
    "direct-ok": (lambda: {"texts": ["lung"], "format": "terms"}, ("direct", None, None, None)),
}


@pytest.fixture(scope="module")
def emulator(aws: Any) -> Iterator[Emulator]:
    with Emulator({**aws.function_env(), "AWS_MAX_ATTEMPTS": "2"}) as emu:
        yield emu


def check_vectors(data: list[dict[str, Any]]) -> None:
    for item in data:
        values = np.array(item.get("values", list(item.get("terms", {}).values())), dtype=np.float64)
        assert np.all(np.isfinite(values)) and np.all(values > 0)
        assert not set(item.get("indices", [])) & SPECIAL_IDS


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_matrix(emulator: Emulator, name: str) -> None:
    """Each case gets its exact status / errorType / code / field, never a 500 or a crash."""
    make_event, (kind, expected, code, field) = CASES[name]
    response = emulator.invoke(make_event())
    if kind == "http":
        assert isinstance(response, dict) and "errorType" not in response, response
        body = json.loads(response["body"])
        assert response["statusCode"] == expected, body
        if expected == 200:
            check_vectors(body["data"])
        else:
            assert body["error"]["code"] == code and body["error"].get("field") == field
    elif expected is None:
        assert "errorType" not in response and len(response["data"]) == 1
    else:
        assert response["errorType"] == expected
        assert all(word in response["errorMessage"] for word in field.split())


def test_emulator_still_answers_after_the_matrix(emulator: Emulator) -> None:
    """After every bad case the same runtime still serves a normal request (no crash, no hang)."""
    response = emulator.invoke(load_event("http-api-v2-expand"))
    assert response["statusCode"] == 200
    assert len(emulator.init_durations_ms()) == 1  # never restarted


def test_lone_surrogates_are_replaced_not_fatal(emulator: Emulator) -> None:
    """A lone surrogate escaped in JSON is replaced by "?": the rest of the text still counts."""
    body = json.loads(emulator.invoke(v2(raw='{"text": "pulmonary \\ud800 disease", "format": "terms"}'))["body"])
    assert {"pulmonary", "disease"} <= set(body["data"][0]["terms"])


# ----------------------------------------------------------------------------- ingest through the emulator
INGEST_CASES = {
    "binary.txt": (b"\x00\x01\xff\xfe" * 100, "binary_object"),
    "truncated.jsonl.gz": (gzip.compress(b'{"text": "lung"}\n' * 2000)[:-64], "unreadable_object"),
    "garbage.jsonl.gz": (b"\x1f\x8b\x08\x00garbage", "unreadable_object"),
    "latin1.md": ("r\xe9sum\xe9 caf\xe9".encode("latin-1"), "not_utf8"),
}


@pytest.fixture(scope="module")
def s3(aws: Any) -> Any:
    return aws.client("s3")


def test_unreadable_objects_are_recorded_and_acknowledged(emulator: Emulator, s3: Any) -> None:
    """Binary, truncated or bogus gzip and non-UTF-8 objects are permanent failures: acknowledged (no retry),
    each with one object-level record naming its code; the good object in the same batch is written."""
    keys = [f"hard/{name}" for name in INGEST_CASES]
    messages = [put_object(s3, key, body) for key, (body, _) in zip(keys, INGEST_CASES.values(), strict=True)]
    event, _ = sqs_event(*messages, put_object(s3, "hard/good.txt", b"good lung text"))
    assert emulator.invoke(event) == {"batchItemFailures": []}
    for key, (_, code) in zip(keys, INGEST_CASES.values(), strict=True):
        body = s3.get_object(Bucket="splade-output", Key=f"vectors/{key}.errors.jsonl")["Body"].read()
        assert json.loads(body)["code"] == code
    listing = s3.list_objects_v2(Bucket="splade-output", Prefix="vectors/hard/")["Contents"]
    assert [o["Key"] for o in listing if o["Key"].endswith("t.jsonl")] == ["vectors/hard/good.txt.jsonl"]


def test_messy_jsonl_and_encoded_keys_lose_no_good_line(emulator: Emulator, s3: Any) -> None:
    """CRLF, a BOM, blank lines and bad lines under a key with spaces, '+' and unicode: every good line is
    written and every bad one is an error record."""
    key = "hard/my docs/naïve + messy.jsonl"
    body = (
        '\ufeff{"id": "a", "text": "first"}\r\n\r\n{"id": "b", "text": "second"}\r\n'
        '{"id": "c", "text": }\r\n   \n{"id": "d"}\n{"id": "e", "text": "last, no newline"}'
    )
    event, _ = sqs_event(put_object(s3, key, body.encode()))
    assert emulator.invoke(event) == {"batchItemFailures": []}
    out = s3.get_object(Bucket="splade-output", Key=f"vectors/{key}.jsonl")["Body"].read().decode().splitlines()
    assert [json.loads(line)["id"] for line in out] == ["a", "b", "e"]
    errors = s3.get_object(Bucket="splade-output", Key=f"vectors/{key}.errors.jsonl")["Body"].read().decode()
    assert [(e["source"]["line"], e["code"]) for e in map(json.loads, errors.splitlines())] == [
        (4, "invalid_json"),
        (6, "missing_text"),
    ]
    (vec,) = runtime.expander.expand(["last, no newline"])
    assert json.loads(out[2])["indices"] == vec.indices.tolist()


def test_ordering_and_deletes_through_the_built_artifact(emulator: Emulator, s3: Any) -> None:
    """Under the emulator: v2's event then v1's late event leave v2's vectors (v1 is superseded); the delete
    event then removes the output; a late create event for the deleted object writes nothing."""
    key = "hard/order/doc.txt"
    v1 = put_object(s3, key, b"asthma inhaler")
    v2 = put_object(s3, key, b"router password reset")
    event, _ = sqs_event(v2, v1)
    assert emulator.invoke(event) == {"batchItemFailures": []}
    (line,) = s3.get_object(Bucket="splade-output", Key=f"vectors/{key}.jsonl")["Body"].read().splitlines()
    (vec,) = runtime.expander.expand(["router password reset"])
    assert json.loads(line)["indices"] == vec.indices.tolist()
    assert '"message":"object superseded"' in emulator.logs()
    event, _ = sqs_event(delete_object(s3, key), v2)
    assert emulator.invoke(event) == {"batchItemFailures": []}
    assert "Contents" not in s3.list_objects_v2(Bucket="splade-output", Prefix=f"vectors/{key}")
