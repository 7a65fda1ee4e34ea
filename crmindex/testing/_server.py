"""What both fake CRMs share: a real HTTP server on 127.0.0.1, auth, fault injection, a request log,
sliding-window rate limits and webhook delivery (send now, or collect for the caller to deliver)."""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import random
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import requests

log = logging.getLogger("crmindex.testing")

EmitMode = Literal["send", "collect"]
MalformedKind = Literal["garbage", "truncated", "wrong_shape"]
StormKind = Literal["error", "timeout", "rate_limit", "malformed"]


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


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    time: float  # time.time() when received
    status: int  # 0 = connection dropped (timeout fault)
    limit_class: str | None = None
    seconds: float = 0.0  # from received to answered (the fake's own latency, injected faults included)


@dataclass
class Faults:
    """Runtime-settable fault injection (applies to API requests, not to webhook delivery)."""

    error_rate: float = 0.0  # share of requests answered with ``error_status``
    error_status: int = 500
    latency: float = 0.0  # seconds added to every request
    timeout_rate: float = 0.0  # share of requests that hang ``hang_seconds`` then drop the connection
    hang_seconds: float = 1.0
    malformed_rate: float = 0.0  # share of 2xx answers replaced by a non-JSON body
    malformed_kind: MalformedKind = "garbage"  # garbage | truncated (the real body cut short) | wrong_shape
    rate_limit_storm: int = 0  # the next N requests get 429
    retry_after: float | None = None  # 429s carry Retry-After (HubSpot: seconds, sent only sometimes)
    fail_next: list[int] = field(default_factory=list)  # statuses for the next requests, in order
    only_paths: str | None = None  # restrict faults to paths containing this text
    # time-boxed storms (``time.monotonic()`` deadlines, see ``FakeServer.storm``): until then every request
    error_until: float = 0.0  # is answered with ``error_status`` (a 5xx storm)
    timeout_until: float = 0.0  # hangs ``hang_seconds`` then drops the connection
    rate_limit_until: float = 0.0  # gets 429
    malformed_until: float = 0.0  # gets a malformed 2xx answer (``malformed_kind``)


class SlidingWindow:
    """``limit`` events per ``seconds`` (rolling); thread-safe."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._events: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def hit(self) -> tuple[bool, int]:
        """(allowed, remaining) for one more event now."""
        now = time.monotonic()
        with self._lock:
            while self._events and self._events[0] <= now - self.seconds:
                self._events.popleft()
            if len(self._events) >= self.limit:
                return False, 0
            self._events.append(now)
            return True, self.limit - len(self._events)


@dataclass
class Delivery:
    """One webhook POST: deliver it (again) with :meth:`send`; tests may reorder, duplicate or drop."""

    url: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def send(self, timeout: float = 10.0) -> int:
        resp = requests.post(self.url, data=self.body, headers=self.headers, timeout=timeout)
        status = resp.status_code
        resp.close()
        return status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # headers and body go out in separate writes: without TCP_NODELAY every response on a kept-alive
    # connection waits ~40 ms for the client's delayed ACK (Nagle), making the fake 20x slower than it is
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _serve(self) -> None:
        fake = self.server.fake
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
        resp = fake._dispatch(req)
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True

    def __init__(self, addr: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
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


class FakeServer:
    """Base of :class:`FakeHubSpot` and :class:`FakeAttio`."""

    source = "fake"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] = ("test-token",),
        limits: bool = True,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        emit: EmitMode = "send",
        seed: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self._tokens = set(tokens)
        self._revoked: set[str] = set()
        self.limits = limits
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.emit = emit
        self.deliveries: list[Delivery] = []  # collected (emit="collect") or sent, in order
        self.delivery_status: list[int] = []
        self.faults = Faults()
        self.request_log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()
        self._lock = threading.RLock()  # the store
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake server is not running (use it as a context manager or call start())")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> FakeServer:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"fake-{self.source}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted (for ``crmindex fake-crm``)."""
        self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "stopped"
        return f"{type(self).__name__}({where})"

    # -- auth --------------------------------------------------------------------------------------
    def add_token(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)
            self._revoked.discard(token)

    def revoke_token(self, token: str) -> None:
        """Later requests with ``token`` get 401 (as after an uninstall or expiry)."""
        with self._lock:
            self._tokens.discard(token)
            self._revoked.add(token)

    def _auth(self, req: Request) -> str | None:
        """None when authorised, else 'missing' | 'revoked' | 'invalid'."""
        header = req.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return "missing"
        token = header[len("Bearer ") :].strip()
        with self._lock:
            if token in self._tokens:
                return None
            return "revoked" if token in self._revoked else "invalid"

    # -- request log -------------------------------------------------------------------------------
    def _log(self, req: Request, status: int, limit_class: str | None, received: float) -> None:
        seconds = time.monotonic() - received
        with self._log_lock:
            self.request_log.append(
                LoggedRequest(
                    req.method, req.path, req.query, time.time() - seconds, status, limit_class, seconds
                )
            )

    def requests_to(self, path_contains: str, method: str | None = None) -> list[LoggedRequest]:
        with self._log_lock:
            return [
                r
                for r in self.request_log
                if path_contains in r.path and (method is None or r.method == method.upper())
            ]

    def clear_log(self) -> None:
        with self._log_lock:
            self.request_log.clear()

    # -- faults ------------------------------------------------------------------------------------
    def set_faults(self, **kw: Any) -> None:
        """E.g. ``set_faults(error_rate=0.2, latency=0.01)``; ``set_faults()`` alone resets nothing."""
        for k, v in kw.items():
            if not hasattr(self.faults, k):
                raise AttributeError(f"unknown fault {k!r}")
            setattr(self.faults, k, v)

    def clear_faults(self) -> None:
        self.faults = Faults()

    def storm(self, kind: StormKind, seconds: float, **kw: Any) -> float:
        """Every request of the next ``seconds`` gets the fault, then the CRM recovers by itself.

        ``kind``: ``error`` (``error_status``, e.g. 502/503), ``timeout`` (held ``hang_seconds``, then
        dropped), ``rate_limit`` (429, with ``retry_after`` when set) or ``malformed`` (2xx answers replaced
        as ``malformed_kind`` says). ``kw`` sets those faults too; ``only_paths`` still applies. Returns the
        storm's end (``time.monotonic()``).
        """
        self.set_faults(**kw)
        until = time.monotonic() + seconds
        setattr(self.faults, f"{kind}_until", until)
        return until

    def _malformed(self, resp: Response) -> Response:
        kind = self.faults.malformed_kind
        if kind == "truncated":  # the connection died mid-body: valid JSON up to a point
            payload = resp.payload()
            body = payload[: max(1, len(payload) // 2)]
        elif kind == "wrong_shape":  # valid JSON, but not what the endpoint returns
            body = b'{"status":"ok"}'
        else:  # an HTML error page from a proxy, behind a JSON content type
            body = b'{"results": [ <html>oops'
        return Response(resp.status, body, {**resp.headers, "Content-Type": "application/json"})

    def _chance(self, p: float) -> bool:
        if p <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < p

    def _pop_storm(self) -> bool:
        with self._lock:
            if self.faults.rate_limit_storm > 0:
                self.faults.rate_limit_storm -= 1
                return True
            return False

    def _pop_fail(self) -> int | None:
        with self._lock:
            return self.faults.fail_next.pop(0) if self.faults.fail_next else None

    # -- dispatch ----------------------------------------------------------------------------------
    def _dispatch(self, req: Request) -> Response | None:
        f = self.faults
        limit_class = self._limit_class(req)
        faulty = f.only_paths is None or f.only_paths in req.path
        now = time.monotonic()
        try:
            if f.latency > 0:
                self._stopping.wait(f.latency)
            if faulty and (now < f.timeout_until or self._chance(f.timeout_rate)):
                self._stopping.wait(f.hang_seconds)
                self._log(req, 0, limit_class, now)
                return None
            if faulty and (now < f.rate_limit_until or self._pop_storm()):
                resp = self._rate_limited(limit_class or "general", storm=True)
            elif (auth := self._auth(req)) is not None:
                resp = self._unauthorized(auth)
            elif self.limits and (limited := self._check_limits(limit_class)) is not None:
                resp = limited
            elif faulty and (status := self._pop_fail()) is not None:
                resp = self._server_error(status)
            elif faulty and (now < f.error_until or self._chance(f.error_rate)):
                resp = self._server_error(f.error_status)
            else:
                resp = self._route(req)
                if (
                    faulty
                    and 200 <= resp.status < 300
                    and (now < f.malformed_until or self._chance(f.malformed_rate))
                ):
                    resp = self._malformed(resp)
        except Exception:
            log.exception("fake %s: handler failed for %s %s", self.source, req.method, req.path)
            resp = self._server_error(500)
        self._log(req, resp.status, limit_class, now)
        return resp

    # subclasses
    def _limit_class(self, req: Request) -> str | None:
        raise NotImplementedError

    def _check_limits(self, limit_class: str | None) -> Response | None:
        raise NotImplementedError

    def _rate_limited(self, limit_class: str, *, storm: bool = False) -> Response:
        raise NotImplementedError

    def _unauthorized(self, reason: str) -> Response:
        raise NotImplementedError

    def _server_error(self, status: int) -> Response:
        raise NotImplementedError

    def _route(self, req: Request) -> Response:
        raise NotImplementedError

    # -- webhooks ----------------------------------------------------------------------------------
    def _deliver(self, body: bytes, headers: Mapping[str, str]) -> Delivery | None:
        if self.webhook_url is None:
            return None
        d = Delivery(self.webhook_url, {"Content-Type": "application/json", **headers}, body)
        with self._log_lock:
            self.deliveries.append(d)
        if self.emit == "send":
            try:
                status = d.send()
            except requests.RequestException as exc:
                log.warning("fake %s: webhook delivery failed: %s", self.source, type(exc).__name__)
                status = 0
            with self._log_lock:
                self.delivery_status.append(status)
        return d

    def take_deliveries(self) -> list[Delivery]:
        """The collected deliveries (and forget them)."""
        with self._log_lock:
            out, self.deliveries = self.deliveries, []
            return out


def new_uuid(rng: random.Random | None = None) -> str:
    if rng is None:
        return str(uuid.uuid4())
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


Handler = Callable[[Request, list[str]], Response]
