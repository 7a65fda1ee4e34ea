"""Test harness: a real PostgreSQL for every test.

* ``CRMINDEX_TEST_DSN`` (or ``DATABASE_URL``) may name an existing server (a superuser connection);
  otherwise the session starts its own throwaway cluster (``crmindex.platform.pgcluster.LocalCluster``: 15-17,
  pg_cron preloaded, run as the ``postgres`` OS user when we are root).
* The migrations are applied once to a template database; each test that asks for ``db`` gets a fresh
  database cloned from it (``CREATE DATABASE ... TEMPLATE``), dropped afterwards.
* Nothing starts before a test asks for it (the cluster is the session fixture ``pg_server``): a test whose
  fixtures do not reach ``pg_server`` (and that is not ``slow``) is marked ``pure`` at collection, and
  ``make test-fast`` (``pytest -m pure``) runs those alone in seconds, with no PostgreSQL installed.
* The orgs tests act for are ``tests/orgs.py``'s ``ORG_A`` / ``ORG_B``; ``org_a``, ``org_b``, ``both_orgs`` create
  them in the test's database, ``app_a`` is a session as the application role bound to A.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from crmindex.index.writes import ensure_org
from crmindex.platform.migrate import MIGRATIONS_DIR, migrate
from crmindex.platform.pgcluster import LocalCluster
from crmindex.platform.secrets import new_key_spec
from tests.orgs import NAMES, ORG_A, ORG_B, app_session

TEMPLATE = "crmindex_test_tmpl"

# Tokens are stored sealed with the worker's key ring (a throwaway one per test session, inherited by the
# subprocesses tests start), and sent only to the CRMs' hosts or allow-listed base URLs: the fakes listen on
# 127.0.0.1 at ephemeral ports. Tests of the defaults (no allow-list) pass their own (tests/test_trust_secrets.py).
os.environ.setdefault("CRMINDEX_SECRET_KEYS", "test-" + new_key_spec("k1"))
os.environ.setdefault("CRMINDEX_ALLOWED_BASE_URLS", "http://127.0.0.1:*")
CRON_DB = "crmindex_cron"
Conn = psycopg.Connection[tuple[object, ...]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pure: needs no PostgreSQL and is not slow (set by tests/conftest.py at collection; `make test-fast`)",
    )
    config.addinivalue_line(
        "markers",
        "postgres: needs PostgreSQL without asking for the pg_server fixture (e.g. starts a LocalCluster "
        "itself): never marked pure",
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``pure`` every test whose fixture closure does not reach ``pg_server`` (``db``, ``db_dsn``,
    ``template_db`` ... all do) and that is neither ``slow`` nor ``postgres``. Tests that start a cluster of their
    own (``LocalCluster()``) are all ``slow`` today; a new one must be ``slow`` or ``postgres``, else
    ``make test-fast`` (run with no PostgreSQL binaries) fails on it."""
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            continue
        if item.get_closest_marker("slow") or item.get_closest_marker("postgres"):
            continue
        item.add_marker(pytest.mark.pure)


@dataclass(frozen=True)
class PgServer:
    """How to reach the test server: ``dsn(dbname)`` gives a superuser conninfo for a database."""

    base_dsn: str
    major: int

    def dsn(self, dbname: str) -> str:
        return make_conninfo(self.base_dsn, dbname=dbname)

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.dsn("postgres"), autocommit=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    external = os.environ.get("CRMINDEX_TEST_DSN") or os.environ.get("DATABASE_URL")
    if external:
        with psycopg.connect(external, autocommit=True) as conn:
            major = conn.info.server_version // 10000
        yield PgServer(external, major)
        return
    cluster = LocalCluster(cron_database=CRON_DB)
    with cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {CRON_DB}")
        yield PgServer(cluster.dsn(), cluster.major)


@pytest.fixture(scope="session")
def template_db(pg_server: PgServer) -> str:
    with pg_server.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    # CRMINDEX_MIGRATIONS_DIR: develop against another migrations folder (never set in CI)
    migrate(
        pg_server.dsn(TEMPLATE), directory=Path(os.environ.get("CRMINDEX_MIGRATIONS_DIR", MIGRATIONS_DIR))
    )
    return TEMPLATE


def _new_db(pg_server: PgServer, template: str) -> str:
    name = f"t_{uuid.uuid4().hex[:16]}"
    with pg_server.admin() as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return name


@pytest.fixture
def db_dsn(pg_server: PgServer, template_db: str) -> Iterator[str]:
    """Conninfo (superuser) of a fresh, fully migrated database for this test."""
    name = _new_db(pg_server, template_db)
    yield pg_server.dsn(name)
    with pg_server.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def empty_db_dsn(pg_server: PgServer) -> Iterator[str]:
    """Conninfo of a fresh database with nothing applied (for migration tests)."""
    name = f"e_{uuid.uuid4().hex[:16]}"
    with pg_server.admin() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.dsn(name)
    with pg_server.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db(db_dsn: str) -> Iterator[Conn]:
    """An autocommit superuser connection to a fresh migrated database."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        yield conn


# ---------------------------------------------------------------------------- orgs (tests/orgs.py)


@pytest.fixture
def org_a(db: Conn) -> uuid.UUID:
    """``ORG_A``, created (as "Org A") in this test's database."""
    ensure_org(db, ORG_A, NAMES[ORG_A])
    return ORG_A


@pytest.fixture
def org_b(db: Conn) -> uuid.UUID:
    """``ORG_B``, created (as "Org B") in this test's database."""
    ensure_org(db, ORG_B, NAMES[ORG_B])
    return ORG_B


@pytest.fixture
def both_orgs(db: Conn, org_a: uuid.UUID, org_b: uuid.UUID) -> Conn:
    """``db`` with ``ORG_A`` and ``ORG_B`` created."""
    return db


@pytest.fixture
def app_a(db_dsn: str, org_a: uuid.UUID) -> Iterator[Conn]:
    """An autocommit session as the application role (crm_app) bound to ``ORG_A`` (which exists)."""
    with app_session(db_dsn, org_a) as conn:
        yield conn
