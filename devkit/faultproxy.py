"""A fault-injecting HTTP proxy for S3 on 127.0.0.1: forwards to moto_server, answers some requests with
S3 errors (503 SlowDown, 500 InternalError) according to rules, and records every request it sees."""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ERRORS = {
    403: ("AccessDenied", "Access Denied"),
    503: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
}
HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


@dataclass
class Rule:
    """Fail requests whose method and path match: the first ``times`` of them (None: all of them).

    With ``upstream``, the request is forwarded and only an upstream answer of that status is replaced: S3
    without ``s3:ListBucket`` answers a missing key with 403, which moto (even with IAM on) does not do."""

    method: str
    path: str  # regex on the URL path (URL-encoded, as sent)
    status: int = 503
    times: int | None = 1
    hits: int = 0
    upstream: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.search(self.path, path) is not None


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status answered)

    def __post_init__(self) -> None:
        up = urlsplit(self.upstream)
        proxy = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _error(self, status: int) -> None:
                code, message = ERRORS[status]
                payload = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{message}</Message><RequestId>FAULT</RequestId></Error>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _handle(self) -> None:
                body = self._body()
                status = proxy._fault(self.command, self.path)
                if status is not None:
                    self._error(status)
                    return
                conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                replaced = proxy._replace(self.command, self.path, response.status)
                if replaced is not None:
                    conn.close()
                    self._error(replaced)
                    return
                with proxy._lock:
                    proxy.log.append((self.command, self.path, response.status))
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815 (http.server names)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _replace(self, method: str, path: str, upstream: int) -> int | None:
        with self._lock:
            for rule in self.rules:
                if rule.upstream == upstream and rule.matches(method, path):
                    rule.hits += 1
                    self.log.append((method, path, rule.status))
                    return rule.status
        return None

    def _fault(self, method: str, path: str) -> int | None:
        with self._lock:
            for rule in self.rules:
                if (
                    rule.upstream is None
                    and rule.matches(method, path)
                    and (rule.times is None or rule.hits < rule.times)
                ):
                    rule.hits += 1
                    self.log.append((method, path, rule.status))
                    return rule.status
        return None

    def count(self, method: str, path: str, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for m, p, s in self.log if m == method and re.search(path, p) and status in (None, s))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
