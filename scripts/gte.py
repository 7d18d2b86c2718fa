"""Alibaba's GTE v1.5 architecture (``model_type: new``, ``NewForMaskedLM`` of the ``new-impl`` remote code), as
OpenSearch's opensearch-neural-sparse-encoding-doc-v3-gte uses it: its config, its tensors, and its encoder graph.

What differs from BERT, read from the modeling file: rotary position embeddings (RoPE, ``rotate_half`` on each
head's two halves, optionally NTK-scaled, fixed or "mixed" with ``mixed_b``) and no absolute position table; one
packed ``qkv_proj`` (or ``q_proj``/``k_proj``/``v_proj`` with ``pack_qkv: false``); a gated feed-forward
(``up_gate_proj`` without bias, split into up and gate, ``act(gate) * up``, then ``down_proj``); post-norm blocks
with ``attn_ln``/``mlp_ln`` that may be LayerNorm or RMSNorm; optionally ``logn_attention_scale`` (queries times
``log(tokens) / log(max_position_embeddings)``, at least 1 with ``logn_attention_clip1``); token types only when
``type_vocab_size > 0``. The MLM head is BERT's (dense, act, LayerNorm, tied decoder with its own bias) and is
mapped onto BERT's names, so the projection is the shared one.

RoPE is constant ``cos``/``sin`` tables of ``ROPE_ROWS`` rows (the longest window), computed as the modeling file
computes its cache: with NTK scaling whenever the factor is above 1, for every position, 512-token windows too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ROPE_ROWS = 512  # the longest window (splade_expander/defaults.py WINDOW_TOKENS_RANGE)
RENAMES = (
    (r"^lm_head\.dense\.", "cls.predictions.transform.dense."),
    (r"^lm_head\.norm\.", "cls.predictions.transform.LayerNorm."),
    (r"^lm_head\.decoder\.weight$", "cls.predictions.decoder.weight"),
    (r"^lm_head\.decoder\.bias$", "cls.predictions.decoder.bias"),
)
# Settings that only choose how the modeling file runs (xformers, unpadding, dropout), never what it computes.
EXECUTION_ONLY = ("unpad_inputs", "use_memory_efficient_attention")


class ConfigError(ValueError):
    """A GTE setting this converter does not implement (pretrained.py turns it into a PretrainedError)."""


def _rope_scaling(config: dict[str, Any]) -> tuple[float, float | None]:
    """(NTK factor, mixed_b) from ``rope_scaling``: (1.0, None) without scaling."""
    scaling = config.get("rope_scaling")
    if scaling is None:
        return 1.0, None
    if not isinstance(scaling, dict) or scaling.get("type") != "ntk":
        raise ConfigError(f"rope_scaling {scaling!r} is not supported (only {{'type': 'ntk', 'factor': ...}})")
    unknown = set(scaling) - {"type", "factor", "mixed_b"}
    if unknown:
        raise ConfigError(f"rope_scaling keys {sorted(unknown)} are not supported")
    mixed_b = scaling.get("mixed_b")
    return float(scaling["factor"]), None if mixed_b is None else float(mixed_b)


def facts(config: dict[str, Any]) -> dict[str, Any]:
    """The architecture facts of a ``new`` config.json; ConfigError names any setting not implemented."""
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size"):
        if key not in config:
            raise ConfigError(f"config.json has no {key!r} (needed for a new checkpoint)")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise ConfigError(f"hidden_act {act!r} is not supported (only exact 'gelu')")
    position = config.get("position_embedding_type", "rope")
    if position not in ("rope", "absolute"):
        raise ConfigError(f"position_embedding_type {position!r} is not supported (rope, absolute)")
    norm = config.get("layer_norm_type", "layer_norm")
    if norm not in ("layer_norm", "rms_norm"):
        raise ConfigError(f"layer_norm_type {norm!r} is not supported (layer_norm, rms_norm)")
    for key in EXECUTION_ONLY:
        if config.get(key) not in (None, False, True):
            raise ConfigError(f"{key} {config.get(key)!r} must be true or false")
    if config.get("embedding_size") not in (None, config["hidden_size"]):
        raise ConfigError("embedding_size other than hidden_size is not supported")
    factor, mixed_b = _rope_scaling(config)
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    if hidden % heads or (hidden // heads) % 2:
        raise ConfigError(f"hidden size {hidden} over {heads} heads must give an even head size")
    max_pe = int(config.get("max_position_embeddings", 2048))
    return {
        "family": "new", "eps": float(config.get("layer_norm_eps", 1e-12)), "hidden": hidden, "heads": heads,
        "layers": int(config["num_hidden_layers"]), "intermediate": int(config["intermediate_size"]),
        "vocab": int(config["vocab_size"]), "pad_id": config.get("pad_token_id"),
        "max_positions": min(max_pe, ROPE_ROWS) if position == "rope" else max_pe,
        "extra": {
            "position": position, "rope_theta": float(config.get("rope_theta", 10000.0)), "ntk_factor": factor,
            "mixed_b": mixed_b, "norm": norm, "max_position_embeddings": max_pe,
            "type_vocab_size": int(config.get("type_vocab_size", 1)), "pack_qkv": bool(config.get("pack_qkv", True)),
            "logn": bool(config.get("logn_attention_scale", False)),
            "logn_clip1": bool(config.get("logn_attention_clip1", False)),
        },
    }  # fmt: skip


def shapes(c: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The tensors a ``new`` MLM needs beyond BERT's word table, embedding norm and head (pretrained.py adds those;
    optional ones excluded), by name without the ``new.`` prefix."""
    h, i, x = c["hidden"], c["intermediate"], c["extra"]
    out: dict[str, tuple[int, ...]] = {}
    if x["type_vocab_size"] > 0:
        out["embeddings.token_type_embeddings.weight"] = (x["type_vocab_size"], h)
    if x["position"] == "absolute":
        out["embeddings.position_embeddings.weight"] = (x["max_position_embeddings"], h)
    for n in range(c["layers"]):
        p = f"encoder.layer.{n}"
        projections = ("qkv_proj",) if x["pack_qkv"] else ("q_proj", "k_proj", "v_proj")
        for name in projections:
            rows = 3 * h if name == "qkv_proj" else h
            out[f"{p}.attention.{name}.weight"], out[f"{p}.attention.{name}.bias"] = (rows, h), (rows,)
        out[f"{p}.attention.o_proj.weight"], out[f"{p}.attention.o_proj.bias"] = (h, h), (h,)
        out[f"{p}.mlp.up_gate_proj.weight"] = (2 * i, h)
        out[f"{p}.mlp.down_proj.weight"], out[f"{p}.mlp.down_proj.bias"] = (h, i), (h,)
        for ln in ("attn_ln", "mlp_ln"):
            out[f"{p}.{ln}.weight"] = (h,)
            if x["norm"] == "layer_norm":
                out[f"{p}.{ln}.bias"] = (h,)
    return out


def finish(tensors: dict[str, np.ndarray], c: dict[str, Any]) -> None:
    """One layout for the graph: q/k/v as one packed ``qkv_proj`` (rows q, k, v, as the modeling file's
    ``split``; separate ``q_proj``/``k_proj``/``v_proj`` are stacked into it), and the bias-free ``up_gate_proj``
    given a zero bias."""
    for n in range(c["layers"]):
        p = f"encoder.layer.{n}.attention"
        if not c["extra"]["pack_qkv"]:
            for part in ("weight", "bias"):
                stacked = [tensors.pop(f"{p}.{name}.{part}") for name in ("q_proj", "k_proj", "v_proj")]
                tensors[f"{p}.qkv_proj.{part}"] = np.ascontiguousarray(np.concatenate(stacked))
        tensors[f"encoder.layer.{n}.mlp.up_gate_proj.bias"] = np.zeros(2 * c["intermediate"], dtype=np.float32)


def inverse_frequencies(head_dim: int, theta: float, factor: float, mixed_b: float | None) -> np.ndarray:
    """RoPE's per-pair frequencies [head_dim / 2], NTK-scaled as the modeling file does when ``factor`` > 1: fixed
    NTK raises the base to ``theta * factor`` and divides by ``factor ** (2 / d)``; mixed NTK keeps the base and
    divides pair ``m`` (1-based) by ``exp(a * m ** mixed_b)`` with ``a = ln(factor) / (d / 2) ** mixed_b``."""
    exponents = np.arange(0, head_dim, 2, dtype=np.float64) / head_dim
    if factor <= 1.0:
        inv: np.ndarray = 1.0 / theta**exponents
    elif mixed_b is None:
        inv = 1.0 / (theta * factor) ** exponents / factor ** (2.0 / head_dim)
    else:
        a = math.log(factor) / (head_dim / 2) ** mixed_b
        inv = 1.0 / theta**exponents / np.exp(a * np.arange(1, head_dim // 2 + 1, dtype=np.float64) ** mixed_b)
    return inv


def rope_tables(head_dim: int, extra: dict[str, Any], rows: int = ROPE_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """``cos``, ``sin`` [rows, head_dim]: angle ``position * frequency``, the frequencies repeated for both halves."""
    inv = inverse_frequencies(head_dim, extra["rope_theta"], extra["ntk_factor"], extra["mixed_b"])
    angles = np.outer(np.arange(rows, dtype=np.float64), inv)
    angles = np.concatenate([angles, angles], axis=1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
