"""The shared rate limiter: one GCRA row per CRM account and limit class, in Postgres.

Every client call of every process reserves its slot with one short autocommit UPDATE
(``crm.rate_limit_reserve``) on a connection of its own — never inside the caller's transaction, so the
row lock is held for microseconds — then sleeps until the slot. A 429 seen by anyone pushes the whole
account back (``crm.rate_limit_penalize``). A caller with a deadline (a drainer's lease) reserves only a slot it
can wait for (``crm.rate_limit_reserve_within``). See ``sql/platform/limiter.sql``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

import psycopg
from psycopg_pool import ConnectionPool

from crmindex.platform.db import Conn, translate_errors
from crmindex.platform.limits import LimitClass, LimitHeld, WaitPastDeadline

# The longest a call waits for its slot in the limiter; a longer wait is a hold (a spent daily budget, a long 429
# penalty): the caller is told (LimitHeld) instead of sleeping for hours.
MAX_SLEEP_S = 300.0


class PgRateLimiter:
    """Implements :class:`crmindex.platform.limits.RateLimiter` for one account (org + CRM source).

    ``conninfo`` is a DSN (the limiter keeps one dedicated autocommit connection, reconnecting after a
    database restart) or a :class:`psycopg_pool.ConnectionPool` to borrow from.
    """

    def __init__(
        self,
        conninfo: str | ConnectionPool[Conn],
        org_id: uuid.UUID | str,
        source: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._conninfo = conninfo
        self.org_id = str(org_id)
        self.source = source
        self._sleep = sleep
        self._conn: Conn | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.waited_s = 0.0
        self.calls = 0

    def __repr__(self) -> str:
        return f"PgRateLimiter(org_id={self.org_id!r}, source={self.source!r})"

    def _call(self, sql: str, params: tuple[object, ...]) -> object:
        if isinstance(self._conninfo, ConnectionPool):
            with self._conninfo.connection() as conn, translate_errors():
                row = conn.execute(sql, params).fetchone()
                return None if row is None else row[0]
        with self._lock:
            if self._closed:
                raise RuntimeError("this PgRateLimiter was closed")
            for attempt in range(3):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self._conninfo, autocommit=True)
                    with translate_errors():
                        row = self._conn.execute(sql, params).fetchone()
                    return None if row is None else row[0]
                except psycopg.OperationalError:
                    # the database restarted or the connection dropped: reconnect and try again
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
                    time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def reserve(self, limit_class: LimitClass | str, n: int = 1) -> float:
        """Reserve ``n`` permits; returns the seconds to wait before calling (does not sleep)."""
        wait = self._call(
            "SELECT crm.rate_limit_reserve(%s, %s, %s, %s)", (self.org_id, self.source, str(limit_class), n)
        )
        assert isinstance(wait, float)
        return wait

    def reserve_within(self, limit_class: LimitClass | str, n: int, max_wait_s: float) -> float:
        """Reserve ``n`` permits unless that needs a wait above ``max_wait_s``; returns the wait (a wait above
        ``max_wait_s`` means nothing was reserved: ``crm.rate_limit_reserve_within``)."""
        wait = self._call(
            "SELECT crm.rate_limit_reserve_within(%s, %s, %s, %s, %s)",
            (self.org_id, self.source, str(limit_class), n, max(0.0, float(max_wait_s))),
        )
        assert isinstance(wait, float)
        return wait

    def acquire(self, limit_class: LimitClass, n: int = 1, *, deadline: float | None = None) -> None:
        """Wait for ``n`` permits; with ``deadline`` (``time.monotonic()``) a wait ending at or after it takes
        nothing and raises :class:`~crmindex.platform.limits.WaitPastDeadline`. A wait longer than ``MAX_SLEEP_S``
        (a hold: the daily budget is spent) takes nothing and raises :class:`~crmindex.platform.limits.LimitHeld`."""
        max_wait = MAX_SLEEP_S if deadline is None else min(MAX_SLEEP_S, deadline - time.monotonic())
        if max_wait <= 0:
            raise WaitPastDeadline(0.0)
        wait = self.reserve_within(limit_class, n, max_wait)
        if wait > max_wait:  # nothing was reserved
            if wait > MAX_SLEEP_S or deadline is None:
                raise LimitHeld(wait, self._hold_reason(limit_class))
            raise WaitPastDeadline(wait)
        self.calls += 1
        if wait > 0:
            self.waited_s += wait
            self._sleep(wait)

    def _hold_reason(self, limit_class: LimitClass | str) -> str:
        reason = self._call(
            "SELECT held_reason FROM crm.rate_limit_hold_of(%s, %s, %s)",
            (self.org_id, self.source, str(limit_class)),
        )
        return str(reason) if reason else "held"

    def observe(self, limit_class: LimitClass | str, permits: int, per_seconds: float) -> bool:
        """The CRM's own limit for the class (``crm.rate_limit_observe``: an operator's configuration wins)."""
        changed = self._call(
            "SELECT crm.rate_limit_observe(%s, %s, %s, %s, %s)",
            (self.org_id, self.source, str(limit_class), int(permits), float(per_seconds)),
        )
        return bool(changed)

    def observe_daily(
        self,
        daily_limit: int,
        daily_remaining: int,
        resets_at: datetime | None,
        reserve: int,
        classes: Sequence[str],
    ) -> bool:
        """The account's daily budget (``crm.rate_limit_daily``); True when ``classes`` are held now."""
        held = self._call(
            "SELECT crm.rate_limit_daily(%s, %s, %s, %s, %s, %s, %s)",
            (
                self.org_id,
                self.source,
                int(daily_limit),
                int(daily_remaining),
                resets_at,
                int(reserve),
                list(classes),
            ),
        )
        return bool(held)

    def hold(self, classes: Sequence[str], until: datetime, reason: str) -> None:
        self._call(
            "SELECT crm.rate_limit_hold(%s, %s, %s, %s, %s)",
            (self.org_id, self.source, list(classes), until, reason),
        )

    def penalize(self, limit_class: LimitClass, wait_seconds: float) -> None:
        self._call(
            "SELECT crm.rate_limit_penalize(%s, %s, %s, %s)",
            (self.org_id, self.source, str(limit_class), float(wait_seconds)),
        )

    def configure(
        self, limit_class: LimitClass | str, permits: int, per_seconds: float, headroom: float = 0.97
    ) -> None:
        self._call(
            "SELECT crm.rate_limit_configure(%s, %s, %s, %s, %s, %s)",
            (self.org_id, self.source, str(limit_class), permits, per_seconds, headroom),
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
