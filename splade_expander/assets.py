"""A model directory's files, loaded: its manifest, its tokenizer (and the vocabulary strings it gives), its ONNX
Runtime session (one ``[batch, vocab]`` output)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import onnxruntime as ort
from tokenizers import Tokenizer

from .errors import ModelAssetsError
from .windows import CHARS_PER_TOKEN_BOUND

MODEL_FILES = ("model.onnx", "tokenizer.json")


def check_files(model_dir: Path) -> None:
    """ModelAssetsError naming the first missing file and what to run."""
    for name in MODEL_FILES:
        if not (model_dir / name).is_file():
            raise ModelAssetsError(
                f"could not find {name} in {model_dir}: build the bundled model with `splade-convert --bundled` "
                "(pip install 'splade-expander[convert]'; it lands in ~/.cache/splade-expander/model, where "
                "Expander() looks) or `make model` in a checkout, or pass model_dir= (or set MODEL_DIR) to a "
                "converted model"
            )


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """manifest.json (provenance, precision, budgets), or {} for a directory without one."""
    path = model_dir / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class Vocabulary(Sequence[str]):
    """id -> WordPiece string, built on first use (only ``to_terms`` needs it; keeps it out of cold start)."""

    def __init__(self, tokenizer: Tokenizer, size: int) -> None:
        self._tokenizer, self._size = tokenizer, size

    @cached_property
    def _strings(self) -> tuple[str, ...]:
        return tuple(self._tokenizer.id_to_token(i) or "" for i in range(self._size))

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: Any) -> Any:
        return self._strings[index]


def session_options(threads: int, optimized: bool) -> ort.SessionOptions:
    """``optimized``: the graph was optimized at build time (manifest ``graph_optimization``), so ORT does not
    optimize it again at every cold start; any other graph gets ORT's full optimization at load."""
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if optimized else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def load_session(path: Path, threads: int, optimized: bool, vocab_size: int) -> ort.InferenceSession:
    """The ONNX Runtime session, which must give one [batch, vocab] output."""
    session = ort.InferenceSession(str(path), session_options(threads, optimized), providers=["CPUExecutionProvider"])
    outputs = session.get_outputs()
    if len(outputs) != 1 or outputs[0].shape[-1] != vocab_size:
        raise ModelAssetsError(f"{path} must have one [batch, {vocab_size}] output")
    return session


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> list[Any]:
    """Each text's encoding, without special tokens (the windows add the model's framing)."""
    if not texts:
        return []
    try:
        if len(texts) == 1:  # one text: no batch dispatch (queries and titles come one at a time)
            return [tokenizer.encode(texts[0], add_special_tokens=False)]
        return list(tokenizer.encode_batch(list(texts), add_special_tokens=False))
    except TypeError:  # a lone surrogate (e.g. "\\ud800" escaped in JSON) cannot cross into Rust
        clean = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]  # lone surrogate -> "?"
        return list(tokenizer.encode_batch(clean, add_special_tokens=False))


def encode_first_window(tokenizer: Tokenizer, texts: Sequence[str], content: int) -> list[Any]:
    """Encodings that cover at least the first window of each text, without tokenizing megabytes for 254
    tokens: a prefix is encoded, and grown (x4) only while it is cut short of a window, e.g. by a long run
    of characters the tokenizer drops."""
    cut = content * CHARS_PER_TOKEN_BOUND * 2
    encodings = encode(tokenizer, [t[:cut] for t in texts])
    for i, text in enumerate(texts):
        size = cut
        while size < len(text) and len(encodings[i].ids) < content:
            size *= 4
            encodings[i] = encode(tokenizer, [text[:size]])[0]
    return encodings
