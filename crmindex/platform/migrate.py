"""The schema of ``crm``: forward-only migrations, then the current definitions of each area.

Two kinds of SQL file (see ``sql/README.md``):

* **migrations** (``sql/migrations/NNNN_short_name.sql``): tables, columns, indexes, triggers and data
  changes. Each is applied once, in its own transaction, and recorded in ``crm.schema_migration`` with a
  SHA-256 checksum; a released migration never changes.
* **area files** (``sql/<area>/<name>.sql``, in the order ``sql/areas.txt`` lists them): the current
  definition of every function, view, row-level security policy and grant, one file per concern, written
  to be re-applied (``CREATE OR REPLACE``). Once the database holds every migration, the area files are
  applied together, in one transaction, whenever any of them differs from what ``crm.schema_area``
  recorded, so a fresh install and an upgrade end with the same definitions.

A run takes a session advisory lock (two migrators started at once apply each file exactly once), refuses
to run when an applied migration was edited or when the database holds a migration this code lacks, and
reports what it applied; a second run is a no-op.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString, cast

import psycopg

from crmindex.errors import MigrationError


def _sql_dir() -> Path:
    # the repository's top-level sql/ folder, shipped in the wheel as the package crmindex.sql
    return Path(str(importlib.resources.files("crmindex.sql")))


SQL_DIR = _sql_dir()
MIGRATIONS_DIR = SQL_DIR / "migrations"
RELEASES_FILE = SQL_DIR / "releases.json"
AREAS_FILE = "areas.txt"
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
CREATE TABLE IF NOT EXISTS crm.schema_area (
    path text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
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


@dataclass(frozen=True)
class Area:
    """An area file: the current definitions of one concern (``index/search.sql``)."""

    path: str  # relative to the sql folder, as sql/areas.txt lists it
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class AppliedAreas:
    """The area files one run (re-)applied, in order."""

    paths: tuple[str, ...]
    duration_ms: int


def load_areas(sql_dir: Path) -> list[Area]:
    """The area files ``sql_dir/areas.txt`` lists, in order (none when the folder has no list).

    Every ``*.sql`` file under ``sql_dir`` outside ``migrations/`` must be listed exactly once: a file that
    is not listed would silently never apply."""
    listing = sql_dir / AREAS_FILE
    if not listing.exists():
        return []
    paths = [
        line.strip() for line in listing.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    if len(set(paths)) != len(paths):
        raise MigrationError(f"{AREAS_FILE} lists a file twice")
    present = {
        p.relative_to(sql_dir).as_posix()
        for p in sql_dir.rglob("*.sql")
        if p.relative_to(sql_dir).parts[0] != "migrations"
    }
    if missing := sorted(set(paths) - present):
        raise MigrationError(f"{AREAS_FILE} lists files that do not exist: {', '.join(missing)}")
    if unlisted := sorted(present - set(paths)):
        raise MigrationError(f"area files missing from {AREAS_FILE}: {', '.join(unlisted)}")
    return [Area(p, (sql_dir / p).read_text()) for p in paths]


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
    on_areas: Callable[[AppliedAreas], None] | None = None,
) -> list[AppliedMigration]:
    """Apply pending migrations (up to ``target`` when given), then the area files when the database holds
    every migration and any area file changed; returns the migrations applied.

    The area files are read from the folder above ``directory`` (``sql/``)."""
    known = load_migrations(directory)
    wanted = [m for m in known if target is None or m.version <= target]
    areas = load_areas(directory.parent) if wanted == known else []
    if isinstance(conninfo, psycopg.Connection):
        return _migrate(conninfo, known, wanted, areas, on_apply, on_areas)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return _migrate(conn, known, wanted, areas, on_apply, on_areas)


def _apply_areas(
    conn: psycopg.Connection[Any], areas: list[Area], on_areas: Callable[[AppliedAreas], None] | None
) -> None:
    recorded = dict(cast(list[tuple[str, str]], conn.execute("SELECT path, checksum FROM crm.schema_area")))
    if recorded == {a.path: a.checksum for a in areas}:
        return
    started = time.monotonic()
    with conn.transaction():
        conn.execute("SET LOCAL search_path = crm, public, extensions")
        conn.execute("SET LOCAL client_min_messages = warning")
        for area in areas:
            try:
                conn.execute(cast(LiteralString, area.sql))  # type: ignore[redundant-cast]
            except psycopg.Error as exc:
                raise MigrationError(f"{area.path} failed: {exc}") from exc
        conn.execute("DELETE FROM crm.schema_area")
        for area in areas:
            conn.execute(
                "INSERT INTO crm.schema_area (path, checksum) VALUES (%s, %s)", (area.path, area.checksum)
            )
    if on_areas is not None:
        on_areas(AppliedAreas(tuple(a.path for a in areas), int((time.monotonic() - started) * 1000)))


def _migrate(
    conn: psycopg.Connection[Any],
    known_list: list[Migration],
    migrations: list[Migration],
    areas: list[Area],
    on_apply: Callable[[AppliedMigration], None] | None,
    on_areas: Callable[[AppliedAreas], None] | None,
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
        if areas:
            _apply_areas(conn, areas, on_areas)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
