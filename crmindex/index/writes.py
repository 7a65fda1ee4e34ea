"""Typed Python calls for the tier-1 index: orgs and bulk upserts of contacts, companies and deals.

Rows are pydantic models (or plain mappings keyed by the index's column names). A key left unset is
not written (the stored value stays); ``None`` clears it. See ``sql/migrations/0003_index_writes.sql``
for the semantics (monotonic by ``crm_updated_at``, restore after delete, whole-batch rejection).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crmindex.errors import InvalidInputError, InvalidRowError
from crmindex.platform.db import Conn, json_param, text_problem, translate_errors

Source = Literal["hubspot", "attio"]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    crm_record_id: str = Field(min_length=1, max_length=200)
    crm_created_at: datetime | None = None
    crm_updated_at: datetime | None = None
    last_webhook_at: datetime | None = None
    deleted_at: datetime | None = None


class ContactRow(_Row):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company_name: str | None = None
    company_crm_id: str | None = None
    job_title: str | None = None
    lifecycle_stage: str | None = None
    lead_status: str | None = None


class CompanyRow(_Row):
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    employee_count: int | None = None
    annual_revenue: Decimal | None = None
    city: str | None = None
    country: str | None = None


class DealRow(_Row):
    name: str | None = None
    stage: str | None = None
    pipeline: str | None = None
    amount: Decimal | None = None
    close_date: date | None = None
    is_closed: bool | None = None
    company_crm_id: str | None = None
    owner_crm_id: str | None = None
    contact_crm_ids: list[str] | None = None


class UpsertResult(BaseModel):
    inserted: int
    updated: int
    unchanged: int

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            inserted=self.inserted + other.inserted,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
        )


RowLike = BaseModel | Mapping[str, Any]


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} in an index row")


def rows_json(rows: Iterable[RowLike]) -> str:
    """The JSON array the SQL upserts take; pydantic rows contribute only the keys that were set."""
    data = [row.model_dump(exclude_unset=True) if isinstance(row, BaseModel) else row for row in rows]
    try:
        return json_param(data, default=_json_default)  # the whole batch at once (the hot path of syncs)
    except (TypeError, ValueError):
        pass
    for n, item in enumerate(data, 1):  # find the row the database could not even parse
        try:
            json_param(item, default=_json_default)
        except (TypeError, ValueError) as exc:
            # rejected like any bad row: nothing is written
            rid = item.get("crm_record_id") if isinstance(item, Mapping) else None
            rid_text = rid if isinstance(rid, str) and text_problem(rid) is None else "?"
            raise InvalidRowError(f"row {n} (crm_record_id {rid_text[:200]}) {exc}", row=n) from None
    raise InvalidRowError("the rows cannot be encoded as JSON", row=1)  # pragma: no cover - per-row found it


def _upsert(
    conn: Conn, fn: str, org_id: uuid.UUID | str, source: str, rows: Iterable[RowLike]
) -> UpsertResult:
    payload = rows_json(rows)
    problem = text_problem(source)
    if problem is not None:
        raise InvalidInputError(f"unknown CRM source: the name {problem}")
    try:
        org = str(org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id)))
    except ValueError:
        raise InvalidInputError(f"org id must be a uuid, got {str(org_id)[:60]!r}") from None
    query = {
        "contacts": "SELECT * FROM crm.upsert_contacts(%s, %s, %s::jsonb)",
        "companies": "SELECT * FROM crm.upsert_companies(%s, %s, %s::jsonb)",
        "deals": "SELECT * FROM crm.upsert_deals(%s, %s, %s::jsonb)",
    }[fn]
    with translate_errors():
        row = conn.execute(query, (org, source, payload)).fetchone()
    assert row is not None
    return UpsertResult(inserted=row[0], updated=row[1], unchanged=row[2])


def upsert_contacts(
    conn: Conn, org_id: uuid.UUID | str, source: Source, rows: Iterable[RowLike]
) -> UpsertResult:
    """Insert or update index contacts in one round trip; raises InvalidRowError and changes nothing on a bad row."""
    return _upsert(conn, "contacts", org_id, source, rows)


def upsert_companies(
    conn: Conn, org_id: uuid.UUID | str, source: Source, rows: Iterable[RowLike]
) -> UpsertResult:
    return _upsert(conn, "companies", org_id, source, rows)


def upsert_deals(
    conn: Conn, org_id: uuid.UUID | str, source: Source, rows: Iterable[RowLike]
) -> UpsertResult:
    """Deals may carry ``contact_crm_ids``: the deal's contacts, whose deal summaries are recomputed."""
    return _upsert(conn, "deals", org_id, source, rows)


def ensure_org(conn: Conn, org_id: uuid.UUID | str, name: str = "") -> None:
    """Create the org row when missing (idempotent)."""
    with translate_errors():
        conn.execute(
            "INSERT INTO crm.org (org_id, name) VALUES (%s, %s) ON CONFLICT (org_id) DO NOTHING",
            (str(org_id), name),
        )
