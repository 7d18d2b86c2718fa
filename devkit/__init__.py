"""The local stand-ins for AWS, shared by the tests and the scripts (never shipped in the Lambda zip).

- ``servers``: free ports, waiting for a port, moto_server;
- ``emulator``: the built artifact under the real Lambda Runtime Interface Emulator, the local S3 for samples;
- ``aws``: moto_server with IAM enforced and the ingest function's role from template.yaml (``AwsWorld``);
- ``sam``: the real ``sam local`` under Docker;
- ``events``: every Lambda event the tests and scripts send, built in one place, and the sample events;
- ``faultproxy``: an HTTP proxy in front of S3 that injects faults;
- ``corpus``: the texts of tests and benchmarks; ``reference``: an independent numpy SPLADE.

Never installed: ``make venv`` puts the checkout on the dev venv's path (a .pth file), and pytest's
``pythonpath`` does the same, so nothing edits ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "model_assets"
FP32_DIR = ROOT / "build" / "model_fp32"
SOURCE_DIR = ROOT / "build" / "source"
# The local stand-ins for the template's buckets: the sample events name these.
INGEST_BUCKET, OUTPUT_BUCKET, OUTPUT_PREFIX = "splade-ingest", "splade-output", "vectors/"
# The objects the sample ingest events name (their eTags are these bodies' MD5s), served by a local S3.
SAMPLE_OBJECTS = {
    "docs/copd overview.txt": b"Chronic obstructive pulmonary disease (COPD) is a progressive lung disease.",
    "docs/corpus.jsonl": b'{"id": "a", "text": "asthma inhaler"}\n{"id": "b", "text": "router password reset"}\n',
}
