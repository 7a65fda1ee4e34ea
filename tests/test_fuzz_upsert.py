"""Hostile upsert batches: wrong types, missing ids, derived/unknown keys, overlong strings, bad timestamps,
duplicates within a batch, unicode, NUL and NaN, through the SQL functions and the Python wrappers.
A bad batch raises the typed error (CX001/CX002, InvalidRowError/InvalidInputError) and changes nothing;
a good batch is applied (newest duplicate wins); another org's rows are never touched."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmindex.errors import InvalidInputError, InvalidRowError
from crmindex.index import writes as index
from tests.conftest import PgServer
from tests.fuzz_strategies import (
    assert_clean_sql_error,
    assert_typed,
    fuzz,
    hostile_text,
    json_values,
    module_db,
)
from tests.orgs import ORG_A, ORG_B

Conn = psycopg.Connection[Any]
T0 = datetime(2025, 1, 1, tzinfo=UTC)
TABLES = {"contacts": "crm.contact_index", "companies": "crm.company_index", "deals": "crm.deal_index"}
WRAPPERS = {
    "contacts": index.upsert_contacts,
    "companies": index.upsert_companies,
    "deals": index.upsert_deals,
}
COLUMNS = {
    "contacts": ["first_name", "last_name", "email", "phone", "company_name", "company_crm_id", "job_title",
                 "lifecycle_stage", "lead_status"],
    "companies": ["name", "domain", "industry", "employee_count", "annual_revenue", "city", "country"],
    "deals": ["name", "stage", "pipeline", "amount", "close_date", "is_closed", "company_crm_id", "owner_crm_id",
              "contact_crm_ids", "associations_read_at"],
}  # fmt: skip
COMMON = ["crm_created_at", "crm_updated_at", "last_webhook_at", "deleted_at", "crm_source"]
FORBIDDEN = ["id", "org_id", "email_domain", "seniority", "department", "has_active_deal", "deal_value",
             "industry_groups", "is_active", "field_versions", "merged_into", "is_materialized", "shoe_size", ""]  # fmt: skip
RECORD_IDS = ["r1", " r1 ", "r2", "r3", "101"]


def _snapshot(conn: Conn, org: uuid.UUID) -> list[str]:
    out = []
    for table in (*TABLES.values(), "crm.deal_contact"):
        row = conn.execute(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} AS t "
            "WHERE org_id = %s",
            (org,),
        ).fetchone()
        assert row is not None
        out.append(str(row[0]))
    return out


@pytest.fixture(scope="module")
def conn(pg_server: PgServer, template_db: str) -> Iterator[Conn]:
    for dsn in module_db(pg_server, template_db):
        with psycopg.connect(dsn, autocommit=True) as c:
            for org in (ORG_A, ORG_B):
                index.ensure_org(c, org)
            # org B holds the same record ids: a write for A must never reach them
            index.upsert_contacts(
                c, ORG_B, "hubspot", [{"crm_record_id": r.strip(), "first_name": "B"} for r in RECORD_IDS]
            )
            index.upsert_companies(
                c, ORG_B, "hubspot", [{"crm_record_id": r.strip(), "name": "B"} for r in RECORD_IDS]
            )
            index.upsert_deals(
                c,
                ORG_B,
                "hubspot",
                [{"crm_record_id": r.strip(), "contact_crm_ids": ["r1"]} for r in RECORD_IDS],
            )
            yield c


TIMESTAMPS = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    st.sampled_from(
        ["2025-01-01T00:00:00Z", "2025-13-01", "yesterday", "infinity", "-infinity", "0000-00-00", "", "5"]
    ),
    st.integers(),
)
VALUES = st.one_of(
    st.text(alphabet="abcXYZ é名%_\\'", max_size=20),
    hostile_text(60),
    st.sampled_from(
        ["x" * 100_000, "a@b.co", "not an email", "  Jane.Doe@Stripe.COM ", "https://www.acme.com/x"]
    ),
    json_values(4),
    TIMESTAMPS,
    st.integers(min_value=-(2**70), max_value=2**70),
)


def _row(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {c: VALUES for c in COLUMNS[kind] + COMMON}
    optional.update({c: TIMESTAMPS for c in ("crm_updated_at", "deleted_at")})
    optional["crm_source"] = st.sampled_from(["hubspot", "attio", "salesforce"])
    if kind == "deals":
        optional["contact_crm_ids"] = st.lists(st.sampled_from(RECORD_IDS) | VALUES, max_size=4) | VALUES
    forbidden = st.dictionaries(st.sampled_from(FORBIDDEN) | hostile_text(10), VALUES, max_size=1)
    base = st.fixed_dictionaries(
        {},
        optional={
            "crm_record_id": st.sampled_from(RECORD_IDS) | hostile_text(20) | json_values(2),
            **optional,
        },
    )
    return st.tuples(base, st.one_of(st.just({}), st.just({}), forbidden)).map(lambda t: {**t[0], **t[1]})


def _batch() -> st.SearchStrategy[tuple[str, list[Any]]]:
    return st.sampled_from(list(TABLES)).flatmap(
        lambda kind: st.tuples(st.just(kind), st.lists(_row(kind) | json_values(2), max_size=6))
    )


def _present(conn: Conn, kind: str, rows_doc: str) -> bool:
    """Every crm_record_id of the batch now has a row of org A in the table."""
    row = conn.execute(
        f"SELECT count(DISTINCT btrim(e ->> 'crm_record_id')) = count(DISTINCT t.crm_record_id) "
        f"FROM jsonb_array_elements(%s::jsonb) AS e LEFT JOIN {TABLES[kind]} AS t "
        "ON t.org_id = %s AND t.crm_source = 'hubspot' AND t.crm_record_id = btrim(e ->> 'crm_record_id')",
        (rows_doc, ORG_A),
    ).fetchone()
    return bool(row and row[0])


@fuzz(150)
@given(
    batch=_batch(), source=st.sampled_from(["hubspot", "hubspot", "attio", "Salesforce", "hub\x00spot", ""])
)
def test_python_wrappers_reject_bad_batches_whole_and_typed(
    conn: Conn, batch: tuple[str, list[Any]], source: str
) -> None:
    kind, rows = batch
    before_a, before_b = _snapshot(conn, ORG_A), _snapshot(conn, ORG_B)
    try:
        WRAPPERS[kind](conn, ORG_A, source, rows)  # type: ignore[arg-type]
    except Exception as exc:
        assert_typed(exc)
        assert isinstance(exc, InvalidRowError | InvalidInputError)
        assert _snapshot(conn, ORG_A) == before_a  # the whole batch changed nothing
    else:
        if source == "hubspot":
            assert _present(conn, kind, index.rows_json(rows))
    assert _snapshot(conn, ORG_B) == before_b


@fuzz(120)
@given(batch=_batch())
def test_sql_upserts_raise_only_cx_errors_and_change_nothing(
    conn: Conn, batch: tuple[str, list[Any]]
) -> None:
    kind, rows = batch
    try:
        doc = json.dumps(rows)
        conn.execute("SELECT %s::jsonb", (doc,))
    except (ValueError, psycopg.DataError):
        return  # not JSON PostgreSQL accepts: the call never reaches our SQL
    before_a, before_b = _snapshot(conn, ORG_A), _snapshot(conn, ORG_B)
    try:
        conn.execute(f"SELECT * FROM crm.upsert_{kind}(%s, 'hubspot', %s::jsonb)", (ORG_A, doc))
    except psycopg.Error as exc:
        assert_clean_sql_error(exc)
        assert _snapshot(conn, ORG_A) == before_a
    else:
        assert _present(conn, kind, doc)
    assert _snapshot(conn, ORG_B) == before_b


NAMES = st.text(alphabet="abcXYZé名%_\\'\"-", min_size=1, max_size=30)


@fuzz(60)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 4), NAMES, st.integers(0, 3), st.text(alphabet="abc.", min_size=1, max_size=8)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_a_good_batch_is_applied_and_the_newest_duplicate_wins(
    conn: Conn, rows: list[tuple[int, str, int, str]]
) -> None:
    prefix = uuid.uuid4().hex[:8]
    batch = [
        {
            "crm_record_id": f"{prefix}-{i}",
            "first_name": name,
            "job_title": f"VP {name}",
            "email": f"{local}@{prefix}.example.com",
            "crm_updated_at": (T0 + timedelta(hours=hours)).isoformat(),
        }
        for i, name, hours, local in rows
    ]
    before_b = _snapshot(conn, ORG_B)
    result = index.upsert_contacts(conn, ORG_A, "hubspot", batch)
    expected: dict[str, dict[str, Any]] = {}
    for row in batch:  # newest crm_updated_at wins; on a tie, the later row
        seen = expected.get(row["crm_record_id"])
        if seen is None or row["crm_updated_at"] >= seen["crm_updated_at"]:
            expected[row["crm_record_id"]] = row
    assert result.inserted == len(expected)
    stored = {
        str(r[0]): (r[1], r[2], r[3])
        for r in conn.execute(
            "SELECT crm_record_id, first_name, email, seniority FROM crm.contact_index "
            "WHERE org_id = %s AND crm_record_id LIKE %s",
            (ORG_A, prefix + "-%"),
        )
    }
    assert stored == {rid: (r["first_name"], r["email"].lower(), "vp") for rid, r in expected.items()}
    assert _snapshot(conn, ORG_B) == before_b


def test_regressions_values_the_database_cannot_parse_are_bad_rows(conn: Conn) -> None:
    before = _snapshot(conn, ORG_A)
    bad_rows: list[tuple[Any, str]] = [
        ([{"crm_record_id": "ok"}, {"crm_record_id": "a", "first_name": "a\x00"}], r"row 2 .*NUL"),
        ([{"crm_record_id": "a", "first_name": "a\udc00"}], "surrogate"),
        ([{"crm_record_id": "a", "annual_revenue": float("nan")}], "NaN"),
        ([{"crm_record_id": "a", "name": object()}], "cannot encode"),
    ]
    for rows, match in bad_rows:
        with pytest.raises(InvalidRowError, match=match):
            index.upsert_companies(conn, ORG_A, "hubspot", rows)
    # associations_read_at was cast unchecked: a raw 22007 instead of CX001 naming the row
    with pytest.raises(InvalidRowError, match=r"row 1 .*bad value") as info:
        index.upsert_deals(
            conn,
            ORG_A,
            "hubspot",
            [{"crm_record_id": "d", "contact_crm_ids": ["1"], "associations_read_at": "nope"}],
        )
    assert info.value.row == 1
    with pytest.raises(InvalidInputError, match="uuid"):
        index.upsert_contacts(conn, "zzz", "hubspot", [{"crm_record_id": "a"}])
    with pytest.raises(InvalidInputError, match="NUL"):
        index.upsert_contacts(conn, ORG_A, "hub\x00spot", [{"crm_record_id": "a"}])  # type: ignore[arg-type]
    assert _snapshot(conn, ORG_A) == before
