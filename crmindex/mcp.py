"""The copilot's tools over the Model Context Protocol (the official ``mcp`` Python SDK, extra ``crmindex[mcp]``).

``crmindex mcp --org ORG`` serves every tool of :data:`crmindex.tools.TOOLS` on stdio for one org: the org is the
operator's binding (the command line), never a model's argument. A tool call is validated and run by the same
:class:`~crmindex.tools.ToolExecutor` a Python copilot uses; its JSON result is returned both as text content and
as structured content, and a failure as a result with ``isError`` and the typed error object, so the model can
read it and correct itself. Nothing but the protocol goes to stdout (the server's log goes to stderr).

An MCP client configuration (Claude Desktop, an agent framework ...)::

    {"command": "crmindex", "args": ["mcp", "--org", "<org uuid>"],
     "env": {"DATABASE_URL": "postgresql://copilot@db/crm"}}
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import anyio
import anyio.to_thread
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

from crmindex.tools import ToolExecutor, ToolResult

INSTRUCTIONS = (
    "crmindex: search and update the organization's whole CRM (HubSpot or Attio) through its Postgres index. "
    "Find people with search_contacts (plain-language queries are interpreted) or resolve_contact ('Stan from "
    "Acme'); use a result's `id` as `contact` in the other tools. Writes show in the index at once and reach "
    "the CRM within moments. Every call acts on this server's organization only."
)


def build_server(executor: ToolExecutor, *, name: str = "crmindex") -> Server[Any]:
    """An MCP server (the SDK's low-level :class:`mcp.server.Server`) listing and running ``executor``'s tools."""
    tools = [types.Tool.model_validate(entry) for entry in executor.toolset.mcp()]

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        # the executor is synchronous (psycopg, the CRM clients): run it on a worker thread
        result = await anyio.to_thread.run_sync(executor.call, params.name, params.arguments or {})
        return call_result(result)

    return Server(
        name,
        version=_version(),
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _version() -> str:
    try:
        return importlib.metadata.version("crmindex")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was not installed
        return ""


def call_result(result: ToolResult) -> types.CallToolResult:
    """A tool's outcome as MCP's ``CallToolResult``: the JSON as text and as structured content."""
    return types.CallToolResult(
        content=[types.TextContent(text=result.text())],
        structured_content=result.content,
        is_error=result.is_error,
    )


def serve_stdio(executor: ToolExecutor) -> None:
    """Serve the tools on stdin/stdout until the client closes the connection."""
    server = build_server(executor)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)
