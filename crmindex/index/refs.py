"""Resolving a user's reference to an indexed record: an index id, a CRM id, or an email."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.platform.db import Conn, text_problem, translate_errors


@dataclass(frozen=True)
class IndexRef:
    org_id: uuid.UUID
    id: int
    crm_source: str
    crm_record_id: str
    email: str | None
    is_materialized: bool
    deleted: bool


def _ref_text(ref: str | int) -> str:
    if isinstance(ref, bool):
        raise InvalidInputError("a contact reference is an index id, a CRM record id or an email")
    if isinstance(ref, int):
        return f"#{ref}"  # an int is an index id
    problem = text_problem(ref)
    if problem is not None:
        raise InvalidInputError(f"a contact reference {problem}")
    return ref


def resolve_contacts(
    conn: Conn, org_id: uuid.UUID | str, refs: Sequence[str | int], *, source: str | None = None
) -> list[IndexRef | None]:
    """Resolve many references in one query; None where nothing matches. Same rules as :func:`resolve_contact`.

    Index ids (``#123`` or an int), emails (lower-cased; a live record before a deleted one, then the most
    recently updated), CRM record ids (a bare string of digits falls back to an index id). Emails and CRM ids
    are limited to ``source`` when given. The rule is ``crm.resolve_contact_refs`` (``sql/index/refs.sql``),
    which the SQL API functions taking a reference use too.
    """
    if not refs:
        return []
    with translate_errors():
        rows = conn.execute(
            "SELECT id, crm_source, crm_record_id, email, is_materialized, deleted "
            "FROM crm.resolve_contact_refs(%s, %s::text[], %s) ORDER BY ord",
            (str(org_id), [_ref_text(r) for r in refs], source),
        ).fetchall()
    org = uuid.UUID(str(org_id))
    return [
        None
        if r[0] is None
        else IndexRef(
            org_id=org,
            id=int(str(r[0])),
            crm_source=str(r[1]),
            crm_record_id=str(r[2]),
            email=None if r[3] is None else str(r[3]),
            is_materialized=bool(r[4]),
            deleted=bool(r[5]),
        )
        for r in rows
    ]


def resolve_contact(
    conn: Conn, org_id: uuid.UUID | str, ref: str | int, *, source: str | None = None
) -> IndexRef:
    """Find one indexed contact by index id (digits prefixed ``#`` or an int), email, or CRM record id.

    A bare string of digits is tried as a CRM id first (HubSpot ids are numeric), then as an index id.
    """
    [found] = resolve_contacts(conn, org_id, [ref], source=source)
    if found is None:
        raise NotFoundError(f"no indexed contact matches {str(ref).strip()[:80]!r} in this org")
    return found
