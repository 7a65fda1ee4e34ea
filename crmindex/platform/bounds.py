"""How big an input the API accepts: the Python mirror of ``sql/platform/bounds.sql``.

The SQL functions refuse anything bigger (with an error naming the field, changing nothing); the typed models
and wrappers check the same limits first, so a Python caller gets the error before sending megabytes.
``tests/test_trust_app_role.py`` checks that these numbers are the SQL's (``crm.text_cap``, ``crm.input_cap``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from crmindex.errors import InvalidInputError
from crmindex.platform.sqlconst import sql_text

ID_CAP = 200  # characters of a CRM record id (and of company / owner / contact ids, merge targets)
EMAIL_CAP = 320  # characters of an email address (RFC 5321 path)
TEXT_CAP = 1000  # characters of any other text value (names, titles, companies, stages, domains...)
ROWS_CAP = 10_000  # rows in one upsert batch
ROWS_BYTES_CAP = 32 * 1024 * 1024  # bytes of JSON text in one upsert batch
PAYLOAD_CAP = 64 * 1024  # bytes of JSON text: a write-back payload, update / create fields, search filters
ENRICHMENT_CAP = 256 * 1024  # bytes of JSON text of one enrichment provider's payload
ENRICHMENT_TOTAL_CAP = 1024 * 1024  # bytes of JSON text of all enrichment payloads of one record
PROPERTIES_CAP = 1024 * 1024  # bytes of JSON text of the CRM properties of one materialized record
QUERY_CAP = 65_536  # characters of search / interpret / resolve text
REFS_CAP = 1000  # references in one request_materialization call
NAME_CAP = 1000  # characters of an actor or a person's full name

# what an email address looks like: crm.email_pattern() of sql/platform/bounds.sql, read from that file
EMAIL_PATTERN = sql_text("platform/bounds.sql", "email_pattern")
_EMAIL = re.compile(EMAIL_PATTERN)


def is_email(value: str) -> bool:
    """``value`` (already trimmed) looks like an email address, as ``crm.is_email`` decides (a whole-string
    match: PostgreSQL's ``$`` does not match before a trailing newline, Python's does)."""
    return _EMAIL.fullmatch(value) is not None


_ID_COLUMNS = frozenset(
    {
        "crm_record_id",
        "company_crm_id",
        "owner_crm_id",
        "deal_crm_id",
        "contact_crm_id",
        "contact_crm_ids",
        "merged_into",
        "dedupe_key",
    }
)

INPUT_CAPS: dict[str, int] = {
    "rows": ROWS_CAP,
    "rows_bytes": ROWS_BYTES_CAP,
    "payload": PAYLOAD_CAP,
    "enrichment": ENRICHMENT_CAP,
    "enrichment_total": ENRICHMENT_TOTAL_CAP,
    "properties": PROPERTIES_CAP,
    "query": QUERY_CAP,
    "refs": REFS_CAP,
    "name": NAME_CAP,
}


def text_cap(column: str) -> int:
    """The longest text, in characters, a column (or JSON key) accepts (``crm.text_cap``)."""
    if column in _ID_COLUMNS:
        return ID_CAP
    if column in ("email", "match_key"):
        return EMAIL_CAP
    return TEXT_CAP


def check_text(field: str, value: str | None, cap: int | None = None) -> None:
    """InvalidInputError naming ``field`` when ``value`` is longer than its cap (default: ``text_cap``)."""
    limit = text_cap(field) if cap is None else cap
    if value is not None and len(value) > limit:
        raise InvalidInputError(f"{field[:100]} is longer than {limit} characters ({len(value)})")


def check_fields(fields: Mapping[str, object]) -> None:
    """Every text value of ``fields`` within the cap of its key (InvalidInputError naming the first one)."""
    for key, value in fields.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            check_text(key, str(value))


def check_json(field: str, value: object, cap: int = PAYLOAD_CAP) -> None:
    """InvalidInputError naming ``field`` when the JSON text of ``value`` is longer than ``cap`` bytes (as
    PostgreSQL writes jsonb as text; values that are not JSON are left to the caller's encoder)."""
    try:
        size = len(json.dumps(value, ensure_ascii=False, default=str).encode())
    except (TypeError, ValueError):
        return
    if size > cap:
        raise InvalidInputError(f"{field[:100]} is larger than {cap} bytes of JSON ({size})")
