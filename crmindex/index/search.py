"""Typed search over the tier-1 index: contacts, companies, the copilot's phrase search, entity resolution.

Thin wrappers over the SQL functions of ``sql/index/search.sql`` (``crm.search_contacts``,
``crm.search_companies``, ``crm.search``, ``crm.interpret_query``, ``crm.resolve_contact``); the SQL does the
work and the validation (an unknown filter key or a bad value raises :class:`~crmindex.errors.InvalidInputError`
naming the key). Row-level security applies: bind the connection to the org (``crmindex.platform.db.bind_org``) when
it runs as ``crm_app``.

* :func:`search_contacts` / :func:`search_companies` take the text literally plus structured filters;
* :func:`search` interprets a copilot phrase ("VPs at fintech companies") into filters + text first and
  returns the interpretation with the hits;
* pages: pass the last hit's ``cursor`` (or ``SearchResult.next_cursor``) as ``after``.

:func:`search_tool_schema` gives the JSON schema of :class:`SearchParams` as an LLM tool definition.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from crmindex.errors import InvalidInputError
from crmindex.platform.db import Conn, json_param, text_problem, translate_errors
from crmindex.platform.sqlconst import sql_texts

# The seniority buckets and departments the index derives from job titles: crm.search_seniorities() and
# crm.search_departments() of sql/index/derive.sql, read from that file (SQL is the one list).
SENIORITIES: tuple[str, ...] = sql_texts("index/derive.sql", "search_seniorities")
DEPARTMENTS: tuple[str, ...] = sql_texts("index/derive.sql", "search_departments")


def _member(values: tuple[str, ...], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"{what} must be one of {', '.join(values)}")
        return value

    return check


# a string that must be one of them (an ``enum`` in the JSON schema, as a ``Literal`` would give)
Seniority = Annotated[
    str,
    AfterValidator(_member(SENIORITIES, "seniority")),
    WithJsonSchema({"enum": list(SENIORITIES), "type": "string"}),
]
Department = Annotated[
    str,
    AfterValidator(_member(DEPARTMENTS, "department")),
    WithJsonSchema({"enum": list(DEPARTMENTS), "type": "string"}),
]
OrgId = uuid.UUID | str


class SearchFilters(BaseModel):
    """Structured filters; every field is optional and list fields accept one value or several (any of)."""

    model_config = ConfigDict(extra="forbid")

    seniority: list[Seniority] | Seniority | None = Field(
        None, description="seniority bucket derived from the job title"
    )
    department: list[Department] | Department | None = Field(
        None, description="department derived from the job title"
    )
    lifecycle_stage: list[str] | str | None = Field(
        None, description="CRM lifecycle stage, e.g. customer, lead, opportunity"
    )
    lead_status: list[str] | str | None = Field(None, description="CRM lead status, e.g. OPEN, CONNECTED")
    deal_stage: list[str] | str | None = Field(None, description="stage of the contact's largest open deal")
    has_active_deal: bool | None = Field(None, description="the contact has an open deal")
    deal_value_min: float | None = Field(None, ge=0, description="total value of open deals at least this")
    deal_value_max: float | None = Field(None, ge=0, description="total value of open deals at most this")
    industry: list[str] | str | None = Field(
        None, description="HubSpot industry value of the company, e.g. BANKING, COMPUTER_SOFTWARE"
    )
    industry_group: list[str] | str | None = Field(
        None, description="industry group of the company, e.g. fintech, healthcare, software"
    )
    company: list[str] | str | None = Field(None, description="company name (words, typos tolerated)")
    company_domain: list[str] | str | None = Field(
        None, description="company website domain, e.g. stripe.com"
    )
    email_domain: list[str] | str | None = Field(None, description="domain of the contact's email address")
    domain: list[str] | str | None = Field(None, description="email domain or company domain")
    email: list[str] | str | None = Field(None, description="exact email address")
    is_materialized: bool | None = Field(None, description="the full record is stored locally")
    updated_since: datetime | None = Field(None, description="changed in the CRM since this time")


class SearchParams(BaseModel):
    """What the copilot's search tool takes (see :func:`search_tool_schema`)."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        "",
        max_length=2000,
        description='free text: names, companies, titles, emails or domains (typos tolerated), e.g. "Jane Doe", '
        '"stripe.com"',
    )
    filters: SearchFilters | None = Field(None, description="structured filters, all optional")
    limit: int = Field(20, ge=1, le=200, description="maximum number of results")
    after: str | None = Field(None, description="the cursor of the last result of the previous page")


class ContactHit(BaseModel):
    """A contact of the index (not a full CRM record) with its company's industry and a score."""

    id: int
    crm_source: str
    crm_record_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email_domain: str | None = None
    phone: str | None = None
    company_name: str | None = None
    company_crm_id: str | None = None
    job_title: str | None = None
    seniority: str | None = None
    department: str | None = None
    lifecycle_stage: str | None = None
    lead_status: str | None = None
    has_active_deal: bool = False
    deal_stage: str | None = None
    deal_value: Decimal | None = None
    is_materialized: bool = False
    materialized_contact_id: uuid.UUID | None = None
    crm_updated_at: datetime | None = None
    company_id: int | None = None
    company_domain: str | None = None
    industry: str | None = None
    industry_groups: list[str] | None = None
    score: float
    cursor: str

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class CompanyHit(BaseModel):
    id: int
    crm_source: str
    crm_record_id: str
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    industry_groups: list[str] | None = None
    employee_count: int | None = None
    annual_revenue: Decimal | None = None
    city: str | None = None
    country: str | None = None
    is_materialized: bool = False
    materialized_company_id: uuid.UUID | None = None
    crm_updated_at: datetime | None = None
    score: float
    cursor: str


class MatchedPhrase(BaseModel):
    phrase: str
    key: str
    value: Any


class Interpretation(BaseModel):
    """How a copilot phrase was read: the filters and the text that remained, and a sentence saying so."""

    query: str
    text: str
    filters: dict[str, Any]
    explanation: str
    matched: list[MatchedPhrase] = []


class SearchResult(BaseModel):
    hits: list[ContactHit]
    next_cursor: str | None = None
    interpretation: Interpretation | None = None


class CompanySearchResult(BaseModel):
    hits: list[CompanyHit]
    next_cursor: str | None = None


class ResolveCandidate(BaseModel):
    id: int
    crm_source: str
    crm_record_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    company_name: str | None = None
    job_title: str | None = None
    is_materialized: bool = False
    materialized_contact_id: uuid.UUID | None = None
    has_active_deal: bool = False
    score: float
    reason: str


FiltersLike = SearchFilters | Mapping[str, Any] | None


def _filters_json(filters: FiltersLike, after: str | None) -> str:
    if filters is None:
        data: dict[str, Any] = {}
    elif isinstance(filters, SearchFilters):
        data = filters.model_dump(mode="json", exclude_none=True)
    else:
        data = dict(filters)  # validated by the SQL (InvalidInputError naming the key)
    if after is not None:
        data["after"] = after
    try:
        return json_param(data, default=str)
    except ValueError as exc:
        raise InvalidInputError(f"filters {exc}") from None


def _params(org_id: OrgId, limit: int, **texts: str | None) -> str:
    """Check what the SQL cannot be handed (a non-uuid org, NUL or surrogates, a limit beyond int4) and
    raise InvalidInputError for it; returns the org id as text."""
    for name, value in texts.items():
        problem = None if value is None else text_problem(value)
        if problem is not None:
            raise InvalidInputError(f"{name} {problem}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not -(2**31) <= limit < 2**31:
        raise InvalidInputError(f"limit must be a small integer, got {str(limit)[:30]}")
    try:
        return str(org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id)))
    except ValueError:
        raise InvalidInputError(f"org id must be a uuid, got {str(org_id)[:60]!r}") from None


def _rows(conn: Conn, sql: str, params: tuple[object, ...]) -> list[dict[str, Any]]:
    with translate_errors(), conn.cursor() as cur:
        cur.execute(sql, params)
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def search_contacts(
    conn: Conn,
    org_id: OrgId,
    query: str = "",
    filters: FiltersLike = None,
    limit: int = 50,
    after: str | None = None,
) -> SearchResult:
    """Contacts matching ``query`` (taken literally) and ``filters``, best first."""
    org = _params(org_id, limit, query=query)
    rows = _rows(
        conn,
        "SELECT * FROM crm.search_contacts(%s, %s, %s::jsonb, %s)",
        (org, query, _filters_json(filters, after), limit),
    )
    hits = [ContactHit.model_validate(r) for r in rows]
    return SearchResult(hits=hits, next_cursor=hits[-1].cursor if len(hits) == limit else None)


def search_companies(
    conn: Conn,
    org_id: OrgId,
    query: str = "",
    filters: FiltersLike = None,
    limit: int = 50,
    after: str | None = None,
) -> CompanySearchResult:
    """Companies matching ``query`` (name words with typos, domain) and ``filters`` (industry, industry_group,
    company_domain / domain, country, is_materialized, updated_since), best first."""
    org = _params(org_id, limit, query=query)
    rows = _rows(
        conn,
        "SELECT * FROM crm.search_companies(%s, %s, %s::jsonb, %s)",
        (org, query, _filters_json(filters, after), limit),
    )
    hits = [CompanyHit.model_validate(r) for r in rows]
    return CompanySearchResult(hits=hits, next_cursor=hits[-1].cursor if len(hits) == limit else None)


def interpret(conn: Conn, org_id: OrgId, query: str) -> Interpretation:
    """How ``crm.interpret_query`` reads a copilot phrase (filters + remaining text + explanation)."""
    org = _params(org_id, 1, query=query)
    with translate_errors():
        row = conn.execute("SELECT crm.interpret_query(%s, %s)", (org, query)).fetchone()
    assert row is not None
    return Interpretation.model_validate(row[0])


def search(conn: Conn, org_id: OrgId, query: str, limit: int = 50, after: str | None = None) -> SearchResult:
    """The copilot's search: interpret ``query``, then search contacts; the result carries the interpretation."""
    org = _params(org_id, limit, query=query, after=after)
    with translate_errors():
        row = conn.execute("SELECT crm.search(%s, %s, %s, %s)", (org, query, limit, after)).fetchone()
    assert row is not None
    doc: dict[str, Any] = row[0]
    return SearchResult(
        hits=[ContactHit.model_validate(r) for r in doc["results"]],
        next_cursor=doc.get("next_cursor"),
        interpretation=Interpretation.model_validate(doc["interpretation"]),
    )


def run_search_params(conn: Conn, org_id: OrgId, params: SearchParams | Mapping[str, Any]) -> SearchResult:
    """Execute an LLM tool call's arguments (:class:`SearchParams`): with filters, the query is free text;
    without, the query is interpreted as a copilot phrase."""
    p = params if isinstance(params, SearchParams) else SearchParams.model_validate(params)
    if p.filters is None:
        return search(conn, org_id, p.query, limit=p.limit, after=p.after)
    return search_contacts(conn, org_id, p.query, p.filters, limit=p.limit, after=p.after)


def resolve_contact(conn: Conn, org_id: OrgId, text: str, limit: int = 5) -> list[ResolveCandidate]:
    """Who is "Stan from Acme" / an email / a name: candidates best first with a score (0..1) and a reason."""
    org = _params(org_id, limit, text=text)
    rows = _rows(conn, "SELECT * FROM crm.resolve_contact(%s, %s, %s)", (org, text, limit))
    return [ResolveCandidate.model_validate(r) for r in rows]


def search_tool_schema(name: str = "search_crm_index") -> dict[str, Any]:
    """An LLM tool definition for the index search: ``{"name", "description", "input_schema"}`` (the schema
    of :class:`SearchParams`; OpenAI-style tools take the same schema as ``parameters``)."""
    return {
        "name": name,
        "description": (
            "Search every contact of the connected CRM (HubSpot/Attio), not only the ones stored in full. "
            "Put a plain-language request in `query` (e.g. 'VPs at fintech companies', 'Stan from Acme', "
            "'customers with an open deal over 50k') and leave `filters` empty to have it interpreted; or "
            "give structured `filters` and keep `query` for names, companies, titles, emails or domains. "
            "Results carry a score and a cursor; pass the last cursor as `after` for the next page."
        ),
        "input_schema": SearchParams.model_json_schema(),
    }
