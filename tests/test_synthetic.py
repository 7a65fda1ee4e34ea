"""crmindex.testing.synthetic: deterministic, referentially sound, realistic enough (pure Python, no database;
the last test checks the fintech labels against the index's own classifier)."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import UTC, timedelta
from hashlib import blake2b
from typing import Any

import psycopg
import pytest

from crmindex.index.writes import upsert_rows
from crmindex.testing import synthetic as syn
from crmindex.testing.synthetic import (
    DEAL_STAGES,
    DEPARTMENTS,
    FINTECH_INDUSTRIES,
    HUBSPOT_INDUSTRIES,
    LEAD_STATUSES,
    LIFECYCLE_STAGES,
    SENIORITIES,
    SYNTH_NOW,
    TITLE_TRAPS,
    Kind,
    SynthCompany,
    SynthContact,
    SynthDeal,
    SyntheticCRM,
)

N = 20_000
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")  # what crm.check_index_rows accepts
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def crm() -> SyntheticCRM:
    return SyntheticCRM(seed=11, contacts=N)


@pytest.fixture(scope="module")
def contacts(crm: SyntheticCRM) -> list[SynthContact]:
    return list(crm.contacts())


@pytest.fixture(scope="module")
def companies(crm: SyntheticCRM) -> list[SynthCompany]:
    return list(crm.companies())


@pytest.fixture(scope="module")
def deals(crm: SyntheticCRM) -> list[SynthDeal]:
    return list(crm.deals())


def test_sizes_and_defaults(
    crm: SyntheticCRM, contacts: list[SynthContact], companies: list[SynthCompany]
) -> None:
    assert (crm.n_contacts, crm.n_companies, crm.n_deals) == (N, N // 10, N // 50)
    assert len(contacts) == N and len(companies) == N // 10
    small = SyntheticCRM(1, contacts=3)
    assert (small.n_companies, small.n_deals) == (1, 0)
    assert list(SyntheticCRM(1, contacts=0).contacts()) == []
    with pytest.raises(IndexError):
        crm.contact(N)


def test_deterministic_and_random_access(
    contacts: list[SynthContact], companies: list[SynthCompany], deals: list[SynthDeal]
) -> None:
    other = SyntheticCRM(seed=11, contacts=N)
    assert [other.contact(i) for i in range(0, N, 97)] == contacts[::97]
    assert [other.company(i) for i in range(0, N // 10, 13)] == companies[::13]
    assert [other.deal(i) for i in range(len(deals))] == deals
    for i in (N - 1, 12_345, 0, 777):  # any order, no dependence on earlier records
        assert other.contact(i) == contacts[i]
    different = SyntheticCRM(seed=12, contacts=N)
    assert sum(different.contact(i) == contacts[i] for i in range(200)) == 0


def test_stable_across_machines_and_versions() -> None:
    """A fingerprint of the generated data. If a deliberate generator change breaks it, update EXPECTED
    (benchmarks and fixtures keyed on a seed then change too)."""
    crm = SyntheticCRM(seed=7, contacts=500)
    h = blake2b(digest_size=16)
    kinds: tuple[Kind, ...] = ("companies", "contacts", "deals")
    for kind in kinds:
        for rows in crm.batches(kind, 100):
            h.update(json.dumps(rows, sort_keys=True).encode())
    assert h.hexdigest() == EXPECTED_FINGERPRINT


EXPECTED_FINGERPRINT = "499b143a44f0fe69db237ca30e69f37f"  # issue 18: companies have descriptions


def test_ids_unique_and_in_distinct_ranges(
    contacts: list[SynthContact], companies: list[SynthCompany], deals: list[SynthDeal]
) -> None:
    ids = {
        kind: [r.crm_record_id for r in rows]
        for kind, rows in (("k", contacts), ("c", companies), ("d", deals))
    }
    for values in ids.values():
        assert len(set(values)) == len(values)
        assert all(v.isdigit() for v in values)
    assert max(map(int, ids["k"])) < min(map(int, ids["c"]))
    assert max(map(int, ids["c"])) < min(map(int, ids["d"]))


def test_attio_uuids() -> None:
    crm = SyntheticCRM(seed=3, contacts=600, source="attio")
    rows = [crm.contact(i) for i in range(600)]
    ids = [r.crm_record_id for r in rows]
    assert all(UUID_RE.match(i) for i in ids) and len(set(ids)) == 600
    assert SyntheticCRM(seed=3, contacts=600, source="attio").contact(5) == rows[5]
    company_ids = {crm.company(i).crm_record_id for i in range(crm.n_companies)}
    assert all(UUID_RE.match(i) for i in company_ids)
    assert {r.company_crm_id for r in rows} - {None} <= company_ids
    deal = crm.deal(0)
    assert set(deal.contact_crm_ids) <= set(ids) and deal.company_crm_id in company_ids
    assert deal.owner_crm_id is None or UUID_RE.match(deal.owner_crm_id)
    hubspot = SyntheticCRM(seed=3, contacts=600)
    assert hubspot.contact(5).first_name == rows[5].first_name  # the source changes only the ids


def test_company_domains_unique(companies: list[SynthCompany]) -> None:
    domains = [c.domain for c in companies]
    assert len(set(domains)) == len(domains)
    assert all(d == d.lower() and "." in d and " " not in d for d in domains)
    # every (prefix, root) pair spells a different base, so domains stay unique at any size
    bases = [(p + r).lower() for p in syn._PREFIXES for r in syn._ROOTS]
    assert len(set(bases)) == len(bases)
    # past the first P*R companies: hyphenated overflow names, still unique
    pr = len(bases)
    big = SyntheticCRM(seed=5, contacts=0, companies=pr + 3000)
    sample = [*range(2000), *range(pr - 1000, pr + 3000)]
    sample_domains = [big.company(i).domain for i in sample]
    assert len(set(sample_domains)) == len(sample_domains)


def test_referential_integrity(
    crm: SyntheticCRM, contacts: list[SynthContact], companies: list[SynthCompany], deals: list[SynthDeal]
) -> None:
    by_id = {c.crm_record_id: c for c in companies}
    contact_by_id = {c.crm_record_id: c for c in contacts}
    with_company = [c for c in contacts if c.company_crm_id is not None]
    assert 0.95 < len(with_company) / N < 0.99
    at_own_domain = 0
    for c in with_company:
        company = by_id[str(c.company_crm_id)]
        assert c.company_name == company.name
        at_own_domain += bool(c.email and c.email.lower().endswith("@" + company.domain))
    assert at_own_domain / len(with_company) > 0.75
    assert all(c.company_crm_id is not None for c in contacts[: crm.n_companies])  # every company has one
    for d in deals:
        assert 1 <= len(d.contact_crm_ids) <= 3 and len(set(d.contact_crm_ids)) == len(d.contact_crm_ids)
        company = by_id[str(d.company_crm_id)]
        for cid in d.contact_crm_ids:
            assert contact_by_id[cid].company_crm_id == d.company_crm_id
        assert d.name.startswith(company.name)
    assert Counter(len(d.contact_crm_ids) for d in deals)[1] < len(deals) * 0.7
    assert crm.company_of_contact(5) == 5


def test_seniority_distribution(contacts: list[SynthContact]) -> None:
    share = {k: v / N for k, v in Counter(c.seniority for c in contacts).items()}
    assert set(share) == {*SENIORITIES, None}
    assert 0.03 <= share["vp"] <= 0.055
    assert 0.02 <= share["c_suite"] <= 0.035
    assert 0.06 <= share["director"] <= 0.085
    assert share["entry"] + share["senior"] + share["manager"] > 0.65
    assert 0.03 <= share[None] <= 0.08
    assert {c.department for c in contacts} == {*DEPARTMENTS, None}
    for c in contacts:
        assert (c.job_title is None) <= (c.seniority is None)  # no title -> no labels
        assert (c.seniority is None) == (c.department is None)


REQUIRED_TRAPS = {
    "VP of Sales": ("vp", "sales"),
    "Vice President, Marketing": ("vp", "marketing"),
    "SVP Engineering": ("vp", "engineering"),
    "EVP & CFO": ("c_suite", "finance"),
    "AVP, Risk": ("vp", "finance"),
    "HR Business Partner": ("entry", "hr"),
    "MVP Program Manager": ("manager", "operations"),
    "VPN Engineer": ("entry", "it"),
    "Head of Growth": ("head", "marketing"),
    "Sr. Director, Product": ("director", "product"),
    "Dir. of Eng": ("director", "engineering"),
    "Founder & CEO": ("founder", "executive"),
    "Managing Partner": ("partner", "executive"),
    "Owner": ("owner", "executive"),
    "Software Engineer II": ("entry", "engineering"),
    "Intern - Marketing": ("intern", "marketing"),
    "Account Executive": ("entry", "sales"),
    "Principal Engineer": ("senior", "engineering"),
}


def test_title_traps(contacts: list[SynthContact]) -> None:
    traps = {t: (s, d) for t, s, d in TITLE_TRAPS}
    for title, labels in REQUIRED_TRAPS.items():
        assert traps[title] == labels, title
    assert traps["Chief of Staff"][0] not in ("c_suite", "vp")
    seen = Counter(c.job_title for c in contacts if c.job_title in traps)
    assert len(seen) >= 0.9 * len(traps)
    for c in contacts:
        if c.job_title in traps:
            assert (c.seniority, c.department) == traps[c.job_title], c.job_title
    # no naive-substring false positives among generated VPs
    for c in contacts:
        if c.job_title and c.seniority == "vp":
            assert re.search(r"\b(vp|svp|evp|avp|v\.p\.|vice[ -]president)(?!\w)", c.job_title, re.I), (
                c.job_title
            )


def test_emails_and_names(contacts: list[SynthContact]) -> None:
    emails = [c.email for c in contacts if c.email is not None]
    assert 0.02 < 1 - len(emails) / N < 0.06  # a few contacts have none
    for e in emails:
        assert e.count("@") == 1 and EMAIL_RE.match(e), e
        assert e.isascii()
    domains = Counter(e.lower().split("@")[1] for e in emails)
    assert domains["gmail.com"] > 0.03 * N and domains["outlook.com"] > 0
    assert any("+" in e for e in emails)
    assert any(e != e.lower() for e in emails)
    assert len(syn.FIRST_NAMES) >= 300 and len(syn.LAST_NAMES) >= 1000
    for name in ("José", "Zoë", "Łukasz", "Søren", "Stan", "Stanley", "Stanislav"):
        assert name in syn.FIRST_NAMES
    assert {"O'Neil", "Müller"} <= set(syn.LAST_NAMES) and any("-" in n for n in syn.LAST_NAMES)
    firsts = {c.first_name for c in contacts}
    assert sum(1 for f in firsts if f and not f.isascii()) > 30
    assert syn.ascii_slug("Łukasz") == "lukasz" and syn.ascii_slug("O'Neil") == "oneil"
    assert any(c.job_title is None for c in contacts) and any(c.first_name is None for c in contacts)


def test_companies(companies: list[SynthCompany]) -> None:
    assert len(HUBSPOT_INDUSTRIES) == len(set(HUBSPOT_INDUSTRIES)) == 148
    industries = Counter(c.industry for c in companies)
    assert set(industries) - {None} <= set(HUBSPOT_INDUSTRIES)
    assert industries["COMPUTER_SOFTWARE"] > industries["FINANCIAL_SERVICES"] > 0
    for ind in ("BANKING", "HOSPITAL_HEALTH_CARE", "INTERNET"):
        assert industries[ind] > 0
    fintech = sum(c.is_fintech for c in companies) / len(companies)
    assert 0.10 <= fintech <= 0.15
    for c in companies:
        by_name = c.industry in syn.TECH_INDUSTRIES and bool(
            syn.FINTECH_WORD_RE.search(c.name) or syn.FINTECH_WORD_RE.search(c.domain)
        )
        assert c.is_fintech == (c.industry in FINTECH_INDUSTRIES or by_name), c
    assert any(c.is_fintech and c.industry in syn.TECH_INDUSTRIES for c in companies)  # "Stripe-like"
    # every company says what it does, in words that agree with its label: a fintech one names its money business,
    # the others no finance word (the index classifies by these words: "VPs at fintech" is judged on them)
    money = re.compile(
        r"\b(pay|payments?|bank\w*|loans?|lend\w*|credit|wallet|invest(?:ing|ments?|ors?)?|insurance|trading|"
        r"wealth|accounting (?:software|automation)|money|financ\w*|crypto|brokerage|securities|capital|"
        r"(?:spend|expense|asset) management|private equity|cards?)\b",
        re.I,
    )
    assert all(c.description for c in companies)
    for c in companies:
        assert bool(money.search(c.description or "")) == c.is_fintech, c
    assert any(c.name.startswith("Acme") for c in companies)
    assert sum(c.employee_count is not None for c in companies) > 0.9 * len(companies)
    assert any(c.annual_revenue for c in companies) and any(c.country for c in companies)


def test_crm_fields(contacts: list[SynthContact], deals: list[SynthDeal]) -> None:
    assert {c.lifecycle_stage for c in contacts} == {*LIFECYCLE_STAGES, None}
    assert {c.lead_status for c in contacts} == {*LEAD_STATUSES, None}
    assert Counter(c.lifecycle_stage for c in contacts).most_common(1)[0][0] == "lead"
    assert {d.stage for d in deals} == set(DEAL_STAGES)
    assert any(d.amount and d.amount > 50_000 for d in deals)
    assert all(d.amount is None or d.amount > 0 for d in deals)
    assert any(d.close_date for d in deals) and any(d.owner_crm_id for d in deals)


def test_timestamps(
    contacts: list[SynthContact], companies: list[SynthCompany], deals: list[SynthDeal]
) -> None:
    oldest = SYNTH_NOW - timedelta(days=3 * 365 + 1)
    records: list[SynthContact | SynthCompany | SynthDeal] = [*contacts, *companies, *deals]
    for r in records:
        assert r.crm_created_at.tzinfo is not None and r.crm_created_at.utcoffset() == timedelta(0)
        assert r.crm_updated_at.tzinfo is not None
        assert oldest <= r.crm_created_at <= r.crm_updated_at <= SYNTH_NOW
    assert min(c.crm_created_at for c in contacts) < SYNTH_NOW - timedelta(days=900)
    assert max(c.crm_created_at for c in contacts) > SYNTH_NOW - timedelta(days=30)
    assert sum(c.crm_updated_at > c.crm_created_at for c in contacts) > N / 2
    assert SYNTH_NOW.tzinfo is UTC


CONTACT_KEYS = {
    "crm_record_id", "first_name", "last_name", "email", "phone", "company_name", "company_crm_id", "job_title",
    "lifecycle_stage", "lead_status", "crm_created_at", "crm_updated_at",
}  # fmt: skip
COMPANY_KEYS = {
    "crm_record_id", "name", "domain", "industry", "description", "employee_count", "annual_revenue", "city",
    "country", "crm_created_at", "crm_updated_at",
}  # fmt: skip
DEAL_KEYS = {
    "crm_record_id", "name", "stage", "amount", "close_date", "company_crm_id", "owner_crm_id", "contact_crm_ids",
    "crm_created_at", "crm_updated_at",
}  # fmt: skip


def test_index_rows_and_batches(crm: SyntheticCRM) -> None:
    row = crm.contact(3).index_row()
    assert set(row) == CONTACT_KEYS
    assert isinstance(row["crm_created_at"], str) and str(row["crm_created_at"]).endswith("+00:00")
    assert set(crm.company(3).index_row()) == COMPANY_KEYS
    deal_row = crm.deal(3).index_row()
    assert set(deal_row) == DEAL_KEYS and isinstance(deal_row["contact_crm_ids"], list)
    batches = list(crm.batches("deals", 150))
    assert [len(b) for b in batches] == [150, 150, 100]
    assert batches[0][3] == deal_row
    json.dumps(batches)  # JSON-ready as is
    first = next(crm.batches("contacts", 1000))
    assert len(first) == 1000 and first[7] == crm.contact(7).index_row()
    json.dumps(first)
    with pytest.raises(ValueError):
        next(crm.batches("people", 10))  # type: ignore[arg-type]


def test_the_index_finds_exactly_the_labelled_fintech_companies(
    db: psycopg.Connection[Any], org_a: uuid.UUID
) -> None:
    """The generator's truth and the index's classifier (crm.company_industry_groups, which reads descriptions
    before names) agree on every company: "VPs at fintech" is measured against labels a person would give."""
    crm = SyntheticCRM(seed=31, contacts=0, companies=3_000, deals=0)
    companies = list(crm.companies())
    for at in range(0, len(companies), 1_000):
        upsert_rows(db, "companies", org_a, "hubspot", [c.index_row() for c in companies[at : at + 1_000]])
    found = {
        str(r[0])
        for r in db.execute(
            "SELECT crm_record_id FROM crm.company_index WHERE org_id = %s AND 'fintech' = ANY(industry_groups)",
            (org_a,),
        )
    }
    labelled = {c.crm_record_id for c in companies if c.is_fintech}
    assert len(labelled) > 200
    assert found == labelled, (sorted(found - labelled)[:5], sorted(labelled - found)[:5])
