"""What the manifest records of a converted model's architecture, and its first HTTP work budget."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .family import Pretrained
from .registry import family_of

TINY_REQUEST_WINDOWS = 256  # splade-tiny's HTTP work budget, measured by make bench (~4.4 s at 1 thread)


def window_cost(layers: int, hidden: int, vocab: int, seq: int = 256) -> float:
    """Multiply-adds of one window: the encoder's dense layers and attention, and the vocabulary projection."""
    return layers * (12 * hidden * hidden * seq + 2 * seq * seq * hidden) + vocab * hidden * seq


def estimated_request_windows(layers: int, hidden: int, vocab: int) -> int:
    """A first work budget, splade-tiny's scaled by the cost of a window; ``make bench`` measures and replaces it
    (scripts/bench.py --budget)."""
    tiny = window_cost(2, 128, 30522)
    return max(1, int(TINY_REQUEST_WINDOWS * tiny / window_cost(layers, hidden, vocab)))


def facts(ck: Pretrained, activation: str, layers: str) -> dict[str, Any]:
    """What the manifest records of the architecture."""
    return {
        "model_type": ck.family,
        "vocab_size": ck.vocab,
        "hidden_size": ck.hidden,
        "num_hidden_layers": ck.layers,
        "num_attention_heads": ck.heads,
        "max_position_embeddings": ck.max_positions,
        "position_offset": family_of(ck.family).position_offset(ck),
        "pad_token_id": ck.pad_id,
        "tied_decoder": ck.tied,
        "activation": str(activation),
        "encoder_precision": layers,  # the layers' precision (the manifest's name for it since 0.1)
        "max_request_windows": estimated_request_windows(ck.layers, ck.hidden, ck.vocab),
        **({"architecture": asdict(ck.gte)} if ck.gte else {}),  # GTE: RoPE, norms, qkv layout (families/gte.py)
    }
