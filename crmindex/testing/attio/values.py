"""Attio attribute values: how a value written in any accepted form is stored and returned for each
attribute type (personal names, email addresses, phone numbers, domains, record and actor references,
select options, statuses, currency, locations, text and numbers), with the history fields every value
carries (``active_from``, ``active_until``, ``created_by_actor``, ``attribute_type``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crmindex.testing.attio.errors import Invalid
from crmindex.testing.attio.schema import Workspace

HISTORY_FIELDS = ("active_from", "active_until", "created_by_actor")


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def normalize(ws: Workspace, obj: str, slug: str, raw: Any, api: bool, at: str) -> dict[str, Any]:
    """One value of attribute ``slug`` as stored, active from ``at``, made by the API token or a member."""
    typ, _ = ws.attribute(obj, slug)
    base: dict[str, Any] = {"active_from": at, "active_until": None, "created_by_actor": ws.actor(api),
                            "attribute_type": typ}  # fmt: skip
    v: dict[str, Any]
    if typ == "personal-name":
        if isinstance(raw, str):
            first, _, last = raw.partition(" ")
            v = {"first_name": first, "last_name": last, "full_name": raw}
        elif isinstance(raw, dict):
            first, last = raw.get("first_name") or "", raw.get("last_name") or ""
            v = {"first_name": first, "last_name": last,
                 "full_name": raw.get("full_name") or " ".join(p for p in (first, last) if p)}  # fmt: skip
        else:
            raise Invalid(f'Invalid value for attribute "{slug}"')
    elif typ == "email-address":
        addr = raw.get("email_address") if isinstance(raw, dict) else raw
        if not isinstance(addr, str) or "@" not in addr or addr.startswith("@") or addr.endswith("@"):
            raise Invalid(f'Invalid email address "{addr}" for attribute "{slug}"')
        local, _, domain = addr.lower().partition("@")
        root = ".".join(domain.split(".")[-2:])
        v = {"original_email_address": addr, "email_address": addr.lower(), "email_domain": domain,
             "email_root_domain": root, "email_local_specifier": local.split("+")[0]}  # fmt: skip
    elif typ == "phone-number":
        num = raw.get("original_phone_number") if isinstance(raw, dict) else raw
        v = {"original_phone_number": str(num), "country_code": None,
             "phone_number": "".join(c for c in str(num) if c.isdigit() or c == "+")}  # fmt: skip
    elif typ == "domain":
        d = (raw.get("domain") if isinstance(raw, dict) else raw) or ""
        v = {"domain": str(d).lower(), "root_domain": ".".join(str(d).lower().split(".")[-2:])}
    elif typ == "record-reference":
        if isinstance(raw, dict):
            v = {
                "target_object": raw.get("target_object", "companies"),
                "target_record_id": raw.get("target_record_id"),
            }
        else:
            v = {"target_object": "companies" if slug in ("company", "associated_company") else "people",
                 "target_record_id": str(raw)}  # fmt: skip
    elif typ in ("select", "status"):
        # the value holds the whole status / option (docs.attio.com list-entry example): the workspace's own
        key = "option" if typ == "select" else "status"
        title = raw.get(key) if isinstance(raw, dict) else raw
        if isinstance(title, dict):
            title = title.get("title")
        object_id = ws.target(obj)[0]
        v = {key: dict(ws.choice(obj, slug, key, title, ws.attribute_id(obj, slug), object_id))}
    elif typ == "currency":
        amount = raw.get("currency_value") if isinstance(raw, dict) else raw
        try:
            v = {"currency_value": float(str(amount)), "currency_code": "USD"}
        except (TypeError, ValueError) as exc:
            raise Invalid(f'Invalid currency value for attribute "{slug}"') from exc
    elif typ == "actor-reference":
        # a workspace member, written by id or email address (docs.attio.com attribute types: actor reference)
        aid = raw.get("referenced_actor_id") or raw.get("email_address") if isinstance(raw, dict) else raw
        v = {"referenced_actor_type": "workspace-member",
             "referenced_actor_id": ws.member_ids.get(str(aid).lower(), str(aid))}  # fmt: skip
    elif typ == "location":
        loc = raw if isinstance(raw, dict) else {"locality": str(raw)}
        v = {k: loc.get(k) for k in ("line_1", "line_2", "line_3", "line_4", "locality", "region", "postcode",
                                      "country_code", "latitude", "longitude")}  # fmt: skip
    else:  # text, number
        val = raw.get("value") if isinstance(raw, dict) else raw
        v = {"value": val}
    return {**base, **v}


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same value, whenever and by whomever it was written."""
    return _content(a) == _content(b)


def _content(v: dict[str, Any]) -> dict[str, Any]:
    return {k: x for k, x in v.items() if k not in HISTORY_FIELDS}


def active(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The values in force (the rest is history: superseded ones carry ``active_until``)."""
    return [v for v in history if v["active_until"] is None]


def unique_key(raw: Any) -> str:
    """An email address or domain (written or stored form) as uniqueness compares it."""
    if isinstance(raw, dict):
        raw = raw.get("email_address") or raw.get("domain") or ""
    return str(raw).lower()
