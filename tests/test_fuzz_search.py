"""Hostile search input: any text (LIKE/regex metacharacters, quotes, NUL, lone surrogates, huge), any filter JSON,
any limit or org id, through the SQL functions and the Python wrappers. The caller gets results of its own org or
a typed error (SQLSTATE CX00x / a crmindex error class), never an internal SQL error and never another org's row."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmindex.errors import CrmIndexError, InvalidInputError, OrgMismatchError
from crmindex.index import search as s
from crmindex.index.writes import ensure_org, upsert_companies, upsert_contacts, upsert_deals
from crmindex.platform.db import bind_org
from tests.conftest import PgServer
from tests.fuzz_strategies import (
    assert_clean_sql_error,
    assert_typed,
    fuzz,
    hostile_text,
    json_values,
    module_db,
)
from tests.test_search import COMPANIES, DEALS, ORG_A, ORG_B, T0, _contact_rows

Conn = psycopg.Connection[Any]
CONTACT_KEYS = [
    "seniority", "department", "lifecycle_stage", "lead_status", "deal_stage", "has_active_deal", "deal_value_min",
    "deal_value_max", "industry", "industry_group", "company", "company_domain", "email_domain", "domain", "email",
    "is_materialized", "updated_since", "after",
]  # fmt: skip
GOOD_VALUES: dict[str, list[Any]] = {
    "seniority": ["vp", ["vp", "c_suite"], "king"],
    "department": ["sales", ["engineering"], "astrology"],
    "has_active_deal": [True, False, "yes"],
    "deal_value_min": [0, 10_000, 1e15, 1e16, -1],
    "deal_value_max": [0, 1e15, 2**63],
    "industry_group": ["fintech", ["fintech", "healthcare"]],
    "company": ["acme", ["stripe", "globex"]],
    "domain": ["stripe.com", "acme.com"],
    "email": ["jane@acme.com"],
    "updated_since": ["2020-01-01", "2020-01-01T00:00:00Z", "0001-01-01", "9999-12-31", "2024-02-30"],
    "after": ["0:1", "1.5:99", "-1:0", "999999.99999999:999999999999999999"],
}


@dataclass
class Orgs:
    su: Conn  # superuser: row-level security off, the functions' own org filter is all there is
    app: Conn  # crm_app bound to org A
    ids_a: set[int]
    companies_a: set[str]


@pytest.fixture(scope="module")
def orgs(pg_server: PgServer, template_db: str) -> Iterator[Orgs]:
    for dsn in module_db(pg_server, template_db):
        with psycopg.connect(dsn, autocommit=True) as su, psycopg.connect(dsn, autocommit=True) as app:
            # org B holds look-alikes (same names, emails, companies) under other record ids
            for org, prefix in ((ORG_A, ""), (ORG_B, "b-")):
                ensure_org(su, org)
                upsert_companies(
                    su,
                    org,
                    "hubspot",
                    [
                        {**c, "crm_record_id": prefix + str(c["crm_record_id"]), "crm_updated_at": T0}
                        for c in COMPANIES
                    ],
                )
                upsert_contacts(su, org, "hubspot", _contact_rows(prefix))
                upsert_deals(su, org, "hubspot", [{**d, "crm_record_id": prefix + str(d["crm_record_id"]),
                                                   "crm_updated_at": T0} for d in DEALS])  # fmt: skip
            su.execute("ANALYZE crm.contact_index")
            ids = {
                int(r[0]) for r in su.execute("SELECT id FROM crm.contact_index WHERE org_id = %s", (ORG_A,))
            }
            companies = {
                str(r[0])
                for r in su.execute("SELECT crm_record_id FROM crm.company_index WHERE org_id = %s", (ORG_A,))
            }
            app.execute("SET ROLE crm_app")
            bind_org(app, ORG_A)
            yield Orgs(su, app, ids, companies)


def _wrapper_calls(text: str, filters: Any, limit: int, after: str | None) -> list[Callable[[Conn], Any]]:
    return [
        lambda c: s.search_contacts(c, ORG_A, text, filters, limit=limit, after=after).hits,
        lambda c: s.search_companies(c, ORG_A, text, None, limit=limit).hits,
        lambda c: s.search(c, ORG_A, text, limit=limit, after=after).hits,
        lambda c: s.resolve_contact(c, ORG_A, text, limit=limit),
        lambda c: [s.interpret(c, ORG_A, text)],
    ]


def _check_hits(orgs: Orgs, hits: list[Any]) -> None:
    for hit in hits:
        if isinstance(hit, s.CompanyHit):
            assert hit.crm_record_id in orgs.companies_a
        elif isinstance(hit, s.ContactHit | s.ResolveCandidate):
            assert hit.id in orgs.ids_a and not hit.crm_record_id.startswith("b-")


def _run(orgs: Orgs, calls: list[Callable[[Conn], Any]]) -> None:
    for conn in (orgs.su, orgs.app):
        for call in calls:
            try:
                hits = call(conn)
            except Exception as exc:
                assert_typed(exc)
                continue
            _check_hits(orgs, hits)
        conn.execute("SELECT 1")  # the session is still usable


@fuzz(120)
@given(text=hostile_text(300), limit=st.sampled_from([1, 5, 50, 1000]) | st.integers())
def test_any_text_and_limit_through_the_wrappers(orgs: Orgs, text: str, limit: int) -> None:
    _run(orgs, _wrapper_calls(text, None, limit, None))


def _filters() -> st.SearchStrategy[dict[str, Any]]:
    known = st.sampled_from(CONTACT_KEYS).flatmap(
        lambda k: st.tuples(
            st.just(k), st.sampled_from(GOOD_VALUES.get(k, ["x"])) | json_values(8) | hostile_text(40)
        )
    )
    unknown = st.tuples(hostile_text(30), json_values(4))
    huge = st.tuples(st.sampled_from(["company", "domain", "seniority"]), st.lists(st.just("acme"), min_size=90,
                                                                                  max_size=300))  # fmt: skip
    return st.lists(known | unknown | huge, max_size=5).map(dict)


@fuzz(150)
@given(
    text=hostile_text(60),
    filters=_filters(),
    limit=st.integers(-5, 1005),
    after=st.none() | hostile_text(30) | st.sampled_from(GOOD_VALUES["after"]),
)
def test_any_filters_through_the_wrappers(
    orgs: Orgs, text: str, filters: dict[str, Any], limit: int, after: str | None
) -> None:
    _run(orgs, _wrapper_calls(text, filters, limit, after)[:1])


SQL_CALLS = [
    "SELECT id, crm_record_id FROM crm.search_contacts(%(org)s, %(text)s, %(filters)s::jsonb, %(limit)s)",
    "SELECT id, crm_record_id FROM crm.search_companies(%(org)s, %(text)s, %(filters)s::jsonb, %(limit)s)",
    "SELECT id, crm_record_id FROM crm.resolve_contact(%(org)s, %(text)s, %(limit)s)",
    "SELECT r ->> 'id', r ->> 'crm_record_id' FROM jsonb_array_elements("
    "crm.search(%(org)s, %(text)s, %(limit)s, %(after)s) -> 'results') AS r",
]


@fuzz(150)
@given(
    text=hostile_text(200)
    .filter(lambda t: "\x00" not in t)
    .map(lambda t: t.encode("utf-8", "replace").decode()),
    filters=json_values(10) | _filters(),
    limit=st.integers(-(2**31), 2**31 - 1) | st.sampled_from([1, 20, 100, 1000]),
    after=st.none()
    | hostile_text(30).filter(lambda t: "\x00" not in t).map(lambda t: t.encode("utf-8", "replace").decode()),
)
def test_sql_functions_raise_only_cx_errors(
    orgs: Orgs, text: str, filters: Any, limit: int, after: Any
) -> None:
    try:
        doc = json.dumps(filters)
        orgs.su.execute("SELECT %s::jsonb", (doc,))
    except (ValueError, psycopg.DataError):
        return  # not JSON PostgreSQL accepts (NaN, \u0000, lone surrogates): the call never reaches our SQL
    params = {"org": ORG_A, "text": text, "filters": doc, "limit": limit, "after": after}
    for conn in (orgs.su, orgs.app):
        for sql in SQL_CALLS:
            try:
                rows = conn.execute(sql, params).fetchall()
            except psycopg.Error as exc:
                assert_clean_sql_error(exc)
                continue
            for rid, record in rows:
                assert not str(record).startswith("b-"), "a row of org B"
                if "companies" not in sql:
                    assert int(str(rid)) in orgs.ids_a


@fuzz(60)
@given(
    org=st.uuids().map(str)
    | hostile_text(40)
    | st.sampled_from([str(ORG_B), str(ORG_B).upper(), "{" + str(ORG_B) + "}"])
)
def test_any_org_id_is_refused_or_empty_never_another_orgs_rows(orgs: Orgs, org: str) -> None:
    for call in (
        lambda c: s.search_contacts(c, org, "stan").hits,
        lambda c: s.search(c, org, "john smith").hits,
        lambda c: s.resolve_contact(c, org, "stan from acme"),
        lambda c: s.search_companies(c, org, "acme").hits,
    ):
        try:
            hits = call(orgs.app)  # bound to A: any other org is refused
        except Exception as exc:
            assert_typed(exc)
        else:
            _check_hits(orgs, hits)
            assert uuid.UUID(org) == ORG_A
    # the superuser gets the named org's rows, and only those
    try:
        hits = s.search_contacts(orgs.su, org, "stan").hits
    except CrmIndexError as exc:
        assert_typed(exc)
    else:
        ids = {
            int(r[0]) for r in orgs.su.execute("SELECT id FROM crm.contact_index WHERE org_id = %s", (org,))
        }
        assert {h.id for h in hits} <= ids


def test_regressions_inputs_that_used_to_leak_raw_driver_errors(orgs: Orgs) -> None:
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: s.search_contacts(orgs.su, ORG_A, "a\x00b"), "NUL"),
        (lambda: s.search_contacts(orgs.su, ORG_A, "a\ud800"), "surrogate"),
        (lambda: s.search_contacts(orgs.su, "not-a-uuid", "a"), "uuid"),
        (lambda: s.search_contacts(orgs.su, ORG_A, "a", limit=2**40), "limit"),
        (lambda: s.resolve_contact(orgs.su, ORG_A, "a", limit=2**31), "limit"),
        (lambda: s.search_contacts(orgs.su, ORG_A, "a", {"company": "a\x00"}), "NUL"),
        (lambda: s.search_contacts(orgs.su, ORG_A, "a", {"deal_value_min": float("nan")}), "NaN"),
        (lambda: s.search(orgs.su, ORG_A, "a", after="\x00"), "NUL"),
    ]
    for call, word in cases:
        with pytest.raises(InvalidInputError, match=word):
            call()
    with pytest.raises(OrgMismatchError):
        s.search_contacts(orgs.app, ORG_B, "stan")
