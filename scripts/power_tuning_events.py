"""The direct-invocation payloads for AWS Lambda Power Tuning (events/power-tuning-*.json), from the bench corpus.

    python scripts/power_tuning_events.py [--model-dir model_assets] [--out events]

- ``power-tuning-batch``: BATCH_DOCS prose documents (the ingest batch size, within MAX_TEXTS), full vectors;
- ``power-tuning-query``: one short query (``kind: query``, the model's default query encoder);
- ``power-tuning-document-256``: one document of 256 tokens by the model's tokenizer.

docs/deploy.md shows how to run Power Tuning with them; the emulator tests run each against the API function's
limits and timeout. Re-run with ``--model-dir`` for a converted model whose tokenizer counts tokens differently.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from devkit import MODEL_DIR, ROOT
from devkit.corpus import prose_paragraphs, texts_with_tokens
from splade_expander.batches import BATCH_DOCS

QUERY = "how do i reset my router password"
DOCUMENT_TOKENS = 256
PREFIX = "power-tuning-"


def payloads(model_dir: Path = MODEL_DIR) -> dict[str, dict[str, Any]]:
    """Each payload by its file name."""
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()

    def tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    # paragraphs of one window or less (24 to 254 tokens), as bench.py's throughput texts
    batch = [p for p in prose_paragraphs() if 24 <= tokens(p) <= 254][:BATCH_DOCS]
    (document,) = texts_with_tokens(tokenizer, DOCUMENT_TOKENS, 1)
    return {
        f"{PREFIX}batch.json": {"texts": batch},
        f"{PREFIX}query.json": {"texts": [QUERY], "kind": "query"},
        f"{PREFIX}document-256.json": {"texts": [document]},
    }


def render(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR, help="the model whose tokenizer counts tokens")
    parser.add_argument("--out", type=Path, default=ROOT / "events")
    args = parser.parse_args(argv)
    for name, payload in payloads(args.model_dir).items():
        (args.out / name).write_text(render(payload))
        print(f"wrote {args.out / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
