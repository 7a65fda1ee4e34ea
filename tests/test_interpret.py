"""crm.interpret_query: copilot phrases -> filters + text, and crm.search (interpretation + results)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmindex.index import search as s
from crmindex.index.writes import upsert_companies, upsert_contacts
from tests.orgs import ORG


@pytest.fixture
def conn(db: psycopg.Connection[Any], org_a: uuid.UUID) -> psycopg.Connection[Any]:
    return db


@pytest.mark.parametrize(
    ("query", "filters", "text"),
    [
        ("VPs at fintech companies", {"seniority": ["vp"], "industry_group": ["fintech"]}, ""),
        ("find all vice presidents in fintech", {"seniority": ["vp"], "industry_group": ["fintech"]}, ""),
        ("customers at stripe.com", {"lifecycle_stage": ["customer"], "domain": ["stripe.com"]}, ""),
        ("contacts @stripe.com", {"domain": ["stripe.com"]}, ""),
        (
            "customers with an open deal over 50k",
            {"lifecycle_stage": ["customer"], "has_active_deal": True, "deal_value_min": 50000},
            "",
        ),
        ("deals over $1.5m", {"has_active_deal": True, "deal_value_min": 1500000}, ""),
        (
            "leads with deals under 10,000",
            {"lifecycle_stage": ["lead"], "has_active_deal": True, "deal_value_max": 10000},
            "",
        ),
        (
            "people at Acme with deals between 10k and 1m",
            {
                "company": ["acme"],
                "has_active_deal": True,
                "deal_value_min": 10000,
                "deal_value_max": 1000000,
            },
            "",
        ),
        ("customers without an open deal", {"lifecycle_stage": ["customer"], "has_active_deal": False}, ""),
        ("Stan from Acme", {"company": ["acme"]}, "stan"),
        ("John Smith at Acme Corp", {"company": ["acme corp"]}, "john smith"),
        (
            "directors of engineering in healthcare",
            {"seniority": ["director"], "department": ["engineering"], "industry_group": ["healthcare"]},
            "",
        ),
        (
            "cfo at banks",
            {"seniority": ["c_suite"], "department": ["finance"], "industry_group": ["banking"]},
            "",
        ),
        ("CTOs", {"seniority": ["c_suite"], "department": ["engineering"]}, ""),
        ("IT managers", {"seniority": ["manager"], "department": ["it"]}, ""),
        ("is it stan", {}, "stan"),  # lower-case "it" is a word, not a department
        ("vps and directors of sales", {"seniority": ["director", "vp"], "department": ["sales"]}, ""),
        ("mqls", {"lifecycle_stage": ["marketingqualifiedlead", "mql"]}, ""),
        ("materialized customers", {"is_materialized": True, "lifecycle_stage": ["customer"]}, ""),
        ("Jonh Smiht", {}, "jonh smiht"),
        ("José Müller", {}, "jose muller"),
        ("jane.doe+crm@acme.com", {}, "jane.doe+crm@acme.com"),
        ("", {}, ""),
        ("'; DROP TABLE contacts; --", {}, "drop table"),
    ],
)
def test_interpretations(
    conn: psycopg.Connection[Any], query: str, filters: dict[str, Any], text: str
) -> None:
    got = s.interpret(conn, ORG, query)
    assert got.filters == filters
    assert got.text == text
    assert got.query == query
    assert got.explanation


def test_explanation_names_the_industries(conn: psycopg.Connection[Any]) -> None:
    got = s.interpret(conn, ORG, "VPs at fintech companies")
    assert "fintech" in got.explanation and "BANKING" in got.explanation and "vp" in got.explanation
    assert {m.key for m in got.matched} == {"seniority", "industry_group"}


def test_updated_since(conn: psycopg.Connection[Any]) -> None:
    got = s.interpret(conn, ORG, "contacts updated in the last 7 days")
    since = datetime.fromisoformat(got.filters["updated_since"])
    assert timedelta(days=6) < datetime.now(UTC) - since < timedelta(days=8)
    assert set(s.interpret(conn, ORG, "recently updated leads").filters) == {
        "updated_since",
        "lifecycle_stage",
    }
    got = s.interpret(conn, ORG, "customers updated since 2026-01-31")
    assert got.filters["updated_since"].startswith("2026-01-31")


def test_search_applies_the_interpretation(conn: psycopg.Connection[Any]) -> None:
    upsert_companies(
        conn,
        ORG,
        "hubspot",
        [
            {"crm_record_id": "k1", "name": "Ledgerly", "domain": "ledgerly.io", "industry": "BANKING"},
            {"crm_record_id": "k2", "name": "Acme", "domain": "acme.com", "industry": "RETAIL"},
        ],
    )
    upsert_contacts(
        conn,
        ORG,
        "hubspot",
        [
            {
                "crm_record_id": "p1",
                "first_name": "Ann",
                "last_name": "Vee",
                "job_title": "VP Finance",
                "company_crm_id": "k1",
            },
            {
                "crm_record_id": "p2",
                "first_name": "Bob",
                "last_name": "Vee",
                "job_title": "VP Sales",
                "company_crm_id": "k2",
            },
            {
                "crm_record_id": "p3",
                "first_name": "Stan",
                "last_name": "Oz",
                "job_title": "MVP Product Owner",
                "company_crm_id": "k1",
            },
            {
                "crm_record_id": "p4",
                "first_name": "Stan",
                "last_name": "Ax",
                "job_title": "Engineer",
                "company_crm_id": "k2",
            },
        ],
    )
    r = s.search(conn, ORG, "VPs at fintech companies")
    assert [h.crm_record_id for h in r.hits] == ["p1"]
    assert r.interpretation is not None and r.interpretation.filters["industry_group"] == ["fintech"]
    assert [h.crm_record_id for h in s.search(conn, ORG, "Stan from Acme").hits] == ["p4"]
    page1 = s.search(conn, ORG, "stan", limit=1)
    assert page1.next_cursor is not None
    page2 = s.search(conn, ORG, "stan", limit=1, after=page1.next_cursor)
    assert {page1.hits[0].crm_record_id, page2.hits[0].crm_record_id} == {"p3", "p4"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=200
    )
)
def test_any_text_interprets_to_valid_filters(conn: psycopg.Connection[Any], text: str) -> None:
    got = s.interpret(conn, ORG, text)
    # whatever it found is accepted by the search as it is
    s.search_contacts(conn, ORG, got.text, got.filters, limit=5)


@pytest.mark.parametrize(
    "text",
    ["over 9" * 400, "between 1 and", "> 1e400k", "over 99999999999999999999999m", "at at at from from"],
)
def test_odd_phrases(conn: psycopg.Connection[Any], text: str) -> None:
    got = s.interpret(conn, ORG, text)
    s.search_contacts(conn, ORG, got.text, got.filters, limit=5)
