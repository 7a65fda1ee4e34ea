"""The copilot's tools (crmindex/tools.py): definitions that render to the LLM APIs' shapes and validate as JSON
schema, and one executor that validates arguments, binds the org from the caller (never the model), runs the
actions against a real database and answers JSON or a typed error, changing nothing on bad input."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import mcp.types
import psycopg
import pytest
from pydantic import BaseModel, ConfigDict, Field

from crmindex.app import CrmIndex
from crmindex.index.writes import CompanyRow, ContactRow, ensure_org, upsert_companies, upsert_contacts
from crmindex.platform.bounds import EMAIL_CAP, TEXT_CAP
from crmindex.platform.sqlconst import sql_texts
from crmindex.testing.connections import connect_with_token
from crmindex.tools import (
    ORG_KEYS,
    TOOLS,
    ContactFields,
    ToolContext,
    ToolExecutor,
    Toolset,
    ToolSpec,
)
from tests.orgs import ORG_A, ORG_B
from tests.tenancy.helpers import (
    B_EMAIL,
    ID_BASE_B,
    PREFIX,
    assert_nothing_of_b,
    identity_tables,
    read_facts,
    seed_org,
    snapshot,
)

Conn = psycopg.Connection[Any]
TODAY = ["search_contacts", "search_companies", "resolve_contact", "materialize_contact", "update_contact",
         "create_contact", "org_status"]  # fmt: skip


# ------------------------------------------------------------------------------------------------ definitions
def _walk(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_action_of_today_is_a_tool() -> None:
    assert TOOLS.names()[: len(TODAY)] == TODAY
    assert {s.name for s in TOOLS if s.read_only} >= {"search_contacts", "search_companies", "resolve_contact",
                                                      "org_status"}  # fmt: skip
    assert not any(s.read_only for s in TOOLS if s.name in ("update_contact", "create_contact"))


@pytest.mark.parametrize("spec", list(TOOLS), ids=lambda s: s.name)
def test_each_schema_is_one_self_contained_strict_object_schema(spec: ToolSpec[Any]) -> None:
    schema = spec.input_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object" and isinstance(schema["properties"], dict)
    assert schema["additionalProperties"] is False
    nodes = list(_walk(schema))
    assert not any("$ref" in n or "$defs" in n for n in nodes)  # inlined: every client takes it
    objects = [n for n in nodes if n.get("type") == "object"]
    assert all(n.get("additionalProperties") is False for n in objects), "a nested object takes unknown keys"
    assert not set(schema["properties"]) & ORG_KEYS  # no tool lets a model name an org
    strings = [n for n in nodes if n.get("type") == "string" and "enum" not in n and "format" not in n]
    # every free text is bounded (the search filters of crmindex.index.search are capped by the SQL instead)
    unbounded = [n for n in strings if "maxLength" not in n]
    if spec.name != "search_contacts":
        assert unbounded == []
    assert 0 < len(spec.description) <= 1024


def test_the_tools_render_in_the_shapes_of_openai_anthropic_and_mcp() -> None:
    chat, responses, anthropic, mcp_tools = (
        TOOLS.openai(),
        TOOLS.openai_responses(),
        TOOLS.anthropic(),
        TOOLS.mcp(),
    )
    assert len(chat) == len(responses) == len(anthropic) == len(mcp_tools) == len(TOOLS)
    for c, r, a, m, spec in zip(chat, responses, anthropic, mcp_tools, TOOLS, strict=True):
        schema = spec.input_schema()
        assert c == {"type": "function", "function": {"name": spec.name, "description": spec.description,
                                                      "parameters": schema}}  # fmt: skip
        assert r == {"type": "function", "name": spec.name, "description": spec.description, "parameters": schema,
                     "strict": False}  # fmt: skip
        assert a == {"name": spec.name, "description": spec.description, "input_schema": schema}
        assert m["name"] == spec.name and m["inputSchema"] == schema
        assert m["annotations"]["readOnlyHint"] is spec.read_only
        # the SDK's own model of a tools/list entry takes it, and gives back the same wire form
        tool = mcp.types.Tool.model_validate(m)
        assert tool.input_schema == schema
        assert tool.model_dump(by_alias=True, exclude_none=True)["inputSchema"] == schema
    json.dumps([chat, responses, anthropic, mcp_tools])  # all plain JSON
    assert TOOLS.render("anthropic") == anthropic
    with pytest.raises(ValueError, match="unknown tool format"):
        TOOLS.render("gemini")  # type: ignore[arg-type]


GOOD = [
    ("search_contacts", {"query": "vps at fintech companies"}),
    (
        "search_contacts",
        {
            "query": "stan",
            "filters": {"seniority": ["vp", "director"], "has_active_deal": True},
            "limit": 5,
            "after": "0.5:12",
        },
    ),
    ("search_companies", {"query": "acme", "filters": {"industry": "BANKING", "country": ["US", "DE"]}}),
    ("resolve_contact", {"text": "Stan from Acme", "limit": 3}),
    ("materialize_contact", {"contact": 12}),
    ("materialize_contact", {"contact": "stan@acme.com"}),
    ("update_contact", {"contact": "#12", "fields": {"lifecycle_stage": "sql", "phone": ""}}),
    ("create_contact", {"fields": {"email": "new@acme.com", "first_name": "New"}, "crm": "hubspot"}),
    ("org_status", {}),
]
BAD = [
    ("search_contacts", {"query": "x", "bogus": 1}),
    ("search_contacts", {"filters": {"seniority": "emperor"}}),
    ("search_contacts", {"limit": 0}),
    ("search_contacts", {"after": "9" * 101}),
    ("search_companies", {"filters": {"org_id": "x"}}),
    ("search_companies", {"query": "x" * 70_000}),
    ("resolve_contact", {}),
    ("resolve_contact", {"text": "stan", "limit": 21}),
    ("materialize_contact", {"contact": 0}),
    ("materialize_contact", {"contact": "x" * (EMAIL_CAP + 1)}),
    ("update_contact", {"contact": "#1", "fields": {"owner": "me"}}),
    ("update_contact", {"contact": "#1", "fields": {"job_title": "x" * (TEXT_CAP + 1)}}),
    ("update_contact", {"fields": {"job_title": "CEO"}}),
    ("create_contact", {"fields": {"email": "a@b.co"}, "crm": "salesforce"}),
    ("org_status", {"verbose": True}),
]


@pytest.mark.parametrize(("name", "arguments"), GOOD + BAD, ids=lambda v: v if isinstance(v, str) else "")
def test_the_json_schema_and_the_model_agree(name: str, arguments: dict[str, Any]) -> None:
    spec = TOOLS.get(name)
    assert spec is not None
    schema_ok = jsonschema.Draft202012Validator(spec.input_schema()).is_valid(arguments)
    try:
        spec.args.model_validate(arguments)
        model_ok = True
    except ValueError:
        model_ok = False
    assert model_ok == schema_ok == ((name, arguments) in GOOD)


def test_the_writable_contact_fields_are_the_sql_list() -> None:
    assert tuple(ContactFields.model_fields) == sql_texts(
        "writeback/enqueue.sql", "writeback_contact_columns"
    )


def test_a_tool_definition_must_refuse_unknown_keys_and_any_org_argument() -> None:
    class Loose(BaseModel):
        text: str = ""

    class WithOrg(BaseModel):
        model_config = ConfigDict(extra="forbid")
        org_id: str = ""

    class Fine(BaseModel):
        model_config = ConfigDict(extra="forbid")
        text: str = Field("", max_length=10)

    def run(ctx: ToolContext, args: BaseModel) -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="extra='forbid'"):
        ToolSpec("loose", "d", Loose, run)
    with pytest.raises(ValueError, match="never from an argument"):
        ToolSpec("with_org", "d", WithOrg, run)
    with pytest.raises(ValueError, match="must match"):
        ToolSpec("bad name!", "d", Fine, run)
    with pytest.raises(ValueError, match="longer than 1024"):
        ToolSpec("long", "d" * 1025, Fine, run)
    tools = Toolset([ToolSpec("fine", "d", Fine, run)])
    with pytest.raises(ValueError, match="exists already"):
        tools.add(ToolSpec("fine", "d", Fine, run))


def test_adding_a_tool_is_one_definition() -> None:
    """What H16A's write tools do: a model and a decorated function; every format and the executor pick it up."""
    tools = Toolset(list(TOOLS))

    class EchoArgs(BaseModel):
        model_config = ConfigDict(extra="forbid")
        text: str = Field(max_length=20, description="what to echo")

    @tools.tool("echo", EchoArgs, "Echo the text back, with the caller's org.", read_only=True)
    def _echo(ctx: ToolContext, args: EchoArgs) -> dict[str, Any]:
        return {"text": args.text, "org": ctx.org_id}

    assert tools.names()[-1] == "echo" and "echo" in tools and "echo" not in TOOLS
    assert tools.anthropic()[-1]["input_schema"]["required"] == ["text"]
    executor = ToolExecutor(None, ORG_A, toolset=tools)  # type: ignore[arg-type]  # echo needs no index
    assert executor.call("echo", {"text": "hi"}).content == {"text": "hi", "org": str(ORG_A)}
    assert executor.for_org(ORG_B).call("echo", '{"text": "hi"}').content["org"] == str(ORG_B)


# ------------------------------------------------------------------------------------------------ refusals
def _error(executor: ToolExecutor, name: str, arguments: Any) -> dict[str, Any]:
    result = executor.call(name, arguments)
    assert result.is_error, result.content
    assert result.error is not None
    assert list(result.content) == ["error"]
    json.loads(result.text())
    return result.content["error"]  # type: ignore[no-any-return]


def test_arguments_are_refused_before_anything_runs() -> None:
    executor = ToolExecutor(None, ORG_A)  # type: ignore[arg-type]  # nothing may reach the index
    assert _error(executor, "drop_everything", {})["code"] == "unknown_tool"
    assert "search_contacts" in _error(executor, "drop_everything", {})["message"]
    assert _error(executor, "search_contacts", "{not json")["code"] == "invalid_arguments"
    assert _error(executor, "search_contacts", "[1, 2]")["code"] == "invalid_arguments"
    assert _error(executor, "search_contacts", "x" * 70_000)["code"] == "invalid_arguments"
    err = _error(executor, "search_contacts", {"query": "x", "filterz": {}})
    assert err["code"] == "invalid_arguments" and err["details"] == [
        {"field": "filterz", "problem": "Extra inputs are not permitted"}
    ]
    err = _error(executor, "update_contact", {"contact": "#1", "fields": {"job_title": "x" * 5000}})
    assert err["code"] == "invalid_arguments" and err["details"][0]["field"] == "fields.job_title"
    assert "xxxx" not in json.dumps(err)  # the input is not echoed back
    err = _error(executor, "update_contact", {"contact": "#1", "fields": {}})
    assert "at least one field" in err["message"]
    err = _error(executor, "create_contact", {"fields": {"first_name": "No Email"}})
    assert "email is required" in err["message"]
    err = _error(executor, "update_contact", {"contact": "a\x00b", "fields": {"phone": "1"}})
    assert "NUL" in err["message"]


@pytest.mark.parametrize("key", ["org_id", "org", "ORG_ID", "tenant_id", "organization_id"])
def test_an_org_in_the_models_arguments_is_refused_by_name(key: str) -> None:
    executor = ToolExecutor(None, ORG_A)  # type: ignore[arg-type]
    err = _error(executor, "search_contacts", {"query": "stan", key: str(ORG_B)})
    assert err["code"] == "org_not_allowed"
    assert key in err["message"] and "caller" in err["message"]
    assert str(ORG_B) not in json.dumps(err)


def test_the_executor_takes_only_a_valid_binding() -> None:
    with pytest.raises(ValueError, match="org id must be a uuid"):
        ToolExecutor(None, "not-an-org")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="materialize"):
        ToolExecutor(None, ORG_A, materialize="sometimes")  # type: ignore[arg-type]
    executor = ToolExecutor(None, str(ORG_A))  # type: ignore[arg-type]
    assert executor.org_id == ORG_A and executor.for_org(str(ORG_B)).org_id == ORG_B
    assert executor.org_id == ORG_A  # for_org made another one


# ------------------------------------------------------------------------------------------------ a real database
T0 = "2025-01-01T00:00:00Z"


@pytest.fixture
def index(db: Conn, db_dsn: str) -> Iterator[CrmIndex]:
    ensure_org(db, ORG_A, "Org A")
    connect_with_token(db, None, ORG_A, "hubspot", None, account_id="4100", base_url="http://a.example")
    upsert_companies(db, ORG_A, "hubspot", [
        CompanyRow(crm_record_id="c1", name="Acme Payments", domain="acme.com", industry="FINANCIAL_SERVICES"),
    ])  # fmt: skip
    upsert_contacts(db, ORG_A, "hubspot", [
        ContactRow(crm_record_id="101", first_name="Stan", last_name="Lee", email="stan@acme.com",
                   job_title="VP of Sales", company_name="Acme Payments", company_crm_id="c1",
                   lifecycle_stage="lead", crm_updated_at=T0),
        ContactRow(crm_record_id="102", first_name="Jane", last_name="Doe", email="jane@acme.com",
                   job_title="Engineer", company_name="Acme Payments", company_crm_id="c1", crm_updated_at=T0),
    ])  # fmt: skip
    with CrmIndex(db_dsn, pool_size=2) as idx:
        yield idx


def _state(db: Conn) -> list[Any]:
    """Everything a tool may change (as the owner: every org)."""
    return [
        db.execute(
            f"SELECT md5(coalesce(string_agg(to_jsonb(t)::text, ',' ORDER BY to_jsonb(t)::text), '')) "
            f"FROM {table} AS t"
        ).fetchone()
        for table in (
            "crm.contact_index",
            "crm.contact_record",
            "crm.writeback_queue",
            "crm.job",
            "crm.activation_log",
            "crm.company_index",
        )
    ]


def test_search_resolve_and_update_run_against_the_database_and_answer_json(
    db: Conn, index: CrmIndex
) -> None:
    tools = ToolExecutor(index, ORG_A)
    found = tools.call("search_contacts", {"query": "vps at fintech companies"})
    assert not found.is_error, found.content
    assert [h["email"] for h in found.content["hits"]] == ["stan@acme.com"]
    assert found.content["interpretation"]["filters"]["seniority"] == ["vp"]
    assert json.loads(found.text()) == found.content
    filtered = tools.call("search_contacts", {"query": "jane", "filters": {"company_domain": "acme.com"}})
    assert [h["first_name"] for h in filtered.content["hits"]] == ["Jane"]
    companies = tools.call("search_companies", '{"query": "acme"}')
    assert [c["domain"] for c in companies.content["hits"]] == ["acme.com"]

    resolved = tools.call("resolve_contact", {"text": "Stan from Acme"})
    [best, *_] = resolved.content["candidates"]
    assert best["email"] == "stan@acme.com" and 0 < best["score"] <= 1 and best["reason"]

    updated = tools.call("update_contact", {"contact": best["id"], "fields": {"lifecycle_stage": "sql",
                                                                             "job_title": None}})  # fmt: skip
    assert not updated.is_error, updated.content
    assert updated.content["crm_record_id"] == "101"
    assert updated.content["payload"] == {"lifecyclestage": "salesqualifiedlead"}  # the null left the title
    row = db.execute(
        "SELECT lifecycle_stage, job_title FROM crm.contact_index WHERE org_id = %s AND crm_record_id = '101'",
        (ORG_A,),
    ).fetchone()
    assert row == ("sql", "VP of Sales")
    job = db.execute(
        "SELECT entity_type, operation, triggered_by FROM crm.writeback_queue WHERE id = %s",
        (updated.content["job_id"],),
    ).fetchone()
    assert job == ("contact", "update", "copilot")


def test_create_materialize_and_status_run_for_the_bound_org(db: Conn, index: CrmIndex) -> None:
    tools = ToolExecutor(index, ORG_A, actor="copilot-test")
    created = tools.call("create_contact", {"fields": {"email": "New@Acme.com", "first_name": "New"}})
    assert not created.is_error, created.content
    assert (
        created.content["crm_source"] == "hubspot" and created.content["payload"]["email"] == "new@acme.com"
    )
    queued = tools.call("materialize_contact", {"contact": "jane@acme.com"})
    assert queued.content["outcome"] == "queued"
    [job] = queued.content["queued"]
    assert job["crm_record_id"] == "102"
    assert db.execute("SELECT kind, org_id FROM crm.job WHERE id = %s", (job["job_id"],)).fetchone() == (
        "materialize",
        ORG_A,
    )
    status = tools.call("org_status", {})
    assert status.content["contacts_indexed"] == 2 and status.content["org_id"] == str(ORG_A)
    assert [c["crm_source"] for c in status.content["connections"]] == ["hubspot"]
    writebacks = next(q for q in status.content["queues"] if q["queue"] == "crm.writeback_queue")
    assert writebacks["by_status"] == {"pending": 1}


def test_the_session_is_bound_to_the_callers_org_as_the_application_role(index: CrmIndex, db: Conn) -> None:
    tools = Toolset(list(TOOLS))

    class NoArgs(BaseModel):
        model_config = ConfigDict(extra="forbid")

    @tools.tool("whoami", NoArgs, "d", read_only=True)
    def _whoami(ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
        with ctx.session() as conn:
            row = conn.execute("SELECT current_user, crm.current_org_id()").fetchone()
        assert row is not None
        return {"role": row[0], "org": row[1]}

    ensure_org(db, ORG_B, "Org B")
    a = ToolExecutor(index, ORG_A, toolset=tools)
    assert a.call("whoami").content == {"role": "crm_app", "org": str(ORG_A)}
    assert a.for_org(ORG_B).call("whoami").content == {"role": "crm_app", "org": str(ORG_B)}
    login = ToolExecutor(index, ORG_A, toolset=tools, app_role=None).call("whoami").content
    assert login["role"] != "crm_app" and login["org"] == str(ORG_A)
    with index.connection() as conn:  # the pooled connections went back unbound, as their login
        assert conn.execute("SELECT current_user = session_user, crm.current_org_id()").fetchone() == (
            True,
            None,
        )
    assert a.org_exists() and not a.for_org(uuid.uuid4()).org_exists()


@pytest.mark.parametrize(
    ("name", "arguments", "code"),
    [
        ("update_contact", {"contact": "nobody@acme.com", "fields": {"lifecycle_stage": "sql"}}, "not_found"),
        (
            "update_contact",
            {"contact": "stan@acme.com", "fields": {"email": "not-an-email"}},
            "invalid_input",
        ),
        ("update_contact", {"contact": "#999999", "fields": {"phone": "1"}}, "not_found"),
        (
            "update_contact",
            {"contact": "stan@acme.com", "fields": {"org_id": str(ORG_B)}},
            "invalid_arguments",
        ),
        (
            "update_contact",
            {"contact": "stan@acme.com", "org_id": str(ORG_B), "fields": {"phone": "1"}},
            "org_not_allowed",
        ),
        ("create_contact", {"fields": {"email": "x@acme.com"}, "crm": "attio"}, "invalid_input"),
        (
            "create_contact",
            {"fields": {"email": "x@acme.com", "lead_status": "x" * 1001}},
            "invalid_arguments",
        ),
        ("materialize_contact", {"contact": "nobody@acme.com"}, "not_found"),
        ("search_contacts", {"query": "x", "filters": {"industry": ["x" * 1001]}}, "invalid_input"),
        ("search_companies", {"filters": {"updated_since": "yesterday"}}, "invalid_input"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(
    db: Conn, index: CrmIndex, name: str, arguments: dict[str, Any], code: str
) -> None:
    before = _state(db)
    err = _error(ToolExecutor(index, ORG_A), name, arguments)
    assert err["code"] == code, err
    assert err["tool"] == name and err["message"]
    text = json.dumps(err)
    for leak in ("Traceback", "SELECT", "crm.", "psycopg", "CONTEXT", "PL/pgSQL"):
        assert leak not in text, text
    assert _state(db) == before


def test_unexpected_failures_are_logged_and_answer_only_a_reference(
    index: CrmIndex, caplog: pytest.LogCaptureFixture
) -> None:
    tools = Toolset()

    class NoArgs(BaseModel):
        model_config = ConfigDict(extra="forbid")

    @tools.tool("broken_sql", NoArgs, "d")
    def _broken_sql(ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
        with ctx.session() as conn:
            conn.execute("SELECT token FROM crm.no_such_table WHERE secret = 'hunter2'")
        return {}

    @tools.tool("forbidden", NoArgs, "d")
    def _forbidden(ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
        with ctx.session() as conn:  # crm_app may not read sealed secrets
            conn.execute("SELECT ciphertext FROM crm.connection_secret")
        return {}

    @tools.tool("crash", NoArgs, "d")
    def _crash(ctx: ToolContext, args: NoArgs) -> dict[str, Any]:
        raise RuntimeError("token=hunter2 at /srv/app.py line 3")

    executor = ToolExecutor(index, ORG_A, toolset=tools)
    with caplog.at_level(logging.ERROR, logger="crmindex.tools"):
        errors = {name: _error(executor, name, {}) for name in ("broken_sql", "forbidden", "crash")}
    assert errors["broken_sql"]["code"] == "internal_error"
    assert errors["forbidden"]["code"] == "permission_denied"
    assert errors["crash"]["code"] == "internal_error"
    for err in errors.values():
        text = json.dumps(err)
        assert err["reference"] in text and err["reference"] in caplog.text
        for leak in ("hunter2", "SELECT", "no_such_table", "connection_secret", "app.py", "Traceback"):
            assert leak not in text
    # the pool's connections survived the failures, unbound and as their login
    with index.connection() as conn:
        assert conn.execute("SELECT current_user = session_user, crm.current_org_id()").fetchone() == (
            True,
            None,
        )


def test_a_login_that_cannot_take_the_application_role_is_a_clear_error(index: CrmIndex) -> None:
    err = _error(ToolExecutor(index, ORG_A, app_role="crm_no_such_role"), "org_status", {})
    assert err["code"] == "permission_denied" and "crm_no_such_role" in err["message"]
    assert "SET ROLE" not in json.dumps(err)


# ------------------------------------------------------------------------------------------------ tenancy
@pytest.fixture
def two_orgs(db: Conn, db_dsn: str) -> Iterator[CrmIndex]:
    """Orgs A and B seeded into every table (tests/tenancy/helpers.py), B's ids from ID_BASE_B on."""
    seed_org(db, ORG_A)
    for table in identity_tables(db):
        db.execute(f"ALTER TABLE {table} ALTER COLUMN id RESTART WITH {ID_BASE_B}")
    seed_org(db, ORG_B)
    with CrmIndex(db_dsn, pool_size=2) as idx:
        yield idx


def test_the_executor_for_org_a_cannot_touch_org_b_whatever_the_model_passes(
    db: Conn, two_orgs: CrmIndex
) -> None:
    facts = read_facts(db)
    before = snapshot(db)
    b_refs: list[Any] = [B_EMAIL, f"{PREFIX[ORG_B]}1", f"#{facts.contact_ids[0]}", facts.contact_ids[0],
                         facts.record_id]  # fmt: skip
    tools = ToolExecutor(two_orgs, ORG_A)
    outcomes: list[tuple[Any, str]] = []  # (outcome, the reference the model gave: echoed in the error)
    for ref in b_refs:
        for name, arguments in (
            ("update_contact", {"contact": ref, "fields": {"lifecycle_stage": "customer"}}),
            ("materialize_contact", {"contact": ref}),
        ):
            outcome = tools.call(name, arguments)
            assert outcome.error is not None and outcome.error.code == "not_found", outcome.content
            outcomes.append((outcome, str(ref)))
    for name, arguments in (
        ("resolve_contact", {"text": B_EMAIL}),
        ("search_contacts", {"query": "Zenith", "filters": {"email": B_EMAIL}}),
        ("search_contacts", {"query": B_EMAIL}),
        ("search_companies", {"query": "zenith.io"}),
        ("org_status", {}),
    ):
        outcome = tools.call(name, arguments)
        assert not outcome.is_error, outcome.content
        outcomes.append((outcome, "\x00"))
    refused = tools.call("update_contact", {"contact": "stan@acme.com", "org_id": str(ORG_B),
                                            "fields": {"lifecycle_stage": "customer"}})  # fmt: skip
    assert refused.error is not None and refused.error.code == "org_not_allowed"
    outcomes.append((refused, "\x00"))
    for outcome, echoed in outcomes:
        assert_nothing_of_b(json.dumps(outcome.content).replace(echoed, "<ref>"), facts, what=outcome.tool)
    assert [h["email"] for h in tools.call("search_contacts", {"query": "stan"}).content["hits"]] == [
        "stan@acme.com"
    ]
    assert snapshot(db) == before
    # while the same refs of A's own contacts work
    mine = tools.call(
        "update_contact", {"contact": f"{PREFIX[ORG_A]}1", "fields": {"lifecycle_stage": "customer"}}
    )
    assert not mine.is_error, mine.content
    assert snapshot(db) == before


def test_materialize_now_fetches_the_full_record_from_the_crm(db: Conn, db_dsn: str) -> None:
    """``materialize="now"`` (a trusted process with the key ring): the record is fetched at once, for the
    executor's org only."""
    from crmindex.crm.http import RetryPolicy
    from crmindex.platform.secrets import SecretBox
    from crmindex.testing import FakeHubSpot
    from crmindex.testing.synthetic import SyntheticCRM

    crm = SyntheticCRM(seed=5, contacts=3)
    [first, *_] = list(crm.contacts())
    with FakeHubSpot(limits=False, tokens=["tools-token"]) as fake:
        fake.seed_from(crm)
        ensure_org(db, ORG_A, "Org A")
        ensure_org(db, ORG_B, "Org B")
        connect_with_token(db, SecretBox.from_env(), ORG_A, "hubspot", "tools-token", account_id="7001",
                           base_url=fake.base_url)  # fmt: skip
        upsert_contacts(db, ORG_A, "hubspot", [c.index_row() for c in crm.contacts()])  # type: ignore[arg-type]
        with CrmIndex(db_dsn, allowed_base_urls=[fake.base_url], retry=RetryPolicy.fast()) as idx:
            tools = ToolExecutor(idx, ORG_A, materialize="now", actor="tools-test")
            out = tools.call("materialize_contact", {"contact": first.crm_record_id})
            assert not out.is_error, out.content
            assert out.content["outcome"] == "materialized" and out.content["fetched"] is True
            record = out.content["record"]
            assert record["crm_record_id"] == first.crm_record_id and record["org_id"] == str(ORG_A)
            assert record["properties"]
            # org B has no such contact (and no connection): nothing is fetched for it
            fetches = len(fake.request_log)
            err = tools.for_org(ORG_B).call("materialize_contact", {"contact": first.crm_record_id})
            assert err.error is not None and err.error.code == "not_found"
            assert len(fake.request_log) == fetches
    assert db.execute(
        "SELECT count(*), min(actor) FROM crm.activation_log WHERE org_id = %s AND reason = 'copilot'",
        (ORG_A,),
    ).fetchone() == (1, "tools-test")
