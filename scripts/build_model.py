"""``make model`` / ``make convert``: the converter's command line (splade_convert/cli.py), kept at this path so
the Makefile, the docs and every manifest's ``build.script`` name one entry point.

    python scripts/build_model.py --source build/source --out model_assets [--precision int8|fp32]
"""

from __future__ import annotations

import sys

from splade_convert.cli import main

if __name__ == "__main__":
    sys.exit(main())
