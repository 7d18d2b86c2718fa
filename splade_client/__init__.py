"""A client for a deployed SPLADE expander (``pip install 'splade-expander[client]'``).

    from splade_client import Client
    with Client("https://abc123.execute-api.us-east-1.amazonaws.com") as client:  # SigV4, default credentials
        vectors = client.expand(["chronic obstructive pulmonary disease", ...])  # SparseVector each, in order

``Client(url, auth="apikey", api_key=...)`` for a Function URL deployed with ``ApiAuth=apikey``; ``AsyncClient``
for asyncio. Batches follow the server's limits (``GET /v1/model``), a batch refused as too big is split, 429 and
5xx are retried; 4xx are typed errors naming the field (docs/python.md).
"""

from __future__ import annotations

from .aio import AsyncClient
from .auth import ApiKey, Auth, NoAuth, SigV4
from .core import Limits, Retry
from .errors import AuthError, ClientError, ConfigurationError, RequestError, UnavailableError
from .sync import Client

__all__ = [
    "ApiKey", "AsyncClient", "Auth", "AuthError", "Client", "ClientError", "ConfigurationError", "Limits",
    "NoAuth", "RequestError", "Retry", "SigV4", "UnavailableError",
]  # fmt: skip
