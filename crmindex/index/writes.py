"""Typed Python calls for the tier-1 index: orgs and bulk upserts of contacts, companies and deals.

Rows are pydantic models (or plain mappings keyed by the index's column names). A key left unset is
not written (the stored value stays); ``None`` clears it. See ``sql/index/writes.sql`` for the semantics
(monotonic by ``crm_updated_at``, restore after delete, whole-batch rejection). Text values are bounded as the
SQL bounds them (``crmindex.platform.bounds``: ids 200 characters, emails 320, other text 1,000; 10,000 rows
per batch): the models refuse a longer value naming the field, the SQL refuses it in plain mappings.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from crmindex.crm.protocols import Source
from crmindex.errors import InvalidInputError, InvalidRowError
from crmindex.platform.bounds import EMAIL_CAP, ID_CAP, NAME_CAP, ROWS_CAP, TEXT_CAP, check_text
from crmindex.platform.db import Conn, json_param, text_problem, translate_errors

Text = Annotated[str, Field(max_length=TEXT_CAP)]  # names, titles, stages... (crm.text_cap)
CrmId = Annotated[str, Field(max_length=ID_CAP)]
Email = Annotated[str, Field(max_length=EMAIL_CAP)]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    crm_record_id: str = Field(min_length=1, max_length=ID_CAP)
    crm_created_at: datetime | None = None
    crm_updated_at: datetime | None = None
    last_webhook_at: datetime | None = None
    deleted_at: datetime | None = None


class ContactRow(_Row):
    first_name: Text | None = None
    last_name: Text | None = None
    email: Email | None = None
    phone: Text | None = None
    company_name: Text | None = None
    company_crm_id: CrmId | None = None
    job_title: Text | None = None
    lifecycle_stage: Text | None = None
    lead_status: Text | None = None
    owner_crm_id: CrmId | None = None
    country: Text | None = None
    last_contacted_at: datetime | None = None
    last_activity_at: datetime | None = None


class CompanyRow(_Row):
    name: Text | None = None
    domain: Text | None = None
    industry: Text | None = None
    employee_count: int | None = None
    annual_revenue: Decimal | None = None
    city: Text | None = None
    region: Text | None = None
    country: Text | None = None
    owner_crm_id: CrmId | None = None
    # what the company says about itself (issue 17: the industry groups are derived from it too)
    description: Text | None = None
    tags: list[Text] | None = None


class DealRow(_Row):
    name: Text | None = None
    stage: Text | None = None
    pipeline: Text | None = None
    amount: Decimal | None = None
    close_date: date | None = None
    is_closed: bool | None = None
    company_crm_id: CrmId | None = None
    owner_crm_id: CrmId | None = None
    contact_crm_ids: list[CrmId] | None = None


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
    if len(data) > ROWS_CAP:
        raise InvalidRowError(f"a batch holds at most {ROWS_CAP} rows (got {len(data)})")
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


# the index's tables and their bulk upserts, per object type (the one dispatch: sync, reconcile, hydration,
# materialization and the typed functions below all write through upsert_rows)
INDEX_TABLES: dict[str, str] = {
    "contacts": "crm.contact_index",
    "companies": "crm.company_index",
    "deals": "crm.deal_index",
}
_UPSERTS: dict[str, str] = {
    "contacts": "SELECT * FROM crm.upsert_contacts(%s, %s, %s::jsonb)",
    "companies": "SELECT * FROM crm.upsert_companies(%s, %s, %s::jsonb)",
    "deals": "SELECT * FROM crm.upsert_deals(%s, %s, %s::jsonb)",
}


def upsert_rows(
    conn: Conn, object_type: str, org_id: uuid.UUID | str, source: str, rows: Iterable[RowLike]
) -> UpsertResult:
    """Insert or update index rows of ``object_type`` (contacts, companies, deals) in one round trip
    (``crm.upsert_<object_type>``); raises InvalidRowError and changes nothing on a bad row."""
    query = _UPSERTS.get(object_type)
    if query is None:
        raise InvalidInputError(f"unknown object type {str(object_type)[:40]!r}: {', '.join(_UPSERTS)}")
    payload = rows_json(rows)
    problem = text_problem(source)
    if problem is not None:
        raise InvalidInputError(f"unknown CRM source: the name {problem}")
    try:
        org = str(org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id)))
    except ValueError:
        raise InvalidInputError(f"org id must be a uuid, got {str(org_id)[:60]!r}") from None
    with translate_errors():
        row = conn.execute(query, (org, source, payload)).fetchone()
    assert row is not None
    return UpsertResult(inserted=row[0], updated=row[1], unchanged=row[2])


def upsert_contacts(
    conn: Conn, org_id: uuid.UUID | str, source: Source, rows: Iterable[RowLike]
) -> UpsertResult:
    """Insert or update index contacts in one round trip; raises InvalidRowError and changes nothing on a bad row."""
    return upsert_rows(conn, "contacts", org_id, source, rows)


def upsert_companies(
    conn: Conn, org_id: uuid.UUID | str, source: Source, rows: Iterable[RowLike]
) -> UpsertResult:
    return upsert_rows(conn, "companies", org_id, source, rows)


def upsert_deals(
    conn: Conn, org_id: uuid.UUID | str, source: Source, rows: Iterable[RowLike]
) -> UpsertResult:
    """Deals may carry ``contact_crm_ids``: the deal's contacts, whose deal summaries are recomputed."""
    return upsert_rows(conn, "deals", org_id, source, rows)


def apply_deletions(
    conn: Conn, object_type: str, org_id: str, source: str, items: Sequence[Mapping[str, Any]]
) -> None:
    """Soft-delete index rows the CRM deleted or merged away (``crm.apply_deletions``: items
    ``{"crm_record_id", "occurred_at", ["merged_into"], ["privacy"]}``, order-independent), in the caller's
    transaction."""
    if items:
        conn.execute(
            "SELECT * FROM crm.apply_deletions(%s, %s, %s, %s)",
            (org_id, source, INDEX_TABLES[object_type], Jsonb([dict(i) for i in items])),
        )


def ensure_org(conn: Conn, org_id: uuid.UUID | str, name: str = "") -> None:
    """Create the org row when missing (idempotent; ``crm.ensure_org``: the operator's and workers' path)."""
    check_text("name", name, NAME_CAP)
    with translate_errors():
        conn.execute("SELECT crm.ensure_org(%s, %s)", (str(org_id), name))
