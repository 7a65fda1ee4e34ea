"""``FakeAttio``: the fake workspace's server, wiring the schema (``schema``), the records (``store``), the
HTTP API (``routes``, ``query``), webhooks (``webhooks``) and the shared server, fault injection and rate
limits (``_server``).

Its limits are Attio's: 100 reads and 25 writes per second (a read is a GET or a records query). Its
mutation helpers (``create``, ``update``/``update_property``, ``delete``, ``merge``) change the workspace
as a member would in the UI and emit the webhook events Attio sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from crmindex.testing._http import Request, Response
from crmindex.testing._oauth import AttioOAuthFake
from crmindex.testing._ratelimit import SlidingWindow
from crmindex.testing._server import EmitMode, FakeServer
from crmindex.testing.attio import errors
from crmindex.testing.attio.lists import AttioLists
from crmindex.testing.attio.routes import AttioRoutes
from crmindex.testing.attio.schema import Workspace
from crmindex.testing.attio.seed import seed_workspace
from crmindex.testing.attio.store import AttioStore
from crmindex.testing.attio.webhooks import AttioWebhooks

if TYPE_CHECKING:
    from crmindex.testing.synthetic import SyntheticCRM


class FakeAttio(FakeServer):
    """An Attio workspace on 127.0.0.1. Use as a context manager; ``base_url`` is where it listens."""

    source = "attio"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] = ("test-token",),
        limits: bool = True,
        reads_per_second: int = 100,
        writes_per_second: int = 25,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        emit: EmitMode = "send",
        emit_api_changes: bool = True,
        include_historic: bool = False,
        custom_attributes: Mapping[str, Mapping[str, str]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            tokens=tokens,
            limits=limits,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            emit=emit,
            seed=seed,
        )
        self.emit_api_changes = emit_api_changes
        self.include_historic = include_historic
        self.conflict_rate = 0.0  # share of writes answered 409 concurrent_write_conflict
        self.clock_skew = 0.0  # seconds the workspace's clock is off the client's (429 Retry-After dates)
        self._reads = SlidingWindow(reads_per_second, 1.0)
        self._writes = SlidingWindow(writes_per_second, 1.0)
        self._ws = Workspace(seed, custom_attributes)
        self._store = AttioStore(self._ws)
        self._webhooks = AttioWebhooks(self._ws, self)
        self._lists = AttioLists(self._ws)
        self._routes = AttioRoutes(self._store, self._webhooks, self, self._injector.chance, self._lists)
        self.oauth = AttioOAuthFake(self, workspace_id=self.workspace_id)  # OAuth, /v2/self, /v2/webhooks

    # ================================================================ the workspace
    @property
    def workspace_id(self) -> str:
        return self._ws.workspace_id

    @property
    def webhook_id(self) -> str:
        return self._ws.webhook_id

    @property
    def attributes(self) -> dict[str, dict[str, tuple[str, bool]]]:
        """Object slug -> attribute slug -> (type, multiselect)."""
        return self._ws.attributes

    @property
    def object_ids(self) -> dict[str, str]:
        return self._ws.object_ids

    @property
    def attribute_ids(self) -> dict[tuple[str, str], str]:
        return self._ws.attribute_ids

    def activities_on(self, obj: str, record_id: str) -> list[dict[str, Any]]:
        """The notes and tasks of one record as the API shows them, each with ``"type": "note"|"task"``."""
        return self._routes.activities.on_record(self._ws.slug(obj), record_id)

    def record_ids(self, obj: str) -> list[str]:
        with self._store.lock:
            return self._store.ids(self._ws.slug(obj))

    def record(self, obj: str, record_id: str) -> dict[str, Any] | None:
        """The record as the API returns it (active values), or None."""
        with self._store.lock:
            slug = self._ws.slug(obj)
            rec = self._store.get(slug, record_id)
            return None if rec is None else self._store.view(slug, rec, historic=self.include_historic)

    # ================================================================ seeding
    def seed_from(self, crm: SyntheticCRM) -> FakeAttio:
        """Serve ``crm`` (source ``attio``: UUID record ids); people are generated lazily."""
        seed_workspace(self._store, crm)
        return self

    # ================================================================ webhooks
    def sign(self, body: bytes) -> dict[str, str]:
        return self._webhooks.sign(body)

    def emit_events(self, events: list[dict[str, Any]]) -> None:
        self._webhooks.emit(events)

    # ================================================================ mutation helpers (UI-like)
    def create(self, obj: str, values: Mapping[str, Any]) -> str:
        with self._store.lock:
            slug = self._ws.slug(obj)
            rec = self._store.new(slug, values, api=False)
            events = [self._webhooks.event(slug, "record.created", rec.record_id, api=False)]
        self._webhooks.emit(events)
        return rec.record_id

    def update(self, obj: str, record_id: str, values: Mapping[str, Any]) -> None:
        with self._store.lock:
            slug = self._ws.slug(obj)
            rec = self._store.get(slug, record_id)
            if rec is None:
                raise KeyError(f"no {obj} {record_id}")
            changed = self._store.write_values(slug, rec, values, api=False, overwrite_multi=True)
            events = self._webhooks.updated(slug, record_id, changed, api=False)
        self._webhooks.emit(events)

    def update_property(self, obj: str, record_id: str, name: str, value: Any) -> None:
        self.update(obj, record_id, {name: value})

    def delete(self, obj: str, record_id: str) -> None:
        with self._store.lock:
            slug = self._ws.slug(obj)
            if self._store.get(slug, record_id) is None:
                raise KeyError(f"no {obj} {record_id}")
            self._store.delete(slug, record_id)
            events = [self._webhooks.event(slug, "record.deleted", record_id, api=False)]
        self._webhooks.emit(events)

    def merge(self, obj: str, primary_id: str, duplicate_id: str, *, in_progress: int = 0) -> str:
        """Merge two records as a member does in the UI; returns the id of the **new** record the merge produces
        (both originals are gone: 404). Two ``record.merged`` events follow, one per original: "both carry the new
        record's ID in id.record_id, and each names one of the originals in duplicate_record_id"
        (docs.attio.com webhook reference, record.merged). ``in_progress``: an asynchronous merge, whose new record
        answers 404 ``merge_in_progress`` to that many requests (-1: until :meth:`complete_merges`); its events
        may arrive before it completes."""
        with self._store.lock:
            slug = self._ws.slug(obj)
            primary, dup = self._store.get(slug, primary_id), self._store.get(slug, duplicate_id)
            if primary is None or dup is None:
                raise KeyError(f"both {obj} {primary_id} and {duplicate_id} must exist")
            merged = self._store.merge(slug, primary, dup, in_progress=in_progress)
            events = [self._webhooks.event(slug, "record.merged", merged.record_id, api=False,
                                           duplicate_object_id=self._ws.object_ids[slug],
                                           duplicate_record_id=original)
                      for original in (primary_id, duplicate_id)]  # fmt: skip
        self._webhooks.emit(events)
        return merged.record_id

    def complete_merges(self) -> None:
        """Finish every asynchronous merge: their new records become readable."""
        with self._store.lock:
            self._store.complete_merges()

    def merged_into(self, obj: str, record_id: str) -> str | None:
        """The new record a merged-away record became part of (the fake's bookkeeping, not an API)."""
        with self._store.lock:
            return self._store.merged_into(self._ws.slug(obj), record_id)

    # ================================================================ lists and members (UI-like)
    def add_member(self, first_name: str, last_name: str, email: str, *, access_level: str = "member") -> str:
        """A workspace member (an owner of deals); returns its id."""
        with self._store.lock:
            return self._ws.add_member(first_name, last_name, email, access_level=access_level)

    def suspend_member(self, member_id: str) -> None:
        with self._store.lock:
            for m in self._ws.members:
                if m["id"]["workspace_member_id"] == member_id:
                    m["access_level"] = "suspended"

    def statuses(self, obj: str, attribute: str) -> list[dict[str, Any]]:
        """The statuses of an object's status attribute, or of a list's (``obj`` "list:<list id>")."""
        with self._store.lock:
            key = obj if obj.startswith("list:") else self._ws.slug(obj)
            return [dict(c) for c in self._ws.choices.get((key, attribute), [])]

    def rename_status(self, obj: str, attribute: str, old: str, new: str) -> None:
        """Rename a status (its id stays; values holding it show the new title)."""
        with self._store.lock:
            key = obj if obj.startswith("list:") else self._ws.slug(obj)
            for c in self._ws.choices.get((key, attribute), []):
                if c["title"] == old:
                    c["title"] = new
            for holder in [*(r.values for r in self._store.cached(key)),
                           *(e.values for lst in self._lists.lists.values() for e in lst.entries.values())]:  # fmt: skip
                for v in holder.get(attribute, []):
                    status = v.get("status")
                    if isinstance(status, dict) and status.get("title") == old:
                        status["title"] = new

    def create_list(
        self, name: str, parent_object: str, *, stages: list[str] | None = None, slug: str | None = None
    ) -> str:
        """A list of records of ``parent_object`` (people, companies, deals), with a ``stage`` status attribute of
        these statuses (in this order) when ``stages`` is given; returns its id."""
        with self._store.lock:
            return self._lists.create(name, self._ws.slug(parent_object), stages, slug)

    def add_entry(self, list_id: str, parent_record_id: str, values: Mapping[str, Any] | None = None) -> str:
        """Add a record to a list (``list-entry.created``); returns the entry id."""
        with self._store.lock:
            lst = self._lists.find(list_id)
            entry = self._lists.add_entry(lst, parent_record_id, values or {}, api=False)
            events = [self._entry_event("list-entry.created", lst.list_id, entry.entry_id)]
        self._webhooks.emit(events)
        return entry.entry_id

    def update_entry(self, list_id: str, entry_id: str, values: Mapping[str, Any]) -> None:
        """Change an entry's values: one ``list-entry.updated`` per attribute changed."""
        with self._store.lock:
            lst = self._lists.find(list_id)
            entry = lst.entries[entry_id]
            changed = self._lists.write(lst, entry, values, api=False)
            events = [
                self._entry_event("list-entry.updated", lst.list_id, entry_id, attribute=a) for a in changed
            ]
        self._webhooks.emit(events)

    def delete_entry(self, list_id: str, entry_id: str) -> None:
        """Remove an entry from its list (``list-entry.deleted``)."""
        with self._store.lock:
            lst = self._lists.find(list_id)
            event = self._entry_event("list-entry.deleted", lst.list_id, entry_id)
            del lst.entries[entry_id]
        self._webhooks.emit([event])

    def list_entries(self, list_id: str) -> list[dict[str, Any]]:
        """A list's entries as the API returns them."""
        with self._store.lock:
            lst = self._lists.find(list_id)
            return [self._lists.entry_view(lst, e) for e in lst.entries.values()]

    def _entry_event(self, event_type: str, list_id: str, entry_id: str, attribute: str | None = None) -> Any:
        lst = self._lists.lists[list_id]
        entry = lst.entries[entry_id]
        attribute_id = None if attribute is None else self._ws.attribute_id(f"list:{list_id}", attribute)
        return self._webhooks.entry_event(event_type, list_id, entry_id, self._ws.object_ids[entry.parent_object],
                                          entry.parent_record_id, api=False, attribute_id=attribute_id)  # fmt: skip

    # ================================================================ FakeServer hooks
    def _limit_class(self, req: Request) -> str | None:
        if req.method == "GET" or (req.method == "POST" and req.path.endswith("/query")):
            return "read"
        return "write"

    def _check_limits(self, limit_class: str | None) -> Response | None:
        ok, _ = (self._reads if limit_class == "read" else self._writes).hit()
        return None if ok else self._rate_limited(limit_class or "read")

    def _rate_limited(self, limit_class: str, *, storm: bool = False) -> Response:
        return errors.rate_limited(self.faults.retry_after, self.clock_skew)

    def _unauthorized(self, reason: str) -> Response:
        return errors.unauthorized(reason)

    def _server_error(self, status: int) -> Response:
        return errors.server_error(status)

    def _route(self, req: Request) -> Response:
        return self._routes.route(req)
