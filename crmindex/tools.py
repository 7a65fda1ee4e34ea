"""Every copilot action as an LLM tool: typed definitions, their JSON schemas, and one executor.

A tool is one :class:`ToolSpec`: a name, a description, a pydantic model of its arguments (``extra="forbid"``,
every text bounded as ``crmindex/platform/bounds.py`` says) and a function that runs it for an org. The list
renders to the shapes the major LLM APIs take::

    from crmindex.tools import TOOLS, ToolExecutor

    TOOLS.openai()             # Chat Completions: [{"type": "function", "function": {name, description, parameters}}]
    TOOLS.openai_responses()   # Responses API:    [{"type": "function", "name", "description", "parameters"}]
    TOOLS.anthropic()          # Messages API:     [{"name", "description", "input_schema"}]
    TOOLS.mcp()                # MCP tools/list:   [{"name", "description", "inputSchema", "annotations"}]

    tools = ToolExecutor(idx, org_id)                # the org of the CALLER's session (its auth), never the model's
    out = tools.call("search_contacts", {"query": "vps at fintech companies"})   # or the JSON text of the args
    out.content                                      # a JSON object: the result, or {"error": {code, message}}

The executor validates the arguments (unknown keys, an org among them, wrong types, oversized values: a
``{"error": ...}`` naming the problem, and nothing changes), runs the action in a session bound to its org (and,
by default, as the application role ``crm_app``, so row-level security and the API grants apply as well), and
returns JSON. A model cannot name an org: every action takes the executor's, and a reference (an email, a CRM id,
an index id) is resolved inside that org only. Errors are typed (:class:`ToolError`: code, message), never a
traceback, SQL text or a secret; an unexpected failure is logged with a reference the error carries.

Adding a tool is one small definition in this module (the MCP server, ``crmindex mcp``, serves every tool of
:data:`TOOLS`)::

    class LogActivityArgs(BaseModel):
        model_config = ConfigDict(extra="forbid")
        contact: ContactRef
        body: str = Field(max_length=TEXT_CAP, description="...")

    @TOOLS.tool("log_activity", LogActivityArgs, "Log a note on a contact's CRM record ...")
    def _log_activity(ctx: ToolContext, args: LogActivityArgs) -> Mapping[str, Any] | BaseModel:
        with ctx.session() as conn:                  # bound to ctx.org_id, as crm_app
            return log_activity(conn, ctx.org_id, ...)
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, cast

import psycopg
from psycopg import sql
from psycopg_pool import PoolTimeout
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import to_jsonable_python

from crmindex.crm.connections import list_connections
from crmindex.crm.errors import CrmError
from crmindex.crm.protocols import Source
from crmindex.errors import CrmIndexError, InvalidInputError, InvalidRowError, NotFoundError, OrgMismatchError
from crmindex.index.search import (
    SearchParams,
    resolve_contact,
    run_search_params,
    search_companies,
    search_tool_schema,
)
from crmindex.platform.bounds import EMAIL_CAP, PAYLOAD_CAP, QUERY_CAP, TEXT_CAP, check_json, is_email
from crmindex.platform.db import Conn, text_problem
from crmindex.records.materialize import request_materialization
from crmindex.status import org_status
from crmindex.writeback.activities import log_activity
from crmindex.writeback.enqueue import create_contact, update_contact
from crmindex.writeback.records import associate, create_company, create_deal, update_company, update_deal

if TYPE_CHECKING:
    from crmindex.app import CrmIndex

log = logging.getLogger("crmindex.tools")

A = TypeVar("A", bound=BaseModel)
ToolOutput = BaseModel | Mapping[str, Any]
Format = Literal["openai", "openai_responses", "anthropic", "mcp"]
MaterializeMode = Literal["request", "now"]

# keys that would name a tenant: the org is the caller's binding, so a model's attempt is refused by name
ORG_KEYS = frozenset({"org", "org_id", "orgid", "organization", "organization_id", "tenant", "tenant_id"})
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what OpenAI's and Anthropic's APIs accept as a tool name
DESCRIPTION_CAP = 1024  # characters of a tool description (OpenAI's function description limit)
MESSAGE_CAP = 1000  # characters of an error message handed back to the model


# ------------------------------------------------------------------------------------------------ the errors
ErrorCode = Literal[
    "unknown_tool",  # no tool of that name
    "invalid_arguments",  # not a JSON object, an unknown key, a wrong type, a value out of bounds
    "org_not_allowed",  # the arguments name an org / tenant: the org is the caller's, never the model's
    "invalid_input",  # the action refused a value (an unwritable field, a bad filter value ...)
    "not_found",  # no such contact (or record) in this org
    "org_mismatch",  # the session is bound to another org (a misconfigured caller; never the model's doing)
    "permission_denied",  # the database login may not do this (deployment configuration)
    "crm_error",  # the CRM refused or failed (status / category / code only, never its body)
    "unavailable",  # the database cannot be reached now: try again shortly
    "failed",  # another error crmindex raised on purpose
    "internal_error",  # anything else: logged with the reference given
]


class ToolError(BaseModel):
    """What a failed call returns under ``"error"``: a stable ``code``, a message for the model and the user,
    for ``invalid_arguments`` the problems by field, for ``internal_error`` a reference to the server log."""

    code: ErrorCode
    message: str
    tool: str | None = None
    details: list[dict[str, str]] | None = None
    reference: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """One call's outcome. ``content`` is a JSON object: the tool's result, or ``{"error": {...}}`` when
    ``is_error``."""

    tool: str
    content: dict[str, Any]
    is_error: bool = False

    @property
    def error(self) -> ToolError | None:
        return ToolError.model_validate(self.content["error"]) if self.is_error else None

    def text(self) -> str:
        """The content as JSON text (what an LLM API takes as the tool's result)."""
        return json.dumps(self.content, ensure_ascii=False, separators=(",", ":"))


def _failure(tool: str, code: ErrorCode, message: str, **extra: Any) -> ToolResult:
    error = ToolError(code=code, message=_clip(message), tool=tool or None, **extra)
    return ToolResult(tool, {"error": error.model_dump(mode="json", exclude_none=True)}, is_error=True)


def _clip(text: str, cap: int = MESSAGE_CAP) -> str:
    return text if len(text) <= cap else text[: cap - 1] + "…"


# ------------------------------------------------------------------------------------------------ the specs
@dataclass(frozen=True)
class ToolSpec(Generic[A]):
    """One tool: its name, what the model is told, its arguments' model and what runs it."""

    name: str
    description: str
    args: type[A]
    run: Callable[[ToolContext, A], ToolOutput]
    read_only: bool = False
    title: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must match {_NAME.pattern}")
        if len(self.description) > DESCRIPTION_CAP:
            raise ValueError(f"tool {self.name}: the description is longer than {DESCRIPTION_CAP} characters")
        if self.args.model_config.get("extra") != "forbid":
            raise ValueError(
                f"tool {self.name}: its arguments model must refuse unknown keys (extra='forbid')"
            )
        if any(key.lower() in ORG_KEYS for key in self.args.model_fields):
            raise ValueError(f"tool {self.name}: the org comes from the caller, never from an argument")

    def input_schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments: one self-contained object schema (references inlined, titles
        dropped), which OpenAI, Anthropic and MCP clients all take."""
        return json_schema(self.args)


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with every ``$ref`` inlined and the generated ``title`` keywords removed."""
    raw = model.model_json_schema()
    defs: dict[str, Any] = raw.pop("$defs", {})

    def walk(node: Any, depth: int = 0) -> Any:
        if depth > 50:
            raise ValueError(f"{model.__name__}: the schema nests too deeply (a recursive model?)")
        if isinstance(node, list):
            return [walk(x, depth + 1) for x in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = str(node["$ref"])
            target = walk(defs[ref.removeprefix("#/$defs/")], depth + 1)
            siblings = {k: walk(v, depth + 1) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "patternProperties") and isinstance(value, dict):
                out[key] = {name: walk(sub, depth + 1) for name, sub in value.items()}
            elif key in ("default", "examples", "enum", "const"):
                out[key] = value  # values, not schemas
            else:
                out[key] = walk(value, depth + 1)
        return out

    schema = cast(dict[str, Any], walk(raw))
    schema.pop("description", None)  # the model's docstring: the tool's description says what the model needs
    schema.setdefault("properties", {})
    return schema


class Toolset:
    """The tools an executor runs and a server lists, in the order they were added."""

    def __init__(self, specs: list[ToolSpec[Any]] | None = None) -> None:
        self._specs: dict[str, ToolSpec[Any]] = {}
        for spec in specs or []:
            self.add(spec)

    def add(self, spec: ToolSpec[Any]) -> ToolSpec[Any]:
        if spec.name in self._specs:
            raise ValueError(f"a tool named {spec.name!r} exists already")
        self._specs[spec.name] = spec
        return spec

    def tool(
        self, name: str, args: type[A], description: str, *, read_only: bool = False, title: str | None = None
    ) -> Callable[[Callable[[ToolContext, A], ToolOutput]], Callable[[ToolContext, A], ToolOutput]]:
        """Decorator: add the function as the tool ``name`` taking ``args``."""

        def register(run: Callable[[ToolContext, A], ToolOutput]) -> Callable[[ToolContext, A], ToolOutput]:
            self.add(ToolSpec(name, description, args, run, read_only=read_only, title=title))
            return run

        return register

    def __iter__(self) -> Iterator[ToolSpec[Any]]:
        return iter(list(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def get(self, name: str) -> ToolSpec[Any] | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return list(self._specs)

    def subset(self, names: list[str]) -> Toolset:
        """Only these tools (e.g. read-only ones for a copilot that may not write)."""
        missing = [n for n in names if n not in self._specs]
        if missing:
            raise KeyError(f"no such tools: {', '.join(missing)}")
        return Toolset([self._specs[n] for n in names])

    # -- the shapes the LLM APIs take ---------------------------------------------------------------------
    def openai(self) -> list[dict[str, Any]]:
        """OpenAI Chat Completions ``tools``."""
        return [
            {
                "type": "function",
                "function": {"name": s.name, "description": s.description, "parameters": s.input_schema()},
            }
            for s in self
        ]

    def openai_responses(self) -> list[dict[str, Any]]:
        """OpenAI Responses API ``tools`` (the flat function form; not strict: optional arguments stay
        optional)."""
        return [
            {
                "type": "function",
                "name": s.name,
                "description": s.description,
                "parameters": s.input_schema(),
                "strict": False,
            }
            for s in self
        ]

    def anthropic(self) -> list[dict[str, Any]]:
        """Anthropic Messages API ``tools``."""
        return [
            {"name": s.name, "description": s.description, "input_schema": s.input_schema()} for s in self
        ]

    def mcp(self) -> list[dict[str, Any]]:
        """Model Context Protocol ``tools/list`` entries (the wire form; ``crmindex.mcp`` serves them)."""
        return [
            {
                "name": s.name,
                **({"title": s.title} if s.title else {}),
                "description": s.description,
                "inputSchema": s.input_schema(),
                "annotations": {
                    "readOnlyHint": s.read_only,
                    "destructiveHint": False,
                    "openWorldHint": not s.read_only,
                },
            }
            for s in self
        ]

    def render(self, fmt: Format) -> list[dict[str, Any]]:
        renderers: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "openai": self.openai,
            "openai_responses": self.openai_responses,
            "anthropic": self.anthropic,
            "mcp": self.mcp,
        }
        if fmt not in renderers:
            raise InvalidInputError(f"unknown tool format {str(fmt)[:40]!r}: use {', '.join(renderers)}")
        return renderers[fmt]()


# ------------------------------------------------------------------------------------------------ the context
@dataclass(frozen=True)
class ToolContext:
    """What a tool runs with: the index and the caller's binding (org, actor, user). Tools open sessions with
    :meth:`session`, which is bound to ``org_id`` and (unless ``app_role`` is None) runs as the application role.
    """

    index: CrmIndex
    org_id: uuid.UUID
    actor: str = "copilot"
    user_id: uuid.UUID | None = None
    app_role: str | None = "crm_app"
    materialize: MaterializeMode = "request"

    @contextlib.contextmanager
    def session(self) -> Iterator[Conn]:
        """A pooled connection bound to this org (``crm.org_id``), as ``app_role`` for the block."""
        with self.index.connection(self.org_id) as conn:
            if self.app_role is None:
                yield conn
                return
            try:
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.app_role)))
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidParameterValue):
                raise _Misconfigured(
                    f"this database login may not act as {self.app_role} (grant that role to it, or run the "
                    "tools with the login's own privileges)"
                ) from None
            try:
                yield conn
            finally:
                conn.execute("RESET ROLE")


class _Misconfigured(CrmIndexError):
    """The deployment, not the call, is wrong (the login cannot take the application role)."""


# ------------------------------------------------------------------------------------------------ the executor
class ToolExecutor:
    """Runs the tools of ``toolset`` for one org: the org of the caller's authenticated context.

    ``org_id`` is bound here, by the code that knows who is calling (a web session, the operator's
    ``crmindex mcp --org``), never taken from a model's arguments; :meth:`for_org` gives the executor of another
    org. ``actor`` and ``user_id`` are recorded with writes and activations. ``app_role`` (default ``crm_app``):
    every session runs as that role (``SET ROLE``), so row-level security and the application's grants apply even
    when the process logs in as a more privileged user; None uses the login as it is. ``materialize``:
    ``"request"`` (default) queues the fetch for the workers (``crm.request_materialization``, no CRM token
    needed); ``"now"`` fetches the record at once through the index's CRM clients (a trusted process holding the
    key ring, with a worker login).
    """

    def __init__(
        self,
        index: CrmIndex,
        org_id: uuid.UUID | str,
        *,
        toolset: Toolset | None = None,
        actor: str = "copilot",
        user_id: uuid.UUID | None = None,
        app_role: str | None = "crm_app",
        materialize: MaterializeMode = "request",
    ) -> None:
        if materialize not in ("request", "now"):
            raise InvalidInputError("materialize is 'request' or 'now'")
        if not actor or len(actor) > 200 or text_problem(actor) is not None:
            raise InvalidInputError("actor must be 1 to 200 characters of text")
        self.context = ToolContext(
            index=index,
            org_id=_org_uuid(org_id),
            actor=actor,
            user_id=user_id,
            app_role=app_role,
            materialize=materialize,
        )
        self.toolset = TOOLS if toolset is None else toolset

    def __repr__(self) -> str:
        return f"ToolExecutor(org={self.org_id}, tools={self.toolset.names()})"

    @property
    def org_id(self) -> uuid.UUID:
        return self.context.org_id

    def for_org(self, org_id: uuid.UUID | str) -> ToolExecutor:
        """The same executor for another org (the caller's, from its authenticated context)."""
        other = ToolExecutor.__new__(ToolExecutor)
        other.context = replace(self.context, org_id=_org_uuid(org_id))
        other.toolset = self.toolset
        return other

    def org_exists(self) -> bool:
        """The org exists and this executor's session can see it."""
        with self.context.session() as conn:
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM crm.org WHERE org_id = %s)", (self.org_id,))
            found = row.fetchone()
        return bool(found and found[0])

    def definitions(self, fmt: Format = "openai") -> list[dict[str, Any]]:
        return self.toolset.render(fmt)

    def call(self, name: str, arguments: Mapping[str, Any] | str | bytes | None = None) -> ToolResult:
        """Validate ``arguments`` (a mapping, or the JSON text a model produced) for the tool ``name``, run it
        for this executor's org and return the JSON result or a typed error. Bad arguments change nothing."""
        tool = name if isinstance(name, str) and len(name) <= 64 and text_problem(name) is None else ""
        spec = self.toolset.get(tool) if tool else None
        if spec is None:
            return _failure(
                "",
                "unknown_tool",
                f"no tool named {str(name)[:64]!r}; the tools are: {', '.join(self.toolset.names())}",
            )
        parsed = _arguments(arguments)
        if isinstance(parsed, str):
            return _failure(spec.name, "invalid_arguments", parsed)
        named = sorted(k for k in parsed if isinstance(k, str) and k.lower() in ORG_KEYS)
        if named:
            return _failure(
                spec.name,
                "org_not_allowed",
                f"{', '.join(named)}: the org is set by the caller's session, never by tool arguments; "
                "leave it out (every action runs for the current org only)",
            )
        try:
            args = spec.args.model_validate(parsed)
        except ValidationError as exc:
            details = [
                {
                    "field": ".".join(str(p) for p in e["loc"]) or "(arguments)",
                    "problem": _clip(e["msg"], 300),
                }
                for e in exc.errors(include_url=False, include_input=False)[:20]
            ]
            return _failure(
                spec.name,
                "invalid_arguments",
                f"the arguments of {spec.name} are invalid: "
                + "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5]),
                details=details,
            )
        try:
            output = spec.run(self.context, args)
        except Exception as exc:  # every failure becomes a typed error: never a traceback or SQL text
            return _error_result(spec.name, exc)
        return ToolResult(spec.name, _json_object(output))


def _org_uuid(org_id: uuid.UUID | str) -> uuid.UUID:
    if isinstance(org_id, uuid.UUID):
        return org_id
    try:
        return uuid.UUID(str(org_id))
    except ValueError:
        raise InvalidInputError(f"org id must be a uuid, got {str(org_id)[:60]!r}") from None


def _arguments(arguments: Mapping[str, Any] | str | bytes | None) -> dict[str, Any] | str:
    """The arguments as a dict, or why they are not a JSON object."""
    if arguments is None:
        return {}
    if isinstance(arguments, str | bytes):
        if len(arguments) > PAYLOAD_CAP:
            return f"the arguments are larger than {PAYLOAD_CAP} bytes"
        try:
            arguments = json.loads(arguments or "{}")
        except (ValueError, UnicodeDecodeError) as exc:
            return f"the arguments are not valid JSON ({str(exc)[:120]})"
    if not isinstance(arguments, Mapping):
        return f"the arguments must be a JSON object, not {type(arguments).__name__}"
    if not all(isinstance(k, str) for k in arguments):
        return "the arguments' keys must be strings"
    return dict(arguments)


def _json_object(output: ToolOutput) -> dict[str, Any]:
    value = output.model_dump(mode="json") if isinstance(output, BaseModel) else to_jsonable_python(output)
    if not isinstance(value, dict):
        value = {"result": value}
    return cast(dict[str, Any], value)


def _error_result(tool: str, exc: Exception) -> ToolResult:
    if isinstance(exc, InvalidInputError | InvalidRowError):
        return _failure(tool, "invalid_input", str(exc))
    if isinstance(exc, NotFoundError):
        return _failure(tool, "not_found", str(exc))
    if isinstance(exc, OrgMismatchError):
        return _failure(tool, "org_mismatch", "this session is bound to another org")
    if isinstance(exc, _Misconfigured):
        log.error("tool %s: %s", tool, exc)
        return _failure(tool, "permission_denied", str(exc))
    if isinstance(exc, CrmError):
        return _failure(tool, "crm_error", str(exc))
    if isinstance(exc, CrmIndexError):
        return _failure(tool, "failed", str(exc))
    if isinstance(exc, psycopg.OperationalError | PoolTimeout):
        reference = uuid.uuid4().hex[:12]
        log.error("tool %s [%s]: the database is unavailable: %s", tool, reference, type(exc).__name__)
        return _failure(tool, "unavailable", "the index is unavailable right now; try again shortly",
                        reference=reference)  # fmt: skip
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        reference = uuid.uuid4().hex[:12]
        log.error("tool %s [%s]: permission denied: %s", tool, reference, exc.diag.message_primary)
        return _failure(
            tool, "permission_denied", "this deployment's database role may not do that", reference=reference
        )
    reference = uuid.uuid4().hex[:12]
    log.exception("tool %s failed [%s]", tool, reference)
    return _failure(
        tool, "internal_error", f"the tool failed unexpectedly (reference {reference})", reference=reference
    )


# ------------------------------------------------------------------------------------------------ arguments
def _check_ref(value: int | str) -> int | str:
    if isinstance(value, bool):
        raise ValueError("a contact reference is an index id, a CRM record id or an email")
    if isinstance(value, int):
        if not 1 <= value < 2**63:
            raise ValueError("an index id is a positive integer")
        return value
    value = value.strip()
    if not value:
        raise ValueError("a contact reference must not be empty")
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"a contact reference {problem}")
    return value


ContactRef = Annotated[
    Annotated[int, Field(ge=1, lt=2**63)] | Annotated[str, Field(min_length=1, max_length=EMAIL_CAP)],
    AfterValidator(_check_ref),
    Field(
        description="the contact: an index id (the `id` of a search hit, as a number or '#123'), a CRM record "
        "id, or an email address",
    ),
]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchContactsArgs(SearchParams):
    """The index search's parameters (:class:`crmindex.index.search.SearchParams`), with the cursor bounded."""

    after: str | None = Field(
        None, max_length=100, description="the cursor of the last result of the previous page"
    )

    @model_validator(mode="after")
    def _bounded(self) -> SearchContactsArgs:
        if self.filters is not None:
            check_json("filters", self.filters.model_dump(mode="json", exclude_none=True), PAYLOAD_CAP)
        return self


OneOrMore = (
    list[Annotated[str, Field(max_length=TEXT_CAP)]] | Annotated[str, Field(max_length=TEXT_CAP)] | None
)


class CompanyFilters(_Args):
    """Structured company filters (crm.search_companies); list fields accept one value or several (any of)."""

    industry: OneOrMore = Field(None, description="HubSpot industry value, e.g. BANKING, COMPUTER_SOFTWARE")
    industry_group: OneOrMore = Field(None, description="industry group, e.g. fintech, healthcare, software")
    company: OneOrMore = Field(None, description="company name (words, typos tolerated)")
    company_domain: OneOrMore = Field(None, description="website domain, e.g. stripe.com")
    domain: OneOrMore = Field(None, description="website domain (same as company_domain)")
    country: OneOrMore = Field(None, description="country as the CRM stores it")
    # issue 17: the filters a copilot asks for (crm.search_filter_types('companies'))
    location: OneOrMore = Field(
        None, description="country (name or ISO code), region (Europe, DACH), state or city"
    )
    employees_min: int | None = Field(None, ge=0, le=10**9, description="at least this many employees")
    employees_max: int | None = Field(None, ge=0, le=10**9, description="at most this many employees")
    revenue_min: float | None = Field(None, ge=0, le=1e15, description="annual revenue at least this")
    revenue_max: float | None = Field(None, ge=0, le=1e15, description="annual revenue at most this")
    owner: OneOrMore = Field(None, description="owner in the CRM: id, email, full, first or last name")
    has_active_deal: bool | None = Field(None, description="the company has an open deal")
    created_after: str | None = Field(
        None, max_length=40, description="created at or after this ISO date/time"
    )
    created_before: str | None = Field(None, max_length=40, description="created before this ISO date/time")
    list: OneOrMore = Field(None, description="an Attio list (pipeline) the company is in: id, slug or name")
    list_stage: OneOrMore = Field(None, description="the stage of its entry in that list: label or id")
    is_materialized: bool | None = Field(None, description="the full record is stored locally")
    updated_since: str | None = Field(
        None, max_length=40, description="changed in the CRM since this ISO date or timestamp"
    )


class SearchCompaniesArgs(_Args):
    query: str = Field(
        "", max_length=QUERY_CAP, description="company name words (typos tolerated) or a domain, e.g. 'acme'"
    )
    filters: CompanyFilters | None = Field(None, description="structured filters, all optional")
    limit: int = Field(20, ge=1, le=200, description="maximum number of results")
    after: str | None = Field(
        None, max_length=100, description="the cursor of the last result of the previous page"
    )

    @model_validator(mode="after")
    def _bounded(self) -> SearchCompaniesArgs:
        if self.filters is not None:
            check_json("filters", self.filters.model_dump(mode="json", exclude_none=True), PAYLOAD_CAP)
        return self


class ResolveContactArgs(_Args):
    text: str = Field(
        min_length=1,
        max_length=QUERY_CAP,
        description="how the user referred to the person: 'Stan from Acme', a full name, an email",
    )
    limit: int = Field(5, ge=1, le=20, description="maximum number of candidates")


class MaterializeContactArgs(_Args):
    contact: ContactRef


def _field(cap: int, description: str) -> Any:
    return Field(None, max_length=cap, description=description)


class ContactFields(_Args):
    """The contact fields a copilot may set: ``crm.writeback_contact_columns()`` of sql/writeback/enqueue.sql
    (tests/test_tools.py checks the two lists agree)."""

    first_name: str | None = _field(TEXT_CAP, "first name")
    last_name: str | None = _field(TEXT_CAP, "last name")
    email: str | None = _field(EMAIL_CAP, "email address")
    phone: str | None = _field(TEXT_CAP, "phone number")
    company_name: str | None = _field(TEXT_CAP, "company name as shown on the contact")
    job_title: str | None = _field(TEXT_CAP, "job title")
    lifecycle_stage: str | None = _field(
        TEXT_CAP, "lifecycle stage, e.g. subscriber, lead, mql, sql, opportunity, customer"
    )
    lead_status: str | None = _field(TEXT_CAP, "lead status, e.g. NEW, OPEN, IN_PROGRESS, CONNECTED")

    @field_validator("*")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        problem = None if value is None else text_problem(value)
        if problem is not None:
            raise ValueError(f"the value {problem}")
        return value

    def given(self) -> dict[str, str]:
        """The fields set (a null is 'leave as is'; an empty string clears the field)."""
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if isinstance(v, str)}


class UpdateContactArgs(_Args):
    contact: ContactRef
    fields: ContactFields = Field(
        description="the new values; leave out (or null) what does not change, an empty string clears a field"
    )

    @model_validator(mode="after")
    def _some(self) -> UpdateContactArgs:
        if not self.fields.given():
            raise ValueError("fields: give at least one field to change")
        return self


class CreateContactArgs(_Args):
    fields: ContactFields = Field(
        description="the new contact; `email` is required (it is the idempotency key)"
    )
    crm: Literal["hubspot", "attio"] | None = Field(
        None, description="the CRM to create it in; needed only when the org has connected both"
    )

    @model_validator(mode="after")
    def _email(self) -> CreateContactArgs:
        email = (self.fields.email or "").strip().lower()
        if not email:
            raise ValueError("fields.email is required: a new contact is matched by its email")
        if not is_email(email):
            raise ValueError("fields.email is not an email address")
        return self


class NoArgs(_Args):
    pass


RecordRef = Annotated[int, Field(ge=1, lt=2**63)] | Annotated[str, Field(min_length=1, max_length=EMAIL_CAP)]


class DealFields(_Args):
    name: str | None = Field(None, min_length=1, max_length=TEXT_CAP, description="the deal's name")
    stage: str | None = Field(
        None,
        min_length=1,
        max_length=TEXT_CAP,
        description="the stage's label as users see it ('Negotiation', 'Contract Sent') or its id",
    )
    amount: float | None = Field(None, ge=0, lt=1e15, description="the deal's value")
    close_date: str | None = Field(None, max_length=10, description="YYYY-MM-DD (HubSpot)")


class UpdateDealArgs(_Args):
    deal: RecordRef = Field(description="the deal: an index id (a search hit's `id`, '#12') or CRM record id")
    fields: DealFields = Field(description="the new values; leave out what does not change")

    @model_validator(mode="after")
    def _some(self) -> UpdateDealArgs:
        if not self.fields.model_dump(exclude_none=True):
            raise ValueError("fields: give at least one field to change")
        return self


class CompanyFields(_Args):
    name: str | None = Field(None, min_length=1, max_length=TEXT_CAP, description="the company's name")
    domain: str | None = Field(None, min_length=1, max_length=TEXT_CAP, description="its domain (acme.com)")


class UpdateCompanyArgs(_Args):
    company: RecordRef = Field(description="the company: an index id, its CRM record id or its domain")
    fields: CompanyFields = Field(description="the new values; leave out what does not change")


class CreateCompanyArgs(_Args):
    fields: CompanyFields = Field(description="the new company; `domain` is required (the idempotency key)")
    crm: Literal["hubspot", "attio"] | None = Field(
        None, description="the CRM to create it in; needed only when the org has connected both"
    )


class AssociateArgs(_Args):
    action: Literal["associate", "disassociate"] = Field("associate", description="link them, or unlink them")
    record_type: Literal["contact", "company", "deal"] = Field(description="the first record's kind")
    record: RecordRef = Field(description="the first record (an index id, CRM record id, email or domain)")
    other_type: Literal["contact", "company", "deal"] = Field(description="the second record's kind")
    other: RecordRef = Field(description="the second record (an index id, CRM record id, email or domain)")


class NewDealFields(_Args):
    name: str = Field(min_length=1, max_length=TEXT_CAP, description="its name (with its pipeline: its key)")
    stage: str | None = Field(None, min_length=1, max_length=TEXT_CAP, description="a stage label or id")
    pipeline: str | None = Field(None, min_length=1, max_length=TEXT_CAP, description="a pipeline label / id")
    amount: float | None = Field(None, ge=0, lt=1e15, description="the deal's value")
    close_date: str | None = Field(None, max_length=10, description="YYYY-MM-DD (HubSpot)")


class CreateDealArgs(_Args):
    fields: NewDealFields = Field(description="the new deal")
    crm: Literal["hubspot", "attio"] | None = Field(
        None, description="the CRM to create it in; needed only when the org has connected both"
    )


class LogActivityArgs(_Args):
    kind: Literal["note", "call", "meeting", "email", "task"] = Field(description="what to log")
    record_type: Literal["contact", "company", "deal"] = Field(
        "contact", description="the kind of record to log it on"
    )
    record: RecordRef = Field(
        description="the record: an index id (a search hit's `id`, as a number or '#123'), a CRM record id, "
        "a contact's email or a company's domain"
    )
    body: str = Field("", max_length=60_000, description="the text (call notes, meeting notes, the email...)")
    subject: str | None = Field(None, max_length=TEXT_CAP, description="a title / subject line")
    occurred_at: AwareDatetime | None = Field(
        None, description="when it happened (a task: when it is due), ISO 8601 with a time zone; default now"
    )


# ------------------------------------------------------------------------------------------------ the tools
TOOLS = Toolset()


@TOOLS.tool(
    "search_contacts",
    SearchContactsArgs,
    search_tool_schema()["description"],
    read_only=True,
    title="Search contacts",
)
def _search_contacts(ctx: ToolContext, args: SearchContactsArgs) -> ToolOutput:
    with ctx.session() as conn:
        return run_search_params(conn, ctx.org_id, args)


@TOOLS.tool(
    "search_companies",
    SearchCompaniesArgs,
    "Search every company of the connected CRM by name (typos tolerated) or domain, with optional filters "
    "(industry, industry_group, company_domain, country, location, employees, revenue, owner, created dates, "
    "Attio list and stage, is_materialized, updated_since). Results carry a "
    "score and a cursor; pass the last cursor as `after` for the next page.",
    read_only=True,
    title="Search companies",
)
def _search_companies(ctx: ToolContext, args: SearchCompaniesArgs) -> ToolOutput:
    filters = None if args.filters is None else args.filters.model_dump(exclude_none=True)
    with ctx.session() as conn:
        return search_companies(conn, ctx.org_id, args.query, filters, limit=args.limit, after=args.after)


@TOOLS.tool(
    "resolve_contact",
    ResolveContactArgs,
    "Work out who the user means ('Stan from Acme', a name, an email): candidate contacts best first, each with "
    "a score from 0 to 1 and the reason it matched. Use the chosen candidate's `id` as `contact` in other tools.",
    read_only=True,
    title="Resolve a contact",
)
def _resolve_contact(ctx: ToolContext, args: ResolveContactArgs) -> ToolOutput:
    with ctx.session() as conn:
        return {"candidates": resolve_contact(conn, ctx.org_id, args.text, args.limit)}


@TOOLS.tool(
    "materialize_contact",
    MaterializeContactArgs,
    "Get a contact's full CRM record (every property) stored locally, e.g. before a meeting or an email. "
    "Depending on the deployment it is fetched now (the record is returned) or queued for the background "
    "workers (outcome 'queued'; the record appears within moments).",
    title="Fetch a contact's full record",
)
def _materialize_contact(ctx: ToolContext, args: MaterializeContactArgs) -> ToolOutput:
    if ctx.materialize == "now":
        return ctx.index.materialize(ctx.org_id, args.contact, reason="copilot", actor=ctx.actor)
    with ctx.session() as conn:
        queued = request_materialization(conn, ctx.org_id, [args.contact], reason="copilot", actor=ctx.actor)
    return {"outcome": "queued", "queued": queued}


@TOOLS.tool(
    "update_contact",
    UpdateContactArgs,
    "Change a contact's fields (name, email, phone, company name, job title, lifecycle stage, lead status). "
    "The index shows the new values at once and the change is queued for the CRM, where it lands within "
    "moments; the result carries the write-back job and the CRM payload.",
    title="Update a contact",
)
def _update_contact(ctx: ToolContext, args: UpdateContactArgs) -> ToolOutput:
    with ctx.session() as conn:
        return update_contact(
            conn, ctx.org_id, args.contact, args.fields.given(), triggered_by="copilot", user_id=ctx.user_id
        )


def _create_target(conn: Conn, ctx: ToolContext, requested: Source | None) -> Source:
    """The CRM a create goes to: the one asked for (it must be connected), else the org's only connected CRM."""
    connected: list[Source] = sorted({c.crm_source for c in list_connections(conn, ctx.org_id)})
    if requested is not None and requested not in connected:
        raise InvalidInputError(
            f"this org has no {requested} connection (connected: {', '.join(connected) or 'none'})"
        )
    if requested is None and len(connected) != 1:
        raise InvalidInputError(
            "this org has no connected CRM"
            if not connected
            else f"this org has connected {' and '.join(connected)}: say which one in `crm`"
        )
    return requested or connected[0]


@TOOLS.tool(
    "create_contact",
    CreateContactArgs,
    "Create a contact in the CRM (queued; it lands within moments and then appears in searches). Matched by "
    "email: creating the same email twice makes one contact.",
    title="Create a contact",
)
def _create_contact(ctx: ToolContext, args: CreateContactArgs) -> ToolOutput:
    with ctx.session() as conn:
        source = _create_target(conn, ctx, args.crm)
        return create_contact(conn, ctx.org_id, source, args.fields.given(), user_id=ctx.user_id)


@TOOLS.tool(
    "org_status",
    NoArgs,
    "The state of this org's CRM index: connected CRMs and their health, how many contacts, companies and deals "
    "are indexed and stored in full, the sync's progress, the last webhook, and the write-back queue (pending "
    "changes, failures).",
    read_only=True,
    title="Index status",
)
def _org_status(ctx: ToolContext, args: NoArgs) -> ToolOutput:
    with ctx.session() as conn:
        status = org_status(conn, ctx.org_id)
    return status.model_dump(mode="json", exclude={"limiters"})


@TOOLS.tool(
    "log_activity",
    LogActivityArgs,
    "Log a note, call, meeting, email or task on a contact, company or deal in the CRM (queued; it lands on "
    "the record's timeline within moments, once even if the CRM call is retried). Use it for 'log this call on "
    "Stan's record' or 'remind me to send the contract on Friday' (a task due then).",
    title="Log an activity",
)
def _log_activity(ctx: ToolContext, args: LogActivityArgs) -> ToolOutput:
    with ctx.session() as conn:
        return log_activity(
            conn,
            ctx.org_id,
            args.kind,
            args.record_type,
            args.record,
            args.body,
            subject=args.subject,
            occurred_at=args.occurred_at,
            user_id=ctx.user_id,
        )


@TOOLS.tool(
    "update_deal",
    UpdateDealArgs,
    "Change a deal: move it to another stage by the stage's name ('move the Acme deal to Negotiation'), rename "
    "it, set its amount or close date. The index shows it at once; the change is queued for the CRM.",
    title="Update a deal",
)
def _update_deal(ctx: ToolContext, args: UpdateDealArgs) -> ToolOutput:
    with ctx.session() as conn:
        fields = args.fields.model_dump(exclude_none=True)
        return update_deal(conn, ctx.org_id, args.deal, fields, user_id=ctx.user_id)


@TOOLS.tool(
    "update_company",
    UpdateCompanyArgs,
    "Change a company's name or domain. The index shows it at once; the change is queued for the CRM.",
    title="Update a company",
)
def _update_company(ctx: ToolContext, args: UpdateCompanyArgs) -> ToolOutput:
    fields = args.fields.model_dump(exclude_none=True)
    with ctx.session() as conn:
        return update_company(conn, ctx.org_id, args.company, fields, user_id=ctx.user_id)


@TOOLS.tool(
    "create_company",
    CreateCompanyArgs,
    "Create a company in the CRM (queued). Matched by domain: creating the same domain twice makes one company.",
    title="Create a company",
)
def _create_company(ctx: ToolContext, args: CreateCompanyArgs) -> ToolOutput:
    with ctx.session() as conn:
        source = _create_target(conn, ctx, args.crm)
        fields = args.fields.model_dump(exclude_none=True)
        return create_company(conn, ctx.org_id, source, fields, user_id=ctx.user_id)


@TOOLS.tool(
    "associate",
    AssociateArgs,
    "Link (or unlink) two CRM records: a contact and a company ('Jane works at Acme'), a contact and a deal "
    "('add Jane to the Acme deal'), a company and a deal. The index shows it at once; the change is queued.",
    title="Associate records",
)
def _associate(ctx: ToolContext, args: AssociateArgs) -> ToolOutput:
    with ctx.session() as conn:
        return associate(
            conn,
            ctx.org_id,
            args.record_type,
            args.record,
            args.other_type,
            args.other,
            remove=args.action == "disassociate",
            user_id=ctx.user_id,
        )


@TOOLS.tool(
    "create_deal",
    CreateDealArgs,
    "Create a deal in the CRM (queued), in a stage given by its label. Matched by name in its pipeline: creating "
    "the same deal twice makes one deal.",
    title="Create a deal",
)
def _create_deal(ctx: ToolContext, args: CreateDealArgs) -> ToolOutput:
    with ctx.session() as conn:
        source = _create_target(conn, ctx, args.crm)
        fields = args.fields.model_dump(exclude_none=True)
        return create_deal(conn, ctx.org_id, source, fields, user_id=ctx.user_id)


__all__ = [
    "ORG_KEYS",
    "TOOLS",
    "ContactFields",
    "ContactRef",
    "ToolContext",
    "ToolError",
    "ToolExecutor",
    "ToolResult",
    "ToolSpec",
    "Toolset",
    "json_schema",
]
