"""The built artifact under the real Lambda Runtime Interface Emulator: every sample event, end to end."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit import OUTPUT_BUCKET, OUTPUT_PREFIX, ROOT, SAMPLE_OBJECTS
from devkit.aws import load_template
from devkit.emulator import Emulator
from devkit.events import (
    EXPECTED,
    POWER_TUNING,
    SAMPLE_EVENTS,
    load_event,
    request_options,
    request_texts,
    same_vector,
    seed_sample_objects,
)
from handler import runtime
from handler.ingest import tasks as events
from scripts.cost import ONE_VCPU_MB
from splade_expander.batches import BATCH_DOCS

pytestmark = pytest.mark.integration
EVENTS = SAMPLE_EVENTS
SAMPLE_DOCS = SAMPLE_OBJECTS


@pytest.fixture(scope="module")
def emulator(aws: Any) -> Iterator[Emulator]:
    seed_sample_objects(aws.client("s3"))
    with Emulator(aws.function_env()) as emu:
        yield emu


def test_every_sample_event_has_an_expectation() -> None:
    """Adding a sample event without saying what it must return fails here."""
    assert sorted(p.name for p in EVENTS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", EVENTS, ids=[p.name for p in EVENTS])
def test_sample_event_through_the_emulator(emulator: Emulator, aws: Any, path: Path) -> None:
    """Each sample event gives its documented result under the real runtime interface; an ingest event writes
    the vectors of every object it names (outputs removed first, so nothing is left over from another event)."""
    event = json.loads(path.read_text())
    kind, expected, detail = EXPECTED[path.name]
    s3 = aws.client("s3")
    keys = named_objects(event) if kind == "ingest" else []
    for key in keys:
        s3.delete_object(Bucket=OUTPUT_BUCKET, Key=f"{OUTPUT_PREFIX}{key}.jsonl")
    response = emulator.invoke(event)
    if kind == "http":
        assert response["statusCode"] == expected, response
        body = json.loads(response["body"])
        if expected != 200:
            assert body["error"]["code"] == detail
        elif "expand" in path.name:
            assert_same_vectors(body, event)
    elif kind == "direct":
        if expected is None:
            assert_same_vectors(response, event)
        else:
            assert response["errorType"] == expected
            assert detail in response["errorMessage"]
    else:
        assert "errorType" not in response, response
        assert response.get("batchItemFailures", []) == [] and response.get("failed", []) == []
        if "processed" in response:  # direct S3 / EventBridge / Step Functions: what each object gave
            docs = {k: (len(v.splitlines()) if k.endswith(".jsonl") else 1) for k, v in SAMPLE_DOCS.items()}
            for p in response["processed"]:
                assert (p["status"], p["output"]) == ("written", f"vectors/{p['key']}.jsonl"), p
                assert (p["documents"], p["errors"]) == (docs[p["key"]], 0), p
        assert bool(keys) == (path.name != "sqs-s3-test-event.json")  # the test event names no object
        for key in keys:
            assert_sample_output(s3, key)


def named_objects(event: dict[str, Any]) -> list[str]:
    """The keys of the objects an ingest event names (read with the handler's own event parsing)."""
    if event.get("Records", [{}])[0].get("eventSource") == "aws:sqs":
        return [t.ref.key for r in event["Records"] for t in events.from_message(r["body"])]
    return [t.ref.key for t in events.from_event(event)]


def assert_sample_output(s3: Any, key: str) -> None:
    """The output of a sample object: one line per document, each with the Expander's vector for its text."""
    body = s3.get_object(Bucket=OUTPUT_BUCKET, Key=f"{OUTPUT_PREFIX}{key}.jsonl")["Body"].read().decode()
    raw = SAMPLE_DOCS[key].decode()
    texts = [json.loads(x)["text"] for x in raw.splitlines()] if key.endswith(".jsonl") else [raw]
    lines = [json.loads(x) for x in body.splitlines()]
    assert len(lines) == len(texts), key
    for line, vec in zip(lines, runtime.expander.expand(texts), strict=True):
        assert line["indices"] == vec.indices.tolist(), key
        assert line["values"] == pytest.approx(vec.values.tolist(), abs=1e-6)


def assert_same_vectors(body: dict[str, Any], event: dict[str, Any]) -> None:
    """The response body holds the Expander's vectors for the event's texts and options."""
    options = request_options(event)
    expected = runtime.expander.expand(request_texts(event), **options)
    encoder = runtime.expander.encoder_for(options["kind"], options["query_encoder"])
    assert body["model"] == {**runtime.expander.model_info, "encoder": encoder}
    for item, vec in zip(body["data"], expected, strict=True):
        assert same_vector(item, vec.indices.tolist(), vec.values.tolist()), item


def test_sqs_ingest_writes_the_expected_output_object(emulator: Emulator, aws: Any) -> None:
    """An SQS-wrapped S3 event under the emulator writes vectors to moto_server equal to the Expander's."""
    event = json.loads((ROOT / "events" / "sqs-s3-ingest.json").read_text())
    assert emulator.invoke(event) == {"batchItemFailures": []}
    s3 = aws.client("s3")
    body = s3.get_object(Bucket="splade-output", Key="vectors/docs/copd overview.txt.jsonl")["Body"].read()
    (line,) = [json.loads(x) for x in body.decode().splitlines()]
    (vec,) = runtime.expander.expand([SAMPLE_DOCS["docs/copd overview.txt"].decode()])
    assert line["id"] == "docs/copd overview.txt" and line["indices"] == vec.indices.tolist()
    assert line["values"] == pytest.approx(vec.values.tolist(), abs=1e-6)


def test_the_model_loads_in_the_init_phase_once(emulator: Emulator) -> None:
    """The model loads in the init phase, once: its "model loaded" line is logged exactly once, before the first
    invocation starts (the emulator's INVOKE START), and the one INIT REPORT's duration covers its load time. A
    model loaded lazily on the first invocation logs after INVOKE START; one loaded per invocation, more than once."""
    emulator.invoke({"text": "warm call"})
    emulator.invoke({"text": "another warm call"})
    logs = emulator.logs()
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    loaded = [r for r in records if r.get("message") == "model loaded"]
    assert len(loaded) == 1, loaded
    assert loaded[0]["model_sha256"] == runtime.expander.model_info["sha256"]
    assert logs.index('"message":"model loaded"') < logs.index("INVOKE START(")  # the emulator's first invocation
    inits = emulator.init_durations_ms()
    assert len(inits) == 1 and inits[0] >= loaded[0]["load_ms"] > 0


# ----------------------------------------------------------------------------- AWS Lambda Power Tuning payloads
POWER_TUNING_MB = 512  # the least memory the cost table shows, and ApiMemorySize's MinValue


@pytest.fixture(scope="module")
def api_function() -> Iterator[tuple[Emulator, int]]:
    """The API function as the template deploys it by default (its timeout), at one thread."""
    timeout = int(load_template()["Parameters"]["ApiTimeout"]["Default"])
    with Emulator({"ORT_THREADS": "1"}, timeout_s=timeout, memory_mb=POWER_TUNING_MB) as emu:
        yield emu, timeout


@pytest.mark.parametrize("name", POWER_TUNING)
def test_power_tuning_payload_fits_the_api_function(api_function: tuple[Emulator, int], name: str) -> None:
    """Each Power Tuning payload is the work it names and, invoked directly, stays within the API function's
    limits (MAX_TEXTS, the work budget, 512 MB) and its default timeout even at 512 MB's share of a vCPU."""
    emulator, timeout = api_function
    event = load_event(name)
    emulator.invoke(event)  # warm: Power Tuning's averages leave the cold start out
    start = time.perf_counter()
    response = emulator.invoke(event)
    seconds = time.perf_counter() - start
    assert "errorType" not in response, response
    assert_same_vectors(response, event)
    data = response["data"]
    assert len(data) == len(event["texts"]) <= runtime.settings.max_texts
    assert sum(d["windows"] for d in data) <= runtime.expander.request_windows
    assert seconds * ONE_VCPU_MB / POWER_TUNING_MB < timeout, f"{seconds:.2f} s on one core"
    assert emulator.peak_rss_kb() < POWER_TUNING_MB * 1024
    work = {"power-tuning-batch.json": (BATCH_DOCS, None), "power-tuning-document-256.json": (1, 256)}
    if name == "power-tuning-query.json":
        assert event["kind"] == "query" and data[0]["tokens"] <= 16 and data[0]["windows"] == 1
    else:
        texts, tokens = work[name]
        assert len(data) == texts and tokens in (None, data[0]["tokens"])


BUILD_OUTPUT: list[str] = []


@pytest.fixture(scope="module")
def arm64_artifact() -> Path:
    done = subprocess.run(["make", "-s", "build", "ARCH=arm64"], cwd=ROOT, check=True, capture_output=True, text=True)
    BUILD_OUTPUT.append(done.stdout)
    return ROOT / "build" / "artifact-arm64"


def test_arm64_artifact_holds_only_aarch64_cp313_binaries(arm64_artifact: Path) -> None:
    """Every ELF file in the arm64 build is AArch64, every extension module is cp313 or abi3."""
    elves, machines = [], set()
    for path in arm64_artifact.rglob("*"):
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            header = path.read_bytes()[:20]
            machines.add(int.from_bytes(header[18:20], "little"))  # e_machine: 183 = AArch64, 62 = x86-64
            elves.append(path)
            if ".cpython-" in path.name:
                assert "cpython-313-aarch64" in path.name, path
    assert len(elves) >= 4 and machines == {183}
    assert (arm64_artifact / "model_assets" / "model.onnx").is_file()
    assert (arm64_artifact / "model_assets" / "model.onnx.data").is_file()
    assert not list(arm64_artifact.glob("huggingface_hub*")) and not list(arm64_artifact.glob("sympy*"))
    assert list(arm64_artifact.glob("numpy.libs/*.so*"))  # numpy's shared libraries are never stripped


def test_arm64_artifact_ships_unchecked_hash_bytecode_for_python_313(arm64_artifact: Path) -> None:
    """With a Python 3.13 at build time, every module of the library and the function has a cpython-313 .pyc
    whose header marks it hash-based and unchecked (the zip's fixed dates would invalidate timestamp .pyc); without
    one, the build says the zip ships sources only and it does."""
    pycs = list(arm64_artifact.rglob("*.pyc"))
    if "compiled" not in BUILD_OUTPUT[0]:
        assert "ships no .pyc" in BUILD_OUTPUT[0] and pycs == []
        return
    ours = [arm64_artifact / "splade_expander", arm64_artifact / "handler"]
    modules = sorted(str(p.relative_to(arm64_artifact).with_suffix("")) for d in ours for p in d.rglob("*.py"))
    cached = {
        str(p.parent.parent.relative_to(arm64_artifact) / p.name.split(".")[0]): p
        for d in ours
        for p in d.rglob("__pycache__/*.cpython-313.pyc")
    }
    assert sorted(cached) == modules and len(modules) > 30
    for path in cached.values():
        assert int.from_bytes(path.read_bytes()[4:8], "little") == 0b01  # hash-based, not checked against source
    assert not list((arm64_artifact / "aws_xray_sdk").rglob("*.pyc"))  # imported only with tracing on


def test_the_shipped_bytecode_is_used_without_reading_the_sources(tmp_path: Path) -> None:
    """The host artifact's .pyc are what runs: with a module's source replaced by `raise`, the import still
    gives the compiled module; with the .pyc removed as well, the broken source runs and fails."""
    import shutil
    import sys

    from devkit.emulator import ARTIFACT

    shutil.copytree(ARTIFACT / "splade_expander", tmp_path / "splade_expander")
    (tmp_path / "splade_expander" / "formats.py").write_text('raise RuntimeError("the source was compiled")\n')
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{ARTIFACT}", "PYTHONDONTWRITEBYTECODE": "1"}
    python = [getattr(sys, "_base_executable", sys.executable), "-S", "-c"]  # as the emulator runs it: no site
    code = "import splade_expander.formats as f; print(f.DECIMALS, f.__file__)"
    used = subprocess.run([*python, code], env=env, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert (used.returncode, used.stdout.strip()) == (0, f"6 {tmp_path}/splade_expander/formats.py"), used.stderr
    shutil.rmtree(tmp_path / "splade_expander" / "__pycache__")
    source = subprocess.run([*python, code], env=env, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert source.returncode != 0 and "the source was compiled" in source.stderr


def test_arm64_artifact_sizes_are_within_targets(arm64_artifact: Path) -> None:
    """The arm64 zip is <= 40 MB and its contents <= 130 MB."""
    unzipped = sum(p.stat().st_size for p in arm64_artifact.rglob("*") if p.is_file())
    zipped = (ROOT / "build" / "splade-arm64.zip").stat().st_size
    assert unzipped <= 130e6, unzipped
    assert zipped <= 40e6, zipped


def test_tracing_on_still_serves_requests(moto_server: str) -> None:
    """With tracing on (EnableTracing=true), the X-Ray SDK in the zip loads and requests still succeed."""
    event = json.loads((ROOT / "events" / "http-api-v2-expand.json").read_text())
    with Emulator({"POWERTOOLS_TRACE_DISABLED": "false", "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR"}) as emu:
        response = emu.invoke(event)
    assert response["statusCode"] == 200, response


def test_make_invoke_stops_its_s3_server_when_the_emulator_fails(monkeypatch) -> None:
    """`make invoke` with an ingest event: if the emulator cannot start, the moto_server it started is stopped."""
    from devkit.emulator import LocalS3
    from scripts import local_invoke

    started: list[Any] = []

    class Recorded(LocalS3):
        def __init__(self) -> None:
            super().__init__()
            started.append(self)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("emulator failed to start")

    monkeypatch.setattr(local_invoke, "LocalS3", Recorded)
    monkeypatch.setattr(local_invoke, "Emulator", broken)
    with pytest.raises(RuntimeError, match="emulator failed"):
        local_invoke.main(["--event", str(ROOT / "events" / "sqs-s3-ingest.json")])
    (server,) = started
    assert server.proc.poll() is not None  # exited


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--env", "MAX_TEXTS=abc"], "ValueError: environment variable MAX_TEXTS='abc' is not an integer\n"),
        (["--event", str(ROOT / "events" / "bad-direct-wrong-type.json")], "InvalidRequestError: texts[1] must be"),
    ],
)
def test_make_invoke_reports_function_errors_as_errors(capsys, args: list[str], expected: str) -> None:
    """A bad setting (an init error) and a bad direct request (an invocation error) print the function's
    `errorType: errorMessage` and a one-line explanation, exit 1, and no traceback of the tool."""
    from scripts import local_invoke

    assert local_invoke.main(args) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert ("the function failed in its init phase" in err) is ("MAX_TEXTS" in expected)


@pytest.mark.parametrize("broken", [False, True])
def test_make_invoke_names_a_missing_or_broken_event_file_in_one_usage_line(capsys, tmp_path, broken: bool) -> None:
    """`make invoke EVENT=events/nope.json` (or a file that is not JSON) is a usage error naming the file, with
    the sample events listed, exit 2, and no traceback."""
    from scripts import local_invoke

    event = tmp_path / "nope.json"
    if broken:
        event.write_text("{not json")
    with pytest.raises(SystemExit) as info:
        local_invoke.main(["--event", str(event)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err and str(event) in err
    assert ("is not JSON" if broken else "no event file") in err


def test_make_invoke_serves_a_converted_model_given_as_model_dir(tmp_path) -> None:
    """`make invoke MODEL_DIR=<converted model>` answers with that model (its sha256 in the model block) and its
    vectors; plain `make invoke` keeps serving the bundled splade-tiny."""
    from devkit.pretrained import Spec, write_pretrained
    from splade_convert import cli as convert_cli

    src = write_pretrained(tmp_path / "src", Spec("bert"))
    out = tmp_path / "my-model"
    assert convert_cli.main(["--source", str(src), "--out", str(out), "--manifest"]) == 0
    converted = json.loads((out / "manifest.json").read_text())["model_sha256"]
    shas = {}
    for extra in ([f"MODEL_DIR={out}"], []):
        done = subprocess.run(["make", "-s", "--no-print-directory", "invoke", *extra], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        shas[bool(extra)] = re.findall(r'"sha256": "([0-9a-f]{64})"', done.stdout)
    assert shas[True] == [converted] and shas[False] == [runtime.expander.model_info["sha256"]] != [converted]


def test_a_model_dir_without_a_model_is_one_plain_line(tmp_path) -> None:
    """`make artifact` (what sam build runs) with a MODEL_DIR that holds no model says so in one line, naming the
    directory and `make convert`, without the Makefile's indentation (tabs) inside the message."""
    done = subprocess.run(["make", "-s", "--no-print-directory", "artifact", f"MODEL_DIR={tmp_path}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    (line, *_) = done.stderr.splitlines()
    assert done.returncode != 0 and "\t" not in done.stderr
    assert line.startswith(f"MODEL_DIR={tmp_path} (samconfig.toml model_dir, or MODEL_DIR=) has no model.onnx")
    assert f"make convert PRETRAINED=<dir> OUT={tmp_path}, or name another directory" in line
