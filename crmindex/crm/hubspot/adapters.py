"""HubSpot behind crmindex's protocols: the record fetcher (materialization, hydration, reconcile) and the
write-back writer (the drainer).

* fetch: batch reads of <= 100 ids (deals with their v4 associations); merged-away ids resolve to their primary.
* write: batch update (<= 100); creates of contacts upsert by email (unique, so idempotent); creates of companies
  search by domain, then update the match or create (company ``domain`` is not unique: HubSpot refuses it as an
  upsert key, HubSpot/hubspot-api-nodejs#548); deals have no unique property either: search by name in their
  pipeline, then update or create (issue 16).
* A batch refused as a whole for one bad input is split by the client until the bad input stands alone
  (:meth:`HubSpotClient._batch_write`): the others land, the bad one fails naming its field.
* Lifecycle stages only move forward through the API: HubSpot ignores an earlier stage (the call succeeds, the
  stage stays) unless the value is cleared first, in a separate request (the legacy contacts API reference: "The
  Lifecycle stage is not designed to move backwards ... you will first need to set the value to "" (an empty
  string)"; integrate.hubspot.com/t/update-lifecycle-stage-using-api/1333: clear and set in one batch are not
  applied in order). What a user asked for is what should land, so an update whose answer shows the stage was
  kept is followed by a clear and then the set, as two more calls, for those records only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmindex.crm.activities import Activity
from crmindex.crm.errors import CrmError, ValidationError
from crmindex.crm.hubspot.client import HubSpotClient, ItemResult
from crmindex.crm.hubspot.mapping import hubspot_deal_to_row, hubspot_object_to_row
from crmindex.crm.protocols import OBJECT_TYPE_OF, FetchedRecord, WriteResult

LIFECYCLE = "lifecyclestage"


class HubSpotFetcher:
    source = "hubspot"

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"HubSpotFetcher({self.client!r})"

    def fetch(self, object_type: str, ids: Sequence[str]) -> dict[str, FetchedRecord]:
        result = self.client.batch_read(object_type, list(ids))
        if result.errors:
            raise result.errors[0]
        links: dict[str, tuple[list[str], str | None]] = {}
        if object_type == "deals" and result.objects:
            links = self.client.deal_associations(list(result.objects))
        out: dict[str, FetchedRecord] = {}
        for rid in ids:
            obj = result.get(str(rid))
            if obj is None:
                continue
            if object_type == "deals":
                contacts, company = links.get(obj.id, ([], None))
                row = hubspot_deal_to_row(obj, contact_crm_ids=contacts, company_crm_id=company)
            else:
                row = hubspot_object_to_row(object_type, obj)
            out[str(rid)] = FetchedRecord(
                crm_record_id=obj.id,
                row=row,
                properties=dict(obj.properties),
                merged_ids=tuple(obj.merged_ids),
            )
        return out


def _result(r: ItemResult) -> WriteResult:
    return WriteResult(r.ok, r.crm_record_id, r.error)


class HubSpotWriter:
    source = "hubspot"
    max_batch = 100

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"HubSpotWriter({self.client!r})"

    def update(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        object_type = OBJECT_TYPE_OF[entity_type]
        results = self.client.batch_update(object_type, [(rid, dict(p)) for rid, p in items])
        out = [_result(r) for r in results]
        kept = [
            i
            for i, (r, (_, props)) in enumerate(zip(results, items, strict=True))
            if r.ok and r.object is not None and _stage_kept(props, r.object.properties)
        ]
        if kept:
            self._move_stage_back(object_type, items, kept, out)
        return out

    def _move_stage_back(
        self,
        object_type: str,
        items: Sequence[tuple[str, Mapping[str, Any]]],
        kept: list[int],
        out: list[WriteResult],
    ) -> None:
        """The records whose earlier lifecycle stage HubSpot kept: clear the stage, then set it (two calls)."""
        ids = [items[i][0] for i in kept]
        try:
            cleared = self.client.batch_update(object_type, [(rid, {LIFECYCLE: ""}) for rid in ids])
            again = [
                (i, items[i][0], str(items[i][1][LIFECYCLE]))
                for i, c in zip(kept, cleared, strict=True)
                if c.ok or _set_error(out, i, c.error)
            ]
            if not again:
                return
            final = self.client.batch_update(
                object_type, [(rid, {LIFECYCLE: value}) for _, rid, value in again]
            )
        except CrmError as exc:  # the rest of the write landed; the stage did not: retry the job later
            for i in kept:
                out[i] = WriteResult(False, out[i].crm_record_id, exc)
            return
        for (i, _, value), res in zip(again, final, strict=True):
            if not res.ok:
                _set_error(out, i, res.error)
            elif res.object is not None and _stage_kept({LIFECYCLE: value}, res.object.properties):
                out[i] = WriteResult(False, out[i].crm_record_id, _stage_error(object_type))

    def create(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        object_type = OBJECT_TYPE_OF[entity_type]
        if object_type == "contacts":
            results = self.client.batch_upsert(
                object_type, [(key, dict(p)) for key, p in items], id_property="email"
            )
            return [_result(r) for r in results]
        if object_type == "companies":
            return self._create_companies(items)
        if object_type == "deals":
            return self._create_deals(items)
        error = ValidationError(
            f"HubSpot {object_type} have no unique property to create them by idempotently: not supported",
            source="hubspot",
            endpoint=f"POST /crm/v3/objects/{object_type}/batch/create",
        )
        return [WriteResult(False, None, error) for _ in items]

    def log_activities(self, items: Sequence[Activity]) -> list[WriteResult]:
        """Create engagements (batch create per kind, associated inline with their record). An activity that may
        have reached HubSpot before first searches its kind for the marker (hs_timestamp EQ, associations.<record>
        EQ): found, it is reported as created. Search is eventually consistent (a few seconds): the drainer's
        retry backoff (a minute and more) is far longer."""
        out: list[WriteResult | None] = [None] * len(items)
        pending: dict[str, list[int]] = {}
        for i, a in enumerate(items):
            kind = ENGAGEMENT_OF[a.kind]
            if a.maybe_sent:
                try:
                    marker = [
                        {"propertyName": "hs_timestamp", "operator": "EQ", "value": str(a.occurred_at_ms)},
                        {
                            "propertyName": f"associations.{a.target_type}",
                            "operator": "EQ",
                            "value": a.target_id,
                        },
                    ]
                    found = self.client.search(
                        kind,
                        filter_groups=[{"filters": marker}],
                        properties=["hs_timestamp"],
                        limit=1,
                    )
                except CrmError as exc:
                    out[i] = WriteResult(False, None, exc)
                    continue
                if found.results:
                    out[i] = WriteResult(True, found.results[0].id)
                    continue
            pending.setdefault(kind, []).append(i)
        for kind, idxs in pending.items():
            assoc = [
                [{"to": {"id": items[i].target_id}, "types": [
                    {"associationCategory": "HUBSPOT_DEFINED",
                     "associationTypeId": ENGAGEMENT_ASSOC[(kind, items[i].target_type)]}]}]
                for i in idxs
            ]  # fmt: skip
            try:
                results = self.client.batch_create(
                    kind, [engagement_properties(items[i]) for i in idxs], associations=assoc
                )
            except CrmError as exc:
                for i in idxs:
                    out[i] = WriteResult(False, None, exc)
                continue
            for i, r in zip(idxs, results, strict=True):
                out[i] = _result(r)
        return [r if r is not None else WriteResult(False, None, None) for r in out]

    def associate(self, items: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """Associate / disassociate pairs of records (the payloads of ``crm.associate`` / ``crm.disassociate``),
        one v4 call each: contact -> company and deal -> company with their primary type ids too (1, 5: the
        record's company, as the index shows it), contact <-> deal unlabeled (4)."""
        out: list[WriteResult] = []
        for p in items:
            fk, tk = OBJECT_TYPE_OF[str(p["from_type"])], OBJECT_TYPE_OF[str(p["to_type"])]
            fid, tid = str(p["from_id"]), str(p["to_id"])
            try:
                if p.get("action") == "disassociate":
                    self.client.disassociate(fk, fid, tk, tid)
                else:
                    types = [ASSOCIATION_TYPE[(fk, tk)]]
                    if (fk, tk) in PRIMARY_TYPE and p.get("primary", True):
                        types.append(PRIMARY_TYPE[(fk, tk)])
                    self.client.associate(fk, fid, tk, tid, types)
                out.append(WriteResult(True, fid))
            except CrmError as exc:
                out.append(WriteResult(False, None, exc))
        return out

    def _create_deals(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        """Deals have no unique property: search the pipeline for a deal of the same name (the match key), update
        the one found or create one (crm.create_deal). The same create queued twice makes one deal."""
        out: list[WriteResult | None] = [None] * len(items)
        updates: list[tuple[int, str, dict[str, Any]]] = []
        creates: list[tuple[int, dict[str, Any]]] = []
        for i, (_key, props) in enumerate(items):
            name, pipeline = str(props.get("dealname", "")), str(props.get("pipeline", "default"))
            same = [
                {"propertyName": "dealname", "operator": "EQ", "value": name},
                {"propertyName": "pipeline", "operator": "EQ", "value": pipeline},
            ]
            try:
                found = self.client.search(
                    "deals",
                    filter_groups=[{"filters": same}],
                    sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                    properties=["dealname"],
                    limit=1,
                )
            except CrmError as exc:
                out[i] = WriteResult(False, None, exc)
                continue
            defaulted = set(props.get("defaulted") or [])
            given = {k: v for k, v in props.items() if k != "defaulted"}
            if found.results:
                kept = {k: v for k, v in given.items() if k not in defaulted}
                updates.append((i, found.results[0].id, kept))
            else:
                creates.append((i, given))
        if updates:
            landed = self.client.batch_update("deals", [(rid, p) for _, rid, p in updates])
            for (i, _, _), r in zip(updates, landed, strict=True):
                out[i] = _result(r)
        if creates:
            made = self.client.batch_create("deals", [p for _, p in creates])
            for (i, _), r in zip(creates, made, strict=True):
                out[i] = _result(r)
        return [r if r is not None else WriteResult(False, None, None) for r in out]

    def _create_companies(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        """Search by domain, then update the company found or create one (domain is not unique in HubSpot, so it
        cannot be an upsert key). Search is eventually consistent: a company created moments ago may not be found
        yet (a known limit until a unique property is used: issue 16)."""
        out: list[WriteResult | None] = [None] * len(items)
        updates: list[tuple[int, str, dict[str, Any]]] = []
        creates: list[tuple[int, dict[str, Any]]] = []
        for i, (domain, props) in enumerate(items):
            try:
                found = self.client.search(
                    "companies",
                    filter_groups=[
                        {"filters": [{"propertyName": "domain", "operator": "EQ", "value": domain}]}
                    ],
                    sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                    properties=["domain"],
                    limit=1,
                )
            except CrmError as exc:
                out[i] = WriteResult(False, None, exc)
                continue
            if found.results:
                updates.append((i, found.results[0].id, dict(props)))
            else:
                creates.append((i, {"domain": domain, **dict(props)}))
        if updates:
            for (i, _, _), r in zip(
                updates,
                self.client.batch_update("companies", [(rid, p) for _, rid, p in updates]),
                strict=True,
            ):
                out[i] = _result(r)
        if creates:
            for (i, _), r in zip(
                creates, self.client.batch_create("companies", [p for _, p in creates]), strict=True
            ):
                out[i] = _result(r)
        return [r if r is not None else WriteResult(False, None, None) for r in out]


# Activities (issue 16): engagement objects, their properties and the HUBSPOT_DEFINED association type ids from
# the activity to the record (developers.hubspot.com/docs/api/crm/associations/association-details, "Activity to
# object"). hs_timestamp is required on every engagement (the notes/calls/... guides) and is the job's marker.
ENGAGEMENT_OF = {"note": "notes", "call": "calls", "meeting": "meetings", "email": "emails", "task": "tasks"}
ENGAGEMENT_ASSOC = {
    ("notes", "contact"): 202, ("notes", "company"): 190, ("notes", "deal"): 214,
    ("calls", "contact"): 194, ("calls", "company"): 182, ("calls", "deal"): 206,
    ("emails", "contact"): 198, ("emails", "company"): 186, ("emails", "deal"): 210,
    ("meetings", "contact"): 200, ("meetings", "company"): 188, ("meetings", "deal"): 212,
    ("tasks", "contact"): 204, ("tasks", "company"): 192, ("tasks", "deal"): 216,
}  # fmt: skip


# record <-> record association type ids (HUBSPOT_DEFINED; developers.hubspot.com/docs/api/crm/associations/
# association-details): unlabeled ones, and the primary ones that make a company the contact's / deal's company
ASSOCIATION_TYPE = {("contacts", "companies"): 279, ("contacts", "deals"): 4, ("deals", "companies"): 341,
                    ("deals", "contacts"): 3, ("companies", "contacts"): 280, ("companies", "deals"): 342}  # fmt: skip
PRIMARY_TYPE = {("contacts", "companies"): 1, ("deals", "companies"): 5}


def engagement_properties(a: Activity) -> dict[str, str]:
    """The engagement's properties: hs_timestamp (the marker) and the kind's own title / body properties
    (hs_note_body; hs_call_title, hs_call_body, hs_call_status; hs_meeting_title, hs_meeting_body,
    hs_meeting_start_time / end_time, hs_meeting_outcome; hs_email_subject, hs_email_text, hs_email_direction,
    hs_email_status; hs_task_subject, hs_task_body, hs_task_status: the engagement guides)."""
    ts = str(a.occurred_at_ms)
    if a.kind == "note":
        body = a.body if a.subject is None else f"{a.subject}\n\n{a.body}".strip()
        return {"hs_timestamp": ts, "hs_note_body": body}
    if a.kind == "call":
        return {"hs_timestamp": ts, "hs_call_title": a.subject or "Call", "hs_call_body": a.body,
                "hs_call_status": "COMPLETED"}  # fmt: skip
    if a.kind == "meeting":
        return {"hs_timestamp": ts, "hs_meeting_title": a.subject or "Meeting", "hs_meeting_body": a.body,
                "hs_meeting_start_time": ts, "hs_meeting_end_time": ts, "hs_meeting_outcome": "COMPLETED"}  # fmt: skip
    if a.kind == "email":
        return {"hs_timestamp": ts, "hs_email_subject": a.subject or "", "hs_email_text": a.body,
                "hs_email_direction": "EMAIL", "hs_email_status": "SENT"}  # fmt: skip
    return {"hs_timestamp": ts, "hs_task_subject": a.subject or a.body[:200], "hs_task_body": a.body,
            "hs_task_status": "NOT_STARTED"}  # fmt: skip


def _stage_kept(sent: Mapping[str, Any], answer: Mapping[str, str | None]) -> bool:
    """Whether the answer shows a lifecycle stage other than the (non-empty) one sent: HubSpot kept the old one."""
    wanted = sent.get(LIFECYCLE)
    if wanted in (None, "") or LIFECYCLE not in answer:
        return False
    return (answer.get(LIFECYCLE) or "").lower() != str(wanted).lower()


def _set_error(out: list[WriteResult], i: int, error: CrmError | None) -> bool:
    out[i] = WriteResult(False, out[i].crm_record_id, error)
    return False


def _stage_error(object_type: str) -> ValidationError:
    return ValidationError(
        "HubSpot kept the lifecycle stage after it was cleared and set again",
        source="hubspot",
        endpoint=f"POST /crm/v3/objects/{object_type}/batch/update",
        field=LIFECYCLE,
    )
