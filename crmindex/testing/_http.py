"""The fakes' HTTP plumbing: a threaded HTTP/1.1 server on 127.0.0.1 that reads each request into a
:class:`Request`, hands it to one dispatch function and writes the :class:`Response` back (or drops the
connection when the answer is None). What a fake answers is decided elsewhere (``_server.FakeServer``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[0] if vals else default


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


Dispatch = Callable[[Request], Response | None]  # None: drop the connection without an answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer
    # headers and body go out in separate writes: without TCP_NODELAY every response on a kept-alive
    # connection waits ~40 ms for the client's delayed ACK (Nagle), making the fake 20x slower than it is
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        resp = self.server.dispatch(req)
        if resp is None:  # drop the connection without an answer
            self.close_connection = True
            return
        payload = resp.payload()
        self.send_response(resp.status)
        if resp.status != 204:
            self.send_header(
                "Content-Type", resp.headers.pop("Content-Type", "application/json;charset=utf-8")
            )
            self.send_header("Content-Length", str(len(payload)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if resp.status != 204 and payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class HttpServer(ThreadingHTTPServer):
    """One thread per connection; :meth:`drop_connections` cuts the open ones (kept-alive clients) on stop."""

    daemon_threads = True
    block_on_close = True

    def __init__(self, addr: tuple[str, int], dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client gave up (e.g. its timeout): expected
            return
        super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
