"""The queue core: SKIP LOCKED claims, fenced leases, backoff ladder, dead letters, coalescing, wake-ups."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from crmindex.platform.db import bind_org
from crmindex.platform.queue import Job, Outcome, Queue, Worker, enqueue_job
from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B
from tests.process_helpers import deadlocks_counted, sessions_waiting_on_locks, wait_for

Conn = psycopg.Connection[tuple[object, ...]]
JOBS = Queue("crm.job")


@pytest.fixture
def orgs(both_orgs: Conn) -> Conn:
    return both_orgs


def _status(db: Conn, job_id: int) -> tuple[object, ...]:
    row = db.execute(
        "SELECT status, attempts, last_error, next_retry_at - now() FROM crm.job WHERE id = %s", (job_id,)
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_claim_complete_and_fencing(orgs: Conn) -> None:
    job_id = enqueue_job(orgs, A, "noop", {"x": 1})
    [first] = JOBS.claim(orgs, "w1", 10, lease_s=0.2)
    assert (first.id, first.attempts, first.payload) == (job_id, 1, {"x": 1})
    assert JOBS.claim(orgs, "w2", 10) == []  # leased
    time.sleep(0.3)
    [second] = JOBS.claim(orgs, "w2", 10)  # the lease expired: anyone may take it
    assert second.id == job_id and second.lease_token != first.lease_token and second.attempts == 2
    # the first worker woke up late: it can neither complete nor fail the job any more
    assert JOBS.complete(orgs, [first]) == 0
    assert JOBS.fail(orgs, first, "late") is None
    assert not JOBS.release(orgs, first)
    assert JOBS.complete(orgs, [second]) == 1
    assert _status(orgs, job_id)[0] == "completed"


def test_backoff_ladder_then_dead_letter(orgs: Conn) -> None:
    job_id = enqueue_job(orgs, A, "flaky")
    expected = [60, 300, 1800, 7200, 43200]
    for attempt, delay in enumerate(expected, start=1):
        orgs.execute("UPDATE crm.job SET next_retry_at = now() WHERE id = %s", (job_id,))
        [job] = JOBS.claim(orgs, "w", 1)
        assert job.attempts == attempt
        assert JOBS.fail(orgs, job, f"boom {attempt}") == "failed"
        status, attempts, error, wait = _status(orgs, job_id)
        assert (status, attempts, error) == ("failed", attempt, f"boom {attempt}")
        assert isinstance(wait, timedelta)
        assert abs(wait.total_seconds() - delay) < 5
    orgs.execute("UPDATE crm.job SET next_retry_at = now() WHERE id = %s", (job_id,))
    [job] = JOBS.claim(orgs, "w", 1)
    assert JOBS.fail(orgs, job, "boom 6") == "dead_letter"
    assert _status(orgs, job_id)[:3] == ("dead_letter", 6, "boom 6")
    assert JOBS.claim(orgs, "w", 1) == []
    assert JOBS.requeue(orgs, A) == 1
    assert _status(orgs, job_id)[:2] == ("pending", 0)


def test_permanent_failure_dead_letters_at_once_and_release_spends_no_attempt(orgs: Conn) -> None:
    bad = enqueue_job(orgs, A, "bad")
    [job] = JOBS.claim(orgs, "w", 1)
    assert (
        JOBS.fail(orgs, job, "HubSpot said: Property values were not valid", retryable=False) == "dead_letter"
    )
    assert _status(orgs, bad)[:3] == ("dead_letter", 1, "HubSpot said: Property values were not valid")
    limited = enqueue_job(orgs, A, "limited")
    [job] = JOBS.claim(orgs, "w", 1)
    assert JOBS.release(orgs, job, delay_s=0, note="429: wait 10s")
    status, attempts, error, _ = _status(orgs, limited)
    assert (status, attempts, error) == ("pending", 0, "429: wait 10s")


def test_concurrent_claimers_never_share_a_job(db_dsn: str, orgs: Conn) -> None:
    orgs.execute(
        "INSERT INTO crm.job (org_id, kind, payload) SELECT %s, 'n', jsonb_build_object('i', g) "
        "FROM generate_series(1, 2000) AS g",
        (A,),
    )
    seen: list[list[int]] = [[] for _ in range(4)]

    def claimer(k: int) -> None:
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            while True:
                jobs = JOBS.claim(conn, f"w{k}", 25)
                if not jobs:
                    return
                seen[k].extend(j.id for j in jobs)
                JOBS.complete(conn, jobs)

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for s in seen for i in s]
    assert len(every) == 2000 and len(set(every)) == 2000
    assert sum(1 for s in seen if s) >= 2  # the work really was shared
    row = orgs.execute("SELECT count(*) FROM crm.job WHERE status = 'completed'").fetchone()
    assert row == (2000,)


def test_a_completion_chosen_as_deadlock_victim_runs_again(db_dsn: str, orgs: Conn) -> None:
    """The queue core's lease statements survive a deadlock: another session holds the second of two claimed jobs
    and, once ``Queue.complete`` waits for it, updates the first (which the completion holds). The server rolls the
    completion back as the victim; it runs again and completes both, the worker's connection intact."""
    ids = [enqueue_job(orgs, A, "noop", {"i": i}) for i in range(2)]
    jobs = sorted(JOBS.claim(orgs, "w", 10), key=lambda j: j.id)
    assert [j.id for j in jobs] == ids
    errors: list[BaseException] = []

    held = threading.Event()

    def cross() -> None:
        try:
            with psycopg.connect(db_dsn) as side:
                side.execute(
                    "SET deadlock_timeout = '20s'"
                )  # the completion (2 s) detects the cycle: its victim
                side.execute("SELECT 1 FROM crm.job WHERE id = %s FOR UPDATE", (ids[1],))
                held.set()
                wait_for(
                    lambda: sessions_waiting_on_locks(db_dsn) == 1,
                    10,
                    "the completion waiting for the held job",
                )
                side.execute("UPDATE crm.job SET updated_at = now() WHERE id = %s", (ids[0],))
                side.rollback()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    before = deadlocks_counted(db_dsn)
    t = threading.Thread(target=cross)
    t.start()
    assert held.wait(10)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("SET deadlock_timeout = '2s'")
        assert JOBS.complete(conn, jobs) == 2  # no error reached the worker
        assert not conn.closed and not conn.broken
    t.join(10)
    assert errors == []
    assert [_status(orgs, i)[0] for i in ids] == ["completed", "completed"]
    wait_for(
        lambda: deadlocks_counted(db_dsn) > before, 5, "a deadlock counted"
    )  # the crossing really was one


def test_holding_an_account_skips_the_jobs_another_session_holds(db_dsn: str, orgs: Conn) -> None:
    """``crm.queue_hold_account`` (a rejected token) pushes the account's waiting jobs out without waiting for a
    job another session has locked (a claim, a finish): waiting there is how it could deadlock with a drainer."""
    ids = [enqueue_job(orgs, A, "hydrate", {"i": i}, source="hubspot") for i in range(3)]
    other = enqueue_job(orgs, B, "hydrate", {}, source="hubspot")
    with psycopg.connect(db_dsn) as side:  # a transaction holding the first job, as a claim in progress does
        side.execute("SELECT 1 FROM crm.job WHERE id = %s FOR UPDATE", (ids[0],))
        orgs.execute("SET statement_timeout = '3s'")  # waiting for the side transaction would fail the call
        try:
            row = orgs.execute(
                "SELECT crm.queue_hold_account(%s, 'crm.job', 'hubspot', 'token rejected', 600)", (A,)
            ).fetchone()
        finally:
            orgs.execute("RESET statement_timeout")
        side.rollback()
    assert row == (2,)
    held = {
        int(str(i)): str(e)
        for i, e in orgs.execute(
            "SELECT id, last_error FROM crm.job WHERE next_retry_at > now() + interval '500 seconds'"
        ).fetchall()
    }
    assert held == {ids[1]: "token rejected", ids[2]: "token rejected"}  # not the locked one, not org B's
    assert other not in held


def test_dedupe_key_coalesces_open_jobs_only(orgs: Conn) -> None:
    a = enqueue_job(orgs, A, "refetch", {"fields": {"a": 1}}, dedupe_key="rec-1")
    b = enqueue_job(orgs, A, "refetch", {"more": True}, dedupe_key="rec-1")
    assert a == b
    row = orgs.execute("SELECT payload FROM crm.job WHERE id = %s", (a,)).fetchone()
    assert row == ({"fields": {"a": 1}, "more": True},)
    [job] = JOBS.claim(orgs, "w", 5)
    c = enqueue_job(orgs, A, "refetch", {"again": True}, dedupe_key="rec-1")
    assert c != a  # the open one is already running: a new job, so the newer change is not lost
    assert enqueue_job(orgs, B, "refetch", dedupe_key="rec-1") not in (a, c)  # keys are per org
    JOBS.complete(orgs, [job])


def test_claim_by_org_and_the_app_role_sees_only_its_org_and_claims_nothing(db_dsn: str, orgs: Conn) -> None:
    enqueue_job(orgs, A, "k")
    enqueue_job(orgs, B, "k")
    assert {j.org_id for j in JOBS.claim(orgs, "w", 10, lease_s=0.01, org_id=B)} == {B}
    time.sleep(0.05)
    with psycopg.connect(db_dsn, autocommit=True) as app:
        app.execute("SET ROLE crm_app")
        bind_org(app, A)
        assert {r[0] for r in app.execute("SELECT org_id FROM crm.job")} == {A}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the queue core is the workers' (issue 13)
            JOBS.claim(app, "app", 10)


def test_reclaim_and_purge_maintenance(orgs: Conn) -> None:
    j1 = enqueue_job(orgs, A, "k")
    JOBS.claim(orgs, "w", 1, lease_s=0.01)
    time.sleep(0.05)
    assert orgs.execute("SELECT crm.queue_reclaim_expired('crm.job')").fetchone() == (1,)
    assert _status(orgs, j1)[0] == "pending"
    [job] = JOBS.claim(orgs, "w", 1)
    JOBS.complete(orgs, [job])
    orgs.execute("UPDATE crm.job SET completed_at = now() - interval '8 days'")
    assert orgs.execute("SELECT crm.queue_purge_completed('crm.job', interval '7 days')").fetchone() == (1,)


def test_worker_handles_batches_and_retries_handler_crashes(db_dsn: str, orgs: Conn) -> None:
    for i in range(30):
        enqueue_job(orgs, A, "ok" if i % 3 else "crash", {"i": i})

    def handler(conn: Conn, jobs: Sequence[Job]) -> Mapping[Job, Outcome]:
        if any(j.kind == "crash" for j in jobs):
            raise RuntimeError("handler bug")
        return {j: Outcome.done() for j in jobs}

    w_ok = Worker(db_dsn, JOBS, handler, kind="ok", batch=7)
    assert w_ok.run_once() == 20
    w_crash = Worker(db_dsn, JOBS, handler, kind="crash", batch=7)
    assert w_crash.run_once() == 10
    rows = dict(orgs.execute("SELECT status, count(*) FROM crm.job GROUP BY 1").fetchall())
    assert rows == {"completed": 20, "failed": 10}
    row = orgs.execute("SELECT DISTINCT last_error FROM crm.job WHERE status = 'failed'").fetchone()
    assert row == ("RuntimeError: handler bug",)


def test_listening_worker_wakes_on_notify(db_dsn: str, orgs: Conn) -> None:
    done = threading.Event()

    def handler(conn: Conn, jobs: Sequence[Job]) -> Mapping[Job, Outcome]:
        done.set()
        return {j: Outcome.done() for j in jobs}

    worker = Worker(db_dsn, JOBS, handler, poll_s=60)  # only a NOTIFY can wake it in time
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        time.sleep(0.5)
        started = time.monotonic()
        enqueue_job(orgs, A, "wake")
        assert done.wait(5), "worker did not wake"
        assert time.monotonic() - started < 3
    finally:
        worker.stop.set()
        thread.join(10)
    assert not thread.is_alive()


class _CountingQueue(Queue):
    """crm.job, counting claims: each claim is one wake-up of the worker."""

    def __init__(self) -> None:
        super().__init__("crm.job")
        self.claims = 0

    def claim(self, *args: Any, **kw: Any) -> list[Job]:
        self.claims += 1
        return super().claim(*args, **kw)


@pytest.mark.parametrize("own", ["job", "crm.job", ""], ids=["trigger", "maintenance", "bare-notify"])
def test_a_worker_sleeps_through_other_queues_notifications(db_dsn: str, orgs: Conn, own: str) -> None:
    """Every insert into any queue notifies ``crm_queue``. A job worker must not run a claim for the
    write-back and inbox notifications (under the mixed load that was ~800 useless claims/s), but still
    wakes for its own queue's: the trigger's table name, maintenance's qualified name or a bare NOTIFY."""
    queue = _CountingQueue()
    worker = Worker(db_dsn, queue, lambda conn, jobs: {j: Outcome.done() for j in jobs}, poll_s=60)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: queue.claims == 1, 5, "the first pass")  # it found nothing: asleep
        for _ in range(30):
            orgs.execute(
                "SELECT pg_notify('crm_queue', 'writeback_queue'), pg_notify('crm_queue', 'webhook_inbox')"
            )
        orgs.execute("SELECT pg_notify('crm_queue', 'crm.writeback_queue')")
        time.sleep(1.0)
        assert queue.claims == 1
        orgs.execute("SELECT pg_notify('crm_queue', %s)", (own,))
        wait_for(lambda: queue.claims == 2, 5, "woken by its own queue's notification")
    finally:
        worker.stop.set()
        thread.join(10)
    assert not thread.is_alive()


# ---------------------------------------------------------------------------------------------- one loop
class _FlakyQueue(Queue):
    """crm.job, whose first claims fail (a bug, a bad row): not a lost database."""

    def __init__(self, failures: int) -> None:
        super().__init__("crm.job")
        self.failures = failures

    def claim(self, *args: Any, **kw: Any) -> list[Job]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("a bad pass")
        return super().claim(*args, **kw)


def test_a_worker_survives_a_failed_pass_and_a_lost_connection(db_dsn: str, orgs: Conn) -> None:
    """The one worker loop (queue.run_loop, also the drainer's): a failed pass is logged and tried again,
    a killed connection is reconnected; the worker keeps handling jobs."""
    handled: list[int] = []

    def handler(conn: Conn, jobs: Sequence[Job]) -> Mapping[Job, Outcome]:
        handled.extend(j.id for j in jobs)
        return {j: Outcome.done() for j in jobs}

    queue = _FlakyQueue(failures=2)
    worker = Worker(db_dsn, queue, handler, poll_s=0.2, worker_id="flaky-worker")
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        first = enqueue_job(orgs, A, "k")
        wait_for(lambda: first in handled, 10, "the job after two failed passes")
        orgs.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND query LIKE 'LISTEN%%' AND datname = current_database()"
        )
        second = enqueue_job(orgs, A, "k")
        wait_for(lambda: second in handled, 15, "the job after the connection was killed")
    finally:
        worker.stop.set()
        thread.join(15)
    assert not thread.is_alive()


# ---------------------------------------------------------------------------------------------- drain
def test_crmindex_drain_keeps_queued_materializations_within_the_org_budget(
    db: Conn, db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``crmindex drain --once`` (the workers as the CLI builds them) runs queued materializations within
    the account's budget (class ``materialize`` of its shared limiter), as ``materialize_many`` promises."""
    from crmindex.cli import main
    from crmindex.index.writes import upsert_contacts
    from crmindex.platform.limiter import PgRateLimiter
    from crmindex.testing import FakeHubSpot
    from crmindex.testing.synthetic import SyntheticCRM
    from tests.test_drainer import TOKEN, TOKEN_ENV, connect

    org = uuid.UUID("00000000-0000-4000-8000-0000000016b0")
    crm = SyntheticCRM(seed=41, contacts=12)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with FakeHubSpot(limits=False, tokens=[TOKEN]) as fake:
        fake.seed_from(crm)
        monkeypatch.setenv("CRMINDEX_ALLOWED_BASE_URLS", fake.base_url)
        connect(db, db_dsn, org, "hubspot", fake.base_url)
        upsert_contacts(db, org, "hubspot", [c.index_row() for c in crm.contacts()])  # type: ignore[arg-type]
        budget = PgRateLimiter(db_dsn, org, "hubspot")
        try:
            budget.configure("materialize", 5, 60.0)  # 5 a minute
        finally:
            budget.close()
        for c in crm.contacts():
            enqueue_job(db, org, "materialize", {"crm_record_id": c.crm_record_id, "reason": "bulk"},
                        source="hubspot", dedupe_key=f"contact:hubspot:{c.crm_record_id}")  # fmt: skip
        assert main(["drain", "--once", "--dsn", db_dsn]) == 0
    done = db.execute("SELECT count(*) FROM crm.contact_record WHERE org_id = %s", (org,)).fetchone()
    assert done == (5,)  # the budget's window, not all 12
    waiting = db.execute(
        "SELECT status, attempts, last_error FROM crm.job WHERE org_id = %s AND kind = 'materialize' "
        "AND status <> 'completed'",
        (org,),
    ).fetchall()
    assert len(waiting) == 7
    assert set(waiting) == {("pending", 0, "materialization budget: waiting for a permit")}
