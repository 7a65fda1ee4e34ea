"""Typed errors raised by crmindex's database-facing calls.

SQL functions raise errors with SQLSTATEs of class ``CX`` (see ``sql/migrations``); :func:`from_db_error`
turns them into these types, so callers catch a meaningful class, never a raw driver error.
"""

from __future__ import annotations

from typing import Any

import psycopg


class CrmIndexError(Exception):
    """Base class of every error crmindex raises on purpose."""


class MigrationError(CrmIndexError):
    """A migration file is misnamed, edited after it was applied, or failed to apply."""


class InvalidRowError(CrmIndexError, ValueError):
    """A row handed to an upsert is invalid; the whole batch was rejected and nothing changed."""

    def __init__(self, message: str, *, row: int | None = None, crm_record_id: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.crm_record_id = crm_record_id


class InvalidInputError(CrmIndexError, ValueError):
    """A parameter (filter, source, limit, reference...) is invalid."""


class OrgMismatchError(CrmIndexError, PermissionError):
    """The call names an org other than the one the session is bound to (``crm.org_id``)."""


class NotFoundError(CrmIndexError, LookupError):
    """The referenced org, connection or record does not exist (or is not visible to this session)."""


# SQLSTATE → error class for the codes our SQL raises.
SQLSTATE_ERRORS: dict[str, type[CrmIndexError]] = {
    "CX001": InvalidRowError,
    "CX002": InvalidInputError,
    "CX003": OrgMismatchError,
    "CX004": NotFoundError,
}


def from_db_error(exc: psycopg.Error) -> CrmIndexError | None:
    """The crmindex error for a database error our SQL raised on purpose, else None."""
    cls = SQLSTATE_ERRORS.get(exc.sqlstate or "")
    if cls is None:
        return None
    diag = exc.diag
    message = diag.message_primary or str(exc)
    if cls is InvalidRowError:
        row, record_id = _row_context(diag.message_detail)
        return InvalidRowError(message, row=row, crm_record_id=record_id)
    return cls(message)


def _row_context(detail: str | None) -> tuple[int | None, str | None]:
    # the SQL puts "row=<n> crm_record_id=<id>" in DETAIL
    row: int | None = None
    record_id: str | None = None
    if detail:
        parts: dict[str, Any] = dict(p.split("=", 1) for p in detail.split() if "=" in p)
        if "row" in parts and str(parts["row"]).isdigit():
            row = int(parts["row"])
        if parts.get("crm_record_id"):
            record_id = str(parts["crm_record_id"])
    return row, record_id
