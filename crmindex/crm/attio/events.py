"""Attio webhook deliveries -> an :class:`~crmindex.crm.protocols.EventPlan` (pure; no I/O).

A delivery is ``{"webhook_id", "events": [...]}`` (docs.attio.com, "Webhooks": ``record.created`` /
``.updated`` / ``.deleted`` / ``.merged``; ``id`` names the workspace, the object by id and the record;
``list-entry.created`` / ``.updated`` / ``.deleted``: ``id`` names the list and the entry, beside
``parent_object_id`` and ``parent_record_id``). Events carry ids only, and no time.

Merges today (docs.attio.com webhook reference, record.merged; "Merge two records"): a merge produces a **new**
record and marks both originals merged, so two ``record.merged`` events arrive, both with the new record in
``id.record_id``, each naming one original in ``duplicate_record_id``. An asynchronous merge's new record answers
404 ``merge_in_progress`` until it completes: its hydration retries (:class:`~crmindex.crm.errors.MergeInProgress`),
it is never taken for gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from crmindex.crm.attio.mapping import OBJECT_TYPES_BY_SLUG
from crmindex.crm.protocols import EventPlan


class AttioEventId(BaseModel):
    model_config = ConfigDict(extra="allow")

    workspace_id: str
    object_id: str | None = None
    record_id: str | None = None
    list_id: str | None = None
    entry_id: str | None = None


class AttioEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_type: str
    id: AttioEventId
    duplicate_object_id: str | None = None
    duplicate_record_id: str | None = None
    parent_object_id: str | None = None
    parent_record_id: str | None = None


LIST_ENTRIES = "list_entries"  # the hydration kind of list entries; ids are "<list id>/<entry id>"


def entry_key(list_id: str, entry_id: str) -> str:
    return f"{list_id}/{entry_id}"


def plan_attio(
    events: Sequence[Mapping[str, Any]], object_slugs: Mapping[str, str], received: datetime
) -> EventPlan:
    """Attio events carry ids only, and no time: every record event is refetched (``hydrate``). A deletion is a
    hint too: the record is soft-deleted only when the fetch says it is gone, so a replayed or late
    ``record.deleted`` of a record that exists (restored since, or never deleted) deletes nothing. A merge is
    applied at once (merges are permanent: an original never comes back): the original named by the event points
    at the new record, which is refetched. List entries are refetched too (``list_entries`` hydration)."""
    batch = EventPlan()
    when = received.isoformat()
    for i, ev in batch.events(events, AttioEvent):
        if ev.event_type.startswith("list-entry."):
            if ev.event_type not in ("list-entry.created", "list-entry.updated", "list-entry.deleted"):
                batch.errors.append(f"event {i}: unsupported event type {ev.event_type[:60]!r}")
            elif ev.id.list_id and ev.id.entry_id:
                batch.hydrate[LIST_ENTRIES].add(entry_key(ev.id.list_id, ev.id.entry_id))
            continue
        slug = object_slugs.get(ev.id.object_id or "", ev.id.object_id or "")
        obj = OBJECT_TYPES_BY_SLUG.get(slug)
        if not ev.event_type.startswith("record."):
            continue  # lists, notes, tasks...: not indexed
        if obj is None or not ev.id.record_id:
            continue  # an object we do not index
        if ev.event_type in ("record.created", "record.updated", "record.deleted"):
            batch.hydrate[obj].add(ev.id.record_id)
        elif ev.event_type == "record.merged":
            if ev.duplicate_record_id and ev.duplicate_record_id != ev.id.record_id:
                batch.deletions[obj].append(
                    {
                        "crm_record_id": ev.duplicate_record_id,
                        "occurred_at": when,
                        "merged_into": ev.id.record_id,
                    }
                )
                if obj == "contacts":  # the deals of both now name the new record: refetch them
                    batch.merged_contacts.update({ev.duplicate_record_id, ev.id.record_id})
            batch.hydrate[obj].add(ev.id.record_id)
        else:
            batch.errors.append(f"event {i}: unsupported event type {ev.event_type[:60]!r}")
    return batch


def plan_delivery(body: Any, received_at: datetime, settings: Mapping[str, Any]) -> EventPlan:
    """The :class:`~crmindex.crm.protocols.EventPlanner` of Attio: the connection's ``settings.attio_object_ids``
    (learned by the sync) name the objects."""
    slugs = settings.get("attio_object_ids")
    object_slugs = {str(k): str(v) for k, v in slugs.items()} if isinstance(slugs, dict) else {}
    return plan_attio(body.get("events", []), object_slugs, received_at)
