"""Limits under the Lambda runtime emulator: a short soak, memory at the configured maximums, and an SQS
batch that cannot finish before the function's timeout."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import boto3
import pytest

from tests.conftest import ROOT, load_event
from tests.corpus import prose_paragraphs

sys.path.insert(0, str(ROOT / "scripts"))
import soak
from local_invoke import FUNCTION_ENV, Emulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    subprocess.run(["make", "-s", "build-host"], cwd=ROOT, check=True)


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
    budget = int(FUNCTION_ENV["MAX_REQUEST_WINDOWS"])
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


def test_sqs_batch_stops_before_the_timeout_and_reports_the_rest(moto_server: str) -> None:
    """With a 3 s function timeout, objects not started in time are batch item failures; the function
    returns before the timeout, finished objects are complete and unfinished ones have no output."""
    s3 = boto3.client("s3", endpoint_url=moto_server)
    for bucket in ("splade-ingest", "splade-output"):
        s3.create_bucket(Bucket=bucket)
    prose = prose_paragraphs()
    lines = "\n".join(json.dumps({"id": i, "text": prose[i % len(prose)]}) for i in range(400))
    keys = [f"timeout/part-{i}.jsonl" for i in range(6)]
    records: list[dict[str, Any]] = []
    template = load_event("sqs-s3-ingest")["Records"][0]
    for i, key in enumerate(keys):
        s3.put_object(Bucket="splade-ingest", Key=key, Body=lines.encode())
        message = load_event("s3-put")
        message["Records"][0]["s3"]["object"]["key"] = key
        records.append({**template, "messageId": f"m{i}", "body": json.dumps(message)})
    env = {"AWS_ENDPOINT_URL_S3": moto_server, "INGEST_TIME_MARGIN_MS": "2000"}
    with Emulator(env, timeout_s=3) as emulator:
        response = emulator.invoke({"Records": records})
    assert "errorType" not in response, response  # returned on its own, not killed at the timeout
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed and len(failed) < len(keys) + 1
    for i, key in enumerate(keys):
        listing = s3.list_objects_v2(Bucket="splade-output", Prefix=f"vectors/{key}").get("Contents", [])
        if f"m{i}" in failed:
            assert listing == [], key
        else:
            out = s3.get_object(Bucket="splade-output", Key=f"vectors/{key}.jsonl")["Body"].read()
            assert len(out.decode().splitlines()) == 400
