"""An independent numpy forward pass of a BERT, DistilBERT, RoBERTa or XLM-R masked-LM + SPLADE pooling, from the
checkpoint.

It shares no math with the converter (``splade_convert``, whose registry names the families) or the library: it
reads the safetensors tensors by their own names (``bert.``/``distilbert.``/``roberta.`` prefix or none, tied or untied
decoder), numbers RoBERTa's positions as transformers' ``create_position_ids_from_input_ids`` does (the running
count of non-pad tokens, plus ``pad_token_id``),
runs the model the textbook way (one sequence at a time, no padding, float64 math) and pools
``max_s log(1 + relu(logits))`` over the sequence (``log1p_log1p_relu``: one more log1p, OpenSearch v3's).
The tests compare the ONNX graphs with it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import load_file

from splade_convert.families.distilbert import DistilBert
from splade_convert.families.gte import Gte
from splade_convert.families.roberta import Roberta
from splade_convert.registry import family_of

if TYPE_CHECKING:
    from splade_expander.expander import Expander


class ReferenceSplade:
    """Textbook BERT-MLM SPLADE in float64 numpy."""

    def __init__(self, source: Path, activation: str = "log1p_relu") -> None:
        self.config = json.loads((source / "config.json").read_text())
        self.activation = activation
        raw = load_file(str(source / "model.safetensors"))
        self.t = {
            k.removeprefix("bert.").removeprefix("distilbert.").removeprefix("roberta."): v.astype(np.float64)
            for k, v in raw.items()
        }
        # The family by the converter's registry (one list of names); the math below is this oracle's own.
        family = type(family_of(self.config.get("model_type")))
        if family is DistilBert:
            self.logits = self._distil_logits  # type: ignore[method-assign]
        if family is Roberta:
            self.logits = self._roberta_logits  # type: ignore[method-assign]
        if family is Gte:  # GTE v1.5: devkit/gte.py
            from .gte import GteReference

            self.logits = GteReference(self.config, raw).logits  # type: ignore[method-assign]

    def _ln(self, x: np.ndarray, prefix: str) -> np.ndarray:
        gamma = self.t.get(f"{prefix}.gamma", self.t.get(f"{prefix}.weight"))
        beta = self.t.get(f"{prefix}.beta", self.t.get(f"{prefix}.bias"))
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        out: np.ndarray = (x - mean) / np.sqrt(var + self.config.get("layer_norm_eps", 1e-12)) * gamma + beta
        return out

    @staticmethod
    def _attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int) -> np.ndarray:
        n, hidden = q.shape
        dh = hidden // heads
        q, k, v = (m.reshape(n, heads, dh).transpose(1, 0, 2) for m in (q, k, v))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        scores -= scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        out: np.ndarray = (probs @ v).transpose(1, 0, 2).reshape(n, hidden)
        return out

    def _decoder(self, h: np.ndarray, weight: str, biases: tuple[str, ...]) -> np.ndarray:
        """h @ decoder^T + bias: the decoder weight when the checkpoint has one, else the tied word table; the first
        bias of ``biases`` there is (the decoder's own first: transformers 5 adds it, not the head's, when untied)."""
        table = self.t.get(weight, self.t["embeddings.word_embeddings.weight"])
        bias = next((self.t[b] for b in biases if b in self.t), 0.0)
        out: np.ndarray = h @ table.T + bias
        return out

    def _distil_logits(self, ids: list[int]) -> np.ndarray:
        """DistilBERT MLM logits [seq, vocab]: no token types; q_lin/k_lin/v_lin/out_lin, sa_layer_norm, ffn,
        output_layer_norm; vocab_transform -> gelu -> vocab_layer_norm -> vocab_projector."""
        n = len(ids)
        x = self.t["embeddings.word_embeddings.weight"][ids] + self.t["embeddings.position_embeddings.weight"][:n]
        x = self._ln(x, "embeddings.LayerNorm")
        for i in range(self.config["n_layers"]):
            p = f"transformer.layer.{i}"
            q, k, v = (self._linear(x, f"{p}.attention.{m}") for m in ("q_lin", "k_lin", "v_lin"))
            ctx = self._attention(q, k, v, self.config["n_heads"])
            x = self._ln(self._linear(ctx, f"{p}.attention.out_lin") + x, f"{p}.sa_layer_norm")
            ffn = self._linear(self._gelu(self._linear(x, f"{p}.ffn.lin1")), f"{p}.ffn.lin2")
            x = self._ln(ffn + x, f"{p}.output_layer_norm")
        h = self._ln(self._gelu(self._linear(x, "vocab_transform")), "vocab_layer_norm")
        return self._decoder(h, "vocab_projector.weight", ("vocab_projector.bias",))

    def _roberta_logits(self, ids: list[int]) -> np.ndarray:
        """RoBERTa / XLM-R MLM logits [seq, vocab]: BERT's encoder, positions counted from pad_token_id + 1,
        token type 0; lm_head.dense -> gelu -> lm_head.layer_norm -> decoder + lm_head.bias."""
        pad = self.config["pad_token_id"]
        not_pad = np.asarray(ids) != pad
        positions = np.cumsum(not_pad) * not_pad + pad
        x = (
            self.t["embeddings.word_embeddings.weight"][ids]
            + self.t["embeddings.position_embeddings.weight"][positions]
            + self.t["embeddings.token_type_embeddings.weight"][0]
        )
        h = self._head(self._bert_encoder(self._ln(x, "embeddings.LayerNorm")), "lm_head.dense", "lm_head.layer_norm")
        return self._decoder(h, "lm_head.decoder.weight", ("lm_head.decoder.bias", "lm_head.bias"))

    def _bert_encoder(self, x: np.ndarray) -> np.ndarray:
        """BERT's post-LayerNorm blocks (RoBERTa's are the same)."""
        heads = self.config["num_attention_heads"]
        for i in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{i}"
            q, k, v = (self._linear(x, f"{p}.attention.self.{m}") for m in ("query", "key", "value"))
            ctx = self._attention(q, k, v, heads)
            x = self._ln(self._linear(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
            inter = self._gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._ln(self._linear(inter, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        return x

    def _head(self, x: np.ndarray, dense: str, norm: str) -> np.ndarray:
        return self._ln(self._gelu(self._linear(x, dense)), norm)

    def _linear(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self.t[f"{prefix}.weight"].T + self.t[f"{prefix}.bias"]

    @staticmethod
    def _gelu(x: np.ndarray) -> np.ndarray:
        erf = np.frompyfunc(math.erf, 1, 1)
        return 0.5 * x * (1.0 + np.asarray(erf(x / math.sqrt(2.0)), dtype=np.float64))

    def logits(self, ids: list[int]) -> np.ndarray:
        """MLM logits [seq, vocab] for one unpadded sequence of token ids."""
        n = len(ids)
        x = (
            self.t["embeddings.word_embeddings.weight"][ids]
            + self.t["embeddings.position_embeddings.weight"][:n]
            + self.t["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._bert_encoder(self._ln(x, "embeddings.LayerNorm"))
        h = self._head(x, "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm")
        return self._decoder(
            h, "cls.predictions.decoder.weight", ("cls.predictions.decoder.bias", "cls.predictions.bias")
        )

    def splade(self, ids: list[int]) -> np.ndarray:
        """SPLADE vector [vocab]: max over positions of log(1 + relu(logits))."""
        out: np.ndarray = np.log1p(np.maximum(self.logits(ids), 0.0)).max(axis=0)
        if self.activation == "log1p_log1p_relu":
            out = np.log1p(out)
        return out


def fidelity(got: list[np.ndarray], want: list[np.ndarray], top: int = 32) -> dict[str, float]:
    """How close dense vectors ``got`` are to ``want``: max abs diff, mean / min cosine, mean top-``top`` overlap."""
    cos, overlap = [], []
    for g, w in zip(got, want, strict=True):
        norm = float(np.linalg.norm(g) * np.linalg.norm(w))
        cos.append(float(g @ w) / norm if norm else float(np.array_equal(g, w)))
        overlap.append(len(set(np.argsort(-g)[:top]) & set(np.argsort(-w)[:top])) / top)
    return {
        "max_abs": float(max(np.abs(g - w).max() for g, w in zip(got, want, strict=True))),
        "mean_cos": float(np.mean(cos)),
        "min_cos": float(np.min(cos)),
        "top_overlap": float(np.mean(overlap)),
    }


def window_fidelity(expander: Expander, reference: ReferenceSplade, texts: list[str]) -> dict[str, float]:
    """``fidelity`` of the Expander's first-window vectors against the reference's on the same framed ids, special
    tokens zeroed in both."""
    got, want = [], []
    for text in texts:
        ids = expander.tokenizer.encode(text, add_special_tokens=False).ids[: expander.content_tokens]
        vec = reference.splade(expander.specials.frame(ids))
        vec[expander.special_ids] = 0.0
        want.append(vec)
        got.append(expander.expand([text], truncate=True)[0].dense(expander.vocab_size))
    return fidelity(got, want)
