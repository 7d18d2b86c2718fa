"""The fused SPLADE graph of a pretrained model, stage by stage; each stage returns what the next reads.

    embeddings -> the family's layers -> the MLM head transform -> the projection input -> the pooled
    projection -> the activation (the ``splade`` output)

Graph contract (precision int8 or fp32):

    inputs   input_ids, attention_mask   int64 [batch, seq]
    output   splade                      float32 [batch, vocab]
             = max over unmasked positions of log1p(relu(mlm_logits))

The ``[batch, seq, vocab]`` logits never leave the graph.

int8: the tied word table is stored once, as int8 with one symmetric scale per vocabulary row, in the
projection's vocabulary chunks (``chunk_bounds``): the projection reads each chunk as it is, and the embedding
gathers each token's row from its chunk (one Gather per chunk, then GatherND), so build-time constant folding has
no slice of the table to copy. The head's hidden states get one symmetric scale per document,
the projection is a MatMulInteger into int32 laid out as ``W[V,H] @ h^T[H, B*S]``, the max over positions
is taken on the int32 accumulator (both scales are positive, so the max commutes with dequantizing), and
only ``[batch, vocab]`` is dequantized. Padding positions are replaced by a copy of position 0 ([CLS]) before
the projection, so they can never win the max and never change a document's scale: a vector does not
depend on what else is in the batch. The output is deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from .facts import facts
from .graph import IR_VERSION, OPSET, Graph, dense, gelu, layer_norm, quantize_rows
from .pretrained import Pretrained, load_pretrained
from .registry import family_of


class Precision(StrEnum):
    """The projection's precision (the benchmark's logits graph is scripts/logits_graph.py's)."""

    INT8 = "int8"
    FP32 = "fp32"


class Activation(StrEnum):
    """The term-weight activation: SPLADE's, or OpenSearch v3's (fastembed's if_splade.py)."""

    LOG1P_RELU = "log1p_relu"
    LOG1P_LOG1P_RELU = "log1p_log1p_relu"


class Layers(StrEnum):
    """The transformer layers' precision; AUTO: int8 from hidden size 512 up (where the layers dominate)."""

    AUTO = "auto"
    INT8 = "int8"
    FP32 = "fp32"


@dataclass
class WordTable:
    """The word table as the projection may read it (tied decoder): its chunks (or one table when untied), the
    uint8 zero point and the per-row scales (int8)."""

    chunks: list[str] = field(default_factory=list)
    table: str = ""
    zero_point: str = ""
    row_scale: str = ""


@dataclass
class Encoded:
    """The graph up to the MLM head transform: its hidden states ``h`` [B, S, H], the word table, and the shape
    of ``input_ids`` (and its sequence length) that the embeddings made."""

    g: Graph
    h: str
    words: WordTable
    shape: str
    seq_len: str


def chunk_bounds(vocab: int, chunks: int) -> list[tuple[int, int]]:
    """The projection's vocabulary chunks: ``ceil(vocab / chunks)`` rows each, the last one shorter, so row ``r`` is
    in chunk ``r // size``."""
    size = -(-vocab // chunks)
    return [(start, min(start + size, vocab)) for start in range(0, vocab, size)]


def gather_rows(g: Graph, chunks: list[str], bounds: list[tuple[int, int]], ids: str) -> str:
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


def model(g: Graph, name: str, inputs: list[Any], output: Any) -> onnx.ModelProto:
    """The checked ONNX model around the graph's nodes and initializers."""
    graph = helper.make_graph(g.nodes, name, inputs, [output], g.inits)
    built = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="splade-lambda build_model.py",
        producer_version="1",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(built, full_check=True)
    return built


def graph_inputs() -> list[Any]:
    """input_ids, attention_mask: int64 [batch, seq]."""
    return [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
    ]


def layers_precision(requested: str, hidden: int) -> str:
    """``auto``: int8 from hidden size 512 up (base-size models, where the layers dominate), else fp32."""
    if requested == Layers.AUTO:
        return Layers.INT8 if hidden >= 512 else Layers.FP32
    return requested


def _word_table(
    g: Graph, ck: Pretrained, name: str, table: np.ndarray, ids: str, *, vocab_chunks: int, words: WordTable
) -> str:
    """The word table, gathered at ``ids``. Tied: stored once, as the projection's chunks, which the projection
    reads as they are; untied: one table (the projection has its own)."""
    if not ck.tied:
        words.table = g.const(name, table)
        return g.op("Gather", [words.table, ids], axis=0)
    bounds = chunk_bounds(ck.vocab, vocab_chunks)
    words.chunks = [g.const(f"{name}.chunk{c}", table[start:end]) for c, (start, end) in enumerate(bounds)]
    return gather_rows(g, words.chunks, bounds, ids)


def embeddings(g: Graph, ck: Pretrained, quantized: bool, vocab_chunks: int) -> tuple[str, WordTable, str, str]:
    """Word + position + token type 0 (single-segment input, folded into the position table), LayerNorm:
    (x, the word table, Shape(input_ids), its sequence length)."""
    word = ck.get("embeddings.word_embeddings.weight")
    positions = ck.tensors.get("embeddings.position_embeddings.weight")
    types = ck.tensors.get("embeddings.token_type_embeddings.weight")
    token_type = types if types is not None else np.zeros((1, ck.hidden), dtype=np.float32)  # DistilBERT: none
    ids, words = "input_ids", WordTable()
    if quantized:
        # Stored as uint8 = int8 + 128 (zero point 128): MLAS's fast integer GEMM wants an unsigned A.
        word_q, word_scale = quantize_rows(word)
        word_u8 = (word_q.astype(np.int16) + 128).astype(np.uint8)
        words.zero_point = g.const("word_embeddings.zero_point", np.array(128, dtype=np.uint8))
        words.row_scale = g.const("word_embeddings.scale", word_scale)
        raw = _word_table(g, ck, "word_embeddings.uint8", word_u8, ids, vocab_chunks=vocab_chunks, words=words)
        gathered = g.op("Cast", [raw], to=TensorProto.FLOAT)
        gathered = g.op("Sub", [gathered, g.const("f128", np.array(128.0, dtype=np.float32))])
        scale_of = g.op("Gather", [words.row_scale, ids], axis=0)
        scales = g.op("Unsqueeze", [scale_of, g.scalar_i64("axis_last", [-1])])
        word_emb = g.op("Mul", [gathered, scales])
    else:
        word_emb = _word_table(g, ck, "word_embeddings.weight", word, ids, vocab_chunks=vocab_chunks, words=words)
    shape = g.op("Shape", [ids])
    seq_len = g.op("Gather", [shape, g.const("idx1", np.array(1, dtype=np.int64))], axis=0)
    if positions is None:  # RoPE (GTE): no position table, token type 0 only when the model has token types
        x = word_emb if types is None else g.op("Add", [word_emb, g.const("token_type0", token_type[0])])
        return layer_norm(g, x, ck, "embeddings.LayerNorm", ck.eps), words, shape, seq_len
    zero, one = g.const("zero_i64", np.array(0, dtype=np.int64)), g.const("one_i64", np.array(1, dtype=np.int64))
    pos_ids = g.op("Range", [zero, seq_len, one])
    pos_table = g.const("position_embeddings.type0", positions + token_type[0][None, :])
    pos_emb = g.op("Gather", [pos_table, pos_ids], axis=0)
    x = g.op("Add", [word_emb, pos_emb])
    return layer_norm(g, x, ck, "embeddings.LayerNorm", ck.eps), words, shape, seq_len


def encode(ck: Pretrained, *, quantized: bool, vocab_chunks: int, layers_int8: bool) -> Encoded:
    """Embeddings, the family's layers, then the MLM head transform (dense -> gelu -> LayerNorm)."""
    g = Graph()
    x, words, shape, seq_len = embeddings(g, ck, quantized, vocab_chunks)
    x = family_of(ck.family).layers(g, ck, x, "attention_mask", seq_len, layers_int8)
    h = gelu(g, dense(g, x, ck, "cls.predictions.transform.dense"))
    h = layer_norm(g, h, ck, "cls.predictions.transform.LayerNorm", ck.eps)
    return Encoded(g, h, words, shape, seq_len)


def projection_input(g: Graph, h: str, shape: str, hidden: int, quantized: bool) -> tuple[str, str | None, str]:
    """The MLM head's output laid out for the projection: [H, B*S] (int8 with one scale per document when
    ``quantized``), padding positions replaced by position 0 so they can never win the max. (tensor, scale,
    the batch size)."""
    first = g.op("Slice", [h, g.scalar_i64("s0", [0]), g.scalar_i64("s1", [1]), g.scalar_i64("ax1", [1])])
    keep = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.BOOL), g.scalar_i64("axis_m1", [-1])])
    h = g.op("Where", [keep, h, first])  # [B, S, H]
    batch = g.op("Gather", [shape, g.const("idx0", np.array(0, dtype=np.int64))], axis=0)
    flat_shape = g.scalar_i64("flat_h_bs", [hidden, -1])
    if not quantized:
        return g.op("Reshape", [g.op("Transpose", [h], perm=[2, 0, 1]), flat_shape]), None, batch  # [H, B*S]
    # One symmetric scale per document over its real positions.
    amax = g.op("ReduceMax", [g.op("Abs", [h]), g.scalar_i64("axes_12", [1, 2])], keepdims=1)
    tiny = g.const("tiny", np.array(1e-12, dtype=np.float32))
    h_scale = g.op("Div", [g.op("Max", [amax, tiny]), g.const("q127", np.array(127.0, dtype=np.float32))])
    hq = g.op("Cast", [g.op("Round", [g.op("Div", [h, h_scale])])], to=TensorProto.INT8)  # |.| <= 127
    return g.op("Reshape", [g.op("Transpose", [hq], perm=[2, 0, 1]), flat_shape]), h_scale, batch  # int8


def pooled_projection(
    enc: Encoded, ck: Pretrained, hq_t: str, batch: str, *, quantized: bool, vocab_chunks: int
) -> tuple[str, str]:
    """The vocabulary projection in chunks, each [chunk, B*S] accumulator max-pooled while it is still in cache
    (peak memory bounded by chunk x tokens instead of vocab x tokens): ([B, V] before scales and bias, the row
    scales to apply)."""
    g, words = enc.g, enc.words
    batch_1d = g.op("Unsqueeze", [batch, g.scalar_i64("ax0", [0])])
    # One [-1, B, S] shape for every chunk: computed once per run, not once per chunk.
    seq_1d = g.op("Gather", [enc.shape, g.const("idx1_1d", np.array([1], dtype=np.int64))], axis=0)
    chunk_shape = g.op("Concat", [g.scalar_i64("m1", [-1]), batch_1d, seq_1d], axis=0)
    table, row_scale = words.table, words.row_scale
    if not ck.tied:  # an untied decoder: the projection reads its own table
        if quantized:
            dec_q, dec_scale = quantize_rows(ck.decoder)
            table = g.const("decoder.uint8", (dec_q.astype(np.int16) + 128).astype(np.uint8))
            row_scale = g.const("decoder.scale", dec_scale)
        else:
            table = g.const("decoder.weight", ck.decoder)
    parts = []
    for c, (start, end) in enumerate(chunk_bounds(ck.vocab, vocab_chunks)):
        if ck.tied:  # the word table's own chunks (stored once, see _word_table)
            rows = words.chunks[c]
        else:  # build-time constant folding turns these slices into the table's only copy
            starts, ends = g.scalar_i64(f"chunk{c}_start", [start]), g.scalar_i64(f"chunk{c}_end", [end])
            rows = g.op("Slice", [table, starts, ends, g.scalar_i64("ax0_", [0])])
        # [chunk, B*S]: int32 accumulators (int8) or float logits minus bias (fp32)
        acc = g.op("MatMulInteger", [rows, hq_t, words.zero_point]) if quantized else g.op("MatMul", [rows, hq_t])
        parts.append(g.op("ReduceMax", [g.op("Reshape", [acc, chunk_shape]), g.scalar_i64("axes_2", [2])], keepdims=0))
    pooled = g.op("Concat", parts, axis=0) if len(parts) > 1 else parts[0]  # [V, B]
    return g.op("Transpose", [pooled], perm=[1, 0]), row_scale  # [B, V]


def splade_output(g: Graph, logits: str, activation: str, vocab: int) -> Any:
    """log(1 + relu(x)) (or OpenSearch's v3 log(1 + log(1 + relu(x)))) as the ``splade`` output [batch, vocab]."""
    one = g.const("one_out", np.array(1.0, dtype=np.float32))
    act = g.op("Log", [g.op("Add", [g.op("Relu", [logits]), one])])
    if activation == Activation.LOG1P_LOG1P_RELU:
        act = g.op("Log", [g.op("Add", [act, one])])
    g.nodes.append(helper.make_node("Identity", [act], ["splade"], name="output"))
    return helper.make_tensor_value_info("splade", TensorProto.FLOAT, ["batch", vocab])


def build(
    source: Path, precision: str, vocab_chunks: int = 16, *, activation: str = Activation.LOG1P_RELU,
    layers: str = Layers.AUTO,
) -> tuple[onnx.ModelProto, dict[str, Any]]:  # fmt: skip
    """The ONNX model and the facts the manifest records. ``precision``: the projection's (int8 | fp32);
    ``layers``: int8 | fp32 | auto; ``activation``: one of Activation."""
    if precision not in tuple(Precision):
        raise ValueError(f"precision must be one of {tuple(Precision)}, got {precision!r}")
    if activation not in tuple(Activation):
        raise ValueError(f"activation must be one of {tuple(Activation)}, got {activation!r}")
    ck = load_pretrained(source)
    chosen = layers_precision(layers, ck.hidden)
    quantized = precision == Precision.INT8
    enc = encode(ck, quantized=quantized, vocab_chunks=vocab_chunks, layers_int8=chosen == Layers.INT8)
    g = enc.g
    hq_t, h_scale, batch = projection_input(g, enc.h, enc.shape, ck.hidden, quantized)
    pooled, row_scale = pooled_projection(enc, ck, hq_t, batch, quantized=quantized, vocab_chunks=vocab_chunks)
    if h_scale is not None:  # int8: back to float with the table's row scales and each document's scale
        pooled = g.op("Cast", [pooled], to=TensorProto.FLOAT)
        pooled = g.op("Mul", [pooled, row_scale])
        pooled = g.op("Mul", [pooled, g.op("Reshape", [h_scale, g.scalar_i64("b1", [-1, 1])])])
    logits = g.op("Add", [pooled, g.const("vocab_bias", ck.get("cls.predictions.bias"))])
    output = splade_output(g, logits, activation, ck.vocab)
    return model(g, f"splade_{precision}", graph_inputs(), output), facts(ck, activation, str(chosen))
