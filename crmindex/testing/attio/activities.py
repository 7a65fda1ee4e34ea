"""Attio notes and tasks as the fake serves them (issue 16).

* ``POST /v2/notes`` ``{"data": {parent_object, parent_record_id, title, format: "plaintext"|"markdown", content,
  created_at?}}`` -> ``{"data": note}``; a note is ``{"id": {workspace_id, note_id}, parent_object,
  parent_record_id, title, content_plaintext, content_markdown, tags, created_by_actor, created_at}``
  (docs.attio.com/rest-api/endpoint-reference/notes/create-a-note; ``created_at`` may be given, "defaults to now").
  An unknown parent record is a 404 ``not_found``; a title or format missing a 400 ``validation_type``.
* ``GET /v2/notes?parent_object&parent_record_id&limit&offset`` -> ``{"data": [note]}`` (list notes: newest
  first is not promised; the fake answers in creation order; ``limit`` default 10, at most 50).
* ``POST /v2/tasks`` ``{"data": {content, format: "plaintext", deadline_at, is_completed, linked_records:
  [{target_object, target_record_id}], assignees}}`` -> ``{"data": task}``; a task is ``{"id": {workspace_id,
  task_id}, content_plaintext, deadline_at, is_completed, linked_records, assignees, created_by_actor,
  created_at}`` (docs.attio.com/rest-api/endpoint-reference/tasks/create-a-task).
* ``GET /v2/tasks?linked_object&linked_record_id&limit&offset`` -> ``{"data": [task]}`` (list tasks; limit
  default 500).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from crmindex.testing._http import Request, Response
from crmindex.testing.attio import errors
from crmindex.testing.attio.errors import Invalid
from crmindex.testing.attio.values import iso_now

ACTOR = {"type": "api-token", "id": None}


class AttioActivities:
    def __init__(self, ws: Any, exists: Callable[[str, str], bool]) -> None:
        self.lock = threading.RLock()
        self.notes: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self._ws = str(ws.workspace_id)
        self._slug: Callable[[str], str] = ws.slug
        self._object_ids: dict[str, str] = ws.object_ids
        self._exists = exists

    def on_record(self, obj: str, rid: str) -> list[dict[str, Any]]:
        """The notes and tasks of one record (``{"type": "note"|"task", ...}``)."""
        with self.lock:
            out = [{"type": "note", **n} for n in self.notes if n["parent_object"] == obj
                   and n["parent_record_id"] == rid]  # fmt: skip
            out += [{"type": "task", **t} for t in self.tasks if any(
                lr["target_object_id"] == self._object_ids.get(obj) and lr["target_record_id"] == rid
                for lr in t["linked_records"])]  # fmt: skip
            return out

    def route(self, req: Request, parts: list[str]) -> Response | None:
        if parts[:2] not in (["v2", "notes"], ["v2", "tasks"]) or len(parts) != 2:
            return None
        try:
            if parts[1] == "notes":
                return self._create_note(req) if req.method == "POST" else self._list_notes(req)
            return self._create_task(req) if req.method == "POST" else self._list_tasks(req)
        except Invalid as exc:
            return errors.invalid(exc.status, exc.code, str(exc))

    def _record(self, obj: Any, rid: Any) -> tuple[str, str]:
        slug = self._slug(str(obj))
        if not self._exists(slug, str(rid)):
            raise Invalid(f'Record with ID "{rid}" not found.', "not_found", 404)
        return slug, str(rid)

    def _create_note(self, req: Request) -> Response:
        data = (req.json() or {}).get("data") or {}
        fmt = data.get("format")
        if fmt not in ("plaintext", "markdown") or not isinstance(data.get("title"), str):
            raise Invalid(
                "Body payload validation error: title and format (plaintext or markdown) are required"
            )
        content = str(data.get("content") or "")
        slug, rid = self._record(data.get("parent_object"), data.get("parent_record_id"))
        note = {
            "id": {"workspace_id": self._ws, "note_id": str(uuid.uuid4())},
            "parent_object": slug, "parent_record_id": rid, "title": data["title"],
            "content_plaintext": content, "content_markdown": content, "tags": [],
            "created_by_actor": ACTOR, "created_at": str(data.get("created_at") or iso_now()),
        }  # fmt: skip
        with self.lock:
            self.notes.append(note)
        return Response(200, {"data": note})

    def _page(self, req: Request, items: list[dict[str, Any]], default: int, cap: int) -> Response:
        limit = min(int(req.q("limit") or default), cap)
        offset = int(req.q("offset") or 0)
        return Response(200, {"data": items[offset : offset + limit]})

    def _list_notes(self, req: Request) -> Response:
        obj, rid = req.q("parent_object"), req.q("parent_record_id")
        slug = self._slug(obj) if obj else None
        with self.lock:
            found = [n for n in self.notes if (slug is None or n["parent_object"] == slug)
                     and (rid is None or n["parent_record_id"] == rid)]  # fmt: skip
        return self._page(req, found, 10, 50)

    def _create_task(self, req: Request) -> Response:
        data = (req.json() or {}).get("data") or {}
        if data.get("format") != "plaintext" or not isinstance(data.get("content"), str):
            raise Invalid("Body payload validation error: content and format (plaintext) are required")
        linked = []
        for lr in data.get("linked_records") or []:
            slug, rid = self._record(lr.get("target_object"), lr.get("target_record_id"))
            # the answer names the object by its id (linked_records: [{target_object_id, target_record_id}])
            linked.append({"target_object_id": self._object_ids[slug], "target_record_id": rid})
        task = {
            "id": {"workspace_id": self._ws, "task_id": str(uuid.uuid4())},
            "content_plaintext": data["content"], "deadline_at": data.get("deadline_at"),
            "is_completed": bool(data.get("is_completed", False)), "linked_records": linked,
            "assignees": list(data.get("assignees") or []), "created_by_actor": ACTOR, "created_at": iso_now(),
        }  # fmt: skip
        with self.lock:
            self.tasks.append(task)
        return Response(200, {"data": task})

    def _list_tasks(self, req: Request) -> Response:
        obj, rid = req.q("linked_object"), req.q("linked_record_id")
        slug = self._slug(obj) if obj else None
        with self.lock:
            found = [t for t in self.tasks if slug is None or any(
                lr["target_object_id"] == self._object_ids[slug] and (rid is None or lr["target_record_id"] == rid)
                for lr in t["linked_records"])]  # fmt: skip
        return self._page(req, found, 500, 500)
