"""The write-back drainer: sends queued CRM writes within each account's shared rate limit.

The rules live in SQL (``sql/writeback/drainer.sql``); this module only makes the CRM calls. One pass
(``Drainer.run_once``): for each account (org + CRM) with due jobs (``crm.writeback_due_accounts``):

1. ``crm.writeback_claim`` claims up to a batch under a lease and applies the ordering rules: several claimed
   jobs of one record go out as one, a job whose record has an older job open or in flight elsewhere is held
   back;
2. the jobs to send are grouped by entity and operation and sent in CRM batches (HubSpot: <= 100 records per
   call; Attio: one record per call), every call taking a permit from the account's limiter. Activities (entity
   ``activity``) go through the writer's ``log_activities`` (a job claimed before, ``attempts > 1``, may have landed:
   the writer looks for its marker first), associations (operation ``associate``) through its ``associate``.
   Each group starts with ``crm.writeback_renew``: the lease is extended and the payload read as it is now (fields a webhook
   superseded are gone); a job whose lease was lost is not sent. The calls run under
   :func:`~crmindex.crm.http.send_deadline` (the first three quarters of the renewed lease): a limiter or 429 wait
   that would outlast it raises ``LeaseWouldExpire`` and the group goes back in line, no attempt spent; the last
   quarter is left for the call itself;
3. ``crm.writeback_finish`` records the outcomes under the lease tokens: success completes the job (a create
   stores its record id, queues its hydration and links the local contact); a 429 or a rejected token releases
   it without spending an attempt; retryable errors go down the backoff ladder; validation errors dead-letter
   at once; a job going back in line merges with a change queued for its record meanwhile.

``run`` is the queue core's one worker loop (:func:`crmindex.platform.queue.run_loop`): LISTEN/NOTIFY wake-ups,
polling fallback, reconnection; on SIGTERM it finishes the call in flight and releases what it had claimed but
not sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from crmindex.crm.activities import Activity, ActivityWriter, AssociationWriter
from crmindex.crm.connections import clear_auth_failure, flag_auth_failure, hold_account_jobs
from crmindex.crm.errors import AuthError, CrmError, LeaseWouldExpire, ValidationError
from crmindex.crm.http import send_deadline
from crmindex.crm.outcomes import outcome_for
from crmindex.crm.protocols import CrmWriter, WriteResult, WriterFactory
from crmindex.platform.db import Conn
from crmindex.platform.queue import (
    Job,
    Outcome,
    Queue,
    default_worker_id,
    install_stop_signals,
    rerun_if_rolled_back,
    run_loop,
)

log = logging.getLogger("crmindex.drainer")

WRITEBACK = Queue("crm.writeback_queue")
HELD_BACK_DELAY_S = 1.0  # a job whose record has an older write still open waits this long, then looks again
SEND_SHARE = 0.75  # the part of a renewed lease within which a call must be sent (the rest: the call itself)
SHUTDOWN_NOTE = "released at shutdown before sending"


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
    lost: int = 0  # jobs not sent (or not recorded) because their lease was no longer ours

    def _accounts(self, conn: Conn) -> list[tuple[str, str]]:
        rows = conn.execute("SELECT org_id::text, crm_source FROM crm.writeback_due_accounts()").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    @staticmethod
    def _groups(jobs: Sequence[Job], max_batch: int) -> Iterator[tuple[str, str, list[Job]]]:
        by_kind: dict[tuple[str, str], list[Job]] = {}
        for job in jobs:
            by_kind.setdefault((str(job.row["entity_type"]), str(job.row["operation"])), []).append(job)
        for (entity, op), group in by_kind.items():
            for i in range(0, len(group), max_batch):
                yield entity, op, group[i : i + max_batch]

    def _claim(self, conn: Conn, org_id: str, source: str) -> tuple[list[Job], int, int]:
        """(the jobs to send, how many were claimed, how many were coalesced into others)."""
        rows = rerun_if_rolled_back(
            conn,
            lambda: conn.execute(
                "SELECT org_id, id, lease_token, attempts, disposition, job "
                "FROM crm.writeback_claim(%s, %s, %s, %s, %s, %s)",
                (org_id, source, self.worker_id, self.batch, self.lease_s, HELD_BACK_DELAY_S),
            ).fetchall(),
            "writeback_claim",
        )
        jobs = [
            Job(WRITEBACK.table, r[0], int(str(r[1])), r[2], int(str(r[3])), r[5])
            for r in rows
            if r[4] == "send"
        ]
        return jobs, len(rows), sum(1 for r in rows if r[4] == "coalesced")

    def _renew(self, conn: Conn, org_id: str, jobs: Sequence[Job]) -> dict[int, Mapping[str, Any]]:
        """Extend the leases still ours; {job id: its payload now} (a job missing is no longer ours)."""
        if not jobs:
            return {}
        rows = rerun_if_rolled_back(
            conn,
            lambda: conn.execute(
                "SELECT id, payload FROM crm.writeback_renew(%s, %s, %s, %s)",
                (org_id, [j.id for j in jobs], [j.lease_token for j in jobs], self.lease_s),
            ).fetchall(),
            "writeback_renew",
        )
        return {int(str(r[0])): r[1] for r in rows}

    def _send(
        self, writer: CrmWriter, entity: str, op: str, group: Sequence[Job], payloads: Mapping[int, Any]
    ) -> list[WriteResult]:
        if entity == "activity":  # never coalesced; a job claimed before may have landed: look for its marker
            if not isinstance(writer, ActivityWriter):
                message = f"the {writer.source} writer cannot log activities"
                error = ValidationError(message, source=writer.source)
                return [WriteResult(False, None, error) for _ in group]
            return writer.log_activities(
                [Activity.from_payload(payloads[j.id], maybe_sent=j.attempts > 1) for j in group]
            )
        if op == "associate":
            if not isinstance(writer, AssociationWriter):
                refused = ValidationError(f"{writer.source}: cannot associate", source=writer.source)
                return [WriteResult(False, None, refused) for _ in group]
            return writer.associate([payloads[j.id] for j in group])
        if op == "update":
            return writer.update(entity, [(str(j.row["crm_record_id"]), payloads[j.id]) for j in group])
        return writer.create(entity, [(str(j.row["match_key"]), payloads[j.id]) for j in group])

    def _finish(
        self, conn: Conn, org_id: str, outcomes: Mapping[Job, Outcome], created: Mapping[int, str]
    ) -> dict[str, int]:
        items = [
            {
                "id": job.id,
                "lease_token": str(job.lease_token),
                "action": out.action,
                "error": out.error,
                "delay_s": out.delay_s,
                "crm_record_id": created.get(job.id),
            }
            for job, out in outcomes.items()
        ]
        rows = rerun_if_rolled_back(
            conn,
            lambda: conn.execute(
                "SELECT action, jobs FROM crm.writeback_finish(%s, %s)", (org_id, Jsonb(items))
            ).fetchall(),
            "writeback_finish",
        )
        return {str(a): int(str(n)) for a, n in rows}

    def drain_account(self, conn: Conn, org_id: str, source: str) -> int:
        """Claim, send and record one batch of the account's due jobs; returns how many were claimed."""
        writer = self.writers(org_id, source)
        if writer is None:
            return 0
        jobs, claimed, coalesced = self._claim(conn, org_id, source)
        self.completed += coalesced
        if not jobs:
            return claimed
        outcomes: dict[Job, Outcome] = {}
        created: dict[int, str] = {}
        lost: set[int] = set()
        unsent = {j.id: j for j in jobs}
        auth_error: AuthError | None = None
        accepted = False
        kept_alive = time.monotonic()
        for entity, op, planned in self._groups(jobs, writer.max_batch):
            if self.stop.is_set() or auth_error is not None:
                break  # unsent jobs are released below
            if op not in ("update", "create", "associate"):
                for j in planned:
                    outcomes[j] = Outcome.dead(f"operation {op!r} is not supported by the {source} writer")
                    unsent.pop(j.id, None)
                continue
            # renew this group's leases (and, now and then, those of the jobs still waiting their turn)
            renewing = [j for j in planned if j.id not in lost]
            started = time.monotonic()
            if started - kept_alive > self.lease_s / 3:
                renewing = [j for j in unsent.values() if j.id not in lost]
                kept_alive = started
            payloads = self._renew(conn, org_id, renewing)
            lost.update(j.id for j in renewing if j.id not in payloads)
            group = [j for j in planned if j.id in payloads]
            for j in planned:
                if j.id in lost:
                    unsent.pop(j.id, None)
            if not group:
                continue
            for j in group:
                unsent.pop(j.id, None)
            try:
                with send_deadline(started + self.lease_s * SEND_SHARE):
                    results = self._send(writer, entity, op, group, payloads)
            except CrmError as exc:  # the whole call failed (or was not made: LeaseWouldExpire)
                self.sent_calls += 0 if isinstance(exc, LeaseWouldExpire) else 1
                for j in group:
                    outcomes[j] = outcome_for(exc)
                if isinstance(exc, AuthError):
                    auth_error = exc
                continue
            self.sent_calls += 1
            for job, res in zip(group, results, strict=True):
                if isinstance(res.error, AuthError):
                    auth_error = res.error
                if res.ok:
                    accepted = True
                    if op == "create" and res.crm_record_id:
                        created[job.id] = res.crm_record_id
                    outcomes[job] = Outcome.done()
                elif res.error is not None:
                    outcomes[job] = outcome_for(res.error)
                else:
                    outcomes[job] = Outcome.retry("the CRM returned no result for this record")
        if lost:
            log.warning(
                "%s %s: %d job(s) lost their lease before sending; not sent", org_id, source, len(lost)
            )
            self.lost += len(lost)
        if auth_error is not None:
            # a rejected token fails every call of the account: stop calling, the rest waits with the others
            log.warning("%s %s: the CRM rejected the token; jobs wait for it to be fixed", org_id, source)
            flag_auth_failure(conn, org_id, source, str(auth_error))
            for job in unsent.values():
                if job.id not in lost:
                    outcomes.setdefault(job, outcome_for(auth_error))
            # and the account's other waiting jobs too: one probe per AUTH_RETRY_S, not one call per batch
            hold_account_jobs(conn, WRITEBACK.table, org_id, source, outcome_for(auth_error).error or "")
        elif accepted:
            clear_auth_failure(conn, org_id, source)
        for job in jobs:
            if job.id not in lost:
                outcomes.setdefault(job, Outcome.release(0, SHUTDOWN_NOTE))
        counts = self._finish(conn, org_id, outcomes, created)
        self.completed += counts.get("complete", 0)
        self.lost += counts.get("lost", 0)
        return claimed

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
        """Loop until ``stop`` (:func:`crmindex.platform.queue.run_loop` over ``run_once``)."""
        run_loop(
            self.dsn,
            WRITEBACK,
            self.run_once,
            self.stop,
            poll_s=self.poll_s,
            name=f"drainer {self.worker_id}",
        )

    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT: finish the call in flight, release the rest, exit the loop."""
        install_stop_signals(self.stop, f"drainer {self.worker_id}")
