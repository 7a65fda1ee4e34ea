"""Attio records -> index rows (dicts keyed by the index tables' own column names), and Attio's metadata (workspace
members, statuses, lists and their entries) -> the rows of ``crm.crm_owner``, ``crm.crm_pipeline_stage``,
``crm.crm_list`` and ``crm.list_entry``.

Attio has no ``updated_at``: ``crm_updated_at`` is the newest ``active_from``/``active_until`` of the record's
values (the last time any attribute changed), else ``created_at``. A GET shows active values only, so a value
cleared since leaves that version where it was (or moves it back): rows read from Attio also carry ``observed_at``,
the time of the read, and the index lets a row whose content differs supersede a stored one that is newer than its
version but older than its read (``crm.observed_versions``, ``sql/index/writes.sql``).

Deals: ``stage`` is the status id of the ``stage`` status attribute and ``pipeline`` that attribute's slug
(``'stage'``), so its label comes from ``crm.crm_pipeline_stage`` (object_type ``'deals'``) as HubSpot's do; the
owner is a workspace member id (``crm.crm_owner``). Attio statuses carry no closed/won flag (docs.attio.com "List
statuses": ``title``, ``is_archived``, ``celebration_enabled``, ``target_time_in_status``): a stage is taken as won
when its title says so or it is celebrated (Attio's default won stage, "Won 🎉", is), lost when its title says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crmindex.crm.attio.models import AttioChoice, AttioEntry, AttioList, AttioMember, AttioRecord
from crmindex.crm.lifecycle import lifecycle_from_hubspot
from crmindex.platform.bounds import TEXT_CAP

log = logging.getLogger("crmindex.crm.mapping")

DEAL_STAGE_ATTRIBUTE = "stage"  # the deals object's status attribute (Attio's standard deals object)


def _attio_base(rec: AttioRecord, observed_at: datetime | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "crm_record_id": rec.record_id,
        "crm_created_at": rec.created_at.isoformat(),
        "crm_updated_at": rec.version().isoformat(),
        "deleted_at": None,
    }
    if observed_at is not None:
        row["observed_at"] = observed_at.isoformat()
    return row


_WON = frozenset({"won", "closedwon", "closed-won", "closed_won"})
_LOST = frozenset({"lost", "closedlost", "closed-lost", "closed_lost", "disqualified"})


def status_outcome(
    title: str | None, celebration_enabled: bool | None = None
) -> tuple[bool | None, bool | None]:
    """(is_closed, is_won) of a deal status by its title (Attio statuses have no such flags); (None, None) for no
    status."""
    if title is None:
        return None, None
    words = set(re.split(r"[^a-z_-]+", title.lower()))
    if celebration_enabled or words & _WON:
        return True, True
    if words & _LOST:
        return True, False
    return False, False


def attio_person_to_row(
    rec: AttioRecord,
    *,
    company_names: Mapping[str, str] | None = None,
    custom: Mapping[str, str] | None = None,
    observed_at: datetime | None = None,
) -> dict[str, Any]:
    """A contact row from an Attio person.

    ``company_names`` maps company record ids to names (people only reference their company);
    ``custom`` maps index columns without a standard Attio attribute (``lifecycle_stage``, ``lead_status``)
    to the workspace's attribute slugs (the connection's ``settings.attio_attributes``).
    """
    row = _attio_base(rec, observed_at)
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


def attio_company_to_row(rec: AttioRecord, observed_at: datetime | None = None) -> dict[str, Any]:
    """A company row from an Attio company (industry = first category; Attio has no industry attribute)."""
    row = _attio_base(rec, observed_at)
    domains = rec.domains
    categories = rec.categories
    loc = rec.location or {}
    row.update(
        name=rec.name,
        domain=domains[0] if domains else None,
        industry=categories[0] if categories else None,
        # issue 17: the description and every category feed the industry groups (cut to crm.text_cap)
        description=(rec.text("description") or "")[:TEXT_CAP].strip() or None,
        tags=[c[:TEXT_CAP] for c in categories[:50]] or None,
        city=loc.get("locality") or None,
        country=loc.get("country_code") or None,
    )
    return row


def attio_deal_to_row(rec: AttioRecord, observed_at: datetime | None = None) -> dict[str, Any]:
    row = _attio_base(rec, observed_at)
    value = rec.first("value")
    company = rec.references("associated_company")
    stage = rec.first(DEAL_STAGE_ATTRIBUTE)
    status = stage.get("status") if stage is not None else None
    status_id = status.get("id", {}).get("status_id") if isinstance(status, dict) else None
    title = status.get("title") if isinstance(status, dict) else None
    is_closed, _ = status_outcome(
        title, status.get("celebration_enabled") if isinstance(status, dict) else None
    )
    row.update(
        name=rec.name,
        stage=str(status_id) if status_id else rec.text(DEAL_STAGE_ATTRIBUTE),
        pipeline=DEAL_STAGE_ATTRIBUTE if stage is not None else None,
        is_closed=is_closed,
        amount=None if value is None or value.get("currency_value") is None else str(value["currency_value"]),
        owner_crm_id=rec.text("owner"),
        company_crm_id=company[0] if company else None,
        contact_crm_ids=rec.references("associated_people"),
    )
    return row


# -- metadata -------------------------------------------------------------------------------------------
def member_to_owner(member: AttioMember) -> dict[str, Any]:
    """A ``crm.crm_owner`` row of a workspace member (suspended members are archived owners)."""
    return {
        "owner_id": member.member_id,
        "first_name": member.first_name or None,
        "last_name": member.last_name or None,
        "email": member.email_address or None,
        "archived": member.access_level == "suspended",
        "crm_updated_at": None if member.created_at is None else member.created_at.isoformat(),
    }


def statuses_to_stages(
    statuses: list[AttioChoice], pipeline_id: str, pipeline_label: str | None
) -> list[dict[str, Any]]:
    """``crm.crm_pipeline_stage`` rows of a status attribute's statuses, in the API's order."""
    rows = []
    for order, st in enumerate(statuses):
        is_closed, is_won = status_outcome(st.title, st.celebration_enabled)
        rows.append({
            "pipeline_id": pipeline_id, "pipeline_label": pipeline_label, "stage_id": st.choice_id,
            "stage_label": st.title, "display_order": order, "is_closed": is_closed, "is_won": is_won,
            "archived": st.is_archived,
        })  # fmt: skip
    return rows


def list_to_row(lst: AttioList, stage_attribute: str | None) -> dict[str, Any]:
    """A ``crm.crm_list`` row; ``parent_object`` as an index object type when the index holds it."""
    parent = lst.parent_object[0] if lst.parent_object else None
    return {
        "list_id": lst.list_id,
        "api_slug": lst.api_slug,
        "name": lst.name,
        "parent_object": None if parent is None else OBJECT_TYPES_BY_SLUG.get(parent, parent),
        "stage_attribute": stage_attribute,
        "crm_created_at": None if lst.created_at is None else lst.created_at.isoformat(),
    }


def entry_to_row(entry: AttioEntry, stage_attribute: str | None, observed_at: datetime) -> dict[str, Any]:
    """A ``crm.list_entry`` row, versioned by when it was read (entries carry no modified time)."""
    status = entry.status(stage_attribute) if stage_attribute else None
    return {
        "list_id": entry.list_id,
        "entry_id": entry.entry_id,
        "parent_object": OBJECT_TYPES_BY_SLUG.get(entry.parent_object, entry.parent_object),
        "parent_record_id": entry.parent_record_id,
        "stage_id": None if status is None else str(status.get("id", {}).get("status_id") or "") or None,
        "stage_label": None if status is None else status.get("title"),
        "crm_created_at": None if entry.created_at is None else entry.created_at.isoformat(),
        "crm_updated_at": observed_at.isoformat(),
    }


# the index's object types <-> Attio's standard object slugs
OBJECT_SLUGS: dict[str, str] = {"contacts": "people", "companies": "companies", "deals": "deals"}
OBJECT_TYPES_BY_SLUG: dict[str, str] = {slug: t for t, slug in OBJECT_SLUGS.items()}


def attio_to_row(
    object_type: str,
    rec: AttioRecord,
    *,
    company_names: Mapping[str, str] | None = None,
    custom: Mapping[str, str] | None = None,
    observed_at: datetime | None = None,
) -> dict[str, Any]:
    """The index row of an Attio record of ``object_type`` (contacts, companies, deals); ``company_names`` and
    ``custom`` as for :func:`attio_person_to_row`; ``observed_at``: when it was read (see the module docstring)."""
    if object_type == "contacts":
        return attio_person_to_row(rec, company_names=company_names, custom=custom, observed_at=observed_at)
    if object_type == "companies":
        return attio_company_to_row(rec, observed_at)
    return attio_deal_to_row(rec, observed_at)
