"""Rebuilding the contact index's indexes after a large initial sync (issue 18 item 4: bytes per contact).

Why: an initial sync inserts one org's contacts in ascending id (and mostly ascending CRM record id) order. When
other orgs' rows already sit in the table, those entries land in the middle of the primary key (org_id, id), the
upserts' unique key (org_id, crm_source, crm_record_id) and crm.contact_index_senior_idx (org_id, seniority, id),
not at their right edge, and PostgreSQL splits a full middle page 50/50, so these btrees stay ~63% full; the GIN
indexes keep their pending-list pages. A rebuild packs them (btree leaves 90% full): ~40% less for those
indexes. Rows written later by webhooks and the reconciler are few and spread, so one rebuild after the initial
sync keeps its effect.

``REINDEX INDEX CONCURRENTLY`` does not block reads or writes (searches and syncs go on), but cannot run inside a
transaction or a function: it runs here, on an autocommit connection of the table's owner (the operator's
connection, the one ``crmindex migrate`` uses): ``crmindex maintain --reindex``. One index at a time, so the
extra disk needed is one index's size. An interrupted run leaves an invalid ``<index>_ccnew`` copy; the next run
drops it first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from psycopg import sql

from crmindex.errors import CrmIndexError
from crmindex.platform.db import Conn

TABLE = "crm.contact_index"


@dataclass(frozen=True)
class Rebuilt:
    """One index rebuilt: its size before and after, and how long it took."""

    index: str
    bytes_before: int
    bytes_after: int
    seconds: float


def contact_index_indexes(conn: Conn) -> list[tuple[str, int]]:
    """The valid indexes of crm.contact_index with their sizes in bytes, largest first."""
    rows = conn.execute(
        """
        SELECT c.relname, pg_relation_size(c.oid)
        FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
        WHERE i.indrelid = %s::regclass AND i.indisvalid
        ORDER BY pg_relation_size(c.oid) DESC, c.relname
        """,
        (TABLE,),
    ).fetchall()
    return [(str(name), int(size)) for name, size in rows]


def _drop_leftovers(conn: Conn) -> None:
    """Drop the invalid copies (``*_ccnew``, ``*_ccold``) an interrupted REINDEX CONCURRENTLY leaves behind."""
    rows = conn.execute(
        """
        SELECT c.relname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
        WHERE i.indrelid = %s::regclass AND NOT i.indisvalid AND c.relname ~ '_cc(new|old)[0-9]*$'
        """,
        (TABLE,),
    ).fetchall()
    for (name,) in rows:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS crm.{}").format(sql.Identifier(str(name))))


def reindex_contact_index(
    conn: Conn, *, on_index: Callable[[int, int, Rebuilt], None] | None = None
) -> list[Rebuilt]:
    """Rebuild every index of crm.contact_index with REINDEX INDEX CONCURRENTLY, one at a time.

    ``conn`` must be in autocommit mode (REINDEX CONCURRENTLY cannot run in a transaction) and belong to the table's
    owner. ``on_index(done, total, rebuilt)`` is called after each index (a progress display).
    """
    if not conn.autocommit:
        raise CrmIndexError(
            "reindex needs an autocommit connection (REINDEX CONCURRENTLY cannot run in a transaction)"
        )
    _drop_leftovers(conn)
    indexes = contact_index_indexes(conn)
    done: list[Rebuilt] = []
    for name, before in indexes:
        started = time.monotonic()
        conn.execute(sql.SQL("REINDEX INDEX CONCURRENTLY crm.{}").format(sql.Identifier(name)))
        after = conn.execute("SELECT pg_relation_size(%s::regclass)", (f"crm.{name}",)).fetchone()
        rebuilt = Rebuilt(name, before, int(after[0]) if after else 0, time.monotonic() - started)
        done.append(rebuilt)
        if on_index is not None:
            on_index(len(done), len(indexes), rebuilt)
    return done


# After an initial sync: rebuild when the org's contacts are at least this share of the table and this many (a small
# org's sync into a big table leaves the btrees nearly as they were; a rebuild would cost more than it packs).
REINDEX_MIN_SHARE = 0.25
REINDEX_MIN_CONTACTS = 50_000


@dataclass(frozen=True)
class AfterSync:
    """What the step after an initial sync did: ``rebuilt`` indexes, or why not (``skipped``)."""

    rebuilt: list[Rebuilt]
    skipped: str | None = None


def after_initial_sync(
    conn: Conn, contacts_added: int, *, on_index: Callable[[int, int, Rebuilt], None] | None = None
) -> AfterSync:
    """The storage step that ends an initial sync which added ``contacts_added`` contacts.

    Rebuilds crm.contact_index's indexes (``reindex_contact_index``) when the sync added at least
    ``REINDEX_MIN_CONTACTS`` contacts and ``REINDEX_MIN_SHARE`` of the table, and the connection's role owns the
    table (else it says so: the operator then runs ``crmindex maintain --reindex``).
    """
    row = conn.execute(
        "SELECT greatest(c.reltuples, 0)::bigint, pg_has_role(c.relowner, 'USAGE') FROM pg_class AS c "
        "WHERE c.oid = %s::regclass",
        (TABLE,),
    ).fetchone()
    assert row is not None
    table_rows, owner = int(row[0]), bool(row[1])
    if contacts_added < REINDEX_MIN_CONTACTS or contacts_added < REINDEX_MIN_SHARE * max(table_rows, 1):
        return AfterSync(
            [], f"{contacts_added:,} contacts added of {table_rows:,}: below the rebuild threshold"
        )
    if not owner:
        return AfterSync(
            [], "not the owner of crm.contact_index: run `crmindex maintain --reindex` as the owner"
        )
    return AfterSync(reindex_contact_index(conn, on_index=on_index))
