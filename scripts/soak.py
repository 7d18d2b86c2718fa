"""Soak test: N sequential invocations of mixed valid and invalid events through one Lambda emulator.

    python scripts/soak.py --count 1000        (make soak; make test runs a 100-invocation version)

Reports p50/p99 latency and the function process's RSS after warm-up vs at the end, and fails (exit 1)
on any unexpected answer or on RSS growth of 10 MB or more.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from devkit.corpus import prose_paragraphs
from devkit.emulator import Emulator
from devkit.events import direct_event, http_event, load_event

GROWTH_LIMIT_MB = 10.0


def mix() -> list[tuple[str, dict[str, Any] | Any, Callable[[Any], bool]]]:
    """(name, event, check) cycled through by the soak: valid and invalid, every caller."""
    prose = prose_paragraphs()
    long_text = " ".join(prose[:6])[:19_000]

    def status(code: int, error: str | None = None) -> Callable[[Any], bool]:
        def check(r: Any) -> bool:
            if not isinstance(r, dict) or r.get("statusCode") != code:
                return False
            return error is None or json.loads(r["body"])["error"]["code"] == error

        return check

    def direct_ok(r: Any) -> bool:
        return isinstance(r, dict) and "data" in r and "errorType" not in r

    def direct_error(kind: str) -> Callable[[Any], bool]:
        return lambda r: isinstance(r, dict) and r.get("errorType") == kind

    return [
        ("http-v2", load_event("http-api-v2-expand"), status(200)),
        ("http-v2-base64", load_event("http-api-v2-expand-base64"), status(200)),
        ("rest-v1", load_event("rest-v1-expand"), status(200)),
        ("function-url", load_event("function-url-expand"), status(200)),
        ("long-text", http_event({"texts": [long_text] * 4, "format": "terms"}), status(200)),
        ("batch-32", http_event({"texts": prose[10:42], "top_k": 64}), status(200)),
        ("model", load_event("http-api-v2-model"), status(200)),
        ("bad-json", load_event("bad-http-api-v2-malformed-json"), status(400, "invalid_request")),
        ("bad-type", load_event("bad-http-api-v2-wrong-type"), status(400, "invalid_request")),
        ("too-many", http_event({"texts": ["a"] * 65}), status(413, "too_many_texts")),
        ("not-json", load_event("bad-http-api-v2-not-json"), status(415, "unsupported_media_type")),
        ("no-route", load_event("bad-http-api-v2-unknown-route"), status(404, "not_found")),
        ("direct", load_event("direct-expand"), direct_ok),
        ("direct-bad", load_event("bad-direct-wrong-type"), direct_error("InvalidRequestError")),
        ("direct-too-long", direct_event(text="x" * 20_001), direct_error("PayloadTooLargeError")),
    ]


def run(count: int, progress: bool = True) -> dict[str, Any]:
    cases = mix()
    warmup = max(len(cases) * 2, count // 10)
    latencies: list[float] = []
    unexpected: list[str] = []
    rss_warm = rss_end = 0
    with Emulator() as emulator:
        for i in range(count):
            name, event, check = cases[i % len(cases)]
            start = time.perf_counter()
            response = emulator.invoke(event)
            latencies.append((time.perf_counter() - start) * 1e3)
            if not check(response):
                unexpected.append(f"{i}:{name}: {json.dumps(response)[:200]}")
            if i + 1 == warmup:
                rss_warm = emulator.rss_kb()
            if progress and (i + 1) % max(1, count // 20) == 0:
                sys.stderr.write(f"\r{i + 1}/{count} invocations, {len(unexpected)} unexpected")
                sys.stderr.flush()
        rss_end = emulator.rss_kb()
        restarts = len(emulator.init_durations_ms())
    if progress:
        sys.stderr.write("\n")
    ordered = sorted(latencies)
    return {
        "invocations": count,
        "unexpected": unexpected,
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "rss_after_warmup_mb": rss_warm / 1024,
        "rss_end_mb": rss_end / 1024,
        "growth_mb": (rss_end - rss_warm) / 1024,
        "inits": restarts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args(argv)
    report = run(args.count)
    print(
        f"soak: {report['invocations']} invocations through one emulator ({report['inits']} init), "
        f"{len(report['unexpected'])} unexpected answers\n"
        f"latency p50 {report['p50_ms']:.1f} ms, p99 {report['p99_ms']:.1f} ms (mixed events, incl. 32-text batches)\n"
        f"RSS after warm-up {report['rss_after_warmup_mb']:.1f} MB, at the end {report['rss_end_mb']:.1f} MB, "
        f"growth {report['growth_mb']:+.1f} MB (limit < {GROWTH_LIMIT_MB:.0f} MB)"
    )
    for line in report["unexpected"][:10]:
        print("unexpected:", line)
    ok = not report["unexpected"] and report["growth_mb"] < GROWTH_LIMIT_MB and report["inits"] == 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
