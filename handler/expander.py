"""Deprecated: ``from handler.expander import Expander`` works for one release (0.2) and warns; the library is
``splade_expander`` now (``from splade_expander import Expander``). Removed in 0.3."""

from __future__ import annotations

import warnings

from splade_expander.expander import Chunk, Expander, SparseVector, max_text_chars, window_starts

__all__ = ["Chunk", "Expander", "SparseVector", "max_text_chars", "window_starts"]

warnings.warn(
    "handler.expander is deprecated and will be removed in 0.3: import from splade_expander instead "
    "(from splade_expander import Expander)",
    DeprecationWarning,
    stacklevel=2,
)
