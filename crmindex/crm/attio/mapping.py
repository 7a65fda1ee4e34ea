"""Attio records -> index rows (dicts keyed by the index tables' own column names).

Attio has no ``updated_at``: ``crm_updated_at`` is the newest ``active_from``/``active_until`` of the record's
values (the last time any attribute changed), else ``created_at``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from crmindex.crm.attio.models import AttioRecord
from crmindex.crm.lifecycle import lifecycle_from_hubspot

log = logging.getLogger("crmindex.crm.mapping")


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


# the index's object types <-> Attio's standard object slugs
OBJECT_SLUGS: dict[str, str] = {"contacts": "people", "companies": "companies", "deals": "deals"}
OBJECT_TYPES_BY_SLUG: dict[str, str] = {slug: t for t, slug in OBJECT_SLUGS.items()}


def attio_to_row(
    object_type: str,
    rec: AttioRecord,
    *,
    company_names: Mapping[str, str] | None = None,
    custom: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The index row of an Attio record of ``object_type`` (contacts, companies, deals); ``company_names`` and
    ``custom`` as for :func:`attio_person_to_row`."""
    if object_type == "contacts":
        return attio_person_to_row(rec, company_names=company_names, custom=custom)
    if object_type == "companies":
        return attio_company_to_row(rec)
    return attio_deal_to_row(rec)
