"""Seeding a portal from a :class:`~crmindex.testing.synthetic.SyntheticCRM` (``source="hubspot"``): its
companies and deals are stored at once, its contacts become a lazy :class:`~.store.SeedRange` (built on
read, so 500,000 contacts cost nothing until read) with their companies as implicit associations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmindex.testing.hubspot.model import dt_ms, parse_ms
from crmindex.testing.hubspot.portal import Portal
from crmindex.testing.hubspot.store import HubSpotRecord, SeedRange

if TYPE_CHECKING:
    from crmindex.testing.synthetic import SyntheticCRM

LOCAL_TO_HUBSPOT_LIFECYCLE = {"mql": "marketingqualifiedlead", "sql": "salesqualifiedlead"}


def seed_portal(portal: Portal, crm: SyntheticCRM) -> None:
    """Serve ``crm``'s companies, contacts and deals (contacts lazily; HubSpot-style numeric ids)."""
    if crm.source != "hubspot":
        raise ValueError("seed FakeHubSpot from a SyntheticCRM with source='hubspot'")
    with portal.lock:
        companies = portal.store("companies")
        for c in crm.companies():
            created, updated = (
                parse_ms(c.crm_created_at.isoformat()) or 0,
                parse_ms(c.crm_updated_at.isoformat()) or 0,
            )
            props: dict[str, str | None] = {
                "name": c.name,
                "domain": c.domain,
                "industry": c.industry,
                "description": c.description,
                "numberofemployees": None if c.employee_count is None else str(c.employee_count),
                "annualrevenue": None if c.annual_revenue is None else str(c.annual_revenue),
                "city": c.city,
                "country": c.country,
            }
            companies.add(HubSpotRecord(int(c.crm_record_id), props, created, updated))
        if crm.n_contacts:
            base = int(crm.contact_id(0))
            owners = crm.owner_ids()  # the portal's users (FakeHubSpot.seed_from serves them as owners)

            def build(i: int) -> HubSpotRecord:
                x = crm.contact(i)
                lifecycle = x.lifecycle_stage
                if lifecycle is not None:
                    lifecycle = LOCAL_TO_HUBSPOT_LIFECYCLE.get(lifecycle, lifecycle)
                props = {
                    "firstname": x.first_name,
                    "lastname": x.last_name,
                    "email": x.email,
                    "phone": x.phone,
                    "jobtitle": x.job_title,
                    "lifecyclestage": lifecycle,
                    "hs_lead_status": x.lead_status,
                    "company": x.company_name,
                    "associatedcompanyid": x.company_crm_id,
                    # most contacts have an owner in a real portal; one in four here has none
                    "hubspot_owner_id": owners[i % len(owners)] if i % 4 else None,
                }
                return HubSpotRecord(
                    base + i, props, dt_ms(x.crm_created_at),
                    dt_ms(x.crm_updated_at),
                )  # fmt: skip

            contacts = portal.store("contacts")
            contacts.seed = SeedRange(base, crm.n_contacts, build, dt_ms(crm.as_of))
            contacts.next_id = max(contacts.next_id, base + crm.n_contacts)

            def company_of(oid: int) -> int | None:
                j = crm.company_of_contact(oid - base)
                return None if j is None else int(crm.company_id(j))

            portal.links.seed_company_of = company_of
        deals = portal.store("deals")
        for d in crm.deals():
            props = {
                "dealname": d.name,
                "dealstage": d.stage,
                "pipeline": "default",
                "amount": None if d.amount is None else str(d.amount),
                "closedate": None if d.close_date is None else f"{d.close_date.isoformat()}T00:00:00.000Z",
                "hubspot_owner_id": d.owner_crm_id,
            }
            rec = HubSpotRecord(
                int(d.crm_record_id), props, dt_ms(d.crm_created_at),
                dt_ms(d.crm_updated_at),
            )  # fmt: skip
            deals.add(rec)
            for cid in d.contact_crm_ids:
                portal.links.link("deals", rec.id, "contacts", int(cid), primary=False)
            if d.company_crm_id:
                portal.links.link("deals", rec.id, "companies", int(d.company_crm_id), primary=True)
