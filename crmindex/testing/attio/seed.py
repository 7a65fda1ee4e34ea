"""Seeding a workspace from a :class:`~crmindex.testing.synthetic.SyntheticCRM` (``source="attio"``: UUID
record ids): companies and deals are stored at once, people are generated lazily. Seeded values look
written by a member in the UI; the newest change is stamped with the record's update time.

The deal owners are workspace members; the deals' ``stage`` statuses are made in pipeline order, titled as an
Attio workspace's (the synthetic HubSpot-style stage names mapped to :data:`DEAL_STAGE_TITLES`; Attio's default
won stage is "Won 🎉", with ``celebration_enabled``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmindex.testing.attio.store import AttioStore, AttioStoredRecord
from crmindex.testing.attio.values import iso

if TYPE_CHECKING:
    from crmindex.testing.synthetic import SyntheticCRM


DEAL_STAGE_TITLES = {
    "appointmentscheduled": "Lead",
    "qualifiedtobuy": "Qualified",
    "presentationscheduled": "Demo",
    "decisionmakerboughtin": "Negotiation",
    "contractsent": "Contract sent",
    "closedwon": "Won 🎉",
    "closedlost": "Lost",
}


def seed_workspace(store: AttioStore, crm: SyntheticCRM) -> None:
    """Serve ``crm`` (source ``attio``: UUID record ids); people are generated lazily."""
    if crm.source != "attio":
        raise ValueError("seed FakeAttio from a SyntheticCRM with source='attio'")
    people_attributes = store.ws.attributes["people"]
    ws = store.ws
    with store.lock:
        for k, owner in enumerate(crm.owner_ids()):
            if owner not in ws.member_ids:
                ws.add_member(
                    f"Owner{k}", "Attio", f"owner{k}@{ws.workspace_id[:8]}.example", member_id=owner
                )
        for title in DEAL_STAGE_TITLES.values():  # the pipeline's order
            ws.choice(
                "deals",
                "stage",
                "status",
                title,
                ws.attribute_ids[("deals", "stage")],
                ws.object_ids["deals"],
            )
        for c in crm.companies():
            rec = AttioStoredRecord(c.crm_record_id, iso(c.crm_created_at))
            vals: dict[str, Any] = {"name": c.name, "domains": [c.domain]}
            if c.description:
                vals["description"] = c.description
            if c.industry:
                vals["categories"] = [c.industry]
            if c.employee_count is not None:
                vals["employee_range"] = _employee_range(c.employee_count)
            if c.city or c.country:
                vals["primary_location"] = {"locality": c.city, "country_code": _country_code(c.country)}
            _seed_values(store, "companies", rec, vals, c.crm_created_at, c.crm_updated_at)
            store.add("companies", rec)
        ids = [crm.contact_id(i) for i in range(crm.n_contacts)]

        def build(i: int) -> AttioStoredRecord:
            x = crm.contact(i)
            rec = AttioStoredRecord(x.crm_record_id, iso(x.crm_created_at))
            vals: dict[str, Any] = {
                "name": {"first_name": x.first_name or "", "last_name": x.last_name or ""},
            }
            if x.email:
                vals["email_addresses"] = [x.email]
            if x.phone:
                vals["phone_numbers"] = [x.phone]
            if x.job_title:
                vals["job_title"] = x.job_title
            if x.company_crm_id:
                vals["company"] = {"target_object": "companies", "target_record_id": x.company_crm_id}
            if x.lifecycle_stage and "lifecycle_stage" in people_attributes:
                vals["lifecycle_stage"] = x.lifecycle_stage
            if x.lead_status and "lead_status" in people_attributes:
                vals["lead_status"] = x.lead_status
            _seed_values(store, "people", rec, vals, x.crm_created_at, x.crm_updated_at)
            return rec

        store.seed_lazily("people", ids, build)
        for d in crm.deals():
            rec = AttioStoredRecord(d.crm_record_id, iso(d.crm_created_at))
            vals = {"name": d.name, "stage": DEAL_STAGE_TITLES.get(d.stage, d.stage)}
            if d.amount is not None:
                vals["value"] = d.amount
            if d.owner_crm_id:
                vals["owner"] = d.owner_crm_id
            if d.contact_crm_ids:
                vals["associated_people"] = [{"target_object": "people", "target_record_id": p}
                                             for p in d.contact_crm_ids]  # fmt: skip
            if d.company_crm_id:
                vals["associated_company"] = {
                    "target_object": "companies",
                    "target_record_id": d.company_crm_id,
                }
            _seed_values(store, "deals", rec, vals, d.crm_created_at, d.crm_updated_at)
            store.add("deals", rec)


def _seed_values(
    store: AttioStore, obj: str, rec: AttioStoredRecord, vals: Mapping[str, Any], created: datetime,
    updated: datetime,
) -> None:  # fmt: skip
    store.write_values(obj, rec, vals, api=False, overwrite_multi=True)
    stamp, first = iso(updated), iso(created)
    for i, history in enumerate(rec.values.values()):
        for v in history:
            v["active_from"] = stamp if i == 0 else first  # the newest change: the record's update time


def _employee_range(n: int) -> str:
    for hi, label in ((10, "1-10"), (50, "11-50"), (250, "51-250"), (1000, "251-1K"), (5000, "1K-5K"),
                      (10000, "5K-10K"), (50000, "10K-50K"), (100000, "50K-100K")):  # fmt: skip
        if n <= hi:
            return label
    return "100K+"


_COUNTRY_CODES = {"united states": "US", "usa": "US", "united kingdom": "GB", "uk": "GB", "france": "FR",
                  "germany": "DE", "spain": "ES", "italy": "IT", "netherlands": "NL", "canada": "CA",
                  "australia": "AU", "india": "IN", "japan": "JP", "brazil": "BR", "ireland": "IE",
                  "sweden": "SE", "singapore": "SG", "switzerland": "CH", "israel": "IL", "mexico": "MX",
                  "poland": "PL", "denmark": "DK", "norway": "NO", "finland": "FI", "portugal": "PT",
                  "belgium": "BE", "austria": "AT", "china": "CN", "south korea": "KR", "new zealand": "NZ",
                  "south africa": "ZA", "argentina": "AR", "nigeria": "NG", "kenya": "KE", "uae": "AE",
                  "united arab emirates": "AE"}  # fmt: skip


def _country_code(country: str | None) -> str | None:
    if not country:
        return None
    if len(country) == 2:
        return country.upper()
    return _COUNTRY_CODES.get(country.lower(), country)
