"""S3 ingest through the handler against moto_server with IAM enforced (the function runs with the template's
role): formats, failures by kind, bounded errors, ordering, deletes, unknown events, idempotency."""

from __future__ import annotations

import gzip
import json
import uuid
from dataclasses import replace
from typing import Any

import pytest

from devkit.aws import PRIVATE_BUCKET, Interleave
from devkit.corpus import prose_paragraphs
from devkit.events import (
    Countdown,
    delete_object,
    eventbridge_event,
    foreign_records,
    items_event,
    listed_item,
    load_event,
    put_object,
    s3_notification,
    s3_record,
    sqs_event,
)
from handler import app, runtime
from handler.ingest import objects, states
from handler.ingest import tasks as events
from splade_expander import batches, documents
from splade_expander.errors import IngestFailedError, UnrecognizedEventError
from splade_expander.outputs import Output

pytestmark = pytest.mark.integration
IN, OUT, PREFIX = "splade-ingest", "splade-output", "vectors/"


@pytest.fixture(scope="module")
def s3(aws: Any) -> Any:
    runtime.s3_client.cache_clear()
    runtime.sqs_client.cache_clear()
    return aws.client("s3")


@pytest.fixture
def folder() -> str:
    return f"t-{uuid.uuid4().hex[:8]}/"


def read_jsonl(s3: Any, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=OUT, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def output_keys(s3: Any, folder: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=OUT, Prefix=PREFIX + folder)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def assert_vector(line: dict[str, Any], text: str) -> None:
    (vec,) = runtime.expander.expand([text])
    assert line["indices"] == vec.indices.tolist()
    assert line["values"] == pytest.approx(vec.values.tolist(), abs=1e-6)


def run_sqs(context: Any, *bodies: dict[str, Any] | str) -> tuple[list[str], list[str]]:
    event, ids = sqs_event(*bodies)
    result = app.lambda_handler(event, context)
    return [f["itemIdentifier"] for f in result["batchItemFailures"]], ids


def metric_names(capsys: Any) -> list[str]:
    names = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            for block in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                names += [m["Name"] for m in block["Metrics"]]
    return names


def test_txt_and_md_objects_become_one_document_each(s3, folder, lambda_context) -> None:
    """A .txt and a .md object each give one line: id = key, line null, the Expander's vector; the output
    carries the source's ETag and sequencer as metadata."""
    texts = {f"{folder}a.txt": "Chronic obstructive pulmonary disease.", f"{folder}b.md": "# Heading\n\nLung *health*."}
    messages = [put_object(s3, key, text.encode()) for key, text in texts.items()]
    failures, _ = run_sqs(lambda_context, *messages)
    assert failures == []
    for (key, text), message in zip(texts.items(), messages, strict=True):
        (line,) = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
        assert sorted(line) == ["id", "indices", "model", "source", "values"]
        assert line["id"] == key and line["source"]["key"] == key and line["source"]["line"] is None
        assert line["source"]["bucket"] == IN and len(line["source"]["etag"]) == 32
        assert line["model"] == runtime.expander.model_info
        assert_vector(line, text)
        meta = s3.head_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")["Metadata"]
        obj = message["Records"][0]["s3"]["object"]
        assert meta == {"source-etag": obj["eTag"], "source-sequencer": obj["sequencer"]}
    assert output_keys(s3, folder) == sorted(f"{PREFIX}{k}.jsonl" for k in texts)  # no error files


def test_jsonl_with_three_bad_lines_keeps_the_97_good_ones(s3, folder, lambda_context) -> None:
    """100 lines, 3 bad (invalid JSON, missing text, non-string text): 97 vectors + 3 error records."""
    lines = [json.dumps({"id": f"doc-{i}", "text": f"document number {i} about lungs"}) for i in range(100)]
    lines[9] = '{"id": "doc-9", "text": "unterminated'
    lines[49] = json.dumps({"id": "doc-49", "body": "no text field"})
    lines[89] = json.dumps({"id": "doc-89", "text": 42})
    key = f"{folder}corpus.jsonl"
    failures, _ = run_sqs(lambda_context, put_object(s3, key, ("\n".join(lines) + "\n").encode()))
    assert failures == []
    out = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert [o["id"] for o in out] == [f"doc-{i}" for i in range(100) if i not in (9, 49, 89)]
    assert [o["source"]["line"] for o in out][:10] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert_vector(out[0], "document number 0 about lungs")
    errors = read_jsonl(s3, f"{PREFIX}{key}.errors.jsonl")
    assert [(e["source"]["line"], e["code"]) for e in errors] == [
        (10, "invalid_json"),
        (50, "missing_text"),
        (90, "text_not_string"),
    ]


def test_every_line_error_code(s3, folder, lambda_context, monkeypatch) -> None:
    """line_too_long, not_an_object, per-line not_utf8 and a JSONL text_too_long are each recorded with their
    line; the good line between them is written."""
    monkeypatch.setattr(documents, "MAX_LINE_BYTES", 100_000)  # the tests' MAX_OBJECT_BYTES is 2 MB
    huge = json.dumps({"text": "x" * 100_010}).encode()
    too_many_windows = json.dumps({"id": "long", "text": "lung " * 19_000}).encode()  # > 64 windows of 256
    body = b"\n".join([huge, b"[1, 2]", b'{"text": "caf\xe9"}', b'{"id": "ok", "text": "fine"}', too_many_windows])
    key = f"{folder}codes.jsonl"
    failures, _ = run_sqs(lambda_context, put_object(s3, key, body))
    assert failures == []
    assert [o["id"] for o in read_jsonl(s3, f"{PREFIX}{key}.jsonl")] == ["ok"]
    errors = read_jsonl(s3, f"{PREFIX}{key}.errors.jsonl")
    assert [(e["source"]["line"], e["code"]) for e in errors] == [
        (1, "line_too_long"),
        (2, "not_an_object"),
        (3, "not_utf8"),
        (5, "text_too_long"),
    ]
    assert errors[3]["id"] == "long"


def test_prune_environment_prunes_every_ingested_vector(s3, folder, lambda_context, monkeypatch) -> None:
    """PRUNE_TYPE=alpha_mass / PRUNE_VALUE=0.6 (read once at init, so patched here): each output line is the
    Expander's vector pruned the same way."""
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, prune_type="alpha_mass", prune_value=0.6))
    texts = ["chronic obstructive pulmonary disease", "how do i reset my router password"]
    body = "\n".join(json.dumps({"id": i, "text": t}) for i, t in enumerate(texts)).encode()
    key = f"{folder}pruned.jsonl"
    assert run_sqs(lambda_context, put_object(s3, key, body))[0] == []
    lines = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    expected = runtime.expander.expand(texts, prune={"type": "alpha_mass", "value": 0.6})
    for line, vec in zip(lines, expected, strict=True):
        assert line["indices"] == vec.indices.tolist()
        assert len(vec) < len(runtime.expander.expand([texts[line["id"]]])[0])


def test_output_chunks_writes_each_window_with_its_span(s3, folder, lambda_context, monkeypatch) -> None:
    """OUTPUT_CHUNKS=true: <key>.chunks.jsonl has one line per window of each document, in order, with exactly
    id, chunk, span, the vector and tokens, equal to the Expander's chunks; the pooled file is unchanged."""
    texts = {"long": " ".join(prose_paragraphs()[:12]), "short": "asthma and lung disease", "blank": "   "}
    body = "\n".join(json.dumps({"id": i, "text": t}) for i, t in texts.items()).encode()
    key = f"{folder}chunked.jsonl"
    assert run_sqs(lambda_context, put_object(s3, key, body))[0] == []
    plain = s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")["Body"].read()
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, output_chunks=True))
    assert run_sqs(lambda_context, put_object(s3, key, body))[0] == []
    lines = read_jsonl(s3, f"{PREFIX}{key}.chunks.jsonl")
    expected = runtime.expander.expand(list(texts.values()), chunks=True)
    want = [(i, j, c) for i, v in zip(texts, expected, strict=True) for j, c in enumerate(v.chunks)]
    assert [(line["id"], line["chunk"]) for line in lines] == [(i, j) for i, j, _ in want]
    assert len([i for i, _, _ in want if i == "long"]) >= 2
    for line, (doc_id, _, chunk) in zip(lines, want, strict=True):
        assert sorted(line) == ["chunk", "id", "indices", "span", "tokens", "values"]
        start, end = line["span"]
        assert (start, end) == chunk.span and texts[doc_id][start:end].strip() == texts[doc_id][start:end]
        assert line["indices"] == chunk.vector.indices.tolist() and line["tokens"] == chunk.vector.tokens
        assert line["values"] == pytest.approx(chunk.vector.values.tolist(), abs=1e-6)
    assert s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")["Body"].read() == plain


def test_the_chunks_file_follows_its_vectors(s3, folder, lambda_context, monkeypatch) -> None:
    """The .chunks.jsonl is removed with the vectors: when the source is deleted, when a new version fails
    permanently, and when the key is ingested again with OUTPUT_CHUNKS off."""
    chunked = replace(runtime.settings, output_chunks=True)
    key = f"{folder}life.txt"
    monkeypatch.setattr(runtime, "settings", chunked)
    assert run_sqs(lambda_context, put_object(s3, key, b"lung disease"))[0] == []
    assert output_keys(s3, folder) == [f"{PREFIX}{key}.chunks.jsonl", f"{PREFIX}{key}.jsonl"]
    assert run_sqs(lambda_context, delete_object(s3, key))[0] == [] and output_keys(s3, folder) == []
    assert run_sqs(lambda_context, put_object(s3, key, b"lung disease"))[0] == []
    assert run_sqs(lambda_context, put_object(s3, key, b"\x00binary"))[0] == []
    assert output_keys(s3, folder) == [f"{PREFIX}{key}.errors.jsonl"]
    assert run_sqs(lambda_context, put_object(s3, key, b"asthma"))[0] == []
    assert len(output_keys(s3, folder)) == 2
    monkeypatch.setattr(runtime, "settings", replace(chunked, output_chunks=False))
    assert run_sqs(lambda_context, put_object(s3, key, b"asthma again"))[0] == []
    assert output_keys(s3, folder) == [f"{PREFIX}{key}.jsonl"]


def test_document_frequencies_per_object_merge_into_the_corpus_idf(
    s3, folder, lambda_context, monkeypatch, aws, tmp_path
):
    """OUTPUT_DF=true: each object gets <key>.df.json; `scripts/idf.py --merge s3://...` over them writes exactly
    the idf.json that counting the whole corpus at once writes; deleting a source removes its counts."""
    import shutil
    import subprocess
    import sys

    from devkit import MODEL_DIR, ROOT

    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, output_df=True))
    prose = prose_paragraphs()[:90]
    md = " ".join(prose[70:90])
    objects_ = {
        f"{folder}df/a.jsonl": "\n".join(json.dumps({"text": t}) for t in prose[:40]).encode(),
        f"{folder}df/b.jsonl.gz": gzip.compress("\n".join(json.dumps({"text": t}) for t in prose[40:70]).encode()),
        f"{folder}df/c.md": md.encode(),
    }
    assert run_sqs(lambda_context, *(put_object(s3, k, b) for k, b in objects_.items()))[0] == []
    assert sum(k.endswith(".df.json") for k in output_keys(s3, folder)) == 3
    (one,) = [json.loads(s3.get_object(Bucket=OUT, Key=f"{PREFIX}{folder}df/c.md.df.json")["Body"].read())]
    assert one["documents"] == 1 and one["format"] == "splade-df/1"
    dirs = {name: tmp_path / name for name in ("whole", "merged")}
    for path in dirs.values():
        path.mkdir()
        shutil.copy2(MODEL_DIR / "tokenizer.json", path / "tokenizer.json")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in [*prose[:70], md]))
    admin = aws.admin
    env = {
        "PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL_S3": aws.url, "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": admin["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": admin["aws_secret_access_key"],
    }  # fmt: skip
    script = str(ROOT / "scripts" / "idf.py")
    subprocess.run([sys.executable, script, "--data", str(corpus), "--out", str(dirs["whole"])], check=True, env=env)
    merge = ["--merge", f"s3://{OUT}/{PREFIX}{folder}df/", "--out", str(dirs["merged"])]
    subprocess.run([sys.executable, script, *merge], check=True, env=env)
    assert (dirs["merged"] / "idf.json").read_bytes() == (dirs["whole"] / "idf.json").read_bytes()
    assert run_sqs(lambda_context, delete_object(s3, f"{folder}df/c.md"))[0] == []
    assert f"{PREFIX}{folder}df/c.md.df.json" not in output_keys(s3, folder)


def test_fixing_an_object_removes_its_stale_errors_file(s3, folder, lambda_context) -> None:
    """An object with a bad line gets an errors file; the same key fixed and uploaded again has all its lines
    written and no errors file left over from the first version."""
    key = f"{folder}fixed.jsonl"
    bad = b'{"id": "a", "text": "lung disease"}\n{"id": "b", "text": 42}\n'
    assert run_sqs(lambda_context, put_object(s3, key, bad))[0] == []
    assert [e["code"] for e in read_jsonl(s3, f"{PREFIX}{key}.errors.jsonl")] == ["text_not_string"]
    good = b'{"id": "a", "text": "lung disease"}\n{"id": "b", "text": "asthma"}\n'
    assert run_sqs(lambda_context, put_object(s3, key, good))[0] == []
    assert [o["id"] for o in read_jsonl(s3, f"{PREFIX}{key}.jsonl")] == ["a", "b"]
    assert output_keys(s3, folder) == [f"{PREFIX}{key}.jsonl"]


def test_error_records_are_capped_at_1000_then_counted(s3, folder, lambda_context) -> None:
    """A gzip of 5,000 bad lines writes 1,000 error records then one more_errors record counting the rest."""
    key = f"{folder}all-bad.jsonl.gz"
    failures, _ = run_sqs(lambda_context, put_object(s3, key, gzip.compress(b"{\n" * 5000)))
    assert failures == []
    assert read_jsonl(s3, f"{PREFIX}{key}.jsonl") == []
    errors = read_jsonl(s3, f"{PREFIX}{key}.errors.jsonl")
    assert len(errors) == 1001 and {e["code"] for e in errors[:1000]} == {"invalid_json"}
    assert errors[999]["source"]["line"] == 1000
    assert errors[1000] == {"code": "more_errors", "count": 4000}


def test_gzipped_jsonl_with_crlf_bom_and_blank_lines(s3, folder, lambda_context) -> None:
    """A .jsonl.gz with a BOM, CRLF line ends and blank lines gives one vector per real line."""
    body = '\ufeff{"id": 1, "text": "first lung text"}\r\n\r\n{"text": "second, no id"}\r\n\n'
    key = f"{folder}docs.jsonl.gz"
    failures, _ = run_sqs(lambda_context, put_object(s3, key, gzip.compress(body.encode())))
    assert failures == []
    out = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert [o["id"] for o in out] == [1, f"{key}#3"]
    assert [o["source"]["line"] for o in out] == [1, 3]
    assert_vector(out[1], "second, no id")


def test_url_encoded_key_with_spaces_plus_and_unicode(s3, folder, lambda_context) -> None:
    """A key with spaces, '+' and unicode arrives URL-encoded and is decoded exactly."""
    key = f"{folder}my docs/café notes+plus ü.txt"
    message = put_object(s3, key, b"notes about the lungs")
    assert "+" in message["Records"][0]["s3"]["object"]["key"] and "%2B" in message["Records"][0]["s3"]["object"]["key"]
    failures, _ = run_sqs(lambda_context, message)
    assert failures == []
    (line,) = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert line["id"] == key


def test_text_object_too_long_to_expand_is_an_error_record(s3, folder, lambda_context) -> None:
    """A .txt longer than MAX_WINDOWS windows can hold is one bad document: an error record, not a retry."""
    key = f"{folder}book.txt"
    failures, _ = run_sqs(lambda_context, put_object(s3, key, b"word " * 220_000))
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
    ],
)
def test_permanent_failures_are_recorded_and_acknowledged(s3, folder, lambda_context, capsys, name, body, code) -> None:
    """Binary, non-UTF-8, corrupt gzip, oversize and unsupported objects are acknowledged (no retry, no DLQ):
    one object-level record in the errors file, no vectors, the PermanentObjectFailures metric."""
    key = folder + name
    failures, _ = run_sqs(lambda_context, put_object(s3, key, body))
    assert failures == []
    assert output_keys(s3, folder) == [f"{PREFIX}{key}.errors.jsonl"]
    (record,) = read_jsonl(s3, f"{PREFIX}{key}.errors.jsonl")
    assert record["code"] == code and record["source"]["key"] == key and record["source"]["line"] is None
    names = metric_names(capsys)
    assert "PermanentObjectFailures" in names and "ObjectFailures" not in names


def test_a_permanent_failure_replaces_the_vectors_of_an_older_version(s3, folder, lambda_context) -> None:
    """A good object overwritten by a binary one: its old vectors are removed and the errors file says why."""
    key = f"{folder}swap.txt"
    run_sqs(lambda_context, put_object(s3, key, b"lung text"))
    failures, _ = run_sqs(lambda_context, put_object(s3, key, b"\x00\x00binary"))
    assert failures == [] and output_keys(s3, folder) == [f"{PREFIX}{key}.errors.jsonl"]


def test_missing_object_is_a_logged_skip(s3, folder, lambda_context, capsys, caplog) -> None:
    """An object deleted before its event is read (S3 answers 404: the role has s3:ListBucket) is acknowledged,
    counted as MissingObjects, and nothing is written."""
    key = f"{folder}gone.txt"
    message = s3_notification(s3_record(key, etag="1" * 32, size=10))
    with caplog.at_level("INFO"):
        failures, _ = run_sqs(lambda_context, message)
    assert failures == [] and output_keys(s3, folder) == []
    assert [getattr(r, "code", None) for r in caplog.records if getattr(r, "status", None) == "missing"] == [
        "missing_object"
    ]
    names = metric_names(capsys)
    assert "MissingObjects" in names and "ObjectFailures" not in names


def test_access_denied_is_a_failure_that_reaches_the_dlq(aws, s3, folder, lambda_context, capsys, caplog) -> None:
    """An object the role may not read (another bucket) is a batch item failure counted in ObjectFailures."""
    message = put_object(s3, f"{folder}secret.txt", b"secret", bucket=PRIVATE_BUCKET)
    with caplog.at_level("ERROR"):
        failures, ids = run_sqs(lambda_context, message)
    assert failures == ids
    assert [getattr(r, "code", None) for r in caplog.records] == ["access_denied"]
    assert "ObjectFailures" in metric_names(capsys)


def test_the_role_cannot_write_outside_the_output_prefix(aws) -> None:
    """Under IAM enforcement the function's role writes only below OUTPUT_PREFIX: other keys and the ingest
    bucket are denied, as in AWS."""
    fn = aws.function_client("s3")
    fn.put_object(Bucket=OUT, Key=f"{PREFIX}iam-probe.jsonl", Body=b"{}")
    for bucket, key in ((OUT, "elsewhere/x.jsonl"), (IN, "x.txt")):
        with pytest.raises(Exception, match="AccessDenied"):
            fn.put_object(Bucket=bucket, Key=key, Body=b"{}")


def test_test_event_is_acknowledged_and_output_prefix_is_ignored(s3, folder, lambda_context) -> None:
    """The s3:TestEvent is acknowledged; a key under the output prefix in the output bucket is skipped."""
    test_event = json.loads(load_event("sqs-s3-test-event.json")["Records"][0]["body"])
    own = f"{PREFIX}{folder}x.txt.jsonl"
    own_message = put_object(s3, own, b"{}", bucket=OUT)
    failures, _ = run_sqs(lambda_context, test_event, own_message)
    assert failures == []
    assert output_keys(s3, folder) == [own]  # nothing new, no recursion


def test_redelivery_writes_the_same_bytes(s3, folder, lambda_context) -> None:
    """The same event delivered twice leaves one output object with identical bytes."""
    key = f"{folder}again.txt"
    message = put_object(s3, key, b"pulmonary fibrosis")
    run_sqs(lambda_context, message)
    first = s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")["Body"].read()
    failures, _ = run_sqs(lambda_context, message)
    second = s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")["Body"].read()
    assert failures == [] and first == second and output_keys(s3, folder) == [f"{PREFIX}{key}.jsonl"]


def test_an_older_event_never_overwrites_newer_vectors(s3, folder, lambda_context, capsys) -> None:
    """v1 then v2 are written; v1's event arrives last: the object no longer has v1's ETag (412), the event is
    superseded and v2's vectors stay."""
    key = f"{folder}doc.txt"
    old = put_object(s3, key, b"asthma inhaler")
    new = put_object(s3, key, b"router password reset")
    failures, _ = run_sqs(lambda_context, new, old)
    assert failures == []
    (line,) = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert_vector(line, "router password reset")
    assert "SupersededEvents" in capsys.readouterr().out


def test_an_older_event_of_the_same_content_loses_by_sequencer(s3, folder, lambda_context) -> None:
    """The same bytes PUT twice (same ETag): the later event's output stands; the earlier event, delivered
    last, is superseded by the sequencer kept in the output's metadata."""
    key = f"{folder}same.txt"
    first = put_object(s3, key, b"same text")
    second = put_object(s3, key, b"same text")
    run_sqs(lambda_context, second)
    run_sqs(lambda_context, first)
    meta = s3.head_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")["Metadata"]
    assert meta["source-sequencer"] == second["Records"][0]["s3"]["object"]["sequencer"]


def test_a_concurrent_older_run_cannot_win_the_commit(s3, folder, lambda_context) -> None:
    """An older run that saw no output at its start commits with If-None-Match: a newer run that published
    meanwhile makes that commit fail (412), and the older run reports superseded."""
    key = f"{folder}race.txt"
    older = put_object(s3, key, b"same bytes twice")
    newer = put_object(s3, key, b"same bytes twice")
    runner = objects.Objects(runtime.s3_client())
    old_ref = events.from_s3_notification(older)[0].ref
    checkpoint = runner.start(old_ref)  # sees no output yet
    assert isinstance(checkpoint, states.Checkpoint) and checkpoint.state(Output.VECTORS).seen is None
    run_sqs(lambda_context, newer)  # the newer event publishes first
    outcome = runner.expand(old_ref, checkpoint, lambda: 300_000, can_continue=False)
    assert outcome.status == "superseded"
    meta = s3.head_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")["Metadata"]
    assert meta["source-sequencer"] == newer["Records"][0]["s3"]["object"]["sequencer"]


def test_a_commit_whose_output_was_deleted_meanwhile_restarts_fresh(s3, folder, lambda_context) -> None:
    """A run commits If-Match on the output it saw at its start; when that output was deleted in between, S3
    answers 404 NoSuchKey, not 412. That is a lost race: the run reports RESTART (no exception, so the message is
    not retried into the DLQ), and the fresh run publishes the new object's vectors."""
    key = f"{folder}gone.txt"
    run_sqs(lambda_context, put_object(s3, key, b"first text about asthma"))
    newer = put_object(s3, key, b"second text about bronchitis")
    runner = objects.Objects(runtime.s3_client())
    ref = events.from_s3_notification(newer)[0].ref
    checkpoint = runner.start(ref)
    assert isinstance(checkpoint, states.Checkpoint) and checkpoint.state(Output.VECTORS).seen is not None
    s3.delete_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")  # someone removes the output meanwhile
    outcome = runner.expand(ref, checkpoint, lambda: 300_000, can_continue=False)
    assert (outcome.status, outcome.ref) == (states.Status.RESTART, ref)
    assert output_keys(s3, folder) == []
    fresh = runner.start(ref)
    assert isinstance(fresh, states.Checkpoint) and fresh.state(Output.VECTORS).seen is None
    assert runner.expand(ref, fresh, lambda: 300_000, can_continue=False).status is states.Status.WRITTEN
    (line,) = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert_vector(line, "second text about bronchitis")


def test_a_continuation_whose_output_was_deleted_restarts_and_publishes(s3, folder, with_queue) -> None:
    """The same race across runs: a checkpointed object carries the output ETag its first run saw; the output is
    deleted before the last run commits. Every message succeeds, the object restarts from its first line, and the
    output holds the new object's 300 lines once each."""
    key = f"{folder}gone.jsonl"
    run = [json.dumps({"id": i, "text": f"first version {i}"}) for i in range(300)]
    event, _ = sqs_event(put_object(s3, key, "\n".join(run).encode()))
    assert app.lambda_handler(event, Countdown(10_000)) == {"batchItemFailures": []}
    lines = [json.dumps({"id": i, "text": f"second version {i} on emphysema"}) for i in range(300)]
    event, _ = sqs_event(put_object(s3, key, "\n".join(lines).encode()))
    assert app.lambda_handler(event, Countdown(3)) == {"batchItemFailures": []}  # run 1 saw the output
    s3.delete_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")
    runs = with_queue.drain(lambda e: app.lambda_handler(e, Countdown(3)))
    assert runs and all(r == {"batchItemFailures": []} for r in runs), runs
    out = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert [o["id"] for o in out] == list(range(300))
    assert_vector(out[-1], "second version 299 on emphysema")
    assert "Contents" not in s3.list_objects_v2(Bucket=OUT, Prefix=f"{PREFIX}_checkpoints/{folder}")
    assert s3.list_multipart_uploads(Bucket=OUT).get("Uploads", []) == []


def test_a_delete_never_removes_an_output_published_after_its_check(s3, folder, lambda_context, monkeypatch) -> None:
    """Removing a deleted source's outputs is conditional on the ETag just read: a newer event's output
    published between that read and the delete (a concurrent run) answers 412 and stands."""
    key = f"{folder}raced.txt"
    run_sqs(lambda_context, put_object(s3, key, b"old text"))
    removed = delete_object(s3, key)
    output = f"{PREFIX}{key}.jsonl"
    newer = {"source-etag": "e2", "source-sequencer": "FFFFFFFFFFFFFFFFFF"}

    def publish_newer() -> None:
        s3.put_object(Bucket=OUT, Key=output, Body=b'{"id": "newer"}\n', Metadata=newer)

    racing = Interleave(runtime.s3_client(), "head_object", output, publish_newer)
    monkeypatch.setattr(runtime, "s3_client", lambda: racing)
    failures, _ = run_sqs(lambda_context, removed)
    assert failures == [] and racing.fired
    assert s3.get_object(Bucket=OUT, Key=output)["Body"].read() == b'{"id": "newer"}\n'


@pytest.mark.parametrize("event", ["ObjectRemoved:Delete", "LifecycleExpiration:Delete"])
def test_delete_removes_the_vectors_and_errors_file(s3, folder, lambda_context, capsys, event: str) -> None:
    """ObjectRemoved, and a lifecycle rule's expiration (S3's own event type in SQS mode), for an ingested key
    removes its .jsonl and .errors.jsonl."""
    key = f"{folder}bye.jsonl"
    run_sqs(lambda_context, put_object(s3, key, b'{"text": "lung"}\n{"bad": 1}\n'))
    assert len(output_keys(s3, folder)) == 2
    s3.delete_object(Bucket=IN, Key=key)  # what the expiration did
    failures, _ = run_sqs(lambda_context, s3_notification(s3_record(key, event=event)))
    assert failures == [] and output_keys(s3, folder) == []
    assert "DeletedSources" in capsys.readouterr().out


def test_delete_keeps_the_vectors_of_a_newer_object(s3, folder, lambda_context) -> None:
    """Delete then re-create: the late delete event finds a newer object and removes nothing; a delete event
    older than the output's sequencer removes nothing either."""
    key = f"{folder}back.txt"
    run_sqs(lambda_context, put_object(s3, key, b"first"))
    deleted = delete_object(s3, key)
    recreated = put_object(s3, key, b"second")
    run_sqs(lambda_context, recreated, deleted)
    (line,) = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert_vector(line, "second")
    s3.delete_object(Bucket=IN, Key=key)  # gone at the source, but this delete event predates the output
    stale = s3_notification(s3_record(key, event="ObjectRemoved:Delete", sequencer="0" * 18))
    run_sqs(lambda_context, stale)
    assert output_keys(s3, folder) == [f"{PREFIX}{key}.jsonl"]


@pytest.mark.parametrize(
    ("event", "shape"),
    [
        (foreign_records("aws:kinesis"), "Kinesis"),
        (foreign_records("aws:dynamodb"), "DynamoDB"),
        (foreign_records("aws:sns"), "SNS"),
        (s3_notification(s3_record("a.txt", event="ObjectRestore:Completed")), "ObjectRestore:Completed"),
        (eventbridge_event("a.txt", detail_type="Object Restore Completed"), "Object Restore Completed"),
        (eventbridge_event("a.txt", source="aws.ec2", detail_type="EC2 Instance State-change"), "aws.ec2"),
    ],
)
def test_unknown_events_fail_loudly(lambda_context, event, shape) -> None:
    """Kinesis, DynamoDB, unknown S3 event names and EventBridge detail-types raise a typed error naming them."""
    with pytest.raises(UnrecognizedEventError, match=shape):
        app.lambda_handler(event, lambda_context)


def test_poison_messages_are_batch_item_failures(s3, folder, lambda_context, capsys) -> None:
    """Five messages, two poison (not JSON, a restore event): exactly those two are reported (they reach the DLQ
    after maxReceiveCount); the three good ones are written; poison is not an ObjectFailure."""
    good = [put_object(s3, f"{folder}{i}.txt", f"good document {i}".encode()) for i in range(3)]
    restore = s3_notification(s3_record(f"{folder}r.txt", event="ObjectRestore:Completed"))
    failures, ids = run_sqs(lambda_context, good[0], "not json", good[1], restore, good[2])
    assert sorted(failures) == sorted([ids[1], ids[3]])
    assert output_keys(s3, folder) == sorted(f"{PREFIX}{folder}{i}.txt.jsonl" for i in range(3))
    names = metric_names(capsys)
    assert "UnrecognizedEvents" in names and "ObjectFailures" not in names


def test_near_timeout_unstarted_records_are_reported_without_a_queue(s3, folder, lambda_context) -> None:
    """Without INGEST_QUEUE_URL and with less time left than the margin, no object is started and every
    message is a failure (SQS retries it)."""
    message = put_object(s3, f"{folder}late.txt", b"late document")
    lambda_context.remaining_ms = runtime.settings.ingest_time_margin_ms - 1
    failures, ids = run_sqs(lambda_context, message, message)
    assert failures == ids and output_keys(s3, folder) == []


def test_direct_s3_eventbridge_and_step_functions_batches(s3, folder, lambda_context) -> None:
    """Direct S3 notifications, EventBridge Object Created and a Distributed Map item batch all ingest."""
    direct = app.lambda_handler(put_object(s3, f"{folder}direct.txt", b"direct text"), lambda_context)
    assert direct["failed"] == [] and direct["processed"][0]["documents"] == 1
    key = f"{folder}bridge plus+.txt"
    etag = s3.put_object(Bucket=IN, Key=key, Body=b"bridge text")["ETag"].strip('"')
    assert app.lambda_handler(eventbridge_event(key, etag=etag, size=11), lambda_context)["failed"] == []
    items = [listed_item(s3, f"{folder}map one.txt", b"map"), listed_item(s3, f"{folder}map2.jsonl", b'{"text":"m"}')]
    result = app.lambda_handler(items_event(items), lambda_context)
    assert [p["documents"] for p in result["processed"]] == [1, 1]
    keys = [f"{folder}direct.txt", key, f"{folder}map one.txt", f"{folder}map2.jsonl"]
    assert output_keys(s3, folder) == sorted(f"{PREFIX}{k}.jsonl" for k in keys)


def test_eventbridge_events_through_the_queue_ingest(s3, folder, lambda_context) -> None:
    """IngestNotifications=eventbridge: the rule delivers S3's EventBridge events as SQS message bodies; an Object
    Created body writes the vectors and an Object Deleted body removes them."""
    key = f"{folder}bridged via queue.txt"
    etag = s3.put_object(Bucket=IN, Key=key, Body=b"bridged text")["ETag"].strip('"')
    event, _ = sqs_event(eventbridge_event(key, etag=etag, size=12))
    assert app.lambda_handler(event, lambda_context)["batchItemFailures"] == []
    assert output_keys(s3, folder) == [f"{PREFIX}{key}.jsonl"]
    s3.delete_object(Bucket=IN, Key=key)
    event, _ = sqs_event(eventbridge_event(key, detail_type="Object Deleted"))
    assert app.lambda_handler(event, lambda_context)["batchItemFailures"] == []
    assert output_keys(s3, folder) == []


def test_direct_event_with_a_failed_object_raises_after_writing_the_good_ones(s3, folder, lambda_context) -> None:
    """A direct S3 notification with one unreadable (denied) object fails the invocation (Lambda retries it,
    then the OnFailure queue), after the good object is written."""
    good = put_object(s3, f"{folder}good.txt", b"fine")
    denied = put_object(s3, f"{folder}denied.txt", b"no", bucket=PRIVATE_BUCKET)
    with pytest.raises(IngestFailedError, match="access_denied"):
        app.lambda_handler(s3_notification(*good["Records"], *denied["Records"]), lambda_context)
    assert output_keys(s3, folder) == [f"{PREFIX}{folder}good.txt.jsonl"]


def test_ingest_batches_are_bounded_by_characters(s3, folder, lambda_context, monkeypatch) -> None:
    """Long documents are expanded in batches cut by total characters, so tokenizer memory stays bounded."""
    monkeypatch.setattr(batches, "BATCH_CHARS", 2_500)
    sizes: list[int] = []
    real_expand = runtime.expander.expand

    def spy(texts, **kwargs):
        sizes.append(sum(len(t) for t in texts))
        return real_expand(texts, **kwargs)

    monkeypatch.setattr(runtime.expander, "expand", spy)
    key = f"{folder}long-lines.jsonl"
    lines = [json.dumps({"id": i, "text": ("lung " * 200)[:1000]}) for i in range(10)]
    failures, _ = run_sqs(lambda_context, put_object(s3, key, "\n".join(lines).encode()))
    assert failures == [] and len(read_jsonl(s3, f"{PREFIX}{key}.jsonl")) == 10
    assert sizes == [3000, 3000, 3000, 1000]  # flushed once a batch reaches 2,500 characters


def test_the_object_body_is_closed_on_success_and_on_failure(s3, folder, monkeypatch, lambda_context) -> None:
    """The S3 body is closed whether the object is written, fails midway (truncated gzip) or is refused."""
    closed: list[str] = []
    real = objects.Objects._get_source

    def tracking(self, ref, cp, ranged):
        response = real(self, ref, cp, ranged)
        assert isinstance(response, dict)
        body = response["Body"]
        real_close = body.close

        def close() -> None:
            closed.append(ref.key)
            real_close()

        body.close = close
        return response

    monkeypatch.setattr(objects.Objects, "_get_source", tracking)
    bodies = {
        f"{folder}ok.txt": b"lung disease",
        f"{folder}cut.jsonl.gz": gzip.compress(b'{"text": "a"}\n' * 500)[:-20],
        f"{folder}image.png": b"\x89PNG",
    }
    failures, _ = run_sqs(lambda_context, *(put_object(s3, k, b) for k, b in bodies.items()))
    assert failures == [] and sorted(closed) == sorted(bodies)


# ----------------------------------------------------------------------------- continuations, in process
@pytest.fixture
def with_queue(aws, monkeypatch) -> Any:
    """The handler configured with INGEST_QUEUE_URL (settings are read once at import, so patched here)."""
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, ingest_queue_url=aws.queue_url))
    aws.purge_queue()
    return aws


def gz_corpus(n: int) -> bytes:
    lines = [json.dumps({"id": f"d{i}", "text": f"document {i} about pulmonary disease and lungs"}) for i in range(n)]
    for i in range(5, n, 97):
        lines[i] = '{"broken": '
    return gzip.compress(("\n".join(lines) + "\n").encode())


def test_a_gzip_continued_over_many_runs_gives_the_same_bytes_as_one_run(s3, folder, with_queue) -> None:
    """A .jsonl.gz checkpointed every batch (re-inflated and skipped to its line each run) ends with exactly
    the .jsonl and .errors.jsonl bytes that one uninterrupted run writes."""
    key = f"{folder}many.jsonl.gz"
    body = gz_corpus(600)
    event, _ = sqs_event(put_object(s3, key, body))
    assert app.lambda_handler(event, Countdown(10_000)) == {"batchItemFailures": []}
    assert with_queue.drain(lambda e: app.lambda_handler(e, Countdown(10_000))) == []  # one run, no continuation
    once = [s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}{s}")["Body"].read() for s in (".jsonl", ".errors.jsonl")]
    event, _ = sqs_event(put_object(s3, key, body))  # the same bytes again: a new event, same ETag
    assert app.lambda_handler(event, Countdown(3)) == {"batchItemFailures": []}
    runs = with_queue.drain(lambda e: app.lambda_handler(e, Countdown(3)))
    # 593 documents: 9 full batches and one of 17; one full batch a run, and the last run also takes the short
    # batch (the last batch needs only MIN_TIME_MS): 9 runs, the first one above and 8 continuations
    assert runs == [{"batchItemFailures": []}] * 8
    again = [s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}{s}")["Body"].read() for s in (".jsonl", ".errors.jsonl")]
    assert again == once
    broken = len(range(5, 600, 97))
    assert len(once[0].splitlines()) == 600 - broken and len(once[1].splitlines()) == broken
    assert output_keys(s3, folder) == [f"{PREFIX}{key}.errors.jsonl", f"{PREFIX}{key}.jsonl"]
    assert "Contents" not in s3.list_objects_v2(Bucket=OUT, Prefix=f"{PREFIX}_checkpoints/{folder}")


def test_chunks_continued_over_many_runs_give_the_same_bytes_as_one_run(s3, folder, with_queue, monkeypatch) -> None:
    """With OUTPUT_CHUNKS and OUTPUT_DF the chunks file and the counts are carried through checkpoints like the
    vectors: a .jsonl.gz with multi-window documents, checkpointed every batch, ends with the same four files as
    one run."""
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, output_chunks=True, output_df=True))
    key = f"{folder}chunks.jsonl.gz"
    prose = " ".join(prose_paragraphs()[:8])
    lines = [json.dumps({"id": f"d{i}", "text": prose[i:] if i % 50 == 0 else f"short note {i}"}) for i in range(300)]
    lines[7] = '{"broken": '
    body = gzip.compress(("\n".join(lines) + "\n").encode())
    suffixes = (".jsonl", ".chunks.jsonl", ".errors.jsonl", ".df.json")
    event, _ = sqs_event(put_object(s3, key, body))
    assert app.lambda_handler(event, Countdown(10_000)) == {"batchItemFailures": []}
    once = [s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}{s}")["Body"].read() for s in suffixes]
    event, _ = sqs_event(put_object(s3, key, body))
    assert app.lambda_handler(event, Countdown(3)) == {"batchItemFailures": []}
    runs = with_queue.drain(lambda e: app.lambda_handler(e, Countdown(3)))
    assert runs == [{"batchItemFailures": []}] * 3  # 299 documents: 4 full batches and a short one: 4 runs
    again = [s3.get_object(Bucket=OUT, Key=f"{PREFIX}{key}{s}")["Body"].read() for s in suffixes]
    assert again == once
    chunk_ids = [json.loads(x)["id"] for x in once[1].splitlines()]
    assert len(chunk_ids) > len(once[0].splitlines()) == 299 and chunk_ids.count("d0") >= 2
    assert "Contents" not in s3.list_objects_v2(Bucket=OUT, Prefix=f"{PREFIX}_checkpoints/{folder}")


def test_a_continuation_killed_before_acknowledging_is_redone_without_duplicates(s3, folder, with_queue) -> None:
    """A run killed after queueing its continuation but before its message was deleted is redelivered: the run
    is done again from the same checkpoint, and the final output still has every line exactly once."""
    key = f"{folder}killed.jsonl"
    lines = [json.dumps({"id": i, "text": f"text {i} on asthma"}) for i in range(400)]
    event, _ = sqs_event(put_object(s3, key, "\n".join(lines).encode()))
    app.lambda_handler(event, Countdown(3))
    sqs = with_queue.client("sqs")
    (first,) = sqs.receive_message(QueueUrl=with_queue.queue_url, MaxNumberOfMessages=10)["Messages"]
    replay, _ = sqs_event(first["Body"])
    assert app.lambda_handler(replay, Countdown(3)) == {"batchItemFailures": []}  # "killed": never deleted
    assert app.lambda_handler(replay, Countdown(3)) == {"batchItemFailures": []}  # the redelivery
    sqs.delete_message(QueueUrl=with_queue.queue_url, ReceiptHandle=first["ReceiptHandle"])
    with_queue.drain(lambda e: app.lambda_handler(e, Countdown(3)))
    out = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert [o["id"] for o in out] == list(range(400))
    assert s3.list_multipart_uploads(Bucket=OUT).get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=OUT, Prefix=f"{PREFIX}_checkpoints/{folder}")


def test_unstarted_messages_are_queued_again_not_failed(s3, folder, with_queue, lambda_context) -> None:
    """With a queue and too little time to start, messages are re-queued and acknowledged (no receive used)."""
    message = put_object(s3, f"{folder}later.txt", b"later document")
    lambda_context.remaining_ms = runtime.settings.ingest_time_margin_ms - 1
    failures, _ = run_sqs(lambda_context, message, message)
    assert failures == [] and output_keys(s3, folder) == []
    lambda_context.remaining_ms = 300_000
    assert with_queue.drain(lambda e: app.lambda_handler(e, lambda_context)) == [{"batchItemFailures": []}]
    assert output_keys(s3, folder) == [f"{PREFIX}{folder}later.txt.jsonl"]


def test_a_jsonl_over_8_mib_of_output_continues_an_exact_number_of_times(s3, folder, with_queue) -> None:
    """5,120 documents are 80 batches of 64; with a countdown of 18 checks each run writes 16 batches, so the
    object takes exactly 5 runs (4 continuations). Its multipart upload spans the runs (over 8 MiB of output) and
    consumers see one .jsonl with every line once, in order, with the Expander's vectors."""
    prose = prose_paragraphs()
    rows = [json.dumps({"id": i, "text": prose[i % len(prose)]}) for i in range(64 * 80)]
    key = f"{folder}big.jsonl"
    event, _ = sqs_event(put_object(s3, key, ("\n".join(rows) + "\n").encode()))
    assert app.lambda_handler(event, Countdown(18)) == {"batchItemFailures": []}
    later = with_queue.drain(lambda e: app.lambda_handler(e, Countdown(18)))
    assert later == [{"batchItemFailures": []}] * 4
    head = s3.head_object(Bucket=OUT, Key=f"{PREFIX}{key}.jsonl")
    assert head["ContentLength"] > 8 * 1024 * 1024  # more than one part: the upload spanned runs
    out = read_jsonl(s3, f"{PREFIX}{key}.jsonl")
    assert [line["id"] for line in out] == list(range(len(rows)))
    for i in (0, len(rows) // 3, len(rows) - 1):
        assert_vector(out[i], json.loads(rows[i])["text"])
    assert "Contents" not in s3.list_objects_v2(Bucket=OUT, Prefix=f"{PREFIX}_checkpoints/{folder}")
    assert s3.list_multipart_uploads(Bucket=OUT).get("Uploads", []) == []


def queue_object(aws: Any, s3: Any, key: str, lines: int) -> None:
    """Put a JSONL of ``lines`` short documents and send its S3 notification to the ingest queue (a new chain)."""
    rows = [json.dumps({"id": i, "text": f"note {i} on pulmonary disease"}) for i in range(lines)]
    body = put_object(s3, key, ("\n".join(rows) + "\n").encode())
    aws.client("sqs").send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(body))


@pytest.mark.parametrize("recursive_loop", [None, "Terminate"])
def test_a_chain_of_twenty_runs_passes_lambdas_recursion_guard(s3, folder, with_queue, recursive_loop) -> None:
    """1,280 documents at one batch of 64 a run: 20 runs, 19 continuations through the ingest queue. The local
    event source applies Lambda's recursive loop detection as the translated template sets it (RecursiveLoop:
    Allow on the ingest function): every run happens and the object is published once, whole. Under Lambda's
    default (Terminate) the same chain stops after 16 invocations: the 17th is dropped, nothing is published,
    and the checkpoint's carry object is left for the lifecycle rules: what the template setting prevents."""
    key = f"{folder}chain.jsonl"
    queue_object(with_queue, s3, key, 64 * 20)
    runs = with_queue.drain(lambda e: app.lambda_handler(e, Countdown(3)), recursive_loop=recursive_loop)
    if recursive_loop is None:
        assert runs == [{"batchItemFailures": []}] * 20 and with_queue.dropped == []
        assert [line["id"] for line in read_jsonl(s3, f"{PREFIX}{key}.jsonl")] == list(range(64 * 20))
        assert s3.list_multipart_uploads(Bucket=OUT).get("Uploads", []) == []
    else:
        assert len(runs) == 16 and len(with_queue.dropped) == 1
        assert output_keys(s3, folder) == []
        carry = s3.list_objects_v2(Bucket=OUT, Prefix=f"{PREFIX}_checkpoints/{folder}").get("Contents", [])
        assert len(carry) == 1  # left behind by the dropped chain
        s3.delete_object(Bucket=OUT, Key=carry[0]["Key"])


def test_an_object_over_the_run_cap_is_failed_cleanly(s3, folder, with_queue, monkeypatch, capsys) -> None:
    """MAX_OBJECT_RUNS=5 on an object that needs 20 runs: the 6th run stops the chain. No output is published,
    no multipart upload or carry object is left, the errors file holds one object-level too_many_runs record
    naming the object and its run count, the message is acknowledged, and RunCapReached is emitted."""
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, max_object_runs=5))
    key = f"{folder}endless.jsonl"
    queue_object(with_queue, s3, key, 64 * 20)
    runs = with_queue.drain(lambda e: app.lambda_handler(e, Countdown(3)))
    assert runs == [{"batchItemFailures": []}] * 6 and with_queue.dropped == []
    assert output_keys(s3, folder) == [f"{PREFIX}{key}.errors.jsonl"]
    (record,) = read_jsonl(s3, f"{PREFIX}{key}.errors.jsonl")
    assert record["code"] == "too_many_runs" and record["source"]["line"] is None
    assert f"s3://{IN}/{key} took 5 runs" in record["reason"] and "MAX_OBJECT_RUNS (5)" in record["reason"]
    assert s3.list_multipart_uploads(Bucket=OUT).get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=OUT, Prefix=f"{PREFIX}_checkpoints/{folder}")
    logs = capsys.readouterr().out
    assert '"RunCapReached"' in logs and '"PermanentObjectFailures"' in logs


def test_a_batch_defers_what_it_cannot_start_and_loses_nothing(s3, folder, with_queue) -> None:
    """Six 400-line objects (7 batches each) in one SQS batch, with a countdown of 9 checks: each invocation
    finishes exactly one object (1 check to start it, 7 batches) and queues the ones it could not start again,
    acknowledged (no receive used up, nothing reported failed). Five more invocations finish the rest: every
    object has its 400 lines, none twice."""
    prose = prose_paragraphs()
    lines = "\n".join(json.dumps({"id": i, "text": prose[i % len(prose)]}) for i in range(400))
    keys = [f"{folder}part-{i}.jsonl" for i in range(6)]
    event, _ = sqs_event(*(put_object(s3, key, lines.encode()) for key in keys))
    assert app.lambda_handler(event, Countdown(9)) == {"batchItemFailures": []}
    assert output_keys(s3, folder) == [f"{PREFIX}{keys[0]}.jsonl"]
    later = with_queue.drain(lambda e: app.lambda_handler(e, Countdown(9)))
    assert later == [{"batchItemFailures": []}] * 5
    for key in keys:
        assert [line["id"] for line in read_jsonl(s3, f"{PREFIX}{key}.jsonl")] == list(range(400)), key
    assert "Contents" not in s3.list_objects_v2(Bucket=OUT, Prefix=f"{PREFIX}_checkpoints/{folder}")
    assert s3.list_multipart_uploads(Bucket=OUT).get("Uploads", []) == []
