"""A model's special tokens, read from its own tokenizer: never from a list of BERT's names.

- **framing**: the ids the tokenizer's post-processor puts before and after a single sequence (``[CLS] ... [SEP]``
  for BERT, ``<s> ... </s>`` for RoBERTa and XLM-R). Each window is framed this way.
- **zeroed**: every added token the tokenizer marks special, and the framing ids. Their weights are zeroed in the
  output and they are left out of ``idf.json`` and document frequencies.
- **pad**: the id a run's short windows are padded with (the positions are masked, the graph never reads them):
  the model's ``pad_token_id`` as conversion recorded it, else the tokenizer's padding id, else the first zeroed id.

``scripts/build_model.py`` records them in ``manifest.json``; the Expander, ``make idf`` and the CLI all call
:func:`special_tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenizers import Tokenizer

PROBE = "special tokens probe"  # any ordinary text: the post-processor frames it as it frames every window


class SpecialTokensError(ValueError):
    """The tokenizer gives no usable framing."""


@dataclass(frozen=True)
class SpecialTokens:
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    pad: int
    zeroed: tuple[int, ...]  # sorted

    @property
    def framing(self) -> int:
        """How many of a window's tokens the framing takes."""
        return len(self.prefix) + len(self.suffix)

    def frame(self, ids: Sequence[int]) -> list[int]:
        return [*self.prefix, *ids, *self.suffix]

    def describe(self, tokenizer: Tokenizer) -> dict[str, Any]:
        """What the manifest records: the tokens by name and id."""

        def named(ids: Sequence[int]) -> list[dict[str, Any]]:
            return [{"id": i, "token": tokenizer.id_to_token(i)} for i in ids]

        return {
            "prefix": named(self.prefix),
            "suffix": named(self.suffix),
            "pad": named([self.pad])[0],
            "zeroed": named(self.zeroed),
        }


def _framing(tokenizer: Tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ids the post-processor adds before and after the probe's own ids."""
    bare = tokenizer.encode(PROBE, add_special_tokens=False)
    framed = tokenizer.post_process(tokenizer.encode(PROBE, add_special_tokens=False)).ids
    content = list(bare.ids)
    for start in range(len(framed) - len(content) + 1):
        if framed[start : start + len(content)] == content:
            return tuple(framed[:start]), tuple(framed[start + len(content) :])
    raise SpecialTokensError("the tokenizer's post-processor changes a text's own ids; cannot frame windows")


def special_tokens(tokenizer: Tokenizer, pad_id: int | None = None) -> SpecialTokens:
    """The framing, zeroed and padding ids of ``tokenizer`` (``pad_id``: the model's ``pad_token_id``)."""
    prefix, suffix = _framing(tokenizer)
    if not prefix and not suffix:
        raise SpecialTokensError("the tokenizer adds no special tokens around a text (no post-processor)")
    marked = {i for i, token in tokenizer.get_added_tokens_decoder().items() if token.special}
    zeroed = tuple(sorted(marked | set(prefix) | set(suffix)))
    if pad_id is None:
        padding = tokenizer.padding
        pad_id = int(padding["pad_id"]) if padding else zeroed[0]
    return SpecialTokens(prefix, suffix, pad_id, zeroed)
