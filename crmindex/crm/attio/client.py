"""Attio REST v2 records client.

* ``query`` / ``iter_records``: ``POST /v2/objects/{object}/records/query`` with ``limit``/``offset``; the
  end is the first page shorter than ``limit`` (Attio returns no cursor).
* ``get``: ``GET /v2/objects/{object}/records/{id}`` (None when the record is gone).
* ``assert_record``: ``PUT /v2/objects/{object}/records?matching_attribute=...`` (idempotent upsert).
* ``create`` (``POST``), ``update`` (``PATCH``: multiselect values are *prepended* to the existing ones, never
  removed), ``replace`` (``PUT /v2/objects/{object}/records/{id}``: the multiselect values given overwrite/remove
  the existing ones; docs.attio.com "Update a record (overwrite multiselect values)"), ``delete``.

Workspace metadata and lists (docs.attio.com endpoint reference):

* ``workspace_members``: ``GET /v2/workspace_members`` (scope ``user_management:read``);
* ``attributes`` / ``statuses`` / ``options``: ``GET /v2/{objects|lists}/{id}/attributes[/{attribute}/statuses|
  options]`` (``object_configuration:read``, ``list_configuration:read``);
* ``lists``: ``GET /v2/lists``; ``query_entries``: ``POST /v2/lists/{list}/entries/query`` (``limit``/``offset``
  as records); ``get_entry``: ``GET /v2/lists/{list}/entries/{entry_id}`` (``list_entry:read``).

Reads spend ``ATTIO_READ`` permits (100/s), writes ``ATTIO_WRITE`` (25/s). A 404 ``merge_in_progress`` (the new
record of a merge still being applied) is :class:`~crmindex.crm.errors.MergeInProgress`, retried, never "gone".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from crmindex.crm.attio import API_BASE
from crmindex.crm.attio.models import (
    AttioAttribute,
    AttioChoice,
    AttioEntry,
    AttioList,
    AttioMember,
    AttioRecord,
)
from crmindex.crm.errors import MergeInProgress, NotFoundError
from crmindex.crm.http import HttpTransport, RetryPolicy, TokenProvider
from crmindex.platform.limits import LimitClass, RateLimiter

DEFAULT_PAGE = 500
M = TypeVar("M", bound=BaseModel)


class AttioClient:
    """An Attio workspace."""

    source = "attio"

    def __init__(
        self,
        base_url: str = API_BASE,
        token_provider: TokenProvider | None = None,
        limiter: RateLimiter | None = None,
        *,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        transport: HttpTransport | None = None,
    ) -> None:
        if transport is None:
            if token_provider is None:
                raise TypeError("AttioClient needs a token_provider (a callable returning the token)")
            transport = HttpTransport(
                "attio", base_url, token_provider, limiter, timeout=timeout, retry=retry
            )
        self.http = transport

    def __repr__(self) -> str:
        return f"AttioClient(base_url={self.http.base_url!r})"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AttioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------------
    def _read(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        return self.http.request(
            method, path, limit_class=LimitClass.ATTIO_READ, json=body, params=params
        ).body

    def _write(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool,
    ) -> Any:
        return self.http.request(
            method, path, limit_class=LimitClass.ATTIO_WRITE, json=body, params=params, idempotent=idempotent
        ).body

    def _record(self, endpoint: str, body: Any) -> AttioRecord:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise self.http.malformed(endpoint, "expected {'data': {record}}", body)
        try:
            return AttioRecord.model_validate(data)
        except PydanticValidationError as exc:
            raise self.http.malformed(endpoint, f"{exc.error_count()} schema errors", body) from None

    # -- reads -------------------------------------------------------------------------------------
    def query(
        self,
        object_slug: str,
        *,
        limit: int = DEFAULT_PAGE,
        offset: int = 0,
        filter: Mapping[str, Any] | None = None,
        sorts: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[AttioRecord]:
        """One page of ``POST /v2/objects/{object}/records/query``."""
        path = f"/v2/objects/{object_slug}/records/query"
        body: dict[str, Any] = {"limit": limit, "offset": offset}
        if filter is not None:
            body["filter"] = dict(filter)
        if sorts:
            body["sorts"] = [dict(s) for s in sorts]
        raw = self._read("POST", path, body)
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, list):
            raise self.http.malformed(f"POST {path}", "expected {'data': [records]}", raw)
        try:
            return [AttioRecord.model_validate(r) for r in data]
        except PydanticValidationError as exc:
            raise self.http.malformed(f"POST {path}", f"{exc.error_count()} schema errors", raw) from None

    def iter_pages(
        self,
        object_slug: str,
        *,
        limit: int = DEFAULT_PAGE,
        offset: int = 0,
        filter: Mapping[str, Any] | None = None,
        sorts: Sequence[Mapping[str, Any]] | None = None,
    ) -> Iterator[tuple[int, list[AttioRecord]]]:
        """(offset of the page, records) from ``offset`` on, until a page shorter than ``limit``."""
        while True:
            page = self.query(object_slug, limit=limit, offset=offset, filter=filter, sorts=sorts)
            yield offset, page
            if len(page) < limit:
                return
            offset += limit

    def iter_records(self, object_slug: str, **kw: Any) -> Iterator[AttioRecord]:
        for _, page in self.iter_pages(object_slug, **kw):
            yield from page

    def get(self, object_slug: str, record_id: str) -> AttioRecord | None:
        """The record, or None when it does not exist (deleted or merged away). The new record of a merge still
        being applied raises :class:`~crmindex.crm.errors.MergeInProgress` (after the transport's retries)."""
        path = f"/v2/objects/{object_slug}/records/{record_id}"
        try:
            raw = self._read("GET", path)
        except MergeInProgress:
            raise
        except NotFoundError:
            return None
        return self._record(f"GET /v2/objects/{object_slug}/records/{{id}}", raw)

    def get_many(self, object_slug: str, record_ids: Sequence[str]) -> dict[str, AttioRecord]:
        """Records by id (one GET each: Attio v2 has no batch read); absent ids are left out."""
        out: dict[str, AttioRecord] = {}
        for rid in dict.fromkeys(record_ids):
            rec = self.get(object_slug, rid)
            if rec is not None:
                out[rid] = rec
        return out

    # -- workspace metadata and lists ------------------------------------------------------------------
    def _items(self, endpoint: str, raw: Any, model: type[M]) -> list[M]:
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, list):
            raise self.http.malformed(endpoint, "expected {'data': [...]}", raw)
        try:
            return [model.model_validate(item) for item in data]
        except PydanticValidationError as exc:
            raise self.http.malformed(endpoint, f"{exc.error_count()} schema errors", raw) from None

    def workspace_members(self) -> list[AttioMember]:
        """Every member of the workspace (suspended ones included: Attio never deletes members)."""
        return self._items(
            "GET /v2/workspace_members", self._read("GET", "/v2/workspace_members"), AttioMember
        )

    def attributes(self, target: str, identifier: str) -> list[AttioAttribute]:
        """The attributes of an object (``target`` "objects") or list ("lists"), in the UI's order."""
        path = f"/v2/{target}/{identifier}/attributes"
        return self._items(f"GET /v2/{target}/{{id}}/attributes", self._read("GET", path), AttioAttribute)

    def statuses(self, target: str, identifier: str, attribute: str) -> list[AttioChoice]:
        """The statuses of a status attribute, archived ones included (``show_archived``)."""
        path = f"/v2/{target}/{identifier}/attributes/{attribute}/statuses"
        raw = self._read("GET", path, params={"show_archived": "true"})
        return self._items(f"GET /v2/{target}/{{id}}/attributes/{{attribute}}/statuses", raw, AttioChoice)

    def options(self, target: str, identifier: str, attribute: str) -> list[AttioChoice]:
        """The options of a select attribute, archived ones included (``show_archived``)."""
        path = f"/v2/{target}/{identifier}/attributes/{attribute}/options"
        raw = self._read("GET", path, params={"show_archived": "true"})
        return self._items(f"GET /v2/{target}/{{id}}/attributes/{{attribute}}/options", raw, AttioChoice)

    def lists(self) -> list[AttioList]:
        """Every list the token can read."""
        return self._items("GET /v2/lists", self._read("GET", "/v2/lists"), AttioList)

    def query_entries(
        self,
        list_id: str,
        *,
        limit: int = DEFAULT_PAGE,
        offset: int = 0,
        sorts: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[AttioEntry]:
        """One page of ``POST /v2/lists/{list}/entries/query``."""
        body: dict[str, Any] = {"limit": limit, "offset": offset}
        if sorts:
            body["sorts"] = [dict(x) for x in sorts]
        raw = self._read("POST", f"/v2/lists/{list_id}/entries/query", body)
        return self._items("POST /v2/lists/{list}/entries/query", raw, AttioEntry)

    def get_entry(self, list_id: str, entry_id: str) -> AttioEntry | None:
        """The entry, or None when the list no longer has it."""
        endpoint = "GET /v2/lists/{list}/entries/{entry_id}"
        try:
            raw = self._read("GET", f"/v2/lists/{list_id}/entries/{entry_id}")
        except NotFoundError:
            return None
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, dict):
            raise self.http.malformed(endpoint, "expected {'data': {entry}}", raw)
        try:
            return AttioEntry.model_validate(data)
        except PydanticValidationError as exc:
            raise self.http.malformed(endpoint, f"{exc.error_count()} schema errors", raw) from None

    # -- writes ------------------------------------------------------------------------------------
    def create(self, object_slug: str, values: Mapping[str, Any]) -> AttioRecord:
        path = f"/v2/objects/{object_slug}/records"
        raw = self._write("POST", path, {"data": {"values": dict(values)}}, idempotent=False)
        return self._record(f"POST {path}", raw)

    def assert_record(
        self, object_slug: str, matching_attribute: str, values: Mapping[str, Any]
    ) -> AttioRecord:
        """Create or update the record matching ``values[matching_attribute]`` (idempotent)."""
        path = f"/v2/objects/{object_slug}/records"
        raw = self._write(
            "PUT",
            path,
            {"data": {"values": dict(values)}},
            params={"matching_attribute": matching_attribute},
            idempotent=True,
        )
        return self._record(f"PUT {path}", raw)

    def update(self, object_slug: str, record_id: str, values: Mapping[str, Any]) -> AttioRecord:
        path = f"/v2/objects/{object_slug}/records/{record_id}"
        raw = self._write("PATCH", path, {"data": {"values": dict(values)}}, idempotent=True)
        return self._record(f"PATCH /v2/objects/{object_slug}/records/{{id}}", raw)

    def replace(self, object_slug: str, record_id: str, values: Mapping[str, Any]) -> AttioRecord:
        """``PUT`` the record's ``values``: a multiselect attribute given ends up with exactly the values given
        (``[]`` removes them all); attributes not given keep theirs."""
        path = f"/v2/objects/{object_slug}/records/{record_id}"
        raw = self._write("PUT", path, {"data": {"values": dict(values)}}, idempotent=True)
        return self._record(f"PUT /v2/objects/{object_slug}/records/{{id}}", raw)

    # -- notes and tasks (issue 16) ----------------------------------------------------------------
    def _data(self, endpoint: str, raw: Any) -> dict[str, Any]:
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, dict):
            raise self.http.malformed(endpoint, "expected {'data': {...}}", raw)
        return data

    def _data_list(self, endpoint: str, raw: Any) -> list[dict[str, Any]]:
        data = raw.get("data") if isinstance(raw, dict) else None
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise self.http.malformed(endpoint, "expected {'data': [...]}", raw)
        return data

    def create_note(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v2/notes`` (``{parent_object, parent_record_id, title, format, content, created_at}``); not
        retried after it may have landed."""
        raw = self._write("POST", "/v2/notes", {"data": dict(body)}, idempotent=False)
        return self._data("POST /v2/notes", raw)

    def notes_of(self, parent_object: str, parent_record_id: str, *, page: int = 50) -> list[dict[str, Any]]:
        """Every note of one record (``GET /v2/notes``, paged by ``limit`` / ``offset``)."""
        out: list[dict[str, Any]] = []
        while True:
            params = {"parent_object": parent_object, "parent_record_id": parent_record_id, "limit": page,
                      "offset": len(out)}  # fmt: skip
            batch = self._data_list("GET /v2/notes", self._read("GET", "/v2/notes", params=params))
            out.extend(batch)
            if len(batch) < page:
                return out

    def create_task(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v2/tasks`` (``{content, format, deadline_at, is_completed, linked_records, assignees}``)."""
        raw = self._write("POST", "/v2/tasks", {"data": dict(body)}, idempotent=False)
        return self._data("POST /v2/tasks", raw)

    def tasks_of(self, linked_object: str, linked_record_id: str, *, page: int = 500) -> list[dict[str, Any]]:
        """Every task linked to one record (``GET /v2/tasks``, paged by ``limit`` / ``offset``)."""
        out: list[dict[str, Any]] = []
        while True:
            params = {"linked_object": linked_object, "linked_record_id": linked_record_id, "limit": page,
                      "offset": len(out)}  # fmt: skip
            batch = self._data_list("GET /v2/tasks", self._read("GET", "/v2/tasks", params=params))
            out.extend(batch)
            if len(batch) < page:
                return out

    def delete(self, object_slug: str, record_id: str) -> None:
        self._write("DELETE", f"/v2/objects/{object_slug}/records/{record_id}", idempotent=True)
