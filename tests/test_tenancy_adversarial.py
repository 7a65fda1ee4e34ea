"""Adversarial tenancy suite: the application role, bound to org A, tries every table, view and function
of schema ``crm`` with org B's ids, and nothing of B is read or changed.

Built from the catalog (pg_class / pg_proc), so a table, view or function added later without coverage
fails here until it is covered. Extends ``tests/test_rls.py`` (six tables, hand-listed) to everything.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from crmindex.crm.connections import get_connection, list_connections, register_connection
from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.adapters import HubSpotFetcher
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.errors import InvalidInputError, NotFoundError, OrgMismatchError
from crmindex.index import search
from crmindex.index.refs import resolve_contact, resolve_contacts
from crmindex.index.writes import (
    CompanyRow,
    ContactRow,
    DealRow,
    ensure_org,
    upsert_companies,
    upsert_contacts,
    upsert_deals,
)
from crmindex.platform.db import bind_org
from crmindex.platform.queue import Queue, enqueue_job
from crmindex.records.materialize import (
    activate_by_email,
    get_contact_record,
    materialize_contact,
    materialize_many,
    record_enrichment,
    request_materialization,
)
from crmindex.status import list_orgs, org_status
from crmindex.testing import FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.writeback.enqueue import create_contact, update_contact
from tests.conftest import PgServer
from tests.test_rls import A, B
from tests.test_schema import GLOBAL_TABLES

Conn = psycopg.Connection[Any]

SECRET = {A: "axsecreta", B: "qxsecretq"}  # in every org's stored data, never in an attacker's input
ID_BASE_B = 900_000_001  # B's identity ids start here: a B id in any result is unmistakable
PORTAL = {A: "4100", B: "4900"}
PREFIX = {A: "1", B: "9"}  # CRM record ids (numeric, as HubSpot's)
DOMAIN = {A: "acme.com", B: "zenith.io"}
COMPANY = {A: "Acme", B: "Zenith"}


# ------------------------------------------------------------------------------------------------- seeding


def _seed_org(conn: Conn, org: uuid.UUID) -> None:
    s, p, dom = SECRET[org], PREFIX[org], DOMAIN[org]
    ensure_org(conn, org, f"Org {s}")
    for source, account in (("hubspot", PORTAL[org]), ("attio", f"ws-{PORTAL[org]}")):
        connect_with_token(conn, None, org, source, None, account_id=account, base_url=f"http://{s}.example",
                           settings={"note": s})  # fmt: skip
    upsert_companies(
        conn,
        org,
        "hubspot",
        [
            CompanyRow(
                crm_record_id=f"{p}01", name=f"{COMPANY[org]} Corp", domain=dom, industry="BANKING", city=s
            ),
            CompanyRow(crm_record_id=f"{p}02", name=f"{COMPANY[org]} Labs", domain=f"labs.{dom}", country=s),
        ],
    )
    upsert_contacts(
        conn,
        org,
        "hubspot",
        [
            ContactRow(
                crm_record_id=f"{p}{i}",
                first_name=first,
                last_name=f"Lee{s}",
                email=f"{first.lower()}@{dom}",
                phone=f"+1 555 {s}",
                company_name=f"{COMPANY[org]} Corp",
                company_crm_id=f"{p}01",
                job_title=f"VP of Sales {s}",
                lifecycle_stage="lead",
                crm_updated_at="2025-01-01T00:00:00Z",
            )
            for i, first in ((1, "Stan"), (2, "Jane"), (3, "Omar"))
        ],
    )
    upsert_deals(
        conn,
        org,
        "hubspot",
        [
            DealRow(
                crm_record_id=f"{p}d1",
                name=f"Deal {s}",
                stage="qualifiedtobuy",
                amount=54321,
                company_crm_id=f"{p}01",
                contact_crm_ids=[f"{p}1", f"{p}2"],
            )
        ],
    )
    conn.execute("SELECT crm.rate_limit_reserve(%s, 'hubspot', 'general')", (org,))
    conn.execute("SELECT crm.rate_limit_penalize(%s, 'hubspot', 'search', 5)", (org,))
    for i in range(4):
        enqueue_job(conn, org, "refetch", {"secret": s}, source="hubspot", dedupe_key=f"{p}{i}")
        conn.execute(
            "SELECT crm.webhook_accept(%s, 'hubspot', %s, %s, %s, 1)",
            (
                org,
                PORTAL[org],
                json.dumps([{"objectId": int(f"{p}{i}"), "secret": s}]),
                json.dumps({"sig": s}),
            ),
        )
    for first, field in (("stan", "lifecycle_stage"), ("jane", "lifecycle_stage"), ("omar", "lead_status")):
        update_contact(
            conn, org, f"{first}@{dom}", {field: "customer" if field == "lifecycle_stage" else "OPEN"}
        )
    create_contact(conn, org, "hubspot", {"email": f"new@{dom}", "first_name": "New", "last_name": s})
    conn.execute(
        "SELECT crm.materialize_contact_write(%s, 'hubspot', %s, %s, %s, now())",
        (org, f"{p}1", json.dumps({"first_name": "Stan", "last_name": f"Lee{s}"}), json.dumps({"secret": s})),
    )
    conn.execute(
        "SELECT crm.materialize_company_write(%s, 'hubspot', %s, %s, %s, now())",
        (
            org,
            f"{p}01",
            json.dumps({"name": f"{COMPANY[org]} Corp", "domain": dom}),
            json.dumps({"secret": s}),
        ),
    )
    conn.execute("UPDATE crm.contact_record SET notes = %s WHERE org_id = %s", (s, org))
    activate_by_email(conn, None, org, f"walkin@{dom}", f"Walk {s}", actor=s)
    conn.execute("SELECT crm.sync_checkpoint(%s, 'hubspot', 'contacts', %s, 3, FALSE)", (org, f"cursor-{s}"))
    _seed_hidden_tables(conn, org)
    # an old soft-deleted contact (what purge_deleted removes)
    upsert_contacts(
        conn,
        org,
        "hubspot",
        [ContactRow(crm_record_id=f"{p}4", first_name="Old", crm_updated_at="2019-01-01")],
    )
    conn.execute(
        "SELECT * FROM crm.apply_deletions(%s, 'hubspot', 'crm.contact_index', %s)",
        (org, json.dumps([{"crm_record_id": f"{p}4", "occurred_at": "2020-01-01T00:00:00Z"}])),
    )
    # stale derived values: a function that recomputes them for the wrong org would change them
    conn.execute(
        "UPDATE crm.contact_index SET has_active_deal = FALSE, deal_stage = NULL, deal_value = NULL "
        "WHERE org_id = %s AND crm_record_id = %s",
        (org, f"{p}1"),
    )
    conn.execute("UPDATE crm.company_index SET industry_groups = '{}' WHERE org_id = %s", (org,))
    # each queue: one job running under an expired lease (a token to attack), one dead letter (to requeue),
    # one completed long ago (to purge), the rest pending
    for queue in QUEUES:
        conn.execute("SELECT * FROM crm.queue_claim(%s, 'seed', 1, 0.001, %s)", (queue, org))
        for status, pick in (("dead_letter", "max"), ("completed", "min")):
            conn.execute(
                f"UPDATE {queue} SET status = %s, last_error = %s, completed_at = now() - interval '30 days' "
                f"WHERE org_id = %s AND id = (SELECT {pick}(id) FROM {queue} WHERE org_id = %s AND status = 'pending')",
                (status, s, org, org),
            )


def _seed_hidden_tables(conn: Conn, org: uuid.UUID) -> None:
    """Rows in the tables crm_app may not read at all (sealed secrets, OAuth state, webhook replay keys), as the
    owner: opaque bytes carrying the org's marker, so that any leak of them shows."""
    s = SECRET[org].encode()
    if conn.execute("SELECT to_regclass('crm.connection_secret')").fetchone() != (None,):
        conn.execute(
            "INSERT INTO crm.connection_secret (org_id, crm_source, kind, key_id, ciphertext) "
            "VALUES (%s, 'hubspot', 'webhook_secret', 'k1', %s) ON CONFLICT DO NOTHING",
            (org, s * 4),
        )
    if conn.execute("SELECT to_regclass('crm.oauth_state')").fetchone() != (None,):
        conn.execute(
            "INSERT INTO crm.oauth_state (org_id, state_hash, crm_source, redirect_uri, expires_at) "
            "VALUES (%s, %s, 'hubspot', %s, now() + interval '1 hour') ON CONFLICT DO NOTHING",
            (org, (s * 4)[:32], f"https://{s.decode()}.example/cb"),
        )
    if conn.execute("SELECT to_regclass('crm.webhook_event_key')").fetchone() != (None,):
        conn.execute(
            "INSERT INTO crm.webhook_event_key (org_id, crm_source, event_key, expires_at) "
            "VALUES (%s, 'hubspot', %s, now() + interval '1 day') ON CONFLICT DO NOTHING",
            (org, (s * 4)[:32]),
        )


QUEUES = ("crm.job", "crm.webhook_inbox", "crm.writeback_queue")


def _identity_tables(conn: Conn) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT a.attrelid::regclass::text FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = 'crm'::regnamespace AND a.attname = 'id' AND a.attidentity <> ''"
        )
    ]


@pytest.fixture(scope="module")
def tenancy_dsn(pg_server: PgServer, template_db: str) -> Iterator[str]:
    """A database of its own for this module: orgs A and B, with data in every table."""
    name = f"tenancy_{uuid.uuid4().hex[:12]}"
    with pg_server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_db}")
    dsn = pg_server.dsn(name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            _seed_org(conn, A)
            for table in _identity_tables(conn):
                conn.execute(f"ALTER TABLE {table} ALTER COLUMN id RESTART WITH {ID_BASE_B}")
            _seed_org(conn, B)
        yield dsn
    finally:
        with pg_server.admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def su(tenancy_dsn: str) -> Iterator[Conn]:
    """Superuser connection (sees every org)."""
    with psycopg.connect(tenancy_dsn, autocommit=True) as conn:
        yield conn


@dataclass(frozen=True)
class Facts:
    """What an attacker in org A might know or guess of org B (read as superuser after seeding)."""

    ids: frozenset[int]  # every identity id of B's rows, all tables
    uuids: frozenset[str]  # tier-2 record ids and lease tokens of B
    contact_ids: tuple[int, ...]
    record_id: str  # a tier-2 contact record of B
    running: dict[str, tuple[int, str]]  # queue -> (id, lease token) of B's running job
    dead: dict[str, int]  # queue -> id of B's dead letter


def _facts(conn: Conn) -> Facts:
    ids: set[int] = set()
    for table in _identity_tables(conn):
        ids |= {int(r[0]) for r in conn.execute(f"SELECT id FROM {table} WHERE org_id = %s", (B,))}
    uuids = {
        str(r[0])
        for r in conn.execute(
            "SELECT id FROM crm.contact_record WHERE org_id = %(b)s UNION ALL "
            "SELECT id FROM crm.company_record WHERE org_id = %(b)s UNION ALL "
            "SELECT materialized_contact_id FROM crm.contact_index WHERE org_id = %(b)s "
            "AND materialized_contact_id IS NOT NULL",
            {"b": B},
        )
    }
    running: dict[str, tuple[int, str]] = {}
    dead: dict[str, int] = {}
    for q in QUEUES:
        row = conn.execute(
            f"SELECT id, lease_token FROM {q} WHERE org_id = %s AND status = 'processing'", (B,)
        ).fetchone()
        assert row is not None
        running[q] = (int(row[0]), str(row[1]))
        uuids.add(str(row[1]))
        drow = conn.execute(
            f"SELECT id FROM {q} WHERE org_id = %s AND status = 'dead_letter'", (B,)
        ).fetchone()
        assert drow is not None
        dead[q] = int(drow[0])
    contact_ids = tuple(
        int(r[0])
        for r in conn.execute("SELECT id FROM crm.contact_index WHERE org_id = %s ORDER BY id", (B,))
    )
    record = conn.execute(
        "SELECT id FROM crm.contact_record WHERE org_id = %s AND origin = 'crm'", (B,)
    ).fetchone()
    assert record is not None and min(ids) >= ID_BASE_B
    return Facts(frozenset(ids), frozenset(uuids), contact_ids, str(record[0]), running, dead)


@pytest.fixture(scope="module")
def facts(su: Conn) -> Facts:
    return _facts(su)


# ------------------------------------------------------------------------------------------------ catalog


def _relations(conn: Conn) -> list[tuple[str, str, bool]]:
    """(name, relkind, has org_id) of every table and view of schema crm."""
    return [
        (str(r[0]), str(r[1]), bool(r[2]))
        for r in conn.execute(
            """
            SELECT c.oid::regclass::text, c.relkind,
                EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attname = 'org_id'
                    AND NOT a.attisdropped)
            FROM pg_class AS c
            WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
            ORDER BY 1
            """
        )
    ]


def _org_tables(conn: Conn) -> list[str]:
    return [name for name, kind, has_org in _relations(conn) if has_org and kind in ("r", "p")]


# SECURITY DEFINER trigger functions: they cannot be called (0A000, in CASES), only fired; they are attacked
# through the writes that fire them (test_an_org_cannot_claim_another_orgs_crm_account)
TRIGGER_FUNCTIONS = {"crm.connection_account_unique()"}


def _executable_functions(conn: Conn) -> dict[str, bool]:
    """signature -> SECURITY DEFINER, for every function of schema crm that crm_app may execute."""
    return {
        str(r[0]): bool(r[1])
        for r in conn.execute(
            "SELECT p.oid::regprocedure::text, p.prosecdef FROM pg_proc AS p "
            "WHERE p.pronamespace = 'crm'::regnamespace AND has_function_privilege('crm_app', p.oid, 'EXECUTE')"
        )
    }


def snapshot(conn: Conn) -> dict[str, str]:
    """A digest of B's rows in every org table and of every global table (run as superuser)."""
    parts = []
    for name, kind, has_org in _relations(conn):
        if kind not in ("r", "p"):
            continue
        where = f"WHERE t.org_id = '{B}'" if has_org else ""
        parts.append(
            f"SELECT '{name}', md5(coalesce(string_agg(to_jsonb(t)::text, ',' ORDER BY to_jsonb(t)::text), '')) "
            f"FROM {name} AS t {where}"
        )
    return {str(r[0]): str(r[1]) for r in conn.execute(" UNION ALL ".join(parts))}


def assert_nothing_of_b(value: object, facts: Facts, absent: tuple[str, ...] = (), what: str = "") -> None:
    """No B data in a result: not its org id, its secret marker, its record uuids or identity ids."""
    text = repr(value)
    for marker in (str(B), SECRET[B], *facts.uuids, *absent):
        assert marker not in text, f"{what}: leaks {marker!r}: {text[:600]}"
    leaked = {int(m) for m in re.findall(r"(?<!\d)9\d{8}(?!\d)", text)} & facts.ids
    assert not leaked, f"{what}: leaks B's ids {sorted(leaked)}: {text[:600]}"


# ------------------------------------------------------------------------------- sessions as the app role


Mode = str  # how the crm_app session is bound
MODES: dict[Mode, str | None] = {
    "bound_a": str(A),
    "unbound": None,
    "empty": "",
    "malformed": "not-a-uuid",
}


def _bind(conn: Conn, mode: Mode) -> None:
    """SET ROLE crm_app, then bind the way crmindex.platform.db.bind_org does (set_config, session level)."""
    conn.execute("SET ROLE crm_app")
    value = MODES[mode]
    if value is not None:
        conn.execute("SELECT set_config('crm.org_id', %s, false)", (value,))


@pytest.fixture
def app(tenancy_dsn: str) -> Iterator[Conn]:
    """An autocommit session as crm_app bound to org A (crmindex.platform.db.bind_org)."""
    with psycopg.connect(tenancy_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE crm_app")
        bind_org(conn, A)
        yield conn


def attempt(conn: Conn, mode: Mode, sql: str, params: Sequence[object] = ()) -> tuple[object, dict[str, str]]:
    """Run one statement as crm_app in ``mode`` inside a transaction that is rolled back; returns the rows
    (or the error) and B's snapshot taken as superuser in the same transaction, after the statement."""
    with conn.transaction(force_rollback=True):
        _bind(conn, mode)
        outcome: object
        try:
            with conn.transaction():
                cur = conn.execute(sql, params)
                outcome = cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            outcome = exc
        conn.execute("RESET ROLE")
        after = snapshot(conn)
    return outcome, after


# ------------------------------------------------------------------------------ tables and views (step 2)


def test_every_org_table_has_rls_and_rows_of_both_orgs(su: Conn) -> None:
    """The seed covers every table (so every check below sees B's rows); tables without org_id are the
    known global reference tables."""
    relations = _relations(su)
    assert {name for name, kind, has_org in relations if not has_org} == GLOBAL_TABLES
    for table in _org_tables(su):
        row = su.execute("SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()
        assert row == (True,), f"{table} has no row-level security"
        counts = dict(su.execute(f"SELECT org_id, count(*) FROM {table} GROUP BY 1").fetchall())
        assert counts.get(A, 0) >= 1 and counts.get(B, 0) >= 1, (
            f"{table} is not seeded for both orgs: {counts}"
        )
    for name, kind, _ in relations:
        assert kind in ("r", "v"), f"{name}: relkind {kind} (materialized views / foreign tables bypass RLS)"


def _privilege(conn: Conn, relation: str, privilege: str) -> bool:
    row = conn.execute("SELECT has_table_privilege('crm_app', %s, %s)", (relation, privilege)).fetchone()
    return row == (True,)


def _is_denied(outcome: object) -> bool:
    return isinstance(outcome, psycopg.errors.InsufficientPrivilege) and "permission denied" in str(outcome)


def _is_rls_refusal(outcome: object) -> bool:
    return isinstance(outcome, psycopg.errors.InsufficientPrivilege) and "row-level security" in str(outcome)


@pytest.mark.parametrize("mode", list(MODES))
def test_app_reads_no_row_of_b_in_any_table_or_view(su: Conn, mode: Mode) -> None:
    before = snapshot(su)
    visible = {"bound_a": {A}, "unbound": set(), "empty": set(), "malformed": set()}[mode]
    for name, _, has_org in _relations(su):
        outcome, after = attempt(su, mode, f"SELECT {'org_id' if has_org else 'count(*)'} FROM {name}")
        assert after == before
        if not _privilege(su, name, "SELECT"):
            assert _is_denied(outcome), f"{name}: crm_app has no SELECT, yet got {outcome!r}"
        elif not has_org:
            assert isinstance(outcome, list), f"{name}: {outcome!r}"  # global reference data
        elif mode == "malformed":  # a malformed binding is an error, never rows
            assert isinstance(outcome, psycopg.errors.InvalidTextRepresentation), f"{name}: {outcome!r}"
        else:
            assert isinstance(outcome, list), f"{name}: {outcome!r}"
            assert {r[0] for r in outcome} <= visible, f"{name} shows { ({r[0] for r in outcome}) } in {mode}"
            if mode == "bound_a":
                assert outcome, f"{name}: A sees none of its own rows"


def _insert_copy_sql(conn: Conn, relation: str, org: uuid.UUID) -> str:
    """INSERT a copy of one of A's rows into ``relation`` with org_id = ``org`` (identity columns left out)."""
    cols = [
        str(r[0])
        for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "AND attidentity = '' AND attgenerated = '' ORDER BY attnum",
            (relation,),
        )
    ]
    values = ", ".join(f"'{org}'::uuid" if c == "org_id" else c for c in cols)
    return f"INSERT INTO {relation} ({', '.join(cols)}) SELECT {values} FROM {relation} WHERE org_id = '{A}' LIMIT 1"


def test_app_cannot_insert_update_or_delete_rows_of_b(su: Conn) -> None:
    before = snapshot(su)
    for name, kind, has_org in _relations(su):
        if not has_org:
            first = su.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1", (name,)
            ).fetchone()
            assert first is not None
            statements = {
                "INSERT": f"INSERT INTO {name} SELECT * FROM {name} LIMIT 1",
                "UPDATE": f"UPDATE {name} SET {first[0]} = {first[0]}",
                "DELETE": f"DELETE FROM {name}",
            }
            for privilege, sql in statements.items():
                # global reference data is shared by every org: the app role must not write it
                assert not _privilege(su, name, privilege), f"crm_app may {privilege} global table {name}"
                outcome, after = attempt(su, "bound_a", sql)
                assert _is_denied(outcome) and after == before, f"{privilege} {name}: {outcome!r}"
            continue
        checks = {
            "UPDATE": (f"UPDATE {name} SET org_id = org_id WHERE org_id = '{B}' RETURNING 1", []),
            "DELETE": (f"DELETE FROM {name} WHERE org_id = '{B}' RETURNING 1", []),
            # moving one of A's rows into B, inserting a row for B: refused by the policies' WITH CHECK
            "UPDATE ": (f"UPDATE {name} SET org_id = '{B}' WHERE org_id = '{A}' RETURNING 1", "rls"),
            "INSERT": (_insert_copy_sql(su, name, B), "rls"),
        }
        for label, (sql, expected) in checks.items():
            if not _privilege(su, name, label.strip()) and label == "INSERT":
                sql = f"INSERT INTO {name} (org_id) VALUES ('{B}')"
            outcome, after = attempt(su, "bound_a", sql)
            assert after == before, f"{label} on {name} changed B's data"
            if not _privilege(su, name, label.strip()):
                assert _is_denied(outcome), f"{label.strip()} {name}: no privilege, yet {outcome!r}"
            elif expected == "rls":
                assert _is_rls_refusal(outcome), f"{label.strip()} {name}: {outcome!r}"
            else:
                assert outcome == expected, f"{label.strip()} {name}: touched B's rows: {outcome!r}"
        # control: the same INSERT for A itself is allowed (what was refused above was org B)
        if kind == "r" and _privilege(su, name, "INSERT"):
            outcome, _ = attempt(su, "bound_a", _insert_copy_sql(su, name, A))
            assert not _is_rls_refusal(outcome), f"INSERT {name} for A itself: {outcome!r}"


# ---------------------------------------------------------------------------------------- functions (step 3)

B_EMAIL, B_DOMAIN, B_PORTAL = "stan@zenith.io", DOMAIN[B], PORTAL[B]
LATER = "2030-01-01T00:00:00Z"
ANY = object()  # no exact expectation: the generic checks only (raise an allowed error, or nothing of B)
Params = Callable[[Facts], Sequence[object]]


@dataclass(frozen=True)
class Case:
    signature: str  # as pg_proc's oid::regprocedure::text
    sql: str
    params: Params = lambda f: ()
    expect: object = ANY  # bound to A: an SQLSTATE the call must raise, or the exact rows it returns
    absent: tuple[str, ...] = ()  # more strings the result must not contain


def _j(value: object) -> str:
    return json.dumps(value)


def _queue_cases(q: str) -> list[Case]:
    return [
        Case(
            "crm.queue_claim(regclass,text,integer,double precision,uuid,text,text)",
            "SELECT * FROM crm.queue_claim(%s, 'attacker', 100, 60, %s)",
            lambda f: (q, B),
            [],
        ),
        # no org filter: only A's due jobs (B's expired lease is due too, and stays B's)
        Case(
            "crm.queue_claim(regclass,text,integer,double precision,uuid,text,text)",
            "SELECT * FROM crm.queue_claim(%s, 'attacker', 100, 60)",
            lambda f: (q,),
        ),
        Case(
            "crm.queue_complete(regclass,uuid[],bigint[],uuid[])",
            "SELECT crm.queue_complete(%s, ARRAY[%s]::uuid[], ARRAY[%s]::bigint[], ARRAY[%s]::uuid[])",
            lambda f: (q, B, f.running[q][0], f.running[q][1]),
            [(0,)],
        ),
        Case(
            "crm.queue_extend(uuid,regclass,bigint,uuid,double precision)",
            "SELECT crm.queue_extend(%s, %s, %s, %s, 3600)",
            lambda f: (B, q, f.running[q][0], f.running[q][1]),
            [(False,)],
        ),
        Case(
            "crm.queue_fail(uuid,regclass,bigint,uuid,text,boolean,double precision)",
            "SELECT crm.queue_fail(%s, %s, %s, %s, 'pwned', false)",
            lambda f: (B, q, f.running[q][0], f.running[q][1]),
            [(None,)],
        ),
        Case(
            "crm.queue_release(uuid,regclass,bigint,uuid,double precision,text)",
            "SELECT crm.queue_release(%s, %s, %s, %s, 0, 'pwned')",
            lambda f: (B, q, f.running[q][0], f.running[q][1]),
            [(False,)],
        ),
        Case(
            "crm.queue_requeue(uuid,regclass,bigint[])",
            "SELECT crm.queue_requeue(%s, %s)",
            lambda f: (B, q),
            "CX003",
        ),
        Case(
            "crm.queue_requeue(uuid,regclass,bigint[])",
            "SELECT crm.queue_requeue(%s, %s, ARRAY[%s]::bigint[])",
            lambda f: (A, q, f.dead[q]),
            [(0,)],
        ),
        Case(
            "crm.queue_reclaim_expired(regclass)",
            "SELECT crm.queue_reclaim_expired(%s)",
            lambda f: (q,),
            [(1,)],
        ),
        Case(
            "crm.queue_purge_completed(regclass,interval)",
            "SELECT crm.queue_purge_completed(%s, '1 day')",
            lambda f: (q,),
            [(1,)],
        ),
        # crm_app cannot read the raw webhook inbox (issue 13), so neither its stats
        Case(
            "crm.queue_stats(regclass,uuid)",
            "SELECT * FROM crm.queue_stats(%s, %s)",
            lambda f: (q, B),
            "42501" if q == "crm.webhook_inbox" else [],
        ),
        Case("crm.queue_stats(regclass,uuid)", "SELECT * FROM crm.queue_stats(%s)", lambda f: (q,)),
    ]


_CONTACT_ROWS = _j([{"crm_record_id": "91", "first_name": "Hijack", "email": B_EMAIL}])
_SEARCH_FILTERS = [
    {"email": B_EMAIL},
    {"email_domain": B_DOMAIN},
    {"domain": B_DOMAIN},
    {"company_domain": B_DOMAIN},
    {"company": COMPANY[B]},
    {"company": "x') OR TRUE --"},  # quoting attempt
    {"industry": "BANKING", "company_domain": B_DOMAIN},
]
_SEARCH_TEXTS = [B_EMAIL, B_DOMAIN, f"Stan {COMPANY[B]}", "' OR TRUE --"]
_COMPANY_FILTERS = [{"domain": B_DOMAIN}, {"company_domain": B_DOMAIN}, {"company": COMPANY[B]}]


def _search_cases() -> list[Case]:
    cases: list[Case] = []
    for fn, kind in (
        ("search_contacts", "contacts"),
        ("search_contact_ids", "contacts"),
        ("search_companies", "companies"),
        ("search_company_ids", "companies"),
    ):
        sig = f"crm.{fn}(uuid,text,jsonb,integer)"
        cases.append(Case(sig, f"SELECT * FROM crm.{fn}(%s, 'Stan', '{{}}', 50)", lambda f: (B,), "CX003"))
        filters = _SEARCH_FILTERS if kind == "contacts" else _COMPANY_FILTERS
        for flt in filters:
            cases.append(
                Case(sig, f"SELECT * FROM crm.{fn}(%s, '', %s::jsonb, 50)", lambda f, x=flt: (A, _j(x)), [])
            )
        for text in _SEARCH_TEXTS:
            expect: object = [] if text != f"Stan {COMPANY[B]}" or kind == "companies" else ANY
            cases.append(
                Case(sig, f"SELECT * FROM crm.{fn}(%s, %s, '{{}}', 50)", lambda f, t=text: (A, t), expect)
            )
        # a keyset cursor pointing into B's id range
        cases.append(
            Case(
                sig,
                f"SELECT * FROM crm.{fn}(%s, '', %s::jsonb, 50)",
                lambda f: (A, _j({"after": f"0:{min(f.contact_ids) - 1}"})),
                [],
            )
        )
    for fn in ("search_contact_plan", "search_company_plan"):
        sig = f"crm.{fn}(uuid,text,jsonb,integer)"
        cases.append(Case(sig, f"SELECT crm.{fn}(%s, 'Stan', '{{}}', 50)", lambda f: (B,), "CX003"))
        for flt in _COMPANY_FILTERS:
            # the plan's SQL names the matching companies' CRM ids: never B's
            cases.append(
                Case(
                    sig,
                    f"SELECT crm.{fn}(%s, %s, %s::jsonb, 50)",
                    lambda f, x=flt: (A, B_DOMAIN, _j(x)),
                    absent=("'{901}'", "'{902}'", "901,902"),
                )
            )
    cases += [
        Case(
            "crm.search(uuid,text,integer,text)", "SELECT crm.search(%s, 'vps', 50)", lambda f: (B,), "CX003"
        ),
        Case(
            "crm.search(uuid,text,integer,text)",
            "SELECT crm.search(%s, %s, 50)",
            lambda f: (A, f"VPs at {B_DOMAIN}"),
        ),
        Case("crm.search(uuid,text,integer,text)", "SELECT crm.search(%s, %s, 50)", lambda f: (A, B_EMAIL)),
        Case(
            "crm.search(uuid,text,integer,text)",
            "SELECT crm.search(%s, 'stan', 50, %s)",
            lambda f: (A, f"0:{min(f.contact_ids) - 1}"),
        ),
        Case(
            "crm.resolve_contact(uuid,text,integer)",
            "SELECT * FROM crm.resolve_contact(%s, %s)",
            lambda f: (B, B_EMAIL),
            "CX003",
        ),
        Case(
            "crm.resolve_contact(uuid,text,integer)",
            "SELECT * FROM crm.resolve_contact(%s, %s)",
            lambda f: (A, B_EMAIL),
            [],
        ),
        Case(
            "crm.resolve_contact(uuid,text,integer)",
            "SELECT * FROM crm.resolve_contact(%s, %s)",
            lambda f: (A, f"Stan from {COMPANY[B]}"),
        ),
        Case(
            "crm.interpret_query(uuid,text)", "SELECT crm.interpret_query(%s, 'vps')", lambda f: (B,), "CX003"
        ),
        Case(
            "crm.interpret_query(uuid,text)",
            "SELECT crm.interpret_query(%s, %s)",
            lambda f: (A, f"Stan from {COMPANY[B]}"),
        ),
        # invoker helpers that take an org: row-level security hides B's companies from them
        Case(
            "crm.search_company_condition(uuid,jsonb)",
            "SELECT crm.search_company_condition(%s, %s::jsonb) LIKE '%%name_phonetic_keys%%'",
            lambda f: (B, _j({"company": [COMPANY[B]]})),
            [(True,)],  # the fallback of a company that matches nothing in the org
        ),
        Case(
            "crm.search_contact_company_condition(uuid,text)",
            "SELECT crm.search_contact_company_condition(%s, %s)",
            lambda f: (B, f"co.domain = '{B_DOMAIN}'"),
            [("FALSE",)],
        ),
        Case(
            "crm.search_contact_company_condition(uuid,text)",
            "SELECT crm.search_contact_company_condition(%s, 'co.org_id IS NOT NULL OR TRUE')",
            lambda f: (A,),
            absent=("'{901,902}'", "'{901}'"),
        ),
        # plans are SQL text run as the invoker: a hand-made plan reading B's rows finds none
        Case(
            "crm.run_search_plan(jsonb)",
            "SELECT * FROM crm.run_search_plan(%s::jsonb)",
            lambda f: (
                _j(
                    {
                        "mode": "filter",
                        "sql": f"SELECT id, 0::float8 FROM crm.contact_index WHERE org_id = '{B}'",
                    }
                ),
            ),
            [],
        ),
        Case(
            "crm.run_search_plan(jsonb)",
            "SELECT * FROM crm.run_search_plan(%s::jsonb)",
            lambda f: (
                _j(
                    {
                        "mode": "text",
                        "sources": [{"tier": 0, "sql": "SELECT id FROM crm.contact_index"}],
                        "score_sql": "SELECT c.id, 1::float8 FROM crm.contact_index AS c WHERE c.id = ANY($1) "
                        f"AND c.org_id = '{B}'",
                    }
                ),
            ),
            [],
        ),
    ]
    return cases


def _api_cases() -> list[Case]:
    """The application's API functions of issue 13 (SECURITY DEFINER: B as the org, and B's references and data
    from A's session)."""
    upd = "crm.update_contact(uuid,text,jsonb,text,uuid,smallint)"
    create = "crm.create_contact(uuid,text,jsonb,text,uuid,smallint)"
    req = "crm.request_materialization(uuid,text[],text,text,text)"
    local = "crm.activate_local_contact(uuid,text,text,text,text,text)"
    enrich = "crm.store_enrichment(uuid,uuid,text,jsonb)"
    refs = "crm.resolve_contact_refs(uuid,text[],text)"
    pwned = _j({"job_title": "pwned"})
    b_refs = lambda f: [B_EMAIL, f"#{f.contact_ids[0]}", f"#{f.contact_ids[-1]}", "91"]  # noqa: E731
    return [
        Case(upd, "SELECT * FROM crm.update_contact(%s, '91', %s::jsonb)", lambda f: (B, pwned), "CX003"),
        *(
            Case(
                upd,
                "SELECT * FROM crm.update_contact(%s, %s, %s::jsonb)",
                lambda f, i=i: (A, b_refs(f)[i], pwned),
                "CX004",
            )
            for i in range(4)
        ),
        Case(
            upd,
            "SELECT job_id IS NOT NULL FROM crm.update_contact(%s, '11', %s::jsonb)",
            lambda f: (A, pwned),
            [(True,)],
        ),
        Case(
            create,
            "SELECT * FROM crm.create_contact(%s, 'hubspot', %s::jsonb)",
            lambda f: (B, _j({"email": f"x@{B_DOMAIN}"})),
            "CX003",
        ),
        *(
            Case(
                create,
                "SELECT job_id IS NOT NULL FROM crm.create_contact(%s, %s, %s::jsonb)",
                lambda f, src=src: (A, src, _j({"email": B_EMAIL, "first_name": "Stan"})),
                [(True,)],
            )
            for src in ("hubspot", "attio")
        ),
        Case(
            create,
            "SELECT * FROM crm.create_contact(%s, 'attio', %s::jsonb)",
            lambda f: (A, _j({"email": f"x@{B_DOMAIN}", "lifecycle_stage": "customer", "lead_status": "x"})),
            "CX002",
        ),
        Case(req, "SELECT * FROM crm.request_materialization(%s, ARRAY['91'])", lambda f: (B,), "CX003"),
        *(
            Case(
                req,
                "SELECT * FROM crm.request_materialization(%s, ARRAY[%s])",
                lambda f, i=i: (A, b_refs(f)[i]),
                "CX004",
            )
            for i in range(4)
        ),
        Case(
            req,
            "SELECT count(job_id) FROM crm.request_materialization(%s, ARRAY['11', '12'])",
            lambda f: (A,),
            [(2,)],
        ),
        Case(local, "SELECT * FROM crm.activate_local_contact(%s, 'x@y.io')", lambda f: (B,), "CX003"),
        *(
            Case(
                local,
                "SELECT record_id IS NOT NULL, job_id IS NULL FROM crm.activate_local_contact(%s, %s, %s)",
                lambda f, e=e: (A, e, f"Walk {SECRET[A]}"),
                [(True, True)],
            )
            for e in (B_EMAIL, f"walkin@{B_DOMAIN}")
        ),
        Case(
            local,
            "SELECT job_id IS NOT NULL FROM crm.activate_local_contact(%s, %s, 'Stan', 'manual', NULL, "
            "'hubspot')",
            lambda f: (A, f"walkin@{B_DOMAIN}"),
            [(True,)],
        ),
        Case(
            enrich,
            "SELECT crm.store_enrichment(%s, %s::uuid, 'apollo', '{}')",
            lambda f: (B, f.record_id),
            "CX003",
        ),
        *(
            Case(
                enrich,
                "SELECT crm.store_enrichment(%s, %s::uuid, 'apollo', %s::jsonb)",
                lambda f, u=u: (A, u(f), _j({"secret": SECRET[A]})),
                "CX004",
            )
            for u in (lambda f: f.record_id, lambda f: sorted(f.uuids)[0], lambda f: sorted(f.uuids)[-1])
        ),
        Case(
            enrich,
            "SELECT crm.store_enrichment(%s, (SELECT id FROM crm.contact_record WHERE origin = 'crm' "
            "LIMIT 1), 'apollo', '{}')",
            lambda f: (A,),
            [("",)],
        ),
        Case(refs, "SELECT id FROM crm.resolve_contact_refs(%s, ARRAY['11'])", lambda f: (B,), "CX003"),
        Case(
            refs,
            "SELECT id, crm_record_id FROM crm.resolve_contact_refs(%s, %s::text[])",
            lambda f: (A, b_refs(f)),
            [(None, None)] * 4,
        ),
        Case("crm.org_stats(uuid)", "SELECT * FROM crm.org_stats(%s)", lambda f: (A,)),
        Case(
            "crm.org_stats(uuid)",
            "SELECT contacts_indexed, deals_indexed FROM crm.org_stats(%s)",
            lambda f: (A,),
            [(3, 1)],
        ),
        Case(
            "crm.org_stats(uuid)",
            "SELECT inbox_pending + inbox_dead > 0 FROM crm.org_stats(%s)",
            lambda f: (A,),
            [(True,)],
        ),
        Case("crm.interpret_query(uuid,text)", "SELECT crm.interpret_query(%s, %s)", lambda f: (A, B_EMAIL)),
        Case(
            "crm.interpret_query(uuid,text)",
            "SELECT crm.interpret_query(%s, %s)",
            lambda f: (A, f"VPs at {B_DOMAIN}"),
        ),
        Case(
            "crm.resolve_contact(uuid,text,integer)",
            "SELECT * FROM crm.resolve_contact(%s, %s)",
            lambda f: (A, B_DOMAIN),
            [],
        ),
        Case(
            "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
            "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', '91', 'update', '{\"firstname\": \"x\"}', "
            "'copilot') IS NOT NULL",
            lambda f: (A,),
            [(True,)],  # A's own write to the record 91 of A's CRM: never B's open job
        ),
        Case(
            "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
            "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', '92', 'update', %s::jsonb, 'copilot')",
            lambda f: (A, _j({"x": "y" * 70_000})),
            "CX002",
        ),
    ]


def _cases() -> list[Case]:
    src = "'hubspot'"
    cases: list[Case] = [
        # org guard and binding
        Case("crm.assert_org(uuid)", "SELECT crm.assert_org(%s)", lambda f: (B,), "CX003"),
        Case("crm.current_org_id()", "SELECT crm.current_org_id()", expect=[(A,)]),
        Case("crm.session_sees_every_org()", "SELECT crm.session_sees_every_org()", expect=[(False,)]),
        # index writes
        *(
            Case(
                f"crm.{fn}(uuid,text,jsonb)",
                f"SELECT * FROM crm.{fn}(%s, {src}, %s::jsonb)",
                lambda f, r=rows: (B, r),
                "CX003",
            )
            for fn, rows in (
                ("upsert_contacts", _CONTACT_ROWS),
                ("upsert_companies", _j([{"crm_record_id": "901", "name": "Hijack"}])),
                (
                    "upsert_deals",
                    _j([{"crm_record_id": "9d1", "stage": "closedwon", "contact_crm_ids": ["91"]}]),
                ),
            )
        ),
        # A writing rows with B's CRM ids writes A's own rows, never B's
        Case(
            "crm.upsert_contacts(uuid,text,jsonb)",
            f"SELECT * FROM crm.upsert_contacts(%s, {src}, %s::jsonb)",
            lambda f: (A, _CONTACT_ROWS),
            [(1, 0, 0)],
        ),
        Case(
            "crm.write_index_rows(uuid,regclass,text,jsonb)",
            f"SELECT * FROM crm.write_index_rows(%s, 'crm.contact_index', {src}, %s::jsonb)",
            lambda f: (B, _CONTACT_ROWS),
            "42501",
        ),
        Case(
            "crm.check_index_rows(regclass,text,jsonb,text[])",
            f"SELECT crm.check_index_rows('crm.contact_index', {src}, %s::jsonb, '{{}}')",
            lambda f: (_j([{"crm_record_id": "91", "org_id": str(B)}]),),
            "CX001",
        ),
        Case(
            "crm.diagnose_index_rows(regclass,jsonb)",
            "SELECT crm.diagnose_index_rows('crm.contact_index', %s::jsonb)",
            lambda f: (_CONTACT_ROWS,),
            [("",)],  # void
        ),
        Case(
            "crm.refresh_contact_deals(uuid,text,text[])",
            f"SELECT crm.refresh_contact_deals(%s, {src}, ARRAY['91', '92'])",
            lambda f: (B,),
            [(0,)],
        ),
        Case(
            "crm.refresh_deal_contacts(uuid,text,jsonb)",
            f"SELECT crm.refresh_deal_contacts(%s, {src}, %s::jsonb)",
            lambda f: (B, _j([{"crm_record_id": "9d1"}])),
            [(0,)],
        ),
        Case(
            "crm.refresh_company_industry_groups(uuid)",
            "SELECT crm.refresh_company_industry_groups(%s)",
            lambda f: (B,),
            [(0,)],
        ),
        # NULL means every org: only A's are visible (A's were made stale too: one of them changes)
        Case(
            "crm.refresh_company_industry_groups(uuid)",
            "SELECT crm.refresh_company_industry_groups(NULL)",
            expect=[(1,)],
        ),
        # webhook appliers: B's records are "missing" for A (not "stale": that would confirm they exist)
        *(
            Case(
                f"crm.{fn}(uuid,text,regclass,jsonb)",
                f"SELECT * FROM crm.{fn}(%s, {src}, 'crm.contact_index', %s::jsonb)",
                lambda f, org=org, ev=ev: (org, _j(ev)),
                "CX003" if org == B else [(ev[0]["crm_record_id"], "missing")],
            )
            for fn, ev in (
                (
                    "apply_field_changes",
                    [{"crm_record_id": "91", "column": "job_title", "value": "x", "occurred_at": LATER}],
                ),
                ("apply_deletions", [{"crm_record_id": "91", "occurred_at": LATER, "privacy": True}]),
                ("apply_restores", [{"crm_record_id": "94", "occurred_at": LATER}]),
            )
            for org in (A, B)
        ),
        Case(
            "crm.apply_deal_associations(uuid,text,jsonb)",
            f"SELECT crm.apply_deal_associations(%s, {src}, %s::jsonb)",
            lambda f: (B, _j([{"deal_crm_id": "9d1", "contact_crm_id": "93", "occurred_at": LATER}])),
            "CX003",
        ),
        Case(
            "crm.apply_deal_associations(uuid,text,jsonb)",
            f"SELECT crm.apply_deal_associations(%s, {src}, %s::jsonb)",
            lambda f: (A, _j([{"deal_crm_id": "9d1", "contact_crm_id": "93", "occurred_at": LATER}])),
            [(0,)],
        ),
        Case(
            "crm.webhook_accept(uuid,text,text,text,jsonb,integer,text[],interval,text,interval)",
            f"SELECT crm.webhook_accept(%s, {src}, %s, '[]', '{{}}', 0)",
            lambda f: (B, B_PORTAL),
            "42501",
        ),
        # rate limits, sync state
        Case(
            "crm.rate_limit_configure(uuid,text,text,integer,double precision,double precision)",
            f"SELECT crm.rate_limit_configure(%s, {src}, 'general', 1, 3600)",
            lambda f: (B,),
            "CX003",
        ),
        Case(
            "crm.rate_limit_penalize(uuid,text,text,double precision)",
            f"SELECT crm.rate_limit_penalize(%s, {src}, 'general', 3600)",
            lambda f: (B,),
            "42501",
        ),
        Case(
            "crm.rate_limit_reserve(uuid,text,text,integer)",
            f"SELECT crm.rate_limit_reserve(%s, {src}, 'general', 1000)",
            lambda f: (B,),
            "42501",
        ),
        Case(
            "crm.sync_checkpoint(uuid,text,text,text,integer,boolean,bigint)",
            f"SELECT crm.sync_checkpoint(%s, {src}, 'contacts', 'pwned', 1, true)",
            lambda f: (B,),
            "42501",
        ),
        # jobs and write-backs
        Case(
            "crm.enqueue_job(uuid,text,jsonb,text,text,smallint,timestamp with time zone)",
            f"SELECT crm.enqueue_job(%s, 'refetch', '{{}}', {src}, '91')",
            lambda f: (B,),
            "CX003",
        ),
        # A's job with B's dedupe key is A's own: it never absorbs B's open job
        Case(
            "crm.enqueue_job(uuid,text,jsonb,text,text,smallint,timestamp with time zone)",
            f"SELECT crm.enqueue_job(%s, 'refetch', '{{\"x\": 1}}', {src}, '91')",
            lambda f: (A,),
        ),
        Case(
            "crm.enqueue_jobs(uuid,text,text,jsonb)",
            f"SELECT crm.enqueue_jobs(%s, 'refetch', {src}, %s::jsonb)",
            lambda f: (B, _j([{"dedupe_key": "91"}])),
            "CX003",
        ),
        Case(
            "crm.enqueue_jobs(uuid,text,text,jsonb)",
            f"SELECT crm.enqueue_jobs(%s, 'refetch', {src}, %s::jsonb)",
            lambda f: (A, _j([{"dedupe_key": "91"}, {"dedupe_key": "92"}])),
            [(2,)],
        ),
        Case(
            "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
            f"SELECT crm.enqueue_writeback(%s, {src}, 'contact', '92', 'update', '{{\"firstname\": \"x\"}}', 'copilot')",
            lambda f: (B,),
            "CX003",
        ),
        Case(
            "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
            f"SELECT crm.enqueue_writeback(%s, {src}, 'contact', NULL, 'create', '{{\"email\": \"x\"}}', 'copilot', "
            "NULL, 5::smallint, %s)",
            lambda f: (A, f"new@{B_DOMAIN}"),
        ),
        Case(
            "crm.writeback_drop_superseded(uuid,text,text,jsonb)",
            f"SELECT crm.writeback_drop_superseded(%s, {src}, 'contact', %s::jsonb)",
            lambda f: (
                B,
                _j(
                    [
                        {
                            "crm_record_id": "92",
                            "property": "lifecyclestage",
                            "value": "x",
                            "occurred_at": LATER,
                        }
                    ]
                ),
            ),
            "CX003",
        ),
        Case(
            "crm.writeback_drop_superseded(uuid,text,text,jsonb)",
            f"SELECT crm.writeback_drop_superseded(%s, {src}, 'contact', %s::jsonb)",
            lambda f: (
                A,
                _j(
                    [
                        {
                            "crm_record_id": "92",
                            "property": "lifecyclestage",
                            "value": "x",
                            "occurred_at": LATER,
                        }
                    ]
                ),
            ),
            [(0,)],
        ),
        Case(
            "crm.writeback_open_since(uuid,text,text,text)",
            f"SELECT crm.writeback_open_since(%s, {src}, 'contact', '92')",
            lambda f: (B,),
            [(None,)],  # B has an open write-back for 92
        ),
        Case(
            "crm.writeback_count(uuid,text[])",
            "SELECT crm.writeback_count(%s, ARRAY['pending', 'processing', "
            "'failed', 'dead_letter', 'completed'])",
            lambda f: (B,),
            "CX003",
        ),
        Case(
            "crm.writeback_count(uuid,text[])",
            "SELECT crm.writeback_count(%s, ARRAY['pending', 'processing', 'failed', 'dead_letter'])",
            lambda f: (A,),
        ),
        # tier 2 and stats
        *(
            Case(
                f"crm.{fn}(uuid,text,text,jsonb,jsonb,timestamp with time zone)",
                f"SELECT crm.{fn}(%s, {src}, %s, %s::jsonb, '{{}}')",
                lambda f, org=org, rid=rid: (org, rid, _j({"notes": "x"})),
                "CX003" if org == B else ANY,  # for A: a record of A's own, not linked to B's index row
            )
            for fn, rid in (("materialize_contact_write", "91"), ("materialize_company_write", "901"))
            for org in (A, B)
        ),
        Case("crm.org_stats(uuid)", "SELECT * FROM crm.org_stats(%s)", lambda f: (B,), "CX003"),
        Case("crm.purge_deleted(interval)", "SELECT * FROM crm.purge_deleted('1 day')", expect=[(1, 0, 0)]),
        # trigger functions cannot be called directly
        *(
            Case(f"crm.{fn}()", f"SELECT crm.{fn}()", expect="0A000")
            for fn in (
                "contact_index_derive",
                "company_index_derive",
                "deal_index_derive",
                "queue_notify",
                "connection_account_unique",
            )
        ),
    ]
    for q in QUEUES:
        cases += _queue_cases(q)
    cases += _search_cases()
    cases += _api_cases()
    # org-free helpers (derivations of their arguments and global reference data): given B's strings they
    # return what they return for anyone
    pure = {
        "crm.company_industry_groups(text,text,text)": f"'BANKING', '{COMPANY[B]} Corp', '{B_DOMAIN}'",
        "crm.company_search_doc(text)": f"'{COMPANY[B]} Corp'",
        "crm.contact_name_norm(text,text)": "'Stan', 'Lee'",
        "crm.contact_search_doc(text,text,text,text)": f"'Stan', 'Lee', '{COMPANY[B]}', 'VP'",
        "crm.index_protected_columns(regclass)": "'crm.contact_index'",
        "crm.industry_group_industries(text)": "'fintech'",
        "crm.industry_term_group(text)": "'banks'",
        "crm.interpret_stop_words()": "",
        "crm.interpret_vocabulary()": "",
        "crm.name_phonetic_keys(text)": f"'{COMPANY[B]}'",
        "crm.name_soundex(text)": "'Lee'",
        "crm.norm_domain(text)": f"'https://{B_DOMAIN}/'",
        "crm.norm_text(text)": f"'{COMPANY[B]}'",
        "crm.normalize_search_filters(text,jsonb)": f"'contacts', '{_j({'email': B_EMAIL, 'company': COMPANY[B]})}'",
        "crm.phonetic_key(text)": f"'{COMPANY[B]}'",
        "crm.queue_backoff(integer)": "3",
        "crm.rate_limit_default(text,text)": "'hubspot', 'general'",
        "crm.search_candidate_cap()": "",
        "crm.search_company_name_condition(text[],text)": f"ARRAY['{COMPANY[B]}'], 'words'",
        "crm.search_departments()": "",
        "crm.search_filter_strings(text,jsonb)": f"'email', '\"{B_EMAIL}\"'",
        "crm.search_query_parts(text)": f"'{B_EMAIL} {B_DOMAIN} stan'",
        "crm.search_seniorities()": "",
        "crm.text_cap(text)": "'email'",
        "crm.input_cap(text)": "'payload'",
        "crm.title_department(text)": "'VP of Sales'",
        "crm.title_department_terms()": "",
        "crm.title_seniority(text)": "'VP of Sales'",
        "crm.title_seniority_terms()": "",
        "crm.title_tokens(text)": "'VP of Sales'",
        "crm.trgm_sim(text,text)": f"'{COMPANY[B]}', 'zenit'",
        "crm.trgm_word_match(text,text)": f"'{COMPANY[B]}', 'zenit'",
        "crm.trgm_word_sim(text,text)": f"'{COMPANY[B]}', 'zenit'",
        "crm.unaccent_text(text)": f"'{COMPANY[B]}'",
        "crm.word_phonetic_key(text)": f"'{COMPANY[B]}'",
    }
    cases += [Case(sig, f"SELECT * FROM {sig.split('(')[0]}({args})") for sig, args in pure.items()]
    return cases


CASES = _cases()


def _all_functions(conn: Conn) -> set[str]:
    return {
        str(r[0])
        for r in conn.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'crm'::regnamespace"
        )
    }


def test_the_table_covers_every_function_the_app_role_may_execute(su: Conn) -> None:
    """A function crm_app may execute fails here until it has adversarial calls in CASES (and a removed one must
    go). CASES also keep calls of functions crm_app may no longer execute (issue 13: the workers' functions):
    those must be refused (42501) in every mode."""
    executable = set(_executable_functions(su))
    covered = {c.signature for c in CASES}
    assert executable - covered == set(), "functions crm_app may execute without adversarial calls"
    assert covered - _all_functions(su) == set(), "CASES name functions that are gone"


def test_security_definer_functions_are_attacked_with_b_as_org_and_as_data(su: Conn) -> None:
    """SECURITY DEFINER functions bypass row-level security: each is called with B as p_org_id and with
    B's emails / domains / companies as text and filters while bound to A."""
    definers = {sig for sig, definer in _executable_functions(su).items() if definer}
    assert definers, "the search helpers are SECURITY DEFINER"
    for sig in definers - TRIGGER_FUNCTIONS:
        calls = [c for c in CASES if c.signature == sig]
        assert any(c.expect == "CX003" for c in calls), f"{sig}: no call naming org B"
        assert sum(1 for c in calls if c.expect != "CX003") >= 3, f"{sig}: too few calls with B's data"
    # their search_path is pinned (no object of the caller's can be slipped in)
    for sig in definers:
        row = su.execute("SELECT proconfig FROM pg_proc WHERE oid = %s::regprocedure", (sig,)).fetchone()
        assert row is not None and any(str(c).startswith("search_path=") for c in row[0] or []), sig


ALLOWED_ERRORS = {"42501", "CX001", "CX002", "CX003", "CX004"}


def _check_case(
    case: Case,
    mode: Mode,
    outcome: object,
    after: dict[str, str],
    before: dict[str, str],
    facts: Facts,
    executable: bool = True,
) -> str | None:
    """None when the call behaved; else what went wrong. A function crm_app may not execute must be refused
    for lack of the privilege, whatever the binding and the arguments."""
    if after != before:
        changed = sorted(k for k in before if after.get(k) != before[k])
        return f"changed B's data in {changed}"
    if not executable:
        denied = isinstance(outcome, psycopg.errors.InsufficientPrivilege)
        denied = denied and "permission denied for function" in str(outcome)
        return None if denied else f"crm_app may not execute it, yet: {outcome!r}"
    if isinstance(outcome, psycopg.Error):
        state = outcome.sqlstate or ""
        if mode == "bound_a" and isinstance(case.expect, str):
            return None if state == case.expect else f"raised {state} {outcome}, expected {case.expect}"
        if mode == "bound_a" and case.expect is not ANY:
            return f"raised {state} {outcome}, expected {case.expect!r}"
        allowed = ALLOWED_ERRORS | ({"22P02"} if mode == "malformed" else set())
        if case.expect == "0A000":
            allowed = {"0A000"}
        return None if state in allowed else f"raised an unexpected {state}: {outcome}"
    if mode == "bound_a" and case.expect is not ANY and outcome != case.expect:
        return f"returned {outcome!r}, expected {case.expect!r}"
    try:
        assert_nothing_of_b(outcome, facts, case.absent)
    except AssertionError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("mode", list(MODES))
def test_every_function_with_b_ids_reads_and_changes_nothing_of_b(su: Conn, facts: Facts, mode: Mode) -> None:
    before = snapshot(su)
    executable = set(_executable_functions(su))
    failures = []
    for case in CASES:
        params = case.params(facts)
        outcome, after = attempt(su, mode, case.sql, params)
        problem = _check_case(case, mode, outcome, after, before, facts, case.signature in executable)
        if problem:
            failures.append(f"{case.sql} {params!r}: {problem}")
    assert failures == [], "\n".join(failures)
    assert snapshot(su) == before


# ------------------------------------------------------------------------- session binding edge cases (5)


@pytest.mark.parametrize("mode", ["unbound", "empty"])
def test_an_unbound_app_session_gets_nothing_from_the_security_definer_helpers(su: Conn, mode: Mode) -> None:
    """Regression (fixed in 0012, section tenancy): the SECURITY DEFINER search helpers bypass row-level
    security, and an unbound crm_app session got B's contact ids and scores from them. Since issue 13 the
    helpers are not the application's at all (42501), and the API functions, SECURITY DEFINER themselves,
    refuse an unbound application session (CX003)."""
    for sql, params in (
        ("SELECT * FROM crm.search_contact_ids(%s, 'Stan', '{}', 50)", (B,)),
        ("SELECT * FROM crm.search_contact_ids(%s, '', %s::jsonb, 50)", (B, _j({"email": B_EMAIL}))),
        ("SELECT * FROM crm.search_company_ids(%s, %s, '{}', 50)", (B, COMPANY[B])),
        ("SELECT crm.search_contact_plan(%s, 'Stan', '{}', 50)", (B,)),
        ("SELECT crm.search_company_plan(%s, 'Stan', %s::jsonb, 50)", (B, _j({"company_domain": B_DOMAIN}))),
    ):
        outcome, _ = attempt(su, mode, sql, params)
        assert isinstance(outcome, psycopg.errors.InsufficientPrivilege), f"{sql}: {outcome!r}"
    for sql, params in (
        ("SELECT * FROM crm.search_contacts(%s, 'Stan', '{}', 50)", (B,)),
        ("SELECT * FROM crm.search_companies(%s, 'Zenith', '{}', 50)", (B,)),
        ("SELECT crm.search(%s, 'Stan')", (B,)),
        ("SELECT * FROM crm.resolve_contact(%s, 'Stan')", (B,)),
        ("SELECT contacts_indexed, deals_indexed, inbox_pending, sync_state FROM crm.org_stats(%s)", (B,)),
        ("SELECT * FROM crm.update_contact(%s, '91', '{\"job_title\": \"x\"}')", (B,)),
        ("SELECT * FROM crm.request_materialization(%s, ARRAY['91'])", (B,)),
    ):
        outcome, _ = attempt(su, mode, sql, params)
        assert isinstance(outcome, psycopg.Error) and outcome.sqlstate == "CX003", f"{sql}: {outcome!r}"
    # the counter runs as the caller: row-level security shows an unbound session nothing of B
    outcome, _ = attempt(
        su, mode, "SELECT crm.writeback_count(%s, ARRAY['pending', 'processing', 'dead_letter'])", (B,)
    )
    assert outcome == [(0,)]


def test_the_worker_role_and_the_owner_still_search_any_org_unbound(su: Conn) -> None:
    """The fix keeps what sees every org anyway: crm_worker and the migrating superuser."""
    expected = su.execute(
        "SELECT count(*) FROM crm.contact_index WHERE org_id = %s AND first_name = 'Stan'", (B,)
    ).fetchone()
    with su.transaction(force_rollback=True):
        su.execute("SET ROLE crm_worker")
        rows = su.execute("SELECT c.id FROM crm.search_contacts(%s, 'Stan', '{}', 50) AS c", (B,)).fetchall()
        assert len(rows) == expected[0] if expected else 0
        assert {int(r[0]) for r in rows} <= set(range(ID_BASE_B, ID_BASE_B + 100))
        plan = su.execute("SELECT crm.search_contact_plan(%s, 'Stan', '{}', 50)", (B,)).fetchone()
        assert plan is not None and plan[0]["mode"] == "text"
    assert (
        su.execute("SELECT count(*) FROM crm.search_contact_ids(%s, 'Stan', '{}', 50)", (B,)).fetchone()
        == expected
    )


def test_a_transaction_local_binding_ends_with_the_transaction(tenancy_dsn: str) -> None:
    """A pooled connection (unbound) binds per transaction with set_config(..., true): inside it sees A
    only; after COMMIT it is unbound again and sees nothing; a session bound to B (a previous tenant of a
    pooled connection) that binds A for one transaction sees A only in it, and B's rows are never mixed in."""
    count_sql = "SELECT org_id, count(*) FROM crm.contact_index GROUP BY 1"
    with psycopg.connect(tenancy_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE crm_app")
        with conn.transaction():
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(A),))
            assert {r[0] for r in conn.execute(count_sql)} == {A}
            # switching inside one transaction: each statement sees the org bound when it runs
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(B),))
            assert {r[0] for r in conn.execute(count_sql)} == {B}
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(A),))
            assert {r[0] for r in conn.execute(count_sql)} == {A}
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("UPDATE crm.contact_index SET org_id = %s WHERE org_id = %s", (B, A))
        assert conn.execute(count_sql).fetchall() == []
        assert conn.execute("SELECT crm.current_org_id()").fetchone() == (None,)
        bind_org(conn, B)
        with conn.transaction():
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(A),))
            assert {r[0] for r in conn.execute(count_sql)} == {A}
            hits = conn.execute("SELECT id FROM crm.search_contacts(%s, 'Stan', '{}', 50)", (A,)).fetchall()
            assert hits and all(int(h[0]) < ID_BASE_B for h in hits)
        assert {r[0] for r in conn.execute(count_sql)} == {B}
        # a failed transaction rolls the local binding back too
        with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(A),))
            conn.execute("SELECT 1 / 0")
        assert conn.execute("SELECT crm.current_org_id()").fetchone() == (B,)


# ------------------------------------------------------------------------------------ Python layer (step 4)


@pytest.fixture
def fake_fetcher() -> Iterator[tuple[FakeHubSpot, HubSpotFetcher]]:
    with FakeHubSpot(limits=False) as fake:
        client = HubSpotClient(
            fake.base_url, lambda: "test-token", None, retry=RetryPolicy.fast(max_attempts=2)
        )
        try:
            yield fake, HubSpotFetcher(client)
        finally:
            client.close()


def test_the_python_layer_acting_for_a_gets_nothing_of_b(
    su: Conn, app: Conn, facts: Facts, fake_fetcher: tuple[FakeHubSpot, HubSpotFetcher]
) -> None:
    fake, fetcher = fake_fetcher
    before = snapshot(su)
    b_refs: list[str | int] = [f"#{facts.contact_ids[0]}", facts.contact_ids[1], "91", B_EMAIL]
    mismatch: list[Callable[[], object]] = [
        lambda: search.search_contacts(app, B, "Stan"),
        lambda: search.search_companies(app, B, COMPANY[B]),
        lambda: search.search(app, B, "vps"),
        lambda: search.interpret(app, B, "vps"),
        lambda: search.resolve_contact(app, B, B_EMAIL),
        lambda: search.run_search_params(app, B, {"query": "stan"}),
        lambda: materialize_contact(app, fetcher, B, "91"),
        lambda: activate_by_email(app, fetcher, B, B_EMAIL),
        lambda: materialize_many(app, fetcher, B, ["91"]),
        lambda: org_status(app, B),
        lambda: create_contact(app, B, "hubspot", {"email": f"x@{B_DOMAIN}"}),
        lambda: update_contact(app, B, B_EMAIL, {"job_title": "pwned"}),
        lambda: request_materialization(app, B, ["91"]),
        lambda: resolve_contacts(app, B, b_refs),
    ]
    for call in mismatch:
        with pytest.raises(OrgMismatchError):
            call()
    # the queue core is the workers' (issue 13): refused to the application role for any org
    denied: list[Callable[[], object]] = [
        lambda: enqueue_job(app, B, "refetch"),
        lambda: enqueue_job(app, A, "refetch"),
        lambda: Queue("crm.job").requeue(app, B),
        lambda: Queue("crm.job").claim(app, "attacker", 100, org_id=B),
        lambda: Queue("crm.writeback_queue").claim(app, "attacker", 100),
    ]
    for call in denied:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            call()
    not_found: list[Callable[[], object]] = [
        *(lambda r=r: resolve_contact(app, A, r) for r in b_refs),
        *(lambda r=r: materialize_contact(app, fetcher, A, r) for r in b_refs),
        *(lambda r=r: record_enrichment(app, fetcher, A, r, "apollo", {"x": 1}) for r in b_refs),
        *(lambda r=r: update_contact(app, A, r, {"job_title": "pwned"}) for r in b_refs),
        *(lambda r=r: request_materialization(app, A, [r]) for r in b_refs),
        lambda: materialize_many(app, fetcher, A, b_refs),
        lambda: get_contact_record(app, A, facts.record_id),
        lambda: get_contact_record(app, B, facts.record_id),
        lambda: get_connection(app, B, "hubspot"),
    ]
    for call in not_found:
        with pytest.raises(NotFoundError):
            call()
    # connecting is an operator path: refused to the application role (no EXECUTE; the function checks too)
    with pytest.raises((psycopg.errors.InsufficientPrivilege, OrgMismatchError)):
        register_connection(app, B, "hubspot", "4999", auth_kind="private_app")
    # calls that succeed for A, with B's ids / emails / domains / companies as references and filters
    results: list[object] = [
        resolve_contacts(app, A, b_refs),
        *(search.search_contacts(app, A, "", flt).hits for flt in _SEARCH_FILTERS),
        *(search.search_contacts(app, A, text).hits for text in (B_EMAIL, B_DOMAIN)),
        search.search_contacts(app, A, "", after=f"0:{min(facts.contact_ids) - 1}").hits,
        *(search.search_companies(app, A, "", flt).hits for flt in _COMPANY_FILTERS),
        search.search_companies(app, A, COMPANY[B]).hits,
        search.search(app, A, f"VPs at {B_DOMAIN}").hits,
        search.search(app, A, B_EMAIL).hits,
        search.resolve_contact(app, A, B_EMAIL),
        search.run_search_params(app, A, {"query": "", "filters": {"email": B_EMAIL}}).hits,
        list_connections(app, B),
    ]
    assert all(r in ([], [None] * len(b_refs)) for r in results), results
    assert_nothing_of_b(results, facts, what="python layer")
    # what A may see of itself carries nothing of B either
    own = [
        org_status(app, A),
        list_orgs(app),
        list_connections(app),
        search.search(app, A, f"Stan from {COMPANY[B]}"),
    ]
    assert own[1] == [A]
    assert_nothing_of_b(own, facts, what="python layer, own org")
    # the meeting-booked path with B's email makes a local contact of A's, never B's record
    walk_in = activate_by_email(app, fetcher, A, B_EMAIL, "Stan")
    assert walk_in.outcome == "local" and walk_in.record is not None and walk_in.record.org_id == A
    assert_nothing_of_b(walk_in, facts, what="activate_by_email")
    assert fake.requests_to("/crm/v3/objects/contacts") == []  # nothing of B was fetched on A's behalf
    assert snapshot(su) == before


def test_an_org_cannot_claim_another_orgs_crm_account(app: Conn, su: Conn) -> None:
    """Webhooks are routed by portal / workspace id: A registering B's portal would take B's webhooks. The
    check runs as the table owner, so row-level security (which hides B's connection from A) cannot blind it."""
    before = snapshot(su)
    for source, account in (("hubspot", PORTAL[B]), ("attio", f"ws-{PORTAL[B]}")):
        with pytest.raises((psycopg.errors.InsufficientPrivilege, OrgMismatchError)):
            register_connection(app, A, source, account, auth_kind="private_app")
        # even the operator path refuses it (the account ids come from the tokens, and one account is one org's)
        with pytest.raises(InvalidInputError, match=r"another org|disconnect it first"):
            register_connection(su, A, source, account, auth_kind="private_app")
        with pytest.raises(psycopg.Error) as exc:
            app.execute(
                "UPDATE crm.connection SET account_id = %s WHERE org_id = %s AND crm_source = %s",
                (account, A, source),
            )
        assert exc.value.sqlstate in ("CX002", "42501"), exc.value  # no UPDATE for crm_app at all now
    assert snapshot(su) == before
    assert get_connection(app, A, "hubspot").account_id == PORTAL[A]
