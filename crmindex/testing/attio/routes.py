"""The Attio REST v2 records API the clients use, with Attio's request and response shapes.

``POST /v2/objects/{object}/records/query`` (``limit`` default 500, ``offset``, ``filter``),
``GET|PATCH|PUT|DELETE /v2/objects/{object}/records/{id}`` (PATCH adds to multiselect values, PUT
overwrites them), ``POST /v2/objects/{object}/records`` (create; 400 ``uniqueness_conflict``) and
``PUT /v2/objects/{object}/records?matching_attribute=`` (assert: update the match or create). Bodies are
``{"data": {"values": {...}}}`` in and ``{"data": record}`` out; writes may be refused 409
``concurrent_write_conflict`` (``conflict_rate``). Writes through the API emit webhooks too, unless
``emit_api_changes`` is off.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from crmindex.testing._http import Request, Response
from crmindex.testing.attio import errors
from crmindex.testing.attio.errors import Invalid
from crmindex.testing.attio.query import matches
from crmindex.testing.attio.schema import UNIQUE
from crmindex.testing.attio.store import AttioStore, AttioStoredRecord
from crmindex.testing.attio.values import unique_key
from crmindex.testing.attio.webhooks import AttioWebhooks, Event

MAX_LIMIT = 500  # the documented default; the fake also caps at it


class Settings(Protocol):
    """What the routes read from their fake at request time."""

    emit_api_changes: bool
    include_historic: bool
    conflict_rate: float


class AttioRoutes:
    def __init__(
        self, store: AttioStore, webhooks: AttioWebhooks, settings: Settings, chance: Callable[[float], bool]
    ) -> None:
        self.store = store
        self.ws = store.ws
        self.webhooks = webhooks
        self.settings = settings
        self._chance = chance  # the fake's seeded dice (shared with fault injection)

    def route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        try:
            if len(parts) >= 4 and parts[:2] == ["v2", "objects"] and parts[3] == "records":
                obj = self.ws.slug(parts[2])
                rest = parts[4:]
                m = req.method
                if m in ("POST", "PUT", "PATCH", "DELETE") and self._chance(self.settings.conflict_rate):
                    return errors.invalid(409, "concurrent_write_conflict",
                                          "The record was modified by another request while this write was being "
                                          "validated. Please try again.")  # fmt: skip
                if rest == ["query"] and m == "POST":
                    return self._query(req, obj)
                if not rest and m == "POST":
                    return self._create(req, obj)
                if not rest and m == "PUT":
                    return self._assert(req, obj)
                if len(rest) == 1:
                    rid = rest[0]
                    if m == "GET":
                        return self._get(obj, rid)
                    if m in ("PATCH", "PUT"):
                        return self._update(req, obj, rid, overwrite=m == "PUT")
                    if m == "DELETE":
                        return self._delete(obj, rid)
        except Invalid as exc:
            return errors.invalid(exc.status, exc.code, str(exc))
        except (ValueError, TypeError) as exc:
            return errors.invalid(400, "validation_type", f"Invalid request body: {exc}")
        return errors.invalid(404, "not_found", f"No route for {req.method} {req.path}")

    def _view(self, obj: str, rec: AttioStoredRecord) -> dict[str, Any]:
        return self.store.view(obj, rec, historic=self.settings.include_historic)

    def _emit(self, events: list[Event]) -> None:
        if self.settings.emit_api_changes:
            self.webhooks.emit(events)

    def _query(self, req: Request, obj: str) -> Response:
        body = req.json() or {}
        limit = int(body.get("limit", MAX_LIMIT))
        offset = int(body.get("offset", 0))
        if limit < 1 or offset < 0:
            raise Invalid("limit must be positive and offset non-negative")
        limit = min(limit, MAX_LIMIT)
        flt = body.get("filter")
        attributes = self.ws.attributes[obj]
        with self.store.lock:
            if flt:
                matched = [r for r in (self.store.get(obj, rid) for rid in self.store.ids(obj))
                           if r is not None and matches(attributes, r, flt)]  # fmt: skip
                page = matched[offset : offset + limit]
            else:
                ids = self.store.ids(obj)[offset : offset + limit]
                page = [r for r in (self.store.get_transient(obj, rid) for rid in ids) if r is not None]
            data = [self._view(obj, r) for r in page]
        return Response(200, {"data": data})

    def _get(self, obj: str, rid: str) -> Response:
        with self.store.lock:
            rec = self.store.get(obj, rid)
            if rec is None:
                return errors.not_found(rid)
            return Response(200, {"data": self._view(obj, rec)})

    def _create(self, req: Request, obj: str) -> Response:
        values = _values_in(req)
        with self.store.lock:
            owner = self.store.unique_owner(obj, values)
            if owner is not None:
                return errors.uniqueness_conflict(UNIQUE[obj], owner)
            rec = self.store.new(obj, values, api=True)
            view = self._view(obj, rec)
            events = [self.webhooks.event(obj, "record.created", rec.record_id, api=True)]
        self._emit(events)
        return Response(200, {"data": view})

    def _assert(self, req: Request, obj: str) -> Response:
        matching = req.q("matching_attribute")
        if not matching:
            raise Invalid("matching_attribute is required", "validation_type")
        self.ws.attribute(obj, matching)
        values = _values_in(req)
        if matching not in values:
            raise Invalid(f'The matching attribute "{matching}" must be given a value', "validation_type")
        with self.store.lock:
            wanted = values[matching]
            wanted_items = wanted if isinstance(wanted, list) else [wanted]
            if matching == UNIQUE.get(obj):
                found = self.store.find(obj, matching, {unique_key(x) for x in wanted_items}, unique_key)
            else:  # any other attribute: its plain value, compared as JSON
                keys = {json.dumps(x, sort_keys=True) for x in wanted_items}
                found = self.store.find(obj, matching, keys, _plain_value_key)
            if found is None:
                rec = self.store.new(obj, values, api=True)
                events = [self.webhooks.event(obj, "record.created", rec.record_id, api=True)]
            else:
                rec = found
                changed = self.store.write_values(obj, rec, values, api=True, overwrite_multi=False)
                events = self.webhooks.updated(obj, rec.record_id, changed, api=True)
            view = self._view(obj, rec)
        self._emit(events)
        return Response(200, {"data": view})

    def _update(self, req: Request, obj: str, rid: str, *, overwrite: bool) -> Response:
        values = _values_in(req)
        with self.store.lock:
            rec = self.store.get(obj, rid)
            if rec is None:
                return errors.not_found(rid)
            owner = self.store.unique_owner(obj, values, exclude=rid)
            if owner is not None:
                return errors.uniqueness_conflict(UNIQUE[obj])
            changed = self.store.write_values(obj, rec, values, api=True, overwrite_multi=overwrite)
            view = self._view(obj, rec)
            events = self.webhooks.updated(obj, rid, changed, api=True)
        self._emit(events)
        return Response(200, {"data": view})

    def _delete(self, obj: str, rid: str) -> Response:
        with self.store.lock:
            if self.store.get(obj, rid) is None:
                return errors.not_found(rid)
            self.store.delete(obj, rid)
            events = [self.webhooks.event(obj, "record.deleted", rid, api=True)]
        self._emit(events)
        return Response(200, {})


def _values_in(req: Request) -> dict[str, Any]:
    body = req.json() or {}
    data = body.get("data") if isinstance(body, dict) else None
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise Invalid("Body payload validation error: data.values is required", "validation_type")
    return values


def _plain_value_key(v: dict[str, Any]) -> str:
    return json.dumps(v.get("value"), sort_keys=True)
