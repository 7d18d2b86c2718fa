"""The families the converter knows, listed once: ``model_type`` -> its Family. The test oracles (devkit) key off
these names too."""

from __future__ import annotations

from .families.bert import Bert
from .families.distilbert import DistilBert
from .families.gte import Gte
from .families.roberta import Roberta
from .family import Family, PretrainedError

REGISTERED: tuple[Family, ...] = (Bert(), DistilBert(), Roberta(), Gte())
FAMILIES: dict[str, Family] = {t: family for family in REGISTERED for t in family.model_types}
PREFIXES = tuple(family.prefix for family in REGISTERED)  # save_pretrained's, stripped from any family's names


def family_of(model_type: object) -> Family:
    """The Family of ``model_type``; PretrainedError names the supported ones."""
    if not isinstance(model_type, str) or model_type not in FAMILIES:
        supported = ", ".join(FAMILIES)
        raise PretrainedError(f"config.json: model_type {model_type!r} is not supported (supported: {supported})")
    return FAMILIES[model_type]


def model_types(family: type[Family]) -> tuple[str, ...]:
    """The model_type values one family class converts (devkit's oracles ask by class)."""
    return next(f.model_types for f in REGISTERED if type(f) is family)
