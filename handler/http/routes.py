"""The HTTP routes, defined once. api.py registers a handler per route on each resolver, openapi.py documents
them, and a test checks that the template routes exactly these to the API function."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation: str  # the OpenAPI operationId, and the name api.py registers the handler under
    summary: str


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/expand", "expand", "Expand texts into SPLADE sparse vectors"),
    Route("GET", "/v1/model", "model", "The model and the request limits"),
    Route("GET", "/v1/openapi.json", "openapi", "This document"),
)


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods served on ``path`` (empty: no such path)."""
    return tuple(r.method for r in ROUTES if r.path == path)
