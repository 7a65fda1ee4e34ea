"""HubSpot's engagement (activity) objects as the fake serves them: notes, calls, meetings, emails and tasks.

* ``POST /crm/v3/objects/{notes|calls|meetings|emails|tasks}/batch/create``: inputs ``{properties, associations:
  [{to: {id}, types: [{associationCategory: "HUBSPOT_DEFINED", associationTypeId}]}], objectWriteTraceId}``
  (developers.hubspot.com/docs/api-reference/legacy/crm/activities/notes/batch/create-notes); ``hs_timestamp`` is
  required ("Required. This field marks the note's time of creation and determines where the note sits on the
  record timeline": the notes guide, developers.hubspot.com/docs/api-reference/crm-notes-v3/guide; the same for
  the other engagements); at most 100 inputs. An association to a record that does not exist, or with a type id
  that is not the one HubSpot defines for the pair, refuses the whole call (400 ``VALIDATION_ERROR``).
* ``GET /crm/v3/objects/{type}/{id}?associations=contacts,...``: one engagement with its associations.
* ``POST /crm/v3/objects/{type}/search``: ``EQ`` filters on properties and on the ``associations.{object}``
  pseudo-property ("search for records associated with other specific records", the CRM search guide); like
  every HubSpot search it is eventually consistent (``search_lag`` seconds before a new engagement is found).

Association type ids (HUBSPOT_DEFINED) are the documented defaults: developers.hubspot.com/docs/api/crm/
associations/association-details ("Activity to object" table): note->contact 202, note->company 190, note->deal
214; call 194/182/206; email 198/186/210; meeting 200/188/212; task 204/192/216.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crmindex.testing._http import Request, Response
from crmindex.testing.hubspot import errors
from crmindex.testing.hubspot.model import iso_ms, now_ms, parse_ms

ENGAGEMENTS = ("notes", "calls", "meetings", "emails", "tasks")
TARGETS = ("contacts", "companies", "deals")
SINGULAR_TARGET = {"contacts": "contact", "companies": "company", "deals": "deal"}
ASSOC_TYPE_ID: dict[tuple[str, str], int] = {
    ("notes", "contacts"): 202, ("notes", "companies"): 190, ("notes", "deals"): 214,
    ("calls", "contacts"): 194, ("calls", "companies"): 182, ("calls", "deals"): 206,
    ("emails", "contacts"): 198, ("emails", "companies"): 186, ("emails", "deals"): 210,
    ("meetings", "contacts"): 200, ("meetings", "companies"): 188, ("meetings", "deals"): 212,
    ("tasks", "contacts"): 204, ("tasks", "companies"): 192, ("tasks", "deals"): 216,
}  # fmt: skip
FIRST_ID = {"notes": 51000000001, "calls": 52000000001, "meetings": 53000000001, "emails": 54000000001,
            "tasks": 55000000001}  # fmt: skip
BATCH_LIMIT = 100


@dataclass
class Engagement:
    id: int
    kind: str
    properties: dict[str, str]
    associations: dict[str, list[int]]
    created_ms: int = field(default_factory=now_ms)

    def view(self, with_assoc: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "properties": {**self.properties, "hs_object_id": str(self.id), "hs_createdate": iso_ms(self.created_ms),
                           "hs_lastmodifieddate": iso_ms(self.created_ms)},
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.created_ms),
            "archived": False,
        }  # fmt: skip
        if with_assoc:
            out["associations"] = {
                t: {"results": [{"id": str(i), "type": f"{self.kind[:-1]}_to_{SINGULAR_TARGET[t]}"}
                                for i in self.associations.get(t, [])]}
                for t in with_assoc if self.associations.get(t)
            }  # fmt: skip
        return out


class EngagementStore:
    """The portal's engagements; ``exists(kind, id)`` tells whether an association target exists."""

    def __init__(self, exists: Callable[[str, int], bool], lag: Callable[[], float]) -> None:
        self.lock = threading.RLock()
        self.items: dict[str, dict[int, Engagement]] = {k: {} for k in ENGAGEMENTS}
        self._next = dict(FIRST_ID)
        self._exists = exists
        self._lag = lag

    def of(self, kind: str) -> list[Engagement]:
        with self.lock:
            return list(self.items[kind].values())

    def on_record(self, target: str, rid: int) -> list[Engagement]:
        """Every engagement associated with one contact / company / deal."""
        with self.lock:
            return [
                e
                for k in ENGAGEMENTS
                for e in self.items[k].values()
                if rid in e.associations.get(target, [])
            ]

    def route(self, req: Request, kind: str, rest: list[str]) -> Response | None:
        m = req.method
        if rest == ["batch", "create"] and m == "POST":
            return self._batch_create(kind, req.json() or {})
        if rest == ["search"] and m == "POST":
            return self._search(kind, req.json() or {})
        if len(rest) == 1 and m == "GET":
            with self.lock:
                e = self.items[kind].get(int(rest[0])) if rest[0].isdigit() else None
                if e is None:
                    return errors.not_found(f"Object not found.  objectId are usually numeric. ({rest[0]})")
                assoc = [a for a in (req.q("associations") or "").split(",") if a in TARGETS]
                return Response(200, e.view(assoc))
        return None

    def _batch_create(self, kind: str, body: dict[str, Any]) -> Response:
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            return errors.error(400, "Invalid input JSON: inputs is required", "VALIDATION_ERROR")
        if len(inputs) > BATCH_LIMIT:
            return errors.error(
                400, f"Batch input limit exceeded: the limit is {BATCH_LIMIT}", "VALIDATION_ERROR"
            )
        planned: list[tuple[dict[str, Any], dict[str, str], dict[str, list[int]]]] = []
        for inp in inputs:
            props = {str(k): "" if v is None else str(v) for k, v in (inp.get("properties") or {}).items()}
            if parse_ms(props.get("hs_timestamp")) is None:
                detail = '[{"isValid":false,"message":"hs_timestamp is required","error":"REQUIRED_FIELD",' \
                         '"name":"hs_timestamp"}]'  # fmt: skip
                return errors.error(400, "Property values were not valid: " + detail, "VALIDATION_ERROR")
            links: dict[str, list[int]] = {}
            for a in inp.get("associations") or []:
                to_id = str((a.get("to") or {}).get("id", ""))
                type_ids = {int(t.get("associationTypeId", 0)) for t in a.get("types") or []}
                target = next((t for t in TARGETS if ASSOC_TYPE_ID[(kind, t)] in type_ids), None)
                if target is None or not to_id.isdigit() or not self._exists(target, int(to_id)):
                    return errors.error(
                        400,
                        f"One or more associations are invalid: {sorted(type_ids)} to {to_id}",
                        "VALIDATION_ERROR",
                    )
                links.setdefault(target, []).append(int(to_id))
            planned.append((inp, props, links))
        started = iso_ms(now_ms())
        results = []
        with self.lock:
            for inp, props, links in planned:
                eid = self._next[kind]
                self._next[kind] += 1
                e = Engagement(eid, kind, props, links)
                self.items[kind][eid] = e
                view = e.view()
                if inp.get("objectWriteTraceId") is not None:
                    view["objectWriteTraceId"] = str(inp["objectWriteTraceId"])
                results.append(view)
        return Response(201, {"status": "COMPLETE", "results": results, "startedAt": started,
                              "completedAt": iso_ms(now_ms())})  # fmt: skip

    def _search(self, kind: str, body: dict[str, Any]) -> Response:
        groups = body.get("filterGroups") or []
        visible_before = now_ms() - int(self._lag() * 1000)
        with self.lock:
            found = [e for e in self.items[kind].values() if e.created_ms <= visible_before
                     and (not groups or any(_matches(e, g.get("filters") or []) for g in groups))]  # fmt: skip
        limit = int(body.get("limit") or 10)
        names = body.get("properties") or []
        results = []
        for e in sorted(found, key=lambda x: x.id)[:limit]:
            v = e.view()
            if names:
                v["properties"] = {k: v["properties"].get(k) for k in {*names, "hs_object_id"}}
            results.append(v)
        return Response(200, {"total": len(found), "results": results})


def _matches(e: Engagement, filters: list[dict[str, Any]]) -> bool:
    for f in filters:
        name, op, value = str(f.get("propertyName", "")), f.get("operator"), str(f.get("value", ""))
        if op != "EQ":
            return False
        if name.startswith("associations."):
            target = {"contact": "contacts", "company": "companies", "deal": "deals"}.get(
                name.split(".", 1)[1]
            )
            if target is None or not value.isdigit() or int(value) not in e.associations.get(target, []):
                return False
        elif name == "hs_timestamp":
            if parse_ms(e.properties.get(name)) != parse_ms(value):
                return False
        elif e.properties.get(name) != value:
            return False
    return True


def lag_of(settings: Any) -> Callable[[], float]:
    return lambda: float(getattr(settings, "search_lag", 0.0) or 0.0)
