"""The filters a copilot asks for (issue 17): place, company size and revenue, owner, activity and creation dates,
deal close date, amount and stage labels, Attio lists; validated with typed errors, applied per org."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from crmindex.errors import InvalidInputError
from crmindex.index import search as s
from crmindex.index.writes import ensure_org, upsert_companies, upsert_contacts, upsert_deals
from tests.orgs import ORG_A, ORG_B


def _seed(conn: psycopg.Connection[Any], org: uuid.UUID) -> None:
    upsert_companies(
        conn,
        org,
        "hubspot",
        [
            {"crm_record_id": "c1", "name": "Kontor", "city": "Berlin", "country": "Germany", "employee_count": 800,
             "annual_revenue": 90_000_000, "owner_crm_id": "7"},
            {"crm_record_id": "c2", "name": "Thames", "city": "London", "region": "England", "country": "U.K.",
             "employee_count": 40, "annual_revenue": 2_000_000},
            {"crm_record_id": "c3", "name": "Lone Star", "city": "Austin", "region": "TX", "country": "US",
             "employee_count": 5000, "crm_created_at": "2020-01-01T00:00:00Z"},
            {"crm_record_id": "c4", "name": "Nowhere"},
            {"crm_record_id": "c5", "name": "Gone", "city": "Berlin"},
        ],
    )  # fmt: skip
    upsert_contacts(
        conn,
        org,
        "hubspot",
        [
            {"crm_record_id": "p1", "first_name": "Anna", "company_crm_id": "c1", "owner_crm_id": "7",
             "last_contacted_at": "2026-01-10T00:00:00Z", "last_activity_at": "2026-01-10T00:00:00Z"},
            {"crm_record_id": "p2", "first_name": "Ben", "company_crm_id": "c2", "country": "Deutschland",
             "last_contacted_at": "2020-01-10T00:00:00Z"},
            {"crm_record_id": "p3", "first_name": "Cleo", "company_crm_id": "c3", "country": "United States"},
            {"crm_record_id": "p4", "first_name": "Dan", "company_crm_id": "c4"},
        ],
    )  # fmt: skip
    conn.execute(
        "INSERT INTO crm.crm_owner (org_id, crm_source, owner_id, first_name, last_name, email)"
        " VALUES (%s, 'hubspot', '7', 'Jane', 'Smith', 'jane@ourco.com')",
        (org,),
    )
    conn.execute(
        "INSERT INTO crm.crm_pipeline_stage (org_id, crm_source, object_type, pipeline_id, pipeline_label, stage_id,"
        " stage_label, display_order, is_closed, is_won) VALUES"
        " (%(o)s, 'hubspot', 'deals', 'default', 'Sales Pipeline', 'contractsent', 'Contract Sent', 3, false, false),"
        " (%(o)s, 'hubspot', 'deals', 'default', 'Sales Pipeline', 'closedwon', 'Closed Won', 4, true, true)",
        {"o": org},
    )
    # the stages are known before the deals arrive (the sync reads them first): labels derived at write
    upsert_deals(
        conn,
        org,
        "hubspot",
        [
            {"crm_record_id": "d1", "name": "Kontor renewal", "stage": "contractsent", "pipeline": "default",
             "amount": 120_000, "close_date": "2026-03-15", "company_crm_id": "c1", "owner_crm_id": "7"},
            {"crm_record_id": "d2", "name": "Thames pilot", "stage": "closedwon", "pipeline": "default",
             "amount": 5_000, "close_date": "2025-11-01", "is_closed": True, "company_crm_id": "c2"},
        ],
    )  # fmt: skip
    conn.execute(
        "INSERT INTO crm.crm_list (org_id, crm_source, list_id, api_slug, name, parent_object, stage_attribute)"
        " VALUES (%(o)s, 'hubspot', 'L1', 'enterprise-pipeline', 'Enterprise pipeline', 'companies', 'stage')",
        {"o": org},
    )
    conn.execute(
        "INSERT INTO crm.list_entry (org_id, crm_source, list_id, entry_id, parent_object, parent_record_id,"
        " stage_id, stage_label, deleted_at) VALUES"
        " (%(o)s, 'hubspot', 'L1', 'e1', 'companies', 'c1', 's-neg', 'Negotiation', NULL),"
        " (%(o)s, 'hubspot', 'L1', 'e2', 'companies', 'c2', 's-won', 'Won', NULL),"
        " (%(o)s, 'hubspot', 'L1', 'e5', 'companies', 'c5', 's-neg', 'Negotiation', now())",
        {"o": org},
    )


@pytest.fixture
def both(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    for org in (ORG_A, ORG_B):
        ensure_org(db, org, str(org))
        _seed(db, org)
    db.execute("DELETE FROM crm.company_index WHERE org_id = %s AND crm_record_id = 'c1'", (ORG_B,))
    return db


def _companies(conn: psycopg.Connection[Any], **filters: Any) -> list[str]:
    return sorted(h.crm_record_id for h in s.search_companies(conn, ORG_A, "", filters).hits)


def _contacts(conn: psycopg.Connection[Any], **filters: Any) -> list[str]:
    return sorted(h.crm_record_id for h in s.search_contacts(conn, ORG_A, "", filters).hits)


def _deals(conn: psycopg.Connection[Any], **filters: Any) -> list[str]:
    return sorted(h.crm_record_id for h in s.search_deals(conn, ORG_A, "", filters).hits)


def test_location(both: psycopg.Connection[Any]) -> None:
    assert _companies(both, location="DE") == ["c1"]
    assert _companies(both, location=["United Kingdom"]) == ["c2"]  # stored as "U.K."
    assert _companies(both, location="Europe") == ["c1", "c2"]
    assert _companies(both, location="texas") == ["c3"]  # the state's code as CRMs store it
    assert _companies(both, location="berlin") == ["c1", "c5"]
    # a contact: its own country, or its company's place
    assert _contacts(both, location="DE") == ["p1", "p2"]
    assert _contacts(both, location="US") == ["p3"]


def test_size_revenue_owner_and_dates(both: psycopg.Connection[Any]) -> None:
    assert _companies(both, employees_min=500) == ["c1", "c3"]
    assert _companies(both, employees_min=500, employees_max=1000) == ["c1"]
    assert _companies(both, revenue_min=10_000_000) == ["c1"]
    assert _contacts(both, employees_max=100) == ["p2"]
    assert _companies(both, owner="jane") == ["c1"]
    assert _contacts(both, owner=["jane smith"]) == ["p1"]
    assert _contacts(both, owner="jane@ourco.com") == ["p1"]
    assert _contacts(both, owner="nobody") == []
    assert _contacts(both, last_contacted_before="2025-01-01") == ["p2"]
    assert _contacts(both, last_contacted_after="2025-01-01T00:00:00Z") == ["p1"]
    assert _contacts(both, never_contacted=True) == ["p3", "p4"]
    assert _contacts(both, last_activity_after="2026-01-01") == ["p1"]
    assert _companies(both, created_before="2021-01-01") == ["c3"]


def test_deals(both: psycopg.Connection[Any]) -> None:
    assert _deals(both, close_after="2026-03-01", close_before="2026-04-01") == ["d1"]
    assert _deals(both, amount_min=100_000) == ["d1"]
    assert _deals(both, is_open=True) == ["d1"]
    assert _deals(both, won=True) == ["d2"]
    assert _deals(both, won=False) == []  # closed lost: neither the open d1 nor the won d2
    assert _deals(both, stage="contract sent") == ["d1"]  # the label, any case
    assert _deals(both, stage="CONTRACTSENT") == ["d1"]  # or the id
    assert _deals(both, owner="jane", location="DE") == ["d1"]
    hit = s.search_deals(both, ORG_A, "", {"stage": "contract sent"}).hits[0]
    assert (hit.stage_label, hit.pipeline_label, hit.owner_name, hit.company_name) == (
        "Contract Sent", "Sales Pipeline", "Jane Smith", "Kontor"
    )  # fmt: skip


def test_attio_lists(both: psycopg.Connection[Any]) -> None:
    # removed entries do not count; the other org's entries are not seen
    assert _companies(both, list="Enterprise pipeline") == ["c1", "c2"]
    assert _companies(both, list="enterprise", list_stage="negotiation") == ["c1"]
    assert _companies(both, list="enterprise-pipeline", list_stage="s-won") == ["c2"]
    assert _contacts(both, list="enterprise pipeline", list_stage="Negotiation") == ["p1"]
    assert _deals(both, list="enterprise pipeline") == ["d1", "d2"]
    assert _companies(both, list="no such list") == []


@pytest.mark.parametrize(
    ("kind", "filters", "word"),
    [
        ("companies", {"employees_min": -1}, "employees_min"),
        ("companies", {"employees_min": "many"}, "employees_min"),
        ("companies", {"employees_min": 10, "employees_max": 5}, "employees"),
        ("companies", {"revenue_max": 1e20}, "revenue_max"),
        ("contacts", {"last_contacted_after": "last tuesday"}, "last_contacted_after"),
        ("contacts", {"never_contacted": "yes"}, "never_contacted"),
        ("contacts", {"location": []}, "location"),
        ("deals", {"close_before": "2026-02-30"}, "close_before"),
        ("deals", {"amount_min": "1m"}, "amount_min"),
        ("deals", {"seniority": "vp"}, "seniority"),
        ("companies", {"stage": "won"}, "stage"),
    ],
)
def test_bad_values_are_typed_errors_that_change_nothing(
    both: psycopg.Connection[Any], kind: str, filters: dict[str, Any], word: str
) -> None:
    search = {"companies": s.search_companies, "contacts": s.search_contacts, "deals": s.search_deals}[kind]
    with pytest.raises(InvalidInputError, match=word):
        search(both, ORG_A, "", filters)


def test_the_tool_schema_has_the_new_filters() -> None:
    props = s.search_tool_schema()["input_schema"]["$defs"]["SearchFilters"]["properties"]
    for key in ("location", "employees_min", "revenue_max", "owner", "last_contacted_before", "never_contacted",
                "last_activity_after", "created_after", "list", "list_stage"):  # fmt: skip
        assert key in props, key
    # the contact filter models and the SQL's list of filters agree
    assert set(s.SearchFilters.model_fields) <= set(_sql_keys("contacts"))
    assert set(s.CompanyFilters.model_fields) == set(_sql_keys("companies")) - {"after"}
    assert set(s.DealFilters.model_fields) == set(_sql_keys("deals")) - {"after"}


def _sql_keys(kind: str) -> list[str]:
    import json
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "sql" / "index" / "search.sql").read_text()
    body = text[text.index("FUNCTION crm.search_filter_types") :]
    block = re.search(rf"WHEN '{kind}' THEN '(\{{.*?\}})'::jsonb", body, flags=re.S)
    assert block is not None
    return list(json.loads(block.group(1)))
