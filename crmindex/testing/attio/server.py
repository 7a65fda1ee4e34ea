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
        self._reads = SlidingWindow(reads_per_second, 1.0)
        self._writes = SlidingWindow(writes_per_second, 1.0)
        self._ws = Workspace(seed, custom_attributes)
        self._store = AttioStore(self._ws)
        self._webhooks = AttioWebhooks(self._ws, self)
        self._routes = AttioRoutes(self._store, self._webhooks, self, self._injector.chance)
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

    def merge(self, obj: str, primary_id: str, duplicate_id: str) -> str:
        """Copy the duplicate's values into the primary and delete the duplicate (``record.merged``)."""
        with self._store.lock:
            slug = self._ws.slug(obj)
            primary, dup = self._store.get(slug, primary_id), self._store.get(slug, duplicate_id)
            if primary is None or dup is None:
                raise KeyError(f"both {obj} {primary_id} and {duplicate_id} must exist")
            self._store.merge(slug, primary, dup)
            events = [self._webhooks.event(slug, "record.merged", primary_id, api=False,
                                           duplicate_object_id=self._ws.object_ids[slug],
                                           duplicate_record_id=duplicate_id)]  # fmt: skip
        self._webhooks.emit(events)
        return primary_id

    # ================================================================ FakeServer hooks
    def _limit_class(self, req: Request) -> str | None:
        if req.method == "GET" or (req.method == "POST" and req.path.endswith("/query")):
            return "read"
        return "write"

    def _check_limits(self, limit_class: str | None) -> Response | None:
        ok, _ = (self._reads if limit_class == "read" else self._writes).hit()
        return None if ok else self._rate_limited(limit_class or "read")

    def _rate_limited(self, limit_class: str, *, storm: bool = False) -> Response:
        return errors.rate_limited(self.faults.retry_after)

    def _unauthorized(self, reason: str) -> Response:
        return errors.unauthorized(reason)

    def _server_error(self, status: int) -> Response:
        return errors.server_error(status)

    def _route(self, req: Request) -> Response:
        return self._routes.route(req)
