"""Sparse vector -> output shapes: indices/values, a term map, or both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import OUTPUT_FORMATS as FORMATS

if TYPE_CHECKING:
    from .expander import SparseVector

__all__ = ["FORMATS", "render"]
DECIMALS = 6  # weights are ~0-4; six decimals keep every digit float32 has and drop float noise


def render(vector: SparseVector, fmt: str) -> dict[str, Any]:
    """The vector's fields for ``fmt``: ``indices``+``values``, ``terms``, or all three."""
    out: dict[str, Any] = {}
    if fmt in ("indices", "both"):
        out.update(vector.to_indices(DECIMALS))
    if fmt in ("terms", "both"):
        out["terms"] = vector.to_terms(DECIMALS)
    return out
