"""The application role at the trust boundary (issue 13, items 1 and 6, "Roles" and "Bounded input").

An attacker holds a ``crm_app`` session bound to org A (``SET ROLE crm_app`` + ``crm.org_id``, as
``crmindex.platform.db.bind_org`` does). It must not write any table directly, run SQL of its own through a
helper, file webhook deliveries, complete / requeue / purge jobs, repoint its connection, or purge soft-deleted
rows; every input it hands the API is bounded (a 5 MB first_name is refused naming the field and changes
nothing). What it may do (search, resolve, stats, local changes with their write-back, materialization
requests, local contacts, enrichment) works for A through the API functions and is refused for org B.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from crmindex.errors import InvalidInputError, InvalidRowError, NotFoundError, OrgMismatchError
from crmindex.index import search
from crmindex.index.refs import resolve_contacts
from crmindex.index.writes import (
    CompanyRow,
    ContactRow,
    DealRow,
    ensure_org,
    upsert_companies,
    upsert_contacts,
    upsert_deals,
)
from crmindex.platform import bounds
from crmindex.platform.db import translate_errors
from crmindex.platform.queue import Queue, enqueue_job
from crmindex.records.materialize import activate_by_email, request_materialization
from crmindex.status import org_status
from crmindex.writeback.enqueue import create_contact, update_contact
from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B
from tests.orgs import app_session

Conn = psycopg.Connection[Any]
FIVE_MB = "x" * 5_000_000
DOMAIN = {A: "acme.com", B: "zenith.io"}
PORTAL = {A: "7100", B: "7900"}


def connect_account(conn: Conn, org: uuid.UUID, source: str, account: str, settings: dict[str, Any]) -> None:
    """A connection row as the operator path leaves it (seeded as the owner: the test is not about connecting)."""
    conn.execute(
        "INSERT INTO crm.connection (org_id, crm_source, account_id, settings) VALUES (%s, %s, %s, %s)",
        (org, source, account, json.dumps(settings)),
    )


def seed(conn: Conn, org: uuid.UUID) -> None:
    """Rows of ``org`` in the index, tier 2, the activation log, every queue, the limiter and sync state."""
    dom = DOMAIN[org]
    ensure_org(conn, org, f"Org {dom}")
    connect_account(conn, org, "hubspot", PORTAL[org], {})
    connect_account(
        conn, org, "attio", f"ws-{PORTAL[org]}", {"attio_attributes": {"lifecycle_stage": "stage"}}
    )
    upsert_companies(conn, org, "hubspot", [CompanyRow(crm_record_id="c1", name=f"{dom} Inc", domain=dom)])
    upsert_contacts(
        conn,
        org,
        "hubspot",
        [
            ContactRow(
                crm_record_id="101",
                first_name="Stan",
                last_name="Lee",
                email=f"stan@{dom}",
                job_title="VP Sales",
                company_crm_id="c1",
                crm_updated_at="2025-01-01T00:00:00Z",
            ),
            ContactRow(
                crm_record_id="102",
                first_name="Jane",
                last_name="Roe",
                email=f"jane@{dom}",
                crm_updated_at="2025-01-01T00:00:00Z",
            ),
            ContactRow(
                crm_record_id="103",
                first_name="Old",
                deleted_at="2019-01-01T00:00:00Z",
                crm_updated_at="2019-01-01T00:00:00Z",
            ),
        ],
    )
    upsert_contacts(conn, org, "attio", [ContactRow(crm_record_id="p-1", first_name="Zoe", last_name="Ng")])
    upsert_deals(
        conn, org, "hubspot", [DealRow(crm_record_id="d1", stage="qualifiedtobuy", contact_crm_ids=["101"])]
    )
    conn.execute(
        "SELECT crm.materialize_contact_write(%s, 'hubspot', '102', %s, '{}', now())",
        (org, json.dumps({"first_name": "Jane", "last_name": "Roe", "email": f"jane@{dom}"})),
    )
    conn.execute(
        "INSERT INTO crm.activation_log (org_id, entity_type, crm_source, crm_record_id, reason, actor, outcome) "
        "VALUES (%s, 'contact', 'hubspot', '102', 'copilot', 'seed', 'x')",
        (org,),
    )
    for i in range(3):
        enqueue_job(conn, org, "refetch", {"i": i}, source="hubspot", dedupe_key=f"k{i}")
    conn.execute(
        "INSERT INTO crm.webhook_inbox (org_id, crm_source, account_id, body) VALUES (%s, 'hubspot', %s, '[]')",
        (org, PORTAL[org]),
    )
    update_contact(conn, org, "101", {"lifecycle_stage": "customer"})
    conn.execute("SELECT crm.rate_limit_reserve(%s, 'hubspot', 'general')", (org,))
    conn.execute("SELECT crm.sync_checkpoint(%s, 'hubspot', 'contacts', 'cursor', 1, FALSE)", (org,))
    conn.execute(
        "INSERT INTO crm.crm_owner (org_id, crm_source, owner_id, first_name) VALUES (%s, 'hubspot', '7', 'Jane')",
        (org,),
    )
    conn.execute(
        "INSERT INTO crm.crm_pipeline_stage (org_id, crm_source, object_type, pipeline_id, stage_id, stage_label) "
        "VALUES (%s, 'hubspot', 'deals', 'default', 's1', 'Negotiation')",
        (org,),
    )
    conn.execute(
        "SELECT crm.lists_sync(%s, 'attio', %s)",
        (org, json.dumps([{"list_id": "L1", "name": "Enterprise pipeline", "parent_object": "companies"}])),
    )
    conn.execute(
        "SELECT crm.list_entries_upsert(%s, 'attio', %s)",
        (
            org,
            json.dumps(
                [{"list_id": "L1", "entry_id": "e1", "parent_object": "companies", "parent_record_id": "1"}]
            ),
        ),
    )
    # one job done long ago and one dead letter: what purging and requeueing would touch
    conn.execute(
        "UPDATE crm.job SET status = 'completed', completed_at = now() - interval '30 days' "
        "WHERE org_id = %s AND dedupe_key = 'k0'",
        (org,),
    )
    conn.execute("UPDATE crm.job SET status = 'dead_letter' WHERE org_id = %s AND dedupe_key = 'k1'", (org,))


@pytest.fixture
def su(db: Conn) -> Conn:
    """The owner (superuser), with orgs A and B seeded."""
    for org in (A, B):
        seed(db, org)
    return db


@pytest.fixture
def app(db_dsn: str, su: Conn) -> Iterator[Conn]:
    """The attacker: an autocommit session as crm_app bound to org A."""
    with app_session(db_dsn, A) as conn:
        yield conn


def relations(conn: Conn) -> list[tuple[str, str, bool]]:
    """(name, relkind, has org_id) of every table and view of schema crm."""
    return [
        (str(r[0]), str(r[1]), bool(r[2]))
        for r in conn.execute(
            "SELECT c.oid::regclass::text, c.relkind, EXISTS (SELECT 1 FROM pg_attribute AS a "
            "WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped) "
            "FROM pg_class AS c WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1"
        )
    ]


def snapshot(su: Conn) -> dict[str, str]:
    """A digest of every table (every org), read as the owner."""
    parts = [
        f"SELECT '{name}', md5(coalesce(string_agg(to_jsonb(t)::text, ',' ORDER BY to_jsonb(t)::text), '')) "
        f"FROM {name} AS t"
        for name, kind, _ in relations(su)
        if kind == "r" and name != "crm.schema_area"
    ]
    return {str(r[0]): str(r[1]) for r in su.execute(" UNION ALL ".join(parts))}


def refused(conn: Conn, sql: str, params: tuple[object, ...] = ()) -> psycopg.Error | None:
    """Run ``sql`` in a savepoint; the error it raised (None when it ran)."""
    try:
        with conn.transaction():
            conn.execute(sql, params)
    except psycopg.Error as exc:
        return exc
    return None


def denied(exc: object) -> bool:
    return isinstance(exc, psycopg.errors.InsufficientPrivilege) and "permission denied" in str(exc)


def call_with_nulls(conn: Conn, signature: str) -> str:
    """``SELECT crm.f((SELECT NULL::t1), ...)`` for a signature as regprocedure prints it (sub-selects: a STRICT
    function called with constant NULLs is folded away by the planner, privileges unchecked)."""
    row = conn.execute(
        "SELECT p.proname, ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t) "
        "FROM pg_proc AS p WHERE p.oid = %s::regprocedure",
        (signature,),
    ).fetchone()
    assert row is not None
    return f"SELECT crm.{row[0]}({', '.join(f'(SELECT NULL::{t})' for t in row[1])})"


# ------------------------------------------------------------------------------------- no direct writes


def test_no_direct_insert_update_delete_or_truncate_on_any_table(app: Conn, su: Conn) -> None:
    """Before: crm_app could INSERT / UPDATE / DELETE every org table for its own org (webhook_inbox, the
    queues, rate_limit, sync_state, org, connection...): the first UPDATE of A's own rows succeeded."""
    before = snapshot(su)
    failures = []
    for name, kind, has_org in relations(su):
        own = f"WHERE org_id = '{A}'" if has_org else ""
        first = su.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1", (name,)
        ).fetchone()
        assert first is not None
        statements = [
            f"INSERT INTO {name} DEFAULT VALUES",
            f"UPDATE {name} SET {first[0]} = {first[0]} {own}",
            f"DELETE FROM {name} {own}",
        ]
        if kind == "r":
            statements.append(f"TRUNCATE {name}")
        for sql in statements:
            exc = refused(app, sql)
            if not denied(exc):
                failures.append(f"{sql}: {exc!r}")
    assert failures == []
    assert snapshot(su) == before


def test_the_app_cannot_repoint_its_connection(app: Conn, su: Conn) -> None:
    """Item 1, first step: the tenant set its connection's base_url to a host it runs and its account id to
    someone else's portal. Before: the UPDATE succeeded (and the drainer then sent the token there)."""
    before = snapshot(su)
    for assignment in (
        "base_url = 'http://127.0.0.1:9/steal'",
        f"account_id = '{PORTAL[B]}'",
        "settings = '{}'",
    ):
        assert denied(refused(app, f"UPDATE crm.connection SET {assignment} WHERE org_id = %s", (A,)))
    assert denied(refused(app, "DELETE FROM crm.connection WHERE org_id = %s", (A,)))
    assert denied(
        refused(
            app, "INSERT INTO crm.connection (org_id, crm_source, account_id) VALUES (%s, 'attio', 'x')", (A,)
        )
    )
    # and no function the application may call changes a connection (connecting is the operator's path)
    writers = app.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc AS p WHERE p.pronamespace = 'crm'::regnamespace "
        "AND p.proname LIKE '%%connection%%' AND has_function_privilege(p.oid, 'EXECUTE')"
    ).fetchall()
    assert writers == []
    assert snapshot(su) == before
    # what it may see of its connection: its own row, read-only
    assert app.execute("SELECT org_id, account_id FROM crm.connection ORDER BY 2").fetchall() == [
        (A, PORTAL[A]),
        (A, f"ws-{PORTAL[A]}"),
    ]


def test_no_helper_runs_sql_of_the_callers_choosing(app: Conn, su: Conn) -> None:
    """crm.run_search_plan(jsonb) executes the SQL text of the plan it is given. Before: crm_app (and PUBLIC)
    could execute it (row-level security was all that stood between a hand-made plan and B's rows)."""
    plan = json.dumps(
        {"mode": "filter", "sql": f"SELECT id, 0::float8 FROM crm.contact_index WHERE org_id = '{B}'"}
    )
    assert denied(refused(app, "SELECT * FROM crm.run_search_plan(%s::jsonb)", (plan,)))
    with app.transaction():
        app.execute("RESET ROLE")
        app.execute("SET LOCAL ROLE crm_worker")
        assert denied(refused(app, "SELECT * FROM crm.run_search_plan(%s::jsonb)", (plan,)))
    app.execute("SET ROLE crm_app")
    # the search, which runs plans as the helpers' owner, still works for the application
    hits = search.search_contacts(app, A, "stan").hits
    assert [h.crm_record_id for h in hits] == ["101"]


def test_the_app_cannot_file_webhook_deliveries(app: Conn, su: Conn) -> None:
    """Before: crm_app could call crm.webhook_accept (and INSERT into the inbox): an unsigned delivery filed
    under its org, processed by the workers as if the CRM had sent it."""
    before = snapshot(su)
    intake = [
        str(r[0])
        for r in su.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'crm'::regnamespace "
            "AND proname IN ('webhook_accept', 'webhook_route')"
        )
    ]
    assert any(sig.startswith("crm.webhook_accept(") for sig in intake)
    for sig in intake:
        assert denied(refused(app, call_with_nulls(su, sig))), sig
    assert denied(refused(app, "SELECT crm.webhook_accept(%s, 'hubspot', %s, '[]', '{}', 1)", (A, PORTAL[A])))
    assert denied(
        refused(
            app,
            "INSERT INTO crm.webhook_inbox (org_id, crm_source, account_id, body) VALUES (%s, 'hubspot', %s, '[]')",
            (A, PORTAL[A]),
        )
    )
    assert denied(refused(app, "SELECT count(*) FROM crm.webhook_inbox"))  # nor read the raw deliveries
    assert snapshot(su) == before


QUEUE_FUNCTIONS = (
    "queue_claim",
    "queue_complete",
    "queue_fail",
    "queue_release",
    "queue_extend",
    "queue_requeue",
    "queue_reclaim_expired",
    "queue_purge_completed",
    "enqueue_job",
    "enqueue_jobs",
)


def test_the_app_cannot_complete_requeue_or_purge_jobs(app: Conn, su: Conn) -> None:
    """Before: within its org crm_app could complete or requeue jobs and purge finished ones, directly or
    through the queue core's functions."""
    before = snapshot(su)
    for table in ("crm.job", "crm.writeback_queue", "crm.webhook_inbox"):
        assert denied(refused(app, f"UPDATE {table} SET status = 'completed' WHERE org_id = %s", (A,)))
        assert denied(
            refused(app, f"UPDATE {table} SET status = 'pending', attempts = 0 WHERE org_id = %s", (A,))
        )
        assert denied(refused(app, f"DELETE FROM {table} WHERE org_id = %s AND status = 'completed'", (A,)))
    signatures = [
        str(r[0])
        for r in su.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'crm'::regnamespace "
            "AND proname = ANY(%s)",
            (list(QUEUE_FUNCTIONS),),
        )
    ]
    assert len(signatures) >= len(QUEUE_FUNCTIONS)
    for sig in signatures:
        assert denied(refused(app, call_with_nulls(su, sig))), sig
    assert denied(refused(app, "SELECT crm.queue_requeue(%s, 'crm.job')", (A,)))
    assert denied(refused(app, "SELECT crm.queue_purge_completed('crm.job', '1 day')"))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        Queue("crm.job").requeue(app, A)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        Queue("crm.writeback_queue").claim(app, "attacker", 10)
    assert snapshot(su) == before


def test_the_app_cannot_purge_soft_deleted_rows_or_run_maintenance(app: Conn, su: Conn) -> None:
    """Before: crm.purge_deleted ran for crm_app (and deleted A's old soft-deleted contact)."""
    before = snapshot(su)
    for sql in (
        "SELECT * FROM crm.purge_deleted('1 day')",
        "SELECT crm.maintenance()",
        "SELECT * FROM crm.install_maintenance_schedule('* * * * *')",
    ):
        assert denied(refused(app, sql)), sql
    assert snapshot(su) == before


def test_every_function_outside_the_api_refuses_the_app(app: Conn, su: Conn) -> None:
    """The index writers, webhook appliers, limiter, sync checkpoints, tier-2 writers, queue core, connection
    store...: crm_app may execute none of them (before: PUBLIC and crm_app could execute ~85 functions)."""
    api = {
        str(r[0])
        for r in su.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'crm'::regnamespace "
            "AND has_function_privilege('crm_app', oid, 'EXECUTE')"
        )
    }
    others = [
        str(r[0])
        for r in su.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'crm'::regnamespace ORDER BY 1"
        )
        if str(r[0]) not in api
    ]
    assert len(others) > 60
    before = snapshot(su)
    failures = [sig for sig in others if not denied(refused(app, call_with_nulls(su, sig)))]
    assert failures == []
    assert snapshot(su) == before
    for worker_only in (
        "upsert_contacts",
        "apply_deletions",
        "materialize_contact_write",
        "rate_limit_reserve",
    ):
        assert not any(sig.startswith(f"crm.{worker_only}(") for sig in api), worker_only


# ----------------------------------------------------------------------------------------- bounded input


def test_a_5mb_first_name_is_refused_naming_the_field_and_changes_nothing(app: Conn, su: Conn) -> None:
    """Before: update_contact stored the 5 MB first_name in the index (and queued it for the CRM)."""
    before = snapshot(su)
    with pytest.raises(InvalidInputError, match="first_name is longer than 1000 characters"):
        update_contact(app, A, "101", {"first_name": FIVE_MB})
    with pytest.raises(InvalidInputError, match="first_name is longer than 1000 characters"):
        create_contact(app, A, "hubspot", {"email": f"new@{DOMAIN[A]}", "first_name": FIVE_MB})
    # the SQL refuses it the same way (psql, or a caller skipping the Python checks)
    for sql, params in (
        ("SELECT * FROM crm.update_contact(%s, '101', %s::jsonb)", (A, json.dumps({"first_name": FIVE_MB}))),
        (
            "SELECT * FROM crm.create_contact(%s, 'hubspot', %s::jsonb)",
            (A, json.dumps({"email": f"new@{DOMAIN[A]}", "first_name": FIVE_MB})),
        ),
    ):
        exc = refused(app, sql, params)
        assert exc is not None and exc.sqlstate == "CX002" and "first_name is longer than 1000" in str(exc), (
            exc
        )
    # the index writers (workers): the typed row refuses it, the SQL names the row and the field
    with pytest.raises(ValidationError, match="first_name"):
        ContactRow(crm_record_id="101", first_name=FIVE_MB)
    with pytest.raises(InvalidRowError, match="first_name longer than 1000 characters") as exc_info:
        upsert_contacts(su, A, "hubspot", [{"crm_record_id": "101", "first_name": FIVE_MB}])
    assert exc_info.value.row == 1 and exc_info.value.crm_record_id == "101"
    exc = refused(
        su,
        "SELECT crm.materialize_contact_write(%s, 'hubspot', '101', %s::jsonb, '{}')",
        (A, json.dumps({"first_name": FIVE_MB})),
    )
    assert exc is not None and exc.sqlstate == "CX002" and "first_name is longer" in str(exc)
    assert snapshot(su) == before


def test_every_payload_the_api_takes_is_bounded(app: Conn, su: Conn) -> None:
    """Before: none of these had a cap (each call below was accepted)."""
    before = snapshot(su)
    big = {"notes": "y" * 70_000}

    def cx002(sql: str, params: tuple[object, ...], field: str) -> None:
        exc = refused(app, sql, params)
        assert exc is not None and exc.sqlstate == "CX002" and field in str(exc), (sql[:60], exc)

    cx002(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', '101', 'update', %s::jsonb, 'copilot')",
        (A, json.dumps(big)),
        "payload is larger than 65536 bytes",
    )
    cx002(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', %s, 'update', '{\"a\": 1}', 'copilot')",
        (A, "9" * 201),
        "crm_record_id is longer than 200",
    )
    cx002(
        "SELECT crm.store_enrichment(%s, gen_random_uuid(), 'apollo', %s::jsonb)",
        (A, json.dumps({"x": "z" * 300_000})),
        "payload is larger than 262144 bytes",
    )
    cx002("SELECT * FROM crm.request_materialization(%s, %s::text[])", (A, ["101"] * 1001), "at most 1000")
    cx002(
        "SELECT * FROM crm.request_materialization(%s, ARRAY['101'], 'copilot', %s)", (A, "a" * 1001), "actor"
    )
    for fn in ("search_contacts", "search_companies"):
        cx002(f"SELECT * FROM crm.{fn}(%s, %s, '{{}}', 5)", (A, "s" * 70_000), "query is longer than 65536")
    cx002("SELECT crm.search(%s, %s)", (A, "s" * 70_000), "query is longer than 65536")
    cx002("SELECT * FROM crm.resolve_contact(%s, %s)", (A, "s" * 70_000), "query is longer than 65536")
    cx002("SELECT crm.interpret_query(%s, %s)", (A, "s" * 70_000), "query is longer than 65536")
    cx002(
        "SELECT * FROM crm.search_contacts(%s, '', %s::jsonb, 5)",
        (
            A,
            json.dumps({"company": ["acme"] * 50, "lead_status": ["x" * 150] * 100, "country": "x" * 70_000}),
        ),
        "filters is larger than 65536 bytes",
    )
    cx002(
        "SELECT * FROM crm.activate_local_contact(%s, %s)", (A, f"{'a' * 400}@x.io"), "not an email address"
    )
    cx002(
        "SELECT * FROM crm.activate_local_contact(%s, 'w@x.io', %s)",
        (A, "n" * 1001),
        "name is longer than 1000",
    )
    assert snapshot(su) == before
    # the open write-back of a record stays within the cap once payloads coalesce into it
    app.execute(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', '102', 'update', %s::jsonb, 'copilot')",
        (A, json.dumps({"a": "1" * 40_000})),
    )
    cx002(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', '102', 'update', %s::jsonb, 'copilot')",
        (A, json.dumps({"b": "2" * 40_000})),
        "would hold more than 65536 bytes",
    )
    # the workers' writers: batches, CRM properties
    for sql, params, message in (
        (
            "SELECT * FROM crm.upsert_contacts(%s, 'hubspot', %s::jsonb)",
            (A, json.dumps([{"crm_record_id": str(i)} for i in range(10_001)])),
            "at most 10000 rows",
        ),
        (
            "SELECT crm.materialize_contact_write(%s, 'hubspot', '101', '{}', %s::jsonb)",
            (A, json.dumps({"p": "q" * 1_100_000})),
            "properties is larger than 1048576 bytes",
        ),
        (
            "SELECT * FROM crm.upsert_deals(%s, 'hubspot', %s::jsonb)",
            (A, json.dumps([{"crm_record_id": "d1", "contact_crm_ids": ["1" * 201]}])),
            "contact_crm_ids",
        ),
    ):
        exc = refused(su, sql, params)
        assert exc is not None and exc.sqlstate in ("CX001", "CX002") and message in str(exc), exc
    with pytest.raises(InvalidRowError, match="at most 10000 rows"):
        upsert_contacts(su, A, "hubspot", [{"crm_record_id": str(i)} for i in range(10_001)])


def test_the_python_limits_are_the_sql_limits(su: Conn) -> None:
    for column in (
        "crm_record_id",
        "company_crm_id",
        "contact_crm_ids",
        "email",
        "match_key",
        "first_name",
        "x",
    ):
        assert su.execute("SELECT crm.text_cap(%s)", (column,)).fetchone() == (bounds.text_cap(column),), (
            column
        )
    for name, cap in bounds.INPUT_CAPS.items():
        assert su.execute("SELECT crm.input_cap(%s)", (name,)).fetchone() == (cap,), name
    assert su.execute("SELECT crm.input_cap('nonsense')").fetchone() == (None,)


# ------------------------------------------------------------------------- what the application may do


def _rows(conn: Conn, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
    with translate_errors():
        return conn.execute(sql, params).fetchall()


API_CALLS: dict[str, tuple[str, Callable[[uuid.UUID], tuple[object, ...]]]] = {
    "search": ("SELECT crm.search(%s, 'vps at acme.com', 5)", lambda o: (o,)),
    "search_contacts": ("SELECT id FROM crm.search_contacts(%s, 'stan', '{}', 5)", lambda o: (o,)),
    "search_companies": ("SELECT id FROM crm.search_companies(%s, 'acme', '{}', 5)", lambda o: (o,)),
    "interpret_query": ("SELECT crm.interpret_query(%s, 'customers at fintech companies')", lambda o: (o,)),
    "resolve_contact": ("SELECT id FROM crm.resolve_contact(%s, 'Stan from Acme')", lambda o: (o,)),
    "resolve_contact_refs": (
        "SELECT id FROM crm.resolve_contact_refs(%s, ARRAY['101', 'p-1'])",
        lambda o: (o,),
    ),
    "org_stats": (
        "SELECT contacts_indexed, writebacks_pending, inbox_pending FROM crm.org_stats(%s)",
        lambda o: (o,),
    ),
    "writeback_count": ("SELECT crm.writeback_count(%s, ARRAY['pending'])", lambda o: (o,)),
    "update_contact": (
        "SELECT job_id, payload FROM crm.update_contact(%s, 'stan@' || %s, '{\"job_title\": \"CRO\"}')",
        lambda o: (o, DOMAIN[A]),
    ),
    "create_contact": (
        "SELECT job_id FROM crm.create_contact(%s, 'hubspot', '{\"email\": \"new@acme.com\"}')",
        lambda o: (o,),
    ),
    "enqueue_writeback": (
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', '102', 'update', '{\"phone\": \"1\"}', 'user')",
        lambda o: (o,),
    ),
    "request_materialization": (
        "SELECT job_id FROM crm.request_materialization(%s, ARRAY['101', '#' || %s::text])",
        lambda o: (o, 1),
    ),
    "activate_local_contact": (
        "SELECT record_id FROM crm.activate_local_contact(%s, 'walk@in.io', 'Walk In')",
        lambda o: (o,),
    ),
    "store_enrichment": (
        "SELECT crm.store_enrichment(%s, (SELECT id FROM crm.contact_record WHERE crm_record_id = '102'), "
        "'apollo', '{\"seniority\": \"vp\"}')",
        lambda o: (o,),
    ),
}


def test_every_api_function_works_for_the_apps_own_org(app: Conn, su: Conn) -> None:
    """Before: crm.update_contact, crm.create_contact, crm.request_materialization, crm.activate_local_contact,
    crm.store_enrichment and crm.resolve_contact_refs did not exist (the Python did the writes itself)."""
    b_before = {k: v for k, v in snapshot(su).items()}
    out = {name: _rows(app, sql, args(A)) for name, (sql, args) in API_CALLS.items()}
    assert out["search_contacts"] and out["search_companies"] and out["resolve_contact"]
    assert out["resolve_contact_refs"][0][0] is not None and out["resolve_contact_refs"][1][0] is not None
    assert out["org_stats"] == [(3, 1, 1)]
    assert out["update_contact"][0][1] == {"jobtitle": "CRO"}
    assert all(r[0] is not None for r in out["request_materialization"])
    # the changes are A's, made through the functions
    assert su.execute(
        "SELECT job_title FROM crm.contact_index WHERE org_id = %s AND crm_record_id = '101'", (A,)
    ).fetchone() == ("CRO",)
    assert su.execute(
        "SELECT org_id, count(*) FROM crm.job WHERE kind = 'materialize' GROUP BY 1"
    ).fetchall() == [(A, 1)]
    enrichment = su.execute(
        "SELECT enrichment -> 'apollo' -> 'data' FROM crm.contact_record WHERE org_id = %s AND crm_record_id = '102'",
        (A,),
    ).fetchone()
    assert enrichment == ({"seniority": "vp"},)
    after = snapshot(su)
    assert {k for k in after if after[k] != b_before[k]} <= {
        "crm.contact_index",
        "crm.contact_record",
        "crm.writeback_queue",
        "crm.job",
        "crm.activation_log",
    }
    b_rows = su.execute(
        "SELECT count(*) FROM crm.writeback_queue WHERE org_id = %s UNION ALL "
        "SELECT count(*) FROM crm.job WHERE org_id = %s AND kind = 'materialize'",
        (B, B),
    ).fetchall()
    assert b_rows == [(1,), (0,)]


def test_the_python_api_works_for_the_apps_own_org(app: Conn, su: Conn) -> None:
    q = update_contact(app, A, f"stan@{DOMAIN[A]}", {"lifecycle_stage": "sql"})
    assert q.crm_record_id == "101" and q.payload == {"lifecyclestage": "salesqualifiedlead"}
    attio = update_contact(app, A, "p-1", {"last_name": "Nguyen", "lifecycle_stage": "lead"})
    assert attio.payload == {
        "name": [{"first_name": "Zoe", "last_name": "Nguyen", "full_name": "Zoe Nguyen"}],
        "stage": "lead",  # the connection maps lifecycle_stage to Attio's custom attribute "stage"
    }
    assert create_contact(app, A, "attio", {"email": "New@X.io", "first_name": "N"}).payload == {
        "email_addresses": ["new@x.io"],
        "name": [{"first_name": "N", "last_name": "", "full_name": "N"}],
    }
    queued = request_materialization(
        app, A, [f"jane@{DOMAIN[A]}", "101", "101"], reason="ops_table", actor="u1"
    )
    assert [m.crm_record_id for m in queued] == ["102", "101", "101"]
    assert queued[1].job_id == queued[2].job_id != queued[0].job_id
    # meeting booked by an indexed contact: the application (no CRM token) gets the fetch queued, once
    booked = activate_by_email(app, None, A, f"JANE@{DOMAIN[A]}", "Jane")
    assert booked.outcome == "queued" and booked.job_id == queued[0].job_id
    # by someone not in the index (here: B's contact): a local contact of A's, and a CRM create
    local = activate_by_email(app, None, A, f"stan@{DOMAIN[B]}", "Stan B", create_in_crm="hubspot")
    assert local.outcome == "local" and local.record is not None and local.record.org_id == A
    assert local.job_id is not None
    assert [
        r.crm_record_id if r else None for r in resolve_contacts(app, A, ["101", "#999999", "x@y.io"])
    ] == [
        "101",
        None,
        None,
    ]
    status = org_status(app, A)
    assert status.contacts_indexed == 3
    assert [q.queue for q in status.queues] == ["crm.writeback_queue", "crm.job"]  # not the raw inbox
    assert status.limiters == []  # nor the workers' budgets


def test_every_api_function_refuses_org_b(app: Conn, su: Conn) -> None:
    before = snapshot(su)
    for name, (sql, args) in API_CALLS.items():
        with pytest.raises(OrgMismatchError):
            _rows(app, sql, args(B))
        assert snapshot(su) == before, name
    for call in (
        lambda: update_contact(app, B, f"stan@{DOMAIN[B]}", {"job_title": "pwned"}),
        lambda: create_contact(app, B, "hubspot", {"email": f"x@{DOMAIN[B]}"}),
        lambda: request_materialization(app, B, ["101"]),
        lambda: activate_by_email(app, None, B, f"x@{DOMAIN[B]}"),
        lambda: resolve_contacts(app, B, ["101"]),
        lambda: search.search(app, B, "stan"),
        lambda: org_status(app, B),
    ):
        with pytest.raises(OrgMismatchError):
            call()
    # B's references from A's session name nothing of B
    with pytest.raises(NotFoundError):
        update_contact(app, A, f"stan@{DOMAIN[B]}", {"job_title": "pwned"})
    with pytest.raises(NotFoundError):
        request_materialization(app, A, [f"jane@{DOMAIN[B]}"])
    record_b = su.execute(
        "SELECT id FROM crm.contact_record WHERE org_id = %s AND origin = 'crm'", (B,)
    ).fetchone()
    assert record_b is not None
    with pytest.raises(NotFoundError):
        _rows(app, "SELECT crm.store_enrichment(%s, %s, 'apollo', '{}')", (A, record_b[0]))
    assert snapshot(su) == before


@pytest.mark.parametrize("binding", [None, ""])
def test_an_unbound_app_session_is_refused_by_every_api_function(
    db_dsn: str, su: Conn, binding: str | None
) -> None:
    before = snapshot(su)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE crm_app")
        if binding is not None:
            conn.execute("SELECT set_config('crm.org_id', %s, false)", (binding,))
        for name, (sql, args) in API_CALLS.items():
            if name in ("resolve_contact_refs", "writeback_count"):
                # they run as the caller: row-level security shows an unbound session nothing
                assert _rows(conn, sql, args(A)) in ([(None,), (None,)], [(0,)]), name
                continue
            with pytest.raises(OrgMismatchError):
                _rows(conn, sql, args(A))
    assert snapshot(su) == before


def test_what_the_app_reads_is_its_org_only(app: Conn, su: Conn) -> None:
    """Its org's rows of the tables of the matrix; not the raw webhook deliveries nor the workers' budgets
    (before: crm_app read both, for its org)."""
    for hidden in ("crm.webhook_inbox", "crm.rate_limit"):
        assert denied(refused(app, f"SELECT org_id FROM {hidden}")), hidden
    for name, _, has_org in relations(su):
        readable = app.execute("SELECT has_table_privilege(%s, 'SELECT')", (name,)).fetchone()
        if readable != (True,):
            assert denied(refused(app, f"SELECT 1 FROM {name}")), name
        elif has_org:
            orgs = {r[0] for r in app.execute(f"SELECT DISTINCT org_id FROM {name}")}
            assert orgs <= {A}, name
            assert orgs or name == "crm.company_record", f"{name}: A sees none of its rows"
