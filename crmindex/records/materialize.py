"""Tier 2 on demand: materialize contacts when they become active (the brief's Paths 2-4).

* ``materialize_contact(conn, fetcher, org, ref)`` — fetch the full record from the CRM, write tier 2 and mark
  the index row in one transaction, log the activation. Idempotent; concurrent calls for one contact make
  one fetch (an advisory lock per record, then a freshness check). A contact gone from the CRM gives a
  ``gone`` result and its index row is soft-deleted.
* ``activate_by_email`` — the meeting-booked path: materialize when indexed, else create a local contact
  (and, when asked, queue an idempotent CRM create).
* ``record_enrichment`` — materialize first, then store a provider's payload; enriched fields can be
  queued for write-back.
* ``materialize_many`` — bulk: batch reads of <= 100 within the org's materialization budget (the shared
  limiter, class ``materialize``); the rest are queued on the queue core and done later, in order.
* ``request_materialization`` — the application's path (role ``crm_app``, which holds no CRM token): queue
  ``materialize`` jobs (``crm.request_materialization``) that the workers' ``materialize_jobs_handler`` does.

Every write is one SQL function call (``sql/records/materialize.sql``): ``crm.materialize_contact_write``,
``crm.materialize_contact_gone``, ``crm.log_activation`` (workers), ``crm.activate_local_contact``,
``crm.store_enrichment``, ``crm.request_materialization`` (also the application's API).
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from crmindex.crm.connections import clear_auth_failure
from crmindex.crm.errors import CrmError
from crmindex.crm.outcomes import fetch_outcome
from crmindex.crm.protocols import FetchedRecord, RecordFetcher, Source
from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.index.refs import IndexRef, resolve_contact, resolve_contacts
from crmindex.index.writes import upsert_contacts
from crmindex.platform.bounds import (
    ENRICHMENT_CAP,
    NAME_CAP,
    REFS_CAP,
    check_json,
    check_text,
    is_email,
    text_cap,
)
from crmindex.platform.db import Conn, text_problem, translate_errors
from crmindex.platform.queue import Handler, Job, Outcome
from crmindex.writeback.enqueue import TriggeredBy, update_contact

Reason = Literal["copilot", "meeting_booked", "enrichment", "ops_table", "webhook", "manual", "bulk"]
MATERIALIZE_KIND = "materialize"
FRESH_SECONDS = 60.0
CONTACT_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "company_crm_id",
    "job_title",
    "lifecycle_stage",
    "lead_status",
)


class ContactRecord(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    crm_source: str | None
    crm_record_id: str | None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company_name: str | None = None
    job_title: str | None = None
    lifecycle_stage: str | None = None
    lead_status: str | None = None
    properties: dict[str, Any] = {}
    enrichment: dict[str, Any] = {}
    origin: str = "crm"
    fetched_at: datetime | None = None


class Materialized(BaseModel):
    outcome: Literal["materialized", "fresh", "gone", "local", "queued"]
    record: ContactRecord | None = None
    fetched: bool = False
    job_id: int | None = None


class QueuedMaterialization(BaseModel):
    """One reference of a materialization request: the contact it names and its ``materialize`` job."""

    ref: str
    index_id: int
    crm_source: str
    crm_record_id: str
    job_id: int


def _lock_key(org_id: str, source: str, record_id: str) -> int:
    digest = hashlib.sha256(f"crmindex.materialize:{org_id}:{source}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _assert_org(conn: Conn, org_id: str) -> None:
    """Raise OrgMismatchError when an app session bound to another org asks for this one."""
    with translate_errors():
        conn.execute("SELECT crm.assert_org(%s)", (org_id,))


@dataclass(frozen=True)
class AccountBudget:
    """An account's materialization budget: the ``materialize`` class of its shared limiter row
    (``crm.rate_limit_take``). Bulk materializations take permits from it; what it does not allow now is queued.
    Anything with ``org_id`` and ``source`` (a :class:`~crmindex.platform.limiter.PgRateLimiter`) serves too."""

    org_id: str
    source: str


def _take_permits(conn: Conn, budget: Any, want: int) -> tuple[int, float]:
    """Take up to ``want`` permits of the ``materialize`` class now; returns (taken, seconds until the next).

    ``crm.rate_limit_take`` (sql/platform/limiter.sql) on the budget's account (``budget.org_id``,
    ``budget.source``): a window's worth at once, then one permit per emission interval; nothing is reserved
    when nothing is taken, so callers that wait (released jobs) never push the budget further out.
    """
    if want <= 0:
        return 0, 0.0
    with translate_errors():
        row = conn.execute(
            "SELECT taken, next_in_s FROM crm.rate_limit_take(%s, %s, %s, %s)",
            (str(budget.org_id), str(budget.source), MATERIALIZE_KIND, want),
        ).fetchone()
    assert row is not None
    return int(str(row[0])), float(str(row[1]))


def _log(
    conn: Conn,
    org_id: str,
    target: IndexRef | None,
    reason: str,
    actor: str | None,
    outcome: str,
    record_id: uuid.UUID | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        "SELECT crm.log_activation(%s, 'contact', %s, %s, %s, %s, %s, %s, %s)",
        (
            org_id,
            None if target is None else target.crm_source,
            None if target is None else target.crm_record_id,
            record_id,
            reason,
            actor,
            outcome,
            Jsonb(dict(detail or {})),
        ),
    )


def get_contact_record(conn: Conn, org_id: uuid.UUID | str, record_id: uuid.UUID | str) -> ContactRecord:
    cur = conn.execute(
        "SELECT id, org_id, crm_source, crm_record_id, first_name, last_name, email, phone, company_name, job_title, "
        "lifecycle_stage, lead_status, properties, enrichment, origin, fetched_at "
        "FROM crm.contact_record WHERE org_id = %s AND id = %s",
        (str(org_id), str(record_id)),
    )
    row = cur.fetchone()
    if row is None or cur.description is None:
        raise NotFoundError(f"no tier-2 contact {record_id}")
    return ContactRecord.model_validate({d.name: v for d, v in zip(cur.description, row, strict=True)})


def _newer(value: object, than: datetime | None) -> bool:
    if than is None or not value:
        return True
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return True
    return when.tzinfo is None or when > than


def _clipped(value: object, column: str) -> object:
    """A CRM value cut to the index's cap for its column (the full value stays in the record's properties)."""
    if isinstance(value, str) and len(value) > text_cap(column):
        return value[: text_cap(column)]
    return value


def _write(
    conn: Conn, org_id: str, target: IndexRef, rec: FetchedRecord, index_updated_at: datetime | None = None
) -> uuid.UUID:
    """Refresh the index row from the fetched record, then write tier 2 (caller's transaction).

    With ``index_updated_at`` (the live index row's CRM timestamp) a snapshot no newer than the index is not
    upserted again: the index already has it (per-field newer webhook values would win anyway). Text longer
    than the index's caps (a CRM allows more) is cut to them in the typed columns; the properties keep it."""
    if target.deleted or _newer(rec.row.get("crm_updated_at"), index_updated_at):
        index_row = {k: _clipped(v, k) for k, v in rec.row.items() if k != "deleted_at"}
        index_row["crm_record_id"] = target.crm_record_id
        upsert_contacts(conn, org_id, target.crm_source, [index_row])  # type: ignore[arg-type]
    return write_contact_record(conn, org_id, target.crm_source, target.crm_record_id, rec)


def write_contact_record(
    conn: Conn, org_id: str, source: str, crm_record_id: str, rec: FetchedRecord
) -> uuid.UUID:
    """The one tier-2 write of a fetched contact (``crm.materialize_contact_write``, caller's transaction): its
    typed columns (cut to the index's caps; the properties keep every value in full) and every property; marks
    the index row materialized. Returns the record id."""
    typed = {k: _clipped(rec.row.get(k), k) for k in CONTACT_COLUMNS}
    row = conn.execute(
        "SELECT crm.materialize_contact_write(%s, %s, %s, %s, %s, %s)",
        (org_id, source, crm_record_id, Jsonb(typed), Jsonb(rec.properties), rec.row.get("crm_updated_at")),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def refresh_materialized_contacts(
    conn: Conn, org_id: str, source: str, records: Sequence[FetchedRecord]
) -> int:
    """Path 1: of these freshly fetched contacts, rewrite the tier-2 records of those already materialized
    (:func:`write_contact_record`, caller's transaction). Returns how many."""
    ids = [r.crm_record_id for r in records]
    if not ids:
        return 0
    materialized = {
        str(r[0])
        for r in conn.execute(
            "SELECT crm_record_id FROM crm.contact_index WHERE org_id = %s AND crm_source = %s "
            "AND crm_record_id = ANY(%s) AND is_materialized",
            (org_id, source, ids),
        )
    }
    n = 0
    for rec in records:
        if rec.crm_record_id in materialized:
            write_contact_record(conn, org_id, source, rec.crm_record_id, rec)
            n += 1
    return n


def _mark_gone(conn: Conn, org_id: str, target: IndexRef, merged_into: str | None = None) -> None:
    conn.execute(
        "SELECT crm.materialize_contact_gone(%s, %s, %s, %s)",
        (org_id, target.crm_source, target.crm_record_id, merged_into),
    )


def _apply_fetched(
    conn: Conn,
    org_id: str,
    target: IndexRef,
    rec: FetchedRecord,
    reason: str,
    actor: str | None,
    index_updated_at: datetime | None = None,
) -> uuid.UUID:
    """Write a fetched record (caller's transaction) and log it. A record merged into another one in the CRM
    comes back as its primary: the merged-away row is soft-deleted (``merged_into``) and the primary written."""
    if rec.crm_record_id != target.crm_record_id:
        _mark_gone(conn, org_id, target, merged_into=rec.crm_record_id)
        primary = dataclasses.replace(target, crm_record_id=rec.crm_record_id)
        record_id = _write(conn, org_id, primary, rec)
        _log(
            conn,
            org_id,
            primary,
            reason,
            actor,
            "materialized",
            record_id,
            {"merged_from": target.crm_record_id},
        )
        return record_id
    record_id = _write(conn, org_id, target, rec, index_updated_at)
    _log(conn, org_id, target, reason, actor, "materialized", record_id)
    return record_id


def _fresh_record(
    conn: Conn, org_id: str, target: IndexRef, fresh_s: float
) -> tuple[uuid.UUID | None, datetime | None]:
    """(the tier-2 record when fetched within ``fresh_s``, the index row's CRM timestamp) in one query."""
    row = conn.execute(
        "SELECT r.id, c.crm_updated_at FROM crm.contact_index AS c LEFT JOIN crm.contact_record AS r "
        "ON r.org_id = c.org_id AND r.crm_source = c.crm_source AND r.crm_record_id = c.crm_record_id "
        "AND r.deleted_at IS NULL AND r.fetched_at > now() - make_interval(secs => %s) "
        "WHERE c.org_id = %s AND c.crm_source = %s AND c.crm_record_id = %s",
        (fresh_s, org_id, target.crm_source, target.crm_record_id),
    ).fetchone()
    if row is None:
        return None, None
    updated = row[1] if isinstance(row[1], datetime) else None
    return (None if row[0] is None else uuid.UUID(str(row[0]))), updated


def materialize_contact(
    conn: Conn,
    fetcher: RecordFetcher,
    org_id: uuid.UUID | str,
    ref: str | int,
    *,
    reason: Reason = "copilot",
    actor: str | None = None,
    fresh_s: float = FRESH_SECONDS,
) -> Materialized:
    """Fetch and store the full record of one indexed contact (``conn`` must be autocommit)."""
    org = str(org_id)
    _assert_org(conn, org)
    with translate_errors():
        target = resolve_contact(conn, org, ref, source=fetcher.source)
    key = _lock_key(org, target.crm_source, target.crm_record_id)
    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        existing, index_updated_at = _fresh_record(conn, org, target, fresh_s)
        if existing is not None:  # someone (maybe a concurrent caller) fetched it moments ago
            with conn.transaction():
                _log(conn, org, target, reason, actor, "fresh", existing)
            return Materialized(outcome="fresh", record=get_contact_record(conn, org, existing))
        fetched = fetcher.fetch("contacts", [target.crm_record_id]).get(target.crm_record_id)
        with conn.transaction(), translate_errors():
            if fetched is None:
                _mark_gone(conn, org, target)
                _log(conn, org, target, reason, actor, "gone")
                return Materialized(outcome="gone", fetched=True)
            record_id = _apply_fetched(conn, org, target, fetched, reason, actor, index_updated_at)
        return Materialized(
            outcome="materialized", record=get_contact_record(conn, org, record_id), fetched=True
        )
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def activate_by_email(
    conn: Conn,
    fetcher: RecordFetcher | None,
    org_id: uuid.UUID | str,
    email: str,
    name: str | None = None,
    *,
    reason: Reason = "meeting_booked",
    actor: str | None = None,
    create_in_crm: Source | None = None,
) -> Materialized:
    """Meeting booked: materialize the indexed contact with this email, else create a local contact.

    With a ``fetcher`` of the contact's CRM (a worker) the record is fetched now; without one (the application,
    which holds no CRM token) the fetch is queued for the workers (``crm.request_materialization``, outcome
    ``queued``). Someone not in the index becomes a local contact (``crm.activate_local_contact``), optionally
    created in a CRM too (``create_in_crm``)."""
    addr = email.strip().lower()
    if not is_email(addr) or len(addr) > text_cap("email") or text_problem(addr) is not None:
        raise InvalidInputError(f"not an email address: {email[:80]!r}")
    check_text("name", name, NAME_CAP)
    if name is not None and text_problem(name) is not None:
        raise InvalidInputError(f"name {text_problem(name)}")
    check_text("actor", actor, NAME_CAP)
    org = str(org_id)
    _assert_org(conn, org)
    try:
        with translate_errors():
            target = resolve_contact(conn, org, addr)
        if not target.deleted and fetcher is not None and fetcher.source == target.crm_source:
            return materialize_contact(conn, fetcher, org, f"#{target.id}", reason=reason, actor=actor)
        if not target.deleted:
            [queued] = request_materialization(conn, org, [f"#{target.id}"], reason=reason, actor=actor)
            return Materialized(outcome="queued", job_id=queued.job_id)
    except NotFoundError:
        pass
    with conn.transaction(), translate_errors():
        row = conn.execute(
            "SELECT record_id, job_id FROM crm.activate_local_contact(%s, %s, %s, %s, %s, %s)",
            (org, addr, name, reason, actor, create_in_crm),
        ).fetchone()
    assert row is not None
    record_id = uuid.UUID(str(row[0]))
    job_id = None if row[1] is None else int(str(row[1]))
    return Materialized(outcome="local", record=get_contact_record(conn, org, record_id), job_id=job_id)


def record_enrichment(
    conn: Conn,
    fetcher: RecordFetcher,
    org_id: uuid.UUID | str,
    ref: str | int,
    provider: str,
    payload: Mapping[str, Any],
    *,
    write_back: Mapping[str, object] | None = None,
    actor: str | None = None,
) -> ContactRecord:
    """Store an enrichment provider's data on the (materialized) contact; optionally queue enriched fields."""
    if not provider or not provider.replace("_", "").replace("-", "").isalnum() or len(provider) > 40:
        raise InvalidInputError("provider is a short name such as apollo, ai_ark, apify")
    check_json("payload", dict(payload), ENRICHMENT_CAP)
    org = str(org_id)
    result = materialize_contact(conn, fetcher, org, ref, reason="enrichment", actor=actor)
    if result.record is None:
        raise NotFoundError(f"contact {ref} is gone from the CRM; nothing to enrich")
    record = result.record
    with conn.transaction(), translate_errors():
        conn.execute(
            "SELECT crm.store_enrichment(%s, %s, %s, %s)", (org, record.id, provider, Jsonb(dict(payload)))
        )
        if write_back:
            enrich_by: TriggeredBy = "enrichment"
            update_contact(conn, org, f"#{_index_id(conn, org, record)}", write_back, triggered_by=enrich_by)
    return get_contact_record(conn, org, record.id)


def _index_id(conn: Conn, org: str, record: ContactRecord) -> int:
    row = conn.execute(
        "SELECT id FROM crm.contact_index WHERE org_id = %s AND crm_source = %s AND crm_record_id = %s",
        (org, record.crm_source, record.crm_record_id),
    ).fetchone()
    if row is None:
        raise NotFoundError("the enriched contact is not in the index")
    return int(str(row[0]))


def materialize_many(
    conn: Conn,
    fetcher: RecordFetcher,
    org_id: uuid.UUID | str,
    refs: Sequence[str | int],
    *,
    reason: Reason = "bulk",
    actor: str | None = None,
    budget: Any | None = None,
) -> dict[str, int]:
    """Materialize many contacts: what the budget allows now in batch reads, the rest queued in order.

    ``budget`` is a :class:`crmindex.platform.limiter.PgRateLimiter` of the org (class ``materialize``: up to one
    window's worth at once, then at the configured rate); without it everything is done now. Queued
    contacts become ``materialize`` jobs, done by :func:`materialize_jobs_handler` in the order given.
    """
    org = str(org_id)
    _assert_org(conn, org)
    targets: dict[tuple[str, str], IndexRef] = {}
    with translate_errors():
        resolved = resolve_contacts(conn, org, refs, source=fetcher.source)  # one query for all refs
    for ref, t in zip(refs, resolved, strict=True):
        if t is None:
            raise NotFoundError(f"no indexed contact matches {str(ref).strip()[:80]!r} in this org")
        targets.setdefault((t.crm_source, t.crm_record_id), t)  # a contact named twice is done once
    ordered = list(targets.values())
    allowed = len(ordered) if budget is None else _take_permits(conn, budget, len(ordered))[0]
    now, queued = ordered[:allowed], ordered[allowed:]
    counts = {"materialized": 0, "gone": 0, "queued": 0, "calls": 0}
    for i in range(0, len(now), 100):
        chunk = now[i : i + 100]
        fetched = fetcher.fetch("contacts", [t.crm_record_id for t in chunk])
        counts["calls"] += 1
        with conn.transaction(), translate_errors():
            for t in chunk:
                rec = fetched.get(t.crm_record_id)
                if rec is None:
                    _mark_gone(conn, org, t)
                    _log(conn, org, t, reason, actor, "gone")
                    counts["gone"] += 1
                else:
                    _apply_fetched(conn, org, t, rec, reason, actor)
                    counts["materialized"] += 1
    for i in range(0, len(queued), REFS_CAP):  # the rest as materialize jobs, in order
        request_materialization(
            conn, org, [f"#{t.id}" for t in queued[i : i + REFS_CAP]], reason=reason, actor=actor
        )
    counts["queued"] = len(queued)
    return counts


def request_materialization(
    conn: Conn,
    org_id: uuid.UUID | str,
    refs: Sequence[str | int],
    *,
    reason: Reason = "copilot",
    actor: str | None = None,
    source: Source | None = None,
) -> list[QueuedMaterialization]:
    """Ask for the full records of indexed contacts: one ``materialize`` job each, in order, that the workers
    do within the org's budget (``crm.request_materialization``; a contact already queued is not queued twice).

    The application's path: it needs no CRM token. ``refs``: index ids (``#123`` or ints), CRM record ids or
    emails, at most 1,000; an unknown one raises NotFoundError and queues nothing."""
    texts = [f"#{r}" if isinstance(r, int) and not isinstance(r, bool) else str(r) for r in refs]
    for text in texts:
        problem = text_problem(text)
        if problem is not None:
            raise InvalidInputError(f"a contact reference {problem}")
    if len(texts) > REFS_CAP:
        raise InvalidInputError(f"at most {REFS_CAP} references at once (got {len(texts)})")
    check_text("actor", actor, NAME_CAP)
    with conn.transaction(), translate_errors():
        rows = conn.execute(
            "SELECT ref, index_id, crm_source, crm_record_id, job_id "
            "FROM crm.request_materialization(%s, %s::text[], %s, %s, %s)",
            (str(org_id), texts, reason, actor, source),
        ).fetchall()
    return [
        QueuedMaterialization(
            ref=str(r[0]),
            index_id=int(str(r[1])),
            crm_source=str(r[2]),
            crm_record_id=str(r[3]),
            job_id=int(str(r[4])),
        )
        for r in rows
    ]


def _older_open_job(conn: Conn, org: str, source: str, group: Sequence[Job]) -> tuple[int, float]:
    """(index in ``group`` of the first job that has an older open job not in hand, seconds until those
    older jobs are due again). ``group`` is sorted by id; open means pending or failed (not claimed)."""
    if not group:
        return 0, 0.0
    row = conn.execute(
        "SELECT min(id), extract(EPOCH FROM max(next_retry_at) - clock_timestamp())::float8 FROM crm.job "
        "WHERE org_id = %s AND kind = %s AND crm_source = %s AND status IN ('pending', 'failed') AND id < %s",
        (org, MATERIALIZE_KIND, source, group[-1].id),
    ).fetchone()
    if row is None or row[0] is None:
        return len(group), 0.0
    first_open = int(str(row[0]))
    cut = next((i for i, job in enumerate(group) if job.id > first_open), len(group))
    return cut, max(0.05, float(str(row[1])) + 0.01)


def materialize_jobs_handler(
    fetchers: Mapping[tuple[str, str], RecordFetcher], budgets: Mapping[Any, Any] | None = None
) -> Handler:
    """Queue-core handler for ``materialize`` jobs: within each org's budget, batch reads in job order;
    jobs beyond the budget are released (no attempt spent) until the budget allows them."""

    def handle(conn: Conn, jobs: Sequence[Job]) -> Mapping[Job, Outcome]:
        outcomes: dict[Job, Outcome] = {}
        by_account: dict[tuple[str, str], list[Job]] = {}
        for job in sorted(jobs, key=lambda j: j.id):  # enqueue order
            by_account.setdefault((str(job.org_id), str(job.row.get("crm_source"))), []).append(job)
        for (org, source), group in by_account.items():
            fetcher = fetchers.get((org, source))
            if fetcher is None:
                for job in group:
                    outcomes[job] = Outcome.retry(f"no {source} connection for org {org}")
                continue
            # in order: a job runs only after every older open job of the account (waiting ones come back later)
            blocked_from, older_due_in = _older_open_job(conn, org, source, group)
            for job in group[blocked_from:]:
                outcomes[job] = Outcome.release(older_due_in, "materialization: waiting for older jobs")
            group = group[:blocked_from]
            # the account's budget, keyed (org, source) or by org (anything with .org_id and .source)
            budget = None if budgets is None else budgets.get((org, source), budgets.get(org))
            n_allowed, next_s = (
                (len(group), 0.0) if budget is None else _take_permits(conn, budget, len(group))
            )
            allowed = group[:n_allowed]
            for job in group[n_allowed:]:
                outcomes[job] = Outcome.release(
                    max(next_s, 0.01), "materialization budget: waiting for a permit"
                )
            for i in range(0, len(allowed), 100):
                chunk = allowed[i : i + 100]
                ids = [str(j.payload.get("crm_record_id")) for j in chunk]
                try:
                    fetched = fetcher.fetch("contacts", ids)
                except CrmError as exc:
                    out = fetch_outcome(conn, org, source, exc, kind=MATERIALIZE_KIND)
                    for job in chunk:
                        outcomes[job] = out
                    continue
                clear_auth_failure(conn, org, source)
                with conn.transaction(), translate_errors():
                    targets = resolve_contacts(conn, org, ids, source=source)
                    for job, rid, target in zip(chunk, ids, targets, strict=True):
                        if target is None:
                            outcomes[job] = Outcome.dead(
                                f"no indexed contact matches {rid[:80]!r} in this org"
                            )
                            continue
                        rec = fetched.get(rid)
                        reason = str(job.payload.get("reason") or "bulk")
                        actor = job.payload.get("actor")
                        actor_s = None if actor is None else str(actor)
                        if rec is None:
                            _mark_gone(conn, org, target)
                            _log(conn, org, target, reason, actor_s, "gone")
                        else:
                            _apply_fetched(conn, org, target, rec, reason, actor_s)
                        outcomes[job] = Outcome.done()
        return outcomes

    return handle
