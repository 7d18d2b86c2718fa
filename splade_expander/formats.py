"""Sparse vector -> output shapes: indices/values, a term map, or both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .vectors import SparseVector

__all__ = ["FORMATS", "render", "render_chunks"]
FORMATS = ("indices", "terms", "both")
DECIMALS = 6  # weights are ~0-4; six decimals keep every digit float32 has and drop float noise


def render(vector: SparseVector, fmt: str) -> dict[str, Any]:
    """The vector's fields for ``fmt``: ``indices``+``values``, ``terms``, or all three."""
    out: dict[str, Any] = {}
    if fmt in ("indices", "both"):
        out.update(vector.to_indices(DECIMALS))
    if fmt in ("terms", "both"):
        out["terms"] = vector.to_terms(DECIMALS)
    return out


def render_chunks(vector: SparseVector, fmt: str) -> list[dict[str, Any]]:
    """The vector's chunks (``expand(..., chunks=True)``): ``{"chunk", "span", <fmt fields>, "tokens"}`` each."""
    return [
        {"chunk": j, "span": list(c.span), **render(c.vector, fmt), "tokens": c.vector.tokens}
        for j, c in enumerate(vector.chunks)
    ]
