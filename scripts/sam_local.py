"""The real `sam local invoke` / `start-lambda` / `start-api` of the built function, never reaching AWS
(`make sam-invoke`, `make sam-lambda`, `make sam-api`).

    python scripts/sam_local.py invoke --arch x86_64 --event events/sqs-s3-ingest.json [-- <more sam options>]
    python scripts/sam_local.py lambda --arch arm64

For the life of the command, an ingest event (and `start-lambda`, which may receive one) gets a local S3
(moto_server on 127.0.0.1, holding the sample documents the events name) that the containers reach through a
relay on the Docker bridge gateway, the only address they may use. Every AWS endpoint of the function points
there (`AWS_ENDPOINT_URL`, `S3_ENDPOINT_URL`), continuations are off (`INGEST_QUEUE_URL` empty), and SAM hands
the containers dummy credentials, never yours: a local example cannot touch a real account. After an invoke,
the JSON Lines the function wrote are printed. `local-env.json` holds the other variables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from devkit import OUTPUT_BUCKET, ROOT, SAMPLE_OBJECTS
from devkit.emulator import LocalS3
from devkit.sam import SAM, GatewayRelay
from handler.events import event_source

# What SAM hands the containers: never the caller's own AWS credentials or profile.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
COMMANDS = {"invoke": "invoke", "lambda": "start-lambda", "api": "start-api"}


def function_for(event: Path) -> str:
    """The function that serves the event, by the handler's own classifier."""
    return "IngestFunction" if event_source(json.loads(event.read_text())) == "ingest" else "ApiFunction"


def env_vars(path: Path, endpoint: str | None) -> Path:
    """local-env.json's variables, plus (``endpoint``) every AWS endpoint of the function at the local S3."""
    variables = dict(json.loads((ROOT / "local-env.json").read_text())["Parameters"])
    if endpoint:
        variables |= {"S3_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL": endpoint, "INGEST_QUEUE_URL": ""}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"Parameters": variables}, indent=1))
    return path


def sam_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **DUMMY_CREDENTIALS, "SAM_CLI_TELEMETRY": "0"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--arch", required=True, choices=["x86_64", "arm64"])
    parser.add_argument("--event", type=Path, help="the event (invoke)")
    parser.add_argument("--invoke-image", required=True, help="the Lambda base image to run on")
    parser.add_argument("--port", type=int, default=0, help="start-lambda / start-api port on 127.0.0.1")
    parser.add_argument("sam_args", nargs="*", help="more `sam local` options, after --")
    args = parser.parse_args(argv)
    if args.command == "invoke" and (args.event is None or not args.event.is_file()):
        parser.error(f"invoke needs an event file: {args.event} does not exist")
    wants_s3 = args.command == "lambda" or (args.command == "invoke" and function_for(args.event) == "IngestFunction")
    template = ROOT / "build" / f"sam-{args.arch}" / "template.yaml"
    local = ["--template", str(template), "--invoke-image", args.invoke_image, "--skip-pull-image",
             "--parameter-overrides", f"Architecture={args.arch}"]  # fmt: skip
    with contextlib.ExitStack() as stack:  # the S3 server and the relay stop however sam ends
        s3 = stack.enter_context(LocalS3()) if wants_s3 else None
        relay = GatewayRelay(int(s3.url.rsplit(":", 1)[1])) if s3 is not None else None
        if relay is not None:
            stack.callback(relay.close)
            print(f"local S3 (moto_server) at {relay.url} for the containers, holding {', '.join(SAMPLE_OBJECTS)}",
                  file=sys.stderr)  # fmt: skip
        local += ["--env-vars", str(env_vars(ROOT / "build" / "sam-local-env.json", relay.url if relay else None))]
        if args.command == "invoke":
            cmd = [str(SAM), "local", "invoke", function_for(args.event), "--event", str(args.event), *local]
        else:
            port = ["--host", "127.0.0.1", "--port", str(args.port or (3001 if args.command == "lambda" else 3000))]
            cmd = [str(SAM), "local", COMMANDS[args.command], *local, *port, "--warm-containers", "LAZY"]
        try:
            code = subprocess.run([*cmd, *args.sam_args], env=sam_environment(), cwd=ROOT, check=False).returncode
        except KeyboardInterrupt:
            return 130
        if s3 is not None and args.command == "invoke":
            for key, body in s3.outputs().items():
                print(f"--- s3://{OUTPUT_BUCKET}/{key}\n{body}", end="" if body.endswith("\n") else "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
