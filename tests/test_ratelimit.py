"""The shared Postgres rate limiter: processes sharing one account never exceed its limit together."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import psycopg
import pytest

from crmindex.errors import InvalidInputError
from crmindex.index.writes import ensure_org
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.limits import LimitClass
from tests.orgs import ORG

PERMITS, WINDOW = 20, 2.0


def _hammer(dsn: str, ready: Any, go: Any, out: Any) -> None:
    limiter = PgRateLimiter(dsn, ORG, "hubspot")
    limiter.reserve(LimitClass.HUBSPOT_SEARCH)  # connect and warm up on another class
    ready.put(True)
    start, until = go.get()
    time.sleep(max(0.0, start - time.time()))
    sent: list[float] = []
    while True:
        limiter.acquire(LimitClass.HUBSPOT_GENERAL)
        now = time.time()
        if now >= until:
            break
        sent.append(now)
    limiter.close()
    out.put(sent)


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_four_processes_share_one_limit(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ensure_org(conn, ORG)
    setup = PgRateLimiter(db_dsn, ORG, "hubspot")
    setup.configure(LimitClass.HUBSPOT_GENERAL, PERMITS, WINDOW)
    setup.close()
    ctx = multiprocessing.get_context("spawn")
    ready, go, queue = ctx.Queue(), ctx.Queue(), ctx.Queue()
    duration = 8.0
    procs = [ctx.Process(target=_hammer, args=(db_dsn, ready, go, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    for _ in procs:  # the clock starts once every process is up and connected
        ready.get(timeout=120)
    start = time.time() + 0.2
    for _ in procs:
        go.put((start, start + duration))
    per_proc = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    sent = [t for times in per_proc for t in times if t >= start]
    assert all(len(times) > 0 for times in per_proc), "every process got permits"
    worst = _max_in_window(sent, WINDOW)
    assert worst <= PERMITS, f"{worst} calls in one {WINDOW}s window (limit {PERMITS})"
    allowed = duration / WINDOW * PERMITS
    utilization = len(sent) / allowed
    print(
        f"4 processes: {len(sent)} calls in {duration}s, worst {WINDOW}s window {worst}/{PERMITS}, "
        f"utilization {utilization:.1%}"
    )
    assert utilization >= 0.9, f"used only {utilization:.0%} of the limit ({len(sent)} of {allowed:.0f})"


def test_a_429_pushes_every_worker_of_the_account_back(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ensure_org(conn, ORG)
    a = PgRateLimiter(db_dsn, ORG, "hubspot")
    b = PgRateLimiter(db_dsn, ORG, "hubspot")
    other_class = PgRateLimiter(db_dsn, ORG, "hubspot")
    assert a.reserve(LimitClass.HUBSPOT_SEARCH) == pytest.approx(0, abs=0.05)
    a.penalize(LimitClass.HUBSPOT_SEARCH, 1.5)
    assert b.reserve(LimitClass.HUBSPOT_SEARCH) == pytest.approx(1.5, abs=0.1)
    # another limit class of the same account is not held back
    assert other_class.reserve(LimitClass.HUBSPOT_GENERAL) == pytest.approx(0, abs=0.05)
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute(
            "SELECT penalties, penalized_until > now() FROM crm.rate_limit WHERE limit_class = 'search'"
        ).fetchone()
    assert row == (1, True)
    for lim in (a, b, other_class):
        lim.close()


def test_defaults_follow_the_crm_docs(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ensure_org(conn, ORG)
        for source, cls in (
            ("hubspot", "general"),
            ("hubspot", "search"),
            ("attio", "read"),
            ("attio", "write"),
        ):
            conn.execute("SELECT crm.rate_limit_reserve(%s, %s, %s)", (ORG, source, cls))
        rows = conn.execute(
            "SELECT crm_source, limit_class, permits, per_seconds FROM crm.rate_limit ORDER BY 1, 2"
        ).fetchall()
    assert rows == [
        ("attio", "read", 100, 1.0),
        ("attio", "write", 25, 1.0),
        ("hubspot", "general", 100, 10.0),
        ("hubspot", "search", 5, 1.0),
    ]


def test_bad_configuration_is_a_clear_error(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ensure_org(conn, ORG)
    lim = PgRateLimiter(db_dsn, ORG, "hubspot")
    with pytest.raises(InvalidInputError, match="positive"):
        lim.configure(LimitClass.HUBSPOT_GENERAL, 0, 10)
    with pytest.raises(InvalidInputError, match="no default rate limit"):
        lim.reserve("carrier_pigeon")
    assert "token" not in repr(lim)
    lim.close()
