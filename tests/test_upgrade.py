"""Upgrade safety: a database holding data of the previous release migrates to head keeping every row,
ends up with exactly the schema of a fresh install, works, and survives four migrators started at once.

The released migrations are listed with their checksums in ``sql/releases.json``; they never change.
The populated release database is built once per module (migrated to the release's last migration, then
filled through the SQL API that release shipped) and cloned for each test.
"""

from __future__ import annotations

import collections
import difflib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from crmindex.cli import main
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.index import search as s
from crmindex.index.writes import ContactRow, upsert_contacts
from crmindex.platform.migrate import (
    _LOCK_KEY,
    MIGRATIONS_DIR,
    Release,
    load_migrations,
    load_releases,
    migrate,
    released_migration_problems,
)
from crmindex.platform.queue import Queue, Worker
from crmindex.status import org_status
from crmindex.writeback.enqueue import update_contact
from tests.conftest import PgServer
from tests.test_schema import GLOBAL_TABLES
from tests.test_search import COMPANIES, DEALS, ORG_A, ORG_B, _contact_rows
from tests.test_webhook_process import ev

Conn = psycopg.Connection[tuple[Any, ...]]
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # the crm_updated_at of tests.test_search's rows
HEAD = load_migrations()[-1].version
# the newest release older than the code: what a deployment upgrades from
PREVIOUS = [r for r in load_releases() if r.last_migration < HEAD][-1]
# Global tables that hold reference data the migrations seed: after an upgrade they must equal a fresh
# install's (a later migration may fix them); the other tables hold the deployment's own data.
REFERENCE_TABLES = GLOBAL_TABLES - {"crm.schema_migration", "crm.schema_area", "crm.maintenance_setting"}
# Columns a later migration rewrites on purpose (a data fix), per table: excluded from "kept unchanged".
REWRITTEN_BY_UPGRADE: dict[str, set[str]] = {}
# Columns a later migration drops on purpose, per table, with where their content went. 0014 (issue 13): secrets
# are no longer named by environment variable (a tenant that could set a reference made workers send any variable
# of their environment anywhere); the names are kept in crm.connection.status_reason (needs_reconnect).
DROPPED_BY_UPGRADE: dict[str, set[str]] = {
    "crm.connection": {"token_ref", "webhook_secret_ref"},
    # 0019 (issue 17): keywords are whole words with weights; the prefix/substring kinds fired on Finch, Cardboard...
    "crm.industry_keyword": {"match_kind"},
    # 0021 (issue 18, storage): when the index row was first written; read by nothing, 8 bytes per contact.
    # 0021 (issue 18, storage): email_domain was a stored function of the email; now crm.email_domain(email).
    "crm.contact_index": {"created_at", "email_domain"},
}


# --------------------------------------------------------------------------------------------------------
# 1. released migrations never change


def test_released_migrations_are_unchanged() -> None:
    releases = load_releases()
    assert releases and releases[0].version == "0.1.0" and releases[0].last_migration == 11
    assert [r.last_migration for r in releases] == sorted({r.last_migration for r in releases})
    assert released_migration_problems() == []
    for earlier, later in itertools.pairwise(releases):  # a later release ships the same files
        assert earlier.migrations.items() <= later.migrations.items()


def test_an_edited_missing_or_extra_released_file_is_reported(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    edited = directory / "0006_search.sql"
    edited.write_text(edited.read_text().replace("LIMIT", "LIMIT ", 1))
    assert released_migration_problems(directory) == [
        f"0006_search.sql (released in {PREVIOUS.version}) was edited after the release"
    ]
    renamed = Release(
        "9.9.9", 2, {"0001_schema.sql": PREVIOUS.migrations["0001_schema.sql"], "0002_x.sql": "0"}
    )
    problems = released_migration_problems(directory, [renamed])
    assert problems == [
        "0002_x.sql (released in 9.9.9) is missing",
        "0002_derive.sql is not one of the migrations 9.9.9 shipped",
    ]


def test_cli_migrate_stops_at_target_then_upgrades(
    empty_db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--dsn", empty_db_dsn, "--target", str(PREVIOUS.last_migration)]) == 0
    applied = re.findall(r"^applied (\d{4})_", capsys.readouterr().out, re.M)
    assert [int(v) for v in applied] == list(range(1, PREVIOUS.last_migration + 1))
    with psycopg.connect(empty_db_dsn) as conn:
        recorded = {
            f"{v:04d}_{n}.sql": c
            for v, n, c in conn.execute("SELECT version, name, checksum FROM crm.schema_migration")
        }
    assert recorded == dict(PREVIOUS.migrations)  # the database is exactly the release
    assert main(["migrate", "--dsn", empty_db_dsn]) == 0
    applied = re.findall(r"^applied (\d{4})_", capsys.readouterr().out, re.M)
    assert [int(v) for v in applied] == list(range(PREVIOUS.last_migration + 1, HEAD + 1))


# --------------------------------------------------------------------------------------------------------
# the populated release database


def populate(conn: Conn) -> None:
    """Fill every table through the release's SQL API (functions of 0001-0011, plain INSERTs where the
    release's Python did them), for two orgs."""
    x = conn.execute
    for n, org in enumerate((ORG_A, ORG_B)):
        x("INSERT INTO crm.org (org_id, name) VALUES (%s, %s)", (org, f"Org {n}"))
        x(
            "INSERT INTO crm.connection (org_id, crm_source, account_id, base_url, token_ref, webhook_secret_ref, "
            "settings) VALUES (%s, 'hubspot', %s, 'http://127.0.0.1:1', 'env:HUBSPOT_TOKEN', "
            "'env:HUBSPOT_CLIENT_SECRET', '{\"tier\": \"starter\"}'), "
            "(%s, 'attio', %s, NULL, 'env:ATTIO_TOKEN', NULL, '{}')",
            (org, str(77 + n), org, f"ws-{n}"),
        )
        x(
            "SELECT * FROM crm.upsert_companies(%s, 'hubspot', %s)",
            (org, json.dumps([{**c, "crm_updated_at": T0.isoformat()} for c in COMPANIES])),
        )
        x("SELECT * FROM crm.upsert_contacts(%s, 'hubspot', %s)", (org, json.dumps(_contact_rows())))
        x(
            "SELECT * FROM crm.upsert_deals(%s, 'hubspot', %s)",
            (org, json.dumps([{**d, "crm_updated_at": T0.isoformat()} for d in DEALS])),
        )
        x(
            "SELECT * FROM crm.upsert_contacts(%s, 'attio', %s)",
            (
                org,
                json.dumps(
                    [
                        {
                            "crm_record_id": "p-1",
                            "first_name": "Zoe",
                            "last_name": "Ng",
                            "email": "zoe@ng.io",
                            "crm_updated_at": T0.isoformat(),
                        }
                    ]
                ),
            ),
        )
    a = ORG_A
    day = timedelta(days=1)
    # deal associations: a removal (tombstone) and an addition, by version
    x(
        "SELECT crm.apply_deal_associations(%s, 'hubspot', %s)",
        (
            a,
            json.dumps(
                [
                    {
                        "deal_crm_id": "d2",
                        "contact_crm_id": "c3",
                        "removed": True,
                        "occurred_at": (T0 + day).isoformat(),
                    },
                    {"deal_crm_id": "d1", "contact_crm_id": "c5", "occurred_at": (T0 + day).isoformat()},
                ]
            ),
        ),
    )
    # a webhook field change (field_versions), a soft delete and a merge
    x(
        "SELECT * FROM crm.apply_field_changes(%s, 'hubspot', 'crm.contact_index', %s)",
        (
            a,
            json.dumps(
                [
                    {
                        "crm_record_id": "c2",
                        "column": "job_title",
                        "value": "VP Engineering",
                        "occurred_at": (T0 + day).isoformat(),
                    }
                ]
            ),
        ),
    )
    x(
        "SELECT * FROM crm.apply_deletions(%s, 'hubspot', 'crm.contact_index', %s)",
        (
            a,
            json.dumps(
                [
                    {"crm_record_id": "c10", "occurred_at": (T0 + day).isoformat()},
                    {"crm_record_id": "c7", "occurred_at": (T0 + day).isoformat(), "merged_into": "c3"},
                ]
            ),
        ),
    )
    # webhook inbox: one delivery completed, one dead-lettered, one still pending at upgrade time
    change = ev("contact.propertyChange", None, T0 + 2 * day, propertyName="jobtitle", propertyValue="CTO")
    for body in ("[]", "[]", json.dumps([{**change, "objectId": "c2"}])):
        x(
            "SELECT crm.webhook_accept(%s, 'hubspot', '77', %s, '{\"x-hubspot-signature-version\": \"v3\"}', 1)",
            (a, body),
        )
    inbox = x(
        "SELECT org_id, id, lease_token FROM crm.queue_claim('crm.webhook_inbox', 'w-010', 2)"
    ).fetchall()
    assert len(inbox) == 2
    x(
        "SELECT crm.queue_complete('crm.webhook_inbox', %s, %s, %s)",
        ([inbox[0][0]], [inbox[0][1]], [inbox[0][2]]),
    )
    x("SELECT crm.queue_fail(%s, 'crm.webhook_inbox', %s, %s, 'bad delivery', FALSE)", inbox[1])
    # write-back queue: an update, a create, an association
    for args in (
        ("contact", "c1", "update", {"lifecyclestage": "customer"}, None, None),
        ("contact", None, "create", {"email": "new@acme.com"}, "new@acme.com", None),
        ("deal", "d1", "associate", {"to": "c5"}, None, "assoc-d1-c5"),
    ):
        x(
            "SELECT crm.enqueue_writeback(%s, 'hubspot', %s, %s, %s, %s, 'copilot', NULL, 5::smallint, %s, %s)",
            (a, args[0], args[1], args[2], json.dumps(args[3]), args[4], args[5]),
        )
    # generic jobs, tier 2, sync state, limiter rows, the activation log, a changed setting
    x(
        "SELECT crm.enqueue_job(%s, 'hydrate', %s, 'hubspot', 'contacts:c42')",
        (a, json.dumps({"object_type": "contacts", "crm_record_id": "c42"})),
    )
    for rid, email in (("c1", "john.smith@stripe.com"), ("c3", "stan@acme.com")):
        record = x(
            "SELECT crm.materialize_contact_write(%s, 'hubspot', %s, %s, %s, %s)",
            (
                a,
                rid,
                json.dumps({"email": email, "job_title": "as fetched"}),
                json.dumps({"hs_object_id": rid, "email": email}),
                T0,
            ),
        ).fetchone()
        assert record is not None
        x(
            "INSERT INTO crm.activation_log (org_id, entity_type, crm_source, crm_record_id, record_id, reason, "
            "actor, outcome, detail) VALUES (%s, 'contact', 'hubspot', %s, %s, 'copilot', 'u1', 'materialized', "
            "'{}')",
            (a, rid, record[0]),
        )
    x(
        "SELECT crm.materialize_company_write(%s, 'hubspot', 'co-stripe', %s, '{}', %s)",
        (a, json.dumps({"name": "Stripe", "domain": "stripe.com"}), T0),
    )
    x("SELECT crm.sync_checkpoint(%s, 'hubspot', 'contacts', 'after-10', 10, TRUE, 10)", (a,))
    x("SELECT crm.sync_checkpoint(%s, 'attio', 'contacts', 'page-1', 1)", (a,))
    x("SELECT crm.rate_limit_reserve(%s, 'hubspot', 'general', 3)", (a,))
    x("SELECT crm.rate_limit_configure(%s, 'attio', 'write', 20, 1, 0.9)", (a,))
    x("SELECT crm.rate_limit_penalize(%s, 'hubspot', 'search', 1)", (a,))
    x("UPDATE crm.maintenance_setting SET deleted_retention = '45 days'")


def tables(conn: Conn) -> list[str]:
    rows = conn.execute(
        "SELECT c.oid::regclass::text FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'crm' AND c.relkind IN ('r', 'p') ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def columns(conn: Conn, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def row_hashes(conn: Conn, table: str, cols: list[str], where: str = "TRUE") -> list[str]:
    """md5 of each row's text over ``cols``, sorted (a multiset of rows)."""
    schema, name = table.split(".")
    query = sql.SQL("SELECT md5(ROW({})::text) FROM {} AS t WHERE {} ORDER BY 1").format(
        sql.SQL(", ").join(sql.Identifier("t", c) for c in cols),
        sql.Identifier(schema, name),
        sql.SQL(where),
    )
    return [str(r[0]) for r in conn.execute(query)]


@dataclass(frozen=True)
class ReleaseDb:
    name: str
    columns: dict[str, list[str]]  # table -> its columns at the release
    snapshot: dict[str, list[str]]  # table -> row hashes at the release (data tables)
    counts: dict[str, int]  # table -> rows at the release


def data_snapshot(conn: Conn, cols: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for table, names in cols.items():
        if table in REFERENCE_TABLES or table == "crm.schema_area":  # the migrator's record of area files
            continue
        skip = REWRITTEN_BY_UPGRADE.get(table, set()) | DROPPED_BY_UPGRADE.get(table, set())
        kept = [c for c in names if c not in skip]
        where = f"t.version <= {PREVIOUS.last_migration}" if table == "crm.schema_migration" else "TRUE"
        out[table] = row_hashes(conn, table, kept, where)
    return out


@pytest.fixture(scope="module")
def release_db(pg_server: PgServer) -> Iterator[ReleaseDb]:
    name = f"rel_{uuid.uuid4().hex[:12]}"
    with pg_server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        migrate(pg_server.dsn(name), target=PREVIOUS.last_migration)
        with psycopg.connect(pg_server.dsn(name), autocommit=True) as conn:
            populate(conn)
            cols = {t: columns(conn, t) for t in tables(conn)}
            counts = {t: len(row_hashes(conn, t, cols[t])) for t in cols}
            snap = data_snapshot(conn, cols)
        yield ReleaseDb(name, cols, snap, counts)
    finally:
        with pg_server.admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def upgraded_dsn(pg_server: PgServer, release_db: ReleaseDb) -> Iterator[str]:
    """A clone of the populated release database (not yet upgraded)."""
    name = f"u_{uuid.uuid4().hex[:12]}"
    with pg_server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {release_db.name}")
    yield pg_server.dsn(name)
    with pg_server.admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def assert_data_kept(conn: Conn, release: ReleaseDb) -> None:
    now = tables(conn)
    assert set(release.columns) <= set(now), "an upgrade dropped a table"
    for table, cols in release.columns.items():
        wanted = set(cols) - DROPPED_BY_UPGRADE.get(table, set())
        assert wanted <= set(columns(conn, table)), f"an upgrade dropped a column of {table}"
    assert data_snapshot(conn, release.columns) == release.snapshot
    versions = [int(r[0]) for r in conn.execute("SELECT version FROM crm.schema_migration ORDER BY 1")]
    assert versions == list(range(1, HEAD + 1))


def table_rows(conn: Conn, table: str) -> list[str]:
    return row_hashes(conn, table, columns(conn, table))


def test_the_release_database_has_rows_in_every_table(release_db: ReleaseDb) -> None:
    assert len(release_db.counts) >= 20
    # populate() forgot no table; crm.schema_area is the migrator's own, filled only at the head
    assert [t for t, n in release_db.counts.items() if n == 0] == ["crm.schema_area"]
    assert release_db.counts["crm.schema_migration"] == PREVIOUS.last_migration


# --------------------------------------------------------------------------------------------------------
# 2. upgrade from the previous release keeps every row, and the result works


def test_upgrade_from_the_previous_release_keeps_every_row_and_works(
    upgraded_dsn: str, db: Conn, release_db: ReleaseDb
) -> None:
    applied = migrate(upgraded_dsn)
    assert [m.version for m in applied] == list(range(PREVIOUS.last_migration + 1, HEAD + 1))
    with psycopg.connect(upgraded_dsn, autocommit=True) as conn:
        assert_data_kept(conn, release_db)
        # connections whose tokens were environment references must be connected again, and say so
        reasons = conn.execute("SELECT DISTINCT status, status_reason FROM crm.connection").fetchall()
        assert {r[0] for r in reasons} == {"needs_reconnect"}
        assert any(
            "token env:HUBSPOT_TOKEN" in str(r[1]) and "crmindex connect" in str(r[1]) for r in reasons
        )
        for table in sorted(REFERENCE_TABLES):  # seeded reference data = a fresh install's
            assert table_rows(conn, table) == table_rows(db, table), table

        # search finds the seeded people (org B's look-alikes never leak)
        assert sorted(h.crm_record_id for h in s.search_contacts(conn, ORG_A, "stripe.com").hits) == [
            "c1",
            "c8",
            "c9",
        ]
        hits = s.search_contacts(conn, ORG_A, "", {"seniority": "vp"}).hits
        assert {h.crm_record_id for h in hits} == {"c1", "c2", "c5"}  # c2 became a VP by webhook at 0.1.0
        org_a_ids = {
            r[0] for r in conn.execute("SELECT id FROM crm.contact_index WHERE org_id = %s", (ORG_A,))
        }
        assert {h.id for h in hits} <= org_a_ids  # org B's look-alikes never leak
        assert "c7" not in {
            h.crm_record_id for h in s.search_contacts(conn, ORG_A, "stan marsh").hits
        }  # merged

        # a newer version of a contact applies, an older one does not
        newer = ContactRow(
            crm_record_id="c5", job_title="Chief Marketing Officer", crm_updated_at=T0 + timedelta(3)
        )
        assert upsert_contacts(conn, ORG_A, "hubspot", [newer]).updated == 1
        older = ContactRow(crm_record_id="c5", job_title="Intern", crm_updated_at=T0)
        assert upsert_contacts(conn, ORG_A, "hubspot", [older]).unchanged == 1
        assert conn.execute(
            "SELECT job_title, seniority FROM crm.contact_index WHERE org_id = %s AND "
            "crm_source = 'hubspot' AND crm_record_id = 'c5'",
            (ORG_A,),
        ).fetchone() == ("Chief Marketing Officer", "c_suite")

        # a write-back: enqueue coalesces into the release's open job for c1, then a worker claims it
        queued = update_contact(conn, ORG_A, "john.smith@stripe.com", {"lead_status": "CONNECTED"})
        row = conn.execute(
            "SELECT payload FROM crm.writeback_queue WHERE org_id = %s AND id = %s", (ORG_A, queued.job_id)
        ).fetchone()
        assert row is not None and row[0] == {"lifecyclestage": "customer", "hs_lead_status": "CONNECTED"}
        writebacks = Queue("crm.writeback_queue")
        claimed = writebacks.claim(conn, "w-upgrade", 10, org_id=ORG_A)
        assert queued.job_id in {j.id for j in claimed}
        assert writebacks.complete(conn, claimed) == len(claimed) == 3

        # the inbox row left pending by the release is processed by today's worker
        assert Worker(upgraded_dsn, INBOX, process_inbox).run_once() == 1
        assert conn.execute(
            "SELECT job_title, seniority FROM crm.contact_index WHERE org_id = %s AND "
            "crm_source = 'hubspot' AND crm_record_id = 'c2'",
            (ORG_A,),
        ).fetchone() == ("CTO", "c_suite")

        # materialize one more contact, and the stats count the release's tier-2 rows too
        conn.execute(
            "SELECT crm.materialize_contact_write(%s, 'hubspot', 'c8', %s, '{}', %s)",
            (ORG_A, json.dumps({"email": "will@stripe.com"}), T0),
        )
        status = org_status(conn, ORG_A)
        assert (status.contacts_materialized, status.companies_materialized) == (3, 1)
        assert (status.contacts_indexed, status.contacts_deleted, status.deals_indexed) == (9, 2, 3)
        assert status.sync["hubspot:contacts"]["status"] == "completed"
        # a limiter configured at the release but never used yet (tat = -infinity) has no backlog
        limiters = {(lim.crm_source, lim.limit_class): lim for lim in status.limiters}
        assert limiters["attio", "write"].backlog_s == 0.0 and limiters["hubspot", "search"].penalties == 1


# --------------------------------------------------------------------------------------------------------
# 3. the upgraded schema is the schema of a fresh install

CATALOG = {
    "relations": """
        SELECT c.oid::regclass::text, c.relkind, c.reloptions::text, c.relrowsecurity, c.relforcerowsecurity,
               c.relacl::text, pg_get_userbyid(c.relowner)
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = 'crm'""",
    "columns": """
        SELECT a.attrelid::regclass::text, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl::text
        FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'crm' AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'crm'::regnamespace""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'crm'",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid), p.prosrc,
               p.provolatile, p.prosecdef, p.proconfig::text, p.proacl::text, p.proparallel, p.prokind
        FROM pg_proc AS p WHERE p.pronamespace = 'crm'::regnamespace""",
    "policies": "SELECT tablename, policyname, permissive, roles::text, cmd, qual, with_check FROM pg_policies "
    "WHERE schemaname = 'crm'",
    "triggers": "SELECT tgrelid::regclass::text, pg_get_triggerdef(oid), tgenabled FROM pg_trigger "
    "WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'crm'::regnamespace)",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'crm'",
    "schema": "SELECT nspname, nspacl::text, obj_description(oid, 'pg_namespace') FROM pg_namespace "
    "WHERE nspname = 'crm'",
    "extensions": "SELECT e.extname, e.extversion, n.nspname FROM pg_extension AS e "
    "JOIN pg_namespace AS n ON n.oid = e.extnamespace",
    "default_acl": "SELECT defaclrole::regrole::text, defaclnamespace::regnamespace::text, defaclobjtype, "
    "defaclacl::text FROM pg_default_acl",
}


def catalog(dsn: str) -> dict[str, list[str]]:
    with psycopg.connect(dsn) as conn:
        return {k: sorted(repr(tuple(r)) for r in conn.execute(q)) for k, q in CATALOG.items()}


def pg_dump_bin(major: int) -> Path | None:
    """pg_dump of the server's major version, where the test cluster's binaries are."""
    candidates = [
        Path(os.environ.get("CRMINDEX_PG_BINDIR", "/nonexistent")),
        Path(f"/usr/lib/postgresql/{major}/bin"),
    ]
    for bindir in candidates:
        if (bindir / "pg_dump").exists():
            out = subprocess.run(
                [str(bindir / "pg_dump"), "--version"], capture_output=True, text=True, check=True
            )
            if re.search(rf"\b{major}\.\d+", out.stdout):
                return bindir / "pg_dump"
    return None


def schema_dump(pg_dump: Path, dsn: str) -> list[str]:
    out = subprocess.run(
        [str(pg_dump), "--schema-only", "-d", dsn],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    # \restrict / \unrestrict carry a random key per dump (pg_dump 15.14+)
    return [line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))]


def test_upgraded_schema_equals_a_fresh_install(upgraded_dsn: str, db_dsn: str, pg_server: PgServer) -> None:
    migrate(upgraded_dsn)
    fresh, upgraded = catalog(db_dsn), catalog(upgraded_dsn)
    assert len(fresh["functions"]) > 50 and len(fresh["policies"]) > 20  # the description is not empty
    for key in CATALOG:
        assert upgraded[key] == fresh[key], "\n".join(
            difflib.unified_diff(fresh[key], upgraded[key], lineterm="", n=0)
        )
    pg_dump = pg_dump_bin(pg_server.major)
    if pg_dump is not None:  # the byte-level check, when the client binaries are here (they are in CI)
        a, b = schema_dump(pg_dump, db_dsn), schema_dump(pg_dump, upgraded_dsn)
        assert len(a) > 1000
        assert a == b, "\n".join(list(difflib.unified_diff(a, b, "fresh", "upgraded", lineterm=""))[:80])


# --------------------------------------------------------------------------------------------------------
# 4. four `crmindex migrate` processes upgrade the populated database at once


def test_four_concurrent_cli_migrators_upgrade_once(upgraded_dsn: str, release_db: ReleaseDb) -> None:
    cli = Path(sys.executable).with_name("crmindex")
    with psycopg.connect(upgraded_dsn, autocommit=True) as holder:
        # hold the migrator's lock so that all four are provably waiting on it together
        holder.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        procs = [
            subprocess.Popen(
                [str(cli), "migrate", "--dsn", upgraded_dsn],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        try:
            deadline = time.monotonic() + 90
            waiting = 0
            while time.monotonic() < deadline:
                row = holder.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ).fetchone()
                waiting = int(row[0]) if row else 0
                if waiting == 4 or any(p.poll() is not None for p in procs):
                    break
                time.sleep(0.05)
            assert waiting == 4, [p.poll() for p in procs]
            holder.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            results = [p.communicate(timeout=120) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()
        assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
        applied = collections.Counter(
            int(v) for out, _ in results for v in re.findall(r"^applied (\d{4})_", out, re.M)
        )
        pending = list(range(PREVIOUS.last_migration + 1, HEAD + 1))
        assert sorted(applied) == pending and set(applied.values()) == {1}  # each applied exactly once
        assert sum("nothing to apply" in out for out, _ in results) == 3
        assert_data_kept(holder, release_db)
