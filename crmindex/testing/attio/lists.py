"""Attio lists and their entries, and the workspace metadata the index reads: members, attributes, statuses and
select options. Pipelines are often lists: a list of companies (people, deals) with a ``stage`` status attribute.

Shapes (docs.attio.com endpoint reference; interfere-inc/attio ``docs/models/list.md``, ``workspace-member.md``):

* a list: ``{"id": {workspace_id, list_id}, "api_slug", "name", "parent_object": [slug], "workspace_access",
  "workspace_member_access": [], "created_by_actor", "created_at"}`` (``GET /v2/lists``: "lists are returned in the
  order that they are sorted in the sidebar"; ``GET /v2/lists/{list}`` by id or slug);
* an entry: ``{"id": {workspace_id, list_id, entry_id}, "parent_record_id", "parent_object", "created_at",
  "entry_values": {slug: [values]}}`` (``POST /v2/lists/{list}/entries/query`` with ``limit``/``offset`` as records,
  ``GET /v2/lists/{list}/entries/{entry_id}``); values are historic like records' (``crmindex.testing.attio.values``);
* ``GET /v2/{objects|lists}/{id}/attributes``: ``{"id": {workspace_id, object_id, attribute_id}, "title",
  "api_slug", "type", "is_multiselect", "is_archived", ...}``;
* ``GET .../attributes/{attribute}/statuses|options`` (``show_archived`` to include archived ones): the
  workspace's choices (``crmindex.testing.attio.schema``); 404 for an attribute of another type;
* ``GET /v2/workspace_members``, ``GET /v2/workspace_members/{id}``.

Entry changes made through :class:`~crmindex.testing.attio.server.FakeAttio`'s helpers emit ``list-entry.created``,
``.updated`` (one per attribute) and ``.deleted`` (docs.attio.com webhook reference, list-entry events).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crmindex.testing._http import Request, Response
from crmindex.testing.attio import errors
from crmindex.testing.attio.errors import Invalid
from crmindex.testing.attio.schema import TITLES, Workspace
from crmindex.testing.attio.values import active, iso_now, normalize, same

MAX_LIMIT = 500


@dataclass
class StoredEntry:
    entry_id: str
    parent_record_id: str
    parent_object: str
    created_at: str
    values: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class StoredList:
    list_id: str
    api_slug: str
    name: str
    parent_object: str
    created_at: str
    entries: dict[str, StoredEntry] = field(default_factory=dict)  # in creation order


class AttioLists:
    """The workspace's lists and entries; callers hold the store's lock."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.lists: dict[str, StoredList] = {}

    # -- lists ---------------------------------------------------------------------------------------
    def create(self, name: str, parent_object: str, stages: list[str] | None, slug: str | None = None) -> str:
        list_id = self.ws.new_id()
        api_slug = slug or "_".join(name.lower().split())
        key = f"list:{list_id}"
        attrs: dict[str, tuple[str, bool]] = {}
        if stages is not None:
            attrs["stage"] = ("status", False)
        self.ws.list_attributes[key] = attrs
        for a in attrs:
            self.ws.list_attribute_ids[(key, a)] = self.ws.new_id()
        for title in stages or []:  # made now, in this order (the order the API lists them)
            self.ws.choice(key, "stage", "status", title, self.ws.list_attribute_ids[(key, "stage")], list_id)
        self.lists[list_id] = StoredList(list_id, api_slug, name, parent_object, iso_now())
        return list_id

    def find(self, ident: str) -> StoredList:
        """A list by id or api slug; 404 ``not_found`` otherwise."""
        found = self.lists.get(ident) or next((x for x in self.lists.values() if x.api_slug == ident), None)
        if found is None:
            raise Invalid(f'List with slug/ID "{ident}" not found.', "not_found", 404)
        return found

    def view(self, lst: StoredList) -> dict[str, Any]:
        return {
            "id": {"workspace_id": self.ws.workspace_id, "list_id": lst.list_id},
            "api_slug": lst.api_slug,
            "name": lst.name,
            "parent_object": [lst.parent_object],
            "workspace_access": "full-access",
            "workspace_member_access": [],
            "created_by_actor": self.ws.actor(False),
            "created_at": lst.created_at,
        }

    # -- entries -------------------------------------------------------------------------------------
    def add_entry(
        self, lst: StoredList, parent_record_id: str, values: Mapping[str, Any], *, api: bool
    ) -> StoredEntry:
        entry = StoredEntry(self.ws.new_id(), parent_record_id, lst.parent_object, iso_now())
        self.write(lst, entry, values, api=api)
        lst.entries[entry.entry_id] = entry
        return entry

    def write(
        self, lst: StoredList, entry: StoredEntry, values: Mapping[str, Any], *, api: bool
    ) -> list[str]:
        """Write entry values (a change closes the active values, as records'); returns the attributes changed."""
        key, at, changed = f"list:{lst.list_id}", iso_now(), []
        for slug, raw in values.items():
            self.ws.attribute(key, slug)
            items = raw if isinstance(raw, list) else ([] if raw is None else [raw])
            new = [normalize(self.ws, key, slug, x, api, at) for x in items]
            history = entry.values.setdefault(slug, [])
            current = active(history)
            if len(new) == len(current) and all(same(n, c) for n, c in zip(new, current, strict=True)):
                continue
            for c in current:
                c["active_until"] = at
            history.extend(new)
            changed.append(slug)
        return changed

    def entry_view(self, lst: StoredList, entry: StoredEntry) -> dict[str, Any]:
        values = {slug: [dict(v) for v in active(vals)] for slug, vals in entry.values.items()}
        for slug in self.ws.list_attributes[f"list:{lst.list_id}"]:
            values.setdefault(slug, [])
        return {
            "id": {"workspace_id": self.ws.workspace_id, "list_id": lst.list_id, "entry_id": entry.entry_id},
            "parent_record_id": entry.parent_record_id,
            "parent_object": entry.parent_object,
            "created_at": entry.created_at,
            "entry_values": values,
        }

    # -- the API -------------------------------------------------------------------------------------
    def route(self, req: Request, parts: list[str], store_object_id: Mapping[str, str]) -> Response | None:
        """The lists, entries and metadata routes; None for a path that is none of them."""
        m = req.method
        try:
            if parts[:2] == ["v2", "workspace_members"] and m == "GET":
                if len(parts) == 2:
                    return Response(200, {"data": [dict(x) for x in self.ws.members]})
                if len(parts) == 3:
                    for member in self.ws.members:
                        if member["id"]["workspace_member_id"] == parts[2]:
                            return Response(200, {"data": dict(member)})
                    return errors.invalid(
                        404, "not_found", f'Workspace member with ID "{parts[2]}" not found.'
                    )
            if parts[:2] == ["v2", "lists"]:
                if len(parts) == 2 and m == "GET":
                    return Response(200, {"data": [self.view(x) for x in self.lists.values()]})
                if len(parts) == 3 and m == "GET":
                    return Response(200, {"data": self.view(self.find(parts[2]))})
                if len(parts) == 5 and parts[3:] == ["entries", "query"] and m == "POST":
                    return self._query(req, self.find(parts[2]))
                if len(parts) == 5 and parts[3] == "entries" and m == "GET":
                    lst = self.find(parts[2])
                    entry = lst.entries.get(parts[4])
                    if entry is None:
                        return errors.invalid(404, "not_found", f'Entry with ID "{parts[4]}" not found.')
                    return Response(200, {"data": self.entry_view(lst, entry)})
            if (
                len(parts) >= 4
                and parts[0] == "v2"
                and parts[1] in ("objects", "lists")
                and parts[3] == "attributes"
            ):
                return self._attributes(parts, store_object_id) if m == "GET" else None
        except Invalid as exc:
            return errors.invalid(exc.status, exc.code, str(exc))
        return None

    def _query(self, req: Request, lst: StoredList) -> Response:
        body = req.json() or {}
        limit, offset = int(body.get("limit", MAX_LIMIT)), int(body.get("offset", 0))
        if limit < 1 or offset < 0:
            raise Invalid("limit must be positive and offset non-negative")
        entries = list(lst.entries.values())[offset : offset + min(limit, MAX_LIMIT)]
        return Response(200, {"data": [self.entry_view(lst, e) for e in entries]})

    def _attributes(self, parts: list[str], object_ids: Mapping[str, str]) -> Response:
        target, ident = parts[1], parts[2]
        if target == "lists":
            lst = self.find(ident)
            key, target_id = f"list:{lst.list_id}", lst.list_id
        else:
            key = self.ws.slug(ident)
            target_id = object_ids[key]
        attrs = self.ws.target(key)[1]
        if len(parts) == 4:
            return Response(200, {"data": [self._attribute(key, target_id, a, t, multi)
                                           for a, (t, multi) in attrs.items()]})  # fmt: skip
        slug = parts[4]
        if slug not in attrs:
            # by id too
            slug = next((a for a in attrs if self.ws.attribute_id(key, a) == slug), slug)
        typ, multi = self.ws.attribute(key, slug)
        if len(parts) == 5:
            return Response(200, {"data": self._attribute(key, target_id, slug, typ, multi)})
        kind = parts[5] if len(parts) == 6 else ""
        if (kind, typ) not in (("statuses", "status"), ("options", "select")):
            return errors.invalid(404, "not_found", f'No {kind or "route"} on attribute "{slug}".')
        return Response(200, {"data": [dict(c) for c in self.ws.choices.get((key, slug), [])]})

    def _attribute(self, key: str, target_id: str, slug: str, typ: str, multi: bool) -> dict[str, Any]:
        obj = key if not key.startswith("list:") else ""
        return {
            "id": {"workspace_id": self.ws.workspace_id, "object_id": target_id,
                   "attribute_id": self.ws.attribute_id(key, slug)},
            "title": TITLES.get((obj, slug), slug.replace("_", " ").capitalize()),
            "description": None,
            "api_slug": slug,
            "type": typ,
            "is_system_attribute": False,
            "is_writable": True,
            "is_required": False,
            "is_unique": False,
            "is_multiselect": multi,
            "is_default_value_enabled": False,
            "is_archived": False,
            "default_value": None,
            "relationship": None,
            "created_at": "2024-01-01T00:00:00.000000000Z",
            "config": {},
        }  # fmt: skip
