"""HubSpot objects -> index rows (dicts keyed by the index tables' own column names).

One property table (:mod:`crmindex.crm.hubspot.properties`, also used by webhooks and write-back). A property
the CRM did not return is left out of the row (the stored value stays); a property returned empty maps to None
(clears it). Datetimes are ISO-8601 strings (rows go to JSON).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from crmindex.crm.hubspot.models import HubSpotObject
from crmindex.crm.hubspot.properties import PROPERTY_COLUMNS

log = logging.getLogger("crmindex.crm.mapping")


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
    """A deal row; associations come from v4 batch reads, or from the inline ``associations`` the listing
    returned (the primary company is the one listed as ``deal_to_company``, beside ``deal_to_company_unlabeled``).
    Inline lists cut short by paging are not used (the caller reads those deals' associations whole)."""
    row = hubspot_to_row("deals", obj)
    inline = obj.associations is not None and obj.associations_complete("contacts", "companies")
    contacts = list(contact_crm_ids) if contact_crm_ids is not None else None
    if contacts is None and inline:
        contacts = obj.associated_ids("contacts")
    if contacts is not None:
        row["contact_crm_ids"] = sorted(set(contacts), key=_id_key)
    if company_crm_id is None and inline:
        company_crm_id = obj.primary_associated_id("companies", "deal_to_company")
        if company_crm_id is None and contacts is not None and contact_crm_ids is None:
            row["company_crm_id"] = None  # listed without companies: the deal has none
    if company_crm_id is not None:
        row["company_crm_id"] = company_crm_id
    return row


def hubspot_object_to_row(object_type: str, obj: HubSpotObject) -> dict[str, Any]:
    """The index row of any HubSpot object (deals with the associations it carries inline, if any)."""
    if object_type == "deals":
        return hubspot_deal_to_row(obj)
    return hubspot_to_row(object_type, obj)


def _id_key(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)
