"""The GTE (``new``) encoder layers as ONNX nodes, for scripts/build_model.py: RoPE on queries and keys from
constant tables (scripts/gte.py), the optional log-n query scale, the gated feed-forward and LayerNorm or RMSNorm.
Every linear goes through build_model's ``_dense``, so ``--layers int8`` quantizes these as it does BERT's
(per-column weights, per-token activations), except that the few outlier channels a norm's gain blows up stay float
on the linears that read that norm's output (``float_channels``): the gated feed-forward multiplies two of those
linears, which doubles what a per-token scale set by one 20x channel costs the other channels; and ``down_proj``,
whose input is that heavy-tailed product, quantizes its activations in two passes (``two_pass``)."""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto

from scripts import gte
from scripts.build_model import Graph, _dense, _gelu, _layer_norm
from scripts.pretrained import Pretrained


def _norm(g: Graph, x: str, ck: Pretrained, prefix: str) -> str:
    """``attn_ln`` / ``mlp_ln``: LayerNorm, or RMSNorm (``x / sqrt(mean(x^2) + eps) * weight``)."""
    if ck.extra["norm"] == "layer_norm":
        return _layer_norm(g, x, ck, prefix, ck.eps)
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


class _Rope:
    """The rotation of one graph: cos/sin rows of positions 0..S-1, gathered once and shared by every layer."""

    def __init__(self, g: Graph, ck: Pretrained, seq_len: str) -> None:
        self.g = g
        head_dim = ck.hidden // ck.heads
        cos, sin = gte.rope_tables(head_dim, ck.extra)
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
    log_max = g.const("log_max_positions", np.array(math.log(ck.extra["max_position_embeddings"]), np.float32))
    scale = g.op("Div", [g.op("Log", [tokens]), log_max])
    if ck.extra["logn_clip1"]:
        scale = g.op("Max", [scale, g.const("one_f", np.array(1.0, dtype=np.float32))])
    return g.op("Reshape", [scale, g.scalar_i64("b111", [-1, 1, 1, 1])])


def encoder(g: Graph, ck: Pretrained, x: str, mask: str, *, seq_len: str, int8_encoder: bool) -> str:
    """GTE's layers: post-norm attention with RoPE (and the log-n scale), then the gated feed-forward."""
    hidden, heads = ck.hidden, ck.heads
    head_dim = hidden // heads
    mask_f = g.op("Cast", [mask], to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const("one_f", np.array(1.0, dtype=np.float32)), mask_f])
    bias = g.op("Mul", [inv, g.const("neg_big", np.array(-10000.0, dtype=np.float32))])
    attn_bias = g.op("Unsqueeze", [bias, g.scalar_i64("axes_1_2", [1, 2])])  # [B, 1, 1, S]
    split_shape = g.scalar_i64("split_heads", [0, 0, heads, head_dim])
    merge_shape = g.scalar_i64("merge_heads", [0, 0, hidden])
    inv_sqrt = g.const("inv_sqrt_dh", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    rope = _Rope(g, ck, seq_len) if ck.extra["position"] == "rope" else None
    logn = _logn_scale(g, ck, mask) if ck.extra["logn"] else None
    norm_in = "embeddings.LayerNorm"
    for i in range(ck.layers):
        p = f"encoder.layer.{i}"
        qkv = _dense(g, x, ck, f"{p}.attention.qkv_proj", int8_encoder, float_channels=float_channels(ck, norm_in))
        q, k, v = (  # [B, nh, S, dh] each
            g.op("Transpose", [g.op("Reshape", [y, split_shape])], perm=[0, 2, 1, 3])
            for y in g.ops("Split", [qkv], 3, axis=-1, num_outputs=3)
        )
        if rope is not None:
            q, k = rope(q), rope(k)
        if logn is not None:
            q = g.op("Mul", [q, logn])
        scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
        scores = g.op("Add", [g.op("Mul", [scores, inv_sqrt]), attn_bias])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3]), merge_shape])
        attn_out = _dense(g, ctx, ck, f"{p}.attention.o_proj", int8_encoder)
        x = _norm(g, g.op("Add", [x, attn_out]), ck, f"{p}.attn_ln")
        up_gate = _dense(
            g, x, ck, f"{p}.mlp.up_gate_proj", int8_encoder, float_channels=float_channels(ck, f"{p}.attn_ln")
        )
        up, gate = g.ops("Split", [up_gate], 2, axis=-1, num_outputs=2)
        down = _dense(g, g.op("Mul", [_gelu(g, gate), up]), ck, f"{p}.mlp.down_proj", int8_encoder, two_pass=True)
        x = _norm(g, g.op("Add", [x, down]), ck, f"{p}.mlp_ln")
        norm_in = f"{p}.mlp_ln"
    return x
