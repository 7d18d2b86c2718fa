"""How a request is authorized: SigV4 (``execute-api`` for the HTTP API, ``lambda`` for a Function URL with IAM
auth) through botocore's signer and the default credential chain, the API key (``ApiAuth=apikey``), or nothing."""

from __future__ import annotations

import re
from typing import Any, Protocol
from urllib.parse import urlsplit

from .errors import ConfigurationError

API_KEY_HEADER = "x-api-key"
_EXECUTE_API = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
_FUNCTION_URL = re.compile(r"^[a-z0-9]+\.lambda-url\.([a-z0-9-]+)\.on\.aws$")


class Auth(Protocol):
    def headers(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """The headers to add to this exact request."""
        ...


class NoAuth:
    def headers(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        return {}


class ApiKey:
    def __init__(self, key: str) -> None:
        if not key:
            raise ConfigurationError("an empty API key")
        self._key = key

    def headers(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        return {API_KEY_HEADER: self._key}

    def __repr__(self) -> str:
        return "ApiKey(***)"


def service_and_region(url: str) -> tuple[str | None, str | None]:
    """``execute-api`` or ``lambda`` and the region, read from an API Gateway or Function URL host."""
    host = (urlsplit(url).hostname or "").lower()
    if m := _EXECUTE_API.match(host):
        return "execute-api", m.group(1)
    if m := _FUNCTION_URL.match(host):
        return "lambda", m.group(1)
    return None, None


class SigV4:
    """Signs each request with botocore's SigV4 signer; credentials from ``credentials`` (a botocore Credentials)
    or the default chain (environment, profile, SSO, container or instance role), refreshed as botocore refreshes
    them. ``service``/``region``: read from the URL's host when it is AWS's; otherwise (a custom domain name)
    ``execute-api`` and the configured region (AWS_REGION, AWS_DEFAULT_REGION or the profile's)."""

    def __init__(
        self, url: str, *, service: str | None = None, region: str | None = None, credentials: Any = None,
        session: Any = None,
    ) -> None:  # fmt: skip
        try:
            import botocore.auth
            import botocore.awsrequest
            import botocore.session
        except ImportError:  # pragma: no cover - the client extra brings it
            raise ConfigurationError("SigV4 needs botocore: pip install 'splade-expander[client]'") from None
        found_service, found_region = service_and_region(url)
        botocore_session = session or botocore.session.get_session()
        self.service = service or found_service or "execute-api"
        self.region = region or found_region or botocore_session.get_config_variable("region")
        if not self.region:
            raise ConfigurationError(f"cannot tell the SigV4 region from {url}: pass region= or set AWS_REGION")
        self._credentials = credentials or botocore_session.get_credentials()
        if self._credentials is None:
            raise ConfigurationError("no AWS credentials found (environment, profile, or role): SigV4 cannot sign")
        self._auth, self._request = botocore.auth.SigV4Auth, botocore.awsrequest.AWSRequest

    def headers(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = self._request(method=method, url=url, data=body, headers=dict(headers))
        self._auth(self._credentials, self.service, self.region).add_auth(request)
        return {k: v for k, v in request.headers.items() if k.lower() not in {h.lower() for h in headers}}


def make_auth(url: str, auth: str | Auth, api_key: str | None, **sigv4: Any) -> Auth:
    """``"iam"`` (SigV4), ``"apikey"`` (``api_key``), ``"none"``, or an Auth of your own."""
    if not isinstance(auth, str):
        return auth
    if auth == "iam":
        return SigV4(url, **sigv4)
    if auth == "apikey":
        if api_key is None:
            raise ConfigurationError("auth='apikey' needs api_key=")
        return ApiKey(api_key)
    if auth == "none":
        return NoAuth()
    raise ConfigurationError(f"auth must be 'iam', 'apikey', 'none' or an Auth, not {auth!r}")
