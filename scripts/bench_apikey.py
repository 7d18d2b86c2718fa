"""ApiAuth=apikey's own cost, under the Lambda runtime emulator with the built artifact (``make bench-apikey``):
the first keyed Function URL request of an execution environment (boto3 imported, the secret's two versions read
from a local Secrets Manager over loopback), the next ones (the cached keys, a constant-time compare), and the
same request to a function without a key, alternated in one run.

    python scripts/bench_apikey.py [--rounds 5] [--calls 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from devkit.aws import ApiKeyWorld
from devkit.emulator import Emulator
from devkit.events import http_event

KEY = "bench-" + "k" * 34


def timed(emu: Emulator, event: dict[str, object]) -> float:
    start = time.perf_counter()
    response = emu.invoke(event)
    assert response["statusCode"] == 200, response
    return (time.perf_counter() - start) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh environments of each kind")
    parser.add_argument("--calls", type=int, default=30, help="warm calls per environment")
    args = parser.parse_args(argv)
    keyed_event = http_event({"text": "lung disease"}, source="function_url", headers={"x-api-key": KEY})
    plain_event = http_event({"text": "lung disease"}, source="function_url")
    first: list[float] = []
    warm: dict[str, list[float]] = {"keyed": [], "plain": []}
    world = ApiKeyWorld(KEY)
    try:
        for _ in range(args.rounds):
            with Emulator(world.function_env()) as keyed, Emulator() as plain:
                timed(plain, plain_event)  # both environments past their first request
                first.append(timed(keyed, keyed_event))
                for _ in range(args.calls):
                    warm["keyed"].append(timed(keyed, keyed_event))
                    warm["plain"].append(timed(plain, plain_event))
    finally:
        world.close()
    keyed_ms, plain_ms = statistics.median(warm["keyed"]), statistics.median(warm["plain"])
    print("| measure | value |\n|---|---|")
    first_ms, n = statistics.median(first), args.rounds * args.calls
    print(
        "| first keyed request of an environment (boto3 import + 2 GetSecretValue, loopback) | "
        f"{first_ms:.0f} ms (median of {args.rounds}) |"
    )
    print(
        f"| a warm keyed request vs the same request without a key (medians of {n}, alternated) | "
        f"{keyed_ms:.2f} ms vs {plain_ms:.2f} ms: {keyed_ms - plain_ms:+.2f} ms |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
