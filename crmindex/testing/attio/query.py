"""The ``filter`` of ``POST /v2/objects/{object}/records/query``: ``$and``/``$or``/``$not`` over attributes,
the shorthand (``{"email_addresses": "a@b.com"}``), a value's fields (``{"name": {"first_name": ...}}``)
and the operators ``$eq``, ``$contains``, ``$starts_with``, ``$gt``/``$gte``/``$lt``/``$lte``. A record
matches an attribute condition when one of its active values does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmindex.testing.attio.errors import Invalid
from crmindex.testing.attio.store import AttioStoredRecord
from crmindex.testing.attio.values import HISTORY_FIELDS, active

_NOT_COMPARED = (*HISTORY_FIELDS, "attribute_type")  # a condition looks at the value's own fields only


def matches(attributes: Mapping[str, Any], rec: AttioStoredRecord, flt: Any) -> bool:
    """Whether ``rec`` (of an object with these ``attributes``) passes the filter ``flt``."""
    if not isinstance(flt, dict):
        raise Invalid("filter must be an object", "filter_error")
    for key, cond in flt.items():
        if key == "$and":
            if not all(matches(attributes, rec, c) for c in cond):
                return False
        elif key == "$or":
            if not any(matches(attributes, rec, c) for c in cond):
                return False
        elif key == "$not":
            if matches(attributes, rec, cond):
                return False
        else:
            if key not in attributes:
                raise Invalid(f'Unknown attribute "{key}" in filter', "filter_error")
            if not any(_value_matches(v, cond) for v in active(rec.values.get(key, []))):
                return False
    return True


def _value_matches(v: Mapping[str, Any], cond: Any) -> bool:
    plain = {k: val for k, val in v.items() if k not in _NOT_COMPARED}
    if not isinstance(cond, dict):  # shorthand: {"email_addresses": "a@b.com"}, {"name": "Ada Lovelace"}
        target = str(cond).lower()
        return any(isinstance(x, str) and x.lower() == target for x in _flat(plain))
    for field_or_op, sub in cond.items():
        if field_or_op.startswith("$"):
            if not any(_op(field_or_op, x, sub) for x in _flat(plain)):
                return False
        else:
            inner = plain.get(field_or_op)
            if isinstance(sub, dict):
                if not all(_op(op, inner, arg) for op, arg in sub.items()):
                    return False
            elif str(inner).lower() != str(sub).lower():
                return False
    return True


def _flat(d: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for v in d.values():
        if isinstance(v, dict):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


def _op(op: str, have: Any, arg: Any) -> bool:
    if have is None:
        return False
    if op == "$eq":
        return str(have).lower() == str(arg).lower()
    if op == "$contains":
        return str(arg).lower() in str(have).lower()
    if op == "$starts_with":
        return str(have).lower().startswith(str(arg).lower())
    if op in ("$gt", "$gte", "$lt", "$lte"):
        try:
            a, b = float(have), float(arg)
        except (TypeError, ValueError):
            a, b = str(have), str(arg)  # type: ignore[assignment]
        return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]
    raise Invalid(f"Unknown filter operator {op}", "filter_error")
