"""The ``crmindex`` command line.

Exit codes: 0 success, 1 runtime failure (database/CRM), 2 usage error (bad arguments or input).
User mistakes print one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
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
