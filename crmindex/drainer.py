"""The write-back drainer: sends queued CRM writes within each account's shared rate limit.

One pass (``Drainer.run_once``): find accounts (org + CRM) with due jobs; for each, claim up to a batch of
its jobs (``FOR UPDATE SKIP LOCKED`` + lease, via the queue core), group them by entity and operation, and
send each group in CRM batches (HubSpot: <= 100 records per call; Attio: one record per call), every call
taking a permit from the account's limiter. Per item: success completes the job; a 429 releases the
batch without spending an attempt (and pushes the account's limiter back for every worker); retryable
errors go down the backoff ladder; validation errors dead-letter at once with the CRM's message.
``run`` loops with LISTEN/NOTIFY wake-ups and a polling fallback; on SIGTERM it finishes the call in
flight and releases what it had claimed but not sent.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb

from crmindex.crm.errors import AuthError, CrmError, RateLimited
from crmindex.db import Conn
from crmindex.queue import NOTIFY_CHANNEL, Job, Outcome, Queue, default_worker_id

log = logging.getLogger("crmindex.drainer")

WRITEBACK = Queue("crm.writeback_queue")


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one record of a CRM write call."""

    ok: bool
    crm_record_id: str | None = None
    error: CrmError | None = None


class CrmWriter(Protocol):
    """Sends writes to one CRM account; implementations live in ``crmindex.crm.writers``."""

    source: str
    max_batch: int

    def update(
        self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[WriteResult]: ...

    def create(
        self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[WriteResult]: ...


WriterFactory = Callable[[str, str], CrmWriter | None]  # (org_id, source) -> writer, None if not connected


def _outcome_for(error: CrmError) -> Outcome:
    if isinstance(error, RateLimited):
        return Outcome.release(
            max(error.wait_seconds, 1.0), f"rate limited ({error.limit_name}): {error.message}"
        )
    if isinstance(error, AuthError):
        return Outcome.retry(f"auth failed: {error.message}")
    if error.retryable:
        return Outcome.retry(f"{type(error).__name__}: {error.message}")
    return Outcome.dead(f"{error.status or ''} {error.message}".strip())


@dataclass
class Drainer:
    dsn: str
    writers: WriterFactory
    batch: int = 100
    lease_s: float = 120.0
    poll_s: float = 5.0
    worker_id: str = field(default_factory=default_worker_id)
    stop: threading.Event = field(default_factory=threading.Event)
    sent_calls: int = 0
    completed: int = 0

    def _accounts(self, conn: Conn) -> list[tuple[str, str]]:
        rows = conn.execute(
            "SELECT DISTINCT org_id::text, crm_source FROM crm.writeback_queue "
            "WHERE status IN ('pending', 'failed') AND next_retry_at <= now() "
            "UNION SELECT DISTINCT org_id::text, crm_source FROM crm.writeback_queue "
            "WHERE status = 'processing' AND leased_until < clock_timestamp() LIMIT 1000"
        ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def _groups(self, jobs: Sequence[Job], max_batch: int) -> Iterator[tuple[str, str, list[Job]]]:
        by_kind: dict[tuple[str, str], list[Job]] = {}
        for job in jobs:
            by_kind.setdefault((str(job.row["entity_type"]), str(job.row["operation"])), []).append(job)
        for (entity, op), group in by_kind.items():
            for i in range(0, len(group), max_batch):
                yield entity, op, group[i : i + max_batch]

    def drain_account(self, conn: Conn, org_id: str, source: str) -> int:
        writer = self.writers(org_id, source)
        if writer is None:
            return 0
        jobs = WRITEBACK.claim(conn, self.worker_id, self.batch, self.lease_s, org_id=org_id, source=source)
        if not jobs:
            return 0
        outcomes: dict[Job, Outcome] = {}
        for entity, op, group in self._groups(jobs, writer.max_batch):
            if self.stop.is_set():
                break  # unsent jobs are released below
            try:
                if op == "update":
                    results = writer.update(
                        entity, [(str(j.row["crm_record_id"]), j.row["payload"]) for j in group]
                    )
                elif op == "create":
                    results = writer.create(
                        entity, [(str(j.row["match_key"]), j.row["payload"]) for j in group]
                    )
                else:
                    results = [WriteResult(False, error=None) for _ in group]
                    for j in group:
                        outcomes[j] = Outcome.dead(
                            f"operation {op!r} is not supported by the {source} writer"
                        )
                    continue
            except CrmError as exc:  # the whole call failed
                self.sent_calls += 1
                for j in group:
                    outcomes[j] = _outcome_for(exc)
                continue
            self.sent_calls += 1
            for job, res in zip(group, results, strict=True):
                if res.ok:
                    if op == "create" and res.crm_record_id:
                        conn.execute(
                            "UPDATE crm.writeback_queue SET result = %s WHERE org_id = %s AND id = %s",
                            (Jsonb({"crm_record_id": res.crm_record_id}), job.org_id, job.id),
                        )
                        self._after_create(conn, job, res.crm_record_id)
                    outcomes[job] = Outcome.done()
                elif res.error is not None:
                    outcomes[job] = _outcome_for(res.error)
                else:
                    outcomes[job] = Outcome.retry("the CRM returned no result for this record")
        for job in jobs:
            outcomes.setdefault(job, Outcome.release(0, "released at shutdown before sending"))
        counts = WRITEBACK.apply(conn, outcomes)
        self.completed += counts["complete"]
        return len(jobs)

    def _after_create(self, conn: Conn, job: Job, crm_record_id: str) -> None:
        """Index the created record (hydrate) and link a local tier-2 contact with the same email."""
        entity = str(job.row["entity_type"])
        object_type = {"contact": "contacts", "company": "companies", "deal": "deals"}.get(entity)
        if object_type is None:
            return
        conn.execute(
            "SELECT crm.enqueue_jobs(%s, 'hydrate', %s, %s)",
            (
                job.org_id,
                job.row["crm_source"],
                Jsonb(
                    [
                        {
                            "dedupe_key": f"{object_type}:{crm_record_id}",
                            "payload": {"object_type": object_type, "crm_record_id": crm_record_id},
                        }
                    ]
                ),
            ),
        )
        if entity == "contact":
            conn.execute(
                "UPDATE crm.contact_record SET crm_source = %s, crm_record_id = %s, updated_at = now() "
                "WHERE org_id = %s AND origin = 'local' AND lower(email) = %s AND crm_record_id IS NULL",
                (job.row["crm_source"], crm_record_id, job.org_id, str(job.row["match_key"])),
            )

    def run_once(self, conn: Conn | None = None) -> int:
        """Drain everything due now; returns the number of jobs handled."""
        own = conn is None
        c = conn if conn is not None else psycopg.connect(self.dsn, autocommit=True)
        total = 0
        try:
            while not self.stop.is_set():
                handled = 0
                for org_id, source in self._accounts(c):
                    if self.stop.is_set():
                        break
                    handled += self.drain_account(c, org_id, source)
                total += handled
                if handled == 0:
                    break
        finally:
            if own:
                c.close()
        return total

    def run(self) -> None:
        """Loop until ``stop``: drain, then wait for a NOTIFY or the poll interval; reconnect on outages."""
        backoff = 0.5
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 0.5
                    while not self.stop.is_set():
                        self.run_once(conn)
                        deadline = time.monotonic() + self.poll_s
                        while not self.stop.is_set() and time.monotonic() < deadline:
                            if list(conn.notifies(timeout=min(0.5, self.poll_s), stop_after=1)):
                                break
            except psycopg.OperationalError as exc:
                log.warning("drainer %s lost the database (%s); reconnecting", self.worker_id, exc)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT: finish the call in flight, release the rest, exit the loop."""

        def handler(signum: int, frame: object) -> None:
            log.info("drainer %s stopping (signal %s)", self.worker_id, signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def new_worker_id() -> str:
    return f"drainer:{uuid.uuid4().hex[:8]}"
