"""Logging activities (notes, calls, meetings, emails, tasks) on CRM records: the typed wrapper of
``crm.log_activity`` (``sql/writeback/activities.sql``), which psql users call the same way.

The activity is queued in ``crm.writeback_queue`` (entity ``activity``, never coalesced) and sent by the drainer
(``crmindex.writeback.drainer``) through the CRM's writer; ``occurred_at_ms`` is the marker by which a retry
after an uncertain outcome finds the first attempt instead of logging the activity twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from crmindex.errors import InvalidInputError
from crmindex.platform.db import Conn, text_problem, translate_errors
from crmindex.writeback.enqueue import TriggeredBy

ActivityKind = Literal["note", "call", "meeting", "email", "task"]
TargetType = Literal["contact", "company", "deal"]


class QueuedActivity(BaseModel):
    job_id: int
    org_id: uuid.UUID
    crm_source: str
    crm_record_id: str
    occurred_at_ms: int
    payload: dict[str, Any]


def log_activity(
    conn: Conn,
    org_id: uuid.UUID | str,
    kind: ActivityKind,
    target_type: TargetType,
    ref: str | int,
    body: str,
    *,
    subject: str | None = None,
    occurred_at: datetime | None = None,
    triggered_by: TriggeredBy = "copilot",
    user_id: uuid.UUID | None = None,
    priority: int = 5,
) -> QueuedActivity:
    """Queue an activity on a contact / company / deal (``ref``: an index id ``#123`` or int, a CRM record id, a
    contact's email or a company's domain). Raises a typed error on bad input, changing nothing."""
    if isinstance(priority, bool) or not 1 <= priority <= 10:
        raise InvalidInputError("priority is 1 (highest) to 10")
    if occurred_at is not None and occurred_at.tzinfo is None:
        raise InvalidInputError("occurred_at needs a time zone")
    ref_text = f"#{ref}" if isinstance(ref, int) and not isinstance(ref, bool) else str(ref)
    for name, value in (("ref", ref_text), ("body", body), ("subject", subject or ""), ("kind", str(kind)),
                        ("target_type", str(target_type))):  # fmt: skip
        problem = text_problem(value)
        if problem is not None:
            raise InvalidInputError(f"{name} {problem}")
    with conn.transaction(), translate_errors():
        row = conn.execute(
            "SELECT job_id, crm_source, crm_record_id, occurred_at_ms, payload "
            "FROM crm.log_activity(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::smallint)",
            (
                str(org_id),
                kind,
                target_type,
                ref_text,
                body,
                subject,
                occurred_at,
                triggered_by,
                user_id,
                priority,
            ),
        ).fetchone()
    assert row is not None
    return QueuedActivity(
        job_id=int(row[0]),
        org_id=uuid.UUID(str(org_id)),
        crm_source=str(row[1]),
        crm_record_id=str(row[2]),
        occurred_at_ms=int(row[3]),
        payload=dict(row[4]),
    )
