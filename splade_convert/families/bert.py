"""BERT (``BertForMaskedLM``: naver/splade-v3, splade-cocondenser-*, Splade_PP_en_v1, splade-tiny): absolute
positions, post-LayerNorm blocks of self-attention and a GELU feed-forward. DistilBERT and RoBERTa/XLM-R are BERT
with other names and config keys (their modules subclass this one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..family import Arch, Family, Pretrained, PretrainedError
from ..graph import attend, attention_prelude, dense, gelu, layer_norm

if TYPE_CHECKING:
    from ..graph import Graph

BLOCK_LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")


class Bert(Family):
    model_types: ClassVar[tuple[str, ...]] = ("bert",)
    prefix: ClassVar[str] = "bert."
    # config.json keys of the architecture facts
    keys: ClassVar[dict[str, str]] = {
        "hidden": "hidden_size", "heads": "num_attention_heads", "layers": "num_hidden_layers",
        "intermediate": "intermediate_size",
    }  # fmt: skip

    def activation(self, config: dict[str, Any]) -> str:
        return str(config.get("hidden_act", "gelu"))

    def eps(self, config: dict[str, Any]) -> float:
        return float(config.get("layer_norm_eps", 1e-12))

    def check(self, config: dict[str, Any]) -> None:
        """Config settings refused beyond the shared ones."""
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise PretrainedError("config.json: only absolute position embeddings are supported")

    def arch(self, config: dict[str, Any]) -> Arch:
        family = str(config["model_type"])
        self.check(config)
        facts: dict[str, Any] = {}
        for fact, key in {**self.keys, "vocab": "vocab_size"}.items():
            if key not in config:
                raise PretrainedError(f"config.json has no {key!r} (needed for a {family} checkpoint)")
            facts[fact] = int(config[key])
        act = self.activation(config)
        if act != "gelu":
            raise PretrainedError(f"config.json: activation {act!r} is not supported (only exact 'gelu')")
        if facts["hidden"] % facts["heads"]:
            raise PretrainedError(f"hidden size {facts['hidden']} is not a multiple of {facts['heads']} heads")
        pad = config.get("pad_token_id")
        return Arch(
            family=family, eps=self.eps(config), max_positions=int(config.get("max_position_embeddings", 512)),
            pad_id=None if pad is None else int(pad), **facts,
        )  # fmt: skip

    def shapes(self, arch: Arch) -> dict[str, tuple[int, ...]]:
        h, i = arch.hidden, arch.intermediate
        shapes: dict[str, tuple[int, ...]] = {"embeddings.position_embeddings.weight": (arch.max_positions, h)}
        for n in range(arch.layers):
            p = f"encoder.layer.{n}"
            for name in BLOCK_LINEARS:
                shapes[f"{p}.{name}.weight"], shapes[f"{p}.{name}.bias"] = (h, h), (h,)
            shapes[f"{p}.intermediate.dense.weight"], shapes[f"{p}.intermediate.dense.bias"] = (i, h), (i,)
            shapes[f"{p}.output.dense.weight"], shapes[f"{p}.output.dense.bias"] = (h, i), (h,)
            for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
                shapes[f"{p}.{ln}.weight"], shapes[f"{p}.{ln}.bias"] = (h,), (h,)
        return shapes

    def layers(self, g: Graph, ck: Pretrained, x: str, mask: str, seq_len: str, int8: bool) -> str:
        """Self-attention with an additive padding bias, then the feed-forward block, each post-LayerNorm."""
        att = attention_prelude(g, mask, ck.hidden, ck.heads)
        eps = ck.eps
        for i in range(ck.layers):
            p = f"encoder.layer.{i}"

            def heads_of(name: str, perm: list[int], p: str = p, x: str = x) -> str:
                y = dense(g, x, ck, f"{p}.attention.self.{name}", int8)
                return g.op("Transpose", [g.op("Reshape", [y, att.split])], perm=perm)

            q = heads_of("query", [0, 2, 1, 3])  # [B, nh, S, dh]
            k = heads_of("key", [0, 2, 3, 1])  # [B, nh, dh, S]
            v = heads_of("value", [0, 2, 1, 3])
            ctx = attend(g, q, k, v, att)
            attn_out = dense(g, ctx, ck, f"{p}.attention.output.dense", int8)
            x = layer_norm(g, g.op("Add", [attn_out, x]), ck, f"{p}.attention.output.LayerNorm", eps)
            inter = gelu(g, dense(g, x, ck, f"{p}.intermediate.dense", int8))
            out = dense(g, inter, ck, f"{p}.output.dense", int8)
            x = layer_norm(g, g.op("Add", [out, x]), ck, f"{p}.output.LayerNorm", eps)
        return x
