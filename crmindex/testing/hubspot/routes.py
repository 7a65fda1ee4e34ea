"""The HubSpot CRM v3/v4 HTTP API the clients use, with HubSpot's request and response shapes.

Objects: list (``{"paging": {"next": {"after": ...}}}``), get, create, update and archive, each record
``{"id", "properties", "createdAt", "updatedAt", "archived"(, "archivedAt")}`` with every property value a
string; batch read/create/update/upsert/archive (400 for more than 100 inputs); merge (contacts, companies,
deals); search (``search.py``); v4 association reads (batch and per record) and default association create;
pipelines and owners (``metadata.py``). Writes through the API emit webhooks too (``changeSource`` ``API``), like
a real portal echoing an integration's own writes, unless ``emit_api_changes`` is off.

Batch writes fail as a whole. An invalid value in one input (a malformed email, an option not in the property's
list, an unknown or read-only property) answers 400 ``VALIDATION_ERROR`` for the entire call, and a unique value
already taken (a contact's email, in another record or twice in the batch) 409 ``CONFLICT``: nothing is written,
and the answer names only the first offender, in the body HubSpot documents: ``"Property values were not valid:
[{"isValid":false,"message":...,"error":"INVALID_EMAIL","name":"email"}]"`` (developers.hubspot.com/changelog/
upcoming-property-validations-rules-will-be-enforced-for-apis-and-integrations;
community.hubspot.com/t5/APIs-Integrations/contacts-integration-invalid-e-mails/td-p/833439) and ``"Contact already
exists. Existing ID: 123"`` (HubSpot/hubspot-api-python#51: a batch of several existing contacts names only the
first; Joystream/youtube-synch#355: two inputs with one email). The spec's 207 multi-status is what batch *read*
answers for ids it does not find, and what batch update answers for ids that do not exist (the other inputs land).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from crmindex.testing._http import Request, Response
from crmindex.testing.hubspot import errors
from crmindex.testing.hubspot.engagements import ENGAGEMENTS, EngagementStore, lag_of
from crmindex.testing.hubspot.errors import BadRequest
from crmindex.testing.hubspot.metadata import PortalMetadata
from crmindex.testing.hubspot.model import (
    ASSOC_TYPES,
    LEAD_STATUS_OPTIONS,
    LIFECYCLE_OPTIONS,
    NUMERIC,
    OBJECT_TYPE_ID,
    READ_ONLY,
    SINGULAR,
    UNIQUE_ID_PROPERTIES,
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

    portal_id: int
    emit_api_changes: bool
    search_lag: float
    search_cap: int
    merge_creates_new_object: bool
    inline_association_limit: int
    association_page_size: int


@dataclass(frozen=True)
class Invalid:
    """Why HubSpot refuses one input: HTTP status, category, the property and its error code, the message."""

    status: int
    category: str
    message: str
    name: str | None = None
    code: str | None = None

    def response(self) -> Response:
        """The whole call's answer: 400 ``VALIDATION_ERROR`` naming the property, or 409 ``CONFLICT``."""
        if self.status == 400 and self.name is not None:
            detail = [{"isValid": False, "message": self.message, "error": self.code, "name": self.name}]
            return errors.error(400, "Property values were not valid: " + json.dumps(detail, separators=(",", ":")),
                                "VALIDATION_ERROR")  # fmt: skip
        return errors.error(self.status, self.message, self.category)


class HubSpotRoutes:
    def __init__(
        self,
        portal: Portal,
        webhooks: HubSpotWebhooks,
        settings: Settings,
        meta: PortalMetadata | None = None,
    ) -> None:
        self.portal = portal
        self.webhooks = webhooks
        self.settings = settings
        self.meta = meta or PortalMetadata()
        # notes, calls, meetings, emails, tasks (issue 16): their own store, associated with the portal's records
        self.engagements = EngagementStore(self._record_exists, lag_of(settings))

    def _record_exists(self, kind: str, oid: int) -> bool:
        with self.portal.lock:
            rec = self.portal.store(kind).get(oid)
        return rec is not None and not rec.archived

    def route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        m = req.method
        try:
            meta = self.meta.route(req, parts)
            if meta is not None:
                return meta
            if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
                kind = object_type(parts[3])
                found = self.engagements.route(req, kind, parts[4:]) if kind in ENGAGEMENTS else None
                if found is not None:
                    return found
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
            v4_pair = parts[:3] == ["crm", "v4", "objects"] and len(parts) == 8 and parts[5] == "associations"
            if v4_pair and m in ("PUT", "DELETE"):  # labeled create / remove all (issue 16)
                return self._assoc_write(req, parts, remove=m == "DELETE")
            if (
                parts[:3] == ["crm", "v4", "objects"]
                and len(parts) == 7
                and parts[5] == "associations"
                and m == "GET"
            ):
                return self._assoc_page(req, object_type(parts[3]), parts[4], object_type(parts[6]))
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
                inline = self._inline_assoc(kind, oid, assoc_kinds) if assoc_kinds else {}
                if inline:  # the key is absent when the record has none of the types asked for
                    view["associations"] = inline
                results.append(view)
        body: dict[str, Any] = {"results": results}
        if next_id is not None:
            token = encode_after(next_id)
            body["paging"] = {"next": {"after": token, "link": f"?after={token}"}}
        return Response(200, body)

    def _inline_assoc(self, kind: str, oid: int, to_kinds: list[str]) -> dict[str, Any]:
        """A record's ``associations`` as list and get return them (``?associations=companies``): per type
        ``{"results": [{"id", "type"}], "paging"}``, the key absent when there are none. An association with a
        primary label is listed once per label: ``deal_to_company_unlabeled``, and the primary one also as
        ``deal_to_company`` (public samples of v3 answers: ``{"id": "900", "type": "contact_to_company"},
        {"id": "900", "type": "contact_to_company_unlabeled"}``; the HubSpot.NET ``AssociationType`` enum); pairs
        without a primary label (deal -> contact) read ``deal_to_contact``. Results come in the order the
        associations were made, not by id, and a long list stops after ``inline_association_limit`` entries with
        ``paging.next`` (the spec's ``CollectionResponseAssociatedId`` carries ``paging``; the page size of inline
        associations is not documented [unverified])."""
        out: dict[str, Any] = {}
        limit = self.settings.inline_association_limit
        for tk in to_kinds:
            if (kind, tk) not in ASSOC_TYPES:
                continue
            targets = self.portal.associations(kind, oid, tk)
            if not targets:
                continue
            base = f"{SINGULAR[kind]}_to_{SINGULAR[tk]}"
            has_primary = ASSOC_TYPES[(kind, tk)][1] is not None
            entries: list[dict[str, str]] = []
            for t, is_primary in targets.items():
                entries.append({"id": str(t), "type": f"{base}_unlabeled" if has_primary else base})
                if is_primary and has_primary:
                    entries.append({"id": str(t), "type": base})
            coll: dict[str, Any] = {"results": entries[:limit]}
            if len(entries) > limit:
                token = encode_after(limit)
                coll["paging"] = {"next": {"after": token,
                                           "link": f"crm/v3/objects/{kind}/{oid}/associations/{tk}?after={token}"}}  # fmt: skip
            out[tk] = coll
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
                return conflict.response()
            rec = self._create(kind, props, body.get("associations") or [])
            view = rec.view(kind, list(props))
            events = [self.webhooks.creation(kind, rec, "API")]
        self._emit(events)
        return Response(201, view)

    def _patch_one(self, req: Request, kind: str, raw_id: str) -> Response:
        refused = self._id_property_refused(kind, req.q("idProperty"))
        if refused is not None:
            return refused
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
                result, n_moved = self.portal.merge(
                    kind, pid, mid, new_object=self.settings.merge_creates_new_object
                )
            except (KeyError, ValueError) as exc:
                return errors.error(400, str(exc).strip("'\""), "VALIDATION_ERROR")
            view = result.view(kind, None)
            events = [self.webhooks.merge(kind, pid, [mid], result.id, n_moved, "API", result.updated_ms)]
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
        changes, at = self.portal.update(kind, oid, props, api=True)
        return self.webhooks.property_changes(kind, oid, changes, at, "API")

    def _archive(self, kind: str, raw_id: str) -> list[Event]:
        """Archive the record ``raw_id`` names (following merges); nothing when it is gone or archived."""
        rec = self.portal.store(kind).resolve(raw_id, None)
        if rec is None or rec.archived:
            return []
        rec = self.portal.store(kind).archive(rec)
        return [self.webhooks.deletion(kind, rec, "API")]

    def _conflict(self, kind: str, props: Mapping[str, Any], self_id: int | None = None) -> Invalid | None:
        """Why HubSpot refuses the write with 409 CONFLICT: another live contact has the same email."""
        if kind != "contacts" or not props.get("email"):
            return None
        existing = self.portal.store(kind).find_unique(str(props["email"]))
        if existing is not None and existing.id != self_id and not existing.archived:
            return Invalid(409, "CONFLICT", f"Contact already exists. Existing ID: {existing.id}")
        return None

    def _id_property_refused(self, kind: str, id_property: Any) -> Response | None:
        """400 for an update or upsert by a property that is not unique (model.UNIQUE_ID_PROPERTIES)."""
        if id_property is None or str(id_property) in UNIQUE_ID_PROPERTIES[kind]:
            return None
        return errors.error(
            400,
            f"Unable to perform update/upsert by non-unique {OBJECT_TYPE_ID[kind]} property {str(id_property)[:60]} "
            f"in portal ID {self.settings.portal_id}",
            "VALIDATION_ERROR",
        )

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
            outcome = self._batch_write(kind, op, inputs)
            if isinstance(outcome, Response):
                return outcome
            results, errs, events = outcome
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

    def _check_batch(self, kind: str, op: str, inputs: list[Any]) -> Response | None:
        """The whole call's refusal, before anything is written: the first input HubSpot would reject (module
        docstring), or None when every input may be applied."""
        st = self.portal.store(kind)
        emails: set[str] = set()
        for raw_inp in inputs:
            inp = raw_inp if isinstance(raw_inp, dict) else {}
            if op != "create":
                refused = self._id_property_refused(kind, inp.get("idProperty"))
                if refused is not None:
                    return refused
            props = inp.get("properties") or {}
            bad = _invalid_props(kind, props)
            if bad is not None:
                return bad.response()
            self_id: int | None = None
            if op != "create":
                rec = st.resolve(str(inp.get("id", "")), inp.get("idProperty"))
                self_id = None if rec is None else rec.id
            email = props.get("email") if kind == "contacts" else None
            if op == "upsert" and inp.get("idProperty") == "email" and not email:
                email = inp.get("id")
            if email:
                key = str(email).lower()
                if key in emails:  # two inputs with one email: Joystream/youtube-synch#355
                    return Invalid(409, "CONFLICT", "Contact already exists.").response()
                emails.add(key)
                conflict = self._conflict(kind, {"email": email}, self_id=self_id)
                if conflict is not None and not (op == "upsert" and inp.get("idProperty") == "email"
                                                 and str(inp.get("id", "")).lower() == key):  # fmt: skip
                    return conflict.response()
        return None

    def _batch_write(self, kind: str, op: str, inputs: list[Any]) -> Result | Response:
        results: list[dict[str, Any]] = []
        errs: list[dict[str, Any]] = []
        events: list[Event] = []
        with self.portal.lock:
            refused = self._check_batch(kind, op, inputs)
            if refused is not None:
                return refused
            st = self.portal.store(kind)
            for raw_inp in inputs:
                inp = raw_inp if isinstance(raw_inp, dict) else {}
                props = inp.get("properties") or {}
                key = None if op == "create" else str(inp.get("id", ""))
                rec: HubSpotRecord | None
                is_new = False
                if op == "create":
                    rec = self._create(kind, props, inp.get("associations") or [])
                    events.append(self.webhooks.creation(kind, rec, "API"))
                else:
                    id_property = inp.get("idProperty")
                    rec = st.resolve(key or "", id_property)
                    if rec is not None and rec.archived:
                        rec = None
                    if rec is None and op == "upsert" and id_property:
                        rec = self._create(kind, {**props, id_property: key}, [])
                        is_new = True
                        events.append(self.webhooks.creation(kind, rec, "API"))
                    if rec is None:
                        # an id that does not exist: this input fails, the others land (207)
                        errs.append(_item_error(
                            inp, f"Object not found. objectId {key} does not exist", "OBJECT_NOT_FOUND", key))  # fmt: skip
                        continue
                    if not is_new:
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
    def _assoc_targets(
        self, fk: str, tk: str, raw: str, start: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of a record's v4 associations (``{toObjectId, associationTypes}``, in the order they were
        made), and the offset of the next page (None on the last)."""
        unl, prim = ASSOC_TYPES[(fk, tk)]
        targets = self.portal.associations(fk, int(raw), tk) if raw.isdigit() else {}
        ordered = list(targets.items())
        size = self.settings.association_page_size
        to = []
        for to_id, is_primary in ordered[start : start + size]:
            types = [{"category": "HUBSPOT_DEFINED", "typeId": unl, "label": None}]
            if is_primary and prim is not None:
                types.insert(0, {"category": "HUBSPOT_DEFINED", "typeId": prim, "label": "Primary"})
            # toObjectId is a string in the v4 spec (MultiAssociatedObjectWithLabel: {"type": "string"})
            to.append({"toObjectId": str(to_id), "associationTypes": types})
        return to, (start + size if start + size < len(ordered) else None)

    def _assoc_batch_read(self, req: Request, fk: str, tk: str) -> Response:
        """``POST /crm/v4/associations/{from}/{to}/batch/read`` (spec ``CRM/Associations/Rollouts/130902/v4``):
        per input ``{from: {id}, to: [{toObjectId, associationTypes: [{category, typeId, label}]}], paging}``;
        a primary association carries its primary type id (contact -> company 1, deal -> company 5) labelled
        "Primary" beside the unlabeled one; an id without associations is a 207 ``NO_ASSOCIATIONS_FOUND`` error."""
        if (fk, tk) not in ASSOC_TYPES:
            raise BadRequest(f"Unknown association {fk} -> {tk}")
        body = req.json() or {}
        inputs = body.get("inputs") or []
        if len(inputs) > ASSOC_BATCH_LIMIT:
            raise BadRequest(f"Batch input limit exceeded: the limit is {ASSOC_BATCH_LIMIT}")
        started = iso_ms(now_ms())
        results: list[dict[str, Any]] = []
        errs: list[dict[str, Any]] = []
        for inp in inputs:
            raw = str(inp.get("id", ""))
            start = int(str(inp.get("after") or 0)) if str(inp.get("after") or "0").isdigit() else 0
            to, nxt = self._assoc_targets(fk, tk, raw, start)
            if not to:
                errs.append({
                    "status": "error", "category": "VALIDATION_ERROR",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "message": f"No {SINGULAR[tk]} is associated with {SINGULAR[fk]} {raw}.",
                    "context": {"fromObjectId": [raw]}, "errors": [], "links": {},
                })  # fmt: skip
                continue
            res: dict[str, Any] = {"from": {"id": raw}, "to": to}
            if nxt is not None:
                res["paging"] = {"next": {"after": str(nxt), "link": None}}
            results.append(res)
        return _batch_response(results, errs, started, 200)

    def _assoc_page(self, req: Request, fk: str, raw: str, tk: str) -> Response:
        """``GET /crm/v4/objects/{from}/{id}/associations/{to}?limit&after``: one record's associations
        (``CollectionResponseMultiAssociatedObjectWithLabelForwardPaging``, "Limit 500 per call")."""
        if (fk, tk) not in ASSOC_TYPES:
            raise BadRequest(f"Unknown association {fk} -> {tk}")
        after = req.q("after") or "0"
        to, nxt = self._assoc_targets(fk, tk, raw, int(after) if after.isdigit() else 0)
        body: dict[str, Any] = {"results": to}
        if nxt is not None:
            body["paging"] = {"next": {"after": str(nxt), "link": f"?after={nxt}"}}
        return Response(200, body)

    def _assoc_write(self, req: Request, parts: list[str], *, remove: bool) -> Response:
        """``PUT /crm/v4/objects/{from}/{id}/associations/{to}/{toId}`` with a body of association types
        ``[{associationCategory, associationTypeId}]`` (spec ``CRM/Associations/v4``: "Create" with labels; the
        primary type id, contact -> company 1 and deal -> company 5, makes it the primary one, which also sets the
        contact's ``associatedcompanyid``), and ``DELETE`` of the same path ("Delete": every association between
        the two records, 204). Both emit ``associationChange`` webhooks like changes made in the UI."""
        fk, tk = object_type(parts[3]), object_type(parts[6])
        if (fk, tk) not in ASSOC_TYPES or not parts[4].isdigit() or not parts[7].isdigit():
            raise BadRequest(f"Unknown association {fk} -> {tk}")
        fid, tid = int(parts[4]), int(parts[7])
        unl, prim = ASSOC_TYPES[(fk, tk)]
        types = [] if remove else (req.json() or [])
        type_ids = {int(t.get("associationTypeId", 0)) for t in types if isinstance(t, dict)}
        if not remove and (not type_ids or not type_ids <= {unl, prim}):
            raise BadRequest(f"association types {sorted(type_ids)} are not defined for {fk} -> {tk}")
        with self.portal.lock:
            for kind, oid in ((fk, fid), (tk, tid)):
                rec = self.portal.store(kind).get(oid)
                if rec is None or rec.archived:
                    return errors.not_found(f"{SINGULAR[kind]} {oid} does not exist")
            primary = prim is not None and prim in type_ids
            at = self.portal.associate(fk, fid, tk, tid, remove=remove, primary=primary)
            events = self.webhooks.association(
                fk, fid, tk, tid, removed=remove, primary=primary, source="API", at=at
            )
        self._emit(events)
        if remove:
            return Response(204, None)
        labels = [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": "Primary" if t == prim else None}
                  for t in sorted(type_ids)]  # fmt: skip
        return Response(200, {"fromObjectTypeId": OBJECT_TYPE_ID[fk], "fromObjectId": fid,
                              "toObjectTypeId": OBJECT_TYPE_ID[tk], "toObjectId": tid, "labels": labels})  # fmt: skip

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
    bad = _invalid_props(kind, props)
    if bad is not None:
        raise BadRequest(bad.response().body["message"])
    return body, props


# HubSpot checks an email's format, not its mailbox: RFC 2822, no quoted local part, and a domain ending in a known
# top-level domain (a HubSpot answer on community.hubspot.com/t5/APIs-Integrations/contacts-integration-invalid-e-mails
# /td-p/833439); the fake asks for one "@" and an alphabetic TLD
_EMAIL = re.compile(r"[^@\s\"]+@[^@\s\"]+\.[A-Za-z]{2,63}")


def _invalid_props(kind: str, props: Any) -> Invalid | None:
    """Why HubSpot refuses an input's properties (the first offending property), else None. Error codes as
    HubSpot names them in its validation answers (``INVALID_EMAIL``, ``INVALID_OPTION``: changelog
    "upcoming-property-validations-rules..." and the community threads it links; ``PROPERTY_DOESNT_EXIST``,
    ``READ_ONLY_VALUE``, ``INVALID_DECIMAL`` are the fake's names for the rest [unverified])."""
    if not isinstance(props, dict):
        return Invalid(400, "VALIDATION_ERROR", "properties must be an object")
    bad_ro = sorted(k for k in props if k in READ_ONLY)
    if bad_ro:
        return Invalid(400, "VALIDATION_ERROR", f"{bad_ro[0]!r} is a read only property", bad_ro[0],
                       "READ_ONLY_VALUE")  # fmt: skip
    unknown = sorted(k for k in props if k not in WRITABLE[kind])
    if unknown:
        return Invalid(400, "VALIDATION_ERROR", f'Property "{unknown[0]}" does not exist', unknown[0],
                       "PROPERTY_DOESNT_EXIST")  # fmt: skip
    for k, v in props.items():
        if v is None or v == "":
            continue
        s = str(v)
        if k == "email" and not _EMAIL.fullmatch(s):
            return Invalid(400, "VALIDATION_ERROR", f"Email address {s} is invalid", k, "INVALID_EMAIL")
        if (k == "lifecyclestage" and s.lower() not in LIFECYCLE_OPTIONS and not s.isdigit()) or (
            k == "hs_lead_status" and s not in LEAD_STATUS_OPTIONS
        ):
            return Invalid(
                400, "VALIDATION_ERROR", f"{s} was not one of the allowed options", k, "INVALID_OPTION"
            )
        if k in NUMERIC and k != "hs_object_id":
            try:
                float(s)
            except ValueError:
                return Invalid(400, "VALIDATION_ERROR", f"{s} is not a valid number", k, "INVALID_DECIMAL")
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
