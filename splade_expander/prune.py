"""Pruning a sparse vector the way OpenSearch's neural-search does, in float32: ``PruneUtils`` as of
opensearch-project/neural-search commit 0d928a9abf40427fb4f057185e5477725b7cf796
(src/main/java/org/opensearch/neuralsearch/util/prune/PruneUtils.java, the version with ``splitSparseVector``).

    top_k       keep the k heaviest terms; k a positive integer
    max_ratio   keep w >= ratio * max(w) (the product in float); ratio in [0, 1)
    abs_value   keep w >= value; value >= 0
    alpha_mass  add each term, heaviest first, to a running sum and keep it while the sum is <= alpha * sum(w):
                the term that crosses alpha is not kept, and alpha 0 keeps nothing; alpha in [0, 1)

Ties go to the lower token id: terms are ordered by weight descending, then id ascending, before any cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidRequestError

PRUNE_TYPES = ("top_k", "max_ratio", "abs_value", "alpha_mass")
RANGES = {
    "top_k": "a positive integer",
    "max_ratio": "a number in [0, 1)",
    "abs_value": "a number >= 0",
    "alpha_mass": "a number in [0, 1)",
}


@dataclass(frozen=True)
class Prune:
    type: str
    value: float

    @classmethod
    def parse(cls, raw: Any, field: str = "prune") -> Prune:
        """``{"type": ..., "value": ...}`` (or a Prune) checked against OpenSearch's value ranges."""
        if isinstance(raw, Prune):
            raw = {"type": raw.type, "value": raw.value}
        if not isinstance(raw, dict) or set(raw) != {"type", "value"}:
            raise InvalidRequestError(f'{field} must be an object {{"type": ..., "value": ...}}', field=field)
        kind, value = raw["type"], raw["value"]
        if kind not in PRUNE_TYPES:
            raise InvalidRequestError(f"{field}.type must be one of {', '.join(PRUNE_TYPES)}", field=f"{field}.type")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not _valid(kind, value):
            raise InvalidRequestError(f"{field}.value for {kind} must be {RANGES[kind]}", field=f"{field}.value")
        return cls(kind, float(value))


def one_way_only() -> InvalidRequestError:
    """The error when a request prunes two ways (prune with top_k or min_weight), the same for every caller."""
    return InvalidRequestError("prune one way: give prune, or top_k / min_weight, not both", field="prune")


def _valid(kind: str, value: float) -> bool:
    try:
        if kind == "top_k":
            return value > 0 and float(value).is_integer()
        if kind == "abs_value":
            return 0 <= value < float("inf")
        return 0 <= value < 1
    except OverflowError:  # a JSON integer past float range
        return False


def keep_count(values: np.ndarray, prune: Prune) -> int:
    """How many of ``values`` (float32, sorted descending, all > 0) the rule keeps: always a prefix."""
    n = int(values.shape[0])
    if n == 0:
        return 0
    if prune.type == "top_k":
        return min(n, int(prune.value))
    if prune.type == "max_ratio":  # w >= ratio * max, the product in float as PruneUtils computes it
        return int(np.count_nonzero(values >= np.float32(prune.value) * values[0]))
    if prune.type == "abs_value":
        return int(np.count_nonzero(values >= np.float32(prune.value)))
    # alpha_mass: the total summed in double then cast to float, the running sum in float (terms added in order);
    # a term is kept while the running sum including it is <= alpha * total. The sum only grows: a prefix.
    total = np.float32(values.astype(np.float64).sum())
    running = np.cumsum(values, dtype=np.float32)
    return int(np.count_nonzero(running <= np.float32(prune.value) * total))
