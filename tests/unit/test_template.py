"""template.yaml against the AWS rules no emulator checks: queue timing, redrive, IAM, filters, alarms, backfill."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.aws import ingest_statements, load_template
from splade_expander.documents import JSONL_SUFFIXES, TEXT_SUFFIXES

T = load_template()
R = T["Resources"]
P = T["Parameters"]
BATCHING_WINDOW = R["IngestFunction"]["Properties"]["Events"]["IngestQueue"]["Properties"][
    "MaximumBatchingWindowInSeconds"
]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


@pytest.mark.parametrize("timeout", P["IngestTimeout"]["AllowedValues"])
def test_visibility_timeout_is_six_times_the_ingest_timeout_plus_the_window(timeout: int) -> None:
    """For every allowed IngestTimeout, the queue's visibility timeout is >= 6x it plus the batching window."""
    assert R["IngestQueue"]["Properties"]["VisibilityTimeout"] == {
        "Fn::FindInMap": ["QueueVisibility", {"Ref": "IngestTimeout"}, "Seconds"]
    }
    seconds = T["Mappings"]["QueueVisibility"][str(timeout)]["Seconds"]
    assert seconds >= 6 * timeout + BATCHING_WINDOW and seconds <= 43_200  # SQS's maximum is 12 h


def test_every_mapping_row_is_an_allowed_timeout() -> None:
    """The mapping has a row for each allowed value and no other (a new value cannot miss its visibility)."""
    assert sorted(map(int, T["Mappings"]["QueueVisibility"])) == sorted(P["IngestTimeout"]["AllowedValues"])


def test_redrive_after_at_least_five_receives() -> None:
    """maxReceiveCount >= 5, as AWS's SQS-with-Lambda guidance recommends."""
    assert R["IngestQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] >= 5


def test_list_bucket_is_granted_on_both_buckets() -> None:
    """s3:ListBucket on the ingest bucket (a missing key is 404, not 403) and on the output bucket (HEAD of an
    absent output is 404)."""
    listed = {str(s["Resource"]) for s in ingest_statements() if "s3:ListBucket" in actions(s)}
    assert listed == {str({"Fn::GetAtt": ["IngestBucket", "Arn"]}), str({"Fn::GetAtt": ["OutputBucket", "Arn"]})}


def test_function_writes_only_below_the_output_prefix_and_without_conditions() -> None:
    """Every write action is scoped to ${OutputBucket.Arn}/${OutputPrefix}*; no statement has a Condition (moto
    would deny it, and the tests run these statements under IAM enforcement)."""
    for statement in ingest_statements():
        assert "Condition" not in statement
        if {"s3:PutObject", "s3:DeleteObject"} & set(actions(statement)):
            assert statement["Resource"] == {"Fn::Sub": "${OutputBucket.Arn}/${OutputPrefix}*"}


def test_buckets_deny_insecure_transport() -> None:
    """Both bucket policies deny every request without TLS (checked here: moto ignores bucket policies)."""
    for name in ("IngestBucketPolicy", "OutputBucketPolicy"):
        (statement,) = R[name]["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_notifications_filter_the_documented_suffixes_for_creates_and_deletes() -> None:
    """One notification per documented suffix and event type (creates, deletes and lifecycle expirations, which S3
    sends as their own type); SuffixFilters=false delivers every key."""
    by_eventbridge = R["IngestBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]["Fn::If"]
    assert by_eventbridge[:2] == ["UseEventBridge", {"Ref": "AWS::NoValue"}]
    configs = by_eventbridge[2]["Fn::If"]
    assert configs[0] == "UseSuffixFilters"
    pairs = {(c["Event"], c["Filter"]["S3Key"]["Rules"][0]["Value"]) for c in configs[1]}
    suffixes = {*TEXT_SUFFIXES, *JSONL_SUFFIXES, ".gz"}
    events = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:LifecycleExpiration:*")
    assert pairs == {(e, s) for e in events for s in suffixes}
    assert len(configs[1]) == len(pairs)
    assert [c["Event"] for c in configs[2]] == list(events)
    assert all("Filter" not in c for c in configs[2])


def test_async_invocations_fail_to_a_queue_of_their_own() -> None:
    """Direct S3 / EventBridge invokes: retries bounded, failures to their own queue (not the ingest DLQ)."""
    config = R["IngestFunction"]["Properties"]["EventInvokeConfig"]
    assert 0 <= config["MaximumRetryAttempts"] <= 2
    destination = config["DestinationConfig"]["OnFailure"]
    assert destination == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["IngestFailedInvocationsQueue", "Arn"]}}


def test_queue_trigger_has_maximum_concurrency_and_partial_batch_responses() -> None:
    """The SQS event source's MaximumConcurrency is a parameter; failures are reported per message."""
    props = R["IngestFunction"]["Properties"]["Events"]["IngestQueue"]["Properties"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "IngestMaximumConcurrency"}}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert P["IngestMaximumConcurrency"]["MinValue"] == 2  # Lambda's lower bound


def test_continuations_have_a_queue_and_permission() -> None:
    """The ingest function knows its queue (INGEST_QUEUE_URL) and may send to it."""
    env = R["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["INGEST_QUEUE_URL"] == {"Ref": "IngestQueue"}
    sends = [s for s in ingest_statements() if "sqs:SendMessage" in actions(s)]
    assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": ["IngestQueue", "Arn"]}]


def test_alarms_notify_a_topic_and_cover_every_failure_that_needs_a_person() -> None:
    """A topic is created unless one is given (optional e-mail); DLQ depth, failed async invocations, queue age,
    transient object failures, throttles and backfill failures are alarmed; permanent failures are not."""
    assert R["AlarmTopic"]["Condition"] == "CreateAlarmTopic"
    assert R["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    alarms = {name: r["Properties"] for name, r in R.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    metrics = {(a["Namespace"], a["MetricName"]) for a in alarms.values()}
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("SpladeExpander", "ObjectFailures"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/States", "ExecutionsFailed"),
    } <= metrics
    assert ("SpladeExpander", "PermanentObjectFailures") not in metrics
    topic = [{"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}]
    assert all(a["AlarmActions"] == topic for a in alarms.values())


def test_backfill_tolerates_failures_reports_and_logs() -> None:
    """The backfill tolerates a share of failed batches (default above 0), writes a result report, logs."""
    definition = R["BackfillStateMachine"]["Properties"]["Definition"]["States"]["ExpandObjects"]
    assert definition["ToleratedFailurePercentagePath"] == "$.settings.toleratedFailurePercentage"
    assert int(P["BackfillToleratedFailurePercentage"]["Default"]) > 0  # its delivery: tests/unit/test_services.py
    assert definition["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    logging = R["BackfillStateMachine"]["Properties"]["Logging"]
    assert logging["Level"] in ("ERROR", "ALL") and logging["Destinations"]
