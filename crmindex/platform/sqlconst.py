"""Constants SQL defines and Python reads: one definition, in the area file shipped with the package.

A constant is a SQL function without arguments whose body is a literal, written on its own::

    CREATE OR REPLACE FUNCTION crm.email_pattern() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN '^[^@\\s]+@[^@\\s]+\\.[^@\\s.]+$';

    CREATE OR REPLACE FUNCTION crm.search_seniorities() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ARRAY['owner', 'founder', ...];

:func:`sql_text` and :func:`sql_texts` read them from the file (no database needed: the Python models and the
LLM tool schema are built at import). ``tests/test_layout.py`` checks that each one Python reads equals what the
database's function returns.
"""

from __future__ import annotations

import functools
import re

from crmindex.platform.migrate import SQL_DIR

_STRING = re.compile(r"'((?:[^']|'')*)'")


@functools.cache
def _body(area: str, name: str) -> str:
    text = (SQL_DIR / area).read_text(encoding="utf-8")
    match = re.search(
        rf"^CREATE OR REPLACE FUNCTION crm\.{re.escape(name)}\(\) RETURNS [a-z\[\]]+\n"
        r"LANGUAGE sql IMMUTABLE PARALLEL SAFE\nRETURN (.*?);$",
        text,
        re.MULTILINE | re.DOTALL,
    )
    if match is None:
        raise LookupError(f"sql/{area} defines no constant crm.{name}() (RETURN <literal>;)")
    return match.group(1).strip()


def sql_text(area: str, name: str) -> str:
    """The text literal ``crm.<name>()`` of ``sql/<area>`` returns."""
    body = _body(area, name)
    match = _STRING.fullmatch(body)
    if match is None:
        raise LookupError(f"crm.{name}() in sql/{area} does not return a text literal")
    return match.group(1).replace("''", "'")


def sql_texts(area: str, name: str) -> tuple[str, ...]:
    """The text array literal (``ARRAY['a', 'b']``) ``crm.<name>()`` of ``sql/<area>`` returns, in order."""
    body = _body(area, name)
    if not (body.startswith("ARRAY[") and body.endswith("]")):
        raise LookupError(f"crm.{name}() in sql/{area} does not return an ARRAY[...] literal")
    inner = body[len("ARRAY[") : -1]
    values = [m.group(1).replace("''", "'") for m in _STRING.finditer(inner)]
    if _STRING.sub("", inner).replace(",", "").strip():
        raise LookupError(f"crm.{name}() in sql/{area} holds something other than text literals")
    return tuple(values)
