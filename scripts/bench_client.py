"""The client's own cost and its call count (``make bench-client``), against the built artifact under the Lambda
runtime emulator behind the API shim (devkit/apishim.py), in one run with the arms alternated:

- per call at 1 text: ``Client.expand`` (auth none) against a raw urllib3 POST of the same body on one kept-alive
  connection; the difference is what the client adds (batching plan, JSON, SparseVector, httpx);
- the same with SigV4 (``auth="iam"``, botocore's signer; the shim verifies every signature);
- 1,000 short texts: the POSTs the client makes, against ``ceil(1000 / MAX_TEXTS)``.

    python scripts/bench_client.py [--rounds 7] [--calls 40]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import urllib3
from botocore.credentials import Credentials

from devkit.apishim import api
from devkit.emulator import FUNCTION_ENV, Emulator
from splade_client import Client

ACCESS, SECRET = "AKIDBENCH", "bench-secret"
BODY = {"texts": ["heart attack symptoms"], "kind": "document", "format": "indices"}


def per_call_ms(fn: object, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - start) * 1e3 / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {"raw": [], "client": [], "sigv4": []}
    with Emulator() as emu, api(emu, auth="none") as open_api, api(emu, auth="iam", secrets={ACCESS: SECRET}) as iam:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", open_api.port, maxsize=1)
        body = json.dumps(BODY).encode()

        def raw() -> None:
            answer = pool.request("POST", "/v1/expand", body=body, headers={"content-type": "application/json"})
            assert answer.status == 200

        client = Client(open_api.url, auth="none")
        signed = Client(iam.url, auth="iam", service="execute-api", region="us-east-1",
                        credentials=Credentials(ACCESS, SECRET))  # fmt: skip
        arms = {"raw": raw, "client": lambda: client.expand(BODY["texts"]),
                "sigv4": lambda: signed.expand(BODY["texts"])}  # fmt: skip
        for fn in arms.values():
            per_call_ms(fn, 5)  # warm: connections, the model's first runs
        for _ in range(args.rounds):
            for name, fn in arms.items():
                times[name].append(per_call_ms(fn, args.calls))
        before = len(open_api.calls)
        texts = [f"short document {i} about asthma and inhalers" for i in range(1000)]
        vectors = client.expand(texts)
        posts = [c for c in open_api.calls[before:] if c[0] == "POST"]
        client.close()
        signed.close()
    assert len(vectors) == 1000 and len(iam.refused) == 0
    median = {k: statistics.median(v) for k, v in times.items()}
    max_texts = int(FUNCTION_ENV["MAX_TEXTS"])
    print(f"per call at 1 text, median of {args.rounds} rounds x {args.calls} calls, alternated:")
    print(f"  raw urllib3 POST       {median['raw']:.2f} ms")
    print(f"  Client.expand          {median['client']:.2f} ms  (+{median['client'] - median['raw']:.2f} ms)")
    print(f"  Client.expand, SigV4   {median['sigv4']:.2f} ms  (+{median['sigv4'] - median['client']:.2f} ms signing"
          " and the shim's verification)")  # fmt: skip
    print(f"1,000 texts: {len(posts)} POSTs at MAX_TEXTS {max_texts} (ceil = {math.ceil(1000 / max_texts)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
