"""The request options the client sends, checked before any call (a wrong name fails here, not at the server)."""

from __future__ import annotations

from typing import Any

DEFAULT_TIMEOUT = 29.0  # seconds per attempt: below API Gateway's 30 s integration timeout
KINDS = ("document", "query")
OPTIONS = ("top_k", "min_weight", "truncate", "query_encoder", "prune")


def expand_options(kind: str, *, terms: bool = False, **options: Any) -> dict[str, Any]:
    """The body's options besides ``texts``: ``kind``, ``format`` (``both`` with ``terms``) and the given ones."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; the API takes {', '.join(OPTIONS)} and terms")
    body = {"kind": kind, "format": "both" if terms else "indices"}
    body.update({k: v for k, v in options.items() if v is not None})
    return body
