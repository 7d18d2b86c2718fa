"""S3 faults on the ingest path (a fault-injecting proxy in front of moto_server): retries happen,
persistent failures are reported per record, nothing is written twice or half-written."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from devkit.events import put_object, s3_notification, s3_record, sqs_event
from devkit.faultproxy import FaultProxy, Rule
from handler import app, runtime
from handler.ingest import writer
from splade_expander.errors import IngestFailedError

IN, OUT, PREFIX = "splade-ingest", "splade-output", "vectors/"

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(moto_server: str) -> Iterator[FaultProxy]:
    fault = FaultProxy(moto_server)
    previous = os.environ["AWS_ENDPOINT_URL_S3"]
    os.environ["AWS_ENDPOINT_URL_S3"] = fault.url
    runtime.s3_client.cache_clear()
    yield fault
    os.environ["AWS_ENDPOINT_URL_S3"] = previous
    runtime.s3_client.cache_clear()
    fault.close()


@pytest.fixture
def s3(aws: Any) -> Any:
    return aws.client("s3")


def path_of(bucket: str, key: str) -> str:
    return f"/{bucket}/{quote(key)}"


def test_transient_503_and_500_are_retried_and_written_once(proxy, s3, lambda_context) -> None:
    """Two SlowDowns on the read and a 500 on the write are retried; the output is written exactly once."""
    key = f"f-{uuid.uuid4().hex[:6]}/doc.txt"
    message = put_object(s3, key, b"retry me about lungs")
    out_key = f"{PREFIX}{key}.jsonl"
    proxy.rules += [
        Rule("GET", path_of(IN, key), 503, times=2),
        Rule("PUT", path_of(OUT, out_key) + "$", 500, times=1),
    ]
    event, _ = sqs_event(message)
    assert app.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert proxy.count("GET", path_of(IN, key), 503) == 2 and proxy.count("GET", path_of(IN, key), 200) == 1
    assert proxy.count("PUT", path_of(OUT, out_key) + "$", 500) == 1
    assert proxy.count("PUT", path_of(OUT, out_key) + "$", 200) == 1  # written once
    (line,) = s3.get_object(Bucket=OUT, Key=out_key)["Body"].read().decode().splitlines()
    assert json.loads(line)["id"] == key


def test_persistent_read_failure_is_reported_for_that_record_only(proxy, s3, lambda_context) -> None:
    """A key whose reads always fail is the only batch item failure; the others are written."""
    folder = f"f-{uuid.uuid4().hex[:6]}/"
    keys = [f"{folder}{i}.txt" for i in range(3)]
    messages = [put_object(s3, key, b"document text") for key in keys]
    proxy.rules.append(Rule("GET", path_of(IN, keys[1]), 500, times=None))
    event, ids = sqs_event(*messages)
    result = app.lambda_handler(event, lambda_context)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [ids[1]]
    assert proxy.count("GET", path_of(IN, keys[1]), 500) == 3  # AWS_MAX_ATTEMPTS=3 in the tests
    listing = s3.list_objects_v2(Bucket=OUT, Prefix=PREFIX + folder).get("Contents", [])
    assert sorted(o["Key"] for o in listing) == [f"{PREFIX}{keys[0]}.jsonl", f"{PREFIX}{keys[2]}.jsonl"]


def test_persistent_write_failure_leaves_nothing_half_written(proxy, s3, lambda_context, monkeypatch) -> None:
    """When every part upload fails, the message fails, the multipart upload is aborted and no object exists."""
    monkeypatch.setattr(writer, "PART_BYTES", 20_000)
    key = f"f-{uuid.uuid4().hex[:6]}/many.jsonl"
    lines = [json.dumps({"id": i, "text": f"line {i} about pulmonary health"}) for i in range(80)]
    message = put_object(s3, key, "\n".join(lines).encode())
    proxy.rules.append(Rule("PUT", r"uploadId=", 503, times=None))
    event, ids = sqs_event(message)
    result = app.lambda_handler(event, lambda_context)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == ids
    assert proxy.count("POST", r"\?uploads", 200) == 1  # the upload was started ...
    assert proxy.count("DELETE", r"uploadId=", 204) == 1  # ... and aborted
    assert "Contents" not in s3.list_objects_v2(Bucket=OUT, Prefix=f"{PREFIX}{key}")
    assert s3.list_multipart_uploads(Bucket=OUT).get("Uploads", []) == []


def test_direct_event_keeps_going_after_a_client_error(proxy, s3, lambda_context) -> None:
    """In a direct S3 event, an object whose write keeps failing does not stop the next object."""
    folder = f"f-{uuid.uuid4().hex[:6]}/"
    bad, good = f"{folder}bad.txt", f"{folder}good.txt"
    messages = [put_object(s3, key, b"text") for key in (bad, good)]
    proxy.rules.append(Rule("PUT", path_of(OUT, f"{PREFIX}{bad}.jsonl") + "$", 500, times=None))
    event = s3_notification(*messages[0]["Records"], *messages[1]["Records"])
    with pytest.raises(IngestFailedError, match="InternalError"):
        app.lambda_handler(event, lambda_context)
    listing = s3.list_objects_v2(Bucket=OUT, Prefix=PREFIX + folder).get("Contents", [])
    assert [o["Key"] for o in listing] == [f"{PREFIX}{good}.jsonl"]


def test_a_403_for_a_missing_key_is_access_denied_not_a_skip(proxy, s3, lambda_context, caplog) -> None:
    """Without s3:ListBucket, S3 answers a missing key with 403: the handler cannot tell it from a denial, so it
    is access_denied (a batch item failure, DLQ and alarm), never a silent skip; with the 404 that ListBucket
    gives, the same event is a missing_object skip."""
    key = f"f-{uuid.uuid4().hex[:6]}/never-there.txt"
    message = s3_notification(s3_record(key, etag="2" * 32, size=5))
    proxy.rules.append(Rule("GET", path_of(IN, key), 403, times=None, upstream=404))
    with caplog.at_level("INFO"):
        event, ids = sqs_event(message)
        denied = app.lambda_handler(event, lambda_context)
        proxy.rules.clear()
        event, _ = sqs_event(message)
        missing = app.lambda_handler(event, lambda_context)
    assert [f["itemIdentifier"] for f in denied["batchItemFailures"]] == ids and missing == {"batchItemFailures": []}
    codes = [getattr(r, "code", None) for r in caplog.records if getattr(r, "code", None)]
    assert codes == ["access_denied", "missing_object"]
    assert proxy.count("GET", path_of(IN, key), 403) == 1  # the proxy turned moto's 404 into S3's 403 once
