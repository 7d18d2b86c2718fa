"""The deployed API on 127.0.0.1 for client tests: an HTTP server that does what API Gateway's HTTP API (or a
Function URL) does in front of the function, and hands each request to the built artifact under the Lambda runtime
emulator as a payload-format-2.0 event.

- ``auth="iam"``: the request's SigV4 signature is checked by devkit/sigv4.py (written from AWS's specification,
  not botocore) for ``service`` (``execute-api``; ``lambda`` for a Function URL) and the region; a request that
  fails gets API Gateway's 403 ``{"message": ...}`` and never reaches the function.
- ``auth="none"``: passed as is (a Function URL with ``ApiAuth=apikey``: the function checks the key).
- ``faults``: statuses answered, in order, before any request is forwarded (429 and 503 for the retry tests).
- ``source``: the event the function gets, ``http_v2`` (an HTTP API's domain) or ``function_url`` (a Function URL's
  domain: with API_KEY_SECRET_ID set the function then checks the key).
- A function error (an ``errorType`` answer) is API Gateway's 502 ``{"message": "Internal Server Error"}``.

``calls`` records each forwarded request (method, path, number of texts, the function's status) for the tests.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import sigv4
from .emulator import Emulator
from .servers import free_port


class ApiShim:
    def __init__(
        self, emulator: Emulator, *, auth: str = "iam", service: str = "execute-api", region: str = "us-east-1",
        secrets: dict[str, str] | None = None, faults: list[int] | None = None, source: str = "http_v2",
    ) -> None:  # fmt: skip
        self.emulator, self.auth, self.service, self.region = emulator, auth, service, region
        self.domain = f"shim.{'lambda-url' if source == 'function_url' else 'execute-api'}.{region}." + (
            "on.aws" if source == "function_url" else "amazonaws.com"
        )
        self.secrets = secrets or {}
        self.faults = list(faults or [])
        self.calls: list[tuple[str, str, int, int]] = []
        self.refused: list[str] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            if self.faults:
                status = self.faults.pop(0)
                return status, {"content-type": "application/json", "retry-after": "0"}, b'{"message": "fault"}'
        path, _, query = target.partition("?")
        if self.auth == "iam":
            try:
                sigv4.verify(method, path, query, headers, body, secrets=self.secrets, region=self.region,
                             service=self.service, now=datetime.now(UTC))  # fmt: skip
            except sigv4.SignatureError as exc:
                self.refused.append(str(exc))
                return 403, {"content-type": "application/json"}, json.dumps({"message": str(exc)}).encode()
        event = self._event(method, path, query, headers, body)
        texts = 0
        if method == "POST":
            try:
                texts = len(json.loads(body).get("texts", []))
            except (ValueError, AttributeError):
                texts = 0
        result = self.emulator.invoke(event)
        if not isinstance(result, dict) or "statusCode" not in result:
            return 502, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
        with self.lock:
            self.calls.append((method, path, texts, int(result["statusCode"])))
        out = result.get("body") or ""
        data = base64.b64decode(out) if result.get("isBase64Encoded") else str(out).encode()
        return int(result["statusCode"]), {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}, data

    def _event(self, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
        joined: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        try:
            text, b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, b64 = base64.b64encode(body).decode(), True
        now = time.time()
        return {
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query, "headers": joined,
            "requestContext": {
                "accountId": "123456789012", "apiId": "shim", "domainName": self.domain,
                "domainPrefix": "shim", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": joined.get("user-agent", "")}, "requestId": f"shim-{now}",
                "routeKey": "$default", "stage": "$default", "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now * 1000),
            },
            "body": text, "isBase64Encoded": b64,
        }  # fmt: skip

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the client's connection is reused

            def setup(self) -> None:
                super().setup()  # headers and body go out as two writes: no Nagle wait for the delayed ACK
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = shim.answer(self.command, self.path, list(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    if name not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_OPTIONS = _serve  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def api(emulator: Emulator, **options: Any) -> Iterator[ApiShim]:
    shim = ApiShim(emulator, **options)
    try:
        yield shim
    finally:
        shim.close()
