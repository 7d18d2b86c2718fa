"""The benchmark's fastembed-style baseline (``make model`` builds it into build/model_logits): the same
pretrained model converted to fp32 with ``[batch, seq, vocab]`` logits out and pooling left to the caller, one
graph file, not optimized at build time, as fastembed ships its models. Benchmark only: nothing serves it.

    python scripts/logits_graph.py --source build/source --out build/model_logits [--manifest]
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from splade_convert.build import Activation, Layers, encode, graph_inputs, model
from splade_convert.cli import parser
from splade_convert.facts import facts
from splade_convert.family import PretrainedError
from splade_convert.pretrained import load_pretrained
from splade_convert.writer import write_outputs, write_tokenizer


def build_logits(args: Any) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The graph: embeddings (one plain word table, as fastembed's export gathers), the layers in fp32, the MLM
    head, then ``logits = h @ W^T + b``."""
    ck = load_pretrained(args.source)
    enc = encode(ck, quantized=False, vocab_chunks=1, layers_int8=False)
    g = enc.g
    word_t = g.const("word_embeddings.weight_t", np.ascontiguousarray(ck.decoder.T))
    logits = g.op("Add", [g.op("MatMul", [enc.h, word_t]), g.const("vocab_bias", ck.get("cls.predictions.bias"))])
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="output"))
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", ck.vocab])
    return model(g, "splade_logits", graph_inputs(), output), facts(ck, Activation.LOG1P_RELU, Layers.FP32)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.precision = "logits"
    try:
        built, made = build_logits(args)
        if args.manifest:
            write_tokenizer(args, made)
    except PretrainedError as exc:
        print(f"logits_graph: cannot convert {args.source}: {exc}", file=sys.stderr)
        return 2
    write_outputs(built, made, args, optimization="none", weights=False, script="scripts/logits_graph.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
