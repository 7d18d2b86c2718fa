"""Alibaba's GTE v1.5 architecture (``model_type: new``, ``NewForMaskedLM`` of the ``new-impl`` remote code), as
OpenSearch's opensearch-neural-sparse-encoding-doc-v3-gte uses it: its config, its tensors, and its layers.

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

Every linear goes through graph.dense, so ``--layers int8`` quantizes these as it does BERT's (per-column weights,
per-token activations), except that the few outlier channels a norm's gain blows up stay float on the linears that
read that norm's output (``float_channels``): the gated feed-forward multiplies two of those linears, which doubles
what a per-token scale set by one 20x channel costs the other channels; and ``down_proj``, whose input is that
heavy-tailed product, quantizes its activations in two passes (``two_pass``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from onnx import TensorProto

from ..family import Arch, Family, GteSettings, Pretrained, PretrainedError, Renames
from ..graph import attend, attention_prelude, dense, gelu, layer_norm

if TYPE_CHECKING:
    from ..graph import Graph

ROPE_ROWS = 512  # the longest window (splade_expander/defaults.py WINDOW_TOKENS_RANGE)
# Settings that only choose how the modeling file runs (xformers, unpadding, dropout), never what it computes.
EXECUTION_ONLY = ("unpad_inputs", "use_memory_efficient_attention")


def _rope_scaling(config: dict[str, Any]) -> tuple[float, float | None]:
    """(NTK factor, mixed_b) from ``rope_scaling``: (1.0, None) without scaling."""
    scaling = config.get("rope_scaling")
    if scaling is None:
        return 1.0, None
    if not isinstance(scaling, dict) or scaling.get("type") != "ntk":
        raise PretrainedError(
            f"config.json: rope_scaling {scaling!r} is not supported (only {{'type': 'ntk', 'factor': ...}})"
        )
    unknown = set(scaling) - {"type", "factor", "mixed_b"}
    if unknown:
        raise PretrainedError(f"config.json: rope_scaling keys {sorted(unknown)} are not supported")
    mixed_b = scaling.get("mixed_b")
    return float(scaling["factor"]), None if mixed_b is None else float(mixed_b)


def _checked(config: dict[str, Any]) -> tuple[str, str]:
    """(position embedding type, norm type); PretrainedError names any setting not implemented."""
    for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size"):
        if key not in config:
            raise PretrainedError(f"config.json: config.json has no {key!r} (needed for a new checkpoint)")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise PretrainedError(f"config.json: hidden_act {act!r} is not supported (only exact 'gelu')")
    position = config.get("position_embedding_type", "rope")
    if position not in ("rope", "absolute"):
        raise PretrainedError(f"config.json: position_embedding_type {position!r} is not supported (rope, absolute)")
    norm = config.get("layer_norm_type", "layer_norm")
    if norm not in ("layer_norm", "rms_norm"):
        raise PretrainedError(f"config.json: layer_norm_type {norm!r} is not supported (layer_norm, rms_norm)")
    for key in EXECUTION_ONLY:
        if config.get(key) not in (None, False, True):
            raise PretrainedError(f"config.json: {key} {config.get(key)!r} must be true or false")
    if config.get("embedding_size") not in (None, config["hidden_size"]):
        raise PretrainedError("config.json: embedding_size other than hidden_size is not supported")
    return str(position), str(norm)


class Gte(Family):
    model_types: ClassVar[tuple[str, ...]] = ("new",)
    prefix: ClassVar[str] = "new."
    renames: ClassVar[Renames] = (
        (r"^lm_head\.dense\.", "cls.predictions.transform.dense."),
        (r"^lm_head\.norm\.", "cls.predictions.transform.LayerNorm."),
        (r"^lm_head\.decoder\.weight$", "cls.predictions.decoder.weight"),
        (r"^lm_head\.decoder\.bias$", "cls.predictions.decoder.bias"),
    )

    def arch(self, config: dict[str, Any]) -> Arch:
        position, norm = _checked(config)
        factor, mixed_b = _rope_scaling(config)
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        if hidden % heads or (hidden // heads) % 2:
            raise PretrainedError(f"config.json: hidden size {hidden} over {heads} heads must give an even head size")
        max_pe = int(config.get("max_position_embeddings", 2048))
        settings = GteSettings(
            position=position, rope_theta=float(config.get("rope_theta", 10000.0)), ntk_factor=factor,
            mixed_b=mixed_b, norm=norm, max_position_embeddings=max_pe,
            type_vocab_size=int(config.get("type_vocab_size", 1)), pack_qkv=bool(config.get("pack_qkv", True)),
            logn=bool(config.get("logn_attention_scale", False)),
            logn_clip1=bool(config.get("logn_attention_clip1", False)),
        )  # fmt: skip
        return Arch(
            family=self.model_types[0], eps=float(config.get("layer_norm_eps", 1e-12)), hidden=hidden, heads=heads,
            layers=int(config["num_hidden_layers"]), intermediate=int(config["intermediate_size"]),
            vocab=int(config["vocab_size"]), pad_id=config.get("pad_token_id"),
            max_positions=min(max_pe, ROPE_ROWS) if position == "rope" else max_pe, gte=settings,
        )  # fmt: skip

    def shapes(self, arch: Arch) -> dict[str, tuple[int, ...]]:
        """The tensors a ``new`` MLM needs beyond BERT's word table, embedding norm and head (optional ones
        excluded), by name without the ``new.`` prefix."""
        h, i, x = arch.hidden, arch.intermediate, _settings(arch)
        out: dict[str, tuple[int, ...]] = {}
        if x.type_vocab_size > 0:
            out["embeddings.token_type_embeddings.weight"] = (x.type_vocab_size, h)
        if x.position == "absolute":
            out["embeddings.position_embeddings.weight"] = (x.max_position_embeddings, h)
        for n in range(arch.layers):
            p = f"encoder.layer.{n}"
            projections = ("qkv_proj",) if x.pack_qkv else ("q_proj", "k_proj", "v_proj")
            for name in projections:
                rows = 3 * h if name == "qkv_proj" else h
                out[f"{p}.attention.{name}.weight"], out[f"{p}.attention.{name}.bias"] = (rows, h), (rows,)
            out[f"{p}.attention.o_proj.weight"], out[f"{p}.attention.o_proj.bias"] = (h, h), (h,)
            out[f"{p}.mlp.up_gate_proj.weight"] = (2 * i, h)
            out[f"{p}.mlp.down_proj.weight"], out[f"{p}.mlp.down_proj.bias"] = (h, i), (h,)
            for ln in ("attn_ln", "mlp_ln"):
                out[f"{p}.{ln}.weight"] = (h,)
                if x.norm == "layer_norm":
                    out[f"{p}.{ln}.bias"] = (h,)
        return out

    def finish(self, tensors: dict[str, np.ndarray], arch: Arch) -> None:
        """One layout for the graph: q/k/v as one packed ``qkv_proj`` (rows q, k, v, as the modeling file's
        ``split``; separate ``q_proj``/``k_proj``/``v_proj`` are stacked into it), and the bias-free
        ``up_gate_proj`` given a zero bias."""
        for n in range(arch.layers):
            p = f"encoder.layer.{n}.attention"
            if not _settings(arch).pack_qkv:
                for part in ("weight", "bias"):
                    stacked = [tensors.pop(f"{p}.{name}.{part}") for name in ("q_proj", "k_proj", "v_proj")]
                    tensors[f"{p}.qkv_proj.{part}"] = np.ascontiguousarray(np.concatenate(stacked))
            tensors[f"encoder.layer.{n}.mlp.up_gate_proj.bias"] = np.zeros(2 * arch.intermediate, dtype=np.float32)

    def layers(self, g: Graph, ck: Pretrained, x: str, mask: str, seq_len: str, int8: bool) -> str:
        """Post-norm attention with RoPE (and the log-n scale), then the gated feed-forward."""
        settings = _settings(ck)
        att = attention_prelude(g, mask, ck.hidden, ck.heads)
        rope = _Rope(g, ck, seq_len) if settings.position == "rope" else None
        logn = _logn_scale(g, ck, mask) if settings.logn else None
        norm_in = "embeddings.LayerNorm"
        for i in range(ck.layers):
            p = f"encoder.layer.{i}"
            qkv = dense(g, x, ck, f"{p}.attention.qkv_proj", int8, float_channels=float_channels(ck, norm_in))
            q, k, v = (  # [B, nh, S, dh] each
                g.op("Transpose", [g.op("Reshape", [y, att.split])], perm=[0, 2, 1, 3])
                for y in g.ops("Split", [qkv], 3, axis=-1, num_outputs=3)
            )
            if rope is not None:
                q, k = rope(q), rope(k)
            if logn is not None:
                q = g.op("Mul", [q, logn])
            ctx = attend(g, q, g.op("Transpose", [k], perm=[0, 1, 3, 2]), v, att)
            attn_out = dense(g, ctx, ck, f"{p}.attention.o_proj", int8)
            x = _norm(g, g.op("Add", [x, attn_out]), ck, f"{p}.attn_ln")
            up_gate = dense(g, x, ck, f"{p}.mlp.up_gate_proj", int8, float_channels=float_channels(ck, f"{p}.attn_ln"))
            up, gate = g.ops("Split", [up_gate], 2, axis=-1, num_outputs=2)
            down = dense(g, g.op("Mul", [gelu(g, gate), up]), ck, f"{p}.mlp.down_proj", int8, two_pass=True)
            x = _norm(g, g.op("Add", [x, down]), ck, f"{p}.mlp_ln")
            norm_in = f"{p}.mlp_ln"
        return x


def _settings(arch: Arch) -> GteSettings:
    assert arch.gte is not None, "a GTE architecture carries its settings"
    return arch.gte


def _norm(g: Graph, x: str, ck: Pretrained, prefix: str) -> str:
    """``attn_ln`` / ``mlp_ln``: LayerNorm, or RMSNorm (``x / sqrt(mean(x^2) + eps) * weight``)."""
    if _settings(ck).norm == "layer_norm":
        return layer_norm(g, x, ck, prefix, ck.eps)
    mean_sq = g.op("ReduceMean", [g.op("Mul", [x, x]), g.scalar_i64("axis_last", [-1])], keepdims=1)
    rms = g.op("Sqrt", [g.op("Add", [mean_sq, g.const("rms_eps", np.array(ck.eps, dtype=np.float32))])])
    return g.op("Mul", [g.op("Div", [x, rms]), g.const(f"{prefix}.weight", ck.get(f"{prefix}.weight"))])


def float_channels(ck: Pretrained, prefix: str) -> np.ndarray:
    """The channels of norm ``prefix``'s output whose size (|gain| + |bias|) is over 4x the median's, the largest
    hidden / 32 of them at most, sorted: read from the weights at build time, no calibration data."""
    size = np.abs(ck.get(f"{prefix}.weight"))
    if f"{prefix}.bias" in ck.tensors:
        size = size + np.abs(ck.get(f"{prefix}.bias"))
    wide = np.flatnonzero(size > 4.0 * np.median(size))
    return np.sort(wide[np.argsort(-size[wide], kind="stable")][: ck.hidden // 32])


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


def rope_tables(head_dim: int, settings: GteSettings, rows: int = ROPE_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """``cos``, ``sin`` [rows, head_dim]: angle ``position * frequency``, the frequencies repeated for both halves."""
    inv = inverse_frequencies(head_dim, settings.rope_theta, settings.ntk_factor, settings.mixed_b)
    angles = np.outer(np.arange(rows, dtype=np.float64), inv)
    angles = np.concatenate([angles, angles], axis=1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


class _Rope:
    """The rotation of one graph: cos/sin rows of positions 0..S-1, gathered once and shared by every layer."""

    def __init__(self, g: Graph, ck: Pretrained, seq_len: str) -> None:
        self.g = g
        head_dim = ck.hidden // ck.heads
        cos, sin = rope_tables(head_dim, _settings(ck))
        positions = g.op(
            "Range",
            [g.const("zero_i64", np.array(0, dtype=np.int64)), seq_len, g.const("one_i64", np.array(1, np.int64))],
        )
        self.cos = g.op("Gather", [g.const("rope.cos", cos), positions], axis=0)  # [S, dh]
        self.sin = g.op("Gather", [g.const("rope.sin", sin), positions], axis=0)

    def __call__(self, x: str) -> str:
        """``x * cos + rotate_half(x) * sin`` for x [B, nh, S, dh]; rotate_half(x) = (-x2, x1)."""
        g = self.g
        x1, x2 = g.ops("Split", [x], 2, axis=-1, num_outputs=2)
        rotated = g.op("Concat", [g.op("Neg", [x2]), x1], axis=-1)
        return g.op("Add", [g.op("Mul", [x, self.cos]), g.op("Mul", [rotated, self.sin])])


def _logn_scale(g: Graph, ck: Pretrained, mask: str) -> str:
    """[B, 1, 1, 1]: log(tokens) / log(max_position_embeddings), at least 1 with logn_attention_clip1."""
    tokens = g.op("ReduceSum", [g.op("Cast", [mask], to=TensorProto.FLOAT), g.scalar_i64("ax1_", [1])], keepdims=0)
    log_max = g.const("log_max_positions", np.array(math.log(_settings(ck).max_position_embeddings), np.float32))
    scale = g.op("Div", [g.op("Log", [tokens]), log_max])
    if _settings(ck).logn_clip1:
        scale = g.op("Max", [scale, g.const("one_f", np.array(1.0, dtype=np.float32))])
    return g.op("Reshape", [scale, g.scalar_i64("b111", [-1, 1, 1, 1])])
