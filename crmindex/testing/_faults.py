"""Fault injection for the fake CRMs: the runtime-settable :class:`Faults` and the :class:`FaultInjector`
that decides, request by request, which of them strikes (errors, hangs, 429 storms, malformed bodies).

The order in which a request meets them (latency, hang, 429 storm, then auth and the real limits, then
forced errors, then a malformed 2xx) is kept by ``FakeServer._dispatch``; the dice are seeded, so a fake
built with the same ``seed`` injects the same faults into the same sequence of requests.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from crmindex.testing._http import Response

MalformedKind = Literal["garbage", "truncated", "wrong_shape"]
StormKind = Literal["error", "timeout", "rate_limit", "malformed"]


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
    # the next N requests are processed (a write lands), then held ``hang_seconds`` and the connection dropped
    # unanswered: the client sees a timeout after the CRM accepted the call (issue 16, activities)
    accept_then_drop: int = 0
    only_paths: str | None = None  # restrict faults to paths containing this text
    # time-boxed storms (``time.monotonic()`` deadlines, see ``FaultInjector.storm``): until then every request
    error_until: float = 0.0  # is answered with ``error_status`` (a 5xx storm)
    timeout_until: float = 0.0  # hangs ``hang_seconds`` then drops the connection
    rate_limit_until: float = 0.0  # gets 429
    malformed_until: float = 0.0  # gets a malformed 2xx answer (``malformed_kind``)


class FaultInjector:
    """The faults in force (``faults``) and the seeded dice that pick the requests they strike."""

    def __init__(self, seed: int = 0) -> None:
        self.faults = Faults()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._lock = threading.Lock()  # the counters (``rate_limit_storm``, ``fail_next``)

    # -- settings ----------------------------------------------------------------------------------
    def set(self, **kw: Any) -> None:
        for k, v in kw.items():
            if not hasattr(self.faults, k):
                raise AttributeError(f"unknown fault {k!r}")
            setattr(self.faults, k, v)

    def clear(self) -> None:
        self.faults = Faults()

    def storm(self, kind: StormKind, seconds: float, **kw: Any) -> float:
        self.set(**kw)
        until = time.monotonic() + seconds
        setattr(self.faults, f"{kind}_until", until)
        return until

    # -- per request (``now``: ``time.monotonic()`` when the request arrived) ----------------------
    def chance(self, p: float) -> bool:
        if p <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < p

    def applies_to(self, path: str) -> bool:
        only = self.faults.only_paths
        return only is None or only in path

    def hangs(self, now: float) -> bool:
        """Hold the request ``hang_seconds``, then drop the connection."""
        return now < self.faults.timeout_until or self.chance(self.faults.timeout_rate)

    def rate_limited(self, now: float) -> bool:
        """Answer 429 before anything else is looked at (a storm, or one of the next N requests)."""
        return now < self.faults.rate_limit_until or self._pop_storm()

    def error_status(self, now: float) -> int | None:
        """The status of a forced error: the next of ``fail_next``, else ``error_status`` in a storm or by chance."""
        status = self._pop_fail()
        if status is not None:
            return status
        if now < self.faults.error_until or self.chance(self.faults.error_rate):
            return self.faults.error_status
        return None

    def maybe_malformed(self, resp: Response, now: float) -> Response:
        """A 2xx answer, or what a broken proxy or connection made of it."""
        if not 200 <= resp.status < 300:
            return resp
        if not (now < self.faults.malformed_until or self.chance(self.faults.malformed_rate)):
            return resp
        kind = self.faults.malformed_kind
        if kind == "truncated":  # the connection died mid-body: valid JSON up to a point
            payload = resp.payload()
            body = payload[: max(1, len(payload) // 2)]
        elif kind == "wrong_shape":  # valid JSON, but not what the endpoint returns
            body = b'{"status":"ok"}'
        else:  # an HTML error page from a proxy, behind a JSON content type
            body = b'{"results": [ <html>oops'
        return Response(resp.status, body, {**resp.headers, "Content-Type": "application/json"})

    def drops_after_accept(self) -> bool:
        """Whether this request, already processed, goes unanswered (one of the next ``accept_then_drop``)."""
        with self._lock:
            if self.faults.accept_then_drop > 0:
                self.faults.accept_then_drop -= 1
                return True
            return False

    def _pop_storm(self) -> bool:
        with self._lock:
            if self.faults.rate_limit_storm > 0:
                self.faults.rate_limit_storm -= 1
                return True
            return False

    def _pop_fail(self) -> int | None:
        with self._lock:
            return self.faults.fail_next.pop(0) if self.faults.fail_next else None
