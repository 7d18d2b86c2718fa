"""What `sam deploy` creates: template.yaml after the SAM transform, for each parameter set users choose and for a
long mixed-case stack name, checked against AWS's documented rules (each test names its rule and source; the list
is docs/aws-contract.md). The translation and evaluation live in devkit/deploy.py."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from devkit.deploy import Deployed, Stack, lint, source_template
from splade_expander.documents import JSONL_SUFFIXES, TEXT_SUFFIXES

pytestmark = pytest.mark.slow  # ~26 s: the SAM transform and cfn-lint for 16 templates; make test-unit skips it

SETS: dict[str, dict[str, str]] = {
    "defaults": {},
    "snapstart": {"EnableSnapStart": "true"},
    "public-url": {"FunctionUrl": "true", "FunctionUrlAuthType": "NONE", "ApiReservedConcurrency": "10"},
    "iam-url": {"FunctionUrl": "true"},
    "tracing": {"EnableTracing": "true"},
    "cors": {"AllowedOrigins": "https://app.example.com,https://admin.example.com"},
    "eventbridge": {"IngestNotifications": "eventbridge"},
    "x86_64": {"Architecture": "x86_64", "ApiMemorySize": "4096", "MaxTexts": "32"},
}
STACKS = {"short": Stack(), "long-mixed-case": Stack(name="Splade-Prod-" + "Search-Team-X" * 8 + "-eu1"[:4])}
assert len(STACKS["long-mixed-case"].name) <= 128  # CloudFormation's longest stack name
MATRIX = [(s, k) for s in SETS for k in STACKS]
SUFFIXES = {*TEXT_SUFFIXES, *JSONL_SUFFIXES, ".gz"}


@cache
def _deploy(overrides: frozenset[tuple[str, str]], stack: str) -> Deployed:
    return Deployed(dict(overrides), STACKS[stack])


def deploy(overrides: dict[str, str], stack: str = "short") -> Deployed:
    """The translated template for these values (each distinct set is translated once per test run)."""
    return _deploy(frozenset(overrides.items()), stack)


def deployed(name: str, stack: str = "short") -> Deployed:
    return deploy(SETS[name], stack)


def alarms(d: Deployed) -> dict[str, Any]:
    return {n: r["Properties"] for n, r in d.of_type("AWS::CloudWatch::Alarm").items()}


@pytest.mark.parametrize(("name", "stack"), MATRIX)
def test_every_parameter_set_translates_and_no_rule_refuses_it(name: str, stack: str) -> None:
    """Each documented parameter set passes the SAM transform and the template's Rules, for both stack names."""
    d = deployed(name, stack)
    assert d.rule_failures() == []
    assert {"ApiFunction", "IngestFunction", "IngestBucket", "OutputBucket"} <= set(d.resources)


def test_cfn_lint_passes_every_parameter_set(tmp_path: Path) -> None:
    """cfn-lint (AWS's resource schemas: types, lengths, enums, circular dependencies) finds nothing in any
    translated set, with that set's values as the parameters' defaults."""
    paths = [deployed(name, stack).write(tmp_path / f"{name}-{stack}.json") for name, stack in MATRIX]
    findings = lint(paths)
    assert findings == {str(p): [] for p in paths}


# --- 1. Function URL --------------------------------------------------------------------------------------------
def url_permissions(d: Deployed) -> list[dict[str, Any]]:
    return [
        r["Properties"] for r in d.of_type("AWS::Lambda::Permission").values() if r["Properties"]["Principal"] == "*"
    ]


def test_a_public_function_url_grants_both_actions_on_the_alias() -> None:
    """Lambda guide, "Control access to Lambda function URLs": since October 2025 a new URL with auth type NONE
    needs lambda:InvokeFunctionUrl (FunctionUrlAuthType NONE) and lambda:InvokeFunction (InvokedViaFunctionUrl
    true) for principal *, on the qualifier the URL serves."""
    d = deployed("public-url")
    (url,) = d.of_type("AWS::Lambda::Url").values()
    assert url["Properties"]["AuthType"] == "NONE" and url["Properties"]["Qualifier"] == "live"
    by_action = {p["Action"]: p for p in url_permissions(d)}
    assert set(by_action) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert by_action["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    assert by_action["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True
    assert "FunctionUrlAuthType" not in by_action["lambda:InvokeFunction"]
    assert {p["FunctionName"] for p in by_action.values()} == {"<ApiFunctionAliaslive>"}


@pytest.mark.parametrize("name", ["defaults", "iam-url", "snapstart"])
def test_without_a_public_url_nothing_is_open_to_everyone(name: str) -> None:
    """Lambda guide, "Control access to Lambda function URLs": with AWS_IAM the caller's own policy must allow
    both actions (docs/deploy.md says so); the function's resource policy grants principal * nothing."""
    d = deployed(name)
    assert url_permissions(d) == []
    urls = d.of_type("AWS::Lambda::Url")
    assert [u["Properties"]["AuthType"] for u in urls.values()] == (["AWS_IAM"] if name == "iam-url" else [])


# --- 10. spending cap on a public URL ---------------------------------------------------------------------------
@pytest.mark.parametrize(("cap", "refused"), [("-1", True), ("1", False), ("10", False)])
def test_a_public_url_without_a_concurrency_cap_is_refused(cap: str, refused: bool) -> None:
    """Lambda guide, "Lambda function URLs" security: a public URL should have reserved concurrency. The template's
    Rules refuse FunctionUrlAuthType=NONE unless ApiReservedConcurrency is positive (the cap is applied)."""
    d = deploy({**SETS["public-url"], "ApiReservedConcurrency": cap})
    failures = d.rule_failures()
    assert bool(failures) is refused
    if refused:
        assert "ApiReservedConcurrency" in failures[0]
    else:
        assert d.resources["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"] == cap
    assert Deployed({"FunctionUrl": "true", "ApiReservedConcurrency": "-1"}).rule_failures() == []  # IAM URL


# --- 2. alarm topic ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SETS))
def test_alarms_notify_a_topic_cloudwatch_can_publish_to(name: str) -> None:
    """SNS guide, "Compatibility between event sources from AWS services and encrypted topics": CloudWatch cannot
    publish to a topic encrypted with the AWS-managed key alias/aws/sns. Every alarm notifies the stack's topic,
    which has no such key."""
    d = deployed(name)
    topic = d.resources["AlarmTopic"]["Properties"]
    assert "KmsMasterKeyId" not in topic  # a customer key would need a key policy for CloudWatch
    assert {json.dumps(a["AlarmActions"]) for a in alarms(d).values()} == {json.dumps(["<AlarmTopic>"])}
    given = Deployed({**SETS[name], "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops"})
    assert "AlarmTopic" not in given.resources
    assert {json.dumps(a["AlarmActions"]) for a in alarms(given).values()} == {
        json.dumps(["arn:aws:sns:us-east-1:123456789012:ops"])
    }


# --- 3. parameter changes reach the `live` alias ----------------------------------------------------------------
# Another valid value for every parameter: a new parameter must be added here, so the test below covers it.
OTHER_VALUE = {
    "Architecture": "x86_64",
    "ApiMemorySize": "4096",
    "ApiTimeout": "10",
    "ApiReservedConcurrency": "5",
    "IngestMemorySize": "1024",
    "IngestTimeout": "300",
    "IngestMaximumConcurrency": "4",
    "IngestReservedConcurrency": "8",
    "FunctionUrl": "true",
    "FunctionUrlAuthType": "NONE",
    "ApiAuth": "apikey",
    "AllowedOrigins": "https://app.example.com",
    "EnableSnapStart": "true",
    "EnableTracing": "true",
    "LogRetentionDays": "7",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops",
    "AlarmEmail": "ops@example.com",
    "IngestNotifications": "eventbridge",
    "SuffixFilters": "false",
    "BackfillToleratedFailurePercentage": "0",
    "MaxTexts": "32",
    "MaxTextChars": "5000",
    "WindowTokens": "512",
    "MaxWindows": "8",
    "MaxRequestWindows": "100",
    "OutputPrefix": "sparse/",
    "OutputFormat": "both",
    "PruneType": "top_k",
    "PruneValue": "64",
    "OutputChunks": "true",
    "OutputDocumentFrequencies": "true",
    "TextField": "body",
    "IdField": "doc_id",
    "MaxObjectBytes": "1000000",
}
# What a published version freezes (Lambda API, PublishVersion: code and the function's configuration);
# concurrency and the function URL belong to the function or alias, not to the version.
VERSIONED = ("MemorySize", "Timeout", "Environment", "SnapStart", "TracingConfig", "Architectures", "Runtime")


def api_config(d: Deployed) -> dict[str, Any]:
    props = d.resources["ApiFunction"]["Properties"]
    return {k: props.get(k) for k in VERSIONED}


def test_every_parameter_has_another_value_to_try() -> None:
    """The table of alternative values covers every template parameter (a new one cannot escape the next test)."""
    assert sorted(OTHER_VALUE) == sorted(source_template()["Parameters"])


@pytest.mark.parametrize("parameter", sorted(OTHER_VALUE))
def test_a_parameter_that_changes_the_api_configuration_publishes_a_new_version(parameter: str) -> None:
    """CloudFormation user guide, AWS::Lambda::Version: Description cannot be updated, so a changed description
    replaces the version (cfn-lint's schema lists it as create-only). SAM's version id hashes the unresolved
    properties, so for each parameter: if its new value changes what a version freezes, the version's logical id
    or its resolved description differs, and the `live` alias moves to a version with the new configuration."""
    overrides = {parameter: OTHER_VALUE[parameter]}
    if parameter in {"FunctionUrlAuthType", "FunctionUrl"}:
        overrides = {**SETS["public-url"], parameter: OTHER_VALUE[parameter]}
    base = deploy({k: v for k, v in overrides.items() if k != parameter})
    changed = deploy(overrides)
    if api_config(base) != api_config(changed):
        assert base.version() != changed.version()
        assert changed.resources["ApiFunctionAliaslive"]["Properties"]["FunctionVersion"] == (
            f"<{changed.version()[0]}.Version>"
        )


def test_the_version_description_is_create_only_and_fits_in_every_case() -> None:
    """AWS::Lambda::Version (cfn-lint's copy of the CloudFormation schema): Description is create-only, at most
    256 characters; with every parameter at its longest allowed value the description still fits."""
    import cfnlint

    schemas = Path(cfnlint.__file__).parent / "data" / "schemas" / "resources"
    (schema,) = (
        s for f in schemas.glob("*.json") if (s := json.loads(f.read_text())).get("typeName") == "AWS::Lambda::Version"
    )
    assert "/properties/Description" in schema["createOnlyProperties"]
    limit = schema["properties"]["Description"]["maxLength"]
    params = source_template()["Parameters"]
    longest = {name: str(p["MaxValue"]) for name, p in params.items() if "MaxValue" in p}
    longest.update({"Architecture": "x86_64", "EnableSnapStart": "false", "EnableTracing": "false"})
    longest["AllowedOrigins"] = "o" * params["AllowedOrigins"]["MaxLength"]
    _, description = Deployed(longest).version()
    assert len(description) <= limit, (len(description), description)


def test_a_code_change_publishes_and_a_repeat_deploy_does_not() -> None:
    """New code (a new CodeUri from `sam package`) gives a new version id; the same code and values give the same
    id and description, so an unchanged redeploy publishes nothing."""
    a = Deployed(code_uri="s3://sam-artifacts/aaaaaaaaaaaa").version()
    assert Deployed(code_uri="s3://sam-artifacts/bbbbbbbbbbbb").version()[0] != a[0]
    assert Deployed(code_uri="s3://sam-artifacts/aaaaaaaaaaaa").version() == a


def test_the_documented_sets_each_have_their_own_version() -> None:
    """Between any two parameter sets of the matrix (and the issue's cases ApiTimeout=10, MaxTexts=32,
    ApiMemorySize=4096) whose versioned configuration differs, the API version's identity differs."""
    cases = [*SETS.values(), {"ApiTimeout": "10"}, {"MaxTexts": "32"}, {"ApiMemorySize": "4096"}]
    seen: dict[str, tuple[str, str]] = {}
    for overrides in cases:
        d = deploy(overrides)
        config = json.dumps(api_config(d), sort_keys=True)
        assert seen.setdefault(config, d.version()) == d.version()  # same configuration, same version
    assert len(set(seen.values())) == len(seen) >= 8


# --- 5. names ---------------------------------------------------------------------------------------------------
S3_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@pytest.mark.parametrize(("name", "stack"), MATRIX)
def test_names_follow_each_services_rules_for_any_stack_name(name: str, stack: str) -> None:
    """S3 user guide, "General purpose bucket naming rules" (3-63 lowercase letters, digits, dots, hyphens);
    Step Functions CreateStateMachine (name <= 80); EventBridge PutRule (name <= 64, [.-_A-Za-z0-9]); CloudWatch
    Logs CreateLogGroup (<= 512, [.-_/#A-Za-z0-9]). The queue policy names the ingest bucket exactly."""
    d = deployed(name, stack)
    for bucket in d.of_type("AWS::S3::Bucket").values():
        if "BucketName" in bucket["Properties"]:
            assert S3_NAME.match(bucket["Properties"]["BucketName"]), bucket["Properties"]["BucketName"]
    for machine in d.of_type("AWS::StepFunctions::StateMachine").values():
        assert len(machine["Properties"]["StateMachineName"]) <= 80
    for rule in d.of_type("AWS::Events::Rule").values():
        assert re.fullmatch(r"[.\-_A-Za-z0-9]{1,64}", rule["Properties"]["Name"])
    for group in d.of_type("AWS::Logs::LogGroup").values():
        if "LogGroupName" in group["Properties"]:
            assert re.fullmatch(r"[.\-_/#A-Za-z0-9]{1,512}", group["Properties"]["LogGroupName"])
    (statement, *_) = d.resources["IngestQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    bucket_arn = f"arn:aws:s3:::{d.resources['IngestBucket']['Properties']['BucketName']}"
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == bucket_arn


def test_the_backfill_role_may_start_its_own_state_machine() -> None:
    """Step Functions Distributed Map (child workflow executions): the role needs states:StartExecution on the
    state machine itself; the name the role grants is the name the state machine gets."""
    d = deployed("defaults", "long-mixed-case")
    (machine,) = d.of_type("AWS::StepFunctions::StateMachine").values()
    name = machine["Properties"]["StateMachineName"]
    (grant,) = (s for s in d.statements("BackfillStateMachineRole") if s.get("Sid") == "RunChildExecutions")
    assert grant["Resource"][0] == f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"


# --- 6. EventBridge and asynchronous failures -------------------------------------------------------------------
def test_eventbridge_notifications_reach_the_queue_and_failures_a_queue_with_an_alarm() -> None:
    """S3 user guide, "Using EventBridge": the bucket must enable EventBridge delivery; EventBridge user guide,
    "Amazon SQS permissions": the queue policy must allow events.amazonaws.com for the rule; undeliverable events
    go to the target's dead-letter queue, which is alarmed. S3 notifications to the queue are off in this mode."""
    d = deployed("eventbridge")
    notifications = d.resources["IngestBucket"]["Properties"]["NotificationConfiguration"]
    assert notifications == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    (rule,) = d.of_type("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"]["bucket"]["name"] == [d.resources["IngestBucket"]["Properties"]["BucketName"]]
    assert set(pattern["detail-type"]) == {"Object Created", "Object Deleted"}
    assert {s["suffix"] for s in pattern["detail"]["object"]["key"]} == SUFFIXES
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == "<IngestQueue.Arn>"
    assert target["DeadLetterConfig"]["Arn"] == "<IngestFailedInvocationsQueue.Arn>"
    rule_arn = f"arn:aws:events:us-east-1:123456789012:rule/{rule['Properties']['Name']}"
    queue_grants = d.resources["IngestQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    events = [s for s in queue_grants if s["Principal"] == {"Service": "events.amazonaws.com"}]
    assert [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in events] == [rule_arn]
    dlq_policy = d.resources["IngestFailedInvocationsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in dlq_policy] == ["<IngestEventRule.Arn>"]
    watched = {a["Dimensions"][0]["Value"] for a in alarms(d).values() if a["Namespace"] == "AWS/SQS"}
    assert "<IngestFailedInvocationsQueue.QueueName>" in watched
    assert Deployed({**SETS["eventbridge"], "SuffixFilters": "false"}).resources["IngestEventRule"]["Properties"][
        "EventPattern"
    ]["detail"] == {"bucket": pattern["detail"]["bucket"]}


def test_sqs_notifications_have_no_rule_and_cover_the_suffixes() -> None:
    """With IngestNotifications=sqs (the default) the bucket notifies the queue directly, per suffix."""
    d = deployed("defaults")
    assert d.of_type("AWS::Events::Rule") == {}
    configs = d.resources["IngestBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert {c["Filter"]["S3Key"]["Rules"][0]["Value"] for c in configs} == SUFFIXES
    assert "EventBridgeConfiguration" not in d.resources["IngestBucket"]["Properties"]["NotificationConfiguration"]


# --- 7. data survives a stack delete ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SETS))
def test_both_buckets_are_retained_on_delete_and_replacement(name: str) -> None:
    """CloudFormation user guide, "DeletionPolicy attribute" and "UpdateReplacePolicy attribute": RetainExceptOnCreate
    keeps the bucket (the user's documents and vectors) when the stack is deleted, and removes it when the stack's
    first create rolls back (still empty then); Retain keeps it when the bucket is replaced."""
    d = deployed(name)
    for bucket in d.of_type("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "RetainExceptOnCreate" and bucket["UpdateReplacePolicy"] == "Retain"
    assert len(d.of_type("AWS::S3::Bucket")) == 2


@pytest.mark.parametrize("name", list(SETS))
def test_old_versions_are_deleted_on_update(name: str) -> None:
    """SAM's resource-attribute docs: AWS::Lambda::Version resources are retained unless VersionDeletionPolicy
    says Delete. Every published version is deleted when the next deploy replaces it (the alias has moved), so no
    old version, and with SnapStart no old snapshot, stays billed."""
    versions = deployed(name).of_type("AWS::Lambda::Version")
    assert versions and all(v.get("DeletionPolicy") == "Delete" for v in versions.values()), versions


@pytest.mark.parametrize("name", list(SETS))
def test_only_the_ingest_function_allows_recursive_loops(name: str) -> None:
    """Lambda guide, "Use Lambda recursive loop detection": the ingest function's continuations are an SQS ->
    function -> same-queue chain, so it (and only it) has RecursiveLoop Allow; both guards that replace the
    detection alarm: RunCapReached (MAX_OBJECT_RUNS) and Lambda's RecursiveInvocationsDropped for it."""
    d = deployed(name)
    loops = {n: r["Properties"].get("RecursiveLoop") for n, r in d.of_type("AWS::Lambda::Function").items()}
    assert loops.pop("IngestFunction") == "Allow" and set(loops.values()) == {None}
    env = d.resources["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert int(env["MAX_OBJECT_RUNS"]) >= 80  # 200 MB at the 60 s timeout, splade-tiny (docs/ingest.md)
    watched = {(a["MetricName"], json.dumps(a["Dimensions"])) for a in alarms(d).values()}
    assert ("RunCapReached", json.dumps([{"Name": "service", "Value": "splade-expander"}])) in watched
    ingest = json.dumps([{"Name": "FunctionName", "Value": d.physical("IngestFunction")}])
    assert ("RecursiveInvocationsDropped", ingest) in watched


# --- 8. least privilege -----------------------------------------------------------------------------------------
def all_statements(d: Deployed) -> list[dict[str, Any]]:
    return [s for role in d.of_type("AWS::IAM::Role") for s in d.statements(role)]


def action_list(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


@pytest.mark.parametrize("name", list(SETS))
def test_xray_permissions_only_with_tracing_on(name: str) -> None:
    """IAM best practice (least privilege): X-Ray write permissions (Lambda guide, "Visualize Lambda function
    invocations using AWS X-Ray") are granted only when tracing is on; no role has a managed policy."""
    d = deployed(name)
    xray = [a for s in all_statements(d) for a in action_list(s) if a.startswith("xray:")]
    assert bool(xray) is (name == "tracing")
    assert all(not r["Properties"].get("ManagedPolicyArns") for r in d.of_type("AWS::IAM::Role").values())
    assert d.resources["ApiFunction"]["Properties"]["TracingConfig"]["Mode"] == (
        "Active" if name == "tracing" else "PassThrough"
    )


def test_the_functions_hold_exactly_what_lambda_needs_on_their_own_resources() -> None:
    """Lambda guide, "Using Lambda with Amazon SQS": the execution role needs sqs:ReceiveMessage, DeleteMessage
    and GetQueueAttributes on the source queue (here on that queue only); "Sending Lambda function logs to
    CloudWatch Logs": CreateLogStream and PutLogEvents on the function's log group; "Adding a destination":
    sqs:SendMessage on the on-failure queue. Each function logs to the group its role may write."""
    d = deployed("defaults")
    grants: dict[str, set[tuple[str, str]]] = {}
    for role in ("ApiFunctionRole", "IngestFunctionRole"):
        grants[role] = {(a, json.dumps(s["Resource"])) for s in d.statements(role) for a in action_list(s)}
    sqs = {(a, r) for a, r in grants["IngestFunctionRole"] if a.startswith("sqs:")}
    assert sqs == {
        ("sqs:ReceiveMessage", '"<IngestQueue.Arn>"'),
        ("sqs:DeleteMessage", '"<IngestQueue.Arn>"'),
        ("sqs:GetQueueAttributes", '"<IngestQueue.Arn>"'),
        ("sqs:SendMessage", '"<IngestQueue.Arn>"'),
        ("sqs:SendMessage", '"<IngestFailedInvocationsQueue.Arn>"'),
    }
    for function, role in (("ApiFunction", "ApiFunctionRole"), ("IngestFunction", "IngestFunctionRole")):
        props = d.resources[function]["Properties"]
        assert props["Role"] == f"<{role}.Arn>"
        group = props["LoggingConfig"]["LogGroup"]
        logs = {(a, r) for a, r in grants[role] if a.startswith("logs:")}
        assert logs == {(a, json.dumps(f"<{group[1:-1]}.Arn>")) for a in ("logs:CreateLogStream", "logs:PutLogEvents")}
    assert grants["ApiFunctionRole"] == {(a, r) for a, r in grants["ApiFunctionRole"] if a.startswith("logs:")}
    wildcard = [s for s in all_statements(d) if s["Resource"] == "*"]
    assert {a for s in wildcard for a in action_list(s)} <= {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }  # Step Functions log delivery is account-level (Step Functions guide, "Logging using CloudWatch Logs")


# --- container images (scripts/template_image.py) ----------------------------------------------------------------
IMAGE_SETS = {name: values for name, values in SETS.items() if name != "snapstart"}


@cache
def _image(overrides: frozenset[tuple[str, str]], stack: str) -> Deployed:
    return Deployed(dict(overrides), STACKS[stack], image=True)


def image(name: str, stack: str = "short", **extra: str) -> Deployed:
    return _image(frozenset({**IMAGE_SETS[name], **extra}.items()), stack)


@pytest.mark.parametrize(("name", "stack"), [(s, k) for s in IMAGE_SETS for k in STACKS])
def test_the_image_template_deploys_the_same_stack_from_an_image(name: str, stack: str) -> None:
    """AWS::Lambda::Function (CloudFormation user guide): with PackageType Image, Code is an ImageUri and Runtime
    and Handler must not be set (Runtime is "required if the deployment package is a .zip file archive"). Each
    parameter set but SnapStart gives the zip stack's resources, with both functions running the image's
    handler.app.lambda_handler and the architecture the image is built for."""
    zipped, imaged = deployed(name, stack), image(name, stack)
    assert imaged.rule_failures() == []

    def types(d: Deployed) -> dict[str, str]:  # a version's logical id ends in a hash of the code
        return {re.sub(r"Version[0-9a-f]{10}$", "Version", n): r["Type"] for n, r in d.resources.items()}

    assert types(imaged) == types(zipped)
    for function in ("ApiFunction", "IngestFunction"):
        props = imaged.resources[function]["Properties"]
        assert props["PackageType"] == "Image" and props["Code"] == {"ImageUri": imaged.values["ImageUri"]}
        assert not {"Runtime", "Handler", "Layers", "SnapStart"} & set(props)
        assert props["ImageConfig"] == {"Command": ["handler.app.lambda_handler"]}
        assert props["Architectures"] == zipped.resources[function]["Properties"]["Architectures"]
        want = {
            k: v
            for k, v in zipped.resources[function]["Properties"].items()
            if k not in {"Code", "Runtime", "Handler", "SnapStart"}
        }
        assert {k: v for k, v in props.items() if k in want} == want


def test_the_image_template_refuses_snapstart() -> None:
    """AWS Lambda developer guide, "Improving startup performance with Lambda SnapStart": SnapStart does not
    support container images. The image template's rule refuses EnableSnapStart=true before anything is created."""
    failures = Deployed({"EnableSnapStart": "true"}, image=True).rule_failures()
    assert failures == [
        "Lambda SnapStart does not support container images: deploy the zip (template.yaml) for SnapStart, "
        "or set EnableSnapStart=false."
    ]


def test_a_new_image_publishes_a_new_version_and_the_same_image_does_not() -> None:
    """A pushed image with a new tag or digest gives the API function a new version behind `live`; the same
    ImageUri and values give the same version id, so an unchanged redeploy publishes nothing."""
    repo = "123456789012.dkr.ecr.us-east-1.amazonaws.com/splade"
    a = Deployed({"ImageUri": f"{repo}:1"}, image=True).version()
    assert Deployed({"ImageUri": f"{repo}@sha256:{'b' * 64}"}, image=True).version()[0] != a[0]
    assert Deployed({"ImageUri": f"{repo}:1"}, image=True).version() == a


def test_cfn_lint_passes_the_image_template(tmp_path: Path) -> None:
    """cfn-lint finds nothing in the translated image template, for every parameter set it accepts."""
    paths = [image(name).write(tmp_path / f"image-{name}.json") for name in IMAGE_SETS]
    assert lint(paths) == {str(p): [] for p in paths}
