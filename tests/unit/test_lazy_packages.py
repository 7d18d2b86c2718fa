"""The two Powertools packages handler.api registers lazily: the HTTP path never runs their eager __init__ files
(no AppSync, asyncio or ssl at init), and every name they export is the same object the real __init__ gives."""

from __future__ import annotations

import json
import subprocess
import sys

from handler.http.lazy_packages import PACKAGES, exported_names

FRESH_PROCESS = """
import importlib.util, json, sys
import handler.app
from devkit.events import LambdaContext, http_event
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    status = handler.app.lambda_handler(http_event({"texts": ["lung"]}), LambdaContext())["statusCode"]
resolvers = ("appsync", "bedrock", "vpc_lattice")  # the resolvers the eager event_handler __init__ imports
http_path = sorted(m for m in sys.modules if m in ("asyncio", "ssl") or "appsync" in m
                   or m.startswith("aws_lambda_powertools.event_handler.") and any(r in m for r in resolvers))
ran_init = {name: "__all__" in vars(sys.modules[name]) for name in PACKAGES}
mismatched, exported = [], 0
for name in PACKAGES:
    spec = importlib.util.find_spec(name)
    real = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(real)  # the package's own __init__, in a module of its own
    for attr in real.__all__:
        exported += 1
        if getattr(sys.modules[name], attr) is not getattr(real, attr):
            mismatched.append(f"{name}.{attr}")
print(json.dumps({"status": status, "http_path": http_path, "ran_init": ran_init, "mismatched": mismatched,
                  "exported": exported}))
""".replace("PACKAGES", repr(PACKAGES))


def test_the_parse_finds_every_form_of_from_import() -> None:
    """Single names, `as` renames, parenthesized lists over lines with comments; __future__ is skipped."""
    source = (
        "from __future__ import annotations\n"
        "from .a import One\n"
        "from .b import Two as Deux, Three\n"
        "from pkg.c import (\n    Four,  # a comment\n    Five as Cinq,\n)\n"
        "import os\n"
    )
    assert exported_names(source) == {
        "One": (".a", "One"),
        "Deux": (".b", "Two"),
        "Three": (".b", "Three"),
        "Four": ("pkg.c", "Four"),
        "Cinq": ("pkg.c", "Five"),
    }


def test_the_http_path_skips_the_eager_inits_and_every_exported_name_is_the_real_one() -> None:
    """In a fresh process, a real HTTP invocation imports no AppSync, Bedrock or VPC Lattice resolver, no asyncio
    and no ssl, and never falls back to a package __init__; then each name in the real __init__'s __all__
    resolves, through the lazy package, to the identical object."""
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert result["http_path"] == []
    assert result["ran_init"] == dict.fromkeys(PACKAGES, False)
    assert result["mismatched"] == []
    assert result["exported"] > 60  # event_handler's ~20 names and data_classes' ~45
