"""Test harness: a real PostgreSQL for every test.

* ``CRMINDEX_TEST_DSN`` (or ``DATABASE_URL``) may name an existing server (a superuser connection);
  otherwise the session starts its own throwaway cluster (``crmindex.platform.pgcluster.LocalCluster``: 15-17,
  pg_cron preloaded, run as the ``postgres`` OS user when we are root).
* The migrations are applied once to a template database; each test that asks for ``db`` gets a fresh
  database cloned from it (``CREATE DATABASE ... TEMPLATE``), dropped afterwards.
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

from crmindex.platform.migrate import MIGRATIONS_DIR, migrate
from crmindex.platform.pgcluster import LocalCluster
from crmindex.platform.secrets import new_key_spec

TEMPLATE = "crmindex_test_tmpl"

# Tokens are stored sealed with the worker's key ring (a throwaway one per test session, inherited by the
# subprocesses tests start), and sent only to the CRMs' hosts or allow-listed base URLs: the fakes listen on
# 127.0.0.1 at ephemeral ports. Tests of the defaults (no allow-list) pass their own (tests/test_trust_secrets.py).
os.environ.setdefault("CRMINDEX_SECRET_KEYS", "test-" + new_key_spec("k1"))
os.environ.setdefault("CRMINDEX_ALLOWED_BASE_URLS", "http://127.0.0.1:*")
CRON_DB = "crmindex_cron"


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
def db(db_dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit superuser connection to a fresh migrated database."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        yield conn
