"""``hydrate`` jobs: fetch records named by webhooks (creations, restores, merges' primaries, unknown ids)
from the CRM in batch reads and write them to the index — and to tier 2 when the record is materialized
(the brief's Path 1). Records the CRM no longer has are soft-deleted; merged-away ids point at their primary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import psycopg

from crmindex.crm.connections import clear_auth_failure
from crmindex.crm.errors import CrmError
from crmindex.crm.outcomes import fetch_outcome
from crmindex.crm.protocols import OBJECT_TYPES, RecordFetcher
from crmindex.errors import InvalidRowError
from crmindex.freshness.webhooks import enqueue_hydration, linked_deals
from crmindex.index.writes import apply_deletions, upsert_rows
from crmindex.platform.db import Conn
from crmindex.platform.queue import Handler, Job, Outcome
from crmindex.records.materialize import refresh_materialized_contacts


def hydrate_handler(fetcher_for: Callable[[str, str], RecordFetcher]) -> Handler:
    def handle(conn: Conn, jobs: Sequence[Job]) -> Mapping[Job, Outcome]:
        outcomes: dict[Job, Outcome] = {}
        groups: dict[tuple[str, str, str], list[Job]] = {}
        for job in jobs:
            key = (str(job.org_id), str(job.row.get("crm_source")), str(job.payload.get("object_type")))
            groups.setdefault(key, []).append(job)
        for (org, source, object_type), group in groups.items():
            if object_type not in OBJECT_TYPES:
                for job in group:
                    outcomes[job] = Outcome.dead(f"unknown object type {object_type!r}")
                continue
            ids = list(dict.fromkeys(str(j.payload.get("crm_record_id")) for j in group))
            # taken before the read: the associations fetched reflect every change that occurred before it
            read_at = datetime.now(UTC).isoformat()
            try:
                fetched = fetcher_for(org, source).fetch(object_type, ids)
            except CrmError as exc:
                out = fetch_outcome(conn, org, source, exc, kind="hydrate")
                for job in group:
                    outcomes[job] = out
                continue
            clear_auth_failure(conn, org, source)
            now = datetime.now(UTC).isoformat()
            rows = []
            gone = []
            for rid in ids:
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
                outcomes[job] = Outcome.done()
        return outcomes

    return handle
