"""``FakeAttio``: a local Attio REST v2 workspace (records of people, companies and deals).

Endpoints: ``POST /v2/objects/{object}/records/query`` (``limit`` default 500, ``offset``, simple
filters), ``GET|PATCH|PUT|DELETE /v2/objects/{object}/records/{id}``, ``POST /v2/objects/{object}/records``
(create; unique conflicts), ``PUT /v2/objects/{object}/records?matching_attribute=`` (assert). Values
are arrays of historic values (``active_from``/``active_until``, ``created_by_actor``,
``attribute_type`` and the type's fields); responses carry the active values (``include_historic=True``
adds the superseded ones). Errors are ``{status_code, type, code, message}``; 429s carry an HTTP-date
``Retry-After``; limits are 100 reads/s and 25 writes/s.

Mutation helpers emit ``{"webhook_id", "events": [one event]}`` deliveries signed with a hex HMAC-SHA256
of the raw body in ``Attio-Signature`` and ``X-Attio-Signature``.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crmindex.testing._server import EmitMode, FakeServer, Request, Response, SlidingWindow

if TYPE_CHECKING:
    from crmindex.testing.synthetic import SyntheticCRM

# attribute slug -> (type, multiselect)
ATTRIBUTES: dict[str, dict[str, tuple[str, bool]]] = {
    "people": {
        "name": ("personal-name", False),
        "email_addresses": ("email-address", True),
        "phone_numbers": ("phone-number", True),
        "job_title": ("text", False),
        "description": ("text", False),
        "company": ("record-reference", False),
        "primary_location": ("location", False),
        "linkedin": ("text", False),
    },
    "companies": {
        "name": ("text", False),
        "domains": ("domain", True),
        "description": ("text", False),
        "categories": ("select", True),
        "employee_range": ("select", False),
        "estimated_arr_usd": ("select", False),
        "primary_location": ("location", False),
        "team": ("record-reference", True),
    },
    "deals": {
        "name": ("text", False),
        "stage": ("status", False),
        "value": ("currency", False),
        "owner": ("actor-reference", False),
        "associated_people": ("record-reference", True),
        "associated_company": ("record-reference", False),
    },
}
UNIQUE = {"people": "email_addresses", "companies": "domains"}
MAX_LIMIT = 500  # the documented default; the fake also caps at it


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _Invalid(Exception):
    def __init__(self, message: str, code: str = "validation_type", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class AttioStoredRecord:
    record_id: str
    created_at: str
    values: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class FakeAttio(FakeServer):
    """An Attio workspace on 127.0.0.1. Use as a context manager; ``base_url`` is where it listens."""

    source = "attio"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] = ("test-token",),
        limits: bool = True,
        reads_per_second: int = 100,
        writes_per_second: int = 25,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        emit: EmitMode = "send",
        emit_api_changes: bool = True,
        include_historic: bool = False,
        custom_attributes: Mapping[str, Mapping[str, str]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            tokens=tokens,
            limits=limits,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            emit=emit,
            seed=seed,
        )
        rnd = random.Random(seed)
        self._uuid: Callable[[], str] = lambda: str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        self.workspace_id = self._uuid()
        self.webhook_id = self._uuid()
        self.emit_api_changes = emit_api_changes
        self.include_historic = include_historic
        self.conflict_rate = 0.0  # share of writes answered 409 concurrent_write_conflict
        self._reads = SlidingWindow(reads_per_second, 1.0)
        self._writes = SlidingWindow(writes_per_second, 1.0)
        self.attributes: dict[str, dict[str, tuple[str, bool]]] = {k: dict(v) for k, v in ATTRIBUTES.items()}
        custom = custom_attributes if custom_attributes is not None else {
            "people": {"lifecycle_stage": "select", "lead_status": "select"}
        }  # fmt: skip
        for obj, attrs in custom.items():
            for slug, typ in attrs.items():
                self.attributes.setdefault(obj, {})[slug] = (typ, False)
        self.object_ids = {obj: self._uuid() for obj in self.attributes}
        self.attribute_ids = {(o, a): self._uuid() for o, attrs in self.attributes.items() for a in attrs}
        self._records: dict[str, dict[str, AttioStoredRecord]] = {o: {} for o in self.attributes}
        self._order: dict[str, list[str]] = {o: [] for o in self.attributes}
        self._lazy: dict[str, tuple[list[str], Callable[[int], AttioStoredRecord]]] = {}
        self._lazy_index: dict[str, dict[str, int]] = {}
        self._gone: dict[str, set[str]] = {o: set() for o in self.attributes}

    # ================================================================ store
    def _slug(self, obj: str) -> str:
        for slug, oid in self.object_ids.items():
            if obj in (slug, oid):
                return slug
        raise _Invalid(f'Object with slug/ID "{obj}" not found.', "not_found", 404)

    def _get(self, obj: str, rid: str) -> AttioStoredRecord | None:
        if rid in self._gone[obj]:
            return None
        rec = self._records[obj].get(rid)
        if rec is not None:
            return rec
        if obj in self._lazy:
            ids, build = self._lazy[obj]
            index = self._lazy_index.get(obj)
            if index is None:
                index = self._lazy_index[obj] = {r: i for i, r in enumerate(ids)}
            i = index.get(rid)
            if i is not None:
                rec = build(i)
                self._records[obj][rid] = rec  # once read by id, keep it (writes usually follow)
                return rec
        return None

    def _ids(self, obj: str) -> list[str]:
        lazy_ids = self._lazy[obj][0] if obj in self._lazy else []
        if not lazy_ids:
            return [r for r in self._order[obj] if r not in self._gone[obj]]
        return [r for r in lazy_ids if r not in self._gone[obj]] + [
            r for r in self._order[obj] if r not in self._gone[obj]
        ]

    def record_ids(self, obj: str) -> list[str]:
        with self._lock:
            return self._ids(self._slug(obj))

    def record(self, obj: str, record_id: str) -> dict[str, Any] | None:
        """The record as the API returns it (active values), or None."""
        with self._lock:
            slug = self._slug(obj)
            rec = self._get(slug, record_id)
            return None if rec is None else self._view(slug, rec)

    # ================================================================ values
    def _actor(self, api: bool) -> dict[str, Any]:
        return {"type": "api-token", "id": self.webhook_id} if api else {"type": "workspace-member",
                                                                           "id": self.workspace_id}  # fmt: skip

    def _norm(self, obj: str, slug: str, raw: Any, api: bool, at: str) -> dict[str, Any]:
        typ, _ = self.attributes[obj][slug]
        base: dict[str, Any] = {"active_from": at, "active_until": None, "created_by_actor": self._actor(api),
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
                raise _Invalid(f'Invalid value for attribute "{slug}"')
        elif typ == "email-address":
            addr = raw.get("email_address") if isinstance(raw, dict) else raw
            if not isinstance(addr, str) or "@" not in addr or addr.startswith("@") or addr.endswith("@"):
                raise _Invalid(f'Invalid email address "{addr}" for attribute "{slug}"')
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
        elif typ == "select":
            title = raw.get("option") if isinstance(raw, dict) else raw
            if isinstance(title, dict):
                title = title.get("title")
            v = {"option": {"id": {"workspace_id": self.workspace_id, "object_id": self.object_ids[obj],
                                   "attribute_id": self.attribute_ids[(obj, slug)], "option_id": _stable_id(title)},
                            "title": str(title), "is_archived": False}}  # fmt: skip
        elif typ == "status":
            title = raw.get("status") if isinstance(raw, dict) else raw
            if isinstance(title, dict):
                title = title.get("title")
            v = {"status": {"id": {"workspace_id": self.workspace_id, "object_id": self.object_ids[obj],
                                   "attribute_id": self.attribute_ids[(obj, slug)], "status_id": _stable_id(title)},
                            "title": str(title), "is_archived": False, "target_time_in_status": None,
                            "celebration_enabled": False}}  # fmt: skip
        elif typ == "currency":
            amount = raw.get("currency_value") if isinstance(raw, dict) else raw
            try:
                v = {"currency_value": float(str(amount)), "currency_code": "USD"}
            except (TypeError, ValueError) as exc:
                raise _Invalid(f'Invalid currency value for attribute "{slug}"') from exc
        elif typ == "actor-reference":
            aid = raw.get("referenced_actor_id") if isinstance(raw, dict) else raw
            v = {"referenced_actor_type": "workspace-member", "referenced_actor_id": str(aid)}
        elif typ == "location":
            loc = raw if isinstance(raw, dict) else {"locality": str(raw)}
            v = {k: loc.get(k) for k in ("line_1", "line_2", "line_3", "line_4", "locality", "region", "postcode",
                                          "country_code", "latitude", "longitude")}  # fmt: skip
        else:  # text, number
            val = raw.get("value") if isinstance(raw, dict) else raw
            v = {"value": val}
        return {**base, **v}

    @staticmethod
    def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        skip = {"active_from", "active_until", "created_by_actor"}
        return {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}

    def _write_values(
        self, obj: str, rec: AttioStoredRecord, values: Mapping[str, Any], *, api: bool, overwrite_multi: bool
    ) -> list[str]:
        """Apply ``values``; returns the attributes that changed."""
        at = iso_now()
        changed: list[str] = []
        for slug, raw in values.items():
            if slug not in self.attributes[obj]:
                raise _Invalid(f'Cannot find attribute with slug/ID "{slug}".', "value_not_found")
            _, multi = self.attributes[obj][slug]
            items = raw if isinstance(raw, list) else ([] if raw is None else [raw])
            new = [self._norm(obj, slug, x, api, at) for x in items]
            history = rec.values.setdefault(slug, [])
            active = [v for v in history if v["active_until"] is None]
            if multi and not overwrite_multi:
                added = [n for n in new if not any(self._same(n, a) for a in active)]
                history.extend(added)
                if added:
                    changed.append(slug)
                continue
            if len(new) == len(active) and all(self._same(n, a) for n, a in zip(new, active, strict=True)):
                continue
            for a in active:
                a["active_until"] = at
            history.extend(new)
            changed.append(slug)
        return changed

    def _unique_owner(self, obj: str, values: Mapping[str, Any], exclude: str | None = None) -> str | None:
        slug = UNIQUE.get(obj)
        if slug is None or slug not in values:
            return None
        raw = values[slug]
        wanted = {self._unique_key(obj, x) for x in (raw if isinstance(raw, list) else [raw])}
        for rid in self._ids(obj):
            if rid == exclude:
                continue
            rec = self._get(obj, rid)
            if rec is None:
                continue
            for v in rec.values.get(slug, []):
                if v["active_until"] is None and self._unique_key(obj, v) in wanted:
                    return rid
        return None

    @staticmethod
    def _unique_key(obj: str, raw: Any) -> str:
        if isinstance(raw, dict):
            raw = raw.get("email_address") or raw.get("domain") or ""
        return str(raw).lower()

    def _view(self, obj: str, rec: AttioStoredRecord) -> dict[str, Any]:
        values = {
            slug: [dict(v) for v in vals if self.include_historic or v["active_until"] is None]
            for slug, vals in rec.values.items()
        }
        for slug in self.attributes[obj]:
            values.setdefault(slug, [])
        return {
            "id": {
                "workspace_id": self.workspace_id,
                "object_id": self.object_ids[obj],
                "record_id": rec.record_id,
            },
            "created_at": rec.created_at,
            "web_url": f"https://app.attio.com/fake/{obj}/{rec.record_id}",
            "values": values,
        }

    def _new(self, obj: str, values: Mapping[str, Any], *, api: bool) -> AttioStoredRecord:
        rec = AttioStoredRecord(self._uuid(), iso_now())
        self._write_values(obj, rec, values, api=api, overwrite_multi=True)
        self._records[obj][rec.record_id] = rec
        self._order[obj].append(rec.record_id)
        return rec

    # ================================================================ seeding
    def seed_from(self, crm: SyntheticCRM) -> FakeAttio:
        """Serve ``crm`` (source ``attio``: UUID record ids); people are generated lazily."""
        if crm.source != "attio":
            raise ValueError("seed FakeAttio from a SyntheticCRM with source='attio'")
        with self._lock:
            for c in crm.companies():
                rec = AttioStoredRecord(c.crm_record_id, _iso(c.crm_created_at))
                vals: dict[str, Any] = {"name": c.name, "domains": [c.domain]}
                if c.industry:
                    vals["categories"] = [c.industry]
                if c.employee_count is not None:
                    vals["employee_range"] = _employee_range(c.employee_count)
                if c.city or c.country:
                    vals["primary_location"] = {"locality": c.city, "country_code": _country_code(c.country)}
                self._seed_values("companies", rec, vals, c.crm_created_at, c.crm_updated_at)
                self._records["companies"][rec.record_id] = rec
                self._order["companies"].append(rec.record_id)
            ids = [crm.contact_id(i) for i in range(crm.n_contacts)]

            def build(i: int) -> AttioStoredRecord:
                x = crm.contact(i)
                rec = AttioStoredRecord(x.crm_record_id, _iso(x.crm_created_at))
                vals: dict[str, Any] = {
                    "name": {"first_name": x.first_name or "", "last_name": x.last_name or ""},
                }
                if x.email:
                    vals["email_addresses"] = [x.email]
                if x.phone:
                    vals["phone_numbers"] = [x.phone]
                if x.job_title:
                    vals["job_title"] = x.job_title
                if x.company_crm_id:
                    vals["company"] = {"target_object": "companies", "target_record_id": x.company_crm_id}
                if x.lifecycle_stage and "lifecycle_stage" in self.attributes["people"]:
                    vals["lifecycle_stage"] = x.lifecycle_stage
                if x.lead_status and "lead_status" in self.attributes["people"]:
                    vals["lead_status"] = x.lead_status
                self._seed_values("people", rec, vals, x.crm_created_at, x.crm_updated_at)
                return rec

            self._lazy["people"] = (ids, build)
            self._lazy_index.pop("people", None)
            for d in crm.deals():
                rec = AttioStoredRecord(d.crm_record_id, _iso(d.crm_created_at))
                vals = {"name": d.name, "stage": d.stage}
                if d.amount is not None:
                    vals["value"] = d.amount
                if d.owner_crm_id:
                    vals["owner"] = d.owner_crm_id
                if d.contact_crm_ids:
                    vals["associated_people"] = [{"target_object": "people", "target_record_id": p}
                                                 for p in d.contact_crm_ids]  # fmt: skip
                if d.company_crm_id:
                    vals["associated_company"] = {
                        "target_object": "companies",
                        "target_record_id": d.company_crm_id,
                    }
                self._seed_values("deals", rec, vals, d.crm_created_at, d.crm_updated_at)
                self._records["deals"][rec.record_id] = rec
                self._order["deals"].append(rec.record_id)
        return self

    def _seed_values(
        self, obj: str, rec: AttioStoredRecord, vals: Mapping[str, Any], created: datetime, updated: datetime
    ) -> None:
        self._write_values(obj, rec, vals, api=False, overwrite_multi=True)
        stamp, first = _iso(updated), _iso(created)
        for i, history in enumerate(rec.values.values()):
            for v in history:
                v["active_from"] = stamp if i == 0 else first  # the newest change: the record's update time

    # ================================================================ webhooks
    def sign(self, body: bytes) -> dict[str, str]:
        sig = hmac.new((self.webhook_secret or "").encode(), body, hashlib.sha256).hexdigest()
        return {"Attio-Signature": sig, "X-Attio-Signature": sig}

    def _event(self, obj: str, event_type: str, rid: str, *, api: bool, attribute: str | None = None,
               **extra: Any) -> dict[str, Any]:  # fmt: skip
        ident: dict[str, Any] = {
            "workspace_id": self.workspace_id,
            "object_id": self.object_ids[obj],
            "record_id": rid,
        }
        if attribute is not None:
            ident["attribute_id"] = self.attribute_ids[(obj, attribute)]
        return {"event_type": event_type, "id": ident, "actor": self._actor(api), **extra}

    def _emit(self, events: list[dict[str, Any]]) -> None:
        for ev in events:  # exactly one event per delivery (as Attio does today)
            body = json.dumps({"webhook_id": self.webhook_id, "events": [ev]}, separators=(",", ":")).encode()
            self._deliver(body, self.sign(body))

    def emit_events(self, events: list[dict[str, Any]]) -> None:
        self._emit(events)

    # ================================================================ mutation helpers
    def create(self, obj: str, values: Mapping[str, Any]) -> str:
        with self._lock:
            slug = self._slug(obj)
            rec = self._new(slug, values, api=False)
            events = [self._event(slug, "record.created", rec.record_id, api=False)]
        self._emit(events)
        return rec.record_id

    def update(self, obj: str, record_id: str, values: Mapping[str, Any]) -> None:
        with self._lock:
            slug = self._slug(obj)
            rec = self._get(slug, record_id)
            if rec is None:
                raise KeyError(f"no {obj} {record_id}")
            changed = self._write_values(slug, rec, values, api=False, overwrite_multi=True)
            events = [self._event(slug, "record.updated", record_id, api=False, attribute=a) for a in changed]
        self._emit(events)

    def update_property(self, obj: str, record_id: str, name: str, value: Any) -> None:
        self.update(obj, record_id, {name: value})

    def delete(self, obj: str, record_id: str) -> None:
        with self._lock:
            slug = self._slug(obj)
            if self._get(slug, record_id) is None:
                raise KeyError(f"no {obj} {record_id}")
            self._gone[slug].add(record_id)
            events = [self._event(slug, "record.deleted", record_id, api=False)]
        self._emit(events)

    def merge(self, obj: str, primary_id: str, duplicate_id: str) -> str:
        """Copy the duplicate's values into the primary and delete the duplicate (``record.merged``)."""
        with self._lock:
            slug = self._slug(obj)
            primary, dup = self._get(slug, primary_id), self._get(slug, duplicate_id)
            if primary is None or dup is None:
                raise KeyError(f"both {obj} {primary_id} and {duplicate_id} must exist")
            for attr, history in dup.values.items():
                active = [v for v in history if v["active_until"] is None]
                mine = [v for v in primary.values.get(attr, []) if v["active_until"] is None]
                _, multi = self.attributes[slug][attr]
                if multi:
                    primary.values.setdefault(attr, []).extend(
                        dict(v) for v in active if not any(self._same(v, m) for m in mine)
                    )
                elif not mine and active:
                    primary.values.setdefault(attr, []).extend(dict(v) for v in active)
            self._gone[slug].add(duplicate_id)
            events = [self._event(slug, "record.merged", primary_id, api=False,
                                  duplicate_object_id=self.object_ids[slug], duplicate_record_id=duplicate_id)]  # fmt: skip
        self._emit(events)
        return primary_id

    # ================================================================ HTTP hooks
    def _limit_class(self, req: Request) -> str | None:
        if req.method == "GET" or (req.method == "POST" and req.path.endswith("/query")):
            return "read"
        return "write"

    def _error(
        self, status: int, type_: str, code: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return Response(
            status, {"status_code": status, "type": type_, "code": code, "message": message}, headers or {}
        )

    def _check_limits(self, limit_class: str | None) -> Response | None:
        ok, _ = (self._reads if limit_class == "read" else self._writes).hit()
        return None if ok else self._rate_limited(limit_class or "read")

    def _rate_limited(self, limit_class: str, *, storm: bool = False) -> Response:
        retry_after = self.faults.retry_after
        # "usually the following second"; an HTTP-date, so whole seconds
        retry_at = math.floor(time.time()) + (1 if retry_after is None else max(1, math.ceil(retry_after)))
        return self._error(429, "rate_limit_error", "rate_limit_exceeded", "Rate limit exceeded, please try again later",
                           {"Retry-After": email.utils.formatdate(retry_at, usegmt=True)})  # fmt: skip

    def _unauthorized(self, reason: str) -> Response:
        return self._error(401, "auth_error", "invalid_token" if reason != "missing" else "missing_token",
                           "The access token is invalid, revoked or missing.")  # fmt: skip

    def _server_error(self, status: int) -> Response:
        return self._error(
            status, "internal_server_error", "internal_server_error", "An unexpected error occurred."
        )

    def _route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        try:
            if len(parts) >= 4 and parts[:2] == ["v2", "objects"] and parts[3] == "records":
                obj = self._slug(parts[2])
                rest = parts[4:]
                m = req.method
                if m in ("POST", "PUT", "PATCH", "DELETE") and self._chance(self.conflict_rate):
                    return self._error(409, "invalid_request_error", "concurrent_write_conflict",
                                       "The record was modified by another request while this write was being "
                                       "validated. Please try again.")  # fmt: skip
                if rest == ["query"] and m == "POST":
                    return self._query(req, obj)
                if not rest and m == "POST":
                    return self._create_api(req, obj)
                if not rest and m == "PUT":
                    return self._assert_api(req, obj)
                if len(rest) == 1:
                    rid = rest[0]
                    if m == "GET":
                        with self._lock:
                            rec = self._get(obj, rid)
                            if rec is None:
                                return self._not_found(rid)
                            return Response(200, {"data": self._view(obj, rec)})
                    if m in ("PATCH", "PUT"):
                        return self._update_api(req, obj, rid, overwrite=m == "PUT")
                    if m == "DELETE":
                        with self._lock:
                            if self._get(obj, rid) is None:
                                return self._not_found(rid)
                            self._gone[obj].add(rid)
                            events = [self._event(obj, "record.deleted", rid, api=True)]
                        if self.emit_api_changes:
                            self._emit(events)
                        return Response(200, {})
        except _Invalid as exc:
            type_ = "invalid_request_error"
            return self._error(exc.status, type_, exc.code, str(exc))
        except (ValueError, TypeError) as exc:
            return self._error(
                400, "invalid_request_error", "validation_type", f"Invalid request body: {exc}"
            )
        return self._error(404, "invalid_request_error", "not_found", f"No route for {req.method} {req.path}")

    def _not_found(self, rid: str) -> Response:
        return self._error(404, "invalid_request_error", "not_found", f'Record with ID "{rid}" not found.')

    def _values_in(self, req: Request) -> dict[str, Any]:
        body = req.json() or {}
        data = body.get("data") if isinstance(body, dict) else None
        values = data.get("values") if isinstance(data, dict) else None
        if not isinstance(values, dict):
            raise _Invalid("Body payload validation error: data.values is required", "validation_type")
        return values

    def _query(self, req: Request, obj: str) -> Response:
        body = req.json() or {}
        limit = int(body.get("limit", MAX_LIMIT))
        offset = int(body.get("offset", 0))
        if limit < 1 or offset < 0:
            raise _Invalid("limit must be positive and offset non-negative")
        limit = min(limit, MAX_LIMIT)
        flt = body.get("filter")
        with self._lock:
            if flt:
                matched = [r for r in (self._get(obj, rid) for rid in self._ids(obj))
                           if r is not None and self._filter(obj, r, flt)]  # fmt: skip
                page = matched[offset : offset + limit]
            else:
                ids = self._ids(obj)[offset : offset + limit]
                page = [r for r in (self._get_transient(obj, rid) for rid in ids) if r is not None]
            data = [self._view(obj, r) for r in page]
        return Response(200, {"data": data})

    def _get_transient(self, obj: str, rid: str) -> AttioStoredRecord | None:
        """A record for a list page without caching lazily generated ones (keeps 500K queries light)."""
        rec = self._records[obj].get(rid)
        if rec is not None or obj not in self._lazy:
            return rec
        index = self._lazy_index.get(obj)
        if index is None:
            index = self._lazy_index[obj] = {r: i for i, r in enumerate(self._lazy[obj][0])}
        i = index.get(rid)
        return None if i is None else self._lazy[obj][1](i)

    def _filter(self, obj: str, rec: AttioStoredRecord, flt: Any) -> bool:
        if not isinstance(flt, dict):
            raise _Invalid("filter must be an object", "filter_error")
        for key, cond in flt.items():
            if key == "$and":
                if not all(self._filter(obj, rec, c) for c in cond):
                    return False
            elif key == "$or":
                if not any(self._filter(obj, rec, c) for c in cond):
                    return False
            elif key == "$not":
                if self._filter(obj, rec, cond):
                    return False
            else:
                if key not in self.attributes[obj]:
                    raise _Invalid(f'Unknown attribute "{key}" in filter', "filter_error")
                active = [v for v in rec.values.get(key, []) if v["active_until"] is None]
                if not any(_value_matches(v, cond) for v in active):
                    return False
        return True

    def _create_api(self, req: Request, obj: str) -> Response:
        values = self._values_in(req)
        with self._lock:
            owner = self._unique_owner(obj, values)
            if owner is not None:
                return self._error(400, "invalid_request_error", "uniqueness_conflict",
                                   f'Uniqueness violation: a record with this "{UNIQUE[obj]}" already exists '
                                   f'({owner}).')  # fmt: skip
            rec = self._new(obj, values, api=True)
            view = self._view(obj, rec)
            events = [self._event(obj, "record.created", rec.record_id, api=True)]
        if self.emit_api_changes:
            self._emit(events)
        return Response(200, {"data": view})

    def _assert_api(self, req: Request, obj: str) -> Response:
        matching = req.q("matching_attribute")
        if not matching:
            raise _Invalid("matching_attribute is required", "validation_type")
        if matching not in self.attributes[obj]:
            raise _Invalid(f'Cannot find attribute with slug/ID "{matching}".', "value_not_found")
        values = self._values_in(req)
        if matching not in values:
            raise _Invalid(f'The matching attribute "{matching}" must be given a value', "validation_type")
        with self._lock:
            wanted = values[matching]
            wanted_items = wanted if isinstance(wanted, list) else [wanted]
            keys = {self._unique_key(obj, x) if matching == UNIQUE.get(obj) else json.dumps(x, sort_keys=True)
                    for x in wanted_items}  # fmt: skip
            found: AttioStoredRecord | None = None
            for rid in self._ids(obj):
                rec = self._get_transient(obj, rid)
                if rec is None:
                    continue
                for v in rec.values.get(matching, []):
                    if v["active_until"] is not None:
                        continue
                    k = self._unique_key(obj, v) if matching == UNIQUE.get(obj) else json.dumps(
                        v.get("value"), sort_keys=True)  # fmt: skip
                    if k in keys:
                        found = self._get(obj, rid)
                        break
                if found is not None:
                    break
            if found is None:
                rec = self._new(obj, values, api=True)
                events = [self._event(obj, "record.created", rec.record_id, api=True)]
            else:
                rec = found
                changed = self._write_values(obj, rec, values, api=True, overwrite_multi=False)
                events = [
                    self._event(obj, "record.updated", rec.record_id, api=True, attribute=a) for a in changed
                ]
            view = self._view(obj, rec)
        if self.emit_api_changes:
            self._emit(events)
        return Response(200, {"data": view})

    def _update_api(self, req: Request, obj: str, rid: str, *, overwrite: bool) -> Response:
        values = self._values_in(req)
        with self._lock:
            rec = self._get(obj, rid)
            if rec is None:
                return self._not_found(rid)
            owner = self._unique_owner(obj, values, exclude=rid)
            if owner is not None:
                return self._error(400, "invalid_request_error", "uniqueness_conflict",
                                   f'Uniqueness violation: a record with this "{UNIQUE[obj]}" already exists.')  # fmt: skip
            changed = self._write_values(obj, rec, values, api=True, overwrite_multi=overwrite)
            view = self._view(obj, rec)
            events = [self._event(obj, "record.updated", rid, api=True, attribute=a) for a in changed]
        if self.emit_api_changes:
            self._emit(events)
        return Response(200, {"data": view})


def _value_matches(v: Mapping[str, Any], cond: Any) -> bool:
    plain = {k: val for k, val in v.items() if k not in ("active_from", "active_until", "created_by_actor",
                                                         "attribute_type")}  # fmt: skip
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
    raise _Invalid(f"Unknown filter operator {op}", "filter_error")


def _stable_id(title: Any) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"attio-option:{title}"))


def _employee_range(n: int) -> str:
    for hi, label in ((10, "1-10"), (50, "11-50"), (250, "51-250"), (1000, "251-1K"), (5000, "1K-5K"),
                      (10000, "5K-10K"), (50000, "10K-50K"), (100000, "50K-100K")):  # fmt: skip
        if n <= hi:
            return label
    return "100K+"


_COUNTRY_CODES = {"united states": "US", "usa": "US", "united kingdom": "GB", "uk": "GB", "france": "FR",
                  "germany": "DE", "spain": "ES", "italy": "IT", "netherlands": "NL", "canada": "CA",
                  "australia": "AU", "india": "IN", "japan": "JP", "brazil": "BR", "ireland": "IE",
                  "sweden": "SE", "singapore": "SG", "switzerland": "CH", "israel": "IL", "mexico": "MX",
                  "poland": "PL", "denmark": "DK", "norway": "NO", "finland": "FI", "portugal": "PT",
                  "belgium": "BE", "austria": "AT", "china": "CN", "south korea": "KR", "new zealand": "NZ",
                  "south africa": "ZA", "argentina": "AR", "nigeria": "NG", "kenya": "KE", "uae": "AE",
                  "united arab emirates": "AE"}  # fmt: skip


def _country_code(country: str | None) -> str | None:
    if not country:
        return None
    if len(country) == 2:
        return country.upper()
    return _COUNTRY_CODES.get(country.lower(), country)
