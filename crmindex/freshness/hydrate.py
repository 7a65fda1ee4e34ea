"""``hydrate`` jobs: fetch records named by webhooks (creations, restores, merges' primaries, unknown ids)
from the CRM in batch reads and write them to the index — and to tier 2 when the record is materialized
(the brief's Path 1). Records the CRM no longer has are soft-deleted; merged-away ids point at their primary.

A 404 is not always "gone": the new record of an Attio merge still being applied answers 404
``merge_in_progress`` (:class:`~crmindex.crm.errors.MergeInProgress`). The records read before it are written, it
and the records not read yet are retried later, and none of them is soft-deleted.

Object type ``list_entries`` (Attio ``list-entry.*`` webhooks, ids ``<list id>/<entry id>``): the entries are
written to ``crm.list_entry`` (:mod:`crmindex.index.lists`); those the CRM no longer has are soft-deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import psycopg

from crmindex.crm.connections import clear_auth_failure
from crmindex.crm.errors import CrmError, MergeInProgress
from crmindex.crm.outcomes import fetch_outcome
from crmindex.crm.protocols import OBJECT_TYPES, FetchedRecord, RecordFetcher
from crmindex.errors import InvalidRowError
from crmindex.freshness.webhooks import enqueue_hydration, linked_deals
from crmindex.index.lists import delete_entries, upsert_entries
from crmindex.index.writes import apply_deletions, upsert_rows
from crmindex.platform.db import Conn
from crmindex.platform.queue import Handler, Job, Outcome
from crmindex.records.materialize import refresh_materialized_contacts

LIST_ENTRIES = "list_entries"  # Attio list entries (crmindex.crm.attio.events.LIST_ENTRIES)


def hydrate_handler(fetcher_for: Callable[[str, str], RecordFetcher]) -> Handler:
    def handle(conn: Conn, jobs: Sequence[Job]) -> Mapping[Job, Outcome]:
        outcomes: dict[Job, Outcome] = {}
        groups: dict[tuple[str, str, str], list[Job]] = {}
        for job in jobs:
            key = (str(job.org_id), str(job.row.get("crm_source")), str(job.payload.get("object_type")))
            groups.setdefault(key, []).append(job)
        for (org, source, object_type), group in groups.items():
            if object_type not in (*OBJECT_TYPES, LIST_ENTRIES):
                for job in group:
                    outcomes[job] = Outcome.dead(f"unknown object type {object_type!r}")
                continue
            ids = list(dict.fromkeys(str(j.payload.get("crm_record_id")) for j in group))
            # taken before the read: the associations fetched reflect every change that occurred before it
            read_at = datetime.now(UTC).isoformat()
            pending: set[str] = set()  # not read yet: a merge in progress (not gone), retried later
            try:
                fetched = fetcher_for(org, source).fetch(object_type, ids)
            except MergeInProgress as exc:
                fetched = {k: v for k, v in exc.partial.items() if isinstance(v, FetchedRecord)}
                pending = set(exc.pending) or set(ids) - set(fetched)  # never taken for gone
            except CrmError as exc:
                out = fetch_outcome(conn, org, source, exc, kind="hydrate")
                for job in group:
                    outcomes[job] = out
                continue
            clear_auth_failure(conn, org, source)
            if object_type == LIST_ENTRIES:
                outcomes.update(_entries(conn, org, source, group, ids, fetched, pending))
                continue
            now = datetime.now(UTC).isoformat()
            rows = []
            gone = []
            for rid in ids:
                if rid in pending:
                    continue
                rec = fetched.get(rid)
                if rec is None:
                    gone.append({"crm_record_id": rid, "occurred_at": now})
                    continue
                row = dict(rec.row)
                if "contact_crm_ids" in row:
                    row["associations_read_at"] = read_at
                rows.append(row)
                if rec.crm_record_id != rid:  # merged into another record
                    gone.append({"crm_record_id": rid, "occurred_at": now, "merged_into": rec.crm_record_id})
            try:
                with conn.transaction():
                    if rows:
                        upsert_rows(conn, object_type, org, source, rows)
                    apply_deletions(conn, object_type, org, source, gone)
                    if object_type == "contacts":
                        refresh_materialized_contacts(conn, org, source, list(fetched.values()))
                        merged = [g["crm_record_id"] for g in gone if "merged_into" in g]
                        merged += [g["merged_into"] for g in gone if "merged_into" in g]
                        if merged:  # the CRM moved their deal associations: refetch those deals
                            deals = linked_deals(conn, org, source, merged)
                            if deals:
                                enqueue_hydration(conn, org, source, "deals", deals)
            except (psycopg.DataError, InvalidRowError) as exc:  # class 22, not only 22000
                for job in group:
                    outcomes[job] = Outcome.dead(f"cannot apply fetched records: {exc}")
                continue
            for job in group:
                rid = str(job.payload.get("crm_record_id"))
                outcomes[job] = Outcome.retry(MERGE_NOTE) if rid in pending else Outcome.done()
        return outcomes

    return handle


MERGE_NOTE = "the record is being merged (404 merge_in_progress): read it again later"


def _entries(
    conn: Conn,
    org: str,
    source: str,
    group: Sequence[Job],
    keys: Sequence[str],
    fetched: Mapping[str, FetchedRecord],
    pending: set[str],
) -> dict[Job, Outcome]:
    """Write the list entries read, soft-delete those the CRM no longer has."""
    now = datetime.now(UTC).isoformat()
    gone = [tuple(k.split("/", 1)) for k in keys if k not in fetched and k not in pending and "/" in k]
    try:
        with conn.transaction():
            upsert_entries(conn, org, source, [r.row for r in fetched.values()])
            delete_entries(conn, org, source, [(lst, e) for lst, e in gone], now)
    except (psycopg.DataError, InvalidRowError) as exc:
        return {job: Outcome.dead(f"cannot apply fetched list entries: {exc}") for job in group}
    return {
        job: Outcome.retry(MERGE_NOTE) if str(job.payload.get("crm_record_id")) in pending else Outcome.done()
        for job in group
    }
