"""Each resource as its AWS service receives it, after CloudFormation: the checks translation cannot make.

``devkit.deploy.Deployed`` gives the template CloudFormation creates; this module checks what each service then
validates on its own:

* **Step Functions**: the state machine definition with ``DefinitionSubstitutions`` applied as CloudFormation
  applies them (plain text substitution of ``${name}``), through asl-validator (npm, pinned in the Makefile), and
  the run-time value the Map's ``ToleratedFailurePercentagePath`` reads (the Pass state's intrinsic evaluated).
* **EventBridge**: the rule's event pattern against the documented pattern grammar and S3's event types.
* **CloudWatch**: each alarm's namespace, metric name, dimensions and statistic against what the service (or our
  own EMF metrics) publishes: an alarm on a metric that never exists stays silent forever.
* **API Gateway HTTP API routing**: devkit/httpapi.py.

Sources are cited where each rule is applied; docs/aws-contract.md lists them with their tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from . import ROOT
from .deploy import Deployed

ASL_VALIDATOR = ROOT / "build" / "node" / "node_modules" / ".bin" / "asl-validator"


# ----------------------------------------------------------------------------------------------- Step Functions
def definition(deployed: Deployed, logical: str = "BackfillStateMachine") -> dict[str, Any]:
    """The state machine definition Step Functions receives: ``DefinitionString`` with each ``${key}`` of
    ``DefinitionSubstitutions`` replaced by its value's text (CloudFormation's substitution, which knows nothing
    of JSON: a number placed inside a JSON string stays a string)."""
    props = deployed.resources[logical]["Properties"]
    text = props["DefinitionString"]
    for key, value in props.get("DefinitionSubstitutions", {}).items():
        text = text.replace("${" + key + "}", str(value))
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def asl_errors(state_machine: dict[str, Any]) -> list[str]:
    """asl-validator's findings for a definition (empty when Step Functions' schema accepts it)."""
    if not ASL_VALIDATOR.is_file():
        raise RuntimeError(f"{ASL_VALIDATOR} is missing: `make asl-validator` installs it (npm)")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(state_machine, fh)
    try:
        done = subprocess.run(
            [str(ASL_VALIDATOR), "--json-path", fh.name], capture_output=True, text=True, check=False, timeout=60
        )
    finally:
        Path(fh.name).unlink()
    if done.returncode == 0:
        return []
    lines = (done.stdout + done.stderr).splitlines()
    return [line.strip() for line in lines if line.strip() and "is invalid:" not in line] or [f"rc {done.returncode}"]


_STRING_TO_JSON = re.compile(r"^States\.StringToJson\('(.*)'\)$")


def _path(document: Any, path: str) -> Any:
    """A JSONPath of plain fields (``$.a.b``) in ``document``; KeyError when a field is missing (States.Runtime)."""
    if path == "$":
        return document
    value = document
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return value


def _parameters(template: Any, state_input: Any) -> Any:
    """A state's ``Parameters`` applied to its input: ``key.$`` fields are JSONPaths or the one intrinsic we use."""
    if isinstance(template, list):
        return [_parameters(v, state_input) for v in template]
    if not isinstance(template, dict):
        return template
    out = {}
    for key, value in template.items():
        if key.endswith(".$"):
            intrinsic = _STRING_TO_JSON.match(value)
            out[key[:-2]] = json.loads(intrinsic.group(1)) if intrinsic else _path(state_input, value)
        else:
            out[key] = _parameters(value, state_input)
    return out


def map_settings(state_machine: dict[str, Any], execution_input: dict[str, Any]) -> dict[str, Any]:
    """Runs the Pass states from ``StartAt`` with ``execution_input`` up to the first Map, as Step Functions would,
    and returns what that Map reads at run time: its state input and its tolerated failure percentage (given or
    read by path). Only what this template uses is modelled: Parameters (paths and States.StringToJson),
    ResultPath of plain fields."""
    states, name, document = state_machine["States"], state_machine["StartAt"], execution_input
    while states[name]["Type"] == "Pass":
        state = states[name]
        result = _parameters(state.get("Parameters", {}), document)
        result_path = state.get("ResultPath", "$")
        if result_path == "$":
            document = result
        else:
            document = json.loads(json.dumps(document))
            *parents, last = result_path.removeprefix("$.").split(".")
            target = document
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = result
        name = state["Next"]
    mapped = states[name]
    tolerated = mapped.get("ToleratedFailurePercentage")
    if "ToleratedFailurePercentagePath" in mapped:
        tolerated = _path(document, mapped["ToleratedFailurePercentagePath"])
    return {"state": name, "input": document, "tolerated_failure_percentage": tolerated}


# ----------------------------------------------------------------------------------------------------- EventBridge
# EventBridge user guide, "Comparison operators for use in event patterns": the content filters.
CONTENT_FILTERS = {"prefix", "suffix", "anything-but", "numeric", "exists", "equals-ignore-case", "wildcard", "cidr"}
# S3 user guide, "Amazon EventBridge event message structure": the detail types S3 sends.
S3_DETAIL_TYPES = {
    "Object Created", "Object Deleted", "Object Restore Initiated", "Object Restore Completed",
    "Object Restore Expired", "Object Tags Added", "Object Tags Deleted", "Object ACL Updated",
    "Object Storage Class Changed", "Object Access Tier Changed",
}  # fmt: skip


def pattern_errors(pattern: dict[str, Any], where: str = "") -> list[str]:
    """What EventBridge refuses in an event pattern (every leaf a non-empty array of values or content filters of
    one known operator each), plus S3 detail types that S3 never sends (a rule that can never match)."""
    errors = []
    for key, value in pattern.items():
        here = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            errors += pattern_errors(value, here)
        elif not isinstance(value, list) or not value:
            errors.append(f"{here}: must be a non-empty array, not {value!r}")
        else:
            for item in value:
                if isinstance(item, dict) and (len(item) != 1 or next(iter(item)) not in CONTENT_FILTERS):
                    errors.append(f"{here}: {item!r} is not one content filter")
                elif isinstance(item, list):
                    errors.append(f"{here}: nested array {item!r}")
    if not where and pattern.get("source") == ["aws.s3"]:
        errors += [
            f"detail-type: S3 never sends {t!r}" for t in pattern.get("detail-type", []) if t not in S3_DETAIL_TYPES
        ]
    return errors


# ------------------------------------------------------------------------------------------------------ CloudWatch
# Each namespace's metrics and the dimensions it publishes them with (Lambda developer guide "Types of metrics for
# Lambda functions"; SQS developer guide "Available CloudWatch metrics for Amazon SQS"; Step Functions developer
# guide "Monitoring Step Functions metrics using CloudWatch": execution metrics by StateMachineArn).
PUBLISHED: dict[str, tuple[set[str], list[set[str]]]] = {
    "AWS/Lambda": (
        {
            "Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions", "DeadLetterErrors",
            "DestinationDeliveryFailures", "RecursiveInvocationsDropped", "AsyncEventsDropped", "AsyncEventAge",
            "AsyncEventsReceived", "IteratorAge", "UnreservedConcurrentExecutions", "ClaimedAccountConcurrency",
        },
        [{"FunctionName"}, {"FunctionName", "Resource"}, {"FunctionName", "ExecutedVersion"}, set()],
    ),
    "AWS/SQS": (
        {
            "ApproximateAgeOfOldestMessage", "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesVisible", "NumberOfEmptyReceives",
            "NumberOfDeduplicatedSentMessages", "NumberOfMessagesDeleted", "NumberOfMessagesReceived",
            "NumberOfMessagesSent", "SentMessageSize",
        },
        [{"QueueName"}],
    ),
    "AWS/States": (
        {
            "ExecutionTime", "ExecutionThrottled", "ExecutionsAborted", "ExecutionsFailed", "ExecutionsStarted",
            "ExecutionsSucceeded", "ExecutionsTimedOut", "ExecutionsRedriven",
        },
        [{"StateMachineArn"}],
    ),
}  # fmt: skip
STATISTICS = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"}


def own_metrics() -> set[str]:
    """The metric names the function emits through Powertools EMF: each ``add_metric(name="...")`` in handler/ and
    the per-status names of ``OUTCOME_METRICS`` (read from the source: importing the handler loads the model)."""
    names: set[str] = set()
    for path in (ROOT / "handler").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'add_metric\(name="([A-Za-z0-9_]+)"', text))
        table = re.search(r"^OUTCOME_METRICS = \{(.*?)^\}", text, re.M | re.S)
        if table:
            names |= set(re.findall(r': "([A-Za-z0-9_]+)"', table.group(1)))
    return names


def alarm_errors(alarm: dict[str, Any], own_namespace: str, service: str) -> list[str]:
    """Why CloudWatch would refuse the alarm or never see its metric: an unknown namespace or metric, dimensions
    the metric is not published with (CloudWatch matches the exact dimension set), a statistic that is not one of
    the five (or ``pNN`` as ExtendedStatistic)."""
    errors, name = [], f"{alarm.get('Namespace')}/{alarm.get('MetricName')}"
    statistic, extended = alarm.get("Statistic"), alarm.get("ExtendedStatistic")
    if (statistic is None) == (extended is None):
        errors.append(f"{name}: exactly one of Statistic and ExtendedStatistic")
    if statistic is not None and statistic not in STATISTICS:
        errors.append(f"{name}: statistic {statistic!r}")
    if extended is not None and not re.fullmatch(r"p(\d{1,2}(\.\d+)?|100)", extended):
        errors.append(f"{name}: extended statistic {extended!r}")
    dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    if alarm.get("Namespace") == own_namespace:  # Powertools EMF: the service dimension, its value the service name
        if alarm.get("MetricName") not in own_metrics():
            errors.append(f"{name}: the function never emits this metric")
        if dimensions != {"service": service}:
            errors.append(f"{name}: dimensions {dimensions} are not the EMF ones ({{'service': {service!r}}})")
        return errors
    if alarm.get("Namespace") not in PUBLISHED:
        return [*errors, f"{name}: namespace not modelled"]
    metrics, dimension_sets = PUBLISHED[alarm["Namespace"]]
    if alarm.get("MetricName") not in metrics:
        errors.append(f"{name}: not a metric of {alarm['Namespace']}")
    if set(dimensions) not in dimension_sets:
        errors.append(f"{name}: dimensions {sorted(dimensions)} are not published")
    return errors
