"""The graph operations every family's builder uses, in one place: a small builder over ``onnx.helper`` that names
values uniquely (``Graph``), LayerNorm, the (int8) dense layer, exact GELU, the attention prelude and row-wise int8
quantization."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18
IR_VERSION = 8


class Weights(Protocol):
    """A model's tensors by canonical name (pretrained.Pretrained)."""

    tensors: dict[str, np.ndarray]

    def get(self, name: str) -> np.ndarray: ...


class Graph:
    """A tiny builder over onnx.helper that names intermediate values uniquely."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0
        self._names: set[str] = set()

    def const(self, name: str, array: np.ndarray) -> str:
        if name in self._names:  # shared constants (axes, shapes) are declared once
            return name
        self._names.add(name)
        self.inits.append(numpy_helper.from_array(np.array(array, order="C", copy=True), name))
        return name

    def scalar_i64(self, name: str, values: list[int]) -> str:
        return self.const(name, np.array(values, dtype=np.int64))

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        """Add a node; its one output's name."""
        return self.ops(op_type, inputs, 1, **attrs)[0]

    def ops(self, op_type: str, inputs: list[str], n_out: int, **attrs: Any) -> list[str]:
        """Add a node with ``n_out`` outputs; their names."""
        self._n += 1
        outs = [f"{op_type.lower()}_{self._n}" + (f"_{i}" if n_out > 1 else "") for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{op_type}_{self._n}", **attrs))
        return outs


def layer_norm(g: Graph, x: str, ck: Weights, prefix: str, eps: float) -> str:
    gamma, beta = ck.get(f"{prefix}.weight"), ck.get(f"{prefix}.bias")
    return g.op(
        "LayerNormalization",
        [x, g.const(f"{prefix}.gamma", gamma), g.const(f"{prefix}.beta", beta)],
        axis=-1,
        epsilon=eps,
    )


def dense(
    g: Graph,
    x: str,
    ck: Weights,
    prefix: str,
    int8: bool = False,
    *,
    float_channels: np.ndarray | None = None,
    two_pass: bool = False,
) -> str:
    """A torch Linear (weight [out, in]). ``int8``: weights symmetric int8 per output column, activations
    symmetric int8 per token (one scale per row of ``x``, so a vector never depends on its batch), an integer
    GEMM into int32, then both scales and the bias in float. ``float_channels``: input channels that stay float
    (a small fp32 MatMul beside the integer one), so a few huge channels set neither scale. ``two_pass``: see
    ``dense_int8``."""
    weight, bias = ck.get(f"{prefix}.weight"), ck.get(f"{prefix}.bias")
    if not int8:
        y = g.op("MatMul", [x, g.const(f"{prefix}.weight_t", np.ascontiguousarray(weight.T))])
        return g.op("Add", [y, g.const(f"{prefix}.bias", bias)])
    if float_channels is not None and len(float_channels):
        keep = np.ones(weight.shape[1], dtype=np.float32)
        keep[float_channels] = 0.0
        picked = g.op("Gather", [x, g.const(f"{prefix}.float_channels", float_channels.astype(np.int64))], axis=-1)
        side = g.op(
            "MatMul", [picked, g.const(f"{prefix}.weight_t.float", np.ascontiguousarray(weight[:, float_channels].T))]
        )
        rest = g.op("Mul", [x, g.const(f"{prefix}.int8_channels", keep)])
        main = dense_int8(g, rest, weight * keep[None, :], bias, prefix, two_pass=two_pass)
        return g.op("Add", [main, side])
    return dense_int8(g, x, weight, bias, prefix, two_pass=two_pass)


def dense_int8(g: Graph, x: str, weight: np.ndarray, bias: np.ndarray, prefix: str, *, two_pass: bool = False) -> str:
    """``two_pass``: the rounding error of the int8 activations (within half a step) is quantized again at 1/254 of
    the step and goes through a second integer GEMM on the same weights: ~15-bit activations for a heavy-tailed
    input (GTE's gated product), at twice that GEMM's integer work."""
    wq, w_scale = quantize_rows(weight)  # rows of [out, in] = output columns
    amax = g.op("ReduceMax", [g.op("Abs", [x]), g.scalar_i64("axis_last", [-1])], keepdims=1)  # [B, S, 1]
    tiny = g.const("tiny", np.array(1e-12, dtype=np.float32))
    x_scale = g.op("Div", [g.op("Max", [amax, tiny]), g.const("q127", np.array(127.0, dtype=np.float32))])
    steps = g.op("Div", [x, x_scale])
    coarse = g.op("Round", [steps])
    f128 = g.const("f128", np.array(128.0, np.float32))
    xq = g.op("Cast", [g.op("Add", [coarse, f128])], to=TensorProto.UINT8)  # int8 + 128: MLAS's fast path is u8 x s8
    w_int8 = g.const(f"{prefix}.weight_t.int8", np.ascontiguousarray(wq.T))
    zp = g.const("zp128", np.array(128, np.uint8))
    acc = g.op("Cast", [g.op("MatMulInteger", [xq, w_int8, zp])], to=TensorProto.FLOAT)
    if two_pass:
        fine_steps = g.const("f254", np.array(254.0, dtype=np.float32))
        fine = g.op("Round", [g.op("Mul", [g.op("Sub", [steps, coarse]), fine_steps])])  # in [-127, 127]
        fine_q = g.op("Cast", [g.op("Add", [fine, f128])], to=TensorProto.UINT8)
        fine_acc = g.op("Cast", [g.op("MatMulInteger", [fine_q, w_int8, zp])], to=TensorProto.FLOAT)
        acc = g.op("Add", [acc, g.op("Div", [fine_acc, fine_steps])])
    y = g.op("Mul", [acc, x_scale])
    y = g.op("Mul", [y, g.const(f"{prefix}.weight_scale", w_scale)])
    return g.op("Add", [y, g.const(f"{prefix}.bias", bias)])


def gelu(g: Graph, x: str) -> str:
    """Exact (erf) GELU, the BERT ``gelu`` activation; ORT fuses the pattern."""
    scaled = g.op("Div", [x, g.const(f"sqrt2_{g._n}", np.array(math.sqrt(2.0), dtype=np.float32))])
    erf = g.op("Erf", [scaled])
    one_plus = g.op("Add", [erf, g.const(f"one_{g._n}", np.array(1.0, dtype=np.float32))])
    half_x = g.op("Mul", [x, g.const(f"half_{g._n}", np.array(0.5, dtype=np.float32))])
    return g.op("Mul", [half_x, one_plus])


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per row: ``table ~= q * scale[:, None]``."""
    amax = np.abs(table).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(table / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


@dataclass(frozen=True)
class Attention:
    """What every layer's self-attention shares: the additive padding bias [B, 1, 1, S] (0 for tokens, -10000
    for padding), the shapes that split and merge heads, and 1/sqrt(head size)."""

    bias: str
    split: str
    merge: str
    inv_sqrt: str


def attention_prelude(g: Graph, mask: str, hidden: int, heads: int) -> Attention:
    """The one attention prelude (BERT's and GTE's layers both start from it)."""
    head_dim = hidden // heads
    mask_f = g.op("Cast", [mask], to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const("one_f", np.array(1.0, dtype=np.float32)), mask_f])
    bias = g.op("Mul", [inv, g.const("neg_big", np.array(-10000.0, dtype=np.float32))])
    attn_bias = g.op("Unsqueeze", [bias, g.scalar_i64("axes_1_2", [1, 2])])
    split_shape = g.scalar_i64("split_heads", [0, 0, heads, head_dim])
    merge_shape = g.scalar_i64("merge_heads", [0, 0, hidden])
    inv_sqrt = g.const("inv_sqrt_dh", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    return Attention(attn_bias, split_shape, merge_shape, inv_sqrt)


def attend(g: Graph, q: str, k_t: str, v: str, att: Attention) -> str:
    """softmax(q k^T / sqrt(dh) + bias) v, heads merged back: [B, S, H] (``k_t``: keys as [B, nh, dh, S])."""
    scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k_t]), att.inv_sqrt]), att.bias])
    probs = g.op("Softmax", [scores], axis=-1)
    ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    return g.op("Reshape", [ctx, att.merge])
