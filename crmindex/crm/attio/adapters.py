"""Attio behind crmindex's protocols: the record fetcher and the write-back writer.

* fetch: one GET per record (Attio has no batch read).
* write: updates ``PUT /v2/objects/{object}/records/{id}`` (docs.attio.com, "Update a record (overwrite multiselect
  values)"): ``PATCH`` only *prepends* to multi-value attributes (emails, phones, domains), so a changed email would
  leave the old one in Attio and a cleared one would stay. The index shows one value of those attributes (the
  first); the write replaces that one and keeps the record's others, read just before (Attio has no conditional
  write: a value added in the moment between that read and the write is lost). Creates assert
  (``PUT ?matching_attribute=email_addresses``; idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crmindex.crm.activities import Activity, parse_ms
from crmindex.crm.attio.client import AttioClient
from crmindex.crm.attio.events import LIST_ENTRIES
from crmindex.crm.attio.mapping import OBJECT_SLUGS, attio_to_row, entry_to_row
from crmindex.crm.attio.models import AttioAttribute, AttioRecord
from crmindex.crm.errors import CrmError, MergeInProgress, NotFoundError
from crmindex.crm.protocols import OBJECT_TYPE_OF, FetchedRecord, WriteResult


def stage_attribute(attributes: Sequence[AttioAttribute]) -> str | None:
    """The status attribute of a list taken as its entries' stage: ``stage`` when the list has it (Attio's sales
    pipeline lists do), else its first status attribute; None for a list without one."""
    statuses = [a for a in attributes if a.type == "status" and not a.is_archived]
    for a in statuses:
        if a.api_slug == "stage":
            return a.api_slug
    return statuses[0].api_slug if statuses else None


class AttioFetcher:
    """Records by id (one GET each), and list entries (object type ``list_entries``, ids ``<list id>/<entry
    id>``). Rows carry ``observed_at``, the time just before their read (see :mod:`crmindex.crm.attio.mapping`)."""

    source = "attio"

    def __init__(self, client: AttioClient, custom: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.custom = dict(custom or {})

    def __repr__(self) -> str:
        return f"AttioFetcher({self.client!r})"

    def fetch(self, object_type: str, ids: Sequence[str]) -> dict[str, FetchedRecord]:
        if object_type == LIST_ENTRIES:
            return self._entries(ids)
        out: dict[str, FetchedRecord] = {}
        slug = OBJECT_SLUGS[object_type]
        merging: list[str] = []
        last: MergeInProgress | None = None
        for rid in dict.fromkeys(str(i) for i in ids):
            observed = datetime.now(UTC)  # before the read: the record reflects every change before it
            try:
                rec = self.client.get(slug, rid)
            except MergeInProgress as exc:  # not gone: read the others, then say which to read again
                merging.append(rid)
                last = exc
                continue
            if rec is None:
                continue  # gone (deleted, or merged into a new record)
            row = attio_to_row(object_type, rec, custom=self.custom, observed_at=observed)
            props = {k: [v.get("value", v) for v in vals] for k, vals in rec.active_values().items()}
            out[rid] = FetchedRecord(crm_record_id=rec.record_id, row=row, properties=props)
        if last is not None:
            last.partial, last.pending = dict(out), tuple(merging)
            raise last
        return out

    def _entries(self, keys: Sequence[str]) -> dict[str, FetchedRecord]:
        out: dict[str, FetchedRecord] = {}
        stages: dict[str, str | None] = {}  # list id -> its stage attribute (read once per batch)
        for key in dict.fromkeys(str(k) for k in keys):
            list_id, _, entry_id = key.partition("/")
            if not list_id or not entry_id:
                continue
            observed = datetime.now(UTC)
            entry = self.client.get_entry(list_id, entry_id)
            if entry is None:
                continue  # removed from the list (or the list is gone)
            if list_id not in stages:
                try:
                    stages[list_id] = stage_attribute(self.client.attributes("lists", list_id))
                except NotFoundError:  # the list was deleted between the two reads
                    stages[list_id] = None
            out[key] = FetchedRecord(crm_record_id=key, row=entry_to_row(entry, stages[list_id], observed))
        return out


# multi-value attributes of which the index shows the first value -> the field of their values
PRIMARY_SHOWN: dict[str, str] = {
    "email_addresses": "email_address",
    "phone_numbers": "original_phone_number",
    "domains": "domain",
}


def _written(attribute: str, value: Any) -> Any:
    """A value of ``attribute`` as a write body carries it (from a stored value or a written one)."""
    if not isinstance(value, Mapping):
        return value
    field = PRIMARY_SHOWN[attribute]
    raw = value.get(field) or (value.get("phone_number") if attribute == "phone_numbers" else None)
    if raw is None:
        return None
    return {"original_phone_number": raw} if attribute == "phone_numbers" else raw


def _key(attribute: str, value: Any) -> str:
    raw = value.get("original_phone_number") if isinstance(value, Mapping) else value
    text = str(raw or "")
    if attribute == "phone_numbers":
        return "".join(c for c in text if c.isdigit())
    return text.strip().lower()


def replace_shown(attribute: str, current: AttioRecord, wanted: Sequence[Any]) -> list[Any]:
    """The values to ``PUT`` for ``attribute`` so the one the index shows (the first) becomes ``wanted`` (``[]``:
    removed) while the record's other values stay."""
    out = [w for w in wanted if w is not None]
    seen = {_key(attribute, w) for w in out}
    for value in current.active(attribute)[1:]:
        w = _written(attribute, value)
        if w is not None and _key(attribute, w) not in seen:
            out.append(w)
            seen.add(_key(attribute, w))
    return out


class AttioWriter:
    source = "attio"
    max_batch = 1
    MATCH = {"contact": "email_addresses", "company": "domains"}

    def __init__(self, client: AttioClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"AttioWriter({self.client!r})"

    def _update_one(self, slug: str, rid: str, values: Mapping[str, Any]) -> AttioRecord:
        body = dict(values)
        shown = [a for a in PRIMARY_SHOWN if isinstance(body.get(a), list)]
        if shown:
            current = self.client.get(slug, rid)
            if current is None:
                raise NotFoundError(
                    "the record is gone",
                    source="attio",
                    status=404,
                    endpoint=f"GET /v2/objects/{slug}/records/{{id}}",
                )
            for attribute in shown:
                body[attribute] = replace_shown(attribute, current, body[attribute])
        return self.client.replace(slug, rid, body)

    def update(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        out: list[WriteResult] = []
        for rid, values in items:
            try:
                rec = self._update_one(OBJECT_SLUGS[OBJECT_TYPE_OF[entity_type]], rid, values)
                out.append(WriteResult(True, rec.record_id))
            except CrmError as exc:
                out.append(WriteResult(False, error=exc))
        return out

    def log_activities(self, items: Sequence[Activity]) -> list[WriteResult]:
        """Notes, calls, meetings and emails become notes on their record (``POST /v2/notes``; Attio has no
        call / email objects to create: the title says what it was), tasks become tasks linked to it
        (``POST /v2/tasks``). The marker is the note's ``created_at`` (Attio accepts it on create) or the task's
        ``deadline_at``, to the millisecond: an activity that may have landed before first lists the record's notes
        / tasks (not search: these reads are consistent) and reports a match as created."""
        out: list[WriteResult] = []
        for a in items:
            slug = OBJECT_SLUGS[OBJECT_TYPE_OF[a.target_type]]
            try:
                found = self._find_activity(slug, a) if a.maybe_sent else None
                if found is not None:
                    out.append(WriteResult(True, found))
                elif a.kind == "task":
                    task = self.client.create_task({
                        "content": _task_text(a), "format": "plaintext", "deadline_at": a.iso(),
                        "is_completed": False, "assignees": [],
                        "linked_records": [{"target_object": slug, "target_record_id": a.target_id}],
                    })  # fmt: skip
                    out.append(WriteResult(True, str((task.get("id") or {}).get("task_id") or "") or None))
                else:
                    note = self.client.create_note({
                        "parent_object": slug, "parent_record_id": a.target_id, "title": _note_title(a),
                        "format": "plaintext", "content": a.body, "created_at": a.iso(),
                    })  # fmt: skip
                    out.append(WriteResult(True, str((note.get("id") or {}).get("note_id") or "") or None))
            except CrmError as exc:
                out.append(WriteResult(False, error=exc))
        return out

    # record references (docs.attio.com standard objects): people.company and deals.associated_company hold one
    # record, deals.associated_people many (PATCH appends to a multi-value attribute, PUT replaces it)
    REFERENCE = {
        ("contact", "company"): ("people", "company", False),
        ("deal", "contact"): ("deals", "associated_people", True),
        ("deal", "company"): ("deals", "associated_company", False),
    }

    def associate(self, items: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """Associate / disassociate pairs of records through the record reference attribute of the pair."""
        out: list[WriteResult] = []
        for p in items:
            slug, attribute, multi = self.REFERENCE[(str(p["from_type"]), str(p["to_type"]))]
            target = OBJECT_SLUGS[OBJECT_TYPE_OF[str(p["to_type"])]]
            rid, to_id = str(p["from_id"]), str(p["to_id"])
            ref = {"target_object": target, "target_record_id": to_id}
            try:
                if p.get("action") != "disassociate":
                    # PATCH: appended to associated_people, replacing a single company
                    self.client.update(slug, rid, {attribute: [ref]})
                else:
                    current = self.client.get(slug, rid)
                    if current is None:
                        raise NotFoundError(
                            "the record is gone", source="attio", status=404,
                            endpoint=f"GET /v2/objects/{slug}/records/{{id}}",
                        )  # fmt: skip
                    kept = [r for r in current.references(attribute) if r != to_id]
                    if kept != current.references(attribute):
                        values = [{"target_object": target, "target_record_id": r} for r in kept]
                        self.client.replace(slug, rid, {attribute: values if multi else []})
                out.append(WriteResult(True, rid))
            except CrmError as exc:
                out.append(WriteResult(False, error=exc))
        return out

    def _create_deal(self, values: Mapping[str, Any]) -> WriteResult:
        """Deals have no unique attribute to assert by: query for a deal of the same name (the match key of
        crm.create_deal), update it or create one."""
        try:
            defaulted = set(values.get("defaulted") or [])
            given = {k: v for k, v in values.items() if k != "defaulted"}
            found = self.client.query("deals", limit=1, filter={"name": str(values.get("name", ""))})
            if found:  # an existing deal keeps what the create only defaulted (its stage)
                kept = {k: v for k, v in given.items() if k not in defaulted}
                rec = self.client.update("deals", found[0].record_id, kept)
            else:
                rec = self.client.create("deals", given)
            return WriteResult(True, rec.record_id)
        except CrmError as exc:
            return WriteResult(False, error=exc)

    def _find_activity(self, slug: str, a: Activity) -> str | None:
        if a.kind == "task":
            for t in self.client.tasks_of(slug, a.target_id):
                same_text = t.get("content_plaintext") == _task_text(a)
                if same_text and parse_ms(t.get("deadline_at")) == a.occurred_at_ms:
                    return str((t.get("id") or {}).get("task_id") or "") or None
            return None
        for n in self.client.notes_of(slug, a.target_id):
            if parse_ms(n.get("created_at")) == a.occurred_at_ms and n.get("title") == _note_title(a):
                return str((n.get("id") or {}).get("note_id") or "") or None
        return None

    def create(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        if entity_type == "deal":
            return [self._create_deal(values) for _key, values in items]
        out: list[WriteResult] = []
        for _key, values in items:
            try:
                rec = self.client.assert_record(
                    OBJECT_SLUGS[OBJECT_TYPE_OF[entity_type]], self.MATCH[entity_type], dict(values)
                )
                out.append(WriteResult(True, rec.record_id))
            except CrmError as exc:
                out.append(WriteResult(False, error=exc))
        return out


def _note_title(a: Activity) -> str:
    label = {"note": "", "call": "Call", "meeting": "Meeting", "email": "Email"}.get(a.kind, "")
    if a.subject and label:
        return f"{label}: {a.subject}"
    return a.subject or label or "Note"


def _task_text(a: Activity) -> str:
    return f"{a.subject}\n{a.body}".strip() if a.subject else a.body
