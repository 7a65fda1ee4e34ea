"""``reconcile``: on-demand repair of index gaps after webhook downtime (nothing runs on a schedule).

Built on the account's lister (:mod:`crmindex.crm.protocols`), so it works the same for every CRM:

* a :class:`~crmindex.crm.protocols.ChangeLister` (a CRM with a modified-time search, HubSpot): for contacts,
  companies and deals, the records modified in ``[watermark - margin, start]`` are upserted (monotonic, so
  anything newer already applied stays; deals bring their associations; HubSpot's walk restarts from the last
  id before the 10,000-result cap, so records sharing one timestamp never loop: Airbyte #43317/#44899); records
  merged into them are pointed at them, and the deals of merged contacts are reread (a merge moves deal
  associations without modifying the deals). Then the listings of deleted records (``archived_<type>`` steps)
  turn deletions into soft deletes.
* any other lister (Attio, which has no modified-time filter): a full rescan; index rows the scan did not see
  are soft-deleted (only those not updated since the scan began).

Either way the watermark moves to the reconcile's start (``crm.sync_advance_watermark``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crmindex.crm.protocols import OBJECT_TYPES, ChangeLister, Lister, RecordFetcher
from crmindex.crm.registry import crm
from crmindex.freshness.lists import sync_lists
from crmindex.freshness.sync import sanitize
from crmindex.freshness.webhooks import linked_deals
from crmindex.index.writes import INDEX_TABLES, apply_deletions, upsert_rows
from crmindex.platform.db import Conn, translate_errors

DEFAULT_MARGIN = timedelta(minutes=10)


@dataclass
class ReconcileReport:
    org_id: uuid.UUID
    source: str
    since: datetime | None
    until: datetime
    upserted: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)


def _watermark(conn: Conn, org: str, source: str) -> datetime | None:
    row = conn.execute("SELECT crm.sync_watermark(%s, %s)", (org, source)).fetchone()
    value = None if row is None else row[0]
    return value if isinstance(value, datetime) else None


def _now(conn: Conn) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None and isinstance(row[0], datetime)
    return row[0]


def _write(conn: Conn, org: str, source: str, object_type: str, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    with conn.transaction(), translate_errors():
        res = upsert_rows(conn, object_type, org, source, sanitize(rows, f"reconcile {source} {object_type}"))
    return res.inserted + res.updated


def _refresh_deals(conn: Conn, org: str, source: str, fetcher: RecordFetcher, deal_ids: list[str]) -> int:
    """Reread these deals with their associations (reads of <= 100) and write them."""
    n = 0
    for i in range(0, len(deal_ids), 100):
        read_at = datetime.now(UTC).isoformat()  # before the read: it reflects every earlier change
        fetched = fetcher.fetch("deals", deal_ids[i : i + 100])
        n += _write(
            conn, org, source, "deals", [r.row | {"associations_read_at": read_at} for r in fetched.values()]
        )
    return n


def _reconcile_window(
    conn: Conn, org: str, lister: Lister, changes: ChangeLister, fetcher: RecordFetcher, since: datetime,
    until: datetime,
) -> ReconcileReport:  # fmt: skip
    source = lister.source
    report = ReconcileReport(uuid.UUID(org), source, since, until)
    merged_contacts: set[str] = set()
    for object_type in ("companies", "contacts", "deals"):
        n = 0
        for records in changes.changed(object_type, since, until):
            n += _write(conn, org, source, object_type, [r.row for r in records])
            # records merged into these are gone from the CRM (not deleted): point them at their primary
            merged = [
                {"crm_record_id": m, "occurred_at": r.row["crm_updated_at"], "merged_into": r.crm_record_id}
                for r in records
                for m in r.merged_ids
                if m != r.crm_record_id
            ]
            apply_deletions(conn, object_type, org, source, merged)
            if object_type == "contacts":
                merged_contacts.update(m["crm_record_id"] for m in merged)
                merged_contacts.update(m["merged_into"] for m in merged)
        if object_type == "contacts" and merged_contacts:
            # a contact merge moves deal associations without modifying the deals: reread those deals
            n += _refresh_deals(
                conn, org, source, fetcher, linked_deals(conn, org, source, sorted(merged_contacts))
            )
        report.upserted[object_type] = n
        deleted = 0
        if f"archived_{object_type}" in lister.steps:
            for page in lister.pages(f"archived_{object_type}", None):
                deleted += _write(conn, org, source, object_type, page.rows)
        report.deleted[object_type] = deleted
    return report


def _reconcile_rescan(conn: Conn, org: str, lister: Lister, until: datetime) -> ReconcileReport:
    source = lister.source
    report = ReconcileReport(uuid.UUID(org), source, None, until)
    for object_type in OBJECT_TYPES:
        if object_type not in lister.steps:
            continue
        seen: list[str] = []
        n = 0
        for page in lister.pages(object_type, None):
            seen.extend(str(r["crm_record_id"]) for r in page.rows)
            n += _write(conn, org, source, object_type, page.rows)
        report.upserted[object_type] = n
        missing = conn.execute(
            f"SELECT crm_record_id FROM {INDEX_TABLES[object_type]} WHERE org_id = %s AND crm_source = %s "
            "AND deleted_at IS NULL AND NOT crm_record_id = ANY(%s) "
            "AND (crm_updated_at IS NULL OR crm_updated_at < %s)",
            (org, source, seen, until),
        ).fetchall()
        apply_deletions(
            conn,
            object_type,
            org,
            source,
            [{"crm_record_id": str(m[0]), "occurred_at": until.isoformat()} for m in missing],
        )
        report.deleted[object_type] = len(missing)
    sync_lists(conn, org, lister)  # lists and their entries (Attio pipelines): read whole too
    return report


def reconcile(
    conn: Conn,
    org_id: uuid.UUID | str,
    lister: Lister,
    fetcher: RecordFetcher,
    *,
    since: datetime | None = None,
    margin: timedelta = DEFAULT_MARGIN,
) -> ReconcileReport:
    """Repair the index of one account (``conn`` autocommit): the modified window since ``since`` (default: the
    sync's watermark) minus ``margin`` when the lister can list changes, else a full rescan. Build ``lister`` and
    ``fetcher`` with :class:`crmindex.crm.clients.Clients`."""
    org = str(org_id)
    until = _now(conn)
    if isinstance(lister, ChangeLister):
        mark = since or _watermark(conn, org, lister.source)
        window_start = (mark - margin) if mark is not None else datetime(1970, 1, 1, tzinfo=UTC)
        report = _reconcile_window(conn, org, lister, lister, fetcher, window_start, until)
    else:
        report = _reconcile_rescan(conn, org, lister, until)
    conn.execute("SELECT crm.sync_advance_watermark(%s, %s, %s)", (org, lister.source, until))
    return report


def reconcile_hubspot(
    conn: Conn, org_id: uuid.UUID | str, client: Any, *, since: datetime | None = None,
    margin: timedelta = DEFAULT_MARGIN,
) -> ReconcileReport:  # fmt: skip
    """:func:`reconcile` of an account whose HubSpot client is already built (tests, benchmarks)."""
    hubspot = crm("hubspot")
    return reconcile(
        conn, org_id, hubspot.lister(client, {}), hubspot.fetcher(client, {}), since=since, margin=margin
    )


def reconcile_attio(
    conn: Conn, org_id: uuid.UUID | str, client: Any, *, custom: Mapping[str, str] | None = None
) -> ReconcileReport:
    """:func:`reconcile` of an account whose Attio client is already built; ``custom`` as the connection's
    ``settings.attio_attributes``."""
    attio, settings = crm("attio"), {"attio_attributes": dict(custom or {})}
    return reconcile(conn, org_id, attio.lister(client, settings), attio.fetcher(client, settings))
