"""The index's lifecycle-stage vocabulary and HubSpot's internal values, which every CRM maps to.

Local stages are the brief's (subscriber, lead, mql, sql, opportunity, customer, evangelist, other); HubSpot's
internal values are the defaults of its ``lifecyclestage`` property. Attio has no standard lifecycle attribute:
a connection maps one (settings.attio_attributes), and its values are read with the same vocabulary.
"""

from __future__ import annotations

# local lifecycle stages <-> HubSpot internal values (unknown values pass through lower-cased)
LIFECYCLE_TO_HUBSPOT: dict[str, str] = {
    "subscriber": "subscriber",
    "lead": "lead",
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "opportunity": "opportunity",
    "customer": "customer",
    "evangelist": "evangelist",
    "other": "other",
}
LIFECYCLE_FROM_HUBSPOT: dict[str, str] = {v: k for k, v in LIFECYCLE_TO_HUBSPOT.items()}


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
