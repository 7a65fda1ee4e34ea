"""The MCP server (crmindex/mcp.py, `crmindex mcp`): the SDK's own client lists the tools and runs them against a
real database, in process and over stdio to the command line; the org is the server's, never the model's."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import psycopg
import pytest
from mcp import Client, StdioServerParameters

from crmindex.app import CrmIndex
from crmindex.index.writes import ContactRow, ensure_org, upsert_contacts
from crmindex.mcp import build_server
from crmindex.tools import TOOLS, ToolExecutor
from tests.orgs import ORG_A, ORG_B

Conn = psycopg.Connection[Any]


@pytest.fixture
def seeded(db: Conn) -> Conn:
    for org, company in ((ORG_A, "acme.com"), (ORG_B, "zenith.io")):
        ensure_org(db, org, str(org)[:8])
        upsert_contacts(db, org, "hubspot", [
            ContactRow(crm_record_id="101", first_name="Stan", last_name="Lee", email=f"stan@{company}",
                       job_title="VP of Sales", company_name=company, crm_updated_at="2025-01-01T00:00:00Z"),
        ])  # fmt: skip
    return db


@pytest.fixture
def index(seeded: Conn, db_dsn: str) -> Iterator[CrmIndex]:
    with CrmIndex(db_dsn, pool_size=2) as idx:
        yield idx


async def _session(client: Client) -> dict[str, Any]:
    """What a copilot does over MCP: list the tools, search, resolve, write, and get refused."""
    listed = await client.list_tools()
    found = await client.call_tool("search_contacts", {"query": "vps named stan"})
    resolved = await client.call_tool("resolve_contact", {"text": "stan lee"})
    org_arg = await client.call_tool("search_contacts", {"query": "stan", "org_id": str(ORG_B)})
    bad = await client.call_tool("update_contact", {"contact": "stan@zenith.io", "fields": {"phone": "1"}})
    unknown = await client.call_tool("drop_everything", {})
    return {"listed": listed, "found": found, "resolved": resolved, "org_arg": org_arg, "bad": bad,
            "unknown": unknown}  # fmt: skip


def _check(out: dict[str, Any], domain: str) -> None:
    listed = out["listed"]
    assert [t.name for t in listed.tools] == TOOLS.names()
    assert {t.name: t.input_schema for t in listed.tools} == {s.name: s.input_schema() for s in TOOLS}
    assert {t.name for t in listed.tools if t.annotations and t.annotations.read_only_hint} >= {
        "search_contacts",
        "resolve_contact",
    }
    found = out["found"]
    assert not found.is_error
    assert [h["email"] for h in found.structured_content["hits"]] == [f"stan@{domain}"]
    assert found.structured_content["interpretation"]["filters"]["seniority"] == ["vp"]
    [text] = found.content
    assert f"stan@{domain}" in text.text
    assert out["resolved"].structured_content["candidates"][0]["email"] == f"stan@{domain}"
    for key, code in (("org_arg", "org_not_allowed"), ("unknown", "unknown_tool")):
        assert out[key].is_error and out[key].structured_content["error"]["code"] == code
    # org B's contact is not found from org A's server, whatever the model passes
    assert out["bad"].is_error and out["bad"].structured_content["error"]["code"] == "not_found"


def test_an_in_process_mcp_client_lists_the_tools_and_searches(seeded: Conn, index: CrmIndex) -> None:
    server = build_server(ToolExecutor(index, ORG_A))

    async def main() -> dict[str, Any]:
        async with Client(server, mode="legacy") as client:
            assert client.server_info is not None and client.server_info.name == "crmindex"
            return await _session(client)

    out = anyio.run(main)
    _check(out, "acme.com")
    before = seeded.execute("SELECT count(*) FROM crm.writeback_queue").fetchone()
    assert before == (0,)  # the refused write queued nothing


def test_the_modern_protocol_path_serves_the_same_tools(seeded: Conn, index: CrmIndex) -> None:
    server = build_server(ToolExecutor(index, ORG_B))

    async def main() -> dict[str, Any]:
        async with Client(server) as client:  # mode "auto": the SDK's per-request dispatch, no handshake
            return await _session(client)

    out = anyio.run(main)
    listed = out["listed"]
    assert [t.name for t in listed.tools] == TOOLS.names()
    hits = out["found"].structured_content["hits"]
    assert [h["email"] for h in hits] == ["stan@zenith.io"]  # org B's server sees B only


def test_crmindex_mcp_serves_the_tools_over_stdio_for_its_org(seeded: Conn, db_dsn: str) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "crmindex.cli", "mcp", "--org", str(ORG_A), "--dsn", db_dsn],
        env={
            k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")
        },
        cwd=os.getcwd(),
    )

    async def main() -> dict[str, Any]:
        with anyio.fail_after(120):
            async with Client(params, mode="legacy") as client:
                return await _session(client)

    out = anyio.run(main)
    _check(out, "acme.com")
    row = seeded.execute("SELECT count(*) FROM crm.writeback_queue").fetchone()
    assert row == (0,)


def test_crmindex_mcp_refuses_an_org_that_does_not_exist(
    seeded: Conn, db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from crmindex.cli import main

    assert main(["mcp", "--org", str(uuid.UUID(int=7)), "--dsn", db_dsn]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "does not exist" in captured.err
    assert main(["mcp", "--org", "not-a-uuid", "--dsn", db_dsn]) == 2


def test_an_mcp_client_logs_an_activity_that_lands_in_the_fake_crm(db: Conn, db_dsn: str) -> None:
    """Issue 16: the SDK's client runs search and log_activity; the drainer lands the note on the fake's record."""
    from crmindex.crm.clients import Clients
    from crmindex.crm.http import RetryPolicy
    from crmindex.testing import FakeHubSpot
    from crmindex.testing.connections import connect_with_token
    from crmindex.testing.synthetic import SyntheticCRM
    from crmindex.writeback.drainer import Drainer

    with FakeHubSpot(limits=False, tokens=["mcp-token"]) as fake:
        crm = SyntheticCRM(seed=5, contacts=3)
        fake.seed_from(crm)
        connect_with_token(db, None, ORG_A, "hubspot", "mcp-token", account_id="hs-m", base_url=fake.base_url)
        upsert_contacts(db, ORG_A, "hubspot", [c.index_row() for c in crm.contacts()])  # type: ignore[arg-type]
        target = crm.contact(0)
        with CrmIndex(db_dsn, pool_size=2) as idx:
            server = build_server(ToolExecutor(idx, ORG_A))

            async def main() -> tuple[Any, Any, Any]:
                async with Client(server, mode="legacy") as client:
                    listed = await client.list_tools()
                    found = await client.call_tool("search_contacts", {"query": target.email})
                    note = {
                        "kind": "note",
                        "record": target.email,
                        "body": "Wants a demo",
                        "subject": "Call recap",
                    }
                    logged = await client.call_tool("log_activity", note)
                    return listed, found, logged

            listed, found, logged = anyio.run(main)
        assert "log_activity" in [t.name for t in listed.tools]
        assert not found.is_error and found.structured_content["hits"][0]["email"] == target.email
        assert not logged.is_error, logged.structured_content
        assert logged.structured_content["crm_record_id"] == target.crm_record_id
        clients = Clients(db_dsn, retry=RetryPolicy.fast(max_attempts=2))
        try:
            assert Drainer(db_dsn, clients.writer, poll_s=0.2).run_once() == 1
        finally:
            clients.close()
        [note] = fake.engagements_on("contacts", target.crm_record_id)
        assert note["properties"]["hs_note_body"] == "Call recap\n\nWants a demo"
        assert note["associations"] == {"contacts": [target.crm_record_id]}
