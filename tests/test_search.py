"""crm.search_contacts / crm.search_companies / crm.resolve_contact and their Python wrappers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmindex.cli import main as cli_main
from crmindex.errors import InvalidInputError, OrgMismatchError
from crmindex.index import search as s
from crmindex.index.writes import ensure_org, upsert_companies, upsert_contacts, upsert_deals
from crmindex.platform.db import bind_org, translate_errors
from tests.orgs import ORG_A, ORG_B

T0 = "2026-01-01T00:00:00+00:00"

COMPANIES = [
    {
        "crm_record_id": "co-stripe",
        "name": "Stripe",
        "domain": "https://www.stripe.com/",
        "industry": "FINANCIAL_SERVICES",
    },
    {"crm_record_id": "co-acme", "name": "Acme Corp", "domain": "acme.com", "industry": "COMPUTER_SOFTWARE"},
    {"crm_record_id": "co-globex", "name": "Globex Bank", "domain": "globex.com", "industry": "BANKING"},
    {
        "crm_record_id": "co-mercy",
        "name": "Mercy Hospital",
        "domain": "mercy.org",
        "industry": "HOSPITAL_HEALTH_CARE",
    },
]
CONTACTS = [
    # crm id, first, last, email, company id, company name, title, lifecycle, lead status
    (
        "c1",
        "John",
        "Smith",
        "john.smith@stripe.com",
        "co-stripe",
        "Stripe",
        "VP of Sales",
        "customer",
        "OPEN",
    ),
    (
        "c2",
        "José",
        "Müller",
        "jose@globex.com",
        "co-globex",
        "Globex Bank",
        "Director of Engineering",
        "lead",
        "NEW",
    ),
    ("c3", "Stan", "Lee", "stan@acme.com", "co-acme", "Acme Corp", "Account Executive", "customer", "OPEN"),
    (
        "c4",
        "Stanley",
        "Kubrick",
        "stanley@globex.com",
        "co-globex",
        "Globex Bank",
        "CFO",
        "opportunity",
        None,
    ),
    ("c5", "Jane", "Doe", "jane@acme.com", "co-acme", "Acme Corp", "VP Marketing", "lead", "CONNECTED"),
    (
        "c6",
        "Priya",
        "Patel",
        "priya@mercy.org",
        "co-mercy",
        "Mercy Hospital",
        "Director of Engineering",
        "customer",
        None,
    ),
    ("c7", "Stan", "Marsh", "stan.marsh@gmail.com", None, None, "Engineer", "subscriber", None),
    (
        "c8",
        "Will",
        "Jones",
        "will@stripe.com",
        "co-stripe",
        "Stripe",
        "Software Engineer",
        "customer",
        "OPEN",
    ),
    (
        "c9",
        "Maria",
        "Garcia",
        "maria@stripe.com",
        "co-stripe",
        "Stripe",
        "Head of Product",
        "evangelist",
        None,
    ),
    ("c10", "John", "Smyth", "jsmyth@acme.com", "co-acme", "Acme Corp", "Intern", "lead", None),
]
DEALS = [
    {
        "crm_record_id": "d1",
        "name": "Stripe renewal",
        "stage": "contractsent",
        "amount": 120000,
        "contact_crm_ids": ["c1"],
    },
    {
        "crm_record_id": "d2",
        "name": "Acme pilot",
        "stage": "qualifiedtobuy",
        "amount": 20000,
        "contact_crm_ids": ["c3"],
    },
    {
        "crm_record_id": "d3",
        "name": "Globex lost",
        "stage": "closedlost",
        "amount": 90000,
        "contact_crm_ids": ["c4"],
    },
]


def _contact_rows(prefix: str = "") -> list[dict[str, Any]]:
    keys = (
        "first_name",
        "last_name",
        "email",
        "company_crm_id",
        "company_name",
        "job_title",
        "lifecycle_stage",
        "lead_status",
    )
    return [
        {"crm_record_id": prefix + c[0], "crm_updated_at": T0, **dict(zip(keys, c[1:], strict=True))}
        for c in CONTACTS
    ]


@pytest.fixture
def crm(db: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """Org A with the rows above; org B with look-alikes (same names and emails) that must never leak."""
    for org in (ORG_A, ORG_B):
        ensure_org(db, org)
        upsert_companies(db, org, "hubspot", [{**c, "crm_updated_at": T0} for c in COMPANIES])
        upsert_contacts(db, org, "hubspot", _contact_rows())
        upsert_deals(db, org, "hubspot", [{**d, "crm_updated_at": T0} for d in DEALS])
    db.execute("ANALYZE crm.contact_index")
    db.execute("ANALYZE crm.company_index")
    yield db


def _ids(conn: psycopg.Connection[Any], org: uuid.UUID = ORG_A) -> dict[int, str]:
    return {
        int(r[0]): str(r[1])
        for r in conn.execute("SELECT id, crm_record_id FROM crm.contact_index WHERE org_id = %s", (org,))
    }


def _rec(hits: list[s.ContactHit]) -> list[str]:
    return [h.crm_record_id for h in hits]


# ---------------------------------------------------------------------------------------------------------
# text


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("Jonh Smiht", "c1"),  # transpositions in both words
        ("jhon smith", "c1"),
        # one typo of each kind (issue 18 item 3): a letter dropped, doubled or replaced, in either name; "Jovn" and
        # "Smitk" change that name's soundex code (tier 1 misses, the trigram tier finds them)
        ("Jhn Smith", "c1"),
        ("John Smth", "c1"),
        ("Joohn Smith", "c1"),
        ("John Smitth", "c1"),
        ("Jovn Smith", "c1"),
        ("John Smitk", "c1"),
        ("Smith Jovn", "c1"),
        ("Jose Mulder", "c2"),
        # both misspelt: soundex pair and trigram (0.25 for "sntaley") miss; tier 3: Kubrick's sound + the letter S
        ("Sntaley Kubrcik", "c4"),
        ("John Smith", "c1"),
        ("Jose Muller", "c2"),  # accents
        ("JOSÉ MÜLLER", "c2"),
        ("müller", "c2"),
        ("john.smith@stripe.com", "c1"),  # exact email
        ("JOHN.SMITH@STRIPE.COM", "c1"),
        ("kubrick", "c4"),
        ("stanl", "c4"),  # type-ahead prefix of the last word
        ("Will Jones", "c8"),  # a stop word in English FTS is a name here
        ("priya mercy", "c6"),  # name + company words
    ],
)
def test_text_finds_the_contact_first(crm: psycopg.Connection[Any], query: str, first: str) -> None:
    hits = s.search_contacts(crm, ORG_A, query).hits
    assert hits, query
    assert hits[0].crm_record_id == first
    assert all(h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_typo_tier_reads_the_name_vocabulary(crm: psycopg.Connection[Any]) -> None:
    """Tier 2 of a name search (issue 18 item 3) finds misspelt names through the org's name words
    (crm.contact_name_word), which triggers keep: a contact inserted later, then renamed, is found by a misspelt name
    whose soundex codes differ from the name's (tiers 0 and 1 miss it), in its org only."""
    row = {"crm_record_id": "c-voc", "first_name": "Ottoline", "last_name": "Vanderkamp"}
    upsert_contacts(crm, ORG_A, "hubspot", [{**row, "crm_updated_at": T0}])
    assert _rec(s.search_contacts(crm, ORG_A, "Ottokine Vanperkamp").hits) == ["c-voc"]
    assert s.search_contacts(crm, ORG_B, "Ottokine Vanperkamp").hits == []
    renamed = {**row, "first_name": "Philippa", "crm_updated_at": "2026-02-01T00:00:00Z"}
    upsert_contacts(crm, ORG_A, "hubspot", [renamed])
    assert _rec(s.search_contacts(crm, ORG_A, "Phikippa Vanperkamp").hits) == ["c-voc"]
    words = crm.execute(
        "SELECT array_agg(word ORDER BY word) FROM crm.contact_name_word WHERE org_id = %s AND word = ANY(%s)",
        (ORG_A, ["ottoline", "philippa"]),
    ).fetchone()
    assert words == (["ottoline", "philippa"],)  # insert-only: the old first name stays


@pytest.mark.parametrize("query", ["stripe.com", "@stripe.com", "  STRIPE.COM "])
def test_domain_finds_everyone_there(crm: psycopg.Connection[Any], query: str) -> None:
    assert sorted(_rec(s.search_contacts(crm, ORG_A, query).hits)) == ["c1", "c8", "c9"]


def test_company_name_and_typo(crm: psycopg.Connection[Any]) -> None:
    assert set(_rec(s.search_contacts(crm, ORG_A, "globex").hits)) == {"c2", "c4"}
    hits = s.search_companies(crm, ORG_A, "Stirpe").hits
    assert hits and hits[0].crm_record_id == "co-stripe"
    assert s.search_companies(crm, ORG_A, "stripe.com").hits[0].name == "Stripe"
    assert s.search_companies(crm, ORG_A, "jane@acme.com").hits[0].name == "Acme Corp"
    # a contact search on a misspelt company finds its people
    assert set(_rec(s.search_contacts(crm, ORG_A, "Stirpe").hits)) >= {"c1", "c8", "c9"}


def test_nothing_matches(crm: psycopg.Connection[Any]) -> None:
    assert s.search_contacts(crm, ORG_A, "zzzqqqxxx").hits == []
    assert s.search_contacts(crm, ORG_A, "a").hits != []  # too short for text: filter-only (everything)


# ---------------------------------------------------------------------------------------------------------
# filters


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"seniority": "vp"}, {"c1", "c5"}),
        ({"seniority": ["vp", "director"]}, {"c1", "c5", "c2", "c6"}),
        ({"seniority": "director", "department": "engineering"}, {"c2", "c6"}),
        ({"department": "engineering"}, {"c2", "c6", "c7", "c8"}),
        ({"lifecycle_stage": "customer"}, {"c1", "c3", "c6", "c8"}),
        ({"lifecycle_stage": ["lead", "evangelist"]}, {"c2", "c5", "c9", "c10"}),
        ({"lead_status": "OPEN"}, {"c1", "c3", "c8"}),
        ({"deal_stage": "contractsent"}, {"c1"}),
        ({"has_active_deal": True}, {"c1", "c3"}),
        ({"has_active_deal": False}, {"c2", "c4", "c5", "c6", "c7", "c8", "c9", "c10"}),
        ({"deal_value_min": 50000}, {"c1"}),
        ({"deal_value_max": 50000}, {"c3"}),
        ({"deal_value_min": 10000, "deal_value_max": 200000}, {"c1", "c3"}),
        ({"industry": "BANKING"}, {"c2", "c4"}),
        ({"industry": ["banking", "hospital health care"]}, {"c2", "c4", "c6"}),
        ({"industry_group": "fintech"}, {"c1", "c8", "c9", "c2", "c4"}),
        ({"company": "acme"}, {"c3", "c5", "c10"}),
        ({"company": "Acme Corporation"}, set()),
        ({"company": ["stripe", "mercy"]}, {"c1", "c8", "c9", "c6"}),
        ({"company_domain": "www.acme.com"}, {"c3", "c5", "c10"}),
        ({"email_domain": "@gmail.com"}, {"c7"}),
        ({"domain": "stripe.com"}, {"c1", "c8", "c9"}),
        ({"email": "JANE@acme.com"}, {"c5"}),
        ({"is_materialized": True}, set()),
        ({"updated_since": "2025-06-01"}, {c[0] for c in CONTACTS}),
        ({"updated_since": "2026-06-01T00:00:00Z"}, set()),
        ({"seniority": None}, {c[0] for c in CONTACTS}),  # null = no filter
    ],
)
def test_each_filter(crm: psycopg.Connection[Any], filters: dict[str, Any], expected: set[str]) -> None:
    got = set(_rec(s.search_contacts(crm, ORG_A, "", filters, limit=100).hits))
    assert got == expected


def test_filters_with_text_and_model(crm: psycopg.Connection[Any]) -> None:
    hits = s.search_contacts(crm, ORG_A, "stan", s.SearchFilters(company="acme")).hits
    assert _rec(hits) == ["c3"]
    hits = s.search_contacts(crm, ORG_A, "john", {"lifecycle_stage": "lead"}).hits
    assert _rec(hits)[0] == "c10"  # then fuzzy matches (few exact ones), all leads
    assert {h.lifecycle_stage for h in hits} == {"lead"}


@pytest.mark.parametrize(
    ("filters", "word"),
    [
        ({"colour": "red"}, "colour"),
        ({"seniority": "king"}, "seniority"),
        ({"seniority": 3}, "seniority"),
        ({"seniority": []}, "seniority"),
        ({"seniority": ["vp", 1]}, "seniority"),
        ({"department": "astrology"}, "department"),
        ({"industry": "FINTECH"}, "industry"),
        ({"industry_group": "no such group"}, "industry_group"),
        ({"has_active_deal": "yes"}, "has_active_deal"),
        ({"is_materialized": 1}, "is_materialized"),
        ({"deal_value_min": "50k"}, "deal_value_min"),
        ({"deal_value_max": -1}, "deal_value_max"),
        ({"deal_value_min": 10, "deal_value_max": 5}, "deal_value_min"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "2026-13-45"}, "updated_since"),
        ({"email_domain": "not a domain"}, "email_domain"),
        ({"company_domain": ""}, "company_domain"),
        ({"email": "nobody"}, "email"),
        ({"lifecycle_stage": "x" * 201}, "lifecycle_stage"),
        ({"after": "garbage"}, "after"),
        ({"after": 5}, "after"),
    ],
)
def test_invalid_filters_raise(crm: psycopg.Connection[Any], filters: dict[str, Any], word: str) -> None:
    with pytest.raises(InvalidInputError, match=word):
        s.search_contacts(crm, ORG_A, "john", filters)


def test_invalid_calls_raise(crm: psycopg.Connection[Any]) -> None:
    with pytest.raises(InvalidInputError, match="JSON object"), translate_errors():
        crm.execute("SELECT * FROM crm.search_contacts(%s, 'x', '[1]')", (ORG_A,))
    for limit in (0, -1, 1001):
        with pytest.raises(InvalidInputError, match="limit"):
            s.search_contacts(crm, ORG_A, "john", limit=limit)
    with pytest.raises(InvalidInputError, match="country"):
        s.search_contacts(crm, ORG_A, "", {"country": "US"})  # a company filter, not a contact one
    with pytest.raises(InvalidInputError, match="seniority"):
        s.search_companies(crm, ORG_A, "", {"seniority": "vp"})
    with pytest.raises(InvalidInputError), translate_errors():
        crm.execute("SELECT * FROM crm.search_contacts(NULL, 'x')")
    # NULL filters and NULL text are fine
    assert len(crm.execute("SELECT * FROM crm.search_contacts(%s, NULL, NULL)", (ORG_A,)).fetchall()) == 10


# ---------------------------------------------------------------------------------------------------------
# hostile input

HOSTILE = [
    "'; DROP TABLE crm.contact_index; --",
    "\\' OR 1=1 --",
    "john & smith | !stan :* ( ) <-> <2>",
    '"unbalanced quote',
    "a:* & b:* | !(c <-> d)",
    "%_%\\%",
    "🙂🚀 emoji 名前 Имя",
    "$$; SELECT pg_sleep(10); $$",
    "x" * 10_000,
    " ".join(["john"] * 3000),
    "@@@ ... --- '''",
    "@",
    "a.b",
    ".com",
    "é" * 5000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_is_just_text(crm: psycopg.Connection[Any], text: str) -> None:
    ids_a = set(_ids(crm, ORG_A))
    for hit in s.search_contacts(crm, ORG_A, text).hits:
        assert hit.id in ids_a
    s.search_companies(crm, ORG_A, text)
    s.resolve_contact(crm, ORG_A, text)
    s.search(crm, ORG_A, text)
    assert crm.execute("SELECT count(*) FROM crm.contact_index").fetchone() == (20,)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300
    )
)
def test_any_text_never_errors_or_leaks(crm: psycopg.Connection[Any], text: str) -> None:
    ids_a = set(_ids(crm, ORG_A))
    for hit in s.search_contacts(crm, ORG_A, text, limit=20).hits:
        assert hit.id in ids_a
    for chit in s.search_companies(crm, ORG_A, text, limit=5).hits:
        assert chit.crm_record_id.startswith("co-")
    result = s.search(crm, ORG_A, text, limit=5)
    assert all(h.id in ids_a for h in result.hits)
    assert all(c.id in ids_a for c in s.resolve_contact(crm, ORG_A, text))


# ---------------------------------------------------------------------------------------------------------
# row-level security


def test_rls_through_the_functions(crm: psycopg.Connection[Any]) -> None:
    crm.execute("SET ROLE crm_app")
    try:
        bind_org(crm, ORG_A)
        hits = s.search_contacts(crm, ORG_A, "John Smith").hits
        ids_a = set(_ids(crm, ORG_A))
        assert hits and all(h.id in ids_a for h in hits)
        assert s.search_contacts(crm, ORG_A, "", {"industry_group": "fintech"}).hits
        assert s.search_companies(crm, ORG_A, "stirpe").hits
        assert s.resolve_contact(crm, ORG_A, "Stan from Acme")
        for call in (
            lambda: s.search_contacts(crm, ORG_B, "John Smith"),
            lambda: s.search_companies(crm, ORG_B, "stripe"),
            lambda: s.resolve_contact(crm, ORG_B, "john"),
            lambda: s.interpret(crm, ORG_B, "vps"),
            lambda: s.search(crm, ORG_B, "vps"),
        ):
            with pytest.raises(OrgMismatchError):
                call()
        # the helpers are not the application's API (sql/platform/grants.sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            crm.execute("SELECT * FROM crm.search_contact_ids(%s, 'john', '{}', 5)", (ORG_A,))
        # unbound: refused, whichever org is named
        bind_org(crm, None)
        for call in (
            lambda: s.search_contacts(crm, ORG_A, "John Smith"),
            lambda: s.search_contacts(crm, ORG_B, "", {}),
            lambda: s.search_companies(crm, ORG_A, "stripe"),
            lambda: s.resolve_contact(crm, ORG_A, "john smith"),
        ):
            with pytest.raises(OrgMismatchError):
                call()
    finally:
        crm.execute("RESET ROLE")
        bind_org(crm, None)


def test_the_api_and_its_helpers_are_definer_with_a_pinned_search_path(crm: psycopg.Connection[Any]) -> None:
    """The public functions are the application role's API (no privilege on any helper needed); the helpers
    return ids and scores only. All run as their owner with the search path pinned."""
    rows = {
        str(r[0]): (bool(r[1]), list(r[2] or []))
        for r in crm.execute(
            "SELECT proname, prosecdef, proconfig FROM pg_proc WHERE pronamespace = 'crm'::regnamespace AND proname IN "
            "('search_contacts', 'search_companies', 'resolve_contact', 'search', 'interpret_query', "
            "'search_contact_ids', 'search_company_ids')"
        ).fetchall()
    }
    assert set(rows) == {"search_contacts", "search_companies", "resolve_contact", "search", "interpret_query",
                         "search_contact_ids", "search_company_ids"}  # fmt: skip
    for name, (definer, config) in rows.items():
        assert definer and "search_path=pg_catalog, pg_temp" in config, name


# ---------------------------------------------------------------------------------------------------------
# pagination, deletes, result content


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("", {}),
        ("john", {}),
        ("stan", {}),
        ("stripe", {}),
        ("", {"lifecycle_stage": ["customer", "lead"]}),
        ("acme", {}),
    ],
)
def test_keyset_pages_partition_the_result(
    crm: psycopg.Connection[Any], query: str, filters: dict[str, Any]
) -> None:
    full = s.search_contacts(crm, ORG_A, query, filters, limit=1000).hits
    pages: list[list[s.ContactHit]] = []
    after: str | None = None
    while True:
        page = s.search_contacts(crm, ORG_A, query, filters, limit=2, after=after)
        if not page.hits:
            break
        pages.append(page.hits)
        after = page.hits[-1].cursor
        assert len(pages) < 50
    flat = [h.id for p in pages for h in p]
    assert len(flat) == len(set(flat))
    assert flat == [h.id for h in full]


def test_deleted_rows_never_returned(crm: psycopg.Connection[Any]) -> None:
    upsert_contacts(
        crm,
        ORG_A,
        "hubspot",
        [
            {
                "crm_record_id": "c1",
                "crm_updated_at": "2026-02-01T00:00:00Z",
                "deleted_at": "2026-02-01T00:00:00Z",
            }
        ],
    )
    upsert_companies(
        crm,
        ORG_A,
        "hubspot",
        [
            {
                "crm_record_id": "co-acme",
                "crm_updated_at": "2026-02-01T00:00:00Z",
                "deleted_at": "2026-02-01T00:00:00Z",
            }
        ],
    )
    for query, filters in [
        ("John Smith", {}),
        ("john.smith@stripe.com", {}),
        ("stripe.com", {}),
        ("", {"seniority": "vp"}),
    ]:
        assert "c1" not in _rec(s.search_contacts(crm, ORG_A, query, filters).hits)
    assert s.resolve_contact(crm, ORG_A, "john.smith@stripe.com") == []
    assert "co-acme" not in [h.crm_record_id for h in s.search_companies(crm, ORG_A, "acme").hits]
    assert s.search_contacts(crm, ORG_A, "", {"company": "acme"}).hits == []
    jane = s.search_contacts(crm, ORG_A, "jane doe").hits[0]
    assert jane.industry is None and jane.company_id is None  # her company is gone


def test_results_carry_company_and_deal_summary(crm: psycopg.Connection[Any]) -> None:
    john = s.search_contacts(crm, ORG_A, "john.smith@stripe.com").hits[0]
    assert john.industry == "FINANCIAL_SERVICES"
    assert john.industry_groups is not None and "fintech" in john.industry_groups
    assert john.company_domain == "stripe.com"
    assert (
        john.has_active_deal and john.deal_stage == "contractsent" and float(john.deal_value or 0) == 120000
    )
    assert john.seniority == "vp" and john.department == "sales"
    stanley = s.search_contacts(crm, ORG_A, "kubrick").hits[0]
    assert not stanley.has_active_deal  # the deal is closed
    assert john.cursor.endswith(f":{john.id}")


@pytest.mark.parametrize(
    ("phrase", "subject"),
    [
        ("vps at fintech companies", "contacts"),
        ("john", "contacts"),
        ("fintech companies", "companies"),
        ("open deals", "deals"),
    ],
)
def test_search_rows_are_the_search_functions_rows_as_jsonb(
    crm: psycopg.Connection[Any], phrase: str, subject: str
) -> None:
    """crm.search builds its rows as json and casts them to jsonb once (issue 18: cheaper than to_jsonb per row):
    every value must still be what to_jsonb gives for the same rows (numbers, timestamps, arrays, NULLs), in order."""
    crm.execute("UPDATE crm.contact_index SET last_contacted_at = %s WHERE org_id = %s", (T0, ORG_A))
    row = crm.execute("SELECT crm.search(%s, %s, 50)", (ORG_A, phrase)).fetchone()
    assert row is not None
    doc = row[0]
    assert doc["subject"] == subject and doc["results"]
    fn = {"contacts": "search_contacts", "companies": "search_companies", "deals": "search_deals"}[subject]
    want = crm.execute(
        "SELECT jsonb_agg(to_jsonb(r.*) - 'ordinality' ORDER BY r.ordinality)"
        f" FROM crm.{fn}(%s, %s, %s::jsonb, 50) WITH ORDINALITY AS r",
        (ORG_A, doc["interpretation"]["text"], json.dumps(doc["interpretation"]["filters"])),
    ).fetchone()
    assert want is not None and doc["results"] == want[0]
    # the raw text too: the same jsonb, not only equal after parsing (jsonb normalizes numbers and key order)
    same = crm.execute(
        "SELECT crm.search(%s, %s, 50) -> 'results' = (SELECT jsonb_agg(to_jsonb(r.*) - 'ordinality' ORDER BY"
        f" r.ordinality) FROM crm.{fn}(%s, %s, %s::jsonb, 50) WITH ORDINALITY AS r)",
        (ORG_A, phrase, ORG_A, doc["interpretation"]["text"], json.dumps(doc["interpretation"]["filters"])),
    ).fetchone()
    assert same == (True,)
    if doc["subject"] == "contacts":
        assert any(r["last_contacted_at"] for r in doc["results"])
    # the next cursor: the last row's when the page is full, else none
    full = crm.execute("SELECT crm.search(%s, %s, 1)", (ORG_A, phrase)).fetchone()
    assert full is not None and full[0]["next_cursor"] == full[0]["results"][0]["cursor"]
    n = len(doc["results"])
    part = crm.execute("SELECT crm.search(%s, %s, %s)", (ORG_A, phrase, n + 1)).fetchone()
    assert part is not None and part[0]["next_cursor"] is None and len(part[0]["results"]) == n


# ---------------------------------------------------------------------------------------------------------
# entity resolution


def test_resolve_contact(crm: psycopg.Connection[Any]) -> None:
    got = s.resolve_contact(crm, ORG_A, "Stan from Acme")
    assert got[0].crm_record_id == "c3"
    assert "acme" in got[0].reason.lower()
    assert 0 < got[0].score <= 1
    got = s.resolve_contact(crm, ORG_A, "jane@acme.com")
    assert [c.crm_record_id for c in got] == ["c5"] and "exact email" in got[0].reason
    got = s.resolve_contact(crm, ORG_A, "Stan from Nowhere Inc")  # unknown company: whole text
    assert {c.crm_record_id for c in got} >= {"c3", "c7"}
    # materialized contacts rank higher among equals
    base = {c.crm_record_id: c.score for c in s.resolve_contact(crm, ORG_A, "stan", limit=10)}
    crm.execute(
        "UPDATE crm.contact_index SET is_materialized = TRUE WHERE org_id = %s AND crm_record_id = 'c7'",
        (ORG_A,),
    )
    got = s.resolve_contact(crm, ORG_A, "stan", limit=10)
    c7 = next(c for c in got if c.crm_record_id == "c7")
    assert c7.score > base["c7"] and "materialized" in c7.reason
    assert got[0].crm_record_id == "c7"


# ---------------------------------------------------------------------------------------------------------
# python surface


def test_tool_schema_and_params(crm: psycopg.Connection[Any]) -> None:
    tool = s.search_tool_schema()
    assert tool["name"] == "search_crm_index"
    schema = tool["input_schema"]
    json.dumps(schema)
    assert set(schema["properties"]) == {"query", "filters", "limit", "after"}
    assert "seniority" in json.dumps(schema)
    r = s.run_search_params(crm, ORG_A, {"query": "VPs at fintech companies"})
    assert r.interpretation is not None and set(_rec(r.hits)) == {"c1"}
    r = s.run_search_params(crm, ORG_A, {"query": "", "filters": {"seniority": "vp"}, "limit": 1})
    assert len(r.hits) == 1 and r.next_cursor == r.hits[0].cursor


def test_cli_search(crm: psycopg.Connection[Any], db_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["search", "--org", str(ORG_A), "--dsn", db_dsn, "vps at fintech companies"]) == 0
    out = capsys.readouterr().out
    assert "interpreted as:" in out and "John Smith" in out and "Jane Doe" not in out
    assert (
        cli_main(["search", "--org", str(ORG_A), "--dsn", db_dsn, "--json", "--limit", "1", "customers"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["hits"]) == 1 and doc["interpretation"]["filters"] == {"lifecycle_stage": ["customer"]}
    assert cli_main(["search", "--org", str(ORG_A), "--dsn", db_dsn, "--limit", "0", "x"]) == 2
