"""Two Powertools packages registered so that each name loads from its own submodule on first use, instead of the
package ``__init__`` importing every resolver and event class up front.

``aws_lambda_powertools.event_handler``'s ``__init__`` imports the AppSync resolvers, which bring in asyncio and
ssl, and also Bedrock, VPC Lattice and the rest. ``utilities.data_classes``'s ``__init__`` imports about 45 event
classes. The HTTP path uses one resolver and a few event classes. Measured in fresh processes, paired, the two
eager ``__init__`` files cost 40-60 ms of every Lambda init, about 0.4x the bare-imports floor
(docs/performance.md).

We still use the same Powertools classes; nothing is copied or patched. Registration reads the package's
``__init__`` source for its ``from .x import Name`` lines. If a name is not found there, ``__init__`` itself runs
once, so no name can go missing (tests/unit/test_lazy_packages.py checks every exported name). Importing this
module registers the packages. ``handler.api`` imports it before its first Powertools event_handler import.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from types import ModuleType
from typing import Any

PACKAGES = ("aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.data_classes")
_FROM_IMPORT = re.compile(r"^from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.MULTILINE)


def exported_names(source: str) -> dict[str, tuple[str, str]]:
    """Name -> (module, its name there) for each ``from module import a, b as c`` statement at the top level of
    ``source`` (a package ``__init__``)."""
    where: dict[str, tuple[str, str]] = {}
    for module, names in _FROM_IMPORT.findall(source):
        if module == "__future__":
            continue
        for item in re.sub(r"#[^\n]*", "", names).strip("()").split(","):
            words = item.split()
            if len(words) == 1:
                where[words[0]] = (module, words[0])
            elif len(words) == 3 and words[1] == "as":
                where[words[2]] = (module, words[0])
    return where


def register(name: str) -> ModuleType | None:
    """Put package ``name`` in ``sys.modules`` without running its ``__init__``. Its names resolve on first
    access. Nothing happens if the package is already imported, or not installed."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    loader = spec.loader
    with open(spec.origin, encoding="utf-8") as fh:
        where = exported_names(fh.read())
    module = importlib.util.module_from_spec(spec)
    ran_init = False

    def resolve(attr: str) -> Any:
        nonlocal ran_init
        if attr in where:
            source, original = where[attr]
            value = getattr(importlib.import_module(source, name), original)
        elif attr.startswith("__"):
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        elif importlib.util.find_spec(f"{name}.{attr}") is not None:  # a submodule (``from pkg import module``)
            value = importlib.import_module(f"{name}.{attr}")
        elif not ran_init:
            ran_init = True  # a name the parse did not find: run the real __init__ once, then look again
            loader.exec_module(module)
            return getattr(module, attr)
        else:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        setattr(module, attr, value)
        return value

    module.__getattr__ = resolve  # type: ignore[method-assign]  # PEP 562: a module-level __getattr__
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    setattr(importlib.import_module(parent), child, module)
    for attr, (source, _original) in where.items():
        if source.rpartition(".")[2] == attr:  # `from .x import x`: importing submodule x would bind the
            resolve(attr)  # package's x to the module, so x is bound now, as the real __init__ binds it
    return module


for _package in PACKAGES:
    register(_package)
