"""Processing the webhook inbox: events -> order-independent SQL appliers, and hydration jobs.

Each inbox row (one delivery) is handled in one transaction. The CRM's event planner (its entry in
:mod:`crmindex.crm.registry`: ``crmindex.crm.hubspot.events``, ``crmindex.crm.attio.events``) reads the delivery
into an :class:`~crmindex.crm.protocols.EventPlan`; :func:`apply_plan` applies it. Events are hints: field changes
are applied per field by event time; creations, restores, merges' primaries and records missing from the index
are fetched from the CRM by ``hydrate`` jobs (``crm.enqueue_hydration``: queue core, coalesced per record, batch
reads of <= 100).
A delivery that cannot be applied (unknown subscription type, a bad value) is kept with its error
(dead letter) — what could be applied was applied — and can be requeued after a fix; it never blocks
other deliveries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from crmindex.crm.protocols import ENTITY_TYPE_OF, EventPlan
from crmindex.crm.registry import crm
from crmindex.freshness.metadata import note_ids
from crmindex.index.writes import INDEX_TABLES, apply_deletions
from crmindex.platform.db import Conn
from crmindex.platform.queue import Job, Outcome, Queue

log = logging.getLogger("crmindex.webhooks")

INBOX = Queue("crm.webhook_inbox")
HYDRATE_KIND = "hydrate"


class EventError(Exception):
    """Some events of a delivery could not be applied (the message lists them)."""


def apply_plan(conn: Conn, org_id: str, source: str, batch: EventPlan) -> dict[str, int]:
    """Run a delivery's plan in the current transaction; records missing from the index are hydrated."""
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
        apply_deletions(conn, obj, org_id, source, items)
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
            (org_id, source, ENTITY_TYPE_OF[obj], Jsonb(items)),
        )
    if batch.deal_contacts:
        conn.execute(
            "SELECT crm.apply_deal_associations(%s, %s, %s)", (org_id, source, Jsonb(batch.deal_contacts))
        )
        stats["associations"] += len(batch.deal_contacts)
    if batch.merged_contacts:
        batch.hydrate["deals"].update(linked_deals(conn, org_id, source, sorted(batch.merged_contacts)))
    # an owner or deal stage the org's vocabulary does not know: ask for a refresh (crmindex.freshness.metadata)
    owners = [str(c["value"]) for cs in batch.changes.values() for c in cs
              if c.get("column") == "owner_crm_id" and c.get("value")]  # fmt: skip
    stages = [{"pipeline": None, "stage": str(c["value"])} for c in batch.changes.get("deals", [])
              if c.get("column") == "stage" and c.get("value")]  # fmt: skip
    note_ids(conn, org_id, source, owners, stages)
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
    """Queue a CRM fetch of these records (``crm.enqueue_hydration``, the one way: coalesced, one open job per
    record)."""
    if ids:
        conn.execute("SELECT crm.enqueue_hydration(%s, %s, %s, %s)", (org_id, source, object_type, list(ids)))


def _settings(conn: Conn, org_id: str, source: str) -> dict[str, Any]:
    """The settings of the connection a delivery was routed to (``{}`` when it is gone)."""
    row = conn.execute(
        "SELECT settings FROM crm.connection WHERE org_id = %s AND crm_source = %s", (org_id, source)
    ).fetchone()
    value = None if row is None else row[0]
    return value if isinstance(value, dict) else {}


def process_inbox(conn: Conn, jobs: Sequence[Job]) -> Mapping[Job, Outcome]:
    """Queue-core handler for ``crm.webhook_inbox``: apply each delivery in its own transaction."""
    outcomes: dict[Job, Outcome] = {}
    settings: dict[tuple[str, str], dict[str, Any]] = {}
    for job in jobs:
        row = job.row
        org_id, source = str(job.org_id), str(row["crm_source"])
        try:
            body = json.loads(str(row["body"]))
            received = datetime.fromisoformat(str(row["received_at"]))
            if (org_id, source) not in settings:
                settings[(org_id, source)] = _settings(conn, org_id, source)
            batch = crm(source).plan_events(body, received, settings[(org_id, source)])
            with conn.transaction():
                apply_plan(conn, org_id, source, batch)
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
