"""``reconcile``: on-demand repair of index gaps after webhook downtime (nothing runs on a schedule).

* HubSpot: for contacts, companies and deals, search the modified-time window
  ``[watermark - margin, start]`` sorted by ``hs_object_id`` — restarting from the last id before the
  10,000-result cap, so records sharing one timestamp never loop (Airbyte #43317/#44899) — and upsert what
  changed (monotonic, so anything newer already applied stays); deals bring their associations. Then the
  archived listings turn deletions into soft deletes. The watermark moves to the reconcile's start.
* Attio (no modified-time filter): a full rescan; records not seen are soft-deleted (only those not
  updated since the scan began).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from crmindex.crm.hubspot.adapters import HubSpotFetcher
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.hubspot.mapping import hubspot_contact_to_row, hubspot_deal_to_row, hubspot_to_row
from crmindex.crm.hubspot.properties import INDEX_TABLES
from crmindex.freshness.sync import UPSERT_FN, sanitize
from crmindex.freshness.webhooks import linked_deals
from crmindex.index.writes import rows_json
from crmindex.platform.db import Conn, translate_errors

DEFAULT_MARGIN = timedelta(minutes=10)
BATCH = 500


@dataclass
class ReconcileReport:
    org_id: uuid.UUID
    source: str
    since: datetime | None
    until: datetime
    upserted: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)


def _watermark(conn: Conn, org: str, source: str) -> datetime | None:
    row = conn.execute(
        "SELECT min(watermark) FROM crm.sync_state WHERE org_id = %s AND crm_source = %s AND watermark IS NOT NULL",
        (org, source),
    ).fetchone()
    value = None if row is None else row[0]
    return value if isinstance(value, datetime) else None


def _write(conn: Conn, org: str, source: str, object_type: str, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    with conn.transaction(), translate_errors():
        res = conn.execute(
            f"SELECT * FROM crm.{UPSERT_FN[object_type]}(%s, %s, %s::jsonb)",
            (org, source, rows_json(sanitize(rows, f"reconcile {source} {object_type}"))),
        ).fetchone()
    assert res is not None
    return int(res[0]) + int(res[1])


def _chunks(it: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in it:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _refresh_deals(conn: Conn, org: str, client: HubSpotClient, deal_ids: list[str]) -> int:
    """Reread these deals with their associations (a batch read per 100) and write them."""
    fetcher = HubSpotFetcher(client)
    n = 0
    for i in range(0, len(deal_ids), 100):
        read_at = datetime.now(UTC).isoformat()  # before the read: it reflects every earlier change
        fetched = fetcher.fetch("deals", deal_ids[i : i + 100])
        n += _write(
            conn,
            org,
            "hubspot",
            "deals",
            [r.row | {"associations_read_at": read_at} for r in fetched.values()],
        )
    return n


def reconcile_hubspot(
    conn: Conn,
    org_id: uuid.UUID | str,
    client: HubSpotClient,
    *,
    since: datetime | None = None,
    margin: timedelta = DEFAULT_MARGIN,
) -> ReconcileReport:
    org = str(org_id)
    start_row = conn.execute("SELECT now()").fetchone()
    assert start_row is not None
    until: datetime = start_row[0]
    mark = since or _watermark(conn, org, "hubspot")
    window_start = (mark - margin) if mark is not None else datetime(1970, 1, 1, tzinfo=UTC)
    report = ReconcileReport(uuid.UUID(org), "hubspot", window_start, until)
    merged_contacts: set[str] = set()
    for object_type in ("companies", "contacts", "deals"):
        n = 0
        for objs in _chunks(client.iter_modified(object_type, window_start, until), BATCH):
            if object_type == "deals":
                # taken before the read: the associations reflect every change that occurred before it
                read_at = datetime.now(UTC).isoformat()
                links = client.deal_associations([o.id for o in objs])
                rows = [
                    hubspot_deal_to_row(
                        o,
                        contact_crm_ids=links.get(o.id, ([], None))[0],
                        company_crm_id=links.get(o.id, ([], None))[1],
                    )
                    | {"associations_read_at": read_at}
                    for o in objs
                ]
            elif object_type == "contacts":
                rows = [hubspot_contact_to_row(o) for o in objs]
            else:
                rows = [hubspot_to_row(object_type, o) for o in objs]
            n += _write(conn, org, "hubspot", object_type, rows)
            # records merged into these are gone from HubSpot (not archived): point them at their primary
            merged = [
                {"crm_record_id": m, "occurred_at": o.updated_at.isoformat(), "merged_into": o.id}
                for o in objs
                for m in o.merged_ids
                if m != o.id
            ]
            if merged:
                conn.execute(
                    "SELECT * FROM crm.apply_deletions(%s, 'hubspot', %s, %s)",
                    (org, INDEX_TABLES[object_type], Jsonb(merged)),
                )
                if object_type == "contacts":
                    merged_contacts.update(m["crm_record_id"] for m in merged)
                    merged_contacts.update(m["merged_into"] for m in merged)
        if object_type == "contacts" and merged_contacts:
            # a contact merge moves deal associations without modifying the deals: reread those deals
            n += _refresh_deals(
                conn, org, client, linked_deals(conn, org, "hubspot", sorted(merged_contacts))
            )
        report.upserted[object_type] = n
        deleted = 0
        for page in client.iter_pages(object_type, archived=True):
            rows = []
            for o in page.results:
                row = hubspot_to_row(object_type, o)
                row["deleted_at"] = (o.archived_at or o.updated_at).isoformat()
                rows.append(row)
            deleted += _write(conn, org, "hubspot", object_type, rows)
        report.deleted[object_type] = deleted
    conn.execute(
        "UPDATE crm.sync_state SET watermark = %s, updated_at = now() WHERE org_id = %s AND crm_source = 'hubspot'",
        (until, org),
    )
    return report


def reconcile_attio(
    conn: Conn, org_id: uuid.UUID | str, client: Any, *, custom: dict[str, str] | None = None
) -> ReconcileReport:
    """Full rescan: upsert every record, soft-delete index rows the scan did not see."""
    from crmindex.crm.attio.mapping import attio_company_to_row, attio_deal_to_row, attio_person_to_row

    org = str(org_id)
    start_row = conn.execute("SELECT now()").fetchone()
    assert start_row is not None
    until: datetime = start_row[0]
    report = ReconcileReport(uuid.UUID(org), "attio", None, until)
    for object_type, slug in (("companies", "companies"), ("contacts", "people"), ("deals", "deals")):
        seen: list[str] = []
        n = 0
        for recs in _chunks(client.iter_records(slug), BATCH):
            if object_type == "contacts":
                rows = [attio_person_to_row(r, custom=custom) for r in recs]
            elif object_type == "companies":
                rows = [attio_company_to_row(r) for r in recs]
            else:
                rows = [attio_deal_to_row(r) for r in recs]
            seen.extend(str(r["crm_record_id"]) for r in rows)
            n += _write(conn, org, "attio", object_type, rows)
        report.upserted[object_type] = n
        table = {
            "contacts": "crm.contact_index",
            "companies": "crm.company_index",
            "deals": "crm.deal_index",
        }[object_type]
        missing = conn.execute(
            f"SELECT crm_record_id FROM {table} WHERE org_id = %s AND crm_source = 'attio' "
            "AND deleted_at IS NULL AND NOT crm_record_id = ANY(%s) "
            "AND (crm_updated_at IS NULL OR crm_updated_at < %s)",
            (org, seen, until),
        ).fetchall()
        if missing:
            conn.execute(
                "SELECT * FROM crm.apply_deletions(%s, 'attio', %s, %s)",
                (
                    org,
                    table,
                    Jsonb([{"crm_record_id": str(m[0]), "occurred_at": until.isoformat()} for m in missing]),
                ),
            )
        report.deleted[object_type] = len(missing)
    conn.execute(
        "UPDATE crm.sync_state SET watermark = %s, updated_at = now() WHERE org_id = %s AND crm_source = 'attio'",
        (until, org),
    )
    return report
