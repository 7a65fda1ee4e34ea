"""HubSpot's CRM model as the fake serves it: object types and their aliases, the properties (returned by
default, read-only, writable, enumeration options, typed), association type ids, and time as HubSpot
writes it (ISO 8601 with milliseconds) and reads it (ISO 8601 or epoch milliseconds)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

KINDS = ("contacts", "companies", "deals")
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal"}
ALIASES = {"contact": "contacts", "company": "companies", "deal": "deals", "0-1": "contacts", "0-2": "companies",
           "0-3": "deals"}  # fmt: skip
OBJECT_TYPE_ID = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
LASTMOD = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate"}
DEFAULT_PROPERTIES = {
    "contacts": ["firstname", "lastname", "email", "lastmodifieddate", "hs_object_id", "createdate"],
    "companies": ["name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"],
    "deals": ["dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate",
              "hs_object_id"],
}  # fmt: skip
# read-only: HubSpot's own stamps, and the activity rollups it calculates (notes_last_contacted,
# hs_last_sales_activity_timestamp: knowledge.hubspot.com "HubSpot's default contact properties")
READ_ONLY = {"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_merged_object_ids",
             "hs_createdate", "notes_last_contacted", "hs_last_sales_activity_timestamp"}  # fmt: skip
WRITABLE = {
    "contacts": {"firstname", "lastname", "email", "phone", "company", "jobtitle", "lifecyclestage", "hs_lead_status",
                 "associatedcompanyid", "hubspot_owner_id", "city", "country", "website", "mobilephone", "state",
                 "address", "zip", "industry", "annualrevenue", "numemployees"},
    "companies": {"name", "domain", "industry", "numberofemployees", "annualrevenue", "city", "country", "state",
                  "phone", "website", "description", "hubspot_owner_id", "lifecyclestage", "type"},
    "deals": {"dealname", "dealstage", "pipeline", "amount", "closedate", "hubspot_owner_id", "hs_is_closed",
              "dealtype", "description", "hs_priority"},
}  # fmt: skip
# the default lifecycle stages in their order (reference A4); an account may edit them (changelog
# "upcoming-customized-lifecycle-stages-for-contacts-and-companies"): the fake serves the defaults
LIFECYCLE_ORDER = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
                   "evangelist", "other")  # fmt: skip
LIFECYCLE_OPTIONS = set(LIFECYCLE_ORDER)
LEAD_STATUS_OPTIONS = {"NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT",
                       "CONNECTED", "BAD_TIMING"}  # fmt: skip
NUMERIC = {"amount", "numberofemployees", "annualrevenue", "hs_object_id", "numemployees"}
# Properties an update or upsert may name as ``idProperty``: unique-value ones only. Anything else (company
# ``domain``, and ``hs_object_id`` itself) is refused with 400 "Unable to perform update/upsert by non-unique 0-2
# property domain in portal ID ..." (HubSpot/hubspot-api-nodejs#548; segmentio/action-destinations#3957 quotes the
# same answer for hs_object_id). Reads accept ``hs_object_id`` (the record id itself).
UNIQUE_ID_PROPERTIES = {"contacts": {"email"}, "companies": set[str](), "deals": set[str]()}
DATES = {"createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate", "hs_createdate", "notes_last_contacted",
         "hs_last_sales_activity_timestamp"}  # fmt: skip
# association type ids: (from, to) -> (unlabeled typeId, primary typeId | None)
ASSOC_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "contacts"): (3, None),
    ("contacts", "deals"): (4, None),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
}


def object_type(name: str) -> str:
    """``contacts`` for ``contact``, ``0-1`` or ``contacts`` (and so on); an unknown name as given."""
    return ALIASES.get(name, name)


def iso_ms(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def now_ms() -> int:
    return int(time.time() * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def dt_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def parse_ms(value: Any) -> int | None:
    """Epoch milliseconds of a property value or filter value (epoch ms, or ISO 8601); None when neither."""
    if value is None or value == "":
        return None
    s = str(value).strip()
    if s.lstrip("-").isdigit():
        return int(s)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt_ms(dt)  # integer arithmetic: dt.timestamp() * 1000 is a float and read 16.205 s as 16204 ms
