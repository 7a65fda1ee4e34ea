"""The ``crmindex`` command line.

Exit codes: 0 success, 1 runtime failure (database/CRM), 2 usage error (bad arguments or input).
User mistakes print one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Sequence

from crmindex.errors import CrmIndexError, InvalidInputError, InvalidRowError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


def _cmd_migrate(args: argparse.Namespace) -> int:
    from crmindex.db import connect
    from crmindex.migrate import migrate

    with connect(args.dsn) as conn:
        applied = migrate(
            conn,
            target=args.target,
            on_apply=lambda m: print(f"applied {m.version:04d}_{m.name} ({m.duration_ms} ms)", flush=True),
        )
    if not applied:
        print("schema crm is up to date; nothing to apply")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from crmindex.demo import run_demo

    return run_demo(contacts=args.contacts, dsn=args.dsn, seed=args.seed)


def _parse_org(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInputError(f"--org must be an org uuid, got {value[:60]!r}") from exc


def _cmd_connect(args: argparse.Namespace) -> int:
    from crmindex.connections import Connection, save_connection
    from crmindex.db import connect

    account = args.portal_id if args.source == "hubspot" else args.workspace_id
    if not account:
        flag = "--portal-id" if args.source == "hubspot" else "--workspace-id"
        raise InvalidInputError(f"{flag} is required to connect {args.source}")
    try:
        connection = Connection(
            org_id=_parse_org(args.org),
            crm_source=args.source,
            account_id=str(account),
            base_url=args.base_url,
            token_ref=f"env:{args.token_env}" if args.token_env else None,
            webhook_secret_ref=",".join(f"env:{v}" for v in args.webhook_secret_env) or None,
        )
    except ValueError as exc:
        raise InvalidInputError(str(exc).splitlines()[-1]) from exc
    with connect(args.dsn) as conn:
        save_connection(conn, connection)
    print(
        f"connected {args.source} account {account} to org {connection.org_id}"
        + (f" (token from ${args.token_env})" if args.token_env else "")
    )
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from crmindex.db import connect
    from crmindex.status import list_orgs, org_status, render

    with connect(args.dsn) as conn:
        orgs = [_parse_org(args.org)] if args.org else list_orgs(conn)
        statuses = [org_status(conn, o) for o in orgs]
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in statuses], indent=2))
    else:
        print("\n\n".join(render(s) for s in statuses) if statuses else "no orgs yet")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        help="register a CRM connection for an org (secrets by environment variable, never stored)",
        description="Register (or update) the org's HubSpot portal or Attio workspace. Tokens and webhook "
        "secrets are named by environment variable and read when needed; they are never stored or printed.",
    )
    p.add_argument("source", choices=["hubspot", "attio"])
    p.add_argument("--org", required=True, help="org uuid")
    p.add_argument("--portal-id", help="HubSpot portal (hub) id")
    p.add_argument("--workspace-id", help="Attio workspace id")
    p.add_argument("--base-url", help="API base URL (default: the CRM's public API; a fake's URL in tests)")
    p.add_argument("--token-env", help="environment variable holding the API token")
    p.add_argument(
        "--webhook-secret-env",
        action="append",
        default=[],
        help="environment variable holding a webhook secret (repeat during a rotation)",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (InvalidInputError, InvalidRowError) as exc:
        print(f"crmindex {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CrmIndexError as exc:
        print(f"crmindex {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
