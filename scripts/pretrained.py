"""A local Hugging Face masked-LM checkpoint -> one canonical set of tensors and facts, checked.

Four families convert: ``model_type`` ``bert`` (BertForMaskedLM: naver/splade-v3, splade-cocondenser-*,
Splade_PP_en_v1, splade-tiny), ``distilbert`` (DistilBertForMaskedLM: naver/splade-v3-distilbert,
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scripts import gte

FAMILIES = ("bert", "distilbert", "roberta", "xlm-roberta", "new")  # new: GTE v1.5 (scripts/gte.py)
ROBERTA = ("roberta", "xlm-roberta")  # one architecture; XLM-R only has another tokenizer (Unigram, 250,002)
PREFIXES = ("bert.", "distilbert.", "roberta.", "new.")
IGNORED = re.compile(r"^(embeddings\.position_ids|pooler\..*|cls\.seq_relationship\..*)$")
DISTIL_RENAMES = (
    (r"^transformer\.layer\.(\d+)\.attention\.q_lin\.", r"encoder.layer.\1.attention.self.query."),
    (r"^transformer\.layer\.(\d+)\.attention\.k_lin\.", r"encoder.layer.\1.attention.self.key."),
    (r"^transformer\.layer\.(\d+)\.attention\.v_lin\.", r"encoder.layer.\1.attention.self.value."),
    (r"^transformer\.layer\.(\d+)\.attention\.out_lin\.", r"encoder.layer.\1.attention.output.dense."),
    (r"^transformer\.layer\.(\d+)\.sa_layer_norm\.", r"encoder.layer.\1.attention.output.LayerNorm."),
    (r"^transformer\.layer\.(\d+)\.ffn\.lin1\.", r"encoder.layer.\1.intermediate.dense."),
    (r"^transformer\.layer\.(\d+)\.ffn\.lin2\.", r"encoder.layer.\1.output.dense."),
    (r"^transformer\.layer\.(\d+)\.output_layer_norm\.", r"encoder.layer.\1.output.LayerNorm."),
    (r"^vocab_transform\.", "cls.predictions.transform.dense."),
    (r"^vocab_layer_norm\.", "cls.predictions.transform.LayerNorm."),
    (r"^vocab_projector\.weight$", "cls.predictions.decoder.weight"),
    (r"^vocab_projector\.bias$", "cls.predictions.bias"),
)

ROBERTA_RENAMES = (
    (r"^lm_head\.dense\.", "cls.predictions.transform.dense."),
    (r"^lm_head\.layer_norm\.", "cls.predictions.transform.LayerNorm."),
    (r"^lm_head\.decoder\.weight$", "cls.predictions.decoder.weight"),
    (r"^lm_head\.decoder\.bias$", "cls.predictions.decoder.bias"),
    (r"^lm_head\.bias$", "cls.predictions.bias"),
)
RENAMES = {"distilbert": DISTIL_RENAMES, "roberta": ROBERTA_RENAMES, "xlm-roberta": ROBERTA_RENAMES, "new": gte.RENAMES}


class PretrainedError(ValueError):
    """The checkpoint cannot be converted; the message names the file, tensor or setting at fault."""


@dataclass
class Pretrained:
    """Canonical (BERT) tensor names -> float32 arrays, and the architecture facts."""

    family: str
    tensors: dict[str, np.ndarray]
    vocab: int
    hidden: int
    heads: int
    layers: int
    intermediate: int
    eps: float
    max_positions: int
    tied: bool
    pad_id: int | None = None  # config.json's pad_token_id
    extra: dict[str, Any] = field(default_factory=dict)  # the family's own settings (GTE: RoPE, norms, qkv)

    def get(self, name: str) -> np.ndarray:
        return self.tensors[name]

    @property
    def decoder(self) -> np.ndarray:
        """The projection's [vocab, hidden] table: the word table when tied."""
        return self.tensors.get("cls.predictions.decoder.weight", self.tensors["embeddings.word_embeddings.weight"])


def _facts(config: dict[str, Any]) -> dict[str, Any]:
    family = config.get("model_type")
    if family not in FAMILIES:
        raise PretrainedError(f"config.json: model_type {family!r} is not supported (supported: {', '.join(FAMILIES)})")
    if family == "new":
        try:
            return gte.facts(config)
        except gte.ConfigError as exc:
            raise PretrainedError(f"config.json: {exc}") from None
    if family == "distilbert":
        keys = {"hidden": "dim", "heads": "n_heads", "layers": "n_layers", "intermediate": "hidden_dim"}
        act = config.get("activation", "gelu")
        eps = 1e-12  # DistilBERT's LayerNorms are built with eps=1e-12
    else:
        keys = {"hidden": "hidden_size", "heads": "num_attention_heads", "layers": "num_hidden_layers"}
        keys["intermediate"] = "intermediate_size"
        act = config.get("hidden_act", "gelu")
        eps = float(config.get("layer_norm_eps", 1e-12))
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise PretrainedError("config.json: only absolute position embeddings are supported")
    facts: dict[str, Any] = {"family": family, "eps": eps}
    for fact, key in {**keys, "vocab": "vocab_size"}.items():
        if key not in config:
            raise PretrainedError(f"config.json has no {key!r} (needed for a {family} checkpoint)")
        facts[fact] = int(config[key])
    if act != "gelu":
        raise PretrainedError(f"config.json: activation {act!r} is not supported (only exact 'gelu')")
    if facts["hidden"] % facts["heads"]:
        raise PretrainedError(f"hidden size {facts['hidden']} is not a multiple of {facts['heads']} heads")
    facts["max_positions"] = int(config.get("max_position_embeddings", 512))
    pad = config.get("pad_token_id")
    facts["pad_id"] = None if pad is None else int(pad)
    if family in ROBERTA and facts["pad_id"] is None:
        raise PretrainedError("config.json has no 'pad_token_id' (a RoBERTa model numbers positions from it)")
    return facts


def position_offset(family: str, pad_id: int | None) -> int:
    """The position-table row of a window's first token: ``pad_token_id + 1`` for RoBERTa, else 0."""
    return pad_id + 1 if family in ROBERTA and pad_id is not None else 0


def canonical_name(name: str, family: str) -> str:
    """``save_pretrained``'s name -> the BERT name without prefix."""
    for prefix in PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if family in RENAMES:
        for pattern, replacement in RENAMES[family]:
            name, n = re.subn(pattern, replacement, name)
            if n:
                break
    return name.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(".LayerNorm.beta", ".LayerNorm.bias")


def expected_shapes(c: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor the graph needs (optional ones excluded), with its shape."""
    h, v, i = c["hidden"], c["vocab"], c["intermediate"]
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (v, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
        "cls.predictions.transform.dense.weight": (h, h),
        "cls.predictions.transform.dense.bias": (h,),
        "cls.predictions.transform.LayerNorm.weight": (h,),
        "cls.predictions.transform.LayerNorm.bias": (h,),
    }
    if c["family"] == "new":
        return {**shapes, **gte.shapes(c)}
    shapes["embeddings.position_embeddings.weight"] = (c["max_positions"], h)
    for n in range(c["layers"]):
        p = f"encoder.layer.{n}"
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes[f"{p}.{name}.weight"], shapes[f"{p}.{name}.bias"] = (h, h), (h,)
        shapes[f"{p}.intermediate.dense.weight"], shapes[f"{p}.intermediate.dense.bias"] = (i, h), (i,)
        shapes[f"{p}.output.dense.weight"], shapes[f"{p}.output.dense.bias"] = (h, i), (h,)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}.{ln}.weight"], shapes[f"{p}.{ln}.bias"] = (h,), (h,)
    return shapes


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
    c = _facts(config)
    optional = {
        "embeddings.token_type_embeddings.weight": (None, c["hidden"]),
        "cls.predictions.decoder.weight": (c["vocab"], c["hidden"]),
        "cls.predictions.bias": (c["vocab"],),
        "cls.predictions.decoder.bias": (c["vocab"],),
    }
    shapes = expected_shapes(c)
    tensors: dict[str, np.ndarray] = {}
    with safe_open(str(source / "model.safetensors"), framework="numpy") as f:
        for raw in f.keys():  # noqa: SIM118  (safe_open has keys(), not iteration)
            name = canonical_name(raw, c["family"])
            if IGNORED.match(name):
                continue
            if name not in shapes and name not in optional:
                raise PretrainedError(
                    f"model.safetensors: unknown tensor {raw!r} (not part of a {c['family']} masked-LM); "
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
    _check_shapes(tensors, shapes, optional, c["family"])
    if c["family"] == "new":
        gte.finish(tensors, c)
    if "cls.predictions.decoder.bias" in tensors:
        # The decoder's own bias is the one the forward pass adds: transformers 5 unties it from the head's
        # ``bias`` when the decoder is untied (and saves both); before 5 the two are one tensor.
        tensors["cls.predictions.bias"] = tensors.pop("cls.predictions.decoder.bias")
    tensors.setdefault("cls.predictions.bias", np.zeros(c["vocab"], dtype=np.float32))
    offset = position_offset(c["family"], c["pad_id"])
    if offset:
        if offset >= c["max_positions"]:
            raise PretrainedError(f"config.json: pad_token_id {c['pad_id']} leaves no position rows")
        table = tensors["embeddings.position_embeddings.weight"]
        tensors["embeddings.position_embeddings.weight"] = np.ascontiguousarray(table[offset:])
        c["max_positions"] -= offset
    word = tensors["embeddings.word_embeddings.weight"]
    decoder = tensors.get("cls.predictions.decoder.weight")
    tied = decoder is None or np.array_equal(decoder, word)
    if tied:
        tensors.pop("cls.predictions.decoder.weight", None)
    return Pretrained(tensors=tensors, tied=tied, **c)


def write_tokenizer_json(source: Path, dest: Path, family: str = "bert") -> str:
    """``tokenizer.json`` copied from ``source`` as it is, or for BERT and DistilBERT built from ``vocab.txt``
    (WordPiece, lowercasing as ``tokenizer_config.json`` says, default on). Returns how it was made."""
    if (source / "tokenizer.json").is_file():
        dest.write_bytes((source / "tokenizer.json").read_bytes())
        return "tokenizer.json"
    if family in ROBERTA:
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
