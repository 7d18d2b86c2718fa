"""Run the built artifact under the real Lambda Runtime Interface Emulator and invoke it (`make invoke`).

    python scripts/local_invoke.py --event events/http-api-v2-expand.json [--env KEY=VALUE ...] [--show-logs]

An ingest event gets a local S3 (moto_server) holding the objects the sample events name. The response is
printed as Lambda returns it; an HTTP response's ``body`` (a string, as API Gateway receives it) is printed
parsed as ``body (parsed)`` next to it. A function error, at init (a bad setting) or in the invocation, prints
Lambda's ``errorType: errorMessage`` and one line saying what it means, and exits 1 (for events/bad-direct-*.json
that is the expected result); never a traceback of this tool.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from devkit import OUTPUT_BUCKET, ROOT, SAMPLE_OBJECTS
from devkit.emulator import Emulator, LocalS3
from handler.events import event_source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--event", type=Path, default=ROOT / "events" / "http-api-v2-expand.json")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the function environment")
    parser.add_argument("--env-list", default="", help="KEY=VALUE pairs separated by spaces (make invoke ENV=...)")
    parser.add_argument("--show-logs", action="store_true", help="print the function's log lines too")
    args = parser.parse_args(argv)
    pairs = [*args.env, *args.env_list.split()]
    bad = [item for item in pairs if "=" not in item]
    if bad:
        parser.error(f"--env takes KEY=VALUE, not {bad[0]!r}")
    env = dict(item.split("=", 1) for item in pairs)
    if not args.event.is_file():
        names = ", ".join(sorted(p.name for p in (ROOT / "events").glob("*.json"))[:6])
        parser.error(f"no event file {args.event} (events/ holds the samples: {names}, ...)")
    try:
        event = json.loads(args.event.read_text())
    except ValueError as exc:
        parser.error(f"{args.event} is not JSON: {exc}")
    with contextlib.ExitStack() as stack:  # moto_server stops however the emulator run ends
        wants_s3 = event_source(event) == "ingest" and "AWS_ENDPOINT_URL_S3" not in env
        local_s3 = stack.enter_context(LocalS3()) if wants_s3 else None
        if local_s3 is not None:
            env["AWS_ENDPOINT_URL_S3"] = local_s3.url
            print(f"ingest event: serving {', '.join(SAMPLE_OBJECTS)} from a local S3 (moto_server)", file=sys.stderr)
        start = time.perf_counter()
        with Emulator(env) as emulator:
            status, raw = emulator.invoke_raw(json.dumps(event).encode())
            elapsed = time.perf_counter() - start
            if status != 200:  # the emulator's answer when the init phase failed
                return _init_failed(status, raw, emulator.logs() if args.show_logs else "")
            response = json.loads(raw)
            note = ""
            if isinstance(response, dict) and isinstance(response.get("body"), str):
                with contextlib.suppress(ValueError):
                    response = {**response, "body": json.loads(response["body"])}
                    note = "`body` is a JSON string in Lambda's response (what API Gateway receives); shown parsed"
            print(json.dumps(response, indent=2, ensure_ascii=False))
            if note:
                print(note, file=sys.stderr)
            inits = emulator.init_durations_ms()
            if args.show_logs:
                print(emulator.logs(), file=sys.stderr)
                print(
                    "(the emulator's REPORT line says `Init Duration` ~0 ms: it does not time the init phase; the "
                    "INIT REPORT line and the `init` figure below do)",
                    file=sys.stderr,
                )
        if local_s3 is not None:
            for key, body in local_s3.outputs().items():
                print(f"\ns3://{OUTPUT_BUCKET}/{key}:\n{body[:600]}{'...' if len(body) > 600 else ''}")
    init = f"init {inits[0]:.0f} ms (Lambda init phase: imports + model load)" if inits else "init time not reported"
    print(
        f"\n{args.event.name}: {init}; first response after {elapsed:.2f} s including emulator start", file=sys.stderr
    )
    if isinstance(response, dict) and "errorType" in response:
        print(
            f"{response['errorType']}: {response.get('errorMessage', '')}\nthe invocation failed: a direct "
            "invocation reports a bad request as a function error (exit status 1), as Lambda does",
            file=sys.stderr,
        )
        return 1
    return 0


def _init_failed(status: int, raw: bytes, logs: str) -> int:
    """The function could not start (Lambda: an init error): its error, and what it means."""
    try:
        error = json.loads(raw)
        what = f"{error['errorType']}: {error['errorMessage']}"
    except (ValueError, KeyError, TypeError):
        what = f"the emulator answered HTTP {status}: {raw[:300].decode(errors='replace')}"
    if logs:
        print(logs, file=sys.stderr)
    print(
        f"{what}\nthe function failed in its init phase (imports, settings, model load), so no invocation ran; "
        "in Lambda this is an init error. A bad setting names its variable: fix ENV= and run again",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
