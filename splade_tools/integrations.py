"""The request bodies under ``integrations/`` (OpenSearch ml-commons, Elasticsearch ``_inference``), filled in.

    python -m splade_tools.integrations integrations/opensearch/connector-sigv4.json \\
        API_URL=https://abc123.execute-api.us-east-1.amazonaws.com REGION=us-east-1 STEP_SIZE=4 ...

A shipped body is JSON whose deployment-specific values are placeholders ``{{NAME}}`` (always text) or
``{{NAME|json}}`` (a JSON value: ``BATCH_SIZE=8`` is the number 8, ``QUERY_TOKENS='{"lung": 1.2}'`` an object). A
string that is exactly one placeholder becomes the value; a placeholder inside a longer string is replaced by the
value's text. From Python, ``load(path, NAME=value)`` takes any value as it is. Every placeholder must be given
and every value used, so a body is never sent half filled. The engines' own templates (``${parameters.input}``,
``${credential.secretArn.api_key}``, ``${input}``, ``${api_key}``) are not placeholders of ours
and pass through as they are: the engine fills them at request time.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\{\{([A-Z][A-Z0-9_]*)(\|json)?\}\}")


def placeholders(body: Any) -> set[str]:
    """The placeholder names a body holds (in keys and values)."""
    return {name for name, _ in PLACEHOLDER.findall(json.dumps(body))}


def fill(body: Any, values: dict[str, Any]) -> Any:
    """``body`` with every placeholder replaced; ValueError naming what is missing or unused."""
    wanted = placeholders(body)
    missing, unused = sorted(wanted - set(values)), sorted(set(values) - wanted)
    if missing or unused:
        raise ValueError(f"placeholders missing: {missing or 'none'}; values not used: {unused or 'none'}")

    def one(node: Any) -> Any:
        if isinstance(node, dict):
            return {one(k): one(v) for k, v in node.items()}
        if isinstance(node, list):
            return [one(v) for v in node]
        if isinstance(node, str):
            whole = PLACEHOLDER.fullmatch(node)
            if whole:
                value = values[whole.group(1)]
                return json.loads(value) if whole.group(2) and isinstance(value, str) else value
            return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), node)
        return node

    return one(body)


def load(path: str | Path, **values: Any) -> Any:
    """The shipped body at ``path``, filled with ``values``."""
    return fill(json.loads(Path(path).read_text(encoding="utf-8")), values)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    path, pairs = Path(args[0]), args[1:]
    bad = [p for p in pairs if "=" not in p]
    if bad:
        print(f"expected NAME=value, got {bad[0]!r}", file=sys.stderr)
        return 2
    values = dict(p.split("=", 1) for p in pairs)
    try:
        body = load(path, **values)
    except (OSError, ValueError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
