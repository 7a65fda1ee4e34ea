"""Resolving a user's reference to an indexed record: an index id, a CRM id, or an email."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.platform.db import Conn


@dataclass(frozen=True)
class IndexRef:
    org_id: uuid.UUID
    id: int
    crm_source: str
    crm_record_id: str
    email: str | None
    is_materialized: bool
    deleted: bool


_Kind = tuple[str, object]  # ("id", int) | ("email", str) | ("crm", str)


def _parse(ref: str | int) -> _Kind:
    text = str(ref).strip()
    if not text or len(text) > 320:
        raise InvalidInputError("a contact reference is an index id, a CRM record id or an email")
    if isinstance(ref, int) or text.startswith("#"):
        digits = text.lstrip("#")
        if not digits.isdigit():
            raise InvalidInputError(f"not an index id: {text[:40]!r}")
        return ("id", int(digits))
    if "@" in text:
        return ("email", text.lower())
    return ("crm", text)


def resolve_contacts(
    conn: Conn, org_id: uuid.UUID | str, refs: Sequence[str | int], *, source: str | None = None
) -> list[IndexRef | None]:
    """Resolve many references in one query; None where nothing matches. Same rules as :func:`resolve_contact`.

    Index ids (``#123`` or an int), emails (lower-cased; a live record before a deleted one, then the most
    recently updated), CRM record ids (a bare string of digits falls back to an index id). Emails and CRM ids
    are limited to ``source`` when given.
    """
    kinds = [_parse(r) for r in refs]
    ids = [int(str(v)) for k, v in kinds if k == "id"]
    ids += [int(str(v)) for k, v in kinds if k == "crm" and str(v).isdigit()]
    emails = [str(v) for k, v in kinds if k == "email"]
    crm_ids = [str(v) for k, v in kinds if k == "crm"]
    rows = conn.execute(
        """
        SELECT org_id, id, crm_source, crm_record_id, email, is_materialized, deleted_at IS NOT NULL
        FROM crm.contact_index
        WHERE org_id = %(org)s AND (
            id = ANY(%(ids)s)
            OR ((email = ANY(%(emails)s) OR crm_record_id = ANY(%(crm)s))
                AND (%(source)s::text IS NULL OR crm_source = %(source)s))
        )
        ORDER BY deleted_at IS NOT NULL, crm_updated_at DESC NULLS LAST, crm_source
        """,
        {"org": str(org_id), "ids": ids, "emails": emails, "crm": crm_ids, "source": source},
    ).fetchall()
    by_id: dict[int, IndexRef] = {}
    by_email: dict[str, IndexRef] = {}
    by_crm: dict[str, IndexRef] = {}
    for r in rows:
        found = IndexRef(
            org_id=uuid.UUID(str(r[0])),
            id=int(str(r[1])),
            crm_source=str(r[2]),
            crm_record_id=str(r[3]),
            email=None if r[4] is None else str(r[4]),
            is_materialized=bool(r[5]),
            deleted=bool(r[6]),
        )
        by_id.setdefault(found.id, found)
        if source is None or found.crm_source == source:
            if found.email is not None:
                by_email.setdefault(found.email, found)  # rows come live-first, newest first
            by_crm.setdefault(found.crm_record_id, found)
    out: list[IndexRef | None] = []
    for kind, value in kinds:
        if kind == "id":
            out.append(by_id.get(int(str(value))))
        elif kind == "email":
            out.append(by_email.get(str(value)))
        else:
            hit = by_crm.get(str(value))
            if hit is None and str(value).isdigit():
                hit = by_id.get(int(str(value)))
            out.append(hit)
    return out


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
