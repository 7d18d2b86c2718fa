"""Synthetic masked-LM checkpoints written the way ``save_pretrained`` writes them, with numpy + safetensors (no
torch): BERT, DistilBERT, RoBERTa and XLM-RoBERTa, with or without the model prefix, tied or untied decoder,
with or without a decoder bias, legacy ``gamma``/``beta`` LayerNorm names, ``tokenizer.json`` or only
``vocab.txt``, and optionally outlier channels (a few hidden dimensions scaled ~20x by the LayerNorms, as trained
BERTs have), which is what makes int8 activations hard; as in trained models, the query and key weights keep the
attention logits moderate.

Vocabularies: BERT and DistilBERT use the bundled model's (BERT uncased, 30,522 WordPieces). RoBERTa gets a
byte-level BPE and XLM-R a SentencePiece-style Unigram tokenizer, each trained here with ``tokenizers``' own
trainers on the local corpus (devkit/corpus.py, a few thousand sentences), framed and numbered as the real ones
are: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3; RoBERTa's ``<mask>`` is 4, XLM-R's the last id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from splade_convert.families.roberta import Roberta
from splade_convert.registry import FAMILIES, model_types

from . import MODEL_DIR
from .corpus import HAND_WRITTEN, prose_paragraphs

BASE_SIZES = {
    "bert": {"layers": 12, "hidden": 768, "heads": 12},
    "distilbert": {"layers": 6, "hidden": 768, "heads": 12},
    "roberta": {"layers": 12, "hidden": 768, "heads": 12},
    "xlm-roberta": {"layers": 12, "hidden": 768, "heads": 12},
}
ROBERTA = model_types(Roberta)  # the converter's registry: one list of family names
ROBERTA_PAD = 1  # roberta-base's and xlm-roberta-base's pad_token_id: positions start at row 2
TRAINED_VOCAB = 4000


@dataclass(frozen=True)
class Spec:
    family: str = "bert"  # bert | distilbert | roberta | xlm-roberta
    layers: int = 2
    hidden: int = 64
    heads: int = 4
    prefix: bool = True  # "bert." / "distilbert." in front of the encoder's names
    tied: bool = True  # no decoder weight in the file (save_pretrained drops tied weights)
    decoder_bias: bool = True
    legacy_layer_norm: bool = False  # LayerNorm.gamma / .beta (old BERT checkpoints, splade-tiny)
    tokenizer: str = "json"  # BERT: json (tokenizer.json) or vocab (vocab.txt + tokenizer_config.json only)
    outliers: int = 0  # hidden dimensions whose LayerNorm gain is ~20x
    vocab: int | None = (
        None  # the tokenizer padded to this many ids (50,265 roberta-base, 105,879 mBERT, 250,002 XLM-R)
    )
    seed: int = 0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"Spec family {self.family!r} is none of the converter's: {', '.join(FAMILIES)}")


def vocabulary() -> list[str]:
    model = json.loads((MODEL_DIR / "tokenizer.json").read_text())["model"]["vocab"]
    return [t for t, _ in sorted(model.items(), key=lambda kv: kv[1])]


def _training_texts() -> list[str]:
    sentences = [s for p in prose_paragraphs(5) for s in re.split(r"(?<=[.!?]) ", p)]
    return sentences + HAND_WRITTEN + ["café — 東京 ﬁne naïve façade 日本語のテキスト"]


def _padded(tok: Tokenizer, size: int | None) -> Tokenizer:
    """``tok`` with its model's vocabulary padded to ``size`` by pieces no text ever produces (private-use
    characters; no merges reach them in BPE, WordPiece and Unigram never meet them in text): the real model's
    vocabulary size, for size and speed, with the trained behaviour."""
    if size is None:
        return tok
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    have = len(vocab)
    pieces = [f"\ue000{i}\ue001" for i in range(size - have)]
    if isinstance(vocab, dict):  # BPE, WordPiece: token -> id
        vocab.update({p: have + i for i, p in enumerate(pieces)})
    else:  # Unigram: [piece, log probability]
        vocab.extend([p, -99.0] for p in pieces)
    return Tokenizer.from_str(json.dumps(spec))


def _deterministic(tok: Tokenizer) -> Tokenizer:
    """The Unigram trainer finds the same pieces on every run but not the same scores (its float sums run in
    hash order), so ids and tokenizations would differ between runs: the pieces are put in sorted order after the
    special tokens and scored by their own frequency in the normalized corpus, which every run computes alike."""
    spec = json.loads(tok.to_str())
    normalizer = tok.normalizer
    assert normalizer is not None
    text = "▁" + "▁".join(normalizer.normalize_str(t).replace(" ", "▁") for t in _training_texts())
    vocab = spec["model"]["vocab"]
    specials = [entry for entry in vocab[:4]]
    pieces = sorted(p for p, _ in vocab[4:])
    total = len(text)
    spec["model"]["vocab"] = specials + [[p, float(np.log((text.count(p) + 1) / total))] for p in pieces]
    spec["model"]["unk_id"] = 3
    return Tokenizer.from_str(json.dumps(spec))


@cache
def trained_tokenizer(family: str, size: int | None = None) -> str:
    """tokenizer.json text: RoBERTa's byte-level BPE or XLM-R's Unigram, trained on the local corpus (``size``:
    padded to that many ids, e.g. roberta-base's 50,265)."""
    if family == "roberta":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        bpe = trainers.BpeTrainer(
            vocab_size=TRAINED_VOCAB, special_tokens=specials, show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )  # fmt: skip
        tok.train_from_iterator(_training_texts(), bpe)
        tok = _padded(tok, size)
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
        return tok.to_str()
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    unigram = trainers.UnigramTrainer(
        vocab_size=TRAINED_VOCAB, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>",
        show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(_training_texts(), unigram)
    tok = _padded(_deterministic(tok), None if size is None else size - 1)
    tok.add_special_tokens(["<mask>"])  # XLM-R's <mask> is its last id
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return tok.to_str()


def _names(spec: Spec) -> dict[str, str]:
    """Canonical part -> the name in the file."""
    if spec.family == "bert" or spec.family in ROBERTA:
        enc = ("bert." if spec.family == "bert" else "roberta.") if spec.prefix else ""
        layer = enc + "encoder.layer.{i}."
        encoder = {
            "emb": enc + "embeddings.",
            "q": layer + "attention.self.query",
            "k": layer + "attention.self.key",
            "v": layer + "attention.self.value",
            "o": layer + "attention.output.dense",
            "ln1": layer + "attention.output.LayerNorm",
            "ff1": layer + "intermediate.dense",
            "ff2": layer + "output.dense",
            "ln2": layer + "output.LayerNorm",
        }
        if spec.family == "bert":
            head = ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.")
            return {**encoder, "head": head[0], "head_ln": head[1], "decoder": head[2] + "decoder.weight",
                    "bias": head[2] + "bias"}  # fmt: skip
        return {**encoder, "head": "lm_head.dense", "head_ln": "lm_head.layer_norm",
                "decoder": "lm_head.decoder.weight", "bias": "lm_head.bias"}  # fmt: skip
    enc = "distilbert." if spec.prefix else ""
    layer = enc + "transformer.layer.{i}."
    return {
        "emb": enc + "embeddings.",
        "q": layer + "attention.q_lin",
        "k": layer + "attention.k_lin",
        "v": layer + "attention.v_lin",
        "o": layer + "attention.out_lin",
        "ln1": layer + "sa_layer_norm",
        "ff1": layer + "ffn.lin1",
        "ff2": layer + "ffn.lin2",
        "ln2": layer + "output_layer_norm",
        "head": "vocab_transform",
        "head_ln": "vocab_layer_norm",
        "decoder": "vocab_projector.weight",
        "bias": "vocab_projector.bias",
    }


def write_pretrained(dest: Path, spec: Spec = Spec()) -> Path:
    """A random ``spec`` checkpoint in ``dest`` (config.json, model.safetensors, tokenizer files)."""
    rng = np.random.default_rng(spec.seed)
    trained = _tokenizer_text(spec)
    vocab = vocabulary() if trained is None else [""] * Tokenizer.from_str(trained).get_vocab_size()
    v, h, ff = len(vocab), spec.hidden, 4 * spec.hidden
    names = _names(spec)
    gain = np.ones(h, dtype=np.float32)
    gain[rng.choice(h, spec.outliers, replace=False)] = 20.0
    t: dict[str, np.ndarray] = {}

    def normal(*shape: int, std: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def linear(name: str, out: int, inp: int) -> None:
        t[f"{name}.weight"], t[f"{name}.bias"] = normal(out, inp), normal(out, std=0.01)

    def norm(name: str, outlier: bool = False) -> None:
        g, b = ("gamma", "beta") if spec.legacy_layer_norm else ("weight", "bias")
        t[f"{name}.{g}"] = (1.0 + normal(h, std=0.05)) * (gain if outlier else 1.0)
        t[f"{name}.{b}"] = normal(h, std=0.02)

    emb = names["emb"]
    # Word rows of norm ~1 and a negative decoder bias: most logits are below 0 and a vector keeps a few hundred
    # to a few thousand terms, as trained SPLADE models do (a zero-mean bias would give dense vectors).
    t[f"{emb}word_embeddings.weight"] = normal(v, h, std=h**-0.5)
    t[f"{emb}position_embeddings.weight"] = normal(_positions(spec), h)
    if spec.family != "distilbert":
        t[f"{emb}token_type_embeddings.weight"] = normal(1 if spec.family in ROBERTA else 2, h)
    norm(f"{emb}LayerNorm", outlier=True)
    for i in range(spec.layers):
        for part in ("q", "k", "v", "o"):
            linear(names[part].format(i=i), h, h)
        for part in ("q", "k"):  # as trained models learn: outlier channels do not blow up the attention logits
            t[f"{names[part].format(i=i)}.weight"] /= gain[None, :]
        norm(names["ln1"].format(i=i), outlier=True)
        linear(names["ff1"].format(i=i), ff, h)
        linear(names["ff2"].format(i=i), h, ff)
        norm(names["ln2"].format(i=i), outlier=True)
    linear(names["head"], h, h)
    norm(names["head_ln"])
    if not spec.tied:
        t[names["decoder"]] = normal(v, h, std=h**-0.5)
    if spec.decoder_bias:
        t[names["bias"]] = normal(v, std=0.3) - 2.5
        if not spec.tied and spec.family != "distilbert":
            # transformers 5's save_pretrained of an untied head: the decoder's own bias (the one the forward
            # adds) and the head's ``bias``, left at its zero init (it is no longer the decoder's).
            t[names["bias"].replace(".bias", ".decoder.bias")] = t[names["bias"]]
            t[names["bias"]] = np.zeros(v, dtype=np.float32)
    dest.mkdir(parents=True, exist_ok=True)
    save_file(t, str(dest / "model.safetensors"), metadata={"format": "pt"})
    (dest / "config.json").write_text(json.dumps(_config(spec, v), indent=2))
    _write_tokenizer(dest, spec, trained, vocab)
    return dest


def _tokenizer_text(spec: Spec) -> str | None:
    """tokenizer.json for RoBERTa / XLM-R (trained here) or a padded BERT vocabulary; None: the bundled one."""
    if spec.family in ROBERTA:
        return trained_tokenizer(spec.family, spec.vocab)
    if spec.vocab:  # the bundled WordPiece vocabulary padded, e.g. to multilingual-v1's (mBERT's) 105,879
        return _padded(Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json")), spec.vocab).to_str()
    return None


def _write_tokenizer(dest: Path, spec: Spec, trained: str | None, vocab: list[str]) -> None:
    if trained is not None:
        (dest / "tokenizer.json").write_text(trained)
        if spec.family in ROBERTA:
            (dest / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(), indent=2))
    elif spec.tokenizer == "json":
        (dest / "tokenizer.json").write_bytes((MODEL_DIR / "tokenizer.json").read_bytes())
    else:
        (dest / "vocab.txt").write_text("\n".join(vocab) + "\n")
        (dest / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))


def _positions(spec: Spec) -> int:
    """RoBERTa's table has pad + 1 more rows: 514 for 512 positions."""
    return 512 + ROBERTA_PAD + 1 if spec.family in ROBERTA else 512


def _tokenizer_config() -> dict[str, object]:
    """What transformers' AutoTokenizer needs to load tokenizer.json with the model's special tokens."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "cls_token": "<s>",
        "sep_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>",
        "model_max_length": 512,
    }  # fmt: skip


def _config(spec: Spec, vocab: int) -> dict[str, object]:
    if spec.family in ROBERTA:
        arch = "RobertaForMaskedLM" if spec.family == "roberta" else "XLMRobertaForMaskedLM"
        return {
            "architectures": [arch], "model_type": spec.family, "vocab_size": vocab, "hidden_size": spec.hidden,
            "num_hidden_layers": spec.layers, "num_attention_heads": spec.heads, "intermediate_size": 4 * spec.hidden,
            "hidden_act": "gelu", "layer_norm_eps": 1e-5, "max_position_embeddings": _positions(spec),
            "type_vocab_size": 1, "pad_token_id": ROBERTA_PAD, "bos_token_id": 0, "eos_token_id": 2,
            "position_embedding_type": "absolute", "tie_word_embeddings": spec.tied,
        }  # fmt: skip
    if spec.family == "bert":
        return {
            "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": vocab,
            "hidden_size": spec.hidden, "num_hidden_layers": spec.layers, "num_attention_heads": spec.heads,
            "intermediate_size": 4 * spec.hidden, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
            "max_position_embeddings": 512, "type_vocab_size": 2, "tie_word_embeddings": spec.tied,
        }  # fmt: skip
    return {
        "architectures": ["DistilBertForMaskedLM"], "model_type": "distilbert", "vocab_size": vocab,
        "dim": spec.hidden, "n_layers": spec.layers, "n_heads": spec.heads, "hidden_dim": 4 * spec.hidden,
        "activation": "gelu", "max_position_embeddings": 512, "sinusoidal_pos_embds": False,
        "tie_weights_": spec.tied,
    }  # fmt: skip
