"""``python scripts/build_model.py`` (``make model``, ``make convert``): a pretrained model directory -> the fused
SPLADE graph, its tokenizer and manifest.json in ``--out``.

    python scripts/build_model.py --source build/source --out model_assets [--precision int8|fp32]

The source directory holds ``model.safetensors``, ``config.json``, ``tokenizer.json`` (or ``vocab.txt``) and
optionally ``tokenizer_config.json``. Layers, hidden size, heads and vocabulary come from ``config.json``; the
family (registry.py) decides the rest.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from splade_expander import defaults

from .build import Activation, Layers, Precision, build
from .family import PretrainedError
from .weights import WeightsError, fetch
from .writer import OPTIMIZATIONS, write_outputs, write_tokenizer


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    made.add_argument("--source", type=Path, help="config.json, model.safetensors, tokenizer.json or vocab.txt")
    made.add_argument(
        "--bundled", action="store_true", help="build the bundled model (splade-tiny, int8) from its pinned weights "
        f"instead of --source; --out defaults to {defaults.USER_MODEL_DIR}, where the library looks for it",
    )  # fmt: skip
    made.add_argument("--out", type=Path, help="output directory (model.onnx, tokenizer.json, manifest.json)")
    made.add_argument("--precision", choices=tuple(Precision), default=Precision.INT8)
    made.add_argument(
        "--layers", "--encoder", dest="layers", choices=tuple(Layers), default=Layers.AUTO,
        help="the transformer layers' precision; auto: int8 from hidden size 512 up (--encoder: the name before 0.2)",
    )  # fmt: skip
    made.add_argument("--activation", choices=tuple(Activation), default=Activation.LOG1P_RELU)
    made.add_argument("--model-name", default="", help="the manifest's name (default: provenance, else --source's)")
    made.add_argument(
        "--vocab-chunks", type=int, default=16, help="vocabulary chunks of the projection (cache, memory)"
    )
    made.add_argument("--name", default="model.onnx", help="file name of the graph inside --out")
    made.add_argument(
        "--optimize", choices=OPTIMIZATIONS, default="extended", help="ORT graph optimizations applied at build time"
    )
    made.add_argument("--provenance", type=Path, help="JSON file with source facts to copy into manifest.json")
    made.add_argument("--manifest", action="store_true", help="also write tokenizer.json and manifest.json")
    return made


def main(argv: list[str] | None = None) -> int:
    made = parser()
    args = made.parse_args(argv)
    if args.bundled:
        return bundled(args)
    if args.source is None or args.out is None:
        made.error("--source and --out are required (or --bundled)")
    return convert(args)


def bundled(args: argparse.Namespace) -> int:
    """Fetch the pinned weights (verified), then build the int8 model with its manifest into --out."""
    out = args.out or defaults.USER_MODEL_DIR
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        try:
            fetch(source)
        except WeightsError as exc:
            print(f"splade-convert --bundled: {exc}", file=sys.stderr)
            return 1
        args.source, args.out, args.precision, args.manifest = source, out, Precision.INT8, True
        args.provenance = source / "provenance.json"
        code = convert(args)
    if code == 0:
        print(f"the bundled model is in {out}; Expander() finds it there")
    return code


def convert(args: argparse.Namespace) -> int:
    try:
        model, facts = build(
            args.source, args.precision, args.vocab_chunks, activation=args.activation, layers=args.layers
        )
        if args.manifest:
            write_tokenizer(args, facts)
    except PretrainedError as exc:
        print(f"build_model: cannot convert {args.source}: {exc}", file=sys.stderr)
        return 2
    write_outputs(model, facts, args, optimization=args.optimize, weights=True)
    return 0
