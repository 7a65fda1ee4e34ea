"""An in-process, thread-safe GCRA rate limiter implementing :class:`crmindex.platform.limits.RateLimiter`.

GCRA (the generic cell rate algorithm) keeps one number per limit class, the theoretical arrival time
(TAT). A request of ``n`` permits is allowed when ``now >= TAT + n*T - burst*T`` (T = 1/rate); it then
moves TAT forward by ``n*T``. Over any window of W seconds at most ``burst + rate*W`` permits are granted,
so a server window of ``count`` per ``W`` seconds is respected by ``Rate.window(count, W, burst)``
(rate = (count - burst) / W).

``penalize`` (after a 429) blocks the class until the wait is over, for every thread using this limiter.
The shared Postgres limiter (``crmindex.platform.limiter``) implements the same protocol across processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from crmindex.platform.limits import LimitClass, WaitPastDeadline


@dataclass(frozen=True)
class Rate:
    """``per_second`` sustained permits with bursts of up to ``burst``."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_second > 0 and burst >= 1")

    @classmethod
    def window(cls, count: int, seconds: float, burst: int = 1) -> Rate:
        """The fastest rate that never grants more than ``count`` permits in any ``seconds`` window."""
        if not 1 <= burst < count:
            raise ValueError("burst must be at least 1 and below count")
        return cls((count - burst) / seconds, burst)


DEFAULT_RATES: dict[LimitClass, Rate] = {
    LimitClass.HUBSPOT_GENERAL: Rate.window(100, 10.0, burst=10),  # Free/Starter: 100 per 10 s
    LimitClass.HUBSPOT_SEARCH: Rate.window(5, 1.0, burst=1),  # search: 5 per second
    LimitClass.ATTIO_READ: Rate.window(100, 1.0, burst=10),  # 100 reads per second
    LimitClass.ATTIO_WRITE: Rate.window(25, 1.0, burst=5),  # 25 writes per second
}


class LocalRateLimiter:
    """Thread-safe GCRA per limit class, with account-wide penalties after a 429."""

    def __init__(
        self,
        rates: Mapping[LimitClass, Rate] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rates = dict(DEFAULT_RATES)
        if rates:
            self._rates.update(rates)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat: dict[LimitClass, float] = {}
        self._blocked_until: dict[LimitClass, float] = {}
        self.waited_seconds = 0.0  # total time callers spent blocked (for tests and stats)

    def rate(self, limit_class: LimitClass) -> Rate:
        return self._rates[limit_class]

    def _try(self, limit_class: LimitClass, n: int) -> float:
        """0 when granted now, else how long to wait before trying again."""
        rate = self._rates[limit_class]
        period = 1.0 / rate.per_second
        now = self._clock()
        blocked = self._blocked_until.get(limit_class, 0.0)
        if now < blocked:
            return blocked - now
        tat = max(self._tat.get(limit_class, now), now)
        new_tat = tat + n * period
        allow_at = new_tat - rate.burst * period
        if now + 1e-9 >= allow_at:
            self._tat[limit_class] = new_tat
            return 0.0
        return allow_at - now

    def acquire(self, limit_class: LimitClass, n: int = 1, *, deadline: float | None = None) -> None:
        rate = self._rates[limit_class]
        if n < 1:
            return
        if n > rate.burst:
            raise ValueError(f"cannot take {n} permits at once: the burst of {limit_class} is {rate.burst}")
        while True:
            with self._lock:
                wait = self._try(limit_class, n)
            if wait <= 0:
                return
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise WaitPastDeadline(wait)
            self.waited_seconds += wait
            self._sleep(wait)

    def try_acquire(self, limit_class: LimitClass, n: int = 1) -> bool:
        """Take ``n`` permits when possible without waiting."""
        with self._lock:
            return self._try(limit_class, n) <= 0

    def penalize(self, limit_class: LimitClass, wait_seconds: float) -> None:
        if wait_seconds <= 0:
            return
        with self._lock:
            until = self._clock() + wait_seconds
            if until > self._blocked_until.get(limit_class, 0.0):
                self._blocked_until[limit_class] = until
            # after the penalty the window starts afresh, not with a backlog of earlier grants
            self._tat[limit_class] = max(self._tat.get(limit_class, 0.0), until)

    def __repr__(self) -> str:
        rates = ", ".join(f"{k.name}={v.per_second:g}/s burst {v.burst}" for k, v in self._rates.items())
        return f"LocalRateLimiter({rates})"
