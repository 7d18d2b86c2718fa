"""Build the fused SPLADE ONNX graph straight from a BERT masked-LM checkpoint (no torch).

    python scripts/build_model.py --source build/source --out model_assets [--precision int8|fp32|logits]

The source directory holds ``model.safetensors``, ``config.json``, ``tokenizer.json`` (and optionally
``tokenizer_config.json``). Layers, hidden size, heads and vocabulary come from ``config.json`` so any
BERT-style MLM converts. Graph contract (precision int8 or fp32):

    inputs   input_ids, attention_mask   int64 [batch, seq]
    output   splade                      float32 [batch, vocab]
             = max over unmasked positions of log1p(relu(mlm_logits))

The ``[batch, seq, vocab]`` logits never leave the graph. ``--precision logits`` builds the
fastembed-style baseline (fp32, logits out, pooling left to the caller); it is for the benchmark only.

int8: the tied word table is stored once, as int8 with one symmetric scale per vocabulary row, in the
projection's vocabulary chunks (``chunk_bounds``): the projection reads each chunk as it is, and the embedding
gathers each token's row from its chunk (one Gather per chunk, then GatherND), so build-time constant folding has
no slice of the table to copy. The head's hidden states get one symmetric scale per document,
the projection is a MatMulInteger into int32 laid out as ``W[V,H] @ h^T[H, B*S]``, the max over positions
is taken on the int32 accumulator (both scales are positive, so the max commutes with dequantizing), and
only ``[batch, vocab]`` is dequantized. Padding positions are replaced by a copy of position 0 ([CLS]) before
the projection, so they can never win the max and never change a document's scale: a vector does not
depend on what else is in the batch.

The output is deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from scripts.pretrained import Pretrained, PretrainedError, load_pretrained, position_offset, write_tokenizer_json
from splade_expander.specials import SpecialTokensError, special_tokens

OPSET = 18
IR_VERSION = 8


class Precision(StrEnum):
    """The graph's projection: int8 (the default), fp32, or the benchmark-only logits graph."""

    INT8 = "int8"
    FP32 = "fp32"
    LOGITS = "logits"


class Activation(StrEnum):
    """The term-weight activation: SPLADE's, or OpenSearch v3's (fastembed's if_splade.py)."""

    LOG1P_RELU = "log1p_relu"
    LOG1P_LOG1P_RELU = "log1p_log1p_relu"


PRECISIONS = tuple(Precision)
ACTIVATIONS = tuple(Activation)
ENCODERS = ("auto", "int8", "fp32")


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


def _layer_norm(g: Graph, x: str, ck: Pretrained, prefix: str, eps: float) -> str:
    gamma, beta = ck.get(f"{prefix}.weight"), ck.get(f"{prefix}.bias")
    return g.op(
        "LayerNormalization",
        [x, g.const(f"{prefix}.gamma", gamma), g.const(f"{prefix}.beta", beta)],
        axis=-1,
        epsilon=eps,
    )


def _dense(
    g: Graph,
    x: str,
    ck: Pretrained,
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
    ``_dense_int8``."""
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
        main = _dense_int8(g, rest, weight * keep[None, :], bias, prefix, two_pass=two_pass)
        return g.op("Add", [main, side])
    return _dense_int8(g, x, weight, bias, prefix, two_pass=two_pass)


def _dense_int8(g: Graph, x: str, weight: np.ndarray, bias: np.ndarray, prefix: str, *, two_pass: bool = False) -> str:
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


def _gelu(g: Graph, x: str) -> str:
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


TINY_REQUEST_WINDOWS = 256  # splade-tiny's HTTP work budget, measured by make bench (~4.4 s at 1 thread)


def window_cost(layers: int, hidden: int, vocab: int, seq: int = 256) -> float:
    """Multiply-adds of one window: the encoder's dense layers and attention, and the vocabulary projection."""
    return layers * (12 * hidden * hidden * seq + 2 * seq * seq * hidden) + vocab * hidden * seq


def estimated_request_windows(layers: int, hidden: int, vocab: int) -> int:
    """A first work budget, splade-tiny's scaled by the cost of a window; ``make bench`` measures and replaces it
    (scripts/bench.py --budget)."""
    tiny = window_cost(2, 128, 30522)
    return max(1, int(TINY_REQUEST_WINDOWS * tiny / window_cost(layers, hidden, vocab)))


def encoder_precision(requested: str, hidden: int) -> str:
    """``auto``: int8 from hidden size 512 up (base-size models, where the encoder dominates), else fp32."""
    if requested == "auto":
        return "int8" if hidden >= 512 else "fp32"
    return requested


@dataclass
class _Inputs:
    """The graph's inputs and what every stage reads of them."""

    ids: str
    mask: str
    shape: str = ""  # Shape(input_ids), made by the embeddings
    seq_len: str = ""  # its second dimension
    batch: str = ""  # the batch size, made by the projection's input


def chunk_bounds(vocab: int, chunks: int) -> list[tuple[int, int]]:
    """The projection's vocabulary chunks: ``ceil(vocab / chunks)`` rows each, the last one shorter, so row ``r`` is
    in chunk ``r // size``."""
    size = -(-vocab // chunks)
    return [(start, min(start + size, vocab)) for start in range(0, vocab, size)]


def _gather_rows(g: Graph, chunks: list[str], bounds: list[tuple[int, int]], ids: str) -> str:
    """``table[ids]`` for a table stored only as its projection chunks: each chunk gathers ``ids mod size``
    (clamped in the shorter last chunk), and GatherND keeps, per position, the chunk row ``ids // size`` names.
    The table is stored once and no run copies it: the work is K gathers of [B, S, H]."""
    if len(chunks) == 1:
        return g.op("Gather", [chunks[0], ids], axis=0)
    size = bounds[0][1] - bounds[0][0]
    rows = g.const("chunk_rows", np.array(size, dtype=np.int64))
    which = g.op("Unsqueeze", [g.op("Div", [ids, rows]), g.scalar_i64("axis_last", [-1])])  # [B, S, 1]
    local = g.op("Mod", [ids, rows])
    last = bounds[-1][1] - bounds[-1][0]
    last_local = g.op("Min", [local, g.const("last_chunk_row", np.array(last - 1, dtype=np.int64))])
    parts = []
    for c, chunk in enumerate(chunks):
        picked = g.op("Gather", [chunk, last_local if c == len(chunks) - 1 else local], axis=0)  # [B, S, H]
        parts.append(g.op("Unsqueeze", [picked, g.scalar_i64("axis2", [2])]))
    stacked = g.op("Concat", parts, axis=2)  # [B, S, K, H]
    return g.op("GatherND", [stacked, which], batch_dims=2)  # [B, S, H]


def _word_table(
    g: Graph, ck: Pretrained, name: str, table: np.ndarray, ids: str, *, tables: dict[str, Any], vocab_chunks: int
) -> str:
    """The word table, gathered at ``ids``. Tied: stored once, as the projection's chunks (``tables["chunks"]``),
    which the projection reads as they are; untied: one table (the projection has its own)."""
    if not ck.tied:
        tables["table"] = g.const(name, table)
        return g.op("Gather", [tables["table"], ids], axis=0)
    bounds = chunk_bounds(ck.vocab, vocab_chunks)
    tables["chunks"] = [g.const(f"{name}.chunk{c}", table[start:end]) for c, (start, end) in enumerate(bounds)]
    return _gather_rows(g, tables["chunks"], bounds, ids)


def _embeddings(
    g: Graph, ck: Pretrained, inputs: _Inputs, quantized: bool, vocab_chunks: int
) -> tuple[str, dict[str, Any]]:
    """Word + position + token type 0 (single-segment input, folded into the position table), LayerNorm. Also
    returns the word table as the projection may read it (tied decoder): ``chunks`` (or ``table`` when untied),
    ``zero_point``, ``row_scale``."""
    hidden = ck.hidden
    word = ck.get("embeddings.word_embeddings.weight")
    positions = ck.tensors.get("embeddings.position_embeddings.weight")
    types = ck.tensors.get("embeddings.token_type_embeddings.weight")
    token_type = types if types is not None else np.zeros((1, hidden), dtype=np.float32)  # DistilBERT: none
    ids = inputs.ids
    tables: dict[str, Any] = {}
    if quantized:
        # Stored as uint8 = int8 + 128 (zero point 128): MLAS's fast integer GEMM wants an unsigned A.
        word_q, word_scale = quantize_rows(word)
        word_u8 = (word_q.astype(np.int16) + 128).astype(np.uint8)
        tables["zero_point"] = g.const("word_embeddings.zero_point", np.array(128, dtype=np.uint8))
        tables["row_scale"] = g.const("word_embeddings.scale", word_scale)
        raw = _word_table(g, ck, "word_embeddings.uint8", word_u8, ids, tables=tables, vocab_chunks=vocab_chunks)
        gathered = g.op("Cast", [raw], to=TensorProto.FLOAT)
        gathered = g.op("Sub", [gathered, g.const("f128", np.array(128.0, dtype=np.float32))])
        scale_of = g.op("Gather", [tables["row_scale"], ids], axis=0)
        scales = g.op("Unsqueeze", [scale_of, g.scalar_i64("axis_last", [-1])])
        word_emb = g.op("Mul", [gathered, scales])
    else:
        word_emb = _word_table(g, ck, "word_embeddings.weight", word, ids, tables=tables, vocab_chunks=vocab_chunks)
    inputs.shape = g.op("Shape", [ids])
    inputs.seq_len = g.op("Gather", [inputs.shape, g.const("idx1", np.array(1, dtype=np.int64))], axis=0)
    if positions is None:  # RoPE (GTE): no position table, token type 0 only when the model has token types
        x = word_emb if types is None else g.op("Add", [word_emb, g.const("token_type0", token_type[0])])
        return _layer_norm(g, x, ck, "embeddings.LayerNorm", ck.eps), tables
    pos_ids = g.op(
        "Range",
        [
            g.const("zero_i64", np.array(0, dtype=np.int64)), inputs.seq_len,
            g.const("one_i64", np.array(1, dtype=np.int64)),
        ],
    )  # fmt: skip
    pos_table = g.const("position_embeddings.type0", positions + token_type[0][None, :])
    pos_emb = g.op("Gather", [pos_table, pos_ids], axis=0)
    x = g.op("Add", [word_emb, pos_emb])
    return _layer_norm(g, x, ck, "embeddings.LayerNorm", ck.eps), tables


def _encoder(g: Graph, ck: Pretrained, x: str, mask: str, int8_encoder: bool) -> str:
    """The transformer layers: self-attention with an additive padding bias, then the feed-forward block."""
    hidden, heads = ck.hidden, ck.heads
    head_dim = hidden // heads
    # Additive attention bias [B, 1, 1, S]: 0 for tokens, -10000 for padding.
    mask_f = g.op("Cast", [mask], to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const("one_f", np.array(1.0, dtype=np.float32)), mask_f])
    bias = g.op("Mul", [inv, g.const("neg_big", np.array(-10000.0, dtype=np.float32))])
    attn_bias = g.op("Unsqueeze", [bias, g.scalar_i64("axes_1_2", [1, 2])])
    split_shape = g.scalar_i64("split_heads", [0, 0, heads, head_dim])
    merge_shape = g.scalar_i64("merge_heads", [0, 0, hidden])
    inv_sqrt = g.const("inv_sqrt_dh", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    eps = ck.eps
    for i in range(ck.layers):
        p = f"encoder.layer.{i}"

        def heads_of(name: str, perm: list[int], p: str = p, x: str = x) -> str:
            y = _dense(g, x, ck, f"{p}.attention.self.{name}", int8_encoder)
            return g.op("Transpose", [g.op("Reshape", [y, split_shape])], perm=perm)

        q = heads_of("query", [0, 2, 1, 3])  # [B, nh, S, dh]
        k = heads_of("key", [0, 2, 3, 1])  # [B, nh, dh, S]
        v = heads_of("value", [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), inv_sqrt]), attn_bias])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape])
        attn_out = _dense(g, ctx, ck, f"{p}.attention.output.dense", int8_encoder)
        x = _layer_norm(g, g.op("Add", [attn_out, x]), ck, f"{p}.attention.output.LayerNorm", eps)
        inter = _gelu(g, _dense(g, x, ck, f"{p}.intermediate.dense", int8_encoder))
        out = _dense(g, inter, ck, f"{p}.output.dense", int8_encoder)
        x = _layer_norm(g, g.op("Add", [out, x]), ck, f"{p}.output.LayerNorm", eps)
    return x


def _projection_input(g: Graph, h: str, inputs: _Inputs, hidden: int, quantized: bool) -> tuple[str, str | None]:
    """The MLM head's output laid out for the projection: [H, B*S] (int8 with one scale per document when
    ``quantized``), padding positions replaced by position 0 so they can never win the max. (tensor, scale)."""
    first = g.op("Slice", [h, g.scalar_i64("s0", [0]), g.scalar_i64("s1", [1]), g.scalar_i64("ax1", [1])])
    keep = g.op("Unsqueeze", [g.op("Cast", [inputs.mask], to=TensorProto.BOOL), g.scalar_i64("axis_m1", [-1])])
    h = g.op("Where", [keep, h, first])  # [B, S, H]
    inputs.batch = g.op("Gather", [inputs.shape, g.const("idx0", np.array(0, dtype=np.int64))], axis=0)
    flat_shape = g.scalar_i64("flat_h_bs", [hidden, -1])
    if not quantized:
        return g.op("Reshape", [g.op("Transpose", [h], perm=[2, 0, 1]), flat_shape]), None  # [H, B*S] float
    # One symmetric scale per document over its real positions.
    amax = g.op("ReduceMax", [g.op("Abs", [h]), g.scalar_i64("axes_12", [1, 2])], keepdims=1)
    tiny = g.const("tiny", np.array(1e-12, dtype=np.float32))
    h_scale = g.op("Div", [g.op("Max", [amax, tiny]), g.const("q127", np.array(127.0, dtype=np.float32))])
    hq = g.op("Cast", [g.op("Round", [g.op("Div", [h, h_scale])])], to=TensorProto.INT8)  # |.| <= 127
    return g.op("Reshape", [g.op("Transpose", [hq], perm=[2, 0, 1]), flat_shape]), h_scale  # [H, B*S] int8


def _pooled_projection(
    g: Graph, ck: Pretrained, hq_t: str, inputs: _Inputs, *, tables: dict[str, Any], quantized: bool, vocab_chunks: int
) -> str:
    """The vocabulary projection in chunks, each [chunk, B*S] accumulator max-pooled while it is still in cache
    (peak memory bounded by chunk x tokens instead of vocab x tokens): [B, V], before scales and bias."""
    batch_1d = g.op("Unsqueeze", [inputs.batch, g.scalar_i64("ax0", [0])])
    # One [-1, B, S] shape for every chunk: computed once per run, not once per chunk.
    seq_1d = g.op("Gather", [inputs.shape, g.const("idx1_1d", np.array([1], dtype=np.int64))], axis=0)
    chunk_shape = g.op("Concat", [g.scalar_i64("m1", [-1]), batch_1d, seq_1d], axis=0)
    table = tables.get("table", "")
    if not ck.tied:  # an untied decoder: the projection reads its own table
        if quantized:
            dec_q, dec_scale = quantize_rows(ck.decoder)
            table = g.const("decoder.uint8", (dec_q.astype(np.int16) + 128).astype(np.uint8))
            tables["row_scale"] = g.const("decoder.scale", dec_scale)
        else:
            table = g.const("decoder.weight", ck.decoder)
    parts = []
    for c, (start, end) in enumerate(chunk_bounds(ck.vocab, vocab_chunks)):
        if ck.tied:  # the word table's own chunks (stored once, see _word_table)
            rows = tables["chunks"][c]
        else:  # build-time constant folding turns these slices into the table's only copy
            starts, ends = g.scalar_i64(f"chunk{c}_start", [start]), g.scalar_i64(f"chunk{c}_end", [end])
            rows = g.op("Slice", [table, starts, ends, g.scalar_i64("ax0_", [0])])
        # [chunk, B*S]: int32 accumulators (int8) or float logits minus bias (fp32)
        acc = g.op("MatMulInteger", [rows, hq_t, tables["zero_point"]]) if quantized else g.op("MatMul", [rows, hq_t])
        parts.append(g.op("ReduceMax", [g.op("Reshape", [acc, chunk_shape]), g.scalar_i64("axes_2", [2])], keepdims=0))
    pooled = g.op("Concat", parts, axis=0) if len(parts) > 1 else parts[0]  # [V, B]
    return g.op("Transpose", [pooled], perm=[1, 0])  # [B, V]


def _splade_output(g: Graph, logits: str, activation: str, vocab: int) -> Any:
    """log(1 + relu(x)) (or OpenSearch's v3 log(1 + log(1 + relu(x)))) as the ``splade`` output [batch, vocab]."""
    one = g.const("one_out", np.array(1.0, dtype=np.float32))
    act = g.op("Log", [g.op("Add", [g.op("Relu", [logits]), one])])
    if activation == "log1p_log1p_relu":  # OpenSearch's v3 family: log(1 + log(1 + relu(x)))
        act = g.op("Log", [g.op("Add", [act, one])])
    g.nodes.append(helper.make_node("Identity", [act], ["splade"], name="output"))
    return helper.make_tensor_value_info("splade", TensorProto.FLOAT, ["batch", vocab])


def build(
    source: Path,
    precision: str,
    vocab_chunks: int = 16,
    *,
    activation: str = "log1p_relu",
    encoder: str = "auto",
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """Return the ONNX model and the facts the manifest records. ``precision`` is the projection's (int8, fp32,
    or the logits baseline); ``encoder``: int8 | fp32 | auto; ``activation``: one of ACTIVATIONS. Stages:
    embeddings, encoder layers, the MLM head transform, then the fused pooled projection (or logits)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    ck = load_pretrained(source)
    enc = "fp32" if precision == "logits" else encoder_precision(encoder, ck.hidden)
    quantized = precision == "int8"
    g = Graph()
    inputs = _Inputs("input_ids", "attention_mask")
    # the logits baseline gathers from one plain table, as fastembed's export does
    x, tables = _embeddings(g, ck, inputs, quantized, 1 if precision == "logits" else vocab_chunks)
    if ck.family == "new":  # GTE: RoPE, gated feed-forward (scripts/gte_graph.py)
        from scripts import gte_graph

        x = gte_graph.encoder(g, ck, x, inputs.mask, seq_len=inputs.seq_len, int8_encoder=enc == "int8")
    else:
        x = _encoder(g, ck, x, inputs.mask, enc == "int8")
    # MLM head transform: dense -> gelu -> LayerNorm, then the decoder (the word table when tied).
    h = _gelu(g, _dense(g, x, ck, "cls.predictions.transform.dense"))
    h = _layer_norm(g, h, ck, "cls.predictions.transform.LayerNorm", ck.eps)
    vocab_bias = ck.get("cls.predictions.bias")
    if precision == "logits":
        word_t = g.const("word_embeddings.weight_t", np.ascontiguousarray(ck.decoder.T))
        logits = g.op("Add", [g.op("MatMul", [h, word_t]), g.const("vocab_bias", vocab_bias)])
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="output"))
        out_info = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", ck.vocab])
    else:
        hq_t, h_scale = _projection_input(g, h, inputs, ck.hidden, quantized)
        pooled = _pooled_projection(g, ck, hq_t, inputs, tables=tables, quantized=quantized, vocab_chunks=vocab_chunks)
        if h_scale is not None:  # int8: back to float with the table's row scales and each document's scale
            pooled = g.op("Cast", [pooled], to=TensorProto.FLOAT)
            pooled = g.op("Mul", [pooled, tables["row_scale"]])
            pooled = g.op("Mul", [pooled, g.op("Reshape", [h_scale, g.scalar_i64("b1", [-1, 1])])])
        logits = g.op("Add", [pooled, g.const("vocab_bias", vocab_bias)])
        out_info = _splade_output(g, logits, activation, ck.vocab)
    return _model(g, precision, out_info), _facts(ck, activation, enc)


def _model(g: Graph, precision: str, out_info: Any) -> onnx.ModelProto:
    """The checked ONNX model around the graph's nodes and initializers."""
    graph = helper.make_graph(
        g.nodes,
        f"splade_{precision}",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [out_info],
        g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="splade-lambda build_model.py",
        producer_version="1",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def _facts(ck: Pretrained, activation: str, encoder: str) -> dict[str, Any]:
    """What the manifest records of the architecture."""
    return {
        "model_type": ck.family,
        "vocab_size": ck.vocab,
        "hidden_size": ck.hidden,
        "num_hidden_layers": ck.layers,
        "num_attention_heads": ck.heads,
        "max_position_embeddings": ck.max_positions,
        "position_offset": position_offset(ck.family, ck.pad_id),
        "pad_token_id": ck.pad_id,
        "tied_decoder": ck.tied,
        "activation": activation,
        "encoder_precision": encoder,
        "max_request_windows": estimated_request_windows(ck.layers, ck.hidden, ck.vocab),
        **({"architecture": ck.extra} if ck.extra else {}),  # GTE: RoPE, norms, qkv layout (scripts/gte.py)
    }


OPTIMIZATIONS = ("extended", "none")


def optimize(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph as ONNX Runtime's EXTENDED level rewrites it (constant folding, fusions such as BiasGelu), done
    once here so a cold start does not do it again: the Expander loads a graph marked optimized with ORT's
    optimizations off. EXTENDED is hardware-independent (no layout transforms), so a graph optimized on x86
    serves Graviton. Constant folding stores the projection's vocabulary chunks beside the embedding table
    (the copy ORT made in memory at every cold start before)."""
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        src.write_bytes(model.SerializeToString(deterministic=True))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(out)
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
        return onnx.load(str(out))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


WEIGHTS_SUFFIX = ".data"  # model.onnx -> model.onnx.data
WEIGHTS_MIN_BYTES = 1024  # smaller tensors (biases, norms, shapes) stay in the graph file
WEIGHTS_ALIGN = 4096  # each tensor starts on a page, so ONNX Runtime can map it instead of copying


def weights_path(graph: Path) -> Path:
    return graph.with_name(graph.name + WEIGHTS_SUFFIX)


def write_model(model: onnx.ModelProto, path: Path, weights: bool = False) -> str:
    """Write ``model`` to ``path``; return the sha256 that identifies it.

    ``weights``: every initializer of at least 1 KiB goes into ``<path>.data`` (ONNX external data, each tensor
    page-aligned), and the graph file keeps only their names, shapes and offsets. Measured in fresh processes,
    ONNX Runtime then creates the session in ~16 ms instead of ~31-41 ms, because it no longer parses 10 MB of
    protobuf and copies every tensor out of it. The returned digest is then the sha256 of the graph file's bytes
    followed by the weights file's. Both files are written deterministically.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    model = onnx.ModelProto.FromString(model.SerializeToString())  # the caller's model keeps its tensors
    blob = bytearray()
    if weights:
        for tensor in model.graph.initializer:
            raw = tensor.raw_data if tensor.HasField("raw_data") else numpy_helper.to_array(tensor).tobytes()
            if len(raw) < WEIGHTS_MIN_BYTES:
                continue
            blob.extend(b"\0" * (-len(blob) % WEIGHTS_ALIGN))
            offset = len(blob)
            blob.extend(raw)
            array_type = tensor.data_type
            dims = list(tensor.dims)
            name = tensor.name
            tensor.Clear()
            tensor.name, tensor.data_type = name, array_type
            tensor.dims.extend(dims)
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", weights_path(path).name), ("offset", offset), ("length", len(raw))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, str(value)
    data = model.SerializeToString(deterministic=True)
    digest = hashlib.sha256(data)
    if weights:
        _replace(weights_path(path), bytes(blob))
        digest.update(blob)
    else:
        weights_path(path).unlink(missing_ok=True)  # a one-file graph leaves no stale weights file beside it
    _replace(path, data)
    return digest.hexdigest()


def _replace(path: Path, content: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    tmp.replace(path)


def _special_tokens(path: Path, facts: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer's own framing, zeroed and padding tokens (splade_expander/specials.py), checked against
    the model."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if size != facts["vocab_size"]:
        raise PretrainedError(f"tokenizer.json has {size} tokens, the model's vocabulary {facts['vocab_size']}")
    try:
        return special_tokens(tokenizer, facts["pad_token_id"]).describe(tokenizer)
    except SpecialTokensError as exc:
        raise PretrainedError(f"tokenizer.json: {exc}") from None


def _manifest(
    args: argparse.Namespace, facts: dict[str, Any], *, written: list[Path], tokenizer_from: str, optimization: str,
    digest: str,
) -> dict[str, Any]:  # fmt: skip
    """manifest.json: the model's name and facts, every shipped file's sha256, the source's files, the build."""
    tokenizer = args.out / "tokenizer.json"
    provenance = json.loads(args.provenance.read_text()) if args.provenance else {}
    name = args.model_name or provenance.pop("name", "") or args.source.resolve().name
    provenance.pop("name", None)
    sources = ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")
    return {
        "name": name,
        "precision": args.precision,
        "max_length": facts["max_position_embeddings"],
        **facts,
        "files": {
            **{path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size} for path in written},
            "tokenizer.json": {"sha256": sha256_file(tokenizer), "bytes": tokenizer.stat().st_size},
        },
        "source": {
            **provenance,
            "tokenizer_from": tokenizer_from,
            "files": {f: sha256_file(args.source / f) for f in sources if (args.source / f).is_file()},
        },
        "build": {"script": "scripts/build_model.py", "opset": OPSET, "onnx": onnx.__version__},
        "graph_optimization": optimization,
        "model_sha256": digest,  # the graph file's bytes, then its weights file's
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source",
        type=Path,
        required=True,
        help="checkpoint: config.json, model.safetensors, tokenizer.json or vocab.txt",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output directory (model.onnx, tokenizer.json, manifest.json)"
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="int8")
    parser.add_argument(
        "--layers", "--encoder", dest="encoder", choices=ENCODERS, default="auto",
        help="the transformer layers' precision; auto: int8 from hidden size 512 up (--encoder: the name before 0.2)",
    )  # fmt: skip
    parser.add_argument("--activation", choices=ACTIVATIONS, default="log1p_relu")
    parser.add_argument("--model-name", default="", help="the manifest's name (default: provenance, else --source's)")
    parser.add_argument(
        "--vocab-chunks", type=int, default=16, help="vocabulary chunks of the projection (cache, memory)"
    )
    parser.add_argument("--name", default="model.onnx", help="file name of the graph inside --out")
    parser.add_argument(
        "--optimize",
        choices=OPTIMIZATIONS,
        default="extended",
        help="ORT graph optimizations applied at build time (the logits baseline is never optimized here)",
    )
    parser.add_argument("--provenance", type=Path, help="JSON file with source facts to copy into manifest.json")
    parser.add_argument("--manifest", action="store_true", help="also write tokenizer.json and manifest.json")
    args = parser.parse_args(argv)

    try:
        model, facts = build(
            args.source,
            args.precision,
            args.vocab_chunks,
            activation=args.activation,
            encoder=args.encoder,
        )
        if args.manifest:
            args.out.mkdir(parents=True, exist_ok=True)
            tokenizer_from = write_tokenizer_json(args.source, args.out / "tokenizer.json", facts["model_type"])
            facts["special_tokens"] = _special_tokens(args.out / "tokenizer.json", facts)
    except PretrainedError as exc:
        print(f"build_model: cannot convert {args.source}: {exc}", file=sys.stderr)
        return 2
    optimization = "none" if args.precision == "logits" else args.optimize
    if optimization == "extended":
        model = optimize(model)
    weights = args.precision != "logits"  # the fastembed-style baseline stays one file, as fastembed ships it
    digest = write_model(model, args.out / args.name, weights=weights)
    written = [p for p in (args.out / args.name, weights_path(args.out / args.name)) if p.is_file()]
    print(
        f"wrote {args.out / args.name} ({sum(p.stat().st_size for p in written) / 1e6:.1f} MB in "
        f"{' + '.join(p.name for p in written)}, sha256 {digest[:16]}...)"
    )
    if args.manifest:
        manifest = _manifest(
            args, facts, written=written, tokenizer_from=tokenizer_from, optimization=optimization, digest=digest
        )
        (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
