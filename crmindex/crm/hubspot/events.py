"""HubSpot webhook deliveries -> an :class:`~crmindex.crm.protocols.EventPlan` (pure; no I/O).

A delivery is a JSON array of events (developers.hubspot.com, "Webhooks API": ``subscriptionType``
``contact.propertyChange`` / ``.creation`` / ``.deletion`` / ``.privacyDeletion`` / ``.restore`` / ``.merge`` /
``.associationChange``, generic ``object.*`` events with ``objectTypeId``; ``occurredAt`` in epoch ms). Events are
hints: field changes are applied per field by event time; creations, restores and merges' primaries are fetched.

* A merge may create a new record: ``newObjectId`` names the record the merge left ("separate from
  primaryObjectId because in some cases a new object is created from the result of a merge", changelog
  "new-subscription-types-for-webhooks"). When it differs from the primary, the primary is gone too: both
  originals are deleted as merged into the new id, which is fetched.
* Generic ``object.associationChange`` events (the format new apps receive: changelog
  "public-beta-generic-webhook-subscriptions") carry no ``objectTypeId`` and no ``associationType`` name but
  ``fromObjectTypeId`` / ``toObjectTypeId`` and ``associationTypeId``: the pair comes from the type ids, and
  primary-ness from the primary type ids (contact -> company 1, deal -> company 5; reference A1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crmindex.crm.hubspot.models import PRIMARY_TYPE_IDS
from crmindex.crm.hubspot.properties import EVENT_PREFIXES, OBJECT_TYPE_IDS, property_change
from crmindex.crm.protocols import EventPlan


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
    newObjectId: int | str | None = None
    associationType: str | None = None
    fromObjectId: int | str | None = None
    toObjectId: int | str | None = None
    associationRemoved: bool | None = None
    fromObjectTypeId: str | None = None
    toObjectTypeId: str | None = None
    associationTypeId: int | None = None

    @property
    def occurred(self) -> datetime:
        return datetime.fromtimestamp(self.occurredAt / 1000, tz=UTC)


def _object_type(ev: HubSpotEvent) -> str | None:
    prefix = ev.subscriptionType.split(".", 1)[0]
    if prefix == "object":
        if ev.subscriptionType == "object.associationChange" and ev.objectTypeId is None:
            return OBJECT_TYPE_IDS.get(ev.fromObjectTypeId or "")
        return OBJECT_TYPE_IDS.get(ev.objectTypeId or "")
    return EVENT_PREFIXES.get(prefix)


def _association_kind(ev: HubSpotEvent) -> tuple[str, bool | None]:
    """(``CONTACT_TO_COMPANY``-style name, whether the association is primary: None when the event does not say).
    Legacy events name it (``associationType``, ``isPrimaryAssociation``); generic ones give object type ids and
    the association's type id."""
    if ev.associationType:
        primary = (ev.model_extra or {}).get("isPrimaryAssociation")
        return ev.associationType.upper(), primary if isinstance(primary, bool) else None
    a = OBJECT_TYPE_IDS.get(ev.fromObjectTypeId or "")
    b = OBJECT_TYPE_IDS.get(ev.toObjectTypeId or "")
    if a is None or b is None:
        return "", None
    name = f"{ENTITY[a]}_TO_{ENTITY[b]}".upper()
    if ev.associationTypeId is None:
        return name, None
    return name, PRIMARY_TYPE_IDS.get((a, b)) == ev.associationTypeId


ENTITY = {"contacts": "contact", "companies": "company", "deals": "deal"}


def _association(ev: HubSpotEvent, batch: EventPlan) -> None:
    kind, primary = _association_kind(ev)
    a, b = str(ev.fromObjectId), str(ev.toObjectId)
    removed = bool(ev.associationRemoved)
    when = ev.occurred.isoformat()
    if kind in ("CONTACT_TO_COMPANY", "COMPANY_TO_CONTACT"):
        contact, company = (a, b) if kind.startswith("CONTACT") else (b, a)
        change: dict[str, Any] = {"crm_record_id": contact, "column": "company_crm_id", "occurred_at": when}
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
            batch.changes["deals"].append(change)
        elif primary is not False:  # a secondary company is not the deal's (primary) company
            change["value"] = company
            batch.changes["deals"].append(change)
        if (
            not ev.associationType
        ):  # generic: one event per type id, in any order: the deal says which is primary
            batch.hydrate["deals"].add(deal)
    # other association types (tickets, line items...) are not indexed


def plan_hubspot(events: Sequence[Mapping[str, Any]]) -> EventPlan:
    """Turn a delivery's events into grouped database work (pure; no I/O)."""
    batch = EventPlan()
    for i, ev in batch.events(events, HubSpotEvent):
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
            result = str(ev.newObjectId or primary)  # the record the merge left (a new one, or the primary)
            gone = [str(m) for m in ev.mergedObjectIds or []]
            if primary and primary != result:
                gone.append(primary)
            for merged in dict.fromkeys(gone):
                if merged != result:
                    batch.deletions[obj].append(
                        {"crm_record_id": merged, "occurred_at": when, "merged_into": result}
                    )
            if result:
                batch.hydrate[obj].add(result)
                if obj == "contacts":
                    batch.merged_contacts.update([result, *gone])
        elif action == "associationChange":
            _association(ev, batch)
        else:
            batch.errors.append(f"event {i}: unsupported subscription type {ev.subscriptionType[:60]!r}")
    return batch


def plan_delivery(body: Any, received_at: datetime, settings: Mapping[str, Any]) -> EventPlan:
    """The :class:`~crmindex.crm.protocols.EventPlanner` of HubSpot: ``body`` is the delivery's event array."""
    return plan_hubspot(body)
