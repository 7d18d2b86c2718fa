"""A Signature Version 4 verifier written from AWS's specification, not from botocore's signer (a bug shared with
the client's signer would otherwise pass): the IAM user guide, "Create a signed AWS API request" (canonical
request, string to sign, signing key, signature) and "Elements of an AWS API request signature". Checked against
AWS's published SigV4 test suite (tests/data/sigv4/, tests/unit/test_sigv4.py).

    canonical request = method \\n canonical URI \\n canonical query \\n canonical headers \\n signed headers \\n
                        hex(sha256(payload))
    string to sign    = "AWS4-HMAC-SHA256" \\n amz-date \\n scope \\n hex(sha256(canonical request))
    signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")

URI: every byte but the unreserved ``A-Za-z0-9-._~`` percent-encoded (upper-case hex), ``/`` kept; with
normalization, empty and ``.`` segments dropped and ``..`` resolved (services other than S3). Services other than
S3 encode the path as sent once more ("each path segment URI-encoded twice"): the test suite's paths are raw text
and encode once, a path received on the wire is already encoded once. Query: each name and value decoded, then
encoded as above, sorted by name then value, ``name=value`` joined by ``&``. Headers: names lower-cased, values
trimmed with inner runs of spaces made one, repeated headers joined by ``,``, sorted by name.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
MAX_SKEW_SECONDS = 15 * 60  # a request dated further than this from the service's clock is refused
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request"
    r"\s*,\s*SignedHeaders=(?P<signed>[a-z0-9;!#$%&'*+.^_`|~-]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


class SignatureError(Exception):
    """Why a request is refused: API Gateway answers 403 with this message."""


def uri_encode(data: bytes, keep_slash: bool) -> str:
    return "".join(chr(b) if b in UNRESERVED or (keep_slash and b == 0x2F) else f"%{b:02X}" for b in data)


def canonical_uri(path: str, *, normalize: bool = True) -> str:
    """``path`` as the spec canonicalizes it, encoded once: a path received on the wire (already percent-encoded)
    thus gets the double encoding of services other than S3."""
    if normalize:
        trailing = path.endswith("/") and path not in ("", "/")
        resolved = posixpath.normpath("/" + path.lstrip("/")) if path else "/"
        path = re.sub(r"/{2,}", "/", resolved)
        if trailing and not path.endswith("/"):
            path += "/"
    return uri_encode(path.encode("utf-8"), keep_slash=True) if path else "/"


def canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((uri_encode(unquote_to_bytes(name), False), uri_encode(unquote_to_bytes(value), False)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def canonical_headers(headers: list[tuple[str, str]], signed: list[str]) -> str:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.strip().lower(), []).append(re.sub(r"\s+", " ", value.strip()))
    missing = [h for h in signed if h not in values]
    if missing:
        raise SignatureError(f"signed header {missing[0]} is not in the request")
    return "".join(f"{h}:{','.join(values[h])}\n" for h in signed)


def canonical_request(  # noqa: PLR0917  # the six parts of the spec's canonical request, in its order
    method: str, path: str, query: str, headers: list[tuple[str, str]], signed: list[str], payload_hash: str, *,
    normalize: bool = True,
) -> str:  # fmt: skip
    return "\n".join([
        method.upper(), canonical_uri(path, normalize=normalize), canonical_query(query),
        canonical_headers(headers, signed), ";".join(signed), payload_hash,
    ])  # fmt: skip


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(secret: str, amz_date: str, region: str, service: str, canonical: str) -> str:
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    key = signing_key(secret, amz_date[:8], region, service)
    return hmac.new(key, string_to_sign(amz_date, scope, canonical).encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verified:
    """Who signed an accepted request."""

    access_key: str
    region: str
    service: str


def verify(
    method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes, *,
    secrets: dict[str, str], region: str, service: str, tokens: dict[str, str] | None = None,
    now: datetime | None = None, normalize: bool = True,
) -> Verified:  # fmt: skip
    """The request's Authorization header against ``secrets`` (access key -> secret key): the scope's region and
    service, the date within MAX_SKEW_SECONDS of ``now`` (None: not checked), the session token where the key has
    one (``tokens``), then the signature. SignatureError says why not."""
    lower = [(n.lower(), v) for n, v in headers]
    found = dict(lower)
    match = _AUTH.match(found.get("authorization", "").strip())
    if match is None:
        raise SignatureError(
            "Missing Authentication Token" if "authorization" not in found else "malformed Authorization"
        )
    key, signed = match["key"], match["signed"].split(";")
    if key not in secrets:
        raise SignatureError("The security token included in the request is invalid.")
    if (match["region"], match["service"]) != (region, service):
        raise SignatureError(f"Credential should be scoped to a valid region and service {service}")
    if signed != sorted(signed) or "host" not in signed:
        raise SignatureError("SignedHeaders must be sorted and include host")
    amz_date = found.get("x-amz-date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date) or amz_date[:8] != match["date"]:
        raise SignatureError("Date in Credential scope does not match x-amz-date")
    if now is not None:
        stamp = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if abs((now - stamp).total_seconds()) > MAX_SKEW_SECONDS:
            raise SignatureError("Signature expired")
    if tokens and key in tokens and found.get("x-amz-security-token") != tokens[key]:
        raise SignatureError("The security token included in the request is invalid.")
    payload = found.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    canonical = canonical_request(method, path, query, lower, signed, payload, normalize=normalize)
    expected = signature(secrets[key], amz_date, region, service, canonical)
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureError("The request signature we calculated does not match the signature you provided.")
    return Verified(key, region, service)
