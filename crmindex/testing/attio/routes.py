"""The Attio REST v2 records API the clients use, with Attio's request and response shapes.

``POST /v2/objects/{object}/records/query`` (``limit`` default 500, ``offset``, ``filter``),
``GET|PATCH|PUT|DELETE /v2/objects/{object}/records/{id}`` (PATCH adds to multiselect values, PUT
overwrites them), ``POST /v2/objects/{object}/records`` (create; 400 ``uniqueness_conflict``) and
``PUT /v2/objects/{object}/records?matching_attribute=`` (assert: update the match or create). Bodies are
``{"data": {"values": {...}}}`` in and ``{"data": record}`` out; writes may be refused 409
``concurrent_write_conflict`` (``conflict_rate``). Writes through the API emit webhooks too, unless
``emit_api_changes`` is off. The query takes ``sorts`` (``created_at`` / ``record_id`` system attributes, or any
attribute). The new record of a merge still in progress answers 404 ``merge_in_progress``. Lists, entries and
workspace metadata: ``crmindex.testing.attio.lists``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from crmindex.testing._http import Request, Response
from crmindex.testing.attio import errors
from crmindex.testing.attio.activities import AttioActivities
from crmindex.testing.attio.errors import Invalid
from crmindex.testing.attio.lists import AttioLists
from crmindex.testing.attio.query import matches
from crmindex.testing.attio.schema import UNIQUE
from crmindex.testing.attio.store import AttioStore, AttioStoredRecord
from crmindex.testing.attio.values import HISTORY_FIELDS, active, unique_key
from crmindex.testing.attio.webhooks import AttioWebhooks, Event

MAX_LIMIT = 500  # the documented default; the fake also caps at it


class Settings(Protocol):
    """What the routes read from their fake at request time."""

    emit_api_changes: bool
    include_historic: bool
    conflict_rate: float


class AttioRoutes:
    def __init__(
        self,
        store: AttioStore,
        webhooks: AttioWebhooks,
        settings: Settings,
        chance: Callable[[float], bool],
        lists: AttioLists,
    ) -> None:
        self.store = store
        self.lists = (
            lists  # lists, entries, members, attributes, statuses, options (crmindex.testing.attio.lists)
        )
        self.ws = store.ws
        self.webhooks = webhooks
        self.settings = settings
        self._chance = chance  # the fake's seeded dice (shared with fault injection)
        self.activities = AttioActivities(self.ws, self._record_exists)  # notes and tasks (issue 16)

    def _record_exists(self, obj: str, rid: str) -> bool:
        with self.store.lock:
            return self.store.get(obj, rid) is not None

    def route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if (found_activity := self.activities.route(req, parts)) is not None:
            return found_activity
        if not (len(parts) >= 4 and parts[:2] == ["v2", "objects"] and parts[3] == "records"):
            with self.store.lock:
                found = self.lists.route(req, parts, self.ws.object_ids)
            if found is not None:
                return found
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
        sorts = _sorts(body.get("sorts"), self.ws.attributes[obj])
        attributes = self.ws.attributes[obj]
        with self.store.lock:
            if flt or (sorts and sorts[0][0] not in SYSTEM_SORTS):
                matched = [r for r in (self.store.get(obj, rid) for rid in self.store.ids(obj))
                           if r is not None and (not flt or matches(attributes, r, flt))]  # fmt: skip
                for attr, desc in reversed(sorts):  # stable sorts, the last key first
                    matched.sort(key=lambda r, a=attr: _sort_key(r, a), reverse=desc)  # type: ignore[misc]
                page = matched[offset : offset + limit]
            else:
                if sorts:  # created_at / record_id: the store's cached order
                    ids = self.store.sorted_ids(obj, sorts[0][0])
                    ids = list(reversed(ids)) if sorts[0][1] else ids
                else:  # no sort: the store's own order (the API promises none)
                    ids = self.store.ids(obj)
                page = [r for r in (self.store.get_transient(obj, rid) for rid in ids[offset : offset + limit])
                        if r is not None]  # fmt: skip
            data = [self._view(obj, r) for r in page]
        return Response(200, {"data": data})

    def _get(self, obj: str, rid: str) -> Response:
        with self.store.lock:
            if self.store.merge_in_progress(obj, rid):
                return errors.merge_in_progress(rid)
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
                changed = self.store.write_values(obj, rec, values, api=True, overwrite_multi=True,
                                                  append={matching})  # fmt: skip
                events = self.webhooks.updated(obj, rec.record_id, changed, api=True)
            view = self._view(obj, rec)
        self._emit(events)
        return Response(200, {"data": view})

    def _update(self, req: Request, obj: str, rid: str, *, overwrite: bool) -> Response:
        values = _values_in(req)
        with self.store.lock:
            if self.store.merge_in_progress(obj, rid):
                return errors.merge_in_progress(rid)
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


# The records query's ``sorts``: ``[{"direction": "asc"|"desc", "attribute": <slug>, "field"?: ...}]``
# (docs.attio.com "Filtering and sorting"). ``created_at`` and ``record_id`` are system attributes every record
# has (the UI sorts by "Record ID" too); the fake orders by them without building every value.
SYSTEM_SORTS = ("created_at", "record_id")


def _sorts(raw: Any, attributes: dict[str, tuple[str, bool]]) -> list[tuple[str, bool]]:
    """[(attribute, descending)]; a malformed sort or an unknown attribute is a 400 ``validation_type``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Invalid("sorts must be an array", "validation_type")
    out: list[tuple[str, bool]] = []
    for item in raw:
        attr = item.get("attribute") if isinstance(item, dict) else None
        direction = item.get("direction") if isinstance(item, dict) else None
        if direction not in ("asc", "desc") or not isinstance(attr, str):
            raise Invalid("each sort needs an attribute and a direction (asc or desc)", "validation_type")
        if attr not in SYSTEM_SORTS and attr not in attributes:
            raise Invalid(f'Cannot find attribute with slug/ID "{attr}".', "value_not_found")
        out.append((attr, direction == "desc"))
    # created_at then record_id is one order; record_id alone another
    if len(out) >= 2 and out[0][0] == "created_at" and out[1][0] == "record_id" and out[0][1] == out[1][1]:
        return [out[0]]
    return out


def _sort_key(rec: AttioStoredRecord, attr: str) -> tuple[int, str]:
    if attr in SYSTEM_SORTS:
        return (0, rec.created_at if attr == "created_at" else rec.record_id)
    vals = active(rec.values.get(attr, []))
    if not vals:
        return (1, "")  # empty values last
    plain = {k: v for k, v in vals[0].items() if k not in (*HISTORY_FIELDS, "attribute_type")}
    return (0, json.dumps(plain, sort_keys=True, default=str))


def _values_in(req: Request) -> dict[str, Any]:
    body = req.json() or {}
    data = body.get("data") if isinstance(body, dict) else None
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise Invalid("Body payload validation error: data.values is required", "validation_type")
    return values


def _plain_value_key(v: dict[str, Any]) -> str:
    return json.dumps(v.get("value"), sort_keys=True)
