"""Local index columns -> Attio attribute values for write-back (people and companies).

Attio has no standard lifecycle / lead status attributes: a connection maps them to custom attribute
slugs in its settings (``{"attio_attributes": {"lifecycle_stage": "stage"}}``); without a mapping such a
field is an error at enqueue time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmindex.errors import InvalidInputError

PEOPLE_COLUMNS = ("first_name", "last_name", "email", "phone", "job_title", "lifecycle_stage", "lead_status")
COMPANY_COLUMNS = ("name", "domain")


def people_values(
    fields: Mapping[str, object], current: Mapping[str, object], custom: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Attio ``data.values`` for a person; ``current`` supplies the other half of a name change."""
    custom = custom or {}
    values: dict[str, Any] = {}
    for column, value in fields.items():
        if column in ("first_name", "last_name"):
            first = fields.get("first_name", current.get("first_name"))
            last = fields.get("last_name", current.get("last_name"))
            full = " ".join(str(p) for p in (first, last) if p)
            values["name"] = [{"first_name": first or "", "last_name": last or "", "full_name": full}]
        elif column == "email":
            values["email_addresses"] = [] if value is None else [str(value)]
        elif column == "phone":
            values["phone_numbers"] = [] if value is None else [{"original_phone_number": str(value)}]
        elif column == "job_title":
            values["job_title"] = value
        elif column in custom:
            values[custom[column]] = value
        else:
            raise InvalidInputError(
                f"{column!r} cannot be written to Attio people"
                + (
                    " (map it to an attribute in the connection's settings.attio_attributes)"
                    if column in ("lifecycle_stage", "lead_status")
                    else ""
                )
            )
    return values


def company_values(fields: Mapping[str, object]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column, value in fields.items():
        if column == "name":
            values["name"] = value
        elif column == "domain":
            values["domains"] = [] if value is None else [str(value)]
        else:
            raise InvalidInputError(f"{column!r} cannot be written to Attio companies")
    return values
