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

import builtins
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

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


# one string or several (any of); a module-level alias because the filter models have a field named "list"
StrList = list[str] | str | None


class SearchFilters(BaseModel):
    """Structured filters; every field is optional and list fields accept one value or several (any of)."""

    model_config = ConfigDict(extra="forbid")

    seniority: builtins.list[Seniority] | Seniority | None = Field(
        None, description="seniority bucket derived from the job title"
    )
    department: builtins.list[Department] | Department | None = Field(
        None, description="department derived from the job title"
    )
    lifecycle_stage: StrList = Field(
        None, description="CRM lifecycle stage, e.g. customer, lead, opportunity"
    )
    lead_status: StrList = Field(None, description="CRM lead status, e.g. OPEN, CONNECTED")
    deal_stage: StrList = Field(None, description="stage of the contact's largest open deal")
    has_active_deal: bool | None = Field(None, description="the contact has an open deal")
    deal_value_min: float | None = Field(None, ge=0, description="total value of open deals at least this")
    deal_value_max: float | None = Field(None, ge=0, description="total value of open deals at most this")
    industry: StrList = Field(
        None, description="HubSpot industry value of the company, e.g. BANKING, COMPUTER_SOFTWARE"
    )
    industry_group: StrList = Field(
        None, description="industry group of the company, e.g. fintech, healthcare, software"
    )
    company: StrList = Field(None, description="company name (words, typos tolerated)")
    company_domain: StrList = Field(None, description="company website domain, e.g. stripe.com")
    email_domain: StrList = Field(None, description="domain of the contact's email address")
    domain: StrList = Field(None, description="email domain or company domain")
    email: StrList = Field(None, description="exact email address")
    location: StrList = Field(
        None,
        description="where the contact or its company is: a country (name or ISO code, e.g. DE, United Kingdom), a "
        "region (Europe, DACH, Nordics), a state or a city (Berlin, New York)",
    )
    employees_min: int | None = Field(
        None, ge=0, le=10**9, description="the company has at least this many employees"
    )
    employees_max: int | None = Field(
        None, ge=0, le=10**9, description="the company has at most this many employees"
    )
    revenue_min: float | None = Field(
        None, ge=0, le=1e15, description="the company's annual revenue at least this"
    )
    revenue_max: float | None = Field(
        None, ge=0, le=1e15, description="the company's annual revenue at most this"
    )
    owner: StrList = Field(
        None, description="the record's owner in the CRM: owner id, email, full, first or last name"
    )
    last_contacted_after: datetime | None = Field(None, description="last contacted at or after this time")
    last_contacted_before: datetime | None = Field(None, description="last contacted before this time")
    never_contacted: bool | None = Field(None, description="true: never contacted")
    last_activity_after: datetime | None = Field(
        None, description="last sales activity at or after this time"
    )
    last_activity_before: datetime | None = Field(None, description="last sales activity before this time")
    created_after: datetime | None = Field(None, description="created in the CRM at or after this time")
    created_before: datetime | None = Field(None, description="created in the CRM before this time")
    list: StrList = Field(
        None, description="an Attio list (pipeline) the record or its company is in: id, slug or name"
    )
    list_stage: StrList = Field(None, description="the stage of its entry in that list (label or id)")
    is_materialized: bool | None = Field(None, description="the full record is stored locally")
    updated_since: datetime | None = Field(None, description="changed in the CRM since this time")


class CompanyFilters(BaseModel):
    """Structured filters of a company search (crm.search_companies)."""

    model_config = ConfigDict(extra="forbid")

    industry: StrList = Field(None, description="HubSpot industry value, e.g. BANKING")
    industry_group: StrList = Field(None, description="industry group, e.g. fintech, healthcare")
    company: StrList = Field(None, description="company name (words, typos tolerated)")
    company_domain: StrList = Field(None, description="website domain, e.g. stripe.com")
    domain: StrList = Field(None, description="website domain")
    country: StrList = Field(None, description="country as stored")
    location: StrList = Field(None, description="country, region, state or city")
    employees_min: int | None = Field(None, ge=0, le=10**9, description="at least this many employees")
    employees_max: int | None = Field(None, ge=0, le=10**9, description="at most this many employees")
    revenue_min: float | None = Field(None, ge=0, le=1e15, description="annual revenue at least this")
    revenue_max: float | None = Field(None, ge=0, le=1e15, description="annual revenue at most this")
    owner: StrList = Field(None, description="owner id, email, full, first or last name")
    has_active_deal: bool | None = Field(None, description="the company has an open deal")
    created_after: datetime | None = Field(None, description="created in the CRM at or after this time")
    created_before: datetime | None = Field(None, description="created in the CRM before this time")
    list: StrList = Field(None, description="an Attio list the company is in: id, slug or name")
    list_stage: StrList = Field(None, description="the stage of its entry in that list")
    is_materialized: bool | None = Field(None, description="the full record is stored locally")
    updated_since: datetime | None = Field(None, description="changed in the CRM since this time")


class DealFilters(BaseModel):
    """Structured filters of a deal search (crm.search_deals)."""

    model_config = ConfigDict(extra="forbid")

    stage: StrList = Field(None, description="deal stage: label (Negotiation) or id")
    pipeline: StrList = Field(None, description="pipeline: label or id")
    is_open: bool | None = Field(None, description="the deal is open (not closed won or lost)")
    won: bool | None = Field(None, description="closed won (true) or closed lost (false)")
    amount_min: float | None = Field(None, ge=0, le=1e15, description="amount at least this")
    amount_max: float | None = Field(None, ge=0, le=1e15, description="amount at most this")
    close_after: date | None = Field(None, description="close date on or after this day")
    close_before: date | None = Field(None, description="close date before this day")
    owner: StrList = Field(None, description="owner id, email, full, first or last name")
    company: StrList = Field(None, description="the deal's company name")
    company_domain: StrList = Field(None, description="the deal's company domain")
    industry: StrList = Field(None, description="HubSpot industry of the deal's company")
    industry_group: StrList = Field(None, description="industry group of the deal's company")
    location: StrList = Field(None, description="where the deal's company is")
    employees_min: int | None = Field(
        None, ge=0, le=10**9, description="the company has at least this many employees"
    )
    employees_max: int | None = Field(
        None, ge=0, le=10**9, description="the company has at most this many employees"
    )
    revenue_min: float | None = Field(None, ge=0, le=1e15, description="the company's revenue at least this")
    revenue_max: float | None = Field(None, ge=0, le=1e15, description="the company's revenue at most this")
    created_after: datetime | None = Field(None, description="created in the CRM at or after this time")
    created_before: datetime | None = Field(None, description="created in the CRM before this time")
    list: StrList = Field(None, description="an Attio list the deal or its company is in")
    list_stage: StrList = Field(None, description="the stage of its entry in that list")
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
    owner_crm_id: str | None = None
    owner_name: str | None = None
    country: str | None = None
    last_contacted_at: datetime | None = None
    last_activity_at: datetime | None = None
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
    region: str | None = None
    country: str | None = None
    owner_crm_id: str | None = None
    owner_name: str | None = None
    is_materialized: bool = False
    materialized_company_id: uuid.UUID | None = None
    crm_updated_at: datetime | None = None
    score: float
    cursor: str


class DealHit(BaseModel):
    """A deal of the index with its stage and pipeline labels, owner and company."""

    id: int
    crm_source: str
    crm_record_id: str
    name: str | None = None
    stage: str | None = None
    stage_label: str | None = None
    pipeline: str | None = None
    pipeline_label: str | None = None
    amount: Decimal | None = None
    close_date: date | None = None
    is_open: bool | None = None
    is_closed: bool | None = None
    owner_crm_id: str | None = None
    owner_name: str | None = None
    company_crm_id: str | None = None
    company_id: int | None = None
    company_name: str | None = None
    company_domain: str | None = None
    crm_created_at: datetime | None = None
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
    subject: Literal["contacts", "companies", "deals"] = "contacts"
    text: str
    filters: dict[str, Any]
    not_understood: list[str] = []
    explanation: str
    matched: list[MatchedPhrase] = []


class SearchResult(BaseModel):
    """Contacts (``hits``); from :func:`search`, what was asked for: companies and deals questions fill
    ``companies`` / ``deals`` instead (``subject`` says which), with the words not understood beside them."""

    hits: list[ContactHit]
    next_cursor: str | None = None
    interpretation: Interpretation | None = None
    subject: Literal["contacts", "companies", "deals"] = "contacts"
    companies: list[CompanyHit] = []
    deals: list[DealHit] = []

    @property
    def not_understood(self) -> list[str]:
        return self.interpretation.not_understood if self.interpretation is not None else []


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


FiltersLike = SearchFilters | CompanyFilters | DealFilters | Mapping[str, Any] | None


def _filters_json(filters: FiltersLike, after: str | None) -> str:
    if filters is None:
        data: dict[str, Any] = {}
    elif isinstance(filters, BaseModel):
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
    filters: CompanyFilters | Mapping[str, Any] | None = None,
    limit: int = 50,
    after: str | None = None,
) -> CompanySearchResult:
    """Companies matching ``query`` (name words with typos, domain) and ``filters`` (:class:`CompanyFilters`:
    industry, industry_group, domain, location, employees, revenue, owner, created dates, Attio list...), best
    first."""
    org = _params(org_id, limit, query=query)
    rows = _rows(
        conn,
        "SELECT * FROM crm.search_companies(%s, %s, %s::jsonb, %s)",
        (org, query, _filters_json(filters, after), limit),
    )
    hits = [CompanyHit.model_validate(r) for r in rows]
    return CompanySearchResult(hits=hits, next_cursor=hits[-1].cursor if len(hits) == limit else None)


class DealSearchResult(BaseModel):
    hits: list[DealHit]
    next_cursor: str | None = None


def search_deals(
    conn: Conn,
    org_id: OrgId,
    query: str = "",
    filters: DealFilters | Mapping[str, Any] | None = None,
    limit: int = 50,
    after: str | None = None,
) -> DealSearchResult:
    """Deals matching ``query`` (deal and company name words, domain) and ``filters`` (:class:`DealFilters`: stage,
    pipeline, open/won, amount, close date, owner, the company's industry, place and size...), best first."""
    org = _params(org_id, limit, query=query)
    rows = _rows(
        conn,
        "SELECT * FROM crm.search_deals(%s, %s, %s::jsonb, %s)",
        (org, query, _filters_json(filters, after), limit),
    )
    hits = [DealHit.model_validate(r) for r in rows]
    return DealSearchResult(hits=hits, next_cursor=hits[-1].cursor if len(hits) == limit else None)


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
    interpretation = Interpretation.model_validate(doc["interpretation"])
    rows: list[dict[str, Any]] = doc["results"]
    subject = interpretation.subject
    return SearchResult(
        hits=[ContactHit.model_validate(r) for r in rows] if subject == "contacts" else [],
        companies=[CompanyHit.model_validate(r) for r in rows] if subject == "companies" else [],
        deals=[DealHit.model_validate(r) for r in rows] if subject == "deals" else [],
        next_cursor=doc.get("next_cursor"),
        interpretation=interpretation,
        subject=subject,
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
            "'customers with an open deal over 50k', 'companies in Germany with more than 500 employees', "
            "'deals closing this month over 100k', 'contacts I haven't talked to in 90 days') and leave `filters` "
            "empty to have it interpreted (the answer says what was searched and which words were not understood); "
            "or give structured `filters` (contacts) and keep `query` for names, companies, titles, emails or domains. "
            "Results carry a score and a cursor; pass the last cursor as `after` for the next page."
        ),
        "input_schema": SearchParams.model_json_schema(),
    }
