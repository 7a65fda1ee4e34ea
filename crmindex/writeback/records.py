"""Deals and companies changed locally now and queued for the CRM: typed wrappers of ``crm.update_deal``,
``crm.update_company`` and ``crm.create_company`` (``sql/writeback/records.sql``), which psql users call the same
way. The drainer (``crmindex.writeback.drainer``) sends the writes; a write that dead-letters sends the record
back to the CRM's values (``crm.writeback_after_dead``: a refetch) and is logged.

``update_deal(conn, org, "#12", {"stage": "Negotiation"})`` takes a stage *label* (or id), resolved in the
deal's pipeline (``crm.resolve_deal_stage``: a clear error when unknown or ambiguous).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from psycopg.types.json import Jsonb

from crmindex.crm.protocols import Source
from crmindex.errors import InvalidInputError
from crmindex.platform.bounds import PAYLOAD_CAP, check_json
from crmindex.platform.db import Conn, text_problem, translate_errors
from crmindex.writeback.enqueue import QueuedWrite, TriggeredBy, queued_write


def _ref(ref: str | int) -> str:
    text = f"#{ref}" if isinstance(ref, int) and not isinstance(ref, bool) else str(ref)
    problem = text_problem(text)
    if problem is not None:
        raise InvalidInputError(f"a record reference {problem}")
    return text


def _fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        for text in (str(key), value if isinstance(value, str) else ""):
            problem = text_problem(text)
            if problem is not None:
                raise InvalidInputError(f"field {str(key)[:100]!r} {problem}")
        if isinstance(value, bool) or (value is not None and not isinstance(value, str | int | float)):
            raise InvalidInputError(f"field {str(key)[:100]!r} must be a string or a number")
        out[str(key)] = value
    check_json("fields", out, PAYLOAD_CAP)
    return out


def _priority(priority: int) -> int:
    if isinstance(priority, bool) or not 1 <= priority <= 10:
        raise InvalidInputError("priority is 1 (highest) to 10")
    return priority


def _run(conn: Conn, org_id: uuid.UUID | str, sql: str, params: tuple[Any, ...]) -> QueuedWrite:
    with conn.transaction(), translate_errors():
        row = conn.execute(sql, params).fetchone()
    return queued_write(org_id, row)


def update_deal(
    conn: Conn,
    org_id: uuid.UUID | str,
    ref: str | int,
    fields: Mapping[str, Any],
    *,
    triggered_by: TriggeredBy = "copilot",
    user_id: uuid.UUID | None = None,
    priority: int = 5,
) -> QueuedWrite:
    """Change a deal (name, stage label or id, amount, close_date) now and queue the CRM write."""
    return _run(
        conn,
        org_id,
        "SELECT job_id, crm_source, crm_record_id, payload FROM crm.update_deal(%s, %s, %s, %s, %s, %s::smallint)",
        (str(org_id), _ref(ref), Jsonb(_fields(fields)), triggered_by, user_id, _priority(priority)),
    )


def update_company(
    conn: Conn,
    org_id: uuid.UUID | str,
    ref: str | int,
    fields: Mapping[str, Any],
    *,
    triggered_by: TriggeredBy = "copilot",
    user_id: uuid.UUID | None = None,
    priority: int = 5,
) -> QueuedWrite:
    """Change a company (name, domain) now and queue the CRM write; ``ref`` may be its domain."""
    return _run(
        conn,
        org_id,
        "SELECT job_id, crm_source, crm_record_id, payload "
        "FROM crm.update_company(%s, %s, %s, %s, %s, %s::smallint)",
        (str(org_id), _ref(ref), Jsonb(_fields(fields)), triggered_by, user_id, _priority(priority)),
    )


def create_company(
    conn: Conn,
    org_id: uuid.UUID | str,
    source: Source,
    fields: Mapping[str, Any],
    *,
    triggered_by: TriggeredBy = "copilot",
    user_id: uuid.UUID | None = None,
    priority: int = 5,
) -> QueuedWrite:
    """Queue an idempotent CRM create of a company, matched by its domain (the same create twice: one company)."""
    problem = text_problem(str(source))
    if problem is not None:
        raise InvalidInputError(f"unknown CRM source: the name {problem}")
    return _run(
        conn,
        org_id,
        "SELECT job_id, crm_source, crm_record_id, payload "
        "FROM crm.create_company(%s, %s, %s, %s, %s, %s::smallint)",
        (str(org_id), source, Jsonb(_fields(fields)), triggered_by, user_id, _priority(priority)),
    )


RecordType = Literal["contact", "company", "deal"]


def associate(
    conn: Conn,
    org_id: uuid.UUID | str,
    from_type: RecordType,
    from_ref: str | int,
    to_type: RecordType,
    to_ref: str | int,
    *,
    remove: bool = False,
    triggered_by: TriggeredBy = "copilot",
    user_id: uuid.UUID | None = None,
    priority: int = 5,
) -> QueuedWrite:
    """Associate (``remove``: disassociate) a contact and a company, a contact and a deal, or a company and a
    deal, in either order: the index changes now, the CRM write is queued (``crm.associate`` /
    ``crm.disassociate``)."""
    fn = "disassociate" if remove else "associate"
    for name, value in (("from_type", from_type), ("to_type", to_type)):
        problem = text_problem(str(value))
        if problem is not None:
            raise InvalidInputError(f"{name} {problem}")
    return _run(
        conn,
        org_id,
        f"SELECT job_id, crm_source, crm_record_id, payload FROM crm.{fn}(%s, %s, %s, %s, %s, %s, %s, %s::smallint)",
        (
            str(org_id),
            from_type,
            _ref(from_ref),
            to_type,
            _ref(to_ref),
            triggered_by,
            user_id,
            _priority(priority),
        ),
    )


def create_deal(
    conn: Conn,
    org_id: uuid.UUID | str,
    source: Source,
    fields: Mapping[str, Any],
    *,
    triggered_by: TriggeredBy = "copilot",
    user_id: uuid.UUID | None = None,
    priority: int = 5,
) -> QueuedWrite:
    """Queue an idempotent CRM create of a deal (name required; stage and pipeline by label or id), matched by
    its name in its pipeline: the same create twice makes one deal."""
    problem = text_problem(str(source))
    if problem is not None:
        raise InvalidInputError(f"unknown CRM source: the name {problem}")
    return _run(
        conn,
        org_id,
        "SELECT job_id, crm_source, crm_record_id, payload FROM crm.create_deal(%s, %s, %s, %s, %s, %s::smallint)",
        (str(org_id), source, Jsonb(_fields(fields)), triggered_by, user_id, _priority(priority)),
    )
