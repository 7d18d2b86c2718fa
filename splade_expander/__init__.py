"""splade-expander: text -> SPLADE learned sparse vectors with ONNX Runtime and HuggingFace tokenizers (no torch).

    from splade_expander import Expander
    vectors = Expander().expand(["chronic obstructive pulmonary disease"], top_k=64)
    vectors[0].to_terms()   # {"pulmonary": 2.2, "lung": 1.8, ...}

``Expander`` loads onnxruntime and tokenizers on first use of the name (PEP 562), so the value types
(``splade_expander.vectors``) and the errors import without a model runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import InvalidRequestError, ModelAssetsError, PayloadTooLargeError, SpladeError
from .vectors import Chunk, SparseVector

if TYPE_CHECKING:
    from .expander import Expander

__version__ = "0.2.0"
__all__ = [
    "Chunk",
    "Expander",
    "InvalidRequestError",
    "ModelAssetsError",
    "PayloadTooLargeError",
    "SparseVector",
    "SpladeError",
]


def __getattr__(name: str) -> Any:
    if name == "Expander":
        from .expander import Expander

        return Expander
    raise AttributeError(f"module 'splade_expander' has no attribute {name!r}")
