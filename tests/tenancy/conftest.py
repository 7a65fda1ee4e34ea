"""The tenancy suite's database: one per test module, cloned from the migrated template and seeded with orgs A
and B in every table (B's identity ids from ``ID_BASE_B`` on); ``su`` is its owner, ``app`` A's application
session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import PgServer
from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B
from tests.orgs import app_session
from tests.tenancy.helpers import ID_BASE_B, Conn, Facts, identity_tables, read_facts, seed_org


@pytest.fixture(scope="module")
def tenancy_dsn(pg_server: PgServer, template_db: str) -> Iterator[str]:
    """A database of its own for this module: orgs A and B, with data in every table."""
    name = f"tenancy_{uuid.uuid4().hex[:12]}"
    with pg_server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_db}")
    dsn = pg_server.dsn(name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            seed_org(conn, A)
            for table in identity_tables(conn):
                conn.execute(f"ALTER TABLE {table} ALTER COLUMN id RESTART WITH {ID_BASE_B}")
            seed_org(conn, B)
        yield dsn
    finally:
        with pg_server.admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def su(tenancy_dsn: str) -> Iterator[Conn]:
    """Superuser connection (sees every org)."""
    with psycopg.connect(tenancy_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def facts(su: Conn) -> Facts:
    return read_facts(su)


@pytest.fixture
def app(tenancy_dsn: str) -> Iterator[Conn]:
    """An autocommit session as crm_app bound to org A (crmindex.platform.db.bind_org)."""
    with app_session(tenancy_dsn, A) as conn:
        yield conn
