"""Each resource as its AWS service receives it, for every parameter set test_deploy.py translates: the state machine
after DefinitionSubstitutions through asl-validator, the Map's run-time failure tolerance, the EventBridge pattern,
the alarms' metrics, the HTTP API's routing and authorization (CORS preflights), the caps' parameter rules, and the
documented `sam deploy` commands through the pinned SAM CLI up to its network step (devkit/services.py; the rules
and their sources are rows of docs/aws-contract.md)."""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devkit import ROOT
from devkit.deploy import Deployed, parameter_values
from devkit.httpapi import Route, Routes
from devkit.services import alarm_errors, asl_errors, definition, map_settings, pattern_errors
from tests.unit.test_deploy import SETS, deploy, deployed

pytestmark = pytest.mark.slow  # the SAM transform per set, node and the SAM CLI: make test-unit skips it

SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=..."}
PREFLIGHT = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}


@pytest.mark.parametrize("name", sorted(SETS))
def test_the_backfill_definition_is_valid_as_step_functions_receives_it(name: str) -> None:
    """After CloudFormation's text substitution of DefinitionSubstitutions, asl-validator 4.0.0 accepts the
    definition, and the Map reads the tolerated failure percentage as an integer at run time (the Pass state's
    States.StringToJson evaluated), with the execution's prefix still in its input."""
    state_machine = definition(deployed(name))
    assert asl_errors(state_machine) == []
    settings = map_settings(state_machine, {"prefix": "docs/"})
    assert settings["state"] == "ExpandObjects" and settings["input"]["prefix"] == "docs/"
    assert settings["tolerated_failure_percentage"] == 10 and type(settings["tolerated_failure_percentage"]) is int


@pytest.mark.parametrize("value", ["0", "55", "100"])
def test_each_allowed_tolerance_reaches_the_map_as_that_integer(value: str) -> None:
    """BackfillToleratedFailurePercentage=value arrives at the Map as the integer, not as text."""
    state_machine = definition(deploy({"BackfillToleratedFailurePercentage": value}))
    assert asl_errors(state_machine) == []
    assert map_settings(state_machine, {"prefix": ""})["tolerated_failure_percentage"] == int(value)


def test_a_number_substituted_into_the_definition_is_refused() -> None:
    """The contract the definition is built around: the intrinsic SAM turns into a placeholder inside a JSON
    string arrives as text, and Step Functions' schema refuses text where it wants an integer (asl-validator's
    SCHEMA_VALIDATION_FAILED; serverless-application-model#1616). The same definition with the old
    `ToleratedFailurePercentage: !Ref ...` is what the first deploy sent."""
    state_machine = definition(deployed("defaults"))
    mapped = state_machine["States"]["ExpandObjects"]
    del mapped["ToleratedFailurePercentagePath"]
    mapped["ToleratedFailurePercentage"] = "10"  # what "${definition_substitution_N}" becomes
    errors = asl_errors(state_machine)
    assert any("ToleratedFailurePercentage" in e and "integer" in e for e in errors), errors


@pytest.mark.parametrize("value", ["101", "-1", "5.5", "05", "1e1", ""])
def test_a_tolerance_that_is_not_a_whole_percentage_is_refused_before_deploy(value: str) -> None:
    """CloudFormation checks the parameter's AllowedPattern before anything is created."""
    with pytest.raises(ValueError, match="BackfillToleratedFailurePercentage"):
        parameter_values({"BackfillToleratedFailurePercentage": value})


def test_the_map_retries_the_lambda_service_errors_and_lists_only_the_bucket() -> None:
    """Step Functions' best practices: retry Lambda.ServiceException, AWSLambdaException, SdkClientException and
    ClientExecutionTimeoutException; the ItemReader's ListObjectsV2 needs s3:ListBucket on the bucket, nothing
    more (the function reads the objects itself)."""
    d = deployed("defaults")
    task = definition(d)["States"]["ExpandObjects"]["ItemProcessor"]["States"]["ExpandBatch"]
    retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
    assert {
        "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
        "Lambda.ClientExecutionTimeoutException",
    } <= retried  # fmt: skip
    role = next(n for n, r in d.of_type("AWS::IAM::Role").items() if n.startswith("BackfillStateMachineRole"))
    ingest_arn = f"arn:aws:s3:::{d.physical('IngestBucket')}"
    on_ingest = [s for s in d.statements(role) if ingest_arn in json.dumps(s.get("Resource"))]
    assert on_ingest == [
        {"Sid": "ListIngestObjects", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": ingest_arn}
    ]


@pytest.mark.parametrize("name", sorted(SETS))
def test_the_eventbridge_pattern_and_the_alarms_are_what_the_services_accept(name: str) -> None:
    """EventBridge's pattern grammar (arrays of values or one content filter each) and S3's detail types; every
    alarm on a metric its namespace publishes, with the exact dimension set it is published with (our own
    namespace: a metric the function emits, with Powertools' service dimension)."""
    d = deployed(name)
    for rule in d.of_type("AWS::Events::Rule").values():
        assert pattern_errors(rule["Properties"]["EventPattern"]) == []
    namespace = d.values.get("MetricsNamespace", "SpladeExpander")
    for alarm_name, alarm in d.of_type("AWS::CloudWatch::Alarm").items():
        assert alarm_errors(alarm["Properties"], namespace, "splade-expander") == [], alarm_name


def test_the_checks_refuse_what_the_services_refuse() -> None:
    """The pattern and alarm checks fail on the mistakes they guard: a bare string value, an unknown operator, a
    detail type S3 never sends; a Lambda metric by QueueName, a custom metric without its EMF dimension, a
    statistic that is not one of the five."""
    assert pattern_errors({"source": "aws.s3"}) and pattern_errors({"key": [{"endswith": ".txt"}]})
    assert pattern_errors({"source": ["aws.s3"], "detail-type": ["Object Expired"]})
    lambda_by_queue = {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Statistic": "Sum",
                       "Dimensions": [{"Name": "QueueName", "Value": "q"}]}  # fmt: skip
    ours_bare = {"Namespace": "SpladeExpander", "MetricName": "ObjectFailures", "Statistic": "Sum"}
    median = {"Namespace": "AWS/SQS", "MetricName": "ApproximateAgeOfOldestMessage", "Statistic": "Median",
              "Dimensions": [{"Name": "QueueName", "Value": "q"}]}  # fmt: skip
    for alarm in (lambda_by_queue, ours_bare, median):
        assert alarm_errors(alarm, "SpladeExpander", "splade-expander"), alarm


# ------------------------------------------------------------------------------------------------ HTTP API and CORS
def _handler(d: Deployed, logical: str) -> Any:
    """The function's handler as Lambda finds it (module.function), imported from this checkout."""
    module, name = d.resources[logical]["Properties"]["Handler"].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name", sorted(SETS))
def test_routes_authorize_as_api_gateway_does(name: str) -> None:
    """API Gateway's route selection and per-route authorization on the translated API: unsigned calls are
    refused (403) on every route; signed calls reach the API function's alias, unknown paths through $default."""
    routes = Routes(deployed(name))
    for method, path, route in (("POST", "/v1/expand", "POST /v1/expand"), ("GET", "/v1/model", "GET /v1/model"),
                                ("GET", "/nope", "$default"), ("POST", "/v1/expand/extra", "$default")):  # fmt: skip
        assert routes.request(method, path, {}).status == 403
        answer = routes.request(method, path, SIGNED, signed=True)
        assert (answer.route, answer.by, answer.target) == (route, "invoke", "ApiFunctionAliaslive")


def test_a_browser_preflight_reaches_an_answer_only_with_cors() -> None:
    """With AllowedOrigins, an unsigned preflight for any path takes the `OPTIONS /{proxy+}` route (no
    authorization), whose function answers 204 (API Gateway adds the configured CORS headers); signed POSTs still
    reach the API function. Without AllowedOrigins there is no such route: a preflight meets $default's IAM (403)."""
    with_cors = deployed("cors")
    routes = Routes(with_cors)
    assert routes.cors is not None and routes.cors["allowOrigins"] == SETS["cors"]["AllowedOrigins"].split(",")
    for path in ("/v1/expand", "/v1/model", "/v1/expand/"):
        answer = routes.request("OPTIONS", path, PREFLIGHT)
        assert (answer.route, answer.by, answer.target) == ("OPTIONS /{proxy+}", "invoke", "PreflightFunction")
    assert _handler(with_cors, "PreflightFunction")({"requestContext": {}}, None) == {"statusCode": 204}
    assert with_cors.resources["PreflightFunction"]["Properties"]["MemorySize"] == 128
    assert routes.request("POST", "/v1/expand", SIGNED, signed=True).target == "ApiFunctionAliaslive"
    plain = Routes(deployed("defaults"))
    assert plain.cors is None and not [r for r in plain.routes if r.key.startswith("OPTIONS")]
    assert plain.request("OPTIONS", "/v1/expand", PREFLIGHT) == plain.request("OPTIONS", "/v1/expand", {})
    assert plain.request("OPTIONS", "/v1/expand", PREFLIGHT).status == 403
    assert "PreflightFunction" not in deployed("defaults").resources


def test_the_routing_model_follows_api_gateways_priority() -> None:
    """The model itself, on routes built by hand: an exact route beats a greedy one, a longer greedy prefix
    beats a shorter, a method beats ANY, and $default comes last; without a matching route, a preflight is
    answered by API Gateway when CORS is configured and is a 404 otherwise."""
    routes = Routes.__new__(Routes)
    routes.cors = {"allowOrigins": ["*"]}
    routes.routes = [Route("ANY /{proxy+}", "NONE", "any"), Route("GET /v1/{proxy+}", "NONE", "v1get"),
                     Route("ANY /v1/{proxy+}", "NONE", "v1any"), Route("GET /v1/model", "NONE", "exact")]  # fmt: skip
    assert routes.request("GET", "/v1/model", {}).target == "exact"
    assert routes.request("GET", "/v1/other", {}).target == "v1get"
    assert routes.request("POST", "/v1/other", {}).target == "v1any"
    assert routes.request("POST", "/x", {}).target == "any"
    routes.routes = [Route("GET /v1/model", "AWS_IAM", "exact")]
    assert routes.request("OPTIONS", "/v1/model", PREFLIGHT) == routes.request("OPTIONS", "/v1/model", PREFLIGHT)
    assert routes.request("OPTIONS", "/v1/model", PREFLIGHT).status == 204
    routes.cors = None
    assert routes.request("OPTIONS", "/v1/model", PREFLIGHT).status == 404


# ------------------------------------------------------------------------------------------------------------ caps
@pytest.mark.parametrize("value", ["0", "00", "0.5", "1e3", "-2", "010", "100000", " 5"])
def test_a_cap_that_is_not_minus_one_or_a_whole_positive_number_is_refused(value: str) -> None:
    """Both reserved-concurrency caps accept only -1 or 1..99999 written plainly: 0.5 (refused only at function
    creation as a Number), 00 (a zero cap, every call throttled) and 1e3 (1,000) are refused up front."""
    for parameter in ("ApiReservedConcurrency", "IngestReservedConcurrency"):
        with pytest.raises(ValueError, match=parameter):
            parameter_values({parameter: value})


def test_a_cap_reaches_lambda_as_its_number_and_minus_one_as_none() -> None:
    """ReservedConcurrentExecutions is the cap (CloudFormation passes the digits to an Integer property); -1 sets
    none; a public URL without a cap is refused by the Rules at change-set time."""
    capped = deploy({"ApiReservedConcurrency": "25", "IngestReservedConcurrency": "7"})
    assert capped.resources["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"] == "25"
    assert capped.resources["IngestFunction"]["Properties"]["ReservedConcurrentExecutions"] == "7"
    plain = deployed("defaults")
    assert "ReservedConcurrentExecutions" not in plain.resources["ApiFunction"]["Properties"]
    public = {"FunctionUrl": "true", "FunctionUrlAuthType": "NONE"}
    assert deploy({**public, "ApiReservedConcurrency": "-1"}).rule_failures()
    assert deploy({**public, "ApiReservedConcurrency": "1"}).rule_failures() == []


# ---------------------------------------------------------------------------------------- documented sam deploy
def documented_deploy_commands() -> list[str]:
    """Every `sam deploy` command in docs/deploy.md's code blocks (continuation lines joined)."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    commands = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line.split("#")[0].strip() for line in joined.splitlines() if line.startswith("sam deploy")]
    return commands


DUMMY = {"REPO": "123456789012.dkr.ecr.us-east-1.amazonaws.com/splade-expander", "STACK": "splade-expander"}


@pytest.mark.parametrize("command", documented_deploy_commands())
def test_each_documented_sam_deploy_gets_past_sam_validation(command: str, tmp_path: Path) -> None:
    """The pinned SAM CLI, dummy credentials, AWS_ENDPOINT_URL on a closed loopback port: each documented
    `sam deploy` passes SAM's own option and template checks and stops at its first network call (a missing
    option such as --image-repository would stop it before)."""
    if "--guided" in command:
        pytest.skip("--guided asks questions: its answers end in samconfig.toml, which the plain commands use")
    sam = ROOT / "build" / "venv-sam" / "bin" / "sam"
    if "build/template-image.yaml" in command:  # what `make image` writes
        image = subprocess.run([sys.executable, "scripts/template_image.py"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout  # fmt: skip
        (ROOT / "build" / "template-image.yaml").write_text(image)
    argv = [re.sub(r"\$\{?(\w+)\}?", lambda m: DUMMY[m.group(1)], a) for a in shlex.split(command)]
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "SAM_CLI_TELEMETRY": "0", "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        **DUMMY,
    }  # fmt: skip
    done = subprocess.run([str(sam), *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    out = done.stdout + done.stderr
    assert 'Could not connect to the endpoint URL: "http://127.0.0.1:9/' in out, out[-2000:]


def test_the_preflight_function_loads_nothing_of_the_artifact() -> None:
    """Importing the preflight handler in a fresh process loads no model, no numpy and no Powertools: its cold
    start is the runtime's own, at 128 MB."""
    code = (
        "import sys, handler.preflight as p\n"
        "assert p.handler({}, None) == {'statusCode': 204}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'onnxruntime', 'tokenizers', 'aws_lambda_powertools') or m.startswith('handler.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "['handler.preflight']"
