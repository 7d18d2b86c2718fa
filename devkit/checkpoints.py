"""Synthetic masked-LM checkpoints written the way ``save_pretrained`` writes them, with numpy + safetensors (no
torch): BERT and DistilBERT, with or without the model prefix, tied or untied decoder, with or without a decoder
bias, legacy ``gamma``/``beta`` LayerNorm names, ``tokenizer.json`` or only ``vocab.txt``, and optionally outlier
channels (a few hidden dimensions scaled ~20x by the LayerNorms, as trained BERTs have), which is what makes int8
activations hard; as in trained models, the query and key weights keep the attention logits moderate. The
vocabulary is the bundled model's (BERT uncased, 30,522 WordPieces).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from . import MODEL_DIR

BASE_SIZES = {
    "bert": {"layers": 12, "hidden": 768, "heads": 12},
    "distilbert": {"layers": 6, "hidden": 768, "heads": 12},
}


@dataclass(frozen=True)
class Spec:
    family: str = "bert"  # bert | distilbert
    layers: int = 2
    hidden: int = 64
    heads: int = 4
    prefix: bool = True  # "bert." / "distilbert." in front of the encoder's names
    tied: bool = True  # no decoder weight in the file (save_pretrained drops tied weights)
    decoder_bias: bool = True
    legacy_layer_norm: bool = False  # LayerNorm.gamma / .beta (old BERT checkpoints, splade-tiny)
    tokenizer: str = "json"  # json: tokenizer.json; vocab: vocab.txt + tokenizer_config.json only
    outliers: int = 0  # hidden dimensions whose LayerNorm gain is ~20x
    seed: int = 0


def vocabulary() -> list[str]:
    model = json.loads((MODEL_DIR / "tokenizer.json").read_text())["model"]["vocab"]
    return [t for t, _ in sorted(model.items(), key=lambda kv: kv[1])]


def _names(spec: Spec) -> dict[str, str]:
    """Canonical part -> the name in the file."""
    if spec.family == "bert":
        enc = "bert." if spec.prefix else ""
        layer = enc + "encoder.layer.{i}."
        return {
            "emb": enc + "embeddings.",
            "q": layer + "attention.self.query",
            "k": layer + "attention.self.key",
            "v": layer + "attention.self.value",
            "o": layer + "attention.output.dense",
            "ln1": layer + "attention.output.LayerNorm",
            "ff1": layer + "intermediate.dense",
            "ff2": layer + "output.dense",
            "ln2": layer + "output.LayerNorm",
            "head": "cls.predictions.transform.dense",
            "head_ln": "cls.predictions.transform.LayerNorm",
            "decoder": "cls.predictions.decoder.weight",
            "bias": "cls.predictions.bias",
        }
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


def write_checkpoint(dest: Path, spec: Spec = Spec()) -> Path:
    """A random ``spec`` checkpoint in ``dest`` (config.json, model.safetensors, tokenizer files)."""
    rng = np.random.default_rng(spec.seed)
    vocab = vocabulary()
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
    t[f"{emb}position_embeddings.weight"] = normal(512, h)
    if spec.family == "bert":
        t[f"{emb}token_type_embeddings.weight"] = normal(2, h)
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
    dest.mkdir(parents=True, exist_ok=True)
    save_file(t, str(dest / "model.safetensors"), metadata={"format": "pt"})
    (dest / "config.json").write_text(json.dumps(_config(spec, v), indent=2))
    if spec.tokenizer == "json":
        (dest / "tokenizer.json").write_bytes((MODEL_DIR / "tokenizer.json").read_bytes())
    else:
        (dest / "vocab.txt").write_text("\n".join(vocab) + "\n")
        (dest / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return dest


def _config(spec: Spec, vocab: int) -> dict[str, object]:
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
