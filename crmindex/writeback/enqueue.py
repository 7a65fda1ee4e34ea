"""Write-back, the local side: change a contact now, queue the CRM write in the same transaction.

``update_contact`` updates the index row (and its tier-2 record when materialized) immediately, marks the
changed fields with the local change time (so an older CRM event cannot overwrite them), and queues the
write in ``crm.writeback_queue``, where pending updates of one record coalesce. Field names and values are
mapped to the CRM's at enqueue time: an unmappable field is an error now, not a dead letter later.
The drainer (``crmindex.drainer``) sends the queued writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from crmindex.crm.attio.fields import people_values
from crmindex.crm.hubspot.properties import column_to_property
from crmindex.errors import InvalidInputError
from crmindex.index.refs import resolve_contact
from crmindex.platform.db import Conn, translate_errors

TriggeredBy = Literal["copilot", "enrichment", "automation", "user", "system"]
CONTACT_WRITABLE = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "job_title",
    "lifecycle_stage",
    "lead_status",
)
RECORD_COLUMNS = CONTACT_WRITABLE  # the typed columns tier 2 shares with the index


class QueuedWrite(BaseModel):
    job_id: int
    org_id: uuid.UUID
    crm_source: str
    crm_record_id: str | None
    payload: dict[str, Any]


def _crm_payload(
    conn: Conn, source: str, org_id: str, fields: Mapping[str, object], current: Mapping[str, object]
) -> dict[str, Any]:
    if source == "hubspot":
        out: dict[str, Any] = {}
        for column, value in fields.items():
            prop, text = column_to_property("contacts", column, value)
            out[prop] = text
        return out
    row = conn.execute(
        "SELECT settings -> 'attio_attributes' FROM crm.connection WHERE org_id = %s AND crm_source = 'attio'",
        (org_id,),
    ).fetchone()
    custom = row[0] if row and isinstance(row[0], dict) else {}
    return people_values(fields, current, {str(k): str(v) for k, v in custom.items()})


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
    """Change a contact locally and queue the CRM write (one transaction). Raises on bad input, changing nothing."""
    if not fields:
        raise InvalidInputError("no fields to update")
    unknown = sorted(set(fields) - set(CONTACT_WRITABLE))
    if unknown:
        raise InvalidInputError(
            f"cannot update {', '.join(unknown)}: writable fields are {', '.join(CONTACT_WRITABLE)}"
        )
    if not 1 <= priority <= 10:
        raise InvalidInputError("priority is 1 (highest) to 10")
    values = {k: (None if v is None else str(v).strip() or None) for k, v in fields.items()}
    if values.get("email") is not None:
        values["email"] = str(values["email"]).lower()
    org = str(org_id)
    with conn.transaction(), translate_errors():
        target = resolve_contact(conn, org, ref)
        if target.deleted:
            raise InvalidInputError(f"contact {target.crm_record_id} is deleted in the CRM")
        cur = conn.execute(
            sql.SQL("SELECT {} FROM crm.contact_index WHERE org_id = %s AND id = %s FOR UPDATE").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in CONTACT_WRITABLE)
            ),
            (org, target.id),
        )
        row = cur.fetchone()
        assert row is not None
        current = dict(zip(CONTACT_WRITABLE, row, strict=True))
        payload = _crm_payload(conn, target.crm_source, org, values, current)
        assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in values)
        conn.execute(
            sql.SQL(
                "UPDATE crm.contact_index SET {}, field_versions = coalesce(field_versions, '{{}}'::jsonb) || %s, "
                "updated_at = now() WHERE org_id = %s AND id = %s"
            ).format(assignments),
            (*values.values(), Jsonb({c: _now_iso(conn) for c in values}), org, target.id),
        )
        if target.is_materialized:
            conn.execute(
                sql.SQL(
                    "UPDATE crm.contact_record SET {}, updated_at = now() "
                    "WHERE org_id = %s AND crm_source = %s AND crm_record_id = %s"
                ).format(assignments),
                (*values.values(), org, target.crm_source, target.crm_record_id),
            )
        job = conn.execute(
            "SELECT crm.enqueue_writeback(%s, %s, 'contact', %s, 'update', %s, %s, %s, %s::smallint)",
            (org, target.crm_source, target.crm_record_id, Jsonb(payload), triggered_by, user_id, priority),
        ).fetchone()
    assert job is not None
    return QueuedWrite(
        job_id=int(job[0]),
        org_id=uuid.UUID(org),
        crm_source=target.crm_source,
        crm_record_id=target.crm_record_id,
        payload=payload,
    )


def _now_iso(conn: Conn) -> str:
    row = conn.execute("SELECT clock_timestamp()::text").fetchone()
    assert row is not None
    return str(row[0])


def create_contact(
    conn: Conn,
    org_id: uuid.UUID | str,
    source: Literal["hubspot", "attio"],
    fields: Mapping[str, object],
    *,
    triggered_by: TriggeredBy = "copilot",
    user_id: uuid.UUID | None = None,
) -> QueuedWrite:
    """Queue an idempotent CRM create (upsert by email): a retry after a crash never duplicates."""
    email = str(fields.get("email") or "").strip().lower()
    if "@" not in email:
        raise InvalidInputError("creating a CRM contact needs an email (the idempotency key)")
    unknown = sorted(set(fields) - set(CONTACT_WRITABLE))
    if unknown:
        raise InvalidInputError(f"cannot set {', '.join(unknown)} on a new contact")
    values = {k: v for k, v in fields.items() if v is not None}
    values["email"] = email
    with conn.transaction(), translate_errors():
        payload = _crm_payload(conn, source, str(org_id), values, {})
        job = conn.execute(
            "SELECT crm.enqueue_writeback(%s, %s, 'contact', NULL, 'create', %s, %s, %s, 5::smallint, %s)",
            (str(org_id), source, Jsonb(payload), triggered_by, user_id, email),
        ).fetchone()
    assert job is not None
    return QueuedWrite(
        job_id=int(job[0]),
        org_id=uuid.UUID(str(org_id)),
        crm_source=source,
        crm_record_id=None,
        payload=payload,
    )
