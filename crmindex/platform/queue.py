"""The job-queue core in Python: typed calls over ``sql/platform/queue.sql`` and the one worker loop.

Every queue-backed concern (webhook inbox, bulk materialization, write-back) uses :class:`Queue` for
claim / complete / fail / release with lease fencing, and :class:`Worker` to run thin per-kind handlers.
Every long-running worker (each :class:`Worker`, the write-back drainer) runs :func:`run_loop`: LISTEN/NOTIFY
wake-ups for its own queue, a polling fallback, reconnection with backoff, a failed pass logged and tried
again, and a stop (SIGTERM, :func:`install_stop_signals`) that finishes the call in flight and releases the rest.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from crmindex.platform.db import Conn, translate_errors

log = logging.getLogger("crmindex.queue")

NOTIFY_CHANNEL = "crm_queue"
ROLLED_BACK_TRIES = 4  # a statement chosen as a deadlock victim (or a serialization failure) runs this often

T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """A claimed job: its keys, the lease token that fences it, and the full row."""

    queue: str
    org_id: uuid.UUID
    id: int
    lease_token: uuid.UUID
    attempts: int = field(compare=False)
    row: Mapping[str, Any] = field(compare=False, hash=False, repr=False)

    @property
    def kind(self) -> str | None:
        value = self.row.get("kind")
        return None if value is None else str(value)

    @property
    def payload(self) -> Mapping[str, Any]:
        value = self.row.get("payload")
        return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Outcome:
    """What a handler decided for one job."""

    action: Literal["complete", "retry", "dead", "release"]
    error: str | None = None
    delay_s: float | None = None

    @classmethod
    def done(cls) -> Outcome:
        return cls("complete")

    @classmethod
    def retry(cls, error: str, delay_s: float | None = None) -> Outcome:
        return cls("retry", error, delay_s)

    @classmethod
    def dead(cls, error: str) -> Outcome:
        return cls("dead", error)

    @classmethod
    def release(cls, delay_s: float, note: str | None = None) -> Outcome:
        return cls("release", note, delay_s)


class Queue:
    """Typed calls on one queue table (``crm.job``, ``crm.webhook_inbox``, ``crm.writeback_queue``)."""

    def __init__(self, table: str) -> None:
        self.table = table

    def __repr__(self) -> str:
        return f"Queue({self.table!r})"

    def woken_by(self, payload: str) -> bool:
        """Whether a ``crm_queue`` notification is for this queue. The insert trigger sends the table name
        (``job``), maintenance the qualified one (``crm.job``); an empty payload (``NOTIFY crm_queue`` from
        psql) wakes every queue. Workers of other queues keep sleeping: one copilot write-back must not
        make every inbox and job worker of every process run a claim."""
        return not payload or payload in (self.table, self.table.rsplit(".", 1)[-1])

    def claim(
        self,
        conn: Conn,
        worker: str,
        limit: int = 10,
        lease_s: float = 60.0,
        *,
        org_id: uuid.UUID | str | None = None,
        source: str | None = None,
        kind: str | None = None,
    ) -> list[Job]:
        with translate_errors():
            rows = self._run(
                conn,
                "SELECT org_id, id, lease_token, attempts, job FROM crm.queue_claim(%s, %s, %s, %s, %s, %s, %s)",
                (self.table, worker, limit, lease_s, None if org_id is None else str(org_id), source, kind),
            )
        return [Job(self.table, r[0], int(r[1]), r[2], int(r[3]), r[4]) for r in rows]

    @staticmethod
    def _run(conn: Conn, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One lease statement, run again if the server rolled it back as a deadlock victim
        (:func:`rerun_if_rolled_back`): a worker keeps its claimed jobs instead of losing its connection."""
        return rerun_if_rolled_back(conn, lambda: conn.execute(query, params).fetchall(), query.split("(")[0])

    def complete(self, conn: Conn, jobs: Sequence[Job]) -> int:
        if not jobs:
            return 0
        rows = self._run(
            conn,
            "SELECT crm.queue_complete(%s, %s, %s, %s)",
            (self.table, [j.org_id for j in jobs], [j.id for j in jobs], [j.lease_token for j in jobs]),
        )
        return int(rows[0][0]) if rows else 0

    def fail(
        self, conn: Conn, job: Job, error: str, *, retryable: bool = True, retry_in_s: float | None = None
    ) -> str | None:
        rows = self._run(
            conn,
            "SELECT crm.queue_fail(%s, %s, %s, %s, %s, %s, %s)",
            (job.org_id, self.table, job.id, job.lease_token, error, retryable, retry_in_s),
        )
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def release(self, conn: Conn, job: Job, delay_s: float = 0.0, note: str | None = None) -> bool:
        rows = self._run(
            conn,
            "SELECT crm.queue_release(%s, %s, %s, %s, %s, %s)",
            (job.org_id, self.table, job.id, job.lease_token, delay_s, note),
        )
        return bool(rows and rows[0][0])

    def extend(self, conn: Conn, job: Job, lease_s: float) -> bool:
        rows = self._run(
            conn,
            "SELECT crm.queue_extend(%s, %s, %s, %s, %s)",
            (job.org_id, self.table, job.id, job.lease_token, lease_s),
        )
        return bool(rows and rows[0][0])

    def requeue(self, conn: Conn, org_id: uuid.UUID | str, ids: Sequence[int] | None = None) -> int:
        with translate_errors():
            row = conn.execute(
                "SELECT crm.queue_requeue(%s, %s, %s)",
                (str(org_id), self.table, None if ids is None else list(ids)),
            ).fetchone()
        return int(row[0]) if row else 0

    def apply(self, conn: Conn, outcomes: Mapping[Job, Outcome]) -> dict[str, int]:
        """Record handler outcomes: completions in one statement, the rest one by one."""
        counts = {"complete": 0, "retry": 0, "dead": 0, "release": 0, "lost": 0}
        done = [j for j, o in outcomes.items() if o.action == "complete"]
        n = self.complete(conn, done)
        counts["complete"] += n
        counts["lost"] += len(done) - n
        for job, out in outcomes.items():
            if out.action == "complete":
                continue
            if out.action == "release":
                ok = self.release(conn, job, out.delay_s or 0.0, out.error)
            else:
                ok = (
                    self.fail(
                        conn,
                        job,
                        out.error or "failed",
                        retryable=out.action == "retry",
                        retry_in_s=out.delay_s,
                    )
                    is not None
                )
            counts[out.action if ok else "lost"] += 1
        return counts


def enqueue_job(
    conn: Conn,
    org_id: uuid.UUID | str,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
    dedupe_key: str | None = None,
    priority: int = 5,
    run_at: datetime | None = None,
) -> int:
    """Add a job to ``crm.job``; an open job with the same kind and dedupe key absorbs it."""
    with translate_errors():
        row = conn.execute(
            "SELECT crm.enqueue_job(%s, %s, %s, %s, %s, %s::smallint, %s)",
            (str(org_id), kind, Jsonb(dict(payload or {})), source, dedupe_key, priority, run_at),
        ).fetchone()
    assert row is not None
    return int(row[0])


Handler = Callable[[Conn, Sequence[Job]], Mapping[Job, Outcome]]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Worker:
    """Runs handlers over one queue: claim a batch, handle it, record outcomes; repeat.

    ``run_once`` drains what is due now (for cron-style ``--once`` runs); ``run`` is :func:`run_loop` over it.
    Stopping finishes the batch in hand; claimed jobs that were not handled are released at once (no attempt
    spent).
    """

    dsn: str
    queue: Queue
    handler: Handler
    kind: str | None = None
    batch: int = 100
    lease_s: float = 60.0
    poll_s: float = 5.0
    worker_id: str = field(default_factory=default_worker_id)
    stop: threading.Event = field(default_factory=threading.Event)
    processed: int = 0

    def _handle(self, conn: Conn, jobs: Sequence[Job]) -> dict[str, int]:
        outcomes: dict[Job, Outcome] = {}
        try:
            outcomes.update(self.handler(conn, jobs))
        except Exception as exc:  # a handler bug must not lose jobs: retry them later
            log.exception("handler for %s failed on a batch of %d", self.queue.table, len(jobs))
            for job in jobs:
                outcomes.setdefault(job, Outcome.retry(f"{type(exc).__name__}: {exc}"))
        for job in jobs:
            if job not in outcomes:
                outcomes[job] = Outcome.release(0, "not handled before shutdown")
        return self.queue.apply(conn, outcomes)

    def run_once(self, conn: Conn | None = None, max_batches: int | None = None) -> int:
        """Handle due jobs until none is left (or ``max_batches``); returns how many were handled."""
        own = conn is None
        c = conn if conn is not None else psycopg.connect(self.dsn, autocommit=True)
        handled = 0
        try:
            batches = 0
            while not self.stop.is_set() and (max_batches is None or batches < max_batches):
                jobs = self.queue.claim(c, self.worker_id, self.batch, self.lease_s, kind=self.kind)
                if not jobs:
                    break
                self._handle(c, jobs)
                handled += len(jobs)
                batches += 1
        finally:
            if own:
                c.close()
        self.processed += handled
        return handled

    def run(self) -> None:
        """Loop until ``stop`` is set (:func:`run_loop`)."""
        run_loop(
            self.dsn,
            self.queue,
            self.run_once,
            self.stop,
            poll_s=self.poll_s,
            name=f"worker {self.worker_id}",
        )

    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT: finish the batch in hand, release the rest, leave the loop."""
        install_stop_signals(self.stop, f"worker {self.worker_id}")


def rerun_if_rolled_back(conn: Conn, call: Callable[[], T], what: str) -> T:
    """``call()`` (one statement on ``conn``), run again when the server rolled it back as a deadlock victim or a
    serialization failure (40P01, 40001): up to ``ROLLED_BACK_TRIES`` times, a few ms apart.

    A worker's queue statements take row locks that a concurrent statement of another session can cross (a
    multi-row UPDATE in READ COMMITTED keeps the locks it took while re-checking rows that changed under it). The
    statement rolled back whole, so it is safe to run again; giving up instead drops the connection and leaves
    the worker's claimed jobs waiting for their leases to expire. Only on an autocommit connection: inside a
    caller's transaction the whole transaction is gone and the error goes to the caller.
    """
    for attempt in range(1, ROLLED_BACK_TRIES + 1):
        try:
            return call()
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as exc:
            if attempt == ROLLED_BACK_TRIES or not conn.autocommit:
                raise
            log.warning("%s rolled back (%s: %s); running it again", what, exc.sqlstate, type(exc).__name__)
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


def wait_for_wakeup(conn: Conn, queue: Queue, poll_s: float, stop: threading.Event) -> bool:
    """Sleep on ``conn`` (which LISTENs on ``crm_queue``) until a notification for ``queue``, ``stop`` or
    ``poll_s``; True when a notification woke it. Notifications for other queues are read and ignored."""
    deadline = time.monotonic() + poll_s
    fd = conn.pgconn.socket
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if ready:
            # consumed whole: a half-read notifies() generator keeps the connection locked
            notified = list(conn.notifies(timeout=0, stop_after=100))
            if any(queue.woken_by(n.payload) for n in notified):
                return True
    return False


BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0


def run_loop(
    dsn: str,
    queue: Queue,
    one_pass: Callable[[Conn], int],
    stop: threading.Event,
    *,
    poll_s: float = 5.0,
    name: str = "worker",
) -> None:
    """The one loop of every long-running worker, until ``stop`` is set.

    * One autocommit connection that LISTENs on ``crm_queue``. A pass (``one_pass(conn)``) handles what is due
      and returns how many jobs it handled; after a pass that found nothing the loop sleeps until a notification
      for ``queue`` (:meth:`Queue.woken_by`: other queues' inserts do not wake it) or ``poll_s`` (the fallback:
      jobs released with a delay becoming due, a notification lost during a reconnect).
    * The database lost (``psycopg.OperationalError``, or a pass that left the connection broken): reconnect,
      waiting 0.5 s, doubling to 10 s, between tries.
    * Any other error in a pass: logged with its traceback and tried again after the same backoff; the worker
      never dies of one bad pass (what the pass had claimed comes back when its lease expires).
    * ``stop`` set (SIGTERM / SIGINT through :func:`install_stop_signals`): the pass finishes the call in flight
      and releases what it claimed but did not handle (no attempt spent); the loop returns.
    """
    backoff = BACKOFF_FIRST_S
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while not stop.is_set():
                    try:
                        handled = one_pass(conn)
                    except psycopg.OperationalError:
                        raise
                    except Exception:
                        if conn.broken or conn.closed:
                            raise
                        log.exception("%s: a pass failed; trying again in %.1f s", name, backoff)
                        stop.wait(backoff)
                        backoff = min(backoff * 2, BACKOFF_MAX_S)
                        continue
                    backoff = BACKOFF_FIRST_S
                    if handled == 0:
                        wait_for_wakeup(conn, queue, poll_s, stop)
        except psycopg.OperationalError as exc:
            log.warning("%s lost the database (%s); reconnecting in %.1f s", name, exc, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
        except Exception:
            log.exception("%s: the connection failed; reconnecting in %.1f s", name, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)


def install_stop_signals(stop: threading.Event, name: str = "worker") -> None:
    """SIGTERM / SIGINT set ``stop`` (main thread only): :func:`run_loop` finishes the call in flight, releases
    what it had claimed but not handled, and returns."""

    def handler(signum: int, frame: object) -> None:
        log.info("%s stopping (signal %s)", name, signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
