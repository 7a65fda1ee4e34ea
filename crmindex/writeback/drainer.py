"""The write-back drainer: sends queued CRM writes within each account's shared rate limit.

One pass (``Drainer.run_once``): find accounts (org + CRM) with due jobs; for each, claim up to a batch of
its jobs (``FOR UPDATE SKIP LOCKED`` + lease, via the queue core), group them by entity and operation, and
send each group in CRM batches (HubSpot: <= 100 records per call; Attio: one record per call), every call
taking a permit from the account's limiter. Per item: success completes the job; a 429 releases the
batch without spending an attempt (and pushes the account's limiter back for every worker); retryable
errors go down the backoff ladder; validation errors dead-letter at once with the CRM's message.
Per record, writes land in the order they were queued: a claimed job whose record has an older open job
(in flight elsewhere, or lost with a killed worker until its lease expires) is held back; several claimed
jobs of one record go out as one; a job going back in line (retry, release) merges with a change queued
for its record meanwhile, keeping one open job per record.
``run`` loops with LISTEN/NOTIFY wake-ups and a polling fallback; on SIGTERM it finishes the call in
flight and releases what it had claimed but not sent.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from crmindex.crm.connections import clear_auth_failure, flag_auth_failure, hold_account_jobs
from crmindex.crm.errors import AuthError, CrmError
from crmindex.crm.hubspot.properties import OBJECT_TYPES
from crmindex.crm.outcomes import outcome_for
from crmindex.crm.protocols import WriterFactory
from crmindex.platform.db import Conn
from crmindex.platform.queue import NOTIFY_CHANNEL, Job, Outcome, Queue, default_worker_id

log = logging.getLogger("crmindex.drainer")

WRITEBACK = Queue("crm.writeback_queue")
HELD_BACK_DELAY_S = 1.0  # a job whose record has an older write still open waits this long, then looks again


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

    @staticmethod
    def _key(job: Job) -> tuple[str, str, str] | None:
        """What orders a job's writes: (entity, operation, record id or match key); None: unordered."""
        op = str(job.row["operation"])
        ref = job.row["crm_record_id"] if op == "update" else job.row["match_key"] if op == "create" else None
        return None if ref is None else (str(job.row["entity_type"]), op, str(ref))

    def _coalesce_claimed(self, conn: Conn, jobs: Sequence[Job]) -> tuple[list[Job], int]:
        """Several claimed jobs of one record (an expired lease plus a later change): one send, in order.

        The oldest job takes the merged payload (later values win per field); the others complete as
        coalesced into it. Returns the jobs left to send and how many were coalesced away.
        """
        by_key: dict[tuple[str, str, str], list[Job]] = {}
        out: list[Job] = []
        for job in jobs:
            key = self._key(job)
            if key is None:
                out.append(job)
            else:
                by_key.setdefault(key, []).append(job)
        merged_away = 0
        for group in by_key.values():
            if len(group) == 1:
                out.append(group[0])
                continue
            group.sort(key=lambda j: j.id)
            survivor, rest = group[0], group[1:]
            payload: dict[str, Any] = {}
            queued_at: dict[str, Any] = {}
            for j in group:
                payload.update(j.row["payload"])
                queued_at.update(j.row.get("field_queued_at") or {})
            with conn.transaction():
                ok = conn.execute(
                    "UPDATE crm.writeback_queue SET payload = %s, field_queued_at = %s, updated_at = now() "
                    "WHERE org_id = %s AND id = %s AND lease_token = %s AND status = 'processing'",
                    (Jsonb(payload), Jsonb(queued_at), survivor.org_id, survivor.id, survivor.lease_token),
                ).rowcount
                if ok:
                    for j in rest:
                        merged_away += self._close_coalesced(conn, j, survivor.id)
            if ok:
                row = {**survivor.row, "payload": payload, "field_queued_at": queued_at}
                out.append(Job(survivor.queue, survivor.org_id, survivor.id, survivor.lease_token,
                               survivor.attempts, row))  # fmt: skip
        out.sort(key=lambda j: j.id)
        return out, merged_away

    @staticmethod
    def _close_coalesced(conn: Conn, job: Job, into: int) -> int:
        return conn.execute(
            "UPDATE crm.writeback_queue SET status = 'completed', completed_at = now(), updated_at = now(), "
            "lease_token = NULL, leased_until = NULL, result = %s "
            "WHERE org_id = %s AND id = %s AND lease_token = %s AND status = 'processing'",
            (Jsonb({"coalesced_into": into}), job.org_id, job.id, job.lease_token),
        ).rowcount

    def _held_back(self, conn: Conn, org_id: str, source: str, jobs: Sequence[Job]) -> dict[int, int]:
        """Claimed jobs with an older open job of the same record (in flight elsewhere, or its worker died):
        sending them now could let the older write land last. Returns {job id: older job id}."""
        keyed = [(j, k) for j in jobs if (k := self._key(j)) is not None]
        if not keyed:
            return {}
        # per claimed job: the oldest other open job of its record; the open pending/failed one is found
        # through the unique "open job" indexes, the processing ones (few) are read once
        rows = conn.execute(
            """
            WITH c (id, entity, op, ref) AS (
                SELECT * FROM unnest(%(ids)s::bigint[], %(entities)s::text[], %(ops)s::text[], %(refs)s::text[])
            ),
            p AS MATERIALIZED (
                SELECT w.id, w.entity_type, w.operation,
                    CASE WHEN w.operation = 'update' THEN w.crm_record_id ELSE w.match_key END AS ref
                FROM crm.writeback_queue AS w
                WHERE w.status = 'processing' AND w.org_id = %(org)s AND w.crm_source = %(source)s
            )
            SELECT * FROM (
                SELECT c.id, least(
                    (SELECT min(w.id) FROM crm.writeback_queue AS w
                     WHERE c.op = 'update' AND w.org_id = %(org)s AND w.crm_source = %(source)s
                        AND w.entity_type = c.entity AND w.crm_record_id = c.ref AND w.operation = 'update'
                        AND w.status IN ('pending', 'failed') AND w.id < c.id),
                    (SELECT min(w.id) FROM crm.writeback_queue AS w
                     WHERE c.op = 'create' AND w.org_id = %(org)s AND w.crm_source = %(source)s
                        AND w.entity_type = c.entity AND w.match_key = c.ref AND w.operation = 'create'
                        AND w.status IN ('pending', 'failed') AND w.id < c.id),
                    (SELECT min(p.id) FROM p
                     WHERE p.entity_type = c.entity AND p.operation = c.op AND p.ref = c.ref AND p.id < c.id)
                ) AS older
                FROM c
            ) AS x
            WHERE x.older IS NOT NULL
            """,
            {
                "ids": [j.id for j, _ in keyed],
                "entities": [k[0] for _, k in keyed],
                "ops": [k[1] for _, k in keyed],
                "refs": [k[2] for _, k in keyed],
                "org": org_id,
                "source": source,
            },
        ).fetchall()
        held: dict[int, int] = {}
        for jid, older in rows:
            held[int(str(jid))] = min(int(str(older)), held.get(int(str(jid)), int(str(older))))
        return held

    def _reopen(self, conn: Conn, job: Job, outcome: Outcome) -> bool:
        """Record a retry / release of a keyed job without breaking "one open job per record".

        A change queued while the job was out is a second open job of the record; the two merge into
        the older one (later values win per field), and the newer completes as coalesced into it.
        Returns False when the lease was no longer ours.
        """
        key = self._key(job)
        assert key is not None
        entity, op, ref = key
        column = "crm_record_id" if op == "update" else "match_key"
        for attempt in range(5):
            try:
                with conn.transaction():
                    sib = conn.execute(
                        f"SELECT id, payload, field_queued_at FROM crm.writeback_queue "
                        f"WHERE org_id = %s AND crm_source = %s AND entity_type = %s AND operation = %s "
                        f"AND {column} = %s AND status IN ('pending', 'failed') AND id <> %s FOR UPDATE",
                        (job.org_id, job.row["crm_source"], entity, op, ref, job.id),
                    ).fetchone()
                    mine = conn.execute(
                        "SELECT payload, field_queued_at FROM crm.writeback_queue "
                        "WHERE org_id = %s AND id = %s AND lease_token = %s AND status = 'processing' FOR UPDATE",
                        (job.org_id, job.id, job.lease_token),
                    ).fetchone()
                    if mine is None:
                        return False
                    if sib is not None:
                        sib_id = int(str(sib[0]))
                        if sib_id > job.id:  # a newer change: fold it into this job
                            payload = {**dict(mine[0] or {}), **dict(sib[1] or {})}
                            queued = {**dict(mine[1] or {}), **dict(sib[2] or {})}
                            conn.execute(
                                "UPDATE crm.writeback_queue SET status = 'completed', completed_at = now(), "
                                "updated_at = now(), result = %s WHERE org_id = %s AND id = %s",
                                (Jsonb({"coalesced_into": job.id}), job.org_id, sib_id),
                            )
                            conn.execute(
                                "UPDATE crm.writeback_queue SET payload = %s, field_queued_at = %s "
                                "WHERE org_id = %s AND id = %s",
                                (Jsonb(payload), Jsonb(queued), job.org_id, job.id),
                            )
                        else:  # an older open job (this one was held back): it takes this one's fields
                            payload = {**dict(sib[1] or {}), **dict(mine[0] or {})}
                            queued = {**dict(sib[2] or {}), **dict(mine[1] or {})}
                            conn.execute(
                                "UPDATE crm.writeback_queue SET payload = %s, field_queued_at = %s, "
                                "updated_at = now() WHERE org_id = %s AND id = %s",
                                (Jsonb(payload), Jsonb(queued), job.org_id, sib_id),
                            )
                            return self._close_coalesced(conn, job, sib_id) == 1
                    if outcome.action == "release":
                        return WRITEBACK.release(conn, job, outcome.delay_s or 0.0, outcome.error)
                    return (
                        WRITEBACK.fail(
                            conn, job, outcome.error or "failed", retryable=True, retry_in_s=outcome.delay_s
                        )
                        is not None
                    )
            except psycopg.errors.UniqueViolation:
                # a change was queued for the record between our look and our update: look again
                log.info("job %s: a concurrent change to its record; merging (try %d)", job.id, attempt + 1)
        raise RuntimeError(f"could not record the outcome of write-back job {job.id}")

    def _with_open_sibling(self, conn: Conn, jobs: Sequence[Job]) -> set[int]:
        """The jobs whose record has another open (pending / failed) job: a change queued meanwhile."""
        keyed = [(j, k) for j in jobs if (k := self._key(j)) is not None]
        if not keyed:
            return set()
        rows = conn.execute(
            """
            SELECT c.id FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[])
                AS c (org_id, id, source, entity, op, ref)
            WHERE EXISTS (
                SELECT FROM crm.writeback_queue AS w
                WHERE c.op = 'update' AND w.org_id = c.org_id AND w.crm_source = c.source
                    AND w.entity_type = c.entity AND w.crm_record_id = c.ref AND w.operation = 'update'
                    AND w.status IN ('pending', 'failed') AND w.id <> c.id
            ) OR EXISTS (
                SELECT FROM crm.writeback_queue AS w
                WHERE c.op = 'create' AND w.org_id = c.org_id AND w.crm_source = c.source
                    AND w.entity_type = c.entity AND w.match_key = c.ref AND w.operation = 'create'
                    AND w.status IN ('pending', 'failed') AND w.id <> c.id
            )
            """,
            (
                [j.org_id for j, _ in keyed],
                [j.id for j, _ in keyed],
                [str(j.row["crm_source"]) for j, _ in keyed],
                [k[0] for _, k in keyed],
                [k[1] for _, k in keyed],
                [k[2] for _, k in keyed],
            ),
        ).fetchall()
        return {int(str(r[0])) for r in rows}

    def _apply(self, conn: Conn, outcomes: Mapping[Job, Outcome]) -> dict[str, int]:
        """Record outcomes; a job going back in line while its record has a newer open job merges with it."""
        counts = {"complete": 0, "retry": 0, "dead": 0, "release": 0, "lost": 0}
        reopening = [j for j, o in outcomes.items() if o.action in ("retry", "release")]
        merging = self._with_open_sibling(conn, reopening)
        plain = {j: o for j, o in outcomes.items() if j.id not in merging}
        try:
            with conn.transaction():
                for k, v in WRITEBACK.apply(conn, plain).items():
                    counts[k] += v
        except psycopg.errors.UniqueViolation:
            # a change to one of the records was queued meanwhile: record the outcomes one by one
            counts = {"complete": 0, "retry": 0, "dead": 0, "release": 0, "lost": 0}
            merging = {j.id for j in reopening if self._key(j) is not None}
            for k, v in WRITEBACK.apply(
                conn, {j: o for j, o in plain.items() if j.id not in merging}
            ).items():
                counts[k] += v
        for job, out in outcomes.items():
            if job.id in merging:
                counts[out.action if self._reopen(conn, job, out) else "lost"] += 1
        return counts

    def drain_account(self, conn: Conn, org_id: str, source: str) -> int:
        writer = self.writers(org_id, source)
        if writer is None:
            return 0
        claimed = WRITEBACK.claim(
            conn, self.worker_id, self.batch, self.lease_s, org_id=org_id, source=source
        )
        if not claimed:
            return 0
        jobs, merged_away = self._coalesce_claimed(conn, claimed)
        self.completed += merged_away
        outcomes: dict[Job, Outcome] = {}
        held = self._held_back(conn, org_id, source, jobs)
        for job in jobs:
            if job.id in held:
                outcomes[job] = Outcome.release(
                    HELD_BACK_DELAY_S,
                    f"held back: an older write to this record (job {held[job.id]}) is open",
                )
        sendable = [j for j in jobs if j.id not in held]
        auth_error: AuthError | None = None
        accepted = False
        for entity, op, group in self._groups(sendable, writer.max_batch):
            if self.stop.is_set() or auth_error is not None:
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
                    for j in group:
                        outcomes[j] = Outcome.dead(
                            f"operation {op!r} is not supported by the {source} writer"
                        )
                    continue
            except CrmError as exc:  # the whole call failed
                self.sent_calls += 1
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
                        conn.execute(
                            "UPDATE crm.writeback_queue SET result = %s WHERE org_id = %s AND id = %s",
                            (Jsonb({"crm_record_id": res.crm_record_id}), job.org_id, job.id),
                        )
                        self._after_create(conn, job, res.crm_record_id)
                    outcomes[job] = Outcome.done()
                elif res.error is not None:
                    outcomes[job] = outcome_for(res.error)
                else:
                    outcomes[job] = Outcome.retry("the CRM returned no result for this record")
        if auth_error is not None:
            # a rejected token fails every call of the account: stop calling, the rest waits with the others
            log.warning("%s %s: the CRM rejected the token; jobs wait for it to be fixed", org_id, source)
            flag_auth_failure(conn, org_id, source, str(auth_error))
            for job in jobs:
                outcomes.setdefault(job, outcome_for(auth_error))
            # and the account's other waiting jobs too: one probe per AUTH_RETRY_S, not one call per batch
            hold_account_jobs(conn, WRITEBACK.table, org_id, source, outcome_for(auth_error).error or "")
        elif accepted:
            clear_auth_failure(conn, org_id, source)
        for job in jobs:
            outcomes.setdefault(job, Outcome.release(0, "released at shutdown before sending"))
        counts = self._apply(conn, outcomes)
        self.completed += counts["complete"]
        return len(claimed)

    def _after_create(self, conn: Conn, job: Job, crm_record_id: str) -> None:
        """Index the created record (hydrate) and link a local tier-2 contact with the same email."""
        entity = str(job.row["entity_type"])
        object_type = OBJECT_TYPES.get(entity)
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
                            # consumed whole: a half-read notifies() generator keeps the connection locked
                            notified = list(conn.notifies(timeout=min(0.5, self.poll_s), stop_after=1))
                            if any(WRITEBACK.woken_by(n.payload) for n in notified):
                                break
            except psycopg.OperationalError as exc:
                log.warning("drainer %s lost the database (%s); reconnecting", self.worker_id, exc)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:
                # a long-lived worker must not die on one bad pass: what it had claimed comes back when
                # its lease expires
                log.exception("drainer %s: a drain pass failed; starting over", self.worker_id)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT: finish the call in flight, release the rest, exit the loop."""

        def handler(signum: int, frame: object) -> None:
            log.info("drainer %s stopping (signal %s)", self.worker_id, signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
