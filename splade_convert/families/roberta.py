"""RoBERTa and XLM-R (``RobertaForMaskedLM``: ibm-granite's granite-embedding-30m-sparse; ``XLMRobertaForMaskedLM``):
one architecture, BERT's math with ``lm_head`` names; XLM-R only has another tokenizer (Unigram, 250,002 ids). Both
number positions from ``pad_token_id + 1`` (transformers' ``create_position_ids_from_input_ids``), so the position
table is read from that row on, and both need their fast tokenizer's ``tokenizer.json``."""

from __future__ import annotations

from typing import Any, ClassVar

from ..family import Arch, PretrainedError, Renames
from .bert import Bert


class Roberta(Bert):
    model_types: ClassVar[tuple[str, ...]] = ("roberta", "xlm-roberta")
    prefix: ClassVar[str] = "roberta."
    tokenizer_json_required: ClassVar[bool] = True
    renames: ClassVar[Renames] = (
        (r"^lm_head\.dense\.", "cls.predictions.transform.dense."),
        (r"^lm_head\.layer_norm\.", "cls.predictions.transform.LayerNorm."),
        (r"^lm_head\.decoder\.weight$", "cls.predictions.decoder.weight"),
        (r"^lm_head\.decoder\.bias$", "cls.predictions.decoder.bias"),
        (r"^lm_head\.bias$", "cls.predictions.bias"),
    )

    def arch(self, config: dict[str, Any]) -> Arch:
        arch = super().arch(config)
        if arch.pad_id is None:
            raise PretrainedError("config.json has no 'pad_token_id' (a RoBERTa model numbers positions from it)")
        return arch

    def position_offset(self, arch: Arch) -> int:
        """``pad_token_id + 1``: the graph's positions 0, 1, ... are RoBERTa's ``pad + 1``, ``pad + 2``, ..."""
        return arch.pad_id + 1 if arch.pad_id is not None else 0
