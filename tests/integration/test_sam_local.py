"""The real `sam local` under Docker: `sam build` output on the offline Lambda images, x86_64 and arm64 (qemu)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config

from devkit import OUTPUT_BUCKET, ROOT, SAMPLE_OBJECTS
from devkit.events import (
    EXPECTED,
    SAMPLE_EVENTS,
    function_for,
    load_event,
    request_options,
    request_texts,
    same_vector,
    seed_sample_objects,
)
from devkit.sam import ARCHES, DnsSink, GatewayRelay, env_file, require_docker, sam_invoke, sam_service
from handler import runtime

pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.fixture(scope="module")
def container_s3(aws: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's IAM-enforced moto_server (loopback) seeded with the sample objects, reachable from
    containers through the bridge gateway relay; yields the `--env-vars` file that points the functions at it.
    The containers get the ingest role's credentials (devkit/sam.py); no continuation queue here."""
    require_docker()
    seed_sample_objects(aws.client("s3"))
    relay = GatewayRelay(int(aws.url.rsplit(":", 1)[1]))
    path = tmp_path_factory.mktemp("sam") / "env.json"
    yield env_file(
        path, S3_ENDPOINT_URL=relay.url, OUTPUT_BUCKET=OUTPUT_BUCKET, AWS_MAX_ATTEMPTS="2", INGEST_QUEUE_URL=""
    )
    relay.close()


def expected_vectors(texts: list[str], top_k: int | None = 16, **options: Any) -> list[tuple[list[int], list[float]]]:
    vectors = runtime.expander.expand(texts, top_k=top_k, **options)
    return [(v.indices.tolist(), v.values.tolist()) for v in vectors]


def event_vectors(name: str) -> list[tuple[list[int], list[float]]]:
    """What the Expander gives for the texts and options of sample expand event ``name``."""
    event = load_event(name)
    return expected_vectors(request_texts(event), **request_options(event))


def assert_response(name: str, response: Any, function_error: str | None = None) -> None:
    """The documented result of sample event ``name`` (see devkit/events.py)."""
    kind, expected, detail = EXPECTED[name]
    if kind == "http":
        assert function_error is None, response
        assert response["statusCode"] == expected, response
        body = json.loads(response["body"])
        if expected != 200:
            assert body["error"]["code"] == detail
        elif "expand" in name:
            for item, (indices, values) in zip(body["data"], event_vectors(name), strict=True):
                assert same_vector(item, indices, values), item
    elif kind == "direct":
        if expected is None:
            assert function_error is None, response
            for item, (indices, values) in zip(response["data"], event_vectors(name), strict=True):
                assert same_vector(item, indices, values), item
        else:
            assert response["errorType"] == expected and detail in response["errorMessage"], response
    else:
        assert function_error is None and "errorType" not in response, response
        assert response.get("batchItemFailures", []) == [] and response.get("failed", []) == [], response


# ------------------------------------------------------------------ sam local start-lambda (x86_64, warm)


@pytest.fixture(scope="module")
def lambda_client(container_s3: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    log = tmp_path_factory.mktemp("sam") / "start-lambda.log"
    with sam_service("start-lambda", "x86_64", container_s3, log) as url:
        config = Config(read_timeout=300, retries={"max_attempts": 0})
        yield boto3.client("lambda", endpoint_url=url, region_name="us-east-1", config=config)


@pytest.mark.parametrize("path", SAMPLE_EVENTS, ids=[p.name for p in SAMPLE_EVENTS])
def test_sample_event_through_start_lambda(lambda_client: Any, path: Path) -> None:
    """Each sample event, sent with boto3's Lambda client to a warm `sam local start-lambda`, gives its result."""
    result = lambda_client.invoke(FunctionName=function_for(path.name), Payload=path.read_bytes())
    response = json.loads(result["Payload"].read())
    function_error = result.get("FunctionError") or ("Unhandled" if "errorType" in response else None)
    assert_response(path.name, response, function_error)


def test_direct_error_reaches_the_boto3_caller(lambda_client: Any) -> None:
    """A bad direct invocation is an error to the SDK caller: errorType InvalidRequestError, not a 200 body."""
    result = lambda_client.invoke(FunctionName="ApiFunction", Payload=json.dumps({"texts": [1]}).encode())
    payload = json.loads(result["Payload"].read())
    assert payload["errorType"] == "InvalidRequestError" and "texts[0]" in payload["errorMessage"]
    # SAM's emulator leaves the X-Amz-Function-Error header out; when it is present it must say so.
    assert result.get("FunctionError") in (None, "Unhandled")


def test_ingest_through_start_lambda_writes_vectors(lambda_client: Any, aws: Any) -> None:
    """The SQS sample event makes the container read moto_server through the gateway and write the vectors."""
    result = lambda_client.invoke(
        FunctionName="IngestFunction", Payload=(ROOT / "events/sqs-s3-ingest.json").read_bytes()
    )
    assert json.loads(result["Payload"].read()) == {"batchItemFailures": []}
    s3 = aws.client("s3")
    body = s3.get_object(Bucket=OUTPUT_BUCKET, Key="vectors/docs/copd overview.txt.jsonl")["Body"].read()
    (line,) = [json.loads(x) for x in body.decode().splitlines()]
    ((indices, values),) = expected_vectors([SAMPLE_OBJECTS["docs/copd overview.txt"].decode()], top_k=None)
    assert line["id"] == "docs/copd overview.txt" and line["indices"] == indices
    assert line["values"] == pytest.approx(values, abs=1e-5)


# ------------------------------------------------------------------ sam local invoke, both architectures

INVOKED = ("http-api-v2-expand.json", "direct-expand.json", "sqs-s3-ingest.json")
_responses: dict[tuple[str, str], Any] = {}


def invoke_once(arch: str, name: str, env_vars: Path) -> Any:
    """`sam local invoke` of one sample event on one architecture, run once per session (arm64 is emulated)."""
    require_docker(arch)
    if (arch, name) not in _responses:
        _responses[arch, name], _ = sam_invoke(function_for(name), ROOT / "events" / name, arch, env_vars)
    return _responses[arch, name]


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", INVOKED)
def test_sam_local_invoke(container_s3: Path, arch: str, name: str) -> None:
    """`sam local invoke` of the built function, one HTTP, direct and ingest event each, on both architectures."""
    assert_response(name, invoke_once(arch, name, container_s3))


def test_arm64_agrees_with_x86_64(container_s3: Path) -> None:
    """The same texts on x86_64 and arm64 (qemu) give vectors with cosine >= 0.9999; prints the max abs diff."""
    dense: dict[str, list[np.ndarray]] = {}
    for arch in ARCHES:
        rows = []
        for item in invoke_once(arch, "direct-expand.json", container_s3)["data"]:
            row = np.zeros(30522, dtype=np.float64)
            row[item["indices"]] = item["values"]
            rows.append(row)
        dense[arch] = rows
    worst_cos, worst_diff = 1.0, 0.0
    for a, b in zip(dense["x86_64"], dense["arm64"], strict=True):
        worst_cos = min(worst_cos, float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
        worst_diff = max(worst_diff, float(np.abs(a - b).max()))
    print(f"\nx86_64 vs arm64: min cosine {worst_cos:.7f}, max abs diff {worst_diff:.2e}")
    assert worst_cos >= 0.9999


# ------------------------------------------------------------------ sam local start-api (x86_64)


@pytest.fixture(scope="module")
def api_url(container_s3: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("sam") / "start-api.log"
    with sam_service("start-api", "x86_64", container_s3, log) as url:
        yield url


def call(url: str, method: str, path: str, body: bytes | None = None, content_type: str = "application/json") -> Any:
    request = urllib.request.Request(url + path, data=body, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def test_start_api_expand(api_url: str) -> None:
    """POST /v1/expand through `sam local start-api` returns the Expander's vectors."""
    texts = ["Chronic obstructive pulmonary disease (COPD) is a progressive lung disease."]
    status, _, body = call(api_url, "POST", "/v1/expand", json.dumps({"texts": texts, "top_k": 16}).encode())
    assert status == 200
    ((indices, values),) = expected_vectors(texts)
    assert body["data"][0]["indices"] == indices and body["data"][0]["values"] == pytest.approx(values, abs=1e-5)


def test_start_api_get_routes(api_url: str) -> None:
    """GET /v1/model and GET /v1/openapi.json answer through the local API."""
    status, _, model = call(api_url, "GET", "/v1/model")
    assert status == 200 and model["model"] == {**runtime.expander.model_info, "encoders": runtime.expander.encoders}
    assert model["limits"]["max_texts"] == 64
    status, _, doc = call(api_url, "GET", "/v1/openapi.json")
    assert status == 200 and "/v1/expand" in doc["paths"]


TOO_MANY = json.dumps({"texts": ["x"] * 65}).encode()
ERROR_CASES = {
    "bad-json": ("POST", "/v1/expand", b'{"texts": [', "application/json", 400, "invalid_request"),
    "wrong-type": ("POST", "/v1/expand", b'{"texts": [1]}', "application/json", 400, "invalid_request"),
    "unknown-field": ("POST", "/v1/expand", b'{"texts": ["a"], "topk": 3}', "application/json", 400, "invalid_request"),
    "too-many-texts": ("POST", "/v1/expand", TOO_MANY, "application/json", 413, "too_many_texts"),
    "media-type": (
        "POST",
        "/v1/expand",
        b"texts=a",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
    ),
    "unknown-route": ("GET", "/v2/nothing", None, "application/json", 404, "not_found"),
    "wrong-method": ("GET", "/v1/expand", None, "application/json", 405, "method_not_allowed"),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_start_api_errors(api_url: str, case: str) -> None:
    """Bad requests get the documented status and error code through the local API (the $default route)."""
    method, path, body, content_type, status, code = ERROR_CASES[case]
    got_status, headers, got = call(api_url, method, path, body, content_type)
    assert (got_status, got["error"]["code"]) == (status, code), got
    if status == 405:
        assert headers.get("Allow") == "POST"


def test_start_api_trailing_slash(api_url: str) -> None:
    """POST /v1/expand/ is POST /v1/expand."""
    status, _, body = call(api_url, "POST", "/v1/expand/", json.dumps({"text": "lung disease"}).encode())
    assert status == 200 and body["usage"]["texts"] == 1


# ------------------------------------------------------------------ the local targets never reach AWS
def test_make_sam_invoke_of_an_ingest_event_never_looks_up_an_aws_endpoint() -> None:
    """`make sam-invoke EVENT=events/sqs-s3-ingest.json ARCH=x86_64`, as the docs show it: the containers resolve
    names only at the bridge gateway (scripts/docker_host.sh), where a sink records every name asked. The
    function reads and writes a local S3 the target starts (its vectors are printed), and no name under
    amazonaws.com is ever looked up; before, the target sent the function to s3.amazonaws.com (no local S3), got
    EndpointConnectionError, and still exited 0."""
    require_docker("x86_64")
    sink = DnsSink()
    try:
        done = subprocess.run(
            ["make", "--no-print-directory", "sam-invoke", "EVENT=events/sqs-s3-ingest.json", "ARCH=x86_64"],
            cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
    finally:
        sink.close()
    assert done.returncode == 0, done.stderr[-3000:]
    assert [n for n in sink.names if n.endswith("amazonaws.com")] == [], sink.names
    response, _, written = done.stdout.partition(f"--- s3://{OUTPUT_BUCKET}/vectors/docs/copd overview.txt.jsonl\n")
    assert json.loads(response.strip().splitlines()[-1]) == {"batchItemFailures": []}
    (line,) = [json.loads(x) for x in written.splitlines()[:1]]
    (vec,) = runtime.expander.expand([SAMPLE_OBJECTS["docs/copd overview.txt"].decode()])
    assert line["id"] == "docs/copd overview.txt" and line["indices"] == vec.indices.tolist()
