"""Write-back, the local side: change a contact now, queue the CRM write in the same transaction.

Typed wrappers over the SQL functions of ``sql/writeback/enqueue.sql``, which psql users call the same way:

* ``update_contact`` (``crm.update_contact``) updates the index row (and its tier-2 record when materialized)
  immediately, stamps the changed fields with the local change time (so an older CRM event cannot overwrite
  them), maps the fields to the CRM's names and values (an unmappable field is an error now, not a dead letter
  later) and queues the write in ``crm.writeback_queue``, where pending updates of one record coalesce;
* ``create_contact`` (``crm.create_contact``) queues an idempotent CRM create keyed by email.

Both are API functions of the application role ``crm_app`` (SECURITY DEFINER: they check the org and cap
their input). The drainer (``crmindex.writeback.drainer``) sends the queued writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from crmindex.crm.protocols import Source
from crmindex.errors import InvalidInputError
from crmindex.platform.bounds import PAYLOAD_CAP, check_fields, check_json
from crmindex.platform.db import Conn, text_problem, translate_errors

TriggeredBy = Literal["copilot", "enrichment", "automation", "user", "system"]


class QueuedWrite(BaseModel):
    job_id: int
    org_id: uuid.UUID
    crm_source: str
    crm_record_id: str | None
    payload: dict[str, Any]


def _fields(fields: Mapping[str, object]) -> dict[str, str | None]:
    """The fields as the SQL takes them (text or null), checked for what PostgreSQL cannot be handed."""
    out: dict[str, str | None] = {}
    for key, value in fields.items():
        text = None if value is None else str(value)
        problem = text_problem(str(key)) or (None if text is None else text_problem(text))
        if problem is not None:
            raise InvalidInputError(f"field {str(key)[:100]!r} {problem}")
        out[str(key)] = text
    check_fields(out)
    check_json("fields", out, PAYLOAD_CAP)
    return out


def queued_write(org_id: uuid.UUID | str, row: tuple[Any, ...] | None) -> QueuedWrite:
    """The QueuedWrite of one row ``(job_id, crm_source, crm_record_id, payload)`` of a queueing SQL function."""
    assert row is not None
    return QueuedWrite(
        job_id=int(row[0]),
        org_id=uuid.UUID(str(org_id)),
        crm_source=str(row[1]),
        crm_record_id=None if row[2] is None else str(row[2]),
        payload=dict(row[3]),
    )


def update_contact(
    conn: Conn,
    org_id: uuid.UUID | str,
    ref: str | int,
    fields: Mapping[str, object],
    *,
    triggered_by: TriggeredBy = "copilot",
    user_id: uuid.UUID | None = None,
    priority: int = 5,
) -> QueuedWrite:
    """Change a contact locally and queue the CRM write (one transaction). Raises on bad input, changing nothing.

    ``ref``: an index id (``#123`` or an int), a CRM record id or an email."""
    if isinstance(priority, bool) or not 1 <= priority <= 10:
        raise InvalidInputError("priority is 1 (highest) to 10")
    ref_text = f"#{ref}" if isinstance(ref, int) and not isinstance(ref, bool) else str(ref)
    problem = text_problem(ref_text)
    if problem is not None:
        raise InvalidInputError(f"a contact reference {problem}")
    values = _fields(fields)
    with conn.transaction(), translate_errors():
        row = conn.execute(
            "SELECT job_id, crm_source, crm_record_id, payload "
            "FROM crm.update_contact(%s, %s, %s, %s, %s, %s::smallint)",
            (str(org_id), ref_text, Jsonb(values), triggered_by, user_id, priority),
        ).fetchone()
    return queued_write(org_id, row)


def create_contact(
    conn: Conn,
    org_id: uuid.UUID | str,
    source: Source,
    fields: Mapping[str, object],
    *,
    triggered_by: TriggeredBy = "copilot",
    user_id: uuid.UUID | None = None,
) -> QueuedWrite:
    """Queue an idempotent CRM create (upsert by email): a retry after a crash never duplicates."""
    problem = text_problem(str(source))
    if problem is not None:
        raise InvalidInputError(f"unknown CRM source: the name {problem}")
    values = _fields(fields)
    with conn.transaction(), translate_errors():
        row = conn.execute(
            "SELECT job_id, crm_source, crm_record_id, payload FROM crm.create_contact(%s, %s, %s, %s, %s)",
            (str(org_id), source, Jsonb(values), triggered_by, user_id),
        ).fetchone()
    return queued_write(org_id, row)
