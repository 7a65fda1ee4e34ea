"""CRM lists (Attio lists: pipelines of companies, people or deals) and their entries in the index: typed calls on
the SQL functions of ``sql/crm/lists.sql`` (tables ``crm.crm_list``, ``crm.list_entry``, migration 0018).

Rows are plain mappings in the shapes those functions document (``crmindex.crm.attio.mapping.list_to_row`` and
``entry_to_row`` make them). Every state change is one SQL function; bad input raises
:class:`~crmindex.errors.InvalidRowError` (CX001) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crmindex.platform.db import Conn, json_param, translate_errors


def _one(conn: Conn, sql: str, params: Sequence[Any]) -> int:
    with translate_errors():
        row = conn.execute(sql, params).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def sync_lists(
    conn: Conn, org_id: str, source: str, rows: Sequence[Mapping[str, Any]], *, complete: bool
) -> int:
    """Upsert the account's lists; ``complete``: these are all of them (the others are archived)."""
    return _one(
        conn,
        "SELECT crm.lists_sync(%s, %s, %s::jsonb, %s)",
        (org_id, source, json_param(list(rows)), complete),
    )


def upsert_entries(conn: Conn, org_id: str, source: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Write entries as read (monotonic by their ``crm_updated_at``, the time of the read)."""
    if not rows:
        return 0
    return _one(
        conn, "SELECT crm.list_entries_upsert(%s, %s, %s::jsonb)", (org_id, source, json_param(list(rows)))
    )


def delete_entries(
    conn: Conn, org_id: str, source: str, keys: Sequence[tuple[str, str]], occurred_at: str
) -> int:
    """Soft-delete entries ``(list id, entry id)`` the CRM no longer has (unless read since ``occurred_at``)."""
    if not keys:
        return 0
    rows = [{"list_id": lst, "entry_id": e, "occurred_at": occurred_at} for lst, e in keys]
    return _one(conn, "SELECT crm.list_entries_delete(%s, %s, %s::jsonb)", (org_id, source, json_param(rows)))


def sweep_entries(
    conn: Conn, org_id: str, source: str, list_id: str, seen: Sequence[str], before: datetime
) -> int:
    """After a whole list was read (from ``before`` on): its entries not seen are gone."""
    return _one(
        conn,
        "SELECT crm.list_entries_sweep(%s, %s, %s, %s, %s)",
        (org_id, source, list_id, list(seen), before),
    )


def relabel_entries(conn: Conn, org_id: str, source: str, list_id: str | None = None) -> int:
    """Entries' stage labels from the list's stages in ``crm.crm_pipeline_stage`` (after a rename)."""
    return _one(conn, "SELECT crm.list_entries_relabel(%s, %s, %s)", (org_id, source, list_id))
