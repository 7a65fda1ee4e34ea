"""The ``crmindex`` command line.

Exit codes: 0 success, 1 runtime failure (database/CRM), 2 usage error (bad arguments or input).
User mistakes print one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import psycopg

from crmindex.errors import CrmIndexError, InvalidInputError, InvalidRowError
from crmindex.status import terminal_text

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


# Every string the CLI prints that it did not write itself (CRM data, the CRM's error texts, echoed
# arguments) goes through this one escaper: control characters (CR, LF, ESC ...), bidirectional overrides and
# other unprintable characters are shown escaped, so they cannot break a line, rewrite the terminal or reorder
# what is shown. JSON output (--json) escapes them already (json.dumps, ensure_ascii).
_one_line = terminal_text


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors kept to one escaped line (it echoes the offending argument)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)}\n")


def _cmd_migrate(args: argparse.Namespace) -> int:
    from crmindex.platform.db import connect
    from crmindex.platform.migrate import migrate

    with connect(args.dsn) as conn:
        applied = migrate(
            conn,
            target=args.target,
            on_apply=lambda m: print(f"applied {m.version:04d}_{m.name} ({m.duration_ms} ms)", flush=True),
        )
    if not applied:
        print("schema crm is up to date; nothing to apply")
    return EXIT_OK


def _cmd_maintain(args: argparse.Namespace) -> int:
    from crmindex.index.maintain import Rebuilt, contact_index_indexes, reindex_contact_index
    from crmindex.platform.db import connect

    if not args.reindex:
        print("nothing to do: pass --reindex", file=sys.stderr)
        return EXIT_USAGE

    def mb(n: int) -> str:
        return f"{n / 1_048_576:,.1f} MB"

    def progress(done: int, total: int, r: Rebuilt) -> None:
        width = 20
        bar = "#" * (done * width // total) + "." * (width - done * width // total)
        print(
            f"[{bar}] {done}/{total} {r.index}: {mb(r.bytes_before)} -> {mb(r.bytes_after)} ({r.seconds:.1f} s)",
            flush=True,
        )

    with connect(args.dsn) as conn:
        if not args.quiet:
            count = len(contact_index_indexes(conn))
            print(f"rebuilding {count} indexes of crm.contact_index concurrently", flush=True)
        rebuilt = reindex_contact_index(conn, on_index=None if args.quiet else progress)
    before = sum(r.bytes_before for r in rebuilt)
    after = sum(r.bytes_after for r in rebuilt)
    print(f"crm.contact_index indexes: {mb(before)} -> {mb(after)}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from crmindex.demo import run_demo

    return run_demo(contacts=args.contacts, dsn=args.dsn, seed=args.seed)


def _parse_org(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInputError(f"--org must be an org uuid, got {value[:60]!r}") from exc


def _secret_from_env(var: str, what: str) -> Any:
    """The value of the operator's environment variable ``var`` as a Secret (read once, never printed)."""
    from crmindex.platform.secrets import Secret

    if not var.replace("_", "").isalnum():
        raise InvalidInputError(f"{what}: {var[:60]!r} is not an environment variable name")
    value = os.environ.get(var, "").strip()
    if not value:
        raise InvalidInputError(f"{what}: environment variable {var} is not set or empty")
    return Secret(value)


def _redirect_input(args: argparse.Namespace) -> tuple[Any, Any] | None:
    """(code, state) from --redirect-url, or --code with --state; None when neither was given."""
    from crmindex.crm.oauth import parse_redirect
    from crmindex.platform.secrets import Secret

    if args.redirect_url:
        return parse_redirect(args.redirect_url)
    if args.code:
        if not args.state:
            raise InvalidInputError("--code needs --state (or paste the whole redirect URL: --redirect-url)")
        return Secret(args.code), Secret(args.state)
    return None


def _cmd_connect(args: argparse.Namespace) -> int:
    """Connect a CRM account: OAuth (default) or a private-app / API token (``--token-env``)."""
    from crmindex.crm.connections import complete_oauth, connect_private_app, oauth_provider
    from crmindex.crm.oauth import OAuthApp, begin_authorization, parse_redirect
    from crmindex.platform.db import connect
    from crmindex.platform.secrets import SecretBox

    org = _parse_org(args.org)
    source: str = args.source
    expect = args.portal_id if source == "hubspot" else args.workspace_id
    other = args.workspace_id if source == "hubspot" else args.portal_id
    if other:
        raise InvalidInputError(
            f"--{'workspace' if source == 'hubspot' else 'portal'}-id is for the other CRM"
        )
    if expect is not None and (len(expect) > 200 or not expect.strip() or not expect.isprintable()):
        flag = "--portal-id" if source == "hubspot" else "--workspace-id"
        raise InvalidInputError(
            f"{flag} must be 1 to at most 200 characters (the account id the token must have)"
        )
    if args.webhook_url and source != "attio":
        raise InvalidInputError(
            "--webhook-url registers an Attio webhook (HubSpot webhooks are set in the app)"
        )
    box = SecretBox.from_env()
    with connect(args.dsn) as conn:
        if args.token_env:
            if args.code or args.redirect_url or args.begin_only:
                raise InvalidInputError("--token-env connects with a token: no OAuth options with it")
            token = _secret_from_env(args.token_env, "--token-env")
            webhook_secret = (
                _secret_from_env(args.webhook_secret_env, "--webhook-secret-env")
                if args.webhook_secret_env
                else None
            )
            connection = connect_private_app(
                conn, box, org, source, token, base_url=args.base_url, expect_account=expect,
                webhook_secret=webhook_secret, webhook_url=args.webhook_url,
            )  # fmt: skip
            how = f"token from ${args.token_env}, stored encrypted"
        else:
            if args.webhook_secret_env:
                raise InvalidInputError(
                    "--webhook-secret-env is for private-app tokens: an OAuth app's webhooks are signed with its "
                    f"client secret (CRMINDEX_{source.upper()}_CLIENT_SECRET in the receiver's environment)"
                )
            app = OAuthApp.from_env(source)
            provider = oauth_provider(
                source, app, api_base=args.base_url, oauth_base=args.oauth_base_url,
                authorize_url=args.authorize_url,
            )  # fmt: skip
            answer = _redirect_input(args)
            if answer is None:
                redirect_uri = args.redirect_uri or app.redirect_uri
                if not redirect_uri:
                    raise InvalidInputError(
                        f"--redirect-uri (or CRMINDEX_{source.upper()}_REDIRECT_URI) is required: the app's "
                        "registered redirect URL"
                    )
                auth = begin_authorization(conn, box, provider, org, redirect_uri)
                print(f"open this URL, approve the {source} install, then paste the URL you are sent to:")
                print(auth.url, flush=True)
                if args.begin_only:
                    print(f"(or finish later with: crmindex connect {source} --org {org} --redirect-url URL; "
                          f"valid until {auth.expires_at:%Y-%m-%d %H:%M:%S %Z})")  # fmt: skip
                    return EXIT_OK
                pasted = sys.stdin.readline()
                if not pasted.strip():
                    raise InvalidInputError(
                        "no redirect URL was pasted: run again, or finish with --redirect-url"
                    )
                answer = parse_redirect(pasted)
            code, state = answer
            connection = complete_oauth(
                conn, box, provider, code=code, state=state, expect_account=expect, expect_org=org,
                webhook_url=args.webhook_url,
            )  # fmt: skip
            how = "OAuth, tokens stored encrypted"
    what = "portal" if source == "hubspot" else "workspace"
    print(
        f"connected {source} account {_one_line(connection.account_id)} ({what}, proven by the token) "
        f"to org {org} ({how})"
    )
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from crmindex.platform.db import connect
    from crmindex.status import list_orgs, org_status, render

    with connect(args.dsn) as conn:
        orgs = [_parse_org(args.org)] if args.org else list_orgs(conn)
        statuses = [org_status(conn, o) for o in orgs]
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in statuses], indent=2))
    else:
        print("\n\n".join(render(s) for s in statuses) if statuses else "no orgs yet")
    return EXIT_OK


def _cmd_search(args: argparse.Namespace) -> int:
    import json

    from crmindex.index.search import search
    from crmindex.platform.db import connect

    org = _parse_org(args.org)
    with connect(args.dsn, org_id=org) as conn:
        result = search(conn, org, args.query, limit=args.limit, after=args.after)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return EXIT_OK
    interp = result.interpretation
    if interp is not None:
        print(f"interpreted as: {_one_line(interp.explanation)}")
    cols = ("name", "title", "company", "email", "stage", "deal", "score")
    table = [
        tuple(
            _one_line(cell)
            for cell in (
                h.name,
                h.job_title or "",
                h.company_name or "",
                h.email or "",
                h.lifecycle_stage or "",
                f"{h.deal_stage} {h.deal_value:,.0f}"
                if h.has_active_deal and h.deal_value is not None
                else "",
                f"{h.score:.3f}",
            )
        )
        for h in result.hits
    ]
    widths = [min(40, max([len(c)] + [len(r[i]) for r in table])) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in table:
        print("  ".join(v[:w].ljust(w) for v, w in zip(r, widths, strict=True)))
    print(
        f"{len(table)} result(s)"
        + (f"; next page: --after {_one_line(result.next_cursor)}" if result.next_cursor else "")
    )
    return EXIT_OK


def _index(dsn: str | None) -> Any:
    """The composition root every command that talks to a CRM builds (crmindex.app.CrmIndex)."""
    from crmindex.app import CrmIndex
    from crmindex.crm.http import RetryPolicy

    return CrmIndex(dsn, retry=RetryPolicy())


def _cmd_sync(args: argparse.Namespace) -> int:
    org = _parse_org(args.org)
    with _index(args.dsn) as idx:
        try:
            reports = idx.sync(org, args.source, progress=not args.quiet, restart=args.restart)
        except psycopg.OperationalError as exc:  # e.g. the database restarted: every committed page is kept
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CrmIndexError(
                f"lost the database during the sync ({first[:200]}); run it again to resume from the last "
                "committed page"
            ) from exc
        for report in reports:
            print(
                _one_line(
                    f"{report.source}: {report.records:,} records synced"
                    + "".join(f", {s.step} {s.records:,}" for s in report.steps)
                )
            )
            storage = report.storage
            if storage is not None and storage.rebuilt:
                before = sum(r.bytes_before for r in storage.rebuilt) / 1_048_576
                after = sum(r.bytes_after for r in storage.rebuilt) / 1_048_576
                print(f"contact indexes rebuilt: {before:,.1f} MB -> {after:,.1f} MB")
            elif storage is not None and storage.skipped and "owner" in storage.skipped:
                print(_one_line(f"contact indexes not rebuilt: {storage.skipped}"))
    return EXIT_OK


def _cmd_reconcile(args: argparse.Namespace) -> int:
    org = _parse_org(args.org)
    with _index(args.dsn) as idx:
        for report in idx.reconcile(org, args.source):
            print(
                _one_line(
                    f"{report.source}: repaired {sum(report.upserted.values()):,} changed records, "
                    f"{sum(report.deleted.values()):,} deletions (window from {report.since})"
                )
            )
    return EXIT_OK


def _cmd_materialize(args: argparse.Namespace) -> int:
    org = _parse_org(args.org)
    with _index(args.dsn) as idx:
        result = idx.materialize(org, args.ref, reason=args.reason, actor="cli")
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return EXIT_OK
    rec = result.record
    if rec is None:
        print(_one_line(f"{result.outcome}: {args.ref} is no longer in the CRM (soft-deleted in the index)"))
        return EXIT_OK
    name = " ".join(p for p in (rec.first_name, rec.last_name) if p) or "(no name)"
    print(
        _one_line(
            f"{result.outcome}: {name} <{rec.email or '-'}> {rec.crm_source}:{rec.crm_record_id} "
            f"record {rec.id}, {len(rec.properties)} properties, fetched {rec.fetched_at}"
        )
    )
    return EXIT_OK


def _cmd_drain(args: argparse.Namespace) -> int:
    import signal

    from crmindex.platform.db import connect, resolve_dsn
    from crmindex.platform.queue import Queue

    dsn = resolve_dsn(args.dsn)
    if args.action == "requeue":
        if not args.org:
            raise InvalidInputError("drain requeue needs --org")
        table = {"writeback": "crm.writeback_queue", "inbox": "crm.webhook_inbox", "jobs": "crm.job"}[
            args.queue
        ]
        with connect(dsn) as conn:
            n = Queue(table).requeue(conn, _parse_org(args.org))
        print(f"requeued {n} dead letter(s) of {table}")
        return EXIT_OK
    with _index(dsn) as idx:
        workers = idx.workers()
        if args.once:
            counts = workers.run_once()
            print(", ".join(f"{k} {v}" for k, v in counts.items()))
            return EXIT_OK

        def stop(signum: int, frame: object) -> None:
            print("stopping: finishing in-flight work ...", file=sys.stderr, flush=True)
            workers.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        print("draining (Ctrl-C to stop) ...", flush=True)
        workers.run()
        return EXIT_OK


def _cmd_mcp(args: argparse.Namespace) -> int:
    """Serve the copilot's tools (crmindex.tools) over MCP on stdio for one org: stdout carries only the
    protocol, everything else goes to stderr."""
    try:
        from crmindex.mcp import serve_stdio
    except ImportError as exc:
        raise CrmIndexError("the MCP server needs the mcp package: pip install 'crmindex[mcp]'") from exc
    from crmindex.tools import ToolExecutor

    org = _parse_org(args.org)
    role = None if args.app_role.strip().lower() in ("", "none") else args.app_role.strip()
    with _index(args.dsn) as idx:
        tools = ToolExecutor(idx, org, actor="mcp", app_role=role, materialize=args.materialize)
        if not tools.org_exists():
            raise InvalidInputError(f"org {org} does not exist (or this database login cannot see it)")
        print(
            f"crmindex mcp: serving {len(tools.toolset)} tools for org {org} on stdio",
            file=sys.stderr,
            flush=True,
        )
        serve_stdio(tools)
    return EXIT_OK


def _cmd_fake_crm(args: argparse.Namespace) -> int:
    from crmindex.testing import serve

    serve(
        args.kind,
        contacts=args.contacts,
        port=args.port,
        limits=not args.no_limits,
        webhook_url=args.webhook_url,
        webhook_secret=os.environ.get(args.webhook_secret_env or "", None),
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="crmindex",
        description="A Postgres-native index of whole CRMs (HubSpot, Attio) for an AI sales copilot.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "migrate",
        help="apply sql/migrations to a database (idempotent)",
        description="Apply the pending SQL migrations to schema crm and print what was applied. "
        "A second run applies nothing. Refuses to run if an applied file was edited.",
    )
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.add_argument("--target", type=int, help="stop after this migration version")
    p.set_defaults(handler=_cmd_migrate)

    p = sub.add_parser(
        "maintain",
        help="storage upkeep: rebuild the contact index's indexes after a large initial sync",
        description="--reindex: rebuild every index of crm.contact_index with REINDEX INDEX CONCURRENTLY, one at "
        "a time (reads and writes go on). Run it once after an org's initial sync added a large share of the "
        "table: the btrees an initial sync fills in the middle stay ~63%% full, a rebuild packs them. Needs the "
        "table owner's connection (the one migrate uses).",
    )
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.add_argument("--reindex", action="store_true", help="rebuild the indexes of crm.contact_index")
    p.add_argument("--quiet", action="store_true", help="no progress lines, only the totals")
    p.set_defaults(handler=_cmd_maintain)

    p = sub.add_parser(
        "demo",
        help="run the whole flow end to end on a throwaway local PostgreSQL",
        description="Start a throwaway local PostgreSQL (or use --dsn), migrate, load a synthetic CRM and search it.",
    )
    p.add_argument("--contacts", type=int, default=50_000, help="contacts in the demo org (default 50,000)")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic CRM")
    p.add_argument("--dsn", help="use this database instead of a throwaway local cluster")
    p.set_defaults(handler=_cmd_demo)
    p = sub.add_parser(
        "connect",
        help="connect an org's HubSpot portal or Attio workspace (OAuth, or a private-app token)",
        description="Connect (or reconnect) the org's HubSpot portal or Attio workspace. By default through "
        "OAuth: prints the CRM's authorize URL, then reads the URL the CRM redirects to (pasted on stdin, or "
        "--redirect-url / --code --state); the app's client id and secret come from CRMINDEX_<CRM>_CLIENT_ID and "
        "_CLIENT_SECRET. With --token-env, a private-app (HubSpot) or API (Attio) token is read once from that "
        "environment variable. Either way the account id comes from the CRM (the token says which account it "
        "belongs to), and tokens are stored encrypted with the key ring of CRMINDEX_SECRET_KEYS; never printed.",
    )
    p.add_argument("source", choices=["hubspot", "attio"])
    p.add_argument("--org", required=True, help="org uuid")
    p.add_argument("--token-env", help="environment variable holding a private-app / API token (read once)")
    p.add_argument(
        "--webhook-secret-env",
        help="with --token-env (HubSpot): environment variable holding the private app's client secret, "
        "which signs its webhooks (read once, stored encrypted)",
    )
    p.add_argument("--webhook-url", help="Attio: register the workspace's webhook to this (https) URL")
    p.add_argument("--portal-id", help="HubSpot: refuse unless the token belongs to this portal")
    p.add_argument("--workspace-id", help="Attio: refuse unless the token belongs to this workspace")
    p.add_argument(
        "--redirect-uri", help="OAuth: the app's registered redirect URL (or CRMINDEX_<CRM>_REDIRECT_URI)"
    )
    p.add_argument("--redirect-url", help="OAuth: the URL the CRM redirected to (finishes the install)")
    p.add_argument("--code", help="OAuth: the redirect's code (with --state)")
    p.add_argument("--state", help="OAuth: the redirect's state (with --code)")
    p.add_argument("--begin-only", action="store_true", help="OAuth: print the authorize URL and exit")
    p.add_argument(
        "--base-url",
        help="API base URL (default: the CRM's; another one, e.g. a fake's, must be in CRMINDEX_ALLOWED_BASE_URLS)",
    )
    p.add_argument("--oauth-base-url", help="Attio OAuth base URL (default https://app.attio.com)")
    p.add_argument(
        "--authorize-url", help="HubSpot authorize page (default https://app.hubspot.com/oauth/authorize)"
    )
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.set_defaults(handler=_cmd_connect)

    p = sub.add_parser(
        "status",
        help="counts, sync state, queue health, last webhook, rate limits",
        description="Per org: indexed/materialized/deleted counts, sync state, last webhook, queue depth by "
        "status with the oldest waiting job, dead letters with their last errors, rate-limiter state.",
    )
    p.add_argument("--org", help="only this org (uuid)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.set_defaults(handler=_cmd_status)

    p = sub.add_parser(
        "search",
        help="search the index with a copilot phrase",
        description='Interpret a phrase ("vps at fintech companies", "Stan from Acme", "customers at stripe.com") '
        "into filters + text, search the org's contacts and print them with the interpretation.",
    )
    p.add_argument("query", help="what to look for, in plain words")
    p.add_argument("--org", required=True, help="the org (uuid)")
    p.add_argument("--limit", type=int, default=20, help="maximum results (default 20)")
    p.add_argument("--after", help="cursor of the last result of the previous page")
    p.add_argument("--json", action="store_true", help="print the results and interpretation as JSON")
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.set_defaults(handler=_cmd_search)

    p = sub.add_parser(
        "materialize",
        help="materialize one contact: fetch its full record from the CRM into tier 2",
        description="Fetch the contact's full record (every property) from its CRM, store it as a tier-2 "
        "record, mark the index row materialized and log the activation. REF is an index id (#123), a CRM "
        "record id or an email. A contact gone from the CRM is soft-deleted in the index.",
    )
    p.add_argument("ref", metavar="REF", help="index id (#123), CRM record id or email")
    p.add_argument("--org", required=True, help="org uuid")
    p.add_argument(
        "--reason",
        default="manual",
        choices=["copilot", "meeting_booked", "enrichment", "ops_table", "webhook", "manual", "bulk"],
        help="why (recorded in the activation log; default manual)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.set_defaults(handler=_cmd_materialize)
    p = sub.add_parser(
        "sync",
        help="initial (resumable) sync of an org's CRM into the index, with a progress bar",
        description="List every company, contact and deal (and the archived ones, as soft deletes) of the org's "
        "connected CRM into the index. Each page is committed with its cursor: run it again after a crash or "
        "Ctrl-C and it resumes from the last committed page. A finished sync runs again from the start.",
    )
    p.add_argument("--org", required=True, help="org uuid")
    p.add_argument("--source", choices=["hubspot", "attio"], help="only this CRM (default: every connection)")
    p.add_argument("--restart", action="store_true", help="start over instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.set_defaults(handler=_cmd_sync)

    p = sub.add_parser(
        "reconcile",
        help="on-demand repair of index gaps after webhook downtime",
        description="HubSpot: re-read everything modified since the sync/webhook watermark (minus a margin) and "
        "the archived records. Attio: a full rescan. Nothing runs on a schedule by itself.",
    )
    p.add_argument("--org", required=True, help="org uuid")
    p.add_argument("--source", choices=["hubspot", "attio"])
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.set_defaults(handler=_cmd_reconcile)

    p = sub.add_parser(
        "drain",
        help="run the write-back drainer and the other job workers (inbox, hydration, materialization)",
        description="Without --once: run until SIGTERM/Ctrl-C, woken by NOTIFY with a polling fallback; in-flight "
        "work finishes and claimed jobs are released. With --once: drain what is due now and exit. "
        "`crmindex drain requeue --org ORG [--queue writeback|inbox|jobs]` re-queues dead letters after a fix.",
    )
    p.add_argument("action", nargs="?", choices=["run", "requeue"], default="run")
    p.add_argument("--once", action="store_true", help="drain what is due now, then exit")
    p.add_argument("--org", help="org uuid (requeue)")
    p.add_argument("--queue", choices=["writeback", "inbox", "jobs"], default="writeback")
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.set_defaults(handler=_cmd_drain)

    p = sub.add_parser(
        "mcp",
        help="serve the copilot's tools (crmindex.tools) over MCP on stdio for one org",
        description="A Model Context Protocol server on stdin/stdout for one org: an MCP client (a copilot, Claude "
        "Desktop, an agent framework) lists the tools and calls them. The org is this command's --org, never a "
        "model's argument. Tool failures come back as typed errors (code, message) the model can read.",
    )
    p.add_argument("--org", required=True, help="the org every tool acts for (uuid)")
    p.add_argument(
        "--materialize",
        choices=["request", "now"],
        default="request",
        help="materialize_contact queues the fetch for `crmindex drain` (request, default) or fetches the record "
        "at once (now: needs the key ring and a worker login)",
    )
    p.add_argument(
        "--app-role",
        default="crm_app",
        help="run every tool as this database role (SET ROLE; default crm_app, so row-level security and the "
        "application's grants apply); 'none' uses the login's own privileges",
    )
    p.add_argument("--dsn", help="database connection string (default: $DATABASE_URL)")
    p.set_defaults(handler=_cmd_mcp)

    p = sub.add_parser(
        "fake-crm",
        help="serve a seeded fake HubSpot or Attio for local development",
        description="A real HTTP server on 127.0.0.1 with the CRM's paths, bodies, limits and errors, seeded "
        "with synthetic data. Token: test-token.",
    )
    p.add_argument("kind", choices=["hubspot", "attio"])
    p.add_argument("--contacts", type=int, default=1000)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--no-limits", action="store_true", help="do not enforce the CRM's rate limits")
    p.add_argument("--webhook-url", help="send signed webhooks for changes to this URL")
    p.add_argument("--webhook-secret-env", help="environment variable holding the webhook secret")
    p.set_defaults(handler=_cmd_fake_crm)
    return parser


def _bad_argument(args: argparse.Namespace) -> str | None:
    """A message for an argument no command can use: a NUL or undecodable bytes (surrogates)."""
    from crmindex.platform.db import text_problem

    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            problem = text_problem(item) if isinstance(item, str) else None
            if problem is not None:
                return f"argument {name} {problem}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    # a one-shot command reports a lost database once, in its own words: the pool's note about discarding the
    # broken connection is noise here (long-running workers configure logging themselves)
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    bad = _bad_argument(args)
    if bad is not None:
        print(f"crmindex {args.command}: {_one_line(bad)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (InvalidInputError, InvalidRowError) as exc:
        print(f"crmindex {args.command}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except CrmIndexError as exc:
        print(f"crmindex {args.command}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except psycopg.Error as exc:  # not one of ours: one line, no traceback
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"crmindex {args.command}: database error: {_one_line(first[:300])}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
