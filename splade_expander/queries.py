"""Query encoders besides the document model: inference-free ``idf`` weights and an asymmetric ``query/`` model.

A model directory may hold:

* ``idf.json`` (OpenSearch's format, ``{"token": weight}``): ``kind="query"`` then needs no model run. Each
  distinct token of the query (its first window, special tokens excluded) gets its idf weight, as OpenSearch's
  doc-only encoding does; a token missing from the file gets none. ``make idf`` writes the file from a corpus.
* ``query/`` with its own ``model.onnx`` and ``tokenizer.json`` (same vocabulary): the query model.

``kind="query"`` uses idf when there is an idf.json, else the query model when there is one, else the document
model; ``query_encoder="model"`` asks for a model (the query model, else the document model), and
``query_encoder="idf"`` for idf (an error without idf.json).
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidRequestError, ModelAssetsError


class Encoder(StrEnum):
    """What turned a text into its vector (``SparseVector.encoder``): the document model, the query/ model, or
    idf weights (no model run)."""

    DOCUMENT = "document"
    QUERY = "query"
    IDF = "idf"


QUERY_ENCODERS = ("idf", "model")  # what a request may ask for (query_encoder)
IDF_FILE = "idf.json"
QUERY_DIR = "query"


class IdfWeights:
    """``idf.json`` as a dense [vocab] float32 array (0 where the file has no weight)."""

    def __init__(self, path: Path, tokenizer: Any, vocab_size: int) -> None:
        data = path.read_bytes()
        try:
            table = json.loads(data)
        except ValueError as exc:
            raise ModelAssetsError(f"{path} is not JSON: {exc}") from None
        if not isinstance(table, dict):
            raise ModelAssetsError(f"{path} must be a JSON object of token -> weight")
        self.weights = np.zeros(vocab_size, dtype=np.float32)
        unknown = []
        for token, weight in table.items():
            index = tokenizer.token_to_id(token)
            if index is None or index >= vocab_size:
                unknown.append(token)
                continue
            if (
                not isinstance(weight, int | float)
                or isinstance(weight, bool)
                or not math.isfinite(weight)
                or weight < 0
            ):
                raise ModelAssetsError(f"{path}: the weight of {token!r} must be a finite number >= 0, not {weight!r}")
            self.weights[index] = weight
        if unknown:
            raise ModelAssetsError(
                f"{path}: {len(unknown)} tokens are not in the model's vocabulary (e.g. {unknown[:3]}); "
                "was it made for another tokenizer?"
            )
        import hashlib  # only with an idf.json: loading OpenSSL costs ~5 ms of a cold start

        self.info = {"tokens": len(table), "sha256": hashlib.sha256(data).hexdigest()}


def load_idf(model_dir: Path, tokenizer: Any, vocab_size: int) -> IdfWeights | None:
    path = model_dir / IDF_FILE
    return IdfWeights(path, tokenizer, vocab_size) if path.is_file() else None


def query_model_dir(model_dir: Path) -> Path | None:
    path = model_dir / QUERY_DIR
    return path if (path / "model.onnx").is_file() else None


def choose(requested: str | None, kind: str, *, has_idf: bool, has_query_model: bool) -> Encoder:
    """The encoder of a request: ``document``, ``query`` (the query model) or ``idf``."""
    if requested is not None and kind != "query":
        raise InvalidRequestError("query_encoder applies to kind=query only", field="query_encoder")
    if kind != "query":
        return Encoder.DOCUMENT
    if requested == "idf" and not has_idf:
        raise InvalidRequestError(
            f"query_encoder idf needs {IDF_FILE} in the model directory (make idf writes it)", field="query_encoder"
        )
    if requested == "idf" or (requested is None and has_idf):
        return Encoder.IDF
    return Encoder.QUERY if has_query_model else Encoder.DOCUMENT
