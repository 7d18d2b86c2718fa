"""S3 ingest through the handler against a real S3 server (moto_server): formats, failures, idempotency."""

from __future__ import annotations

import copy
import gzip
import json
import uuid
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

from handler import app, documents, ingest, service
from tests.conftest import load_event

pytestmark = pytest.mark.integration
IN, OUT, PREFIX = "splade-ingest", "splade-output", "vectors/"


@pytest.fixture(scope="module")
def s3(moto_server: str) -> Any:
    client = boto3.client("s3", endpoint_url=moto_server)
    for bucket in (IN, OUT):
        client.create_bucket(Bucket=bucket)
    ingest.s3_client.cache_clear()
    return client


@pytest.fixture
def folder() -> str:
    return f"t-{uuid.uuid4().hex[:8]}/"


def s3_message(key: str, bucket: str = IN, size: int = 100) -> dict[str, Any]:
    """An S3 ObjectCreated notification for ``key``, URL-encoded the way S3 encodes it."""
    message = copy.deepcopy(load_event("s3-put"))
    message["Records"][0]["s3"]["bucket"]["name"] = bucket
    message["Records"][0]["s3"]["object"].update(key=quote_plus(key, safe="/"), size=size)
    return message


def sqs_event(*messages: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    template = load_event("sqs-s3-ingest")["Records"][0]
    records, ids = [], []
    for message in messages:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = json.dumps(message)
        records.append(record)
        ids.append(record["messageId"])
    return {"Records": records}, ids


def read_jsonl(s3: Any, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=OUT, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def output_keys(s3: Any, folder: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=OUT, Prefix=PREFIX + folder)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def assert_vector(line: dict[str, Any], text: str) -> None:
    (vec,) = service.expander.expand([text])
    assert line["indices"] == vec.indices.tolist()
    assert line["values"] == pytest.approx(vec.values.tolist(), abs=1e-6)


def run_sqs(context: Any, *messages: dict[str, Any]) -> tuple[list[str], list[str]]:
    event, ids = sqs_event(*messages)
    result = app.lambda_handler(event, context)
    return [f["itemIdentifier"] for f in result["batchItemFailures"]], ids


def test_txt_and_md_objects_become_one_document_each(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """A .txt and a .md object each give one line: id = key, line null, the Expander's vector."""
    texts = {f"{folder}a.txt": "Chronic obstructive pulmonary disease.", f"{folder}b.md": "# Heading\n\nLung *health*."}
    for key, text in texts.items():
        s3.put_object(Bucket=IN, Key=key, Body=text.encode())
    failures, _ = run_sqs(lambda_context, *(s3_message(k) for k in texts))
    assert failures == []
    for key, text in texts.items():
        (line,) = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
        assert sorted(line) == ["id", "indices", "model", "source", "values"]
        assert line["id"] == key and line["source"]["key"] == key and line["source"]["line"] is None
        assert line["source"]["bucket"] == IN and len(line["source"]["etag"]) == 32
        assert line["model"] == service.expander.model_info
        assert_vector(line, text)
    assert output_keys(s3, folder) == sorted(f"{PREFIX}{k}.jsonl" for k in texts)  # no error files


def test_jsonl_with_three_bad_lines_keeps_the_97_good_ones(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """100 lines, 3 bad (invalid JSON, missing text, non-string text): 97 vectors + 3 error records."""
    lines = [json.dumps({"id": f"doc-{i}", "text": f"document number {i} about lungs"}) for i in range(100)]
    lines[9] = '{"id": "doc-9", "text": "unterminated'
    lines[49] = json.dumps({"id": "doc-49", "body": "no text field"})
    lines[89] = json.dumps({"id": "doc-89", "text": 42})
    key = f"{folder}corpus.jsonl"
    s3.put_object(Bucket=IN, Key=key, Body=("\n".join(lines) + "\n").encode())
    failures, _ = run_sqs(lambda_context, s3_message(key))
    assert failures == []
    out = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert len(out) == 97
    assert [o["id"] for o in out] == [f"doc-{i}" for i in range(100) if i not in (9, 49, 89)]
    assert [o["source"]["line"] for o in out][:10] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert_vector(out[0], "document number 0 about lungs")
    errors = read_jsonl(s3, f"{PREFIX}{key}.errors.jsonl")
    assert [(e["source"]["line"], e["code"]) for e in errors] == [
        (10, "invalid_json"),
        (50, "missing_text"),
        (90, "text_not_string"),
    ]


def test_gzipped_jsonl_with_crlf_bom_and_blank_lines(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """A .jsonl.gz with a BOM, CRLF line ends and blank lines gives one vector per real line."""
    body = '\ufeff{"id": 1, "text": "first lung text"}\r\n\r\n{"text": "second, no id"}\r\n\n'
    key = f"{folder}docs.jsonl.gz"
    s3.put_object(Bucket=IN, Key=key, Body=gzip.compress(body.encode()))
    failures, _ = run_sqs(lambda_context, s3_message(key))
    assert failures == []
    out = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert [o["id"] for o in out] == [1, f"{key}#3"]
    assert [o["source"]["line"] for o in out] == [1, 3]
    assert_vector(out[1], "second, no id")


def test_url_encoded_key_with_spaces_plus_and_unicode(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """A key with spaces, '+' and unicode arrives URL-encoded and is decoded exactly."""
    key = f"{folder}my docs/café notes+plus ü.txt"
    s3.put_object(Bucket=IN, Key=key, Body=b"notes about the lungs")
    message = s3_message(key)
    assert "+" in message["Records"][0]["s3"]["object"]["key"] and "%2B" in message["Records"][0]["s3"]["object"]["key"]
    failures, _ = run_sqs(lambda_context, message)
    assert failures == []
    (line,) = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert line["id"] == key


def test_text_object_too_long_to_expand_is_an_error_record(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """A .txt longer than MAX_WINDOWS windows can hold is one bad document: an error record, not a retry,
    and it is not read (or tokenized) past the limit."""
    key = f"{folder}book.txt"
    s3.put_object(Bucket=IN, Key=key, Body=b"word " * 220_000)  # 1.1 MB > 64 windows x 254 x 16 chars x 4 B
    failures, _ = run_sqs(lambda_context, s3_message(key))
    assert failures == []
    assert read_jsonl(s3, f"{PREFIX}{key}.jsonl") == []
    (error,) = read_jsonl(s3, f"{PREFIX}{key}.errors.jsonl")
    assert error["code"] == "text_too_long" and error["source"]["line"] is None


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("binary.txt", b"\x00\x01\x02PK\x03\x04" * 50, "binary_object"),
        ("latin1.txt", "caf\xe9 na\xefve".encode("latin-1"), "not_utf8"),
        ("truncated.jsonl.gz", gzip.compress(b'{"text": "a"}\n' * 500)[:-20], "unreadable_object"),
        ("not-gzip.txt.gz", b"this is not gzip data", "unreadable_object"),
        ("oversize.txt", b"word " * 420_000, "object_too_large"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "unsupported_type"),
        ("missing.txt", None, "missing_object"),
    ],
)
def test_unreadable_objects_are_reported_failures(s3, folder, lambda_context, caplog, name, body, code) -> None:  # type: ignore[no-untyped-def]
    """Binary, non-UTF-8, truncated gzip, oversize, unsupported and missing objects fail the message, with
    the reason logged and no output written (SQS retries, then the DLQ)."""
    key = folder + name
    if body is not None:
        s3.put_object(Bucket=IN, Key=key, Body=body)
    with caplog.at_level("ERROR"):
        failures, ids = run_sqs(lambda_context, s3_message(key, size=len(body or b"")))
    assert failures == ids
    assert any(getattr(r, "code", None) == code for r in caplog.records), [
        r.__dict__.get("code") for r in caplog.records
    ]
    assert output_keys(s3, folder) == []


def test_test_event_is_acknowledged_and_output_prefix_is_ignored(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """The s3:TestEvent is acknowledged; a key under the output prefix in the output bucket is skipped."""
    test_event = json.loads(load_event("sqs-s3-test-event")["Records"][0]["body"])
    own = f"{PREFIX}{folder}x.txt.jsonl"
    s3.put_object(Bucket=OUT, Key=own, Body=b"{}")
    failures, _ = run_sqs(lambda_context, test_event, s3_message(own, bucket=OUT))
    assert failures == []
    assert output_keys(s3, folder) == [own]  # nothing new, no recursion


def test_redelivery_overwrites_with_the_same_bytes(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """The same message delivered twice leaves one output object with identical bytes."""
    key = f"{folder}again.txt"
    s3.put_object(Bucket=IN, Key=key, Body=b"pulmonary fibrosis")
    run_sqs(lambda_context, s3_message(key))
    first = s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")["Body"].read()
    run_sqs(lambda_context, s3_message(key))
    second = s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")["Body"].read()
    assert first == second and output_keys(s3, folder) == [f"{PREFIX}{key}.jsonl"]


def test_sqs_batch_of_five_reports_exactly_the_two_failures(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """Five messages, two bad: batchItemFailures lists exactly those two; the three good are written."""
    keys = [f"{folder}{i}.txt" for i in range(5)]
    for i, key in enumerate(keys):
        if i not in (1, 3):
            s3.put_object(Bucket=IN, Key=key, Body=f"good document {i}".encode())
    s3.put_object(Bucket=IN, Key=keys[3], Body=b"\x00binary\x00")
    failures, ids = run_sqs(lambda_context, *(s3_message(k) for k in keys))
    assert sorted(failures) == sorted([ids[1], ids[3]])
    assert output_keys(s3, folder) == sorted(f"{PREFIX}{keys[i]}.jsonl" for i in (0, 2, 4))


def test_near_timeout_unstarted_records_are_reported(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """With less time left than the margin, no object is started and every message is a failure."""
    key = f"{folder}late.txt"
    s3.put_object(Bucket=IN, Key=key, Body=b"late document")
    lambda_context.remaining_ms = ingest.TIME_MARGIN_MS - 1
    failures, ids = run_sqs(lambda_context, s3_message(key), s3_message(key))
    assert failures == ids and output_keys(s3, folder) == []


def test_direct_s3_eventbridge_and_step_functions_batches(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """Direct S3 notifications, EventBridge Object Created and a Distributed Map item batch all ingest."""
    keys = [f"{folder}direct.txt", f"{folder}bridge plus+.txt", f"{folder}map one.txt", f"{folder}map2.jsonl"]
    for key in keys[:3]:
        s3.put_object(Bucket=IN, Key=key, Body=f"text of {key}".encode())
    s3.put_object(Bucket=IN, Key=keys[3], Body=b'{"id": "m", "text": "mapped"}\n')
    direct = app.lambda_handler(s3_message(keys[0]), lambda_context)
    assert direct["failed"] == [] and direct["processed"][0]["documents"] == 1
    bridge = copy.deepcopy(load_event("eventbridge-object-created"))
    bridge["detail"]["object"]["key"] = quote_plus(keys[1], safe="/")
    assert app.lambda_handler(bridge, lambda_context)["failed"] == []
    batch = copy.deepcopy(load_event("stepfunctions-map-batch"))
    batch["Items"] = [{**batch["Items"][0], "Key": k} for k in keys[2:]]
    result = app.lambda_handler(batch, lambda_context)
    assert [p["documents"] for p in result["processed"]] == [1, 1]
    assert output_keys(s3, folder) == sorted(f"{PREFIX}{k}.jsonl" for k in keys)


def test_direct_event_with_a_failed_object_raises_after_writing_the_good_ones(s3, folder, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """A direct S3 notification with one missing object fails the invocation (Lambda retries it),
    after the good object is written."""
    good = f"{folder}good.txt"
    s3.put_object(Bucket=IN, Key=good, Body=b"fine")
    event = s3_message(good)
    event["Records"].append(s3_message(f"{folder}gone.txt")["Records"][0])
    with pytest.raises(ingest.IngestFailedError, match="missing_object"):
        app.lambda_handler(event, lambda_context)
    assert output_keys(s3, folder) == [f"{PREFIX}{good}.jsonl"]


def test_large_output_goes_multipart_and_a_failure_aborts_it(s3, folder) -> None:  # type: ignore[no-untyped-def]
    """Output over one part is a multipart upload; an aborted writer leaves no object behind."""
    ingest.s3_client.cache_clear()
    client = ingest.s3_client()
    record = {"id": "x", "indices": list(range(300)), "values": [0.5] * 300}
    writer = documents.OutputWriter(client, OUT, f"{PREFIX}{folder}big.jsonl")
    line_bytes = len(json.dumps(record, separators=(",", ":"))) + 1
    for _ in range(documents.PART_BYTES * 2 // line_bytes + 10):
        writer.write(record)
    assert writer.upload_id is not None and len(writer.parts) == 2
    writer.close()
    assert len(read_jsonl(s3, f"{PREFIX}{folder}big.jsonl")) == writer.lines
    aborted = documents.OutputWriter(client, OUT, f"{PREFIX}{folder}aborted.jsonl")
    for _ in range(documents.PART_BYTES // line_bytes + 10):
        aborted.write(record)
    aborted.abort()
    assert f"{PREFIX}{folder}aborted.jsonl" not in output_keys(s3, folder)
    assert s3.list_multipart_uploads(Bucket=OUT).get("Uploads", []) == []


def test_ingest_batches_are_bounded_by_characters(s3, folder, lambda_context, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Long documents are expanded in batches cut by total characters, so tokenizer memory stays bounded."""
    monkeypatch.setattr(ingest, "BATCH_CHARS", 2_500)
    sizes: list[int] = []
    real_expand = service.expander.expand

    def spy(texts, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(sum(len(t) for t in texts))
        return real_expand(texts, **kwargs)

    monkeypatch.setattr(service.expander, "expand", spy)
    key = f"{folder}long-lines.jsonl"
    lines = [json.dumps({"id": i, "text": ("lung " * 200)[:1000]}) for i in range(10)]
    s3.put_object(Bucket=IN, Key=key, Body="\n".join(lines).encode())
    failures, _ = run_sqs(lambda_context, s3_message(key))
    assert failures == [] and len(read_jsonl(s3, f"{PREFIX}{key}.jsonl")) == 10
    assert sizes == [3000, 3000, 3000, 1000]  # flushed once a batch reaches 2,500 characters


def test_the_object_body_is_closed_on_success_and_on_failure(s3, folder, monkeypatch, lambda_context) -> None:  # type: ignore[no-untyped-def]
    """The S3 body is closed whether the object is written, fails midway (truncated gzip) or is refused."""
    closed: list[str] = []
    real = ingest._get_object_once

    def tracking(ref: Any) -> dict[str, Any]:
        response = real(ref)
        body = response["Body"]
        real_close = body.close
        body.close = lambda: (closed.append(ref.key), real_close())[1]
        return response

    monkeypatch.setattr(ingest, "_get_object_once", tracking)
    objects = {
        f"{folder}ok.txt": b"lung disease",
        f"{folder}cut.jsonl.gz": gzip.compress(b'{"text": "a"}\n' * 500)[:-20],
        f"{folder}image.png": b"\x89PNG",
    }
    for key, body in objects.items():
        s3.put_object(Bucket=IN, Key=key, Body=body)
    event, ids = sqs_event(*(s3_message(key) for key in objects))
    result = app.lambda_handler(event, lambda_context)
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(ids[1:])
    assert sorted(closed) == sorted(objects)
