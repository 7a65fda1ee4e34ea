"""The HubSpot CRM v3/v4 HTTP API the clients use, with HubSpot's request and response shapes.

Objects: list (``{"paging": {"next": {"after": ...}}}``), get, create, update and archive, each record
``{"id", "properties", "createdAt", "updatedAt", "archived"(, "archivedAt")}`` with every property value a
string; batch read/create/update/upsert/archive (400 for more than 100 inputs, 207 multi-status ``errors``
for partial failures); merge (contacts, companies, deals); search (``search.py``); v4 association batch
reads and default association create. Writes through the API emit webhooks too (``changeSource``
``API``), like a real portal echoing an integration's own writes, unless ``emit_api_changes`` is off.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Protocol

from crmindex.testing._http import Request, Response
from crmindex.testing.hubspot import errors
from crmindex.testing.hubspot.errors import BadRequest
from crmindex.testing.hubspot.model import (
    ASSOC_TYPES,
    LEAD_STATUS_OPTIONS,
    LIFECYCLE_OPTIONS,
    NUMERIC,
    READ_ONLY,
    SINGULAR,
    WRITABLE,
    iso_ms,
    now_ms,
    object_type,
)
from crmindex.testing.hubspot.portal import Portal
from crmindex.testing.hubspot.search import search
from crmindex.testing.hubspot.store import HubSpotRecord
from crmindex.testing.hubspot.webhooks import Event, HubSpotWebhooks

BATCH_LIMIT = 100
ASSOC_BATCH_LIMIT = 1000
ASSOC_PAGE_SIZE = 500

Result = tuple[list[dict[str, Any]], list[dict[str, Any]], list[Event]]  # results, errors, events


def encode_after(next_id: int) -> str:
    return base64.b64encode(f"{next_id}\n".encode()).decode()


def decode_after(after: str) -> int | None:
    try:
        return int(base64.b64decode(after.encode(), validate=True).decode().strip())
    except (ValueError, UnicodeDecodeError):
        return int(after) if after.isdigit() else None


class Settings(Protocol):
    """What the routes read from their fake at request time."""

    emit_api_changes: bool
    search_lag: float
    search_cap: int


class HubSpotRoutes:
    def __init__(self, portal: Portal, webhooks: HubSpotWebhooks, settings: Settings) -> None:
        self.portal = portal
        self.webhooks = webhooks
        self.settings = settings

    def route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        m = req.method
        try:
            if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
                kind = object_type(parts[3])
                if kind not in self.portal.stores:
                    return errors.error(
                        400, f"Unable to infer object type from: {parts[3]}", "VALIDATION_ERROR"
                    )
                rest = parts[4:]
                if not rest:
                    if m == "GET":
                        return self._list(req, kind)
                    if m == "POST":
                        return self._create_one(req, kind)
                elif len(rest) == 1 and rest[0] == "search" and m == "POST":
                    s = self.settings
                    return search(self.portal, kind, req, lag=s.search_lag, cap=s.search_cap)
                elif len(rest) == 1 and rest[0] == "merge" and m == "POST":
                    return self._merge(req, kind)
                elif len(rest) == 2 and rest[0] == "batch" and m == "POST":
                    return self._batch(req, kind, rest[1])
                elif len(rest) == 1:
                    if m == "GET":
                        return self._get_one(req, kind, rest[0])
                    if m == "PATCH":
                        return self._patch_one(req, kind, rest[0])
                    if m == "DELETE":
                        return self._archive_one(kind, rest[0])
            if (
                parts[:3] == ["crm", "v4", "associations"]
                and len(parts) == 7
                and parts[5:] == ["batch", "read"]
            ):
                return self._assoc_batch_read(req, object_type(parts[3]), object_type(parts[4]))
            if (
                parts[:3] == ["crm", "v4", "objects"]
                and len(parts) == 9
                and parts[6] == "default"
                and m == "PUT"
            ):
                return self._assoc_default(parts)
        except BadRequest as exc:
            return errors.bad_request(exc)
        return errors.not_found(f"No route for {m} {req.path}")

    def _emit(self, events: list[Event]) -> None:
        if self.settings.emit_api_changes:
            self.webhooks.emit(events)

    # ================================================================ objects
    def _list(self, req: Request, kind: str) -> Response:
        try:
            limit = int(req.q("limit", "10") or 10)
        except ValueError as exc:
            raise BadRequest("limit must be an integer") from exc
        limit = max(1, min(limit, 100))
        archived = _archived_param(req)
        after = req.q("after")
        start = 0
        if after:
            decoded = decode_after(after)
            if decoded is None:
                raise BadRequest(f"Invalid input JSON: after={after[:20]}")
            start = decoded
        names = _props_param(req)
        assoc_kinds = [object_type(a) for a in (_prop_names(req.q("associations")) or [])]
        with self.portal.lock:
            st = self.portal.store(kind)
            results: list[dict[str, Any]] = []
            next_id: int | None = None
            for oid in st.archived_ids_from(start) if archived else st.ids_from(start):
                rec = st.get(oid)
                if rec is None or rec.archived != archived:
                    continue
                if len(results) == limit:
                    next_id = oid
                    break
                view = rec.view(kind, names)
                if assoc_kinds:
                    view["associations"] = self._inline_assoc(kind, oid, assoc_kinds)
                results.append(view)
        body: dict[str, Any] = {"results": results}
        if next_id is not None:
            token = encode_after(next_id)
            body["paging"] = {"next": {"after": token, "link": f"?after={token}"}}
        return Response(200, body)

    def _inline_assoc(self, kind: str, oid: int, to_kinds: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for tk in to_kinds:
            if (kind, tk) not in ASSOC_TYPES:
                continue
            targets = self.portal.associations(kind, oid, tk)
            if targets:
                label = f"{SINGULAR[kind]}_to_{SINGULAR[tk]}"
                out[tk] = {"results": [{"id": str(t), "type": label} for t in sorted(targets)]}
        return out

    def _get_one(self, req: Request, kind: str, raw_id: str) -> Response:
        archived = _archived_param(req)
        with self.portal.lock:
            rec = self.portal.store(kind).resolve(raw_id, req.q("idProperty"))
            if rec is None or rec.archived != archived:
                return errors.not_found("Object not found.  objectId are usually numeric.",
                                        context={"id": [raw_id]})  # fmt: skip
            view = rec.view(kind, _props_param(req))
        return Response(200, view)

    def _create_one(self, req: Request, kind: str) -> Response:
        body, props = _input(req, kind)
        with self.portal.lock:
            conflict = self._conflict(kind, props)
            if conflict is not None:
                return errors.error(409, conflict, "CONFLICT")
            rec = self._create(kind, props, body.get("associations") or [])
            view = rec.view(kind, list(props))
            events = [self.webhooks.creation(kind, rec, "API")]
        self._emit(events)
        return Response(201, view)

    def _patch_one(self, req: Request, kind: str, raw_id: str) -> Response:
        _, props = _input(req, kind)
        with self.portal.lock:
            rec = self.portal.store(kind).resolve(raw_id, req.q("idProperty"))
            if rec is None or rec.archived:
                return errors.not_found("resource not found", context={"id": [raw_id]})
            events = self._update(kind, rec.id, props)
            view = self.portal.store(kind).get(rec.id)
            assert view is not None
            out = view.view(kind, list(props))
        self._emit(events)
        return Response(200, out)

    def _archive_one(self, kind: str, raw_id: str) -> Response:
        with self.portal.lock:
            events = self._archive(kind, raw_id)
        self._emit(events)
        return Response(204)

    def _merge(self, req: Request, kind: str) -> Response:
        body = req.json() or {}
        try:
            pid, mid = int(str(body["primaryObjectId"])), int(str(body["objectIdToMerge"]))
        except (KeyError, ValueError) as exc:
            raise BadRequest("primaryObjectId and objectIdToMerge are required") from exc
        with self.portal.lock:
            try:
                primary, n_moved = self.portal.merge(kind, pid, mid)
            except (KeyError, ValueError) as exc:
                return errors.error(400, str(exc).strip("'\""), "VALIDATION_ERROR")
            view = primary.view(kind, None)
            events = [self.webhooks.event(kind, "merge", pid, source="API", primaryObjectId=pid,
                                          mergedObjectIds=[mid], newObjectId=pid,
                                          numberOfPropertiesMoved=n_moved)]  # fmt: skip
        self._emit(events)
        return Response(200, view)

    # -- the writes single and batch endpoints share (call with the portal's lock held) -----------
    def _create(
        self, kind: str, props: Mapping[str, Any], associations: list[dict[str, Any]]
    ) -> HubSpotRecord:
        rec = self.portal.store(kind).new(props)
        self.portal.links.on_create(kind, rec, associations)
        return rec

    def _update(self, kind: str, oid: int, props: Mapping[str, Any]) -> list[Event]:
        changes, at = self.portal.update(kind, oid, props)
        return self.webhooks.property_changes(kind, oid, changes, at, "API")

    def _archive(self, kind: str, raw_id: str) -> list[Event]:
        """Archive the record ``raw_id`` names (following merges); nothing when it is gone or archived."""
        rec = self.portal.store(kind).resolve(raw_id, None)
        if rec is None or rec.archived:
            return []
        rec = self.portal.store(kind).archive(rec)
        return [self.webhooks.deletion(kind, rec, "API")]

    def _conflict(self, kind: str, props: Mapping[str, Any], self_id: int | None = None) -> str | None:
        """Why HubSpot refuses the write with 409 CONFLICT: another live contact has the same email."""
        if kind != "contacts" or not props.get("email"):
            return None
        existing = self.portal.store(kind).find_unique(str(props["email"]))
        if existing is not None and existing.id != self_id and not existing.archived:
            return f"Contact already exists. Existing ID: {existing.id}"
        return None

    # ================================================================ batch
    def _batch(self, req: Request, kind: str, op: str) -> Response:
        body = req.json() or {}
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise BadRequest("Invalid input JSON on line 1: inputs is required")
        if len(inputs) > BATCH_LIMIT:
            raise BadRequest(f"Batch input limit exceeded: {len(inputs)} inputs; the limit is {BATCH_LIMIT}",
                             context={"limit": [str(BATCH_LIMIT)]})  # fmt: skip
        started = iso_ms(now_ms())
        if op == "read":
            results, errs, events = self._batch_read(req, kind, body, inputs)
        elif op in ("create", "update", "upsert"):
            results, errs, events = self._batch_write(kind, op, inputs)
        elif op == "archive":
            with self.portal.lock:
                events = [ev for inp in inputs for ev in self._archive(kind, str(inp.get("id", "")))]
            self._emit(events)
            return Response(204)
        else:
            return errors.not_found(f"No route for batch/{op}")
        self._emit(events)
        return _batch_response(results, errs, started, 201 if op == "create" else 200)

    def _batch_read(self, req: Request, kind: str, body: dict[str, Any], inputs: list[Any]) -> Result:
        archived = _archived_param(req)
        names = body.get("properties") or None
        id_property = body.get("idProperty")
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        seen: set[int] = set()
        with self.portal.lock:
            st = self.portal.store(kind)
            for inp in inputs:
                raw = str((inp or {}).get("id", ""))
                rec = st.resolve(raw, id_property)
                if rec is None or rec.archived != archived:
                    missing.append(raw)
                    continue
                if rec.id in seen:
                    continue
                seen.add(rec.id)
                results.append(rec.view(kind, names))
        errs = []
        if missing:
            errs.append({
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {SINGULAR[kind].upper()} objects, they may be deleted or not exist. "
                           "Check that ids are valid.",
                "context": {"ids": missing},
                "errors": [],
                "links": {},
            })  # fmt: skip
        return results, errs, []

    def _batch_write(self, kind: str, op: str, inputs: list[Any]) -> Result:
        results: list[dict[str, Any]] = []
        errs: list[dict[str, Any]] = []
        events: list[Event] = []
        with self.portal.lock:
            st = self.portal.store(kind)
            for raw_inp in inputs:
                inp = raw_inp if isinstance(raw_inp, dict) else {}
                props = inp.get("properties") or {}
                key = None if op == "create" else str(inp.get("id", ""))
                msg = _invalid_props(kind, props)
                if msg:
                    errs.append(_item_error(inp, msg, "VALIDATION_ERROR", key))
                    continue
                rec: HubSpotRecord | None
                is_new = False
                if op == "create":
                    if (conflict := self._conflict(kind, props)) is not None:
                        errs.append(_item_error(inp, conflict, "CONFLICT", None))
                        continue
                    rec = self._create(kind, props, inp.get("associations") or [])
                    events.append(self.webhooks.creation(kind, rec, "API"))
                else:
                    id_property = inp.get("idProperty")
                    rec = st.resolve(key or "", id_property)
                    if rec is not None and rec.archived:
                        rec = None
                    if rec is None and op == "upsert" and id_property and id_property != "hs_object_id":
                        rec = self._create(kind, {**props, id_property: key}, [])
                        is_new = True
                        events.append(self.webhooks.creation(kind, rec, "API"))
                    if rec is None:
                        errs.append(_item_error(
                            inp, f"Object not found. objectId {key} does not exist", "OBJECT_NOT_FOUND", key))  # fmt: skip
                        continue
                    if not is_new:
                        if (conflict := self._conflict(kind, props, self_id=rec.id)) is not None:
                            errs.append(_item_error(inp, conflict, "CONFLICT", key))
                            continue
                        events.extend(self._update(kind, rec.id, props))
                        rec = st.get(rec.id)
                        assert rec is not None
                view = rec.view(kind, list(props) + (["email"] if kind == "contacts" else []))
                if inp.get("objectWriteTraceId") is not None:
                    view["objectWriteTraceId"] = str(inp["objectWriteTraceId"])
                if op == "upsert":
                    view["new"] = is_new
                results.append(view)
        return results, errs, events

    # ================================================================ associations (v4)
    def _assoc_batch_read(self, req: Request, fk: str, tk: str) -> Response:
        if (fk, tk) not in ASSOC_TYPES:
            raise BadRequest(f"Unknown association {fk} -> {tk}")
        body = req.json() or {}
        inputs = body.get("inputs") or []
        if len(inputs) > ASSOC_BATCH_LIMIT:
            raise BadRequest(f"Batch input limit exceeded: the limit is {ASSOC_BATCH_LIMIT}")
        unl, prim = ASSOC_TYPES[(fk, tk)]
        started = iso_ms(now_ms())
        results: list[dict[str, Any]] = []
        errs: list[dict[str, Any]] = []
        for inp in inputs:
            raw = str(inp.get("id", ""))
            start = int(str(inp.get("after") or 0)) if str(inp.get("after") or "0").isdigit() else 0
            targets = self.portal.associations(fk, int(raw), tk) if raw.isdigit() else {}
            if not targets:
                errs.append({
                    "status": "error", "category": "VALIDATION_ERROR",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "message": f"No {SINGULAR[tk]} is associated with {SINGULAR[fk]} {raw}.",
                    "context": {"fromObjectId": [raw]}, "errors": [], "links": {},
                })  # fmt: skip
                continue
            ordered = sorted(targets.items())
            chunk = ordered[start : start + ASSOC_PAGE_SIZE]
            to = []
            for to_id, is_primary in chunk:
                types = [{"category": "HUBSPOT_DEFINED", "typeId": unl, "label": None}]
                if is_primary and prim is not None:
                    types.insert(0, {"category": "HUBSPOT_DEFINED", "typeId": prim, "label": "Primary"})
                to.append({"toObjectId": to_id, "associationTypes": types})
            res: dict[str, Any] = {"from": {"id": raw}, "to": to}
            if start + ASSOC_PAGE_SIZE < len(ordered):
                res["paging"] = {"next": {"after": str(start + ASSOC_PAGE_SIZE), "link": None}}
            results.append(res)
        return _batch_response(results, errs, started, 200)

    def _assoc_default(self, parts: list[str]) -> Response:
        fk, tk = object_type(parts[3]), object_type(parts[7])
        fid, tid = int(parts[4]), int(parts[8])
        if (fk, tk) not in ASSOC_TYPES:
            raise BadRequest(f"Unknown association {fk} -> {tk}")
        with self.portal.lock:
            self.portal.links.connect(fk, fid, tk, tid, primary=False)
        return Response(200, {"status": "COMPLETE", "results": [
            {"from": {"id": str(fid)}, "to": {"id": str(tid)},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": ASSOC_TYPES[(fk, tk)][0]}}
        ]})  # fmt: skip


# ==================================================================== request and response shapes
def _prop_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [p.strip() for p in value.split(",") if p.strip()]


def _props_param(req: Request) -> list[str] | None:
    """``?properties=a,b&properties=c``: the properties to return (None: the default ones)."""
    vals = req.query.get("properties")
    if not vals:
        return None
    out: list[str] = []
    for v in vals:
        out.extend(_prop_names(v) or [])
    return out


def _archived_param(req: Request) -> bool:
    return (req.q("archived", "false") or "false").lower() == "true"


def _input(req: Request, kind: str) -> tuple[dict[str, Any], Any]:
    """The body and its ``properties`` of a single-record write; :class:`BadRequest` when they are invalid."""
    body = req.json() or {}
    props = body.get("properties", {})
    msg = _invalid_props(kind, props)
    if msg:
        raise BadRequest(msg)
    return body, props


def _invalid_props(kind: str, props: Any) -> str | None:
    """An error message for invalid input properties, else None."""
    if not isinstance(props, dict):
        return "properties must be an object"
    bad_ro = sorted(k for k in props if k in READ_ONLY)
    if bad_ro:
        return f"Property values were not valid: {bad_ro[0]!r} is a read only property"
    unknown = sorted(k for k in props if k not in WRITABLE[kind])
    if unknown:
        return f'Property values were not valid: Property "{unknown[0]}" does not exist'
    for k, v in props.items():
        if v is None or v == "":
            continue
        s = str(v)
        if k == "email" and ("@" not in s or s.startswith("@") or s.endswith("@") or " " in s):
            return f"Property values were not valid: Email address {s} is invalid"
        if k == "lifecyclestage" and s.lower() not in LIFECYCLE_OPTIONS and not s.isdigit():
            return f"Property values were not valid: {s} was not one of the allowed options"
        if k == "hs_lead_status" and s not in LEAD_STATUS_OPTIONS:
            return f"Property values were not valid: {s} was not one of the allowed options"
        if k in NUMERIC and k != "hs_object_id":
            try:
                float(s)
            except ValueError:
                return f"Property values were not valid: {s} is not a valid number for {k}"
    return None


def _item_error(inp: Mapping[str, Any], message: str, category: str, key: str | None) -> dict[str, Any]:
    """One input's entry in a batch answer's ``errors`` (its id and ``objectWriteTraceId`` in ``context``)."""
    ctx: dict[str, list[str]] = {}
    if key is not None:
        ctx["ids"] = [key]
    trace = inp.get("objectWriteTraceId")
    if trace is not None:
        ctx["objectWriteTraceId"] = [str(trace)]
    err: dict[str, Any] = {"status": "error", "category": category, "message": message, "context": ctx,
                           "errors": [], "links": {}}  # fmt: skip
    if trace is not None:
        err["id"] = str(trace)
    return err


def _batch_response(
    results: list[dict[str, Any]], errs: list[dict[str, Any]], started: str, ok: int
) -> Response:
    """A batch answer: ``ok`` when every input succeeded, else 207 multi-status with ``numErrors``/``errors``."""
    out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                           "completedAt": iso_ms(now_ms())}  # fmt: skip
    if errs:
        out["numErrors"] = len(errs)
        out["errors"] = errs
        return Response(207, out)
    return Response(ok, out)
