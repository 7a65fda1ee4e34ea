"""Processing the webhook inbox: events -> order-independent SQL appliers, and hydration jobs.

Each inbox row (one delivery) is handled in one transaction. Events are hints: field changes are applied
per field by event time; creations, restores, merges' primaries and records missing from the index are
fetched from the CRM by ``hydrate`` jobs (queue core, coalesced per record, batch reads of <= 100).
A delivery that cannot be applied (unknown subscription type, a bad value) is kept with its error
(dead letter) — what could be applied was applied — and can be requeued after a fix; it never blocks
other deliveries.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crmindex.crm.hubspot.properties import (
    ENTITY_TYPES,
    EVENT_PREFIXES,
    INDEX_TABLES,
    OBJECT_TYPE_IDS,
    property_change,
)
from crmindex.platform.db import Conn
from crmindex.platform.queue import Job, Outcome, Queue

log = logging.getLogger("crmindex.webhooks")

INBOX = Queue("crm.webhook_inbox")
HYDRATE_KIND = "hydrate"


class HubSpotEvent(BaseModel):
    """One event of a HubSpot webhook delivery (fields beyond these are kept but unused)."""

    model_config = ConfigDict(extra="allow")

    subscriptionType: str
    objectId: int | str | None = None
    # epoch milliseconds, 1970..9999 (anything else cannot be a datetime)
    occurredAt: int = Field(ge=0, le=253_402_300_799_999)
    portalId: int | str
    propertyName: str | None = None
    propertyValue: str | None = None
    objectTypeId: str | None = None
    changeSource: str | None = None
    sourceId: str | None = None
    appId: int | str | None = None
    primaryObjectId: int | str | None = None
    mergedObjectIds: list[int | str] | None = None
    associationType: str | None = None
    fromObjectId: int | str | None = None
    toObjectId: int | str | None = None
    associationRemoved: bool | None = None

    @property
    def occurred(self) -> datetime:
        return datetime.fromtimestamp(self.occurredAt / 1000, tz=UTC)


class AttioEventId(BaseModel):
    model_config = ConfigDict(extra="allow")

    workspace_id: str
    object_id: str | None = None
    record_id: str | None = None


class AttioEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_type: str
    id: AttioEventId
    duplicate_object_id: str | None = None
    duplicate_record_id: str | None = None


class EventError(Exception):
    """Some events of a delivery could not be applied (the message lists them)."""


@dataclass
class _Batch:
    """What one delivery asks the database to do, grouped by object type."""

    changes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    deletions: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    restores: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    deal_contacts: list[dict[str, Any]] = field(default_factory=list)
    # raw CRM property changes, to drop superseded fields from pending write-backs
    crm_changes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    hydrate: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # contacts merged (both sides): the CRM moved their deal associations, so their deals are refetched
    merged_contacts: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def _object_type(ev: HubSpotEvent) -> str | None:
    prefix = ev.subscriptionType.split(".", 1)[0]
    if prefix == "object":
        return OBJECT_TYPE_IDS.get(ev.objectTypeId or "")
    return EVENT_PREFIXES.get(prefix)


def _association(ev: HubSpotEvent, batch: _Batch) -> None:
    kind = (ev.associationType or "").upper()
    a, b = str(ev.fromObjectId), str(ev.toObjectId)
    removed = bool(ev.associationRemoved)
    when = ev.occurred.isoformat()
    if kind in ("CONTACT_TO_COMPANY", "COMPANY_TO_CONTACT"):
        contact, company = (a, b) if kind.startswith("CONTACT") else (b, a)
        change: dict[str, Any] = {"crm_record_id": contact, "column": "company_crm_id", "occurred_at": when}
        primary = (ev.model_extra or {}).get("isPrimaryAssociation")
        if removed:
            change.update(value=None, expect=company)
            batch.changes["contacts"].append(change)
        elif primary is not False:  # a secondary company is not the contact's company
            change["value"] = company
            batch.changes["contacts"].append(change)
        # the primary company is a property of the contact (associatedcompanyid) that the event only
        # hints at (a removal may promote another company, events may arrive out of order): refetch it
        batch.hydrate["contacts"].add(contact)
    elif kind in ("DEAL_TO_CONTACT", "CONTACT_TO_DEAL"):
        deal, contact = (a, b) if kind.startswith("DEAL") else (b, a)
        batch.deal_contacts.append(
            {"deal_crm_id": deal, "contact_crm_id": contact, "removed": removed, "occurred_at": when}
        )
    elif kind in ("DEAL_TO_COMPANY", "COMPANY_TO_DEAL"):
        deal, company = (a, b) if kind.startswith("DEAL") else (b, a)
        change = {"crm_record_id": deal, "column": "company_crm_id", "occurred_at": when}
        if removed:
            change.update(value=None, expect=company)
        else:
            change["value"] = company
        batch.changes["deals"].append(change)
    # other association types (tickets, line items...) are not indexed


def plan_hubspot(events: Sequence[Mapping[str, Any]]) -> _Batch:
    """Turn a delivery's events into grouped database work (pure; no I/O)."""
    batch = _Batch()
    for i, raw in enumerate(events):
        try:
            ev = HubSpotEvent.model_validate(raw)
        except ValidationError as exc:
            batch.errors.append(f"event {i}: invalid ({exc.error_count()} problems)")
            continue
        obj = _object_type(ev)
        action = ev.subscriptionType.split(".", 1)[-1]
        if obj is None:
            batch.errors.append(f"event {i}: unsupported subscription type {ev.subscriptionType[:60]!r}")
            continue
        rid = None if ev.objectId is None else str(ev.objectId)
        when = ev.occurred.isoformat()
        if action == "propertyChange" and rid and ev.propertyName:
            try:
                mapped = property_change(obj, ev.propertyName, ev.propertyValue)
            except ValueError as exc:
                batch.errors.append(f"event {i}: {ev.propertyName}: {exc}")
                continue
            batch.crm_changes[obj].append(
                {
                    "crm_record_id": rid,
                    "property": ev.propertyName,
                    "value": ev.propertyValue,
                    "occurred_at": when,
                }
            )
            if mapped is not None:
                column, value = mapped
                batch.changes[obj].append(
                    {"crm_record_id": rid, "column": column, "value": value, "occurred_at": when}
                )
        elif action == "creation" and rid:
            batch.hydrate[obj].add(rid)
        elif action in ("deletion", "privacyDeletion") and rid:
            batch.deletions[obj].append(
                {"crm_record_id": rid, "occurred_at": when, "privacy": action == "privacyDeletion"}
            )
        elif action == "restore" and rid:
            batch.restores[obj].append({"crm_record_id": rid, "occurred_at": when})
            batch.hydrate[obj].add(rid)
        elif action == "merge":
            primary = str(ev.primaryObjectId or ev.objectId or "")
            for merged in ev.mergedObjectIds or []:
                if str(merged) != primary:
                    batch.deletions[obj].append(
                        {"crm_record_id": str(merged), "occurred_at": when, "merged_into": primary}
                    )
            if primary:
                batch.hydrate[obj].add(primary)
                if obj == "contacts":
                    batch.merged_contacts.update([primary, *(str(m) for m in ev.mergedObjectIds or [])])
        elif action == "associationChange":
            _association(ev, batch)
        else:
            batch.errors.append(f"event {i}: unsupported subscription type {ev.subscriptionType[:60]!r}")
    return batch


ATTIO_OBJECTS = {"people": "contacts", "companies": "companies", "deals": "deals"}


def plan_attio(
    events: Sequence[Mapping[str, Any]], object_slugs: Mapping[str, str], received: datetime
) -> _Batch:
    """Attio events carry ids only, and no time: every record event is refetched (``hydrate``). A deletion is a
    hint too: the record is soft-deleted only when the fetch says it is gone, so a replayed or late
    ``record.deleted`` of a record that exists (restored since, or never deleted) deletes nothing. A merge is
    applied at once (merges are permanent: the duplicate never comes back), its primary refetched."""
    batch = _Batch()
    when = received.isoformat()
    for i, raw in enumerate(events):
        try:
            ev = AttioEvent.model_validate(raw)
        except ValidationError as exc:
            batch.errors.append(f"event {i}: invalid ({exc.error_count()} problems)")
            continue
        slug = object_slugs.get(ev.id.object_id or "", ev.id.object_id or "")
        obj = ATTIO_OBJECTS.get(slug)
        if not ev.event_type.startswith("record."):
            continue  # lists, notes, tasks...: not indexed
        if obj is None or not ev.id.record_id:
            continue  # an object we do not index
        if ev.event_type in ("record.created", "record.updated", "record.deleted"):
            batch.hydrate[obj].add(ev.id.record_id)
        elif ev.event_type == "record.merged":
            if ev.duplicate_record_id:
                batch.deletions[obj].append(
                    {
                        "crm_record_id": ev.duplicate_record_id,
                        "occurred_at": when,
                        "merged_into": ev.id.record_id,
                    }
                )
            batch.hydrate[obj].add(ev.id.record_id)
        else:
            batch.errors.append(f"event {i}: unsupported event type {ev.event_type[:60]!r}")
    return batch


def apply_batch(conn: Conn, org_id: str, source: str, batch: _Batch) -> dict[str, int]:
    """Run a planned batch in the current transaction; records missing from the index are hydrated."""
    stats = {"changes": 0, "deletions": 0, "restores": 0, "associations": 0, "hydrate": 0}
    for obj, changes in batch.changes.items():
        rows = conn.execute(
            "SELECT crm_record_id, outcome FROM crm.apply_field_changes(%s, %s, %s, %s)",
            (org_id, source, INDEX_TABLES[obj], Jsonb(changes)),
        ).fetchall()
        stats["changes"] += len(changes) - len(rows)
        batch.hydrate[obj].update(str(r[0]) for r in rows if r[1] == "missing")
        if obj == "contacts":
            # Path 1: a change to an already-materialized contact refreshes its tier-2 record
            batch.hydrate[obj].update(
                str(r[0])
                for r in conn.execute(
                    "SELECT crm_record_id FROM crm.contact_index WHERE org_id = %s AND crm_source = %s "
                    "AND crm_record_id = ANY(%s) AND is_materialized",
                    (org_id, source, sorted({str(c["crm_record_id"]) for c in changes})),
                )
            )
    for obj, items in batch.deletions.items():
        conn.execute(
            "SELECT * FROM crm.apply_deletions(%s, %s, %s, %s)",
            (org_id, source, INDEX_TABLES[obj], Jsonb(items)),
        )
        stats["deletions"] += len(items)
    for obj, items in batch.restores.items():
        conn.execute(
            "SELECT * FROM crm.apply_restores(%s, %s, %s, %s)",
            (org_id, source, INDEX_TABLES[obj], Jsonb(items)),
        )
        stats["restores"] += len(items)
    for obj, items in batch.crm_changes.items():
        conn.execute(
            "SELECT crm.writeback_drop_superseded(%s, %s, %s, %s)",
            (org_id, source, ENTITY_TYPES[obj], Jsonb(items)),
        )
    if batch.deal_contacts:
        conn.execute(
            "SELECT crm.apply_deal_associations(%s, %s, %s)", (org_id, source, Jsonb(batch.deal_contacts))
        )
        stats["associations"] += len(batch.deal_contacts)
    if batch.merged_contacts:
        batch.hydrate["deals"].update(linked_deals(conn, org_id, source, sorted(batch.merged_contacts)))
    for obj, ids in batch.hydrate.items():
        if ids:
            enqueue_hydration(conn, org_id, source, obj, sorted(ids))
            stats["hydrate"] += len(ids)
    return stats


def linked_deals(conn: Conn, org_id: str, source: str, contact_ids: Sequence[str]) -> list[str]:
    """The deals the index links to these contacts."""
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT DISTINCT deal_crm_id FROM crm.deal_contact WHERE org_id = %s AND crm_source = %s "
            "AND contact_crm_id = ANY(%s) AND NOT removed",
            (org_id, source, list(contact_ids)),
        )
    ]


def enqueue_hydration(conn: Conn, org_id: str, source: str, object_type: str, ids: Sequence[str]) -> None:
    """Queue a CRM fetch of these records (coalesced: one open job per record)."""
    items = [
        {"dedupe_key": f"{object_type}:{rid}", "payload": {"object_type": object_type, "crm_record_id": rid}}
        for rid in ids
    ]
    conn.execute("SELECT crm.enqueue_jobs(%s, %s, %s, %s)", (org_id, HYDRATE_KIND, source, Jsonb(items)))


def _attio_slugs(conn: Conn, org_id: str) -> dict[str, str]:
    row = conn.execute(
        "SELECT settings -> 'attio_object_ids' FROM crm.connection WHERE org_id = %s AND crm_source = 'attio'",
        (org_id,),
    ).fetchone()
    value = None if row is None else row[0]
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def process_inbox(conn: Conn, jobs: Sequence[Job]) -> Mapping[Job, Outcome]:
    """Queue-core handler for ``crm.webhook_inbox``: apply each delivery in its own transaction."""
    outcomes: dict[Job, Outcome] = {}
    for job in jobs:
        row = job.row
        org_id, source = str(job.org_id), str(row["crm_source"])
        try:
            events = json.loads(str(row["body"]))
            if source == "hubspot":
                batch = plan_hubspot(events)
            else:
                received = datetime.fromisoformat(str(row["received_at"]))
                batch = plan_attio(events.get("events", []), _attio_slugs(conn, org_id), received)
            with conn.transaction():
                apply_batch(conn, org_id, source, batch)
            if batch.errors:
                outcomes[job] = Outcome.dead("; ".join(batch.errors)[:4000])
            else:
                outcomes[job] = Outcome.done()
        except (
            ValueError,
            TypeError,
            AttributeError,
            ArithmeticError,
            RecursionError,
            psycopg.DataError,  # every SQLSTATE class 22 error (errors.DataException is only 22000)
        ) as exc:
            # a delivery that cannot be read or applied is kept with its error; the others go on
            outcomes[job] = Outcome.dead(f"cannot apply: {exc}"[:4000])
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            log.warning("inbox %s/%s failed: %s", org_id, job.id, exc)
            outcomes[job] = Outcome.retry(f"{type(exc).__name__}: {exc}"[:4000])
    return outcomes
