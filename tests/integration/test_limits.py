"""Limits under the Lambda runtime emulator: a short soak, memory at the configured maximums, and hostile
objects. (Objects that cannot finish before the timeout are driven by a countdown, not the clock, in
test_ingest.py.)"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pytest

from devkit import MODEL_DIR
from devkit.corpus import prose_paragraphs
from devkit.emulator import FUNCTION_ENV, Emulator
from devkit.events import load_event, put_object, sqs_event
from scripts import soak

pytestmark = pytest.mark.integration


def test_short_soak_has_no_unexpected_answer_and_no_memory_growth() -> None:
    """100 mixed valid/invalid invocations through one emulator: all as expected, one init, RSS flat."""
    report = soak.run(100, progress=False)
    assert report["unexpected"] == []
    assert report["inits"] == 1
    assert report["growth_mb"] < soak.GROWTH_LIMIT_MB, report


def test_requests_at_the_maximums_stay_under_400_mb() -> None:
    """MAX_TEXTS texts of MAX_TEXT_CHARS characters in both formats is refused by the work budget (413
    too_much_work, after tokenizing 1.28 M characters); the largest prose request within the budget is served.
    Peak RSS over both stays <= 400 MB."""
    max_texts, max_chars = int(FUNCTION_ENV["MAX_TEXTS"]), int(FUNCTION_ENV["MAX_TEXT_CHARS"])
    budget = (
        int(FUNCTION_ENV["MAX_REQUEST_WINDOWS"])
        or json.loads((MODEL_DIR / "manifest.json").read_text())["max_request_windows"]
    )
    words = " ".join(prose_paragraphs()).split()
    step = len(words) // max_texts
    texts = []
    for i in range(max_texts):
        text = " ".join(words[i * step :] + words[: i * step])[:max_chars]  # a different rotation each
        texts.append(text[: text.rfind(" ")] if len(text) == max_chars else text)
    assert all(max_chars - 30 <= len(t) <= max_chars for t in texts)
    event = load_event("http-api-v2-expand")
    with Emulator() as emulator:
        event["body"], event["isBase64Encoded"] = json.dumps({"texts": texts, "format": "both"}), False
        refused = emulator.invoke(event)
        event["body"] = json.dumps({"texts": [t[:2800] for t in texts], "format": "both"})
        served = emulator.invoke(event)
        peak_mb = emulator.peak_rss_kb() / 1024
    assert refused["statusCode"] == 413 and json.loads(refused["body"])["error"]["code"] == "too_much_work"
    assert served["statusCode"] == 200
    body = json.loads(served["body"])
    assert len(body["data"]) == max_texts and 128 <= sum(d["windows"] for d in body["data"]) <= budget
    assert peak_mb <= 400, peak_mb
    print(f"peak RSS at the maximum requests: {peak_mb:.0f} MB")


def gzip_stream(chunk: bytes, count: int) -> bytes:
    """``chunk`` repeated ``count`` times, gzipped without ever holding the inflated bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as gz:
        for _ in range(count):
            gz.write(chunk)
    return buffer.getvalue()


def test_hostile_objects_keep_ingest_under_300_mb(aws: Any) -> None:
    """At the default MAX_OBJECT_BYTES (200 MB): a ~600-byte gzip of 300,000 bad lines, one 50 MB line and a
    gzip bomb (inflating past the limit) each end acknowledged with their records, and the runtime's peak RSS
    stays <= 300 MB."""
    s3 = aws.client("s3")
    objects = {
        "hostile/all-bad.jsonl.gz": gzip_stream(b"{\n" * 1000, 300),
        "hostile/one-line.jsonl.gz": gzip_stream(b"x" * 1_000_000, 50),
        "hostile/bomb.jsonl.gz": gzip_stream(b"\0" * 1_000_000, 210),
    }
    assert len(objects["hostile/all-bad.jsonl.gz"]) < 2_000 and len(objects["hostile/bomb.jsonl.gz"]) < 500_000
    event, _ = sqs_event(*(put_object(s3, key, body) for key, body in objects.items()))
    with Emulator(aws.function_env()) as emulator:
        assert emulator.invoke(event) == {"batchItemFailures": []}
        peak_mb = emulator.peak_rss_kb() / 1024

    def errors(key: str) -> list[dict[str, Any]]:
        body = s3.get_object(Bucket="splade-output", Key=f"vectors/{key}.errors.jsonl")["Body"].read()
        return [json.loads(line) for line in body.splitlines()]

    bad = errors("hostile/all-bad.jsonl.gz")
    assert len(bad) == 1001 and bad[-1] == {"code": "more_errors", "count": 299_000}
    assert [e["code"] for e in errors("hostile/one-line.jsonl.gz")] == ["line_too_long"]
    assert [e["code"] for e in errors("hostile/bomb.jsonl.gz")] == ["object_too_large"]
    assert peak_mb <= 300, peak_mb
    print(f"peak RSS over the hostile objects: {peak_mb:.0f} MB")
