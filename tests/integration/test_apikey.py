"""ApiAuth=apikey: the translated template as CloudFormation would create it, and the key check against a local
Secrets Manager with IAM enforced (the API function's role as the template grants it), in process and through the
built artifact under the Lambda runtime emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest

from devkit.aws import ApiKeyWorld
from devkit.deploy import Deployed
from devkit.emulator import Emulator
from devkit.events import LambdaContext, http_event
from handler import app, runtime
from handler.http import apikey

pytestmark = pytest.mark.integration
KEY, NEXT, LAST = "k1-" + "a" * 37, "k2-" + "b" * 37, "k3-" + "c" * 37


def test_apikey_deploys_a_keyed_url_a_generated_secret_and_a_narrow_grant() -> None:
    """With ApiAuth=apikey the stack creates the secret (JSON, its api_key 40 generated characters), the Function
    URL with Lambda's auth off, public invoke permissions, the API function's variable pointing at the secret and a
    grant to read that secret only; outputs name the secret's ARN, never its value; without a spending cap the
    Rules refuse it. With the default (iam), none of it exists."""
    stack = Deployed({"ApiAuth": "apikey", "ApiReservedConcurrency": "5"})
    secret = stack.resources["ApiKeySecret"]["Properties"]
    assert secret["GenerateSecretString"] == {
        "SecretStringTemplate": "{}", "GenerateStringKey": "api_key", "PasswordLength": 40, "ExcludePunctuation": True
    }  # fmt: skip
    assert "SecretString" not in secret
    url = next(r for r in stack.of_type("AWS::Lambda::Url").values())
    assert (
        url["Properties"]["AuthType"] == "NONE"
        and "x-api-key" in url["Properties"].get("Cors", {"AllowHeaders": ["x-api-key"]})["AllowHeaders"]
    )
    public = [
        p["Properties"]
        for p in stack.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "*"
    ]
    assert sorted(p["Action"] for p in public) == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    api = stack.resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api["API_KEY_SECRET_ID"] == "<ApiKeySecret>"
    (read,) = [s for s in stack.statements("ApiFunctionRole") if s.get("Sid") == "ReadApiKey"]
    assert (read["Action"], read["Resource"]) == ("secretsmanager:GetSecretValue", "<ApiKeySecret>")
    outputs = stack.template["Outputs"]
    assert outputs["ApiKeySecretArn"]["Value"] == {"Ref": "ApiKeySecret"}
    assert "SecretString" not in json.dumps(outputs)
    assert Deployed({"ApiAuth": "apikey"}).rule_failures() and not stack.rule_failures()
    default = Deployed()
    assert "ApiKeySecret" not in default.resources and not default.of_type("AWS::Lambda::Url")
    assert default.resources["ApiFunction"]["Properties"]["Environment"]["Variables"]["API_KEY_SECRET_ID"] == ""
    assert not [s for s in default.statements("ApiFunctionRole") if s.get("Sid") == "ReadApiKey"]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiKeyWorld]:
    """The API function in process with its role's credentials and the secret's ARN (caches emptied)."""
    keyed = ApiKeyWorld(KEY)
    for name, value in keyed.function_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, api_key_secret_id=keyed.secret_arn))
    monkeypatch.setattr(apikey, "REFRESH_SECONDS", 0.0)  # a rotation is seen at the next unknown key
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # its credentials are this world's role
    runtime.secrets_client.cache_clear()
    apikey._keys.clear()
    yield keyed
    runtime.secrets_client.cache_clear()
    apikey._keys.clear()
    keyed.close()


def call(key: str | None, source: str = "function_url") -> tuple[int, dict[str, Any]]:
    headers = {"x-api-key": key} if key is not None else {}
    event = http_event({"text": "lung disease"}, source=source, headers=headers)
    response = app.lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_the_key_opens_the_url_and_nothing_else_does(world: ApiKeyWorld, capsys: pytest.CaptureFixture[str]) -> None:
    """The right key is answered; no header is 401 missing_api_key, a wrong key (or another case, or padding) is
    403 invalid_api_key, before any route (an unknown path is refused too); the key never reaches the logs."""
    status, body = call(KEY)
    assert status == 200 and body["data"][0]["indices"]
    assert call(None) == (
        401,
        {"error": {"code": "missing_api_key", "message": call(None)[1]["error"]["message"], "field": "x-api-key"}},
    )
    for wrong in ("nope", KEY.upper(), KEY + " x", KEY[:-1]):
        status, body = call(wrong)
        assert (status, body["error"]["code"], body["error"]["field"]) == (403, "invalid_api_key", "x-api-key"), wrong
    event = http_event({"text": "x"}, source="function_url", path="/v1/secret-route", headers={})
    assert app.lambda_handler(event, LambdaContext())["statusCode"] == 401
    assert KEY not in capsys.readouterr().out


def test_a_rotation_keeps_the_previous_key_and_retires_the_one_before(world: ApiKeyWorld) -> None:
    """After one rotation both the new and the old key are answered (callers move at their pace); after a second
    one the first key is refused while the two latest still work."""
    assert call(KEY)[0] == 200
    world.rotate(NEXT)
    assert (call(NEXT)[0], call(KEY)[0]) == (200, 200)
    world.rotate(LAST)
    assert (call(LAST)[0], call(NEXT)[0], call(KEY)[0]) == (200, 200, 403)


def test_a_key_set_by_hand_as_a_plain_string_is_accepted(world: ApiKeyWorld) -> None:
    """The stack stores {"api_key": ...}; an owner who puts a bare string is answered with that string, and the
    JSON text itself is never a key."""
    world.rotate(NEXT, plain=True)
    assert (call(NEXT)[0], call(KEY)[0]) == (200, 200)
    assert call(json.dumps({"api_key": KEY}))[0] == 403


def test_the_http_api_stays_iam_only(world: ApiKeyWorld) -> None:
    """The key check guards the Function URL; HTTP API events (already SigV4-checked by API Gateway) need no key."""
    assert call(None, source="http_v2")[0] == 200


def test_a_role_without_the_grant_fails_loudly_not_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """IAM matters: without the template's ReadApiKey statement the secret cannot be read, and the request gets a
    500 internal_error (never an open door, never the key in the body)."""
    denied = ApiKeyWorld(KEY, grant=False)
    try:
        for name, value in denied.function_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(runtime, "settings", replace(runtime.settings, api_key_secret_id=denied.secret_arn))
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        runtime.secrets_client.cache_clear()
        apikey._keys.clear()
        status, body = call(KEY)
        assert (status, body["error"]["code"]) == (500, "internal_error") and KEY not in json.dumps(body)
    finally:
        runtime.secrets_client.cache_clear()
        apikey._keys.clear()
        denied.close()


def test_the_built_artifact_checks_the_key_under_the_runtime_emulator() -> None:
    """The zip's trimmed botocore has Secrets Manager: under the real runtime interface, a Function URL request with
    the key is answered and one without is refused, with the key read through the role's credentials."""
    keyed = ApiKeyWorld(KEY)
    try:
        with Emulator(keyed.function_env()) as emu:
            ok = emu.invoke(http_event({"text": "asthma"}, source="function_url", headers={"x-api-key": KEY}))
            refused = emu.invoke(http_event({"text": "asthma"}, source="function_url"))
        assert ok["statusCode"] == 200 and json.loads(ok["body"])["data"][0]["indices"]
        assert (refused["statusCode"], json.loads(refused["body"])["error"]["code"]) == (401, "missing_api_key")
    finally:
        keyed.close()
