"""A local Hugging Face masked-LM directory (a pretrained model) -> one canonical set of tensors and facts, checked.

The families convert (``registry.FAMILIES``): ``model_type`` ``bert`` (BertForMaskedLM: naver/splade-v3,
splade-cocondenser-*, Splade_PP_en_v1, splade-tiny), ``distilbert`` (DistilBertForMaskedLM: naver/splade-v3-distilbert,
opensearch-neural-sparse-encoding-doc-v2/v3-distill), ``roberta`` (RobertaForMaskedLM: ibm-granite's
granite-embedding-30m-sparse) and ``xlm-roberta`` (XLMRobertaForMaskedLM). Tensor names are read exactly as
``save_pretrained`` writes them, with or without the ``bert.`` / ``distilbert.`` / ``roberta.`` prefix, with a
tied decoder (no decoder weight: the word table) or an untied one, with or without a decoder bias. DistilBERT's
and RoBERTa's names are mapped onto BERT's: the math is the same (post-LayerNorm blocks, a dense -> gelu ->
LayerNorm -> decoder head). DistilBERT has no token types. RoBERTa numbers positions from ``pad_token_id + 1``
(transformers' ``create_position_ids_from_input_ids``), so its position table is read from that row on: the
graph's positions 0, 1, ... are RoBERTa's ``pad + 1``, ``pad + 2``, ...

Every tensor of the checkpoint must be used or be one that an MLM never reads (``position_ids``, the pooler, the
next-sentence head); every expected tensor must be there with its shape. Anything else is a PretrainedError that
names the tensor: a checkpoint that cannot be converted never yields a wrong graph.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .family import Arch, Family, Pretrained, PretrainedError
from .registry import FAMILIES, PREFIXES, family_of

IGNORED = re.compile(r"^(embeddings\.position_ids|pooler\..*|cls\.seq_relationship\..*)$")
SHARED_SHAPES = (  # every family's: the word table, the embedding norm and the MLM head (name, shape in (h, v))
    ("embeddings.word_embeddings.weight", ("v", "h")), ("embeddings.LayerNorm.weight", ("h",)),
    ("embeddings.LayerNorm.bias", ("h",)), ("cls.predictions.transform.dense.weight", ("h", "h")),
    ("cls.predictions.transform.dense.bias", ("h",)), ("cls.predictions.transform.LayerNorm.weight", ("h",)),
    ("cls.predictions.transform.LayerNorm.bias", ("h",)),
)  # fmt: skip

__all__ = ["FAMILIES", "Pretrained", "PretrainedError", "load_pretrained", "write_tokenizer_json"]


def arch_of(config: dict[str, Any]) -> Arch:
    """The checked architecture of ``config.json``, by its family."""
    return family_of(config.get("model_type")).arch(config)


def canonical_name(name: str, family: Family) -> str:
    """``save_pretrained``'s name -> the BERT name without prefix."""
    for prefix in PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    name = family.rename(name)
    return name.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(".LayerNorm.beta", ".LayerNorm.bias")


def expected_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    """Every tensor the graph needs (optional ones excluded), with its shape."""
    sizes = {"h": arch.hidden, "v": arch.vocab}
    shared = {name: tuple(sizes[d] for d in dims) for name, dims in SHARED_SHAPES}
    return {**shared, **family_of(arch.family).shapes(arch)}


def _check_shapes(
    tensors: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]], optional: dict[str, tuple[int | None, ...]],
    family: str,
) -> None:  # fmt: skip
    """Every expected tensor is there with its shape; an optional one, when there, has its shape (None: any)."""
    for name, shape in shapes.items():
        if name not in tensors:
            raise PretrainedError(f"model.safetensors: missing tensor {name!r} (any prefix) for a {family} model")
        if tensors[name].shape != shape:
            raise PretrainedError(
                f"model.safetensors: tensor {name!r} has shape {tensors[name].shape}, expected {shape}"
            )
    for name, want in optional.items():
        got = tensors.get(name)
        if got is not None and (
            len(got.shape) != len(want) or any(w and g != w for g, w in zip(got.shape, want, strict=False))
        ):
            raise PretrainedError(f"model.safetensors: tensor {name!r} has shape {got.shape}, expected {want}")


def load_pretrained(source: Path) -> Pretrained:
    """Read ``config.json`` and ``model.safetensors`` from ``source``; PretrainedError names what is wrong."""
    from safetensors import safe_open

    for required in ("config.json", "model.safetensors"):
        if not (source / required).is_file():
            raise PretrainedError(f"could not find {required} in {source}")
    config = json.loads((source / "config.json").read_text())
    family = family_of(config.get("model_type"))
    c = family.arch(config)
    optional = {
        "embeddings.token_type_embeddings.weight": (None, c.hidden),
        "cls.predictions.decoder.weight": (c.vocab, c.hidden),
        "cls.predictions.bias": (c.vocab,),
        "cls.predictions.decoder.bias": (c.vocab,),
    }
    shapes = expected_shapes(c)
    tensors: dict[str, np.ndarray] = {}
    with safe_open(str(source / "model.safetensors"), framework="numpy") as f:
        for raw in f.keys():  # noqa: SIM118  (safe_open has keys(), not iteration)
            name = canonical_name(raw, family)
            if IGNORED.match(name):
                continue
            if name not in shapes and name not in optional:
                raise PretrainedError(
                    f"model.safetensors: unknown tensor {raw!r} (not part of a {c.family} masked-LM); "
                    "only BertForMaskedLM / DistilBertForMaskedLM / RobertaForMaskedLM / XLMRobertaForMaskedLM "
                    "checkpoints convert"
                )
            if name in tensors:
                raise PretrainedError(f"model.safetensors: {raw!r} duplicates {name!r}")
            try:
                array = f.get_tensor(raw)
            except (TypeError, ValueError) as exc:  # bfloat16 has no numpy type
                raise PretrainedError(f"model.safetensors: tensor {raw!r} cannot be read as numpy ({exc})") from None
            tensors[name] = array.astype(np.float32)
    _check_shapes(tensors, shapes, optional, c.family)
    family.finish(tensors, c)
    if "cls.predictions.decoder.bias" in tensors:
        # The decoder's own bias is the one the forward pass adds: transformers 5 unties it from the head's
        # ``bias`` when the decoder is untied (and saves both); before 5 the two are one tensor.
        tensors["cls.predictions.bias"] = tensors.pop("cls.predictions.decoder.bias")
    tensors.setdefault("cls.predictions.bias", np.zeros(c.vocab, dtype=np.float32))
    offset = family.position_offset(c)
    if offset:
        if offset >= c.max_positions:
            raise PretrainedError(f"config.json: pad_token_id {c.pad_id} leaves no position rows")
        table = tensors["embeddings.position_embeddings.weight"]
        tensors["embeddings.position_embeddings.weight"] = np.ascontiguousarray(table[offset:])
        c.max_positions -= offset
    word = tensors["embeddings.word_embeddings.weight"]
    decoder = tensors.get("cls.predictions.decoder.weight")
    tied = decoder is None or np.array_equal(decoder, word)
    if tied:
        tensors.pop("cls.predictions.decoder.weight", None)
    return Pretrained(tensors=tensors, tied=tied, **c.__dict__)


def write_tokenizer_json(source: Path, dest: Path, family: str) -> str:
    """``tokenizer.json`` copied from ``source`` as it is, or for BERT and DistilBERT built from ``vocab.txt``
    (WordPiece, lowercasing as ``tokenizer_config.json`` says, default on). Returns how it was made."""
    if (source / "tokenizer.json").is_file():
        dest.write_bytes((source / "tokenizer.json").read_bytes())
        return "tokenizer.json"
    if family_of(family).tokenizer_json_required:
        raise PretrainedError(
            f"could not find tokenizer.json in {source} (a {family} model needs it: save the fast tokenizer "
            "with save_pretrained)"
        )
    vocab = source / "vocab.txt"
    if not vocab.is_file():
        raise PretrainedError(f"could not find tokenizer.json or vocab.txt in {source}")
    from tokenizers.implementations import BertWordPieceTokenizer  # type: ignore[attr-defined]

    settings = {}
    if (source / "tokenizer_config.json").is_file():
        settings = json.loads((source / "tokenizer_config.json").read_text())
    lowercase = bool(settings.get("do_lower_case", True))
    strip_accents = settings.get("strip_accents")
    tokenizer = BertWordPieceTokenizer(str(vocab), lowercase=lowercase, strip_accents=strip_accents)
    for token in ("[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]"):
        if tokenizer.token_to_id(token) is None:
            raise PretrainedError(f"vocab.txt has no {token} token")
    tokenizer.save(str(dest))
    return "vocab.txt"
