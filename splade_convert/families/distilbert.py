"""DistilBERT (``DistilBertForMaskedLM``: naver/splade-v3-distilbert, opensearch-neural-sparse-encoding-doc-v2/v3-
distill): BERT's math under other names and config keys, no token types, LayerNorm eps fixed at 1e-12."""

from __future__ import annotations

from typing import Any, ClassVar

from ..family import Renames
from .bert import Bert


class DistilBert(Bert):
    model_types: ClassVar[tuple[str, ...]] = ("distilbert",)
    prefix: ClassVar[str] = "distilbert."
    keys: ClassVar[dict[str, str]] = {
        "hidden": "dim",
        "heads": "n_heads",
        "layers": "n_layers",
        "intermediate": "hidden_dim",
    }
    renames: ClassVar[Renames] = (
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

    def activation(self, config: dict[str, Any]) -> str:
        return str(config.get("activation", "gelu"))

    def eps(self, config: dict[str, Any]) -> float:
        return 1e-12  # DistilBERT's LayerNorms are built with eps=1e-12

    def check(self, config: dict[str, Any]) -> None:
        """DistilBERT has no position_embedding_type setting."""
