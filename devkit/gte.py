"""GTE v1.5 (``model_type: new``) for tests and the bench: random ``NewForMaskedLM`` checkpoints with the tensor
names the official ``new-impl`` modeling file's ``save_pretrained`` writes, and a float64 numpy forward pass written
from reading that file (nothing shared with scripts/gte.py or the graph).

The doc-v3-gte configuration: OpenSearch's card gives 133 M parameters, 30,522 output dimensions and 8,192
positions; the other fields are GTE v1.5 base's (``gte-base-en-v1.5``: RoPE with theta 500,000 and NTK scaling of
factor 2, packed qkv, LayerNorm, no token types), since the checkpoint's own config.json was not at hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from . import MODEL_DIR

DOC_V3_GTE: dict[str, Any] = {
    "architectures": ["NewForMaskedLM"], "model_type": "new", "vocab_size": 30522, "hidden_size": 768,
    "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.0, "max_position_embeddings": 8192,
    "type_vocab_size": 0, "initializer_range": 0.02, "layer_norm_type": "layer_norm", "layer_norm_eps": 1e-12,
    "position_embedding_type": "rope", "rope_theta": 500000.0, "rope_scaling": {"type": "ntk", "factor": 2.0},
    "pack_qkv": True, "unpad_inputs": False, "use_memory_efficient_attention": False,
    "logn_attention_scale": False, "logn_attention_clip1": False, "pad_token_id": 0,
    "auto_map": {"AutoConfig": "Alibaba-NLP/new-impl--configuration.NewConfig",
                 "AutoModelForMaskedLM": "Alibaba-NLP/new-impl--modeling.NewForMaskedLM"},
}  # fmt: skip
SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}


def write_gte(
    dest: Path, config: dict[str, Any], *, outliers: int = 0, seed: int = 0, tied: bool = True, qk_std: float = 0.02
) -> Path:
    """A random checkpoint of ``config`` (DOC_V3_GTE with overrides) in ``dest``, the bundled WordPiece tokenizer.
    Linears are drawn as the modeling file initialises them (normal, initializer_range 0.02); ``qk_std`` above that
    sharpens attention, so that positions (and so RoPE's frequencies) weigh more in the vector."""
    rng = np.random.default_rng(seed)
    h, i, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    gain = np.ones(h, dtype=np.float32)
    gain[rng.choice(h, outliers, replace=False)] = 20.0
    t: dict[str, np.ndarray] = {}

    def normal(*shape: int, std: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def norm(name: str, outlier: bool = True) -> None:
        t[f"{name}.weight"] = (1.0 + normal(h, std=0.05)) * (gain if outlier else 1.0)
        if config.get("layer_norm_type", "layer_norm") == "layer_norm" or not name.startswith("new.encoder"):
            t[f"{name}.bias"] = normal(h)

    t["new.embeddings.word_embeddings.weight"] = normal(v, h, std=h**-0.5)
    if config.get("type_vocab_size", 1) > 0:
        t["new.embeddings.token_type_embeddings.weight"] = normal(config["type_vocab_size"], h)
    if config.get("position_embedding_type", "rope") == "absolute":
        t["new.embeddings.position_embeddings.weight"] = normal(config["max_position_embeddings"], h)
    norm("new.embeddings.LayerNorm")
    for n in range(config["num_hidden_layers"]):
        p = f"new.encoder.layer.{n}"
        qkv = normal(3 * h, h)
        qkv[: 2 * h] *= qk_std / 0.02
        qkv[: 2 * h] /= gain[None, :]  # as in trained models, outlier channels do not blow up attention logits
        if config.get("pack_qkv", True):
            t[f"{p}.attention.qkv_proj.weight"], t[f"{p}.attention.qkv_proj.bias"] = qkv, normal(3 * h, std=0.01)
        else:
            for k, name in enumerate(("q_proj", "k_proj", "v_proj")):
                t[f"{p}.attention.{name}.weight"] = qkv[k * h : (k + 1) * h]
                t[f"{p}.attention.{name}.bias"] = normal(h, std=0.01)
        t[f"{p}.attention.o_proj.weight"], t[f"{p}.attention.o_proj.bias"] = normal(h, h), normal(h, std=0.01)
        up_gate = normal(2 * i, h)
        # The gate half reads the outlier channels no more than q and k do. A gate that did would multiply them with
        # the up half's: the feed-forward's output would be one vector shared by every token, ~400x the rest, and
        # the MLM head would predict the same terms at every position (random checkpoints drawn that way have
        # cross-token logit correlations of 0.4-0.9, trained models cannot).
        up_gate[i:] /= gain[None, :]
        t[f"{p}.mlp.up_gate_proj.weight"] = up_gate
        t[f"{p}.mlp.down_proj.weight"], t[f"{p}.mlp.down_proj.bias"] = normal(h, i), normal(h, std=0.01)
        norm(f"{p}.attn_ln")
        norm(f"{p}.mlp_ln")
    t["lm_head.dense.weight"], t["lm_head.dense.bias"] = normal(h, h), normal(h, std=0.01)
    norm("lm_head.norm", outlier=False)
    if not tied:
        t["lm_head.decoder.weight"] = normal(v, h, std=h**-0.5)
    t["lm_head.decoder.bias"] = normal(v, std=0.3) - 2.5
    dest.mkdir(parents=True, exist_ok=True)
    save_file(t, str(dest / "model.safetensors"), metadata={"format": "pt"})
    (dest / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": tied}, indent=2))
    (dest / "tokenizer.json").write_bytes((MODEL_DIR / "tokenizer.json").read_bytes())
    return dest


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    out: np.ndarray = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    return out


class GteReference:
    """``NewForMaskedLM``'s MLM logits for one unpadded sequence, float64, the way the modeling file computes them."""

    def __init__(self, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        self.c = config
        self.t = {k.removeprefix("new."): v.astype(np.float64) for k, v in tensors.items()}
        self.hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]
        self.head_dim = self.hidden // self.heads

    # -- the pieces the tests cross-check --------------------------------------------------------------------
    def frequencies(self) -> np.ndarray:
        """inv_freq of the modeling file's RotaryEmbedding / NTKScalingRotaryEmbedding (the cache it builds at
        init covers max_position_embeddings * factor positions, so a factor above 1 applies to every position)."""
        d, theta = self.head_dim, float(self.c.get("rope_theta", 10000.0))
        scaling = self.c.get("rope_scaling")
        pairs = np.arange(d // 2, dtype=np.float64)
        plain: np.ndarray = np.power(theta, -2.0 * pairs / d)
        if scaling is None or float(scaling["factor"]) <= 1.0:
            return plain
        s = float(scaling["factor"])
        if scaling.get("mixed_b") is None:  # base * s, then / s^(2/d)
            fixed: np.ndarray = np.power(theta * s, -2.0 * pairs / d) * s ** (-2.0 / d)
            return fixed
        b = float(scaling["mixed_b"])
        lam = np.exp(math.log(s) / (d / 2) ** b * (pairs + 1.0) ** b)
        mixed: np.ndarray = plain / lam
        return mixed

    def rotate(self, x: np.ndarray) -> np.ndarray:
        """RoPE on x [n, heads, d]: each pair (x[j], x[j + d/2]) turned by angle position * inv_freq[j]."""
        n, d = x.shape[0], self.head_dim
        angle = np.arange(n, dtype=np.float64)[:, None] * self.frequencies()[None, :]  # [n, d/2]
        cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        first, second = x[..., : d // 2], x[..., d // 2 :]
        return np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)

    def attention(self, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        """softmax(q k^T / sqrt(d)) v per head; q, k, v [n, heads, d] -> [n, heads * d]."""
        out = np.empty_like(q)
        for h in range(self.heads):
            scores = q[:, h] @ k[:, h].T / math.sqrt(self.head_dim)
            weights = np.exp(scores - scores.max(axis=1, keepdims=True))
            out[:, h] = (weights / weights.sum(axis=1, keepdims=True)) @ v[:, h]
        return out.reshape(len(q), -1)

    def gated_ffn(self, x: np.ndarray, layer: int) -> np.ndarray:
        """down(gelu(gate) * up), up and gate the two halves of up_gate_proj(x) (no bias), in that order."""
        p = f"encoder.layer.{layer}.mlp"
        up_gate = x @ self.t[f"{p}.up_gate_proj.weight"].T
        size = self.c["intermediate_size"]
        up, gate = up_gate[:, :size], up_gate[:, size:]
        result: np.ndarray = (_gelu(gate) * up) @ self.t[f"{p}.down_proj.weight"].T + self.t[f"{p}.down_proj.bias"]
        return result

    # -- the forward pass -------------------------------------------------------------------------------------
    def _norm(self, x: np.ndarray, prefix: str, rms: bool = False) -> np.ndarray:
        eps = float(self.c.get("layer_norm_eps", 1e-12))
        if rms:
            out: np.ndarray = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * self.t[f"{prefix}.weight"]
            return out
        centered = x - x.mean(-1, keepdims=True)
        scaled = centered / np.sqrt((centered**2).mean(-1, keepdims=True) + eps)
        result: np.ndarray = scaled * self.t[f"{prefix}.weight"] + self.t[f"{prefix}.bias"]
        return result

    def _linear(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self.t[f"{prefix}.weight"].T + self.t[f"{prefix}.bias"]

    def _qkv(self, x: np.ndarray, p: str) -> list[np.ndarray]:
        if self.c.get("pack_qkv", True):
            return np.split(self._linear(x, f"{p}.attention.qkv_proj"), 3, axis=-1)
        return [self._linear(x, f"{p}.attention.{n}_proj") for n in "qkv"]

    def logits(self, ids: list[int]) -> np.ndarray:
        n = len(ids)
        x = self.t["embeddings.word_embeddings.weight"][ids]
        if self.c.get("type_vocab_size", 1) > 0:
            x = x + self.t["embeddings.token_type_embeddings.weight"][0]
        if self.c.get("position_embedding_type", "rope") == "absolute":
            x = x + self.t["embeddings.position_embeddings.weight"][:n]
        x = self._norm(x, "embeddings.LayerNorm")
        rms = self.c.get("layer_norm_type", "layer_norm") == "rms_norm"
        rope = self.c.get("position_embedding_type", "rope") == "rope"
        scale = 1.0
        if self.c.get("logn_attention_scale", False):
            scale = math.log(n) / math.log(self.c["max_position_embeddings"])
            scale = max(scale, 1.0) if self.c.get("logn_attention_clip1", False) else scale
        for layer in range(self.c["num_hidden_layers"]):
            p = f"encoder.layer.{layer}"
            q, k, v = (m.reshape(n, self.heads, self.head_dim) for m in self._qkv(x, p))
            if rope:
                q, k = self.rotate(q), self.rotate(k)
            context = self.attention(q * scale, k, v)
            x = self._norm(x + self._linear(context, f"{p}.attention.o_proj"), f"{p}.attn_ln", rms)
            x = self._norm(x + self.gated_ffn(x, layer), f"{p}.mlp_ln", rms)
        h = self._norm(_gelu(self._linear(x, "lm_head.dense")), "lm_head.norm")
        table = self.t.get("lm_head.decoder.weight", self.t["embeddings.word_embeddings.weight"])
        logits: np.ndarray = h @ table.T + self.t["lm_head.decoder.bias"]
        return logits
