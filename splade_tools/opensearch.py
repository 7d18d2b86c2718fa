"""What an OpenSearch ml-commons connector needs to know of a deployment (issue 43): the largest ingest batch one
request can carry, ``input_docs_processed_step_size``.

    python -m splade_tools.opensearch --model-dir model_assets [--max-texts 64] [--max-windows 64]
        [--max-request-windows 0]        (make opensearch-step MODEL_DIR=...)

ml-commons sends an ingest pipeline's whole batch in one call unless the connector sets the step size, and it does
not split a refused call: past ``MAX_TEXTS`` texts (413 ``too_many_texts``) or past the model's work budget in
windows (413 ``too_much_work``) the user's bulk request fails. A step of ``budget // MAX_WINDOWS`` texts (at most
``MAX_TEXTS``, at least 1) fits even when every text is as long as ``MAX_WINDOWS`` allows. When the budget is
below ``MAX_WINDOWS`` (doc-v3-gte: 24 windows against 64), one long document alone exceeds it at any step: deploy
with ``MaxWindows`` at most the budget, or have the connector send ``truncate: true`` (one window a text).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from splade_expander.assets import read_manifest

DEFAULT_REQUEST_WINDOWS = 256  # a model whose manifest has no max_request_windows (the Expander's default)


@dataclass(frozen=True)
class Step:
    step: int  # input_docs_processed_step_size
    budget: int  # windows one request may use
    max_windows: int  # windows one text may use (the deployment's MaxWindows)
    fits: bool  # a step of the longest texts fits the budget

    def advice(self) -> str:
        if self.fits:
            return f"every batch of {self.step} texts fits, however long each text is (MaxWindows {self.max_windows})"
        return (
            f"one text may use {self.max_windows} windows but a request only {self.budget}: deploy with "
            f"MaxWindows={self.budget} (a longer text is then a per-text 413 text_too_long), or set the connector's "
            '"truncate": true (one window a text)'
        )


def step_size(budget: int, max_texts: int, max_windows: int) -> Step:
    """``max(1, min(MAX_TEXTS, budget // MAX_WINDOWS))``, and whether that step of the longest texts fits."""
    step = max(1, min(max_texts, budget // max_windows))
    return Step(step, budget, max_windows, fits=budget >= max_windows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="the deployed model directory (its manifest)")
    parser.add_argument("--max-texts", type=int, default=64, help="the deployment's MaxTexts (default 64)")
    parser.add_argument("--max-windows", type=int, default=64, help="the deployment's MaxWindows (default 64)")
    parser.add_argument(
        "--max-request-windows", type=int, default=0, help="the deployment's MaxRequestWindows; 0: the model's"
    )
    args = parser.parse_args(argv)
    manifest = read_manifest(args.model_dir)
    budget = args.max_request_windows or int(manifest.get("max_request_windows", DEFAULT_REQUEST_WINDOWS))
    found = step_size(budget, args.max_texts, args.max_windows)
    print(f"input_docs_processed_step_size: {found.step}")
    print(f"(work budget {found.budget} windows, MaxWindows {found.max_windows}, MaxTexts {args.max_texts}): "
          f"{found.advice()}")  # fmt: skip
    return 0 if found.fits else 1


if __name__ == "__main__":
    sys.exit(main())
