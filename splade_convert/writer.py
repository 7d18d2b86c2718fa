"""What the converter writes: the graph optimized once at build time, the graph and its page-aligned external
weights, the tokenizer's special tokens checked against the model, and manifest.json (provenance and sha256s)."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, numpy_helper

from splade_expander.specials import SpecialTokensError, special_tokens

from .family import PretrainedError
from .graph import OPSET

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


def special_tokens_of(path: Path, facts: dict[str, Any]) -> dict[str, Any]:
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


def manifest(
    facts: dict[str, Any], *, out: Path, source: Path, precision: str, provenance: Path | None, model_name: str,
    written: list[Path], tokenizer_from: str, optimization: str, digest: str, script: str = "scripts/build_model.py",
) -> dict[str, Any]:  # fmt: skip
    """manifest.json: the model's name and facts, every shipped file's sha256, the source's files, the build."""
    tokenizer = out / "tokenizer.json"
    known = json.loads(provenance.read_text()) if provenance else {}
    name = model_name or known.pop("name", "") or source.resolve().name
    known.pop("name", None)
    sources = ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")
    return {
        "name": name,
        "precision": precision,
        "max_length": facts["max_position_embeddings"],
        **facts,
        "files": {
            **{path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size} for path in written},
            "tokenizer.json": {"sha256": sha256_file(tokenizer), "bytes": tokenizer.stat().st_size},
        },
        "source": {
            **known,
            "tokenizer_from": tokenizer_from,
            "files": {f: sha256_file(source / f) for f in sources if (source / f).is_file()},
        },
        "build": {"script": script, "opset": OPSET, "onnx": onnx.__version__},
        "graph_optimization": optimization,
        "model_sha256": digest,  # the graph file's bytes, then its weights file's
    }


def write_outputs(
    model: onnx.ModelProto, facts: dict[str, Any], args: argparse.Namespace, *, optimization: str, weights: bool,
    script: str = "scripts/build_model.py",
) -> None:  # fmt: skip
    """The graph (optimized when asked), then with ``--manifest`` the tokenizer and manifest.json; one line each."""
    if optimization == "extended":
        model = optimize(model)
    digest = write_model(model, args.out / args.name, weights=weights)
    written = [p for p in (args.out / args.name, weights_path(args.out / args.name)) if p.is_file()]
    print(
        f"wrote {args.out / args.name} ({sum(p.stat().st_size for p in written) / 1e6:.1f} MB in "
        f"{' + '.join(p.name for p in written)}, sha256 {digest[:16]}...)"
    )
    if args.manifest:
        made = manifest(
            facts, out=args.out, source=args.source, precision=args.precision, provenance=args.provenance,
            model_name=args.model_name, written=written, tokenizer_from=args.tokenizer_from,
            optimization=optimization, digest=digest, script=script,
        )  # fmt: skip
        (args.out / "manifest.json").write_text(json.dumps(made, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.out / 'manifest.json'}")


def write_tokenizer(args: argparse.Namespace, facts: dict[str, Any]) -> None:
    """``--manifest``: tokenizer.json into ``--out`` and its special tokens into the facts (PretrainedError when
    the tokenizer and the model disagree)."""
    from .pretrained import write_tokenizer_json

    args.out.mkdir(parents=True, exist_ok=True)
    args.tokenizer_from = write_tokenizer_json(args.source, args.out / "tokenizer.json", facts["model_type"])
    facts["special_tokens"] = special_tokens_of(args.out / "tokenizer.json", facts)
