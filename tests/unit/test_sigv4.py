"""devkit/sigv4.py, the SigV4 verifier the client tests' API shim uses, against AWS's published test suite
(tests/data/sigv4/): for every case it builds the suite's canonical request, string to sign and signature, and it
accepts the suite's signed request; a changed byte, another key, scope or an old date is refused."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devkit import ROOT, sigv4

SUITE = ROOT / "tests" / "data" / "sigv4"
CASES = sorted(p.name for p in SUITE.iterdir() if p.is_dir())


def parse(text: str) -> tuple[str, str, str, list[tuple[str, str]], bytes]:
    """A suite request file: request line, headers (continuation lines joined), blank line, body."""
    head, _, body = text.partition("\n\n")
    first, *lines = head.split("\n")
    method, rest = first.split(" ", 1)
    path, _, query = rest.rsplit(" ", 1)[0].partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + "\n" + line)
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return method, path, query, headers, body.encode()


def read(case: str, name: str) -> str:
    return (SUITE / case / name).read_text(encoding="utf-8")


def context(case: str) -> dict[str, Any]:
    return dict(json.loads(read(case, "context.json")))


def test_the_suite_is_complete() -> None:
    """All 38 header-signing cases of the suite are here, each with its five files."""
    assert len(CASES) == 38 and "get-vanilla" in CASES and "post-x-www-form-urlencoded" in CASES
    for case in CASES:
        assert {p.name for p in (SUITE / case).iterdir()} >= {"context.json", "header-signed-request.txt"}, case


@pytest.mark.parametrize("case", CASES)
def test_canonical_request_string_to_sign_and_signature_match_the_suite(case: str) -> None:
    """From the signed request and the signed-header list the suite gives: the canonical request, the string to
    sign and the signature equal the suite's, byte for byte."""
    ctx = context(case)
    method, path, query, headers, body = parse(read(case, "header-signed-request.txt"))
    expected = read(case, "header-canonical-request.txt")
    signed = expected.split("\n")[-2].split(";")
    payload = dict((n.lower(), v) for n, v in headers).get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    canonical = sigv4.canonical_request(method, path, query, headers, signed, payload, normalize=ctx["normalize"])
    assert canonical == expected
    amz_date = datetime.fromisoformat(ctx["timestamp"].replace("Z", "+00:00")).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{ctx['region']}/{ctx['service']}/aws4_request"
    assert sigv4.string_to_sign(amz_date, scope, canonical) == read(case, "header-string-to-sign.txt")
    secret = ctx["credentials"]["secret_access_key"]
    assert sigv4.signature(secret, amz_date, ctx["region"], ctx["service"], canonical) == read(
        case, "header-signature.txt"
    )


def verify_case(case: str, text: str | None = None, **overrides: object) -> sigv4.Verified:
    ctx = context(case)
    method, path, query, headers, body = parse(text if text is not None else read(case, "header-signed-request.txt"))
    creds = ctx["credentials"]
    token = creds.get("token") if not ctx.get("omit_session_token") else None
    kwargs: dict[str, Any] = {
        "secrets": {creds["access_key_id"]: creds["secret_access_key"]}, "region": ctx["region"],
        "service": ctx["service"], "tokens": {creds["access_key_id"]: token} if token else None,
        "now": datetime(2015, 8, 30, 12, 40, tzinfo=UTC), "normalize": ctx["normalize"],
    }  # fmt: skip
    kwargs.update(overrides)
    return sigv4.verify(method, path, query, headers, body, **kwargs)


@pytest.mark.parametrize("case", CASES)
def test_every_signed_request_of_the_suite_is_accepted(case: str) -> None:
    """The verifier accepts each suite request as signed (its own Authorization header)."""
    assert verify_case(case).access_key == "AKIDEXAMPLE"


def test_tampering_another_key_scope_or_date_is_refused() -> None:
    """One changed header value, path or body byte breaks the signature; an unknown key, another service or region,
    a date 16 minutes off, or no Authorization header each get their own refusal."""
    signed = read("post-x-www-form-urlencoded", "header-signed-request.txt")
    with pytest.raises(sigv4.SignatureError, match="does not match"):
        verify_case("post-x-www-form-urlencoded", signed.replace("Param1=value1", "Param1=value2").replace(
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            hashlib.sha256(b"Param1=value2").hexdigest()))  # fmt: skip
    vanilla = read("get-vanilla", "header-signed-request.txt")
    with pytest.raises(sigv4.SignatureError, match="does not match"):
        verify_case("get-vanilla", vanilla.replace("GET / ", "GET /x "))
    with pytest.raises(sigv4.SignatureError, match="does not match"):
        verify_case("get-vanilla", vanilla.replace("Host:example.amazonaws.com", "Host:example.amazonaws.org"))
    with pytest.raises(sigv4.SignatureError, match="security token"):
        verify_case("get-vanilla", secrets={"AKIDOTHER": "x"})
    with pytest.raises(sigv4.SignatureError, match="scoped"):
        verify_case("get-vanilla", service="execute-api")
    with pytest.raises(sigv4.SignatureError, match="expired"):
        verify_case("get-vanilla", now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC) + timedelta(minutes=16))
    with pytest.raises(sigv4.SignatureError, match="Missing Authentication Token"):
        verify_case("get-vanilla", vanilla.replace("Authorization:", "X-Nope:"))
    with pytest.raises(sigv4.SignatureError, match="security token"):
        verify_case("get-vanilla-with-session-token", tokens={"AKIDEXAMPLE": "another-token"})


def test_paths_are_encoded_once_more_as_received() -> None:
    """A wire path already percent-encoded is encoded again (services other than S3 encode twice)."""
    assert sigv4.canonical_uri("/example%20space/") == "/example%2520space/"
    assert sigv4.canonical_uri("/v1/expand") == "/v1/expand"
