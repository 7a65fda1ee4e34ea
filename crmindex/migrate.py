"""Forward-only SQL migrations for schema ``crm``.

Files live in ``sql/migrations/NNNN_short_name.sql``. Each is applied once, in its own transaction, and
recorded in ``crm.schema_migration`` with a SHA-256 checksum. A run:

* takes a session advisory lock, so two migrators started at once apply each file exactly once;
* refuses to run when an already applied file was edited (checksum mismatch) or when the database holds
  a migration this code does not know (it is newer than the code);
* applies the pending files in order and reports them; a second run is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg

from crmindex.errors import MigrationError

SQL_DIR = Path(__file__).resolve().parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
RELEASES_FILE = SQL_DIR / "releases.json"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# pg_advisory_lock key: the first 8 bytes of sha256("crmindex.migrate") as a signed bigint
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"crmindex.migrate").digest()[:8], "big", signed=True)

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS crm;
CREATE TABLE IF NOT EXISTS crm.schema_migration (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    duration_ms: int


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a misnamed or duplicate-numbered file is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_short_name.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        found[version] = Migration(version, m.group(2), path, path.read_text())
    versions = sorted(found)
    if versions and versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migration versions must be 1..N without gaps, found {versions}")
    return [found[v] for v in versions]


@dataclass(frozen=True)
class Release:
    """A released version: its last migration and the checksum of every migration file it shipped."""

    version: str
    last_migration: int
    migrations: Mapping[str, str]  # file name -> sha256 of its text (as crm.schema_migration records it)


def load_releases(path: Path = RELEASES_FILE) -> list[Release]:
    """The release manifest (``sql/releases.json``), oldest release first."""
    doc = json.loads(path.read_text())
    releases = [
        Release(
            str(r["version"]), int(r["last_migration"]), {str(k): str(v) for k, v in r["migrations"].items()}
        )
        for r in doc["releases"]
    ]
    return sorted(releases, key=lambda r: r.last_migration)


def released_migration_problems(
    directory: Path = MIGRATIONS_DIR, releases: Sequence[Release] | None = None
) -> list[str]:
    """What breaks the rule "a released migration never changes": files missing, edited or added inside a
    released range. Empty when every released file is as shipped."""
    files = {m.filename: m for m in load_migrations(directory)}
    problems: list[str] = []
    for release in load_releases() if releases is None else releases:
        for filename, checksum in sorted(release.migrations.items()):
            mig = files.get(filename)
            if mig is None:
                problems.append(f"{filename} (released in {release.version}) is missing")
            elif mig.checksum != checksum:
                problems.append(f"{filename} (released in {release.version}) was edited after the release")
        for mig in files.values():
            if mig.version <= release.last_migration and mig.filename not in release.migrations:
                problems.append(f"{mig.filename} is not one of the migrations {release.version} shipped")
    return problems


def migrate(
    conninfo: str | psycopg.Connection[Any],
    *,
    directory: Path = MIGRATIONS_DIR,
    target: int | None = None,
    on_apply: Callable[[AppliedMigration], None] | None = None,
) -> list[AppliedMigration]:
    """Apply pending migrations (up to ``target`` when given); returns what was applied."""
    known = load_migrations(directory)
    wanted = [m for m in known if target is None or m.version <= target]
    if isinstance(conninfo, psycopg.Connection):
        return _migrate(conninfo, known, wanted, on_apply)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return _migrate(conn, known, wanted, on_apply)


def _migrate(
    conn: psycopg.Connection[Any],
    known_list: list[Migration],
    migrations: list[Migration],
    on_apply: Callable[[AppliedMigration], None] | None,
) -> list[AppliedMigration]:
    if not conn.autocommit:
        raise MigrationError("migrate() needs an autocommit connection (each file gets its own transaction)")
    applied: list[AppliedMigration] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        with conn.transaction():
            conn.execute("SET LOCAL client_min_messages = warning")
            conn.execute(_BOOTSTRAP)
        rows = conn.execute(
            "SELECT version, name, checksum FROM crm.schema_migration ORDER BY version"
        ).fetchall()
        known = {m.version: m for m in known_list}
        done: set[int] = set()
        for version, name, checksum in cast(list[tuple[int, str, str]], rows):
            mig = known.get(version)
            if mig is None:
                raise MigrationError(
                    f"the database has migration {version:04d}_{name} that this code lacks (upgrade crmindex)"
                )
            if mig.checksum != checksum:
                raise MigrationError(
                    f"{mig.filename} was edited after it was applied (checksum mismatch); "
                    "add a new migration instead of changing an applied one"
                )
            done.add(version)
        for mig in migrations:
            if mig.version in done:
                continue
            started = time.monotonic()
            with conn.transaction():
                conn.execute("SET LOCAL search_path = crm, public, extensions")
                conn.execute("SET LOCAL client_min_messages = warning")
                try:
                    conn.execute(cast(LiteralString, mig.sql))  # type: ignore[redundant-cast]
                except psycopg.Error as exc:
                    raise MigrationError(f"{mig.filename} failed: {exc}") from exc
                ms = int((time.monotonic() - started) * 1000)
                conn.execute(
                    "INSERT INTO crm.schema_migration (version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s)",
                    (mig.version, mig.name, mig.checksum, ms),
                )
            item = AppliedMigration(mig.version, mig.name, ms)
            applied.append(item)
            if on_apply is not None:
                on_apply(item)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
