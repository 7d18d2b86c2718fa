"""ApiAuth=apikey: callers that cannot sign SigV4 (Elasticsearch's and OpenSearch's HTTP connectors, plain clients)
reach the Function URL with the key in the ``x-api-key`` header; the function checks it before any route.

The key is the ``api_key`` of API_KEY_SECRET_ID's JSON (Secrets Manager; the stack generates
``{"api_key": ...}``, the shape an Amazon OpenSearch Service connector reads), or the whole secret string when it
is not a JSON object with that key (a key set by hand). Both the ``AWSCURRENT`` and the
``AWSPREVIOUS`` version are accepted, so a rotation never refuses a caller that still sends the old key; a key
retired by a second rotation is refused. The values are read on the first keyed request of a process (boto3 and
the Secrets Manager call stay out of the init phase and off the IAM-signed HTTP API) and kept CACHE_SECONDS; a key
that matches neither re-reads them once (at most every REFRESH_SECONDS), so a key rotated a moment ago is known.
Every comparison runs over all accepted keys in constant time (hmac.compare_digest). The key never appears in a
log line, a metric, an error body or a template output.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from splade_expander.errors import ApiKeyInvalidError, ApiKeyMissingError, SpladeError

from .. import runtime

HEADER = "x-api-key"
STAGES = ("AWSCURRENT", "AWSPREVIOUS")
CACHE_SECONDS = 300.0
REFRESH_SECONDS = 10.0


def read_keys(secret_id: str) -> list[bytes]:
    """The secret's current and previous values (a secret never rotated has no previous one)."""
    client = runtime.secrets_client()
    keys = []
    for stage in STAGES:
        try:
            value = client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        except client.exceptions.ResourceNotFoundException:
            if stage == "AWSCURRENT":
                raise
            continue
        keys.append(key_of(str(value.get("SecretString", ""))).encode())
    return [k for k in keys if k]


def key_of(secret_string: str) -> str:
    """The key a secret value holds: its JSON's ``api_key``, else the whole (stripped) string."""
    try:
        parsed = json.loads(secret_string)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("api_key"), str):
        return str(parsed["api_key"]).strip()
    return secret_string.strip()


class ApiKeys:
    """The accepted keys of one secret, cached; ``valid`` compares in constant time over all of them."""

    def __init__(self, secret_id: str, read: Callable[[str], list[bytes]] = read_keys) -> None:
        self.secret_id, self._read = secret_id, read
        self._keys: list[bytes] = []
        self._read_at = -float("inf")

    def _current(self, refresh: bool = False) -> list[bytes]:
        age = time.monotonic() - self._read_at
        if age > CACHE_SECONDS or (refresh and age > REFRESH_SECONDS):
            self._keys, self._read_at = self._read(self.secret_id), time.monotonic()
        return self._keys

    def valid(self, presented: str) -> bool:
        given = presented.encode()
        if _matches(given, self._current()):
            return True
        return _matches(given, self._current(refresh=True))


def _matches(given: bytes, keys: list[bytes]) -> bool:
    found = False
    for key in keys:  # every key compared, whichever matches: the time does not depend on which one does
        found |= hmac.compare_digest(given, key)
    return found


_keys: dict[str, ApiKeys] = {}


def refusal(event: dict[str, Any]) -> SpladeError | None:
    """Why a Function URL request is refused (no key: 401; a key that is not accepted: 403), or None."""
    secret_id = runtime.settings.api_key_secret_id
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    presented = headers.get(HEADER)
    if not presented:
        return ApiKeyMissingError(f"send the API key in the {HEADER} header (ApiAuth=apikey)", field=HEADER)
    keys = _keys.setdefault(secret_id, ApiKeys(secret_id))
    if not keys.valid(str(presented)):
        return ApiKeyInvalidError(f"the {HEADER} header holds no accepted key (a wrong or retired key)", field=HEADER)
    return None
