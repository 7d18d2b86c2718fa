"""Ingest soak: one large JSONL (default 50 MB) through the built artifact under the Lambda emulator, with a
function timeout short enough that it is checkpointed and continued many times through the queue.

    python scripts/soak_ingest.py --mb 50 --timeout 60        (part of `make soak`)

Runs against moto_server with IAM enforced and the template's role (devkit/aws.py), plays the SQS
event source mapping, and fails (exit 1) unless the output holds every line exactly once, in order, with no
checkpoint objects or multipart uploads left behind. Prints runs, seconds, docs/s and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from devkit import OUTPUT_BUCKET
from devkit.aws import AwsWorld
from devkit.corpus import prose_paragraphs
from devkit.emulator import Emulator
from devkit.events import put_object


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of the JSONL in MB")
    parser.add_argument("--timeout", type=int, default=60, help="function timeout in seconds")
    parser.add_argument("--margin-ms", type=int, default=10_000, help="INGEST_TIME_MARGIN_MS")
    args = parser.parse_args(argv)
    prose = prose_paragraphs()
    rows: list[str] = []
    size = 0
    while size < args.mb * 1e6:
        rows.append(json.dumps({"id": len(rows), "text": prose[len(rows) % len(prose)]}))
        size += len(rows[-1]) + 1
    world = AwsWorld()
    try:
        s3 = world.client("s3")
        key = "soak/big.jsonl"
        notification = put_object(s3, key, ("\n".join(rows) + "\n").encode())
        # the S3 notification goes through the queue, so the whole chain runs under the modelled recursion guard
        world.client("sqs").send_message(QueueUrl=world.queue_url, MessageBody=json.dumps(notification))
        env = {**world.function_env(), "INGEST_TIME_MARGIN_MS": str(args.margin_ms)}
        start = time.perf_counter()
        with Emulator(env, timeout_s=args.timeout) as emulator:
            responses = world.drain(emulator.invoke, rounds=10_000)
            peak_mb = emulator.peak_rss_kb() / 1024
        dropped = len(world.dropped)
        seconds = time.perf_counter() - start
        ok = all(r == {"batchItemFailures": []} for r in responses)
        body = s3.get_object(Bucket=OUTPUT_BUCKET, Key=f"vectors/{key}.jsonl")["Body"]
        ids = [json.loads(line)["id"] for line in body.iter_lines()]
        leftovers = s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix="vectors/_checkpoints/").get("KeyCount", 0)
        uploads = s3.list_multipart_uploads(Bucket=OUTPUT_BUCKET).get("Uploads", [])
    finally:
        world.close()
    exact = ids == list(range(len(rows)))
    print(
        f"{size / 1e6:.1f} MB JSONL, {len(rows):,} lines: {len(responses)} runs at a {args.timeout} s timeout, "
        f"{seconds:.0f} s ({len(rows) / seconds:,.0f} docs/s), peak RSS {peak_mb:.0f} MB; every line once, in "
        f"order: {exact}; failures: {not ok}; checkpoints left: {leftovers}; open uploads: {len(uploads)}; "
        f"dropped by the modelled recursion guard: {dropped}"
    )
    return 0 if exact and ok and not leftovers and not uploads and not dropped and peak_mb <= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
