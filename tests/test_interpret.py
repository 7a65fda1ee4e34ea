"""crm.interpret_query: copilot phrases -> filters + text, and crm.search (interpretation + results)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
        # "deals" is what is asked for (issue 17): a deal search by amount, not contacts with deals
        ("deals over $1.5m", {"amount_min": 1500000}, ""),
        ("contacts with deals over $1.5m", {"has_active_deal": True, "deal_value_min": 1500000}, ""),
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
    # whatever it found is accepted by the search of its subject as it is
    _search_subject(conn, got)


def _search_subject(conn: psycopg.Connection[Any], got: s.Interpretation) -> None:
    if got.subject == "companies":
        s.search_companies(conn, ORG, got.text, got.filters, limit=5)
    elif got.subject == "deals":
        s.search_deals(conn, ORG, got.text, got.filters, limit=5)
    else:
        s.search_contacts(conn, ORG, got.text, got.filters, limit=5)


@pytest.mark.parametrize(
    "text",
    ["over 9" * 400, "between 1 and", "> 1e400k", "over 99999999999999999999999m", "at at at from from"],
)
def test_odd_phrases(conn: psycopg.Connection[Any], text: str) -> None:
    got = s.interpret(conn, ORG, text)
    _search_subject(conn, got)


@pytest.mark.parametrize(
    ("query", "subject", "filters", "not_understood"),
    [
        (
            "fintech companies in Germany",
            "companies",
            {"industry_group": ["fintech"], "location": ["DE"]},
            [],
        ),
        ("companies with more than 500 employees", "companies", {"employees_min": 501}, []),
        (
            "VPs at companies with revenue above 50 million",
            "contacts",
            {"seniority": ["vp"], "revenue_min": 50000000},
            [],
        ),
        ("open deals over 250k", "deals", {"is_open": True, "amount_min": 250000}, []),
        ("hot leads", "contacts", {"lifecycle_stage": ["lead"]}, ["hot"]),
        ("VPs who went to Stanford", "contacts", {"seniority": ["vp"]}, ["went to stanford"]),
        ("fintech companies in the Bay Area", "companies", {"industry_group": ["fintech"]}, ["bay area"]),
        # the classes of the second hold-out set's failures (tests/eval/README.md)
        ("people with gmail addresses", "contacts", {"email_domain": ["gmail.com"]}, []),
        ("the company with the domain initech.com", "companies", {"domain": ["initech.com"]}, []),
        (
            "leads in attempted to contact status",
            "contacts",
            {"lifecycle_stage": ["lead"], "lead_status": ["ATTEMPTED_TO_CONTACT"]},
            [],
        ),
        ("deals in the Discovery stage", "deals", {}, ["discovery"]),  # a stage the org does not have
        ("deals we lost", "deals", {"won": False}, []),  # won: false is closed lost
    ],
)
def test_subject_filters_and_words_not_understood(
    conn: psycopg.Connection[Any],
    query: str,
    subject: str,
    filters: dict[str, Any],
    not_understood: list[str],
) -> None:
    got = s.interpret(conn, ORG, query)
    assert (got.subject, got.filters, got.text, got.not_understood) == (subject, filters, "", not_understood)
    assert got.explanation.startswith(subject)


def test_words_not_understood_never_empty_the_results(conn: psycopg.Connection[Any]) -> None:
    upsert_contacts(
        conn, ORG, "hubspot", [{"crm_record_id": "h1", "first_name": "Hal", "lifecycle_stage": "lead"}]
    )
    r = s.search(conn, ORG, "hot leads")
    assert [h.crm_record_id for h in r.hits] == ["h1"]
    assert r.not_understood == ["hot"] and r.interpretation is not None and r.interpretation.text == ""


def test_relative_dates_are_resolved_in_the_org_time_zone(conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE crm.org SET time_zone = 'Pacific/Auckland' WHERE org_id = %s", (ORG,))
    row = conn.execute("SELECT (now() AT TIME ZONE 'Pacific/Auckland')::date").fetchone()
    assert row is not None
    today = row[0]
    got = s.interpret(conn, ORG, "contacts I haven't talked to in 90 days")
    bound = datetime.fromisoformat(got.filters["last_contacted_before"])
    # midnight in Auckland, 90 days before Auckland's today
    local = bound.astimezone(ZoneInfo("Pacific/Auckland"))
    assert (local.date(), local.hour, local.minute) == (today - timedelta(days=90), 0, 0)
    got = s.interpret(conn, ORG, "deals closing this month over 100k")
    assert got.subject == "deals"
    assert got.filters["close_after"] == today.replace(day=1).isoformat()
    assert got.filters["amount_min"] == 100000 and got.filters["is_open"] is True


def test_owner_and_stage_labels(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO crm.crm_owner (org_id, crm_source, owner_id, first_name, last_name, email)"
        " VALUES (%s, 'hubspot', '7', 'Raj', 'Patel', 'raj@ourco.com')",
        (ORG,),
    )
    conn.execute(
        "INSERT INTO crm.crm_pipeline_stage (org_id, crm_source, object_type, pipeline_id, pipeline_label, stage_id,"
        " stage_label, display_order) VALUES (%s, 'hubspot', 'deals', 'default', 'Sales Pipeline', 'contractsent',"
        " 'Contract Sent', 3)",
        (ORG,),
    )
    got = s.interpret(conn, ORG, "deals owned by Raj Patel in Contract Sent")
    assert (got.subject, got.filters) == ("deals", {"owner": ["raj patel"], "stage": ["contract sent"]})
    got = s.interpret(conn, ORG, "Raj's customers")
    assert got.filters == {"owner": ["raj"], "lifecycle_stage": ["customer"]} and got.text == ""
    got = s.interpret(conn, ORG, "Raj Patel's open deals")  # the owner's full name, not "raj" plus text
    assert (got.subject, got.filters, got.text) == ("deals", {"owner": ["raj patel"], "is_open": True}, "")
    got = s.interpret(conn, ORG, "customers with a deal in Contract Sent")
    assert got.filters == {
        "lifecycle_stage": ["customer"],
        "has_active_deal": True,
        "deal_stage": ["contract sent"],
    }


# ---------------------------------------------------------------------------------------------------------------
# General rules added with the third hold-out set (issue 17): one case per rule, phrased unlike the set's questions.
# The org is the evaluation org of bench/search_quality.py: owners Jane Smith, Raj Patel, Maria Lopez; the Sales
# Pipeline (Appointment Scheduled ... Closed Lost); the Attio list "Enterprise pipeline" (Prospecting, Negotiation,
# Won); companies Acme, Globex, Initech, Stripe, Mercy Hospital.
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def seeded(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    from bench.search_quality import seed_org

    seed_org(conn, ORG)
    return conn


@pytest.mark.parametrize(
    ("query", "subject", "filters", "text", "not_understood"),
    [
        # names the org does not have are not understood, as the bare name (tests/eval/README.md)
        ("leads assigned to Oliver", "contacts", {"lifecycle_stage": ["lead"]}, "", ["oliver"]),
        ("opportunities handled by Tom Becker", "deals", {}, "", ["tom becker"]),
        ("accounts owned by bob@ourco.com", "companies", {}, "", ["bob@ourco.com"]),
        ("contacts on the Renewals list", "contacts", {}, "", ["renewals"]),
        ("deals in our Q4 Renewals pipeline", "deals", {}, "", ["q4 renewals"]),
        ("deals at stage Discovery", "deals", {}, "", ["discovery"]),
        # an email address naming a person is text; an owner's email is the owner
        ("who is stan@acme.com", "contacts", {}, "stan@acme.com", []),
        (
            "leads assigned to raj@ourco.com",
            "contacts",
            {"lifecycle_stage": ["lead"], "owner": ["raj@ourco.com"]},
            "",
            [],
        ),
        # owners: more cues, an owner's name before "owns / manages", after "for / under"
        ("accounts handled by Jane Smith", "companies", {"owner": ["jane smith"]}, "", []),
        ("people Raj manages in Spain", "contacts", {"owner": ["raj"], "location": ["ES"]}, "", []),
        ("opps for Maria over 20k", "deals", {"owner": ["maria"], "amount_min": 20000}, "", []),
        ("deals for Acme", "deals", {"company": ["acme"]}, "", []),  # no owner Acme: the company
        # deal shorthand and stages: "opps", a stage label before the deal word, several stages, overdue
        ("open opps in Negotiation", "deals", {"is_open": True, "stage": ["negotiation"]}, "", []),
        ("qualified to buy opportunities", "deals", {"stage": ["qualified to buy"]}, "", []),
        ("closed won deals", "deals", {"won": True}, "", []),  # a closed stage before "deals" is won / lost
        ("closed deals", "deals", {"is_open": False}, "", []),
        (
            "deals in Negotiation or Contract Sent",
            "deals",
            {"stage": ["contract sent", "negotiation"]},
            "",
            [],
        ),
        ("deals at globex.com", "deals", {"company_domain": ["globex.com"]}, "", []),
        # list stages after "marked" / "sitting in"
        (
            "companies marked Prospecting on the Enterprise pipeline",
            "companies",
            {"list": ["enterprise pipeline"], "list_stage": ["prospecting"]},
            "",
            [],
        ),
        # lead status without the word "status"
        ("contacts flagged as bad timing", "contacts", {"lead_status": ["BAD_TIMING"]}, "", []),
        (
            "unqualified leads",
            "contacts",
            {"lead_status": ["UNQUALIFIED"], "lifecycle_stage": ["lead"]},
            "",
            [],
        ),
        # size segments: after a preposition they describe the people's companies; "enterprise" before an industry
        (
            "finance managers at SMEs",
            "contacts",
            {"seniority": ["manager"], "department": ["finance"], "employees_max": 99},
            "",
            [],
        ),
        (
            "enterprise banks in Germany",
            "companies",
            {"employees_min": 1000, "industry_group": ["banking"], "location": ["DE"]},
            "",
            [],
        ),
        ("enterprise software companies", "companies", {"industry_group": ["software"]}, "", []),
        # role nouns and request words
        ("business owners in Texas", "contacts", {"seniority": ["owner"], "location": ["texas"]}, "", []),
        ("sales reps at Globex", "contacts", {"department": ["sales"], "company": ["globex"]}, "", []),
        ("pull up John Smith", "contacts", {}, "john smith", []),
        # money and revenue ranges without a comparison word; the field named again after the number
        (
            "companies with €5M-€20M in revenue",
            "companies",
            {"revenue_min": 5000000, "revenue_max": 20000000},
            "",
            [],
        ),
        ("deals worth 10k to 50k", "deals", {"amount_min": 10000, "amount_max": 50000}, "", []),
        (
            "directors at companies earning over $1B in revenue",
            "contacts",
            {"seniority": ["director"], "revenue_min": 1000000000},
            "",
            [],
        ),
        # employee counts: "N or more employees", the field before the number
        ("companies with 500 or more employees", "companies", {"employees_min": 500}, "", []),
        ("companies with a headcount over 500", "companies", {"employees_min": 501}, "", []),
        ("firms employing fewer than 50 people", "companies", {"employees_max": 49}, "", []),
        # a person's company after "of" or a possessive (a department after "of" stays one)
        (
            "CEO of Initech",
            "contacts",
            {"seniority": ["c_suite"], "department": ["executive"], "company": ["initech"]},
            "",
            [],
        ),
        ("Globex's engineers", "contacts", {"company": ["globex"], "department": ["engineering"]}, "", []),
        ("employees of Acme", "contacts", {"company": ["acme"]}, "", []),
        ("head of sales", "contacts", {"seniority": ["head"], "department": ["sales"]}, "", []),
        # a negated contact verb without a period: never contacted
        (
            "leads who haven't been contacted",
            "contacts",
            {"lifecycle_stage": ["lead"], "never_contacted": True},
            "",
            [],
        ),
        # a comparison after the number; a number of days / months is a period, never money
        ("deals valued at 1M or more", "deals", {"amount_min": 1000000}, "", []),
        ("companies with revenue of $10M or more", "companies", {"revenue_min": 10000000}, "", []),
        (
            "chief revenue officers who live in Berlin",
            "contacts",
            {"seniority": ["c_suite"], "department": ["sales"], "location": ["berlin"]},
            "",
            [],
        ),
        # a list of places written with commas
        (
            "VPs in Germany, Austria and Switzerland",
            "contacts",
            {"seniority": ["vp"], "location": ["AT", "CH", "DE"]},
            "",
            [],
        ),
        # "X-based", "based out of", the country "US" written before the rest (not the pronoun "us")
        ("Berlin-based startups", "companies", {"location": ["berlin"]}, "", []),
        ("US-based companies", "companies", {"location": ["US"]}, "", []),
        ("US customers", "contacts", {"location": ["US"], "lifecycle_stage": ["customer"]}, "", []),
        ("show us the customers", "contacts", {"lifecycle_stage": ["customer"]}, "", []),
        ("companies based out of Texas", "companies", {"location": ["texas"]}, "", []),
        # no filter says "without an owner": not understood, never the "owner" seniority
        ("contacts without an owner", "contacts", {}, "", ["without an owner"]),
        ("unassigned leads", "contacts", {"lifecycle_stage": ["lead"]}, "", ["unassigned"]),
        # regions as sets of countries
        (
            "companies in Southeast Asia",
            "companies",
            {"location": ["BN", "ID", "KH", "LA", "MM", "MY", "PH", "SG", "TH", "TL", "VN"]},
            "",
            [],
        ),
    ],
)
def test_general_rules(
    seeded: psycopg.Connection[Any],
    query: str,
    subject: str,
    filters: dict[str, Any],
    text: str,
    not_understood: list[str],
) -> None:
    got = s.interpret(seeded, ORG, query)
    assert (got.subject, got.filters, got.text, got.not_understood) == (
        subject,
        filters,
        text,
        not_understood,
    )


def test_general_region_sets(seeded: psycopg.Connection[Any]) -> None:
    emea = set(s.interpret(seeded, ORG, "companies in EMEA").filters["location"])
    europe = set(s.interpret(seeded, ORG, "companies in Europe").filters["location"])
    assert europe < emea and {"AE", "SA", "IL", "ZA", "NG", "EG"} <= emea
    apac = s.interpret(seeded, ORG, "contacts in Asia-Pacific").filters["location"]
    assert {"AU", "JP", "SG", "IN", "CN"} <= set(apac) and apac == sorted(apac)
    assert "TR" in s.interpret(seeded, ORG, "leads in the Middle East").filters["location"]


def test_general_date_rules(seeded: psycopg.Connection[Any]) -> None:
    row = seeded.execute("SELECT (now() AT TIME ZONE 'America/New_York')::date").fetchone()
    assert row is not None
    today = row[0]
    # "closing" makes deals the subject, whatever asks
    got = s.interpret(seeded, ORG, "anything closing next quarter")
    q0 = datetime(today.year, (today.month - 1) // 3 * 3 + 1, 1).date()
    nq = datetime(q0.year + (q0.month + 2) // 12, (q0.month + 2) % 12 + 1, 1).date()
    assert got.subject == "deals" and got.filters["is_open"] is True
    assert got.filters["close_after"] == nq.isoformat() and got.text == "" and got.not_understood == []
    # "before / since <this|last> <period>": one bound, the period's start
    got = s.interpret(seeded, ORG, "customers we last talked to before this month")
    bound = datetime.fromisoformat(got.filters["last_contacted_before"]).astimezone(
        ZoneInfo("America/New_York")
    )
    assert (
        bound.date() == today.replace(day=1) and "last_contacted_after" not in got.filters and got.text == ""
    )
    # a quarter by number: this year's, next year's for deals still to close once it is over
    got = s.interpret(seeded, ORG, "deals won in Q2 2025")
    assert (got.filters["close_after"], got.filters["close_before"], got.filters["won"]) == (
        "2025-04-01",
        "2025-07-01",
        True,
    )
    got = s.interpret(seeded, ORG, "opps closing in Q1")
    year = today.year + (1 if today.month > 3 else 0)
    assert (got.filters["close_after"], got.filters["close_before"]) == (f"{year}-01-01", f"{year}-04-01")
    # "over N months ago" is a date, not money; "closing within N weeks" looks ahead
    got = s.interpret(seeded, ORG, "customers last contacted over 6 months ago")
    assert set(got.filters) == {"lifecycle_stage", "last_contacted_before"} and got.not_understood == []
    got = s.interpret(seeded, ORG, "opportunities closing within 3 weeks")
    assert (got.filters["close_after"], got.filters["close_before"]) == (
        today.isoformat(),
        (today + timedelta(days=21)).isoformat(),
    )
    # overdue, said with the close date
    got = s.interpret(seeded, ORG, "opportunities with a close date in the past")
    assert got.filters == {"is_open": True, "close_before": today.isoformat()} and got.text == ""
    # a month by name (the latest one begun; for deals still to close, the next one) and a calendar year
    got = s.interpret(seeded, ORG, "customers not contacted since September")
    sept = today.year if today.month >= 9 else today.year - 1
    bound = datetime.fromisoformat(got.filters["last_contacted_before"]).astimezone(
        ZoneInfo("America/New_York")
    )
    assert bound.date().isoformat() == f"{sept}-09-01" and "never_contacted" not in got.filters
    got = s.interpret(seeded, ORG, "deals closed in 2025")
    assert got.filters == {"is_open": False, "close_after": "2025-01-01", "close_before": "2026-01-01"}
    # to date (one bound, the period's start); "this past week" is the last 7 days
    got = s.interpret(seeded, ORG, "deals won YTD")
    assert (
        got.filters == {"won": True, "close_after": today.replace(month=1, day=1).isoformat()}
        and got.text == ""
    )
    got = s.interpret(seeded, ORG, "leads created this past week")
    bound = datetime.fromisoformat(got.filters["created_after"]).astimezone(ZoneInfo("America/New_York"))
    assert bound.date() == today - timedelta(days=7) and got.text == ""
    # an ISO date is no money range
    got = s.interpret(seeded, ORG, "deals created since 2025-06-01")
    assert set(got.filters) == {"created_after"} and got.text == ""
