"""Resolving a user's reference to an indexed record: an index id, a CRM id, or an email."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from crmindex.db import Conn
from crmindex.errors import InvalidInputError, NotFoundError


@dataclass(frozen=True)
class IndexRef:
    org_id: uuid.UUID
    id: int
    crm_source: str
    crm_record_id: str
    email: str | None
    is_materialized: bool
    deleted: bool


def resolve_contact(
    conn: Conn, org_id: uuid.UUID | str, ref: str | int, *, source: str | None = None
) -> IndexRef:
    """Find one indexed contact by index id (digits prefixed ``#`` or an int), email, or CRM record id.

    A bare string of digits is tried as a CRM id first (HubSpot ids are numeric), then as an index id.
    """
    text = str(ref).strip()
    if not text or len(text) > 320:
        raise InvalidInputError("a contact reference is an index id, a CRM record id or an email")
    cols = "org_id, id, crm_source, crm_record_id, email, is_materialized, deleted_at IS NOT NULL"
    rows: list[tuple[object, ...]]
    if isinstance(ref, int) or text.startswith("#"):
        digits = text.lstrip("#")
        if not digits.isdigit():
            raise InvalidInputError(f"not an index id: {text[:40]!r}")
        rows = conn.execute(
            f"SELECT {cols} FROM crm.contact_index WHERE org_id = %s AND id = %s",
            (str(org_id), int(digits)),
        ).fetchall()
    elif "@" in text:
        rows = conn.execute(
            f"SELECT {cols} FROM crm.contact_index WHERE org_id = %s AND email = %s "
            "AND (%s::text IS NULL OR crm_source = %s) ORDER BY deleted_at IS NOT NULL, crm_updated_at DESC NULLS LAST",
            (str(org_id), text.lower(), source, source),
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT {cols} FROM crm.contact_index WHERE org_id = %s AND crm_record_id = %s "
            "AND (%s::text IS NULL OR crm_source = %s) ORDER BY crm_source",
            (str(org_id), text, source, source),
        ).fetchall()
        if not rows and text.isdigit():
            rows = conn.execute(
                f"SELECT {cols} FROM crm.contact_index WHERE org_id = %s AND id = %s",
                (str(org_id), int(text)),
            ).fetchall()
    if not rows:
        raise NotFoundError(f"no indexed contact matches {text[:80]!r} in this org")
    r = rows[0]
    return IndexRef(
        org_id=uuid.UUID(str(r[0])),
        id=int(str(r[1])),
        crm_source=str(r[2]),
        crm_record_id=str(r[3]),
        email=None if r[4] is None else str(r[4]),
        is_materialized=bool(r[5]),
        deleted=bool(r[6]),
    )
