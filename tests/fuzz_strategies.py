"""Shared hypothesis strategies and checks for the hostile-input suites (tests/test_fuzz_*.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from crmindex.errors import CrmIndexError
from tests.conftest import PgServer, _new_db

# every fuzz test: no deadline (2 shared cores), fixtures reused across examples, no example database in the repo
# CRMINDEX_FUZZ_SCALE=20 runs 20x the examples (a long local hunt before a change lands; CI uses 1)
FUZZ_SCALE = max(1, int(os.environ.get("CRMINDEX_FUZZ_SCALE", "1") or "1"))


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples * FUZZ_SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# text a caller's error must never show: driver names, SQL error plumbing, Python tracebacks
LEAK_MARKERS = ("psycopg", "Traceback", "SQLSTATE", "syntax error", "LINE 1", "CONTEXT:", "ERROR:", 'File "')

SPECIALS = [
    *"%_\\'\"\x00;$*+?()[]{}|^.<>:&!-@/#`~,=\t\n\r",
    "\u200b",
    "\ufeff",
    "\ud800",
    "\udfff",
    "é",
    "名",
]
FIXED_TEXT = [
    "",
    " ",
    "%",
    "_",
    "\\",
    "'",
    "''",
    '"',
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udcffy",
    "' OR 1=1 --",
    "'; DROP TABLE crm.contact_index; --",
    "$$; SELECT pg_sleep(5); $$",
    "(?:a|b)*[[:alpha:]]\\1",
    ".*",
    "a & b | !c <-> d:*",
    "%_%\\%",
    "x" * 100_000,
    "é" * 20_000,
    "🙂" * 3000,
    " ".join(["stan"] * 5000),
    "john.smith@stripe.com",
    "stripe.com",
    "vps at fintech companies updated since 2024-99-99 with deals over 1e999",
]


def hostile_text(max_size: int = 200) -> st.SearchStrategy[str]:
    """Any text a caller might pass: unicode, SQL/LIKE/regex metacharacters, NUL, lone surrogates, huge."""
    return st.one_of(
        st.text(max_size=max_size),
        st.text(alphabet=st.sampled_from([*SPECIALS, "a", "b", "s", " ", "1"]), max_size=max_size),
        st.sampled_from(FIXED_TEXT),
        st.text(alphabet=st.characters(exclude_categories=()), max_size=max_size),  # surrogates too
    )


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities included: json.dumps writes tokens PostgreSQL rejects
    hostile_text(40),
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=6) | st.dictionaries(hostile_text(20), inner, max_size=6),
        max_leaves=max_leaves,
    )


def assert_typed(exc: BaseException) -> None:
    """An error a caller may see: a crmindex error, never a raw driver/encoding error, without SQL plumbing."""
    assert isinstance(exc, CrmIndexError), f"untyped error {type(exc).__module__}.{type(exc).__name__}: {exc}"
    assert not isinstance(exc, psycopg.Error)
    text = str(exc)
    assert not any(m in text for m in LEAK_MARKERS if m != "ERROR:"), text


def assert_clean_sql_error(exc: psycopg.Error) -> None:
    """An error raised by our SQL on purpose: SQLSTATE CX001-CX004, never an internal one (22P02, 42883...)."""
    assert exc.sqlstate in ("CX001", "CX002", "CX003", "CX004"), f"{exc.sqlstate}: {exc}"


def module_db(pg_server: PgServer, template_db: str) -> Iterator[str]:
    """A fresh migrated database for a whole module (hypothesis examples share it); dropped afterwards."""
    name = _new_db(pg_server, template_db)
    yield pg_server.dsn(name)
    with pg_server.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
