"""What both fake CRMs share: :class:`FakeServer`, the base of ``FakeHubSpot`` and ``FakeAttio``.

It runs the HTTP server (``_http``) in a thread, checks bearer tokens, keeps a request log, runs every API
request through fault injection (``_faults``) and the fake's rate limits before its routes, and delivers
webhooks (sends them now, or collects them for the caller to deliver, reorder, duplicate or drop).
Each fake supplies its own answers through the hooks at the end of the class.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import requests

from crmindex.testing._faults import FaultInjector, Faults, StormKind
from crmindex.testing._http import HttpServer, Request, Response

log = logging.getLogger("crmindex.testing")

EmitMode = Literal["send", "collect"]


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
        self._tokens_lock = threading.RLock()
        self.oauth: Any = None  # the OAuth/account endpoints (crmindex.testing._oauth), set by the subclass
        self.limits = limits
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.emit = emit
        self.deliveries: list[Delivery] = []  # collected (emit="collect") or sent, in order
        self.delivery_status: list[int] = []
        self._injector = FaultInjector(seed)
        self.request_log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: HttpServer | None = None
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
        self._server = HttpServer((self.host, self.port), self._dispatch)
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
        with self._tokens_lock:
            self._tokens.add(token)
            self._revoked.discard(token)

    def revoke_token(self, token: str) -> None:
        """Later requests with ``token`` get 401 (as after an uninstall or expiry)."""
        with self._tokens_lock:
            self._tokens.discard(token)
            self._revoked.add(token)

    def _auth(self, req: Request) -> str | None:
        """None when authorised, else 'missing' | 'revoked' | 'invalid'."""
        header = req.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return "missing"
        token = header[len("Bearer ") :].strip()
        with self._tokens_lock:
            if token in self._tokens:
                return "revoked" if self.oauth is not None and self.oauth.expired(token) else None
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
    @property
    def faults(self) -> Faults:
        """The faults in force (see :class:`~crmindex.testing.Faults`)."""
        return self._injector.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._injector.faults = faults

    def set_faults(self, **kw: Any) -> None:
        """E.g. ``set_faults(error_rate=0.2, latency=0.01)``; ``set_faults()`` alone resets nothing."""
        self._injector.set(**kw)

    def clear_faults(self) -> None:
        self._injector.clear()

    def storm(self, kind: StormKind, seconds: float, **kw: Any) -> float:
        """Every request of the next ``seconds`` gets the fault, then the CRM recovers by itself.

        ``kind``: ``error`` (``error_status``, e.g. 502/503), ``timeout`` (held ``hang_seconds``, then
        dropped), ``rate_limit`` (429, with ``retry_after`` when set) or ``malformed`` (2xx answers replaced
        as ``malformed_kind`` says). ``kw`` sets those faults too; ``only_paths`` still applies. Returns the
        storm's end (``time.monotonic()``).
        """
        return self._injector.storm(kind, seconds, **kw)

    # -- dispatch ----------------------------------------------------------------------------------
    def _dispatch(self, req: Request) -> Response | None:
        inject = self._injector
        limit_class = self._limit_class(req)
        faulty = inject.applies_to(req.path)
        now = time.monotonic()
        try:
            if inject.faults.latency > 0:
                self._stopping.wait(inject.faults.latency)
            if faulty and inject.hangs(now):
                self._stopping.wait(inject.faults.hang_seconds)
                self._log(req, 0, limit_class, now)
                return None
            if faulty and inject.rate_limited(now):
                resp = self._rate_limited(limit_class or "general", storm=True)
            elif self.oauth is not None and (oauth := self.oauth.route(req)) is not None:
                resp = oauth  # token endpoints authenticate with client credentials (crmindex.testing._oauth)
            elif (auth := self._auth(req)) is not None:
                resp = self._unauthorized(auth)
            elif self.limits and (limited := self._check_limits(limit_class)) is not None:
                resp = limited
            elif faulty and (status := inject.error_status(now)) is not None:
                resp = self._server_error(status)
            else:
                resp = self._route(req)
                if faulty and inject.drops_after_accept():  # processed, but the answer never arrives
                    self._stopping.wait(inject.faults.hang_seconds)
                    self._log(req, 0, limit_class, now)
                    return None
                if faulty:
                    resp = inject.maybe_malformed(resp, now)
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
        if self.oauth is not None and self.oauth.deliver(body, headers):
            return None  # sent to the webhooks created through the API (crmindex.testing._oauth)
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
