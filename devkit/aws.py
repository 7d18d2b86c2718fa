"""A local AWS that is as strict as AWS where it matters: moto_server with IAM enforced.

``AwsWorld`` starts moto_server, creates the buckets and the ingest queue, an admin user for the tests
themselves, and the ingest function's role with the policy statements read from ``template.yaml`` (so a missing
permission in the template fails here as it would in AWS). Then it turns IAM enforcement on
(``/moto-api/reset-auth``, moto's ``INITIAL_NO_AUTH_ACTION_COUNT``). The function runs with the role's
assumed-role credentials (``function_env``); tests use ``client()`` (admin).

moto evaluates identity policies only (Conditions count as DENY, bucket policies are ignored), so the template's
function statements carry no Conditions; bucket policies are checked by template tests.

``drain`` plays the SQS event source mapping, with Lambda's recursive loop detection modelled: each message
belongs to a chain (a message sent during an invocation continues that invocation's chain), and unless the
translated template's ingest function has ``RecursiveLoop: Allow`` the invocation a chain would make past
``RECURSION_LIMIT`` hops never happens (Lambda guide, "Use Lambda recursive loop detection to prevent infinite
loops"; boto/boto3#3899: an SQS -> function -> same queue chain stops after 16 calls).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import yaml

from . import INGEST_BUCKET, OUTPUT_BUCKET, OUTPUT_PREFIX, ROOT
from .servers import MotoServer

ACCOUNT, REGION = "123456789012", "us-east-1"
QUEUE = "splade-ingest-queue"
PRIVATE_BUCKET = "splade-private"  # a bucket the function's role may not read
RECURSION_LIMIT = 16  # invocations Lambda lets one SQS -> function -> SQS chain make (RecursiveLoop: Terminate)


@cache
def ingest_recursive_loop() -> str:
    """The ingest function's ``RecursiveLoop`` as ``sam deploy`` creates it (the translated template, default
    parameters); Lambda's default, ``Terminate``, when the template leaves it out."""
    from .deploy import Deployed

    value: str = Deployed().resources["IngestFunction"]["Properties"].get("RecursiveLoop", "Terminate")
    return value


def create_buckets(s3: Any, *names: str) -> None:
    """Create these buckets (every bucket of the tests and scripts is made here)."""
    for name in names:
        s3.create_bucket(Bucket=name)


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt, ...) as their long forms."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = ROOT / "template.yaml") -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)
    return data


def _names(queue_url: str) -> dict[str, str]:
    return {
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": "splade",
        "OutputPrefix": OUTPUT_PREFIX,
        "IngestBucket": INGEST_BUCKET,
        "OutputBucket": OUTPUT_BUCKET,
        "IngestQueue": queue_url,
        "IngestBucket.Arn": f"arn:aws:s3:::{INGEST_BUCKET}",
        "OutputBucket.Arn": f"arn:aws:s3:::{OUTPUT_BUCKET}",
        "IngestQueue.Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}",
    }


def resolve(value: Any, names: dict[str, str]) -> Any:
    """Ref / GetAtt / Sub of the resources a policy names, with this world's physical names."""
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return names[value["Ref"]]
    if "Fn::GetAtt" in value:
        return names[".".join(value["Fn::GetAtt"])]
    if "Fn::Sub" in value:
        return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], value["Fn::Sub"])
    return {k: resolve(v, names) for k, v in value.items()}


def ingest_statements(template: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The statements of what the ingest function's code does: its role's ``ingest`` policy in the template."""
    role = (template or load_template())["Resources"]["IngestFunctionRole"]["Properties"]
    (policy,) = (p for p in role["Policies"] if p["PolicyName"] == "ingest")
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def ingest_policy(queue_url: str) -> dict[str, Any]:
    """The ingest function's policy document, read from the template's own statements."""
    statements = ingest_statements()
    for statement in statements:
        assert "Condition" not in statement, "moto evaluates Conditions as DENY: keep them off function policies"
    return {"Version": "2012-10-17", "Statement": resolve(statements, _names(queue_url))}


SETUP = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}  # before IAM is enforced


def admin_user(iam: Any) -> dict[str, str]:
    """The tests' own user, allowed everything: its client credentials."""
    iam.create_user(UserName="tests")
    allow_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="tests", PolicyName="all", PolicyDocument=json.dumps(allow_all))
    key = iam.create_access_key(UserName="tests")["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def function_role(
    client: Callable[..., Any], admin: dict[str, str], name: str, policy: dict[str, Any]
) -> dict[str, str]:
    """A function's role with this inline policy, assumed: the environment variables of its credentials."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "*"}],
    }
    iam = client("iam", **admin)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=name, PolicyName="function", PolicyDocument=json.dumps(policy))
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    c = client("sts", **admin).assume_role(RoleArn=role_arn, RoleSessionName="fn")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
            "AWS_SESSION_TOKEN": c["SessionToken"]}  # fmt: skip


def enforce_iam(url: str) -> None:
    """From here on, moto_server authorises every request (``/moto-api/reset-auth``)."""
    request = urllib.request.Request(
        f"{url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


class AwsWorld:
    """moto_server on loopback with IAM enforced, the buckets, the queue, an admin and the function's role."""

    def __init__(self) -> None:
        self.server = MotoServer()
        self.url = self.server.url
        self.dropped: list[str] = []  # message bodies Lambda's recursive loop detection stopped (drain)
        try:
            self._setup()
        except BaseException:
            self.server.close()
            raise

    def _setup(self) -> None:
        self.admin = admin_user(self._raw_client("iam", **SETUP))
        s3 = self._raw_client("s3", **SETUP)
        create_buckets(s3, INGEST_BUCKET, OUTPUT_BUCKET, PRIVATE_BUCKET)
        sqs = self._raw_client("sqs", **SETUP)
        self.queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        self.policy = ingest_policy(self.queue_url)
        self.function_creds = function_role(self._raw_client, self.admin, "splade-ingest", self.policy)
        enforce_iam(self.url)

    def _raw_client(self, service: str, **creds: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **creds)

    def client(self, service: str) -> Any:
        """A client with the tests' own (admin) credentials."""
        return self._raw_client(service, **self.admin)

    def function_client(self, service: str) -> Any:
        """A client with the ingest function's role credentials."""
        c = self.function_creds
        return self._raw_client(
            service,
            aws_access_key_id=c["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=c["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=c["AWS_SESSION_TOKEN"],
        )

    def function_env(self, endpoint: str | None = None) -> dict[str, str]:
        """The environment the function runs with: the role's credentials and the local endpoints."""
        url = endpoint or self.url
        return {
            **self.function_creds,
            "AWS_ENDPOINT_URL_S3": url,
            "AWS_ENDPOINT_URL_SQS": self.url,
            "INGEST_QUEUE_URL": self.queue_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def purge_queue(self) -> None:
        """Delete every visible message (SQS allows one PurgeQueue a minute, so receive and delete)."""
        sqs = self.client("sqs")
        self.dropped.clear()
        while got := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in got:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def drain(
        self, invoke: Callable[[dict[str, Any]], Any], rounds: int = 60, recursive_loop: str | None = None
    ) -> list[Any]:
        """Play the SQS event source mapping, which no emulator has: receive up to 10 messages, invoke the
        function with them as an SQS batch, delete those not reported in batchItemFailures; until the queue is
        empty. Returns the responses, one per invocation.

        Lambda's recursive loop detection is applied (``recursive_loop``: the template's, unless given): a
        message whose chain already made RECURSION_LIMIT invocations is not delivered under ``Terminate``; it
        is removed from the queue and kept in ``self.dropped``. A message's chain is the invocation it was
        sent during (its SentTimestamp within that invocation's time; drain invokes one batch at a time), or a
        new chain for one sent from outside (a test, S3)."""
        from .events import sqs_event

        allow = (recursive_loop or ingest_recursive_loop()) == "Allow"
        sqs = self.client("sqs")
        responses: list[Any] = []
        hops: dict[str, int] = {}  # message id -> invocations its chain made before it
        windows: list[tuple[float, float, int]] = []  # each invocation: start ms, end ms, its chain's hop count
        for _ in range(rounds):
            got = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["SentTimestamp"]
            ).get("Messages", [])
            if not got:
                return responses
            for message in got:
                sent = int(message["Attributes"]["SentTimestamp"])
                chain = [hop for start, end, hop in windows if start - 1 < sent <= end + 1]
                hops.setdefault(message["MessageId"], chain[-1] if chain else 0)
            stopped = [m for m in got if hops[m["MessageId"]] >= RECURSION_LIMIT and not allow]
            for message in stopped:
                self.dropped.append(message["Body"])
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            got = [m for m in got if m not in stopped]
            if not got:
                continue
            event, ids = sqs_event(*(m["Body"] for m in got))
            start = time.time() * 1000
            response = invoke(event)
            windows.append((start, time.time() * 1000, 1 + max(hops[m["MessageId"]] for m in got)))
            responses.append(response)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            for message, message_id in zip(got, ids, strict=True):
                if message_id not in failed:
                    sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        raise AssertionError(f"the queue still has messages after {rounds} invocations")

    def close(self) -> None:
        self.server.close()


SECRET_NAME = "splade-api-key"


class ApiKeyWorld:
    """moto_server with IAM enforced, an API key secret, and the API function's role granted what the translated
    template grants it under ApiAuth=apikey (``grant=False``: without the ReadApiKey statement).

    moto authorises Secrets Manager calls against resource ``*`` (unlike S3's), so the statement's Action is
    checked here with its Resource widened; its Resource (the secret's ARN) is checked on the translated template
    (tests/integration/test_apikey.py)."""

    def __init__(self, key: str, *, grant: bool = True) -> None:
        from .deploy import Deployed

        self.server = MotoServer()
        self.url = self.server.url
        try:
            self.admin = admin_user(self._client("iam", **SETUP))
            secrets = self._client("secretsmanager", **self.admin)
            self.secret_arn: str = secrets.create_secret(Name=SECRET_NAME, SecretString=stack_secret(key))["ARN"]
            stack = Deployed({"ApiAuth": "apikey", "ApiReservedConcurrency": "5"})
            (read,) = [s for s in stack.statements("ApiFunctionRole") if s.get("Sid") == "ReadApiKey"]
            assert read["Resource"] == "<ApiKeySecret>", read  # the stack's own secret (its ARN once created)
            other = {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}  # a policy needs one
            policy = {"Version": "2012-10-17", "Statement": [{**read, "Resource": "*"} if grant else other]}
            self.function_creds = function_role(self._client, self.admin, "splade-api", policy)
            enforce_iam(self.url)
        except BaseException:
            self.server.close()
            raise

    def _client(self, service: str, **creds: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **creds)

    def rotate(self, key: str, *, plain: bool = False) -> None:
        """A new key: it becomes AWSCURRENT, the current one AWSPREVIOUS, and the previous one is retired.
        ``plain``: stored as the bare string (a key set by hand) instead of the stack's JSON."""
        value = key if plain else stack_secret(key)
        self._client("secretsmanager", **self.admin).put_secret_value(SecretId=self.secret_arn, SecretString=value)

    def secret(self) -> dict[str, str]:
        """The secret's current JSON, read as the admin (what an OpenSearch Service connector's role reads)."""
        value = self._client("secretsmanager", **self.admin).get_secret_value(SecretId=self.secret_arn)
        return dict(json.loads(value["SecretString"]))

    def function_env(self) -> dict[str, str]:
        """The API function's environment: its role's credentials, the local Secrets Manager, the secret."""
        return {
            **self.function_creds, "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.url, "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION, "API_KEY_SECRET_ID": self.secret_arn,  # as the template sets it: !Ref, the ARN
        }  # fmt: skip

    def close(self) -> None:
        self.server.close()


def stack_secret(key: str) -> str:
    """The secret string the template's GenerateSecretString makes (SecretStringTemplate "{}", key api_key)."""
    return json.dumps({"api_key": key})


def ingest_object(s3: Any, key: str, body: bytes, **settings: Any) -> dict[str, list[dict[str, Any]]]:
    """Put ``body`` at ``key`` in the ingest bucket and run its SQS event through the in-process handler, with
    ``settings`` (Settings fields, e.g. ``output_format="both"``) in place of the runtime's for that one run.
    Returns output suffix -> parsed lines, for each output the run wrote."""
    from dataclasses import replace

    from handler import app, runtime

    from .events import LambdaContext, put_object, sqs_event

    saved = runtime.settings
    runtime.settings = replace(saved, **settings)
    try:
        event, _ = sqs_event(put_object(s3, key, body))
        assert app.lambda_handler(event, LambdaContext())["batchItemFailures"] == []
    finally:
        runtime.settings = saved
    outputs = {}
    for suffix in (".jsonl", ".errors.jsonl", ".chunks.jsonl"):
        try:
            text = s3.get_object(Bucket=OUTPUT_BUCKET, Key=f"{OUTPUT_PREFIX}{key}{suffix}")["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            continue
        outputs[suffix] = [json.loads(line) for line in text.splitlines()]
    return outputs


class Interleave:
    """A boto3 client that lets another writer slip in: right after the first ``operation`` call whose Key is
    ``key`` returns, ``then()`` runs (a concurrent run publishing, a user deleting). Everything else passes through
    to the real client unchanged."""

    def __init__(self, client: Any, operation: str, key: str, then: Any) -> None:
        self._client, self._operation, self._key, self._then = client, operation, key, then
        self.fired = False

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if name != self._operation:
            return call

        def interleaved(**kwargs: Any) -> Any:
            result = call(**kwargs)
            if not self.fired and kwargs.get("Key") == self._key:
                self.fired = True
                self._then()
            return result

        return interleaved
