"""HubSpot property names -> index columns, and value conversion (reading HubSpot objects and events).

Used by the sync and batch reads (whole objects) and by webhooks (single ``propertyChange`` events). HubSpot
sends every property value as a string. The write-back direction (local column -> HubSpot property and value)
is mapped in SQL at enqueue time: ``crm.writeback_contact_payload`` in ``sql/writeback/enqueue.sql``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from crmindex.crm.lifecycle import LIFECYCLE_FROM_HUBSPOT
from crmindex.crm.protocols import OBJECT_TYPE_OF
from crmindex.platform.bounds import TEXT_CAP

ObjectType = str  # "contacts" | "companies" | "deals"


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _long_text(value: str | None) -> str | None:
    """A free text cut to the index's text cap (crm.text_cap: 1,000 characters) at a word boundary."""
    v = _text(value)
    if v is None or len(v) <= TEXT_CAP:
        return v
    return v[:TEXT_CAP].rsplit(" ", 1)[0] or v[:TEXT_CAP]


def _lifecycle(value: str | None) -> str | None:
    v = _text(value)
    return None if v is None else LIFECYCLE_FROM_HUBSPOT.get(v.lower(), v.lower())


def _int(value: str | None) -> int | None:
    v = _text(value)
    if v is None:
        return None
    try:
        return int(Decimal(v))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a number: {v[:40]!r}") from exc


def _decimal(value: str | None) -> str | None:
    v = _text(value)
    if v is None:
        return None
    try:
        return str(Decimal(v))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {v[:40]!r}") from exc


def parse_datetime(value: str | int | None) -> datetime | None:
    """HubSpot datetimes: ISO-8601 strings, or ms epochs (as strings or numbers)."""
    if value is None:
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    v = value.strip()
    if not v:
        return None
    dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _datetime_iso(value: str | None) -> str | None:
    dt = parse_datetime(value)
    return None if dt is None else dt.isoformat()


def _date(value: str | None) -> str | None:
    v = _text(value)
    if v is None:
        return None
    if v.isdigit():
        return datetime.fromtimestamp(int(v) / 1000, tz=UTC).date().isoformat()
    return date.fromisoformat(v[:10]).isoformat()


def _bool(value: str | None) -> bool | None:
    v = _text(value)
    return None if v is None else v.lower() == "true"


Converter = Callable[[str | None], object]

# property -> (index column, converter)
PROPERTY_COLUMNS: dict[ObjectType, dict[str, tuple[str, Converter]]] = {
    "contacts": {
        "firstname": ("first_name", _text),
        "lastname": ("last_name", _text),
        "email": ("email", _text),
        "phone": ("phone", _text),
        "company": ("company_name", _text),
        "associatedcompanyid": ("company_crm_id", _text),
        "jobtitle": ("job_title", _text),
        "lifecyclestage": ("lifecycle_stage", _lifecycle),
        "hs_lead_status": ("lead_status", _text),
        "hubspot_owner_id": ("owner_crm_id", _text),
        "country": ("country", _text),
        # HubSpot's own activity rollups (knowledge.hubspot.com, "HubSpot's default contact properties"): "Last
        # contacted" and "Last activity date" (sales activities)
        "notes_last_contacted": ("last_contacted_at", _datetime_iso),
        "hs_last_sales_activity_timestamp": ("last_activity_at", _datetime_iso),
    },
    "companies": {
        "name": ("name", _text),
        "domain": ("domain", _text),
        "industry": ("industry", _text),
        "numberofemployees": ("employee_count", _int),
        "annualrevenue": ("annual_revenue", _decimal),
        "city": ("city", _text),
        "state": ("region", _text),
        "country": ("country", _text),
        "hubspot_owner_id": ("owner_crm_id", _text),
        # filled by HubSpot's company insights for known domains (issue 17: the groups are derived from it)
        "description": ("description", _long_text),
    },
    "deals": {
        "dealname": ("name", _text),
        "dealstage": ("stage", _text),
        "pipeline": ("pipeline", _text),
        "amount": ("amount", _decimal),
        "closedate": ("close_date", _date),
        "hs_is_closed": ("is_closed", _bool),
        "hubspot_owner_id": ("owner_crm_id", _text),
    },
}

# the properties a sync or batch read asks for, per object type
READ_PROPERTIES: dict[ObjectType, list[str]] = {
    "contacts": [*PROPERTY_COLUMNS["contacts"], "createdate", "lastmodifieddate", "hs_merged_object_ids"],
    "companies": [
        *PROPERTY_COLUMNS["companies"],
        "createdate",
        "hs_lastmodifieddate",
        "hs_merged_object_ids",
    ],
    "deals": [*PROPERTY_COLUMNS["deals"], "createdate", "hs_lastmodifieddate", "hs_merged_object_ids"],
}

# objectTypeId of generic object.* events
OBJECT_TYPE_IDS: dict[str, ObjectType] = {"0-1": "contacts", "0-2": "companies", "0-3": "deals"}
# HubSpot event prefixes (contact.propertyChange, ...) are the singular entity names -> object types
EVENT_PREFIXES: Mapping[str, ObjectType] = OBJECT_TYPE_OF


def property_change(object_type: ObjectType, prop: str, value: str | None) -> tuple[str, object] | None:
    """(column, converted value) for a HubSpot property we index; None for properties we do not index.

    Raises ValueError for a value that does not convert (e.g. a non-numeric amount).
    """
    entry = PROPERTY_COLUMNS.get(object_type, {}).get(prop)
    if entry is None:
        return None
    column, convert = entry
    return column, convert(value)
