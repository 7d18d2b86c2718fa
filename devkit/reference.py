"""An independent numpy forward pass of a BERT masked-LM + SPLADE pooling, written from the checkpoint.

It shares nothing with ``scripts/build_model.py`` or ``handler/``: it reads the safetensors tensors by their
own names, runs BERT the textbook way (one sequence at a time, no padding, float64 math) and pools
``max_s log(1 + relu(logits))`` over the sequence. The tests compare the ONNX graphs with it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file


class ReferenceSplade:
    """Textbook BERT-MLM SPLADE in float64 numpy."""

    def __init__(self, source: Path) -> None:
        self.config = json.loads((source / "config.json").read_text())
        raw = load_file(str(source / "model.safetensors"))
        self.t = {k.removeprefix("bert."): v.astype(np.float64) for k, v in raw.items()}

    def _ln(self, x: np.ndarray, prefix: str) -> np.ndarray:
        gamma = self.t.get(f"{prefix}.gamma", self.t.get(f"{prefix}.weight"))
        beta = self.t.get(f"{prefix}.beta", self.t.get(f"{prefix}.bias"))
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        out: np.ndarray = (x - mean) / np.sqrt(var + self.config["layer_norm_eps"]) * gamma + beta
        return out

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
        x = self._ln(x, "embeddings.LayerNorm")
        heads = self.config["num_attention_heads"]
        dh = self.config["hidden_size"] // heads
        for i in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._linear(x, f"{p}.attention.self.{n_}").reshape(n, heads, dh).transpose(1, 0, 2)
                for n_ in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(1, 0, 2).reshape(n, heads * dh)
            x = self._ln(self._linear(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
            inter = self._gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._ln(self._linear(inter, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        h = self._gelu(self._linear(x, "cls.predictions.transform.dense"))
        h = self._ln(h, "cls.predictions.transform.LayerNorm")
        return h @ self.t["embeddings.word_embeddings.weight"].T + self.t["cls.predictions.bias"]

    def splade(self, ids: list[int]) -> np.ndarray:
        """SPLADE vector [vocab]: max over positions of log(1 + relu(logits))."""
        out: np.ndarray = np.log1p(np.maximum(self.logits(ids), 0.0)).max(axis=0)
        return out
