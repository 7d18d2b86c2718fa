"""What `sam build` must build, read from the deploy configuration (samconfig.toml), for the Makefile:

    python scripts/deploy_config.py [--config samconfig.toml] [--env default]   ->   "<architecture> <model dir>"

The architecture is the ``Architecture`` in the deploy's ``parameter_overrides`` (what `sam deploy` passes the
template, over the global and build sections'), arm64 when unset. The model directory is the
build section's ``model_dir`` (a key SAM ignores), ``model_assets`` when unset. So `sam build && sam deploy`
ship the model and architecture named there, once.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURES = ("arm64", "x86_64")


def _overrides(value: Any) -> dict[str, str]:
    """SAM's parameter_overrides: "K=V K2='v 2'" or a list of "K=V"."""
    items = value if isinstance(value, list) else shlex.split(str(value or ""))
    return dict(item.split("=", 1) for item in items if "=" in item)


def read(config: Path, env: str = "default") -> tuple[str, str]:
    data = tomllib.loads(config.read_text()) if config.is_file() else {}
    sections = data.get(env, {})
    params: dict[str, Any] = {}
    for command in ("global", "build", "deploy"):  # later wins: the deploy's values are what the stack gets
        params.update(sections.get(command, {}).get("parameters", {}))
    overrides: dict[str, str] = {}
    for command in ("global", "build", "deploy"):
        overrides.update(_overrides(sections.get(command, {}).get("parameters", {}).get("parameter_overrides")))
    arch = overrides.get("Architecture", "arm64")
    if arch not in ARCHITECTURES:
        raise SystemExit(f"{config}: Architecture={arch} is not one of {', '.join(ARCHITECTURES)}")
    return arch, str(params.get("model_dir", "model_assets"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "samconfig.toml")
    parser.add_argument("--env", default="default")
    args = parser.parse_args(argv)
    arch, model_dir = read(args.config, args.env)
    print(arch, model_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
