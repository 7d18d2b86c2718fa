"""A copy of template.yaml with some parameters' defaults changed, so the linters check the other branch of a
condition: ``python scripts/template_variant.py EnableSnapStart=true > build/template-snapstart.yaml``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


def variant(text: str, overrides: dict[str, str]) -> str:
    for name, value in overrides.items():
        pattern = re.compile(rf"(^  {re.escape(name)}:\n(?:    .*\n)*?    Default: )(.*)$", re.MULTILINE)
        replacement = "\\g<1>" + f'"{value}"'
        text, n = pattern.subn(replacement, text, count=1)
        if n != 1:
            raise SystemExit(f"template_variant: no parameter {name} with a Default in {TEMPLATE}")
    return text


def main(argv: list[str]) -> int:
    overrides = dict(arg.split("=", 1) for arg in argv)
    sys.stdout.write(variant(TEMPLATE.read_text(), overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
