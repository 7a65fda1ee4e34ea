"""Connections: DSN resolution, org binding for row-level security, pools, error translation."""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from crmindex.errors import CrmIndexError, from_db_error

Conn = psycopg.Connection[Any]


class NoDatabaseError(CrmIndexError):
    """No database was named (no --dsn, no DATABASE_URL)."""


def resolve_dsn(dsn: str | None = None) -> str:
    value = dsn or os.environ.get("DATABASE_URL")
    if not value:
        raise NoDatabaseError("no database: pass --dsn or set DATABASE_URL")
    return value


def connect(
    dsn: str | None = None, *, org_id: uuid.UUID | str | None = None, autocommit: bool = True
) -> Conn:
    """A connection; with ``org_id`` it is bound to that org (``crm.org_id``) for row-level security."""
    try:
        conn: psycopg.Connection[TupleRow] = psycopg.connect(resolve_dsn(dsn), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise CrmIndexError(f"cannot connect to the database: {_first_line(exc)}") from exc
    if org_id is not None:
        bind_org(conn, org_id)
    return conn


def bind_org(conn: Conn, org_id: uuid.UUID | str | None) -> None:
    """Bind the session to one org (what crm_app's row-level security policies read); None unbinds."""
    conn.execute("SELECT set_config('crm.org_id', %s, false)", ("" if org_id is None else str(org_id),))


def make_pool(dsn: str | None = None, *, min_size: int = 1, max_size: int = 8) -> ConnectionPool[Conn]:
    """A psycopg pool of autocommit connections for workers."""

    def configure(conn: Conn) -> None:
        conn.autocommit = True

    return ConnectionPool(
        resolve_dsn(dsn), min_size=min_size, max_size=max_size, configure=configure, open=True
    )


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise errors our SQL raises on purpose (SQLSTATE CXnnn) as crmindex's typed errors."""
    try:
        yield
    except psycopg.Error as exc:
        typed = from_db_error(exc)
        if typed is not None:
            raise typed from exc
        raise


_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot take ``value`` as a text parameter (a NUL, an unpaired surrogate), else None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not UTF-8)"
    return None


def json_param(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """JSON text for a jsonb parameter; ValueError when PostgreSQL could not take it (NaN or Infinity, a NUL,
    an unpaired surrogate, nesting too deep). ``default`` may raise TypeError for unsupported values."""
    try:
        text = json.dumps(value, default=default, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        raise ValueError("is nested too deeply") from None
    except ValueError:
        raise ValueError("contains NaN or Infinity (not valid JSON)") from None
    # the substring test first: the regex (an escaped backslash before "u0000" is no NUL) is slow on big text
    nul = "\\u0000" in text and _NUL_ESCAPE.search(text) is not None
    problem = "contains a NUL character" if nul else text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
