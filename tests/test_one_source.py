"""One source per fact (issue 14): what SQL defines, Python reads from the same definition; what tells CRMs apart
is their entry in ``crmindex.crm.registry``; records are refetched through one SQL function.

* the seniorities, departments, email pattern and CRM names Python uses are the database's;
* Python's email check and ``crm.is_email`` agree on awkward inputs (the sync drops exactly the emails the
  upsert would refuse);
* every department and seniority the classifiers can produce is in the one list;
* every CRM the protocols name has a registry entry whose adapters satisfy the protocols;
* ``crm.enqueue_hydration`` is the one enqueue of ``hydrate`` jobs (webhooks, hydration, the drainer's creates).
"""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from crmindex.crm.protocols import ChangeLister, Source
from crmindex.crm.registry import CRMS, Account, crm
from crmindex.errors import InvalidInputError
from crmindex.freshness.webhooks import enqueue_hydration
from crmindex.index.search import DEPARTMENTS, SENIORITIES, SearchFilters
from crmindex.platform.bounds import EMAIL_PATTERN, is_email
from crmindex.platform.sqlconst import sql_text, sql_texts
from tests.orgs import ORG_A

Conn = psycopg.Connection[tuple[object, ...]]


def _one(db: Conn, sql: str, params: tuple[object, ...] = ()) -> object:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def test_python_reads_the_lists_sql_defines(db: Conn) -> None:
    assert list(SENIORITIES) == _one(db, "SELECT crm.search_seniorities()")
    assert list(DEPARTMENTS) == _one(db, "SELECT crm.search_departments()")
    assert _one(db, "SELECT crm.email_pattern()") == EMAIL_PATTERN
    assert sorted(CRMS) == sorted(typing.get_args(Source)) == sorted(_one(db, "SELECT crm.crm_sources()"))


def test_the_sql_constant_reader_refuses_what_is_not_a_literal() -> None:
    with pytest.raises(LookupError):
        sql_text("index/derive.sql", "search_seniorities")  # an array, not a text
    with pytest.raises(LookupError):
        sql_texts("platform/bounds.sql", "email_pattern")  # a text, not an array
    with pytest.raises(LookupError):
        sql_texts("index/derive.sql", "title_seniority")  # not a constant


@pytest.mark.parametrize(
    "value",
    [
        "a@b.co",
        "Jane.Doe+x@Stripe.COM",
        "a@b",
        "a@b.",
        "a@@b.co",
        "@b.co",
        "a b@c.co",
        "a@b.co\n",
        "a@b.co ",
        "a\t@b.co",
        "a@b\u00a0c.co",
        "a@b.c\u2003",
        "ünï@cödé.de",
        "a@b.c.d",
        "",
    ],
)
def test_python_and_sql_agree_on_what_an_email_is(db: Conn, value: str) -> None:
    assert is_email(value) == _one(db, "SELECT crm.is_email(%s)", (value,))


def test_the_filter_models_take_the_sql_lists() -> None:
    assert (
        SearchFilters(seniority=list(SENIORITIES), department="customer_success").department
        == "customer_success"
    )
    with pytest.raises(ValueError, match="seniority must be one of owner, founder"):
        SearchFilters(seniority="boss")
    schema = SearchFilters.model_json_schema()["properties"]["department"]["anyOf"][1]
    assert schema == {"enum": list(DEPARTMENTS), "type": "string"}


def test_the_classifiers_name_only_listed_buckets(db: Conn) -> None:
    unlisted = db.execute(
        "SELECT DISTINCT substr(t.value, 3) FROM jsonb_each_text(crm.title_department_terms()) AS t "
        "WHERE t.value <> '99other' AND NOT substr(t.value, 3) = ANY(crm.search_departments())"
    ).fetchall()
    assert unlisted == []
    titles = ["CEO", "Founder", "Owner", "Partner", "VP Sales", "Head of IT", "Director", "Manager", "Senior",
              "Engineer", "Intern", "Executive Assistant", "Principal", "n/a", ""]  # fmt: skip
    got = db.execute(
        "SELECT crm.title_seniority(t), crm.title_department(t) FROM unnest(%s::text[]) AS t", (titles,)
    ).fetchall()
    assert {s for s, _ in got} == {*SENIORITIES, None}  # every bucket, and NULL for blanks
    assert {d for _, d in got} <= {*DEPARTMENTS, None}


def test_every_crm_has_one_entry_whose_adapters_fit_the_protocols() -> None:
    for name, entry in CRMS.items():
        assert entry.name == name and entry.real_hosts and entry.api_base.startswith("https://")
        client = entry.client(Account(entry.api_base, lambda: "token", None))
        try:
            assert client.source == name
            lister = entry.lister(client, {})
            assert lister.source == name and list(lister.steps)[:3] == ["companies", "contacts", "deals"]
            assert entry.fetcher(client, {}).source == name
            assert entry.writer(client).source == name
            plan = entry.plan_events([] if name == "hubspot" else {"events": []}, datetime.now(UTC), {})
            assert plan.errors == [] and not plan.hydrate
        finally:
            client.close()
    assert isinstance(crm("hubspot").lister(crm("hubspot").client(Account("https://x", lambda: "t", None)), {}),
                      ChangeLister)  # fmt: skip
    with pytest.raises(InvalidInputError, match="unknown CRM source 'pipedrive': hubspot or attio"):
        crm("pipedrive")


def test_hydration_is_queued_through_one_sql_function(db: Conn, org_a: uuid.UUID) -> None:
    enqueue_hydration(db, str(ORG_A), "hubspot", "contacts", ["1", "2", "1"])
    # the drainer's creates queue through the same function: same kind, same key, coalesced with the above
    db.execute("SELECT crm.writeback_after_create(%s, 'hubspot', 'contact', 'x@y.co', '2')", (ORG_A,))
    db.execute("SELECT crm.enqueue_hydration(%s, 'hubspot', 'deals', ARRAY['9', '', NULL])", (ORG_A,))
    jobs = db.execute(
        "SELECT dedupe_key, payload FROM crm.job WHERE org_id = %s AND kind = 'hydrate' ORDER BY dedupe_key",
        (ORG_A,),
    ).fetchall()
    assert jobs == [
        ("contacts:1", {"object_type": "contacts", "crm_record_id": "1"}),
        ("contacts:2", {"object_type": "contacts", "crm_record_id": "2"}),
        ("deals:9", {"object_type": "deals", "crm_record_id": "9"}),
    ]
    with pytest.raises(psycopg.Error, match="unknown object type 'tickets'"):
        db.execute("SELECT crm.enqueue_hydration(%s, 'hubspot', 'tickets', ARRAY['1'])", (ORG_A,))
