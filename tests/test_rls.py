"""Row-level security: an application session bound to org A reads only org A's rows, and changes rows only
through the API functions (which refuse org B). The whole grant matrix: tests/test_grants.py; the attacks of
issue 13: tests/test_trust_app_role.py."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from crmindex.errors import OrgMismatchError
from crmindex.index.writes import (
    CompanyRow,
    ContactRow,
    DealRow,
    ensure_org,
    upsert_companies,
    upsert_contacts,
    upsert_deals,
)
from crmindex.writeback.enqueue import update_contact
from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B
from tests.orgs import app_session

Conn = psycopg.Connection[tuple[object, ...]]
TABLES = [
    "crm.org",
    "crm.connection",
    "crm.contact_index",
    "crm.company_index",
    "crm.deal_index",
    "crm.deal_contact",
]


@pytest.fixture
def two_orgs(db: Conn) -> Conn:
    for org in (A, B):
        ensure_org(db, org)
        db.execute(
            "INSERT INTO crm.connection (org_id, crm_source, account_id) VALUES (%s, 'hubspot', %s)",
            (org, str(org)[-2:]),
        )
        upsert_companies(db, org, "hubspot", [CompanyRow(crm_record_id="co1", name=f"Co {org}")])
        upsert_contacts(
            db, org, "hubspot", [ContactRow(crm_record_id="1", first_name=f"P{org}", email="x@y.com")]
        )
        upsert_deals(
            db, org, "hubspot", [DealRow(crm_record_id="d1", stage="qualifiedtobuy", contact_crm_ids=["1"])]
        )
    return db


@pytest.fixture
def app(db_dsn: str, two_orgs: Conn) -> Iterator[Conn]:
    """A session as the application role, bound to org A."""
    with app_session(db_dsn, A) as conn:
        yield conn


def _orgs(conn: Conn, table: str) -> set[str]:
    return {str(r[0]) for r in conn.execute(f"SELECT org_id FROM {table}")}


@pytest.mark.parametrize("table", TABLES)
def test_app_reads_only_its_org(app: Conn, table: str) -> None:
    assert _orgs(app, table) == {str(A)}


@pytest.mark.parametrize("table", TABLES)
def test_app_cannot_update_or_delete_any_org(app: Conn, two_orgs: Conn, table: str) -> None:
    for org in (A, B):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(f"UPDATE {table} SET org_id = org_id WHERE org_id = %s", (org,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(f"DELETE FROM {table} WHERE org_id = %s", (org,))
    for org in (A, B):
        row = two_orgs.execute(f"SELECT count(*) FROM {table} WHERE org_id = %s", (org,)).fetchone()
        assert row is not None and int(str(row[0])) >= 1


def test_app_cannot_insert_or_move_rows_into_other_org(app: Conn) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(
            "INSERT INTO crm.contact_index (org_id, crm_source, crm_record_id) VALUES (%s, 'hubspot', 'z')",
            (B,),
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("UPDATE crm.contact_index SET org_id = %s", (B,))


def test_app_cannot_write_any_org_through_worker_functions(app: Conn, two_orgs: Conn) -> None:
    """The index writers are the workers' (sync, webhooks): the application may not call them, for any org."""
    for org in (A, B):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            upsert_contacts(app, org, "hubspot", [ContactRow(crm_record_id="1", first_name="hijack")])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            upsert_deals(app, org, "hubspot", [DealRow(crm_record_id="d1", stage="closedwon")])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT crm.refresh_contact_deals(%s, 'hubspot', ARRAY['1'])", (org,))
    with pytest.raises(OrgMismatchError):
        update_contact(app, B, "1", {"first_name": "hijack"})
    names = two_orgs.execute("SELECT first_name FROM crm.contact_index ORDER BY org_id").fetchall()
    assert names == [(f"P{A}",), (f"P{B}",)]


def test_app_changes_its_own_org_through_the_api(app: Conn, two_orgs: Conn) -> None:
    queued = update_contact(app, A, "x@y.com", {"first_name": "Mine"})
    assert queued.crm_record_id == "1" and queued.payload == {"firstname": "Mine"}
    names = two_orgs.execute("SELECT org_id, first_name FROM crm.contact_index ORDER BY org_id").fetchall()
    assert names == [(A, "Mine"), (B, f"P{B}")]


def test_unbound_app_session_sees_nothing(db_dsn: str, two_orgs: Conn) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE crm_app")
        for table in TABLES:
            assert _orgs(conn, table) == set()


def test_worker_role_sees_every_org(db_dsn: str, two_orgs: Conn) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE crm_worker")
        for table in TABLES:
            assert _orgs(conn, table) == {str(A), str(B)}
