"""The artifact records what it was built for (build.json) and the function refuses a mismatch at init, before a
compiled library fails with an ELF error; it ships an AWS SDK that has S3's conditional writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devkit import ROOT
from handler import artifact, runtime

HOST_ARTIFACT = ROOT / "build" / "artifact-host"


def record(tmp_path: Path, architecture: str, python: str = "3.13") -> Path:
    path = tmp_path / "build.json"
    path.write_text(json.dumps({"architecture": architecture, "python": python, "model_dir": "m", "model_sha256": "s"}))
    return path


@pytest.mark.parametrize(("built", "machine"), [("arm64", "aarch64"), ("x86_64", "x86_64"), ("host", "aarch64")])
def test_an_artifact_for_the_machine_it_runs_on_passes(tmp_path: Path, built: str, machine: str) -> None:
    """arm64 on aarch64, x86_64 on x86_64, and the host build anywhere are accepted; the record is returned."""
    checked = artifact.check(record(tmp_path, built), machine=machine, python="3.13")
    assert checked is not None and checked["architecture"] == built


@pytest.mark.parametrize(
    ("built", "machine", "running"), [("arm64", "x86_64", "x86_64"), ("x86_64", "aarch64", "arm64")]
)
def test_an_artifact_for_the_other_architecture_fails_naming_both(
    tmp_path: Path, built: str, machine: str, running: str
) -> None:
    """The init fails with a message naming the built and the running architecture and where to set it."""
    with pytest.raises(RuntimeError) as info:
        artifact.check(record(tmp_path, built), machine=machine, python="3.13")
    message = str(info.value)
    assert f"built for {built}, but the function runs on {running}" in message
    assert f"Architecture={running}" in message and "samconfig.toml" in message


def test_an_artifact_for_another_python_fails(tmp_path: Path) -> None:
    """A build for Python 3.13 refuses to start under another Python, naming both."""
    with pytest.raises(RuntimeError, match=r"built for Python 3\.13, but the runtime is Python 3\.12"):
        artifact.check(record(tmp_path, "arm64"), machine="aarch64", python="3.12")


def test_a_source_checkout_has_no_record() -> None:
    """Without build.json (running from the repository) nothing is checked."""
    assert artifact.check(ROOT / "no-such-build.json") is None


def test_the_host_artifact_records_itself_and_its_model() -> None:
    """make build-host writes build.json with the host build and the bundled model's sha256."""
    built = json.loads((HOST_ARTIFACT / "build.json").read_text())
    manifest = json.loads((ROOT / "model_assets" / "manifest.json").read_text())
    assert built["architecture"] == "host" and built["model_sha256"] == manifest["model_sha256"]


def test_the_shipped_sdk_has_s3_conditional_writes() -> None:
    """S3 user guide, "Add preconditions to S3 operations with conditional requests": the function writes with
    If-None-Match / If-Match on PutObject and CompleteMultipartUpload (botocore >= 1.35.69). The artifact's own
    botocore (imported from the artifact, as /var/task comes first on Lambda's path) has those members, and keeps
    only the models the function calls (build_artifact.BOTOCORE_SERVICES: s3, sqs, sts, secretsmanager)."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); import botocore, botocore.session\n"
        "m = botocore.session.get_session().get_service_model('s3')\n"
        "names = ('PutObject', 'CompleteMultipartUpload')\n"
        "ops = {o: sorted(m.operation_model(o).input_shape.members) for o in names}\n"
        "print(json.dumps({'file': botocore.__file__, 'ops': ops, "
        "'services': botocore.session.get_session().get_available_services()}))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(HOST_ARTIFACT)], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    assert found["file"].startswith(str(HOST_ARTIFACT))
    for members in found["ops"].values():
        assert {"IfMatch", "IfNoneMatch"} <= set(members)
    assert sorted(found["services"]) == ["s3", "secretsmanager", "sqs", "sts"]


def test_the_ingest_function_logs_its_sdk_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first S3 client logs the boto3 and botocore versions it runs with (read after the first deploy)."""
    import botocore

    from handler import telemetry

    logged: list[tuple[str, dict[str, str]]] = []
    monkeypatch.setattr(telemetry.logger, "info", lambda message, extra: logged.append((message, extra)))
    runtime.s3_client.cache_clear()
    try:
        runtime.s3_client()
    finally:
        runtime.s3_client.cache_clear()
    ((message, extra),) = logged
    assert message == "AWS SDK" and extra["botocore"] == botocore.__version__
    assert extra["from"] == botocore.__file__
