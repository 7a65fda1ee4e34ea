"""CRM payloads -> index rows (dicts keyed by the index tables' own column names).

HubSpot uses the one property table of :mod:`crmindex.crm.hubspot_properties` (also used by webhooks and
write-back). A property the CRM did not return is left out of the row (the stored value stays); a property
returned empty maps to None (clears it). Datetimes are ISO-8601 strings (rows go to JSON).

Attio has no ``updated_at``: ``crm_updated_at`` is the newest ``active_from``/``active_until`` of the
record's values (the last time any attribute changed), else ``created_at``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from crmindex.crm.hubspot_properties import (
    LIFECYCLE_FROM_HUBSPOT,
    LIFECYCLE_TO_HUBSPOT,
    PROPERTY_COLUMNS,
)
from crmindex.crm.models import AttioRecord, HubSpotObject

__all__ = [
    "LIFECYCLE_FROM_HUBSPOT",
    "LIFECYCLE_TO_HUBSPOT",
    "attio_company_to_row",
    "attio_deal_to_row",
    "attio_person_to_row",
    "hubspot_company_to_row",
    "hubspot_contact_to_row",
    "hubspot_deal_to_row",
    "hubspot_to_row",
    "lifecycle_from_hubspot",
    "lifecycle_to_hubspot",
]

log = logging.getLogger("crmindex.crm.mapping")


def lifecycle_from_hubspot(value: str | None) -> str | None:
    """HubSpot internal lifecycle value -> local value (unknown values pass through lower-cased)."""
    if value is None or not value.strip():
        return None
    v = value.strip().lower()
    return LIFECYCLE_FROM_HUBSPOT.get(v, v)


def lifecycle_to_hubspot(value: str | None) -> str | None:
    """Local lifecycle value -> HubSpot internal value (unknown values pass through lower-cased)."""
    if value is None or not value.strip():
        return None
    v = value.strip().lower()
    return LIFECYCLE_TO_HUBSPOT.get(v, v)


def _base_row(obj: HubSpotObject) -> dict[str, Any]:
    return {
        "crm_record_id": obj.id,
        "crm_created_at": obj.created_at.isoformat(),
        "crm_updated_at": obj.updated_at.isoformat(),
        "deleted_at": (obj.archived_at or obj.updated_at).isoformat() if obj.archived else None,
    }


def hubspot_to_row(object_type: str, obj: HubSpotObject) -> dict[str, Any]:
    """The index row of a HubSpot object of ``object_type`` (contacts, companies, deals)."""
    row = _base_row(obj)
    for prop, (column, convert) in PROPERTY_COLUMNS[object_type].items():
        if prop not in obj.properties:
            continue
        try:
            row[column] = convert(obj.properties[prop])
        except ValueError as exc:
            log.warning("hubspot %s %s: property %s not converted (%s)", object_type, obj.id, prop, exc)
            row[column] = None
    return row


def hubspot_contact_to_row(obj: HubSpotObject, *, company_crm_id: str | None = None) -> dict[str, Any]:
    """A contact row; ``company_crm_id`` (from associations) overrides ``associatedcompanyid``."""
    row = hubspot_to_row("contacts", obj)
    if company_crm_id is not None:
        row["company_crm_id"] = company_crm_id
    return row


def hubspot_company_to_row(obj: HubSpotObject) -> dict[str, Any]:
    return hubspot_to_row("companies", obj)


def hubspot_deal_to_row(
    obj: HubSpotObject,
    *,
    contact_crm_ids: Iterable[str] | None = None,
    company_crm_id: str | None = None,
) -> dict[str, Any]:
    """A deal row; associations come from v4 batch reads (or inline ``associations`` when present)."""
    row = hubspot_to_row("deals", obj)
    contacts = list(contact_crm_ids) if contact_crm_ids is not None else None
    if contacts is None and obj.associations is not None and "contacts" in obj.associations:
        contacts = obj.associated_ids("contacts")
    if contacts is not None:
        row["contact_crm_ids"] = sorted(set(contacts), key=_id_key)
    if company_crm_id is None and obj.associations is not None and "companies" in obj.associations:
        ids = obj.associated_ids("companies")
        company_crm_id = ids[0] if ids else None
    if company_crm_id is not None:
        row["company_crm_id"] = company_crm_id
    return row


def _id_key(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)


# ----------------------------------------------------------------------------------------- Attio


def _attio_base(rec: AttioRecord) -> dict[str, Any]:
    changed = rec.last_changed_at()
    updated = max(changed, rec.created_at) if changed is not None else rec.created_at
    return {
        "crm_record_id": rec.record_id,
        "crm_created_at": rec.created_at.isoformat(),
        "crm_updated_at": updated.isoformat(),
        "deleted_at": None,
    }


def attio_person_to_row(
    rec: AttioRecord,
    *,
    company_names: Mapping[str, str] | None = None,
    custom: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A contact row from an Attio person.

    ``company_names`` maps company record ids to names (people only reference their company);
    ``custom`` maps index columns without a standard Attio attribute (``lifecycle_stage``, ``lead_status``)
    to the workspace's attribute slugs (the connection's ``settings.attio_attributes``).
    """
    row = _attio_base(rec)
    emails = rec.email_addresses
    phones = rec.phone_numbers
    company = rec.company_ref
    row.update(
        first_name=rec.first_name,
        last_name=rec.last_name,
        email=emails[0] if emails else None,
        phone=phones[0] if phones else None,
        job_title=rec.job_title,
        company_crm_id=company[1] if company else None,
    )
    if company and company_names is not None and company[1] in company_names:
        row["company_name"] = company_names[company[1]]
    for column, slug in (custom or {}).items():
        value = rec.text(slug)
        row[column] = lifecycle_from_hubspot(value) if column == "lifecycle_stage" else value
    return row


def attio_company_to_row(rec: AttioRecord) -> dict[str, Any]:
    """A company row from an Attio company (industry = first category; Attio has no industry attribute)."""
    row = _attio_base(rec)
    domains = rec.domains
    categories = rec.categories
    loc = rec.location or {}
    row.update(
        name=rec.name,
        domain=domains[0] if domains else None,
        industry=categories[0] if categories else None,
        city=loc.get("locality") or None,
        country=loc.get("country_code") or None,
    )
    return row


def attio_deal_to_row(rec: AttioRecord) -> dict[str, Any]:
    row = _attio_base(rec)
    value = rec.first("value")
    company = rec.references("associated_company")
    row.update(
        name=rec.name,
        stage=rec.text("stage"),
        amount=None if value is None or value.get("currency_value") is None else str(value["currency_value"]),
        owner_crm_id=rec.text("owner"),
        company_crm_id=company[0] if company else None,
        contact_crm_ids=rec.references("associated_people"),
    )
    return row
