"""What a model family is to the converter: one ``Family`` per architecture, each in its own module under
``families/`` and listed once in ``registry.py``. A family says which ``model_type`` values it converts, how its
tensor names map onto the canonical (BERT) names, which config fields it reads and refuses (its typed ``Arch``),
which tensors it needs with their shapes, where its position table starts, and how its layers become graph nodes.
Adding a family: one module with its Family subclass, one line in ``registry.py``, its oracle in devkit and tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from .graph import Graph

Renames = tuple[tuple[str, str], ...]


class PretrainedError(ValueError):
    """The pretrained model cannot be converted; the message names the file, tensor or setting at fault."""


@dataclass(frozen=True)
class GteSettings:
    """GTE v1.5's own settings (families/gte.py), recorded in the manifest as ``architecture``."""

    position: str
    rope_theta: float
    ntk_factor: float
    mixed_b: float | None
    norm: str
    max_position_embeddings: int
    type_vocab_size: int
    pack_qkv: bool
    logn: bool
    logn_clip1: bool


@dataclass
class Arch:
    """A pretrained model's architecture as config.json gives it, checked by its family."""

    family: str  # the config's model_type
    eps: float
    hidden: int
    heads: int
    layers: int
    intermediate: int
    vocab: int
    max_positions: int
    pad_id: int | None = None
    gte: GteSettings | None = None


@dataclass(kw_only=True)
class Pretrained(Arch):
    """Canonical (BERT) tensor names -> float32 arrays, and the architecture facts."""

    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    tied: bool = True

    def get(self, name: str) -> np.ndarray:
        return self.tensors[name]

    @property
    def decoder(self) -> np.ndarray:
        """The projection's [vocab, hidden] table: the word table when tied."""
        return self.tensors.get("cls.predictions.decoder.weight", self.tensors["embeddings.word_embeddings.weight"])


class Family:
    """The BERT-shaped defaults every family starts from; a family module overrides what differs."""

    model_types: ClassVar[tuple[str, ...]] = ()
    prefix: ClassVar[str] = ""  # save_pretrained's prefix in front of the encoder's names ("bert.")
    renames: ClassVar[Renames] = ()  # save_pretrained's names -> the canonical (BERT) names
    tokenizer_json_required: ClassVar[bool] = False  # no vocab.txt fallback (BPE, Unigram)

    def arch(self, config: dict[str, Any]) -> Arch:
        raise NotImplementedError

    def shapes(self, arch: Arch) -> dict[str, tuple[int, ...]]:
        """The tensors the graph needs beyond the shared embeddings and head, with their shapes."""
        raise NotImplementedError

    def finish(self, tensors: dict[str, np.ndarray], arch: Arch) -> None:
        """The family's tensors brought to the one layout its layers read (nothing to do by default)."""

    def position_offset(self, arch: Arch) -> int:
        """The position-table row of a window's first token."""
        return 0

    def layers(self, g: Graph, ck: Pretrained, x: str, mask: str, seq_len: str, int8: bool) -> str:
        """The transformer layers as graph nodes, from the embeddings' output ``x``."""
        raise NotImplementedError

    def rename(self, name: str) -> str:
        for pattern, replacement in self.renames:
            name, n = re.subn(pattern, replacement, name)
            if n:
                break
        return name
