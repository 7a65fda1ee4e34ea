"""``FakeHubSpot``: the fake portal's server, wiring the data (``portal``), the HTTP API (``routes``,
``search``), webhooks (``webhooks``) and the shared server, fault injection and rate limits (``_server``).

Its limits are HubSpot's: a rolling ten-second window for the API (``burst_limit`` per ``burst_window``,
reported in ``X-HubSpot-RateLimit-*`` headers on non-search responses) and a per-second one for search.
Its mutation helpers (``create``, ``update``/``update_property``, ``delete``, ``restore``, ``merge``,
``associate``) change the portal as a user would in the UI and emit the webhook events HubSpot sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from crmindex.testing._http import Request, Response
from crmindex.testing._oauth import HubSpotOAuthFake
from crmindex.testing._ratelimit import SlidingWindow
from crmindex.testing._server import EmitMode, FakeServer
from crmindex.testing.hubspot import errors
from crmindex.testing.hubspot.model import LASTMOD, SINGULAR, object_type
from crmindex.testing.hubspot.portal import Portal
from crmindex.testing.hubspot.routes import HubSpotRoutes
from crmindex.testing.hubspot.search import SEARCH_CAP
from crmindex.testing.hubspot.seed import seed_portal
from crmindex.testing.hubspot.store import HubSpotRecord, ObjectStore
from crmindex.testing.hubspot.webhooks import Event, HubSpotWebhooks

if TYPE_CHECKING:
    from crmindex.testing.synthetic import SyntheticCRM


class FakeHubSpot(FakeServer):
    """A HubSpot portal on 127.0.0.1. Use as a context manager; ``base_url`` is where it listens."""

    source = "hubspot"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] = ("test-token",),
        portal_id: int = 62515,
        app_id: int = 54321,
        limits: bool = True,
        burst_limit: int = 100,
        burst_window: float = 10.0,
        search_per_second: int = 5,
        webhook_url: str | None = None,
        client_secret: str | None = None,
        webhook_secret: str | None = None,
        emit: EmitMode = "send",
        emit_api_changes: bool = True,
        search_lag: float = 0.0,
        search_cap: int = SEARCH_CAP,
        seed: int = 0,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            tokens=tokens,
            limits=limits,
            webhook_url=webhook_url,
            webhook_secret=client_secret or webhook_secret,
            emit=emit,
            seed=seed,
        )
        self.portal_id = portal_id
        self.app_id = app_id
        self.emit_api_changes = emit_api_changes
        self.search_lag = search_lag
        self.search_cap = search_cap
        self._general = SlidingWindow(burst_limit, burst_window)
        self._search = SlidingWindow(search_per_second, 1.0)
        self._portal = Portal()
        self._webhooks = HubSpotWebhooks(self)
        self._routes = HubSpotRoutes(self._portal, self._webhooks, self)
        self.oauth = HubSpotOAuthFake(self, portal_id=portal_id, app_id=app_id)  # OAuth + account endpoints

    # ================================================================ reading the portal
    def store(self, kind: str) -> ObjectStore:
        return self._portal.store(kind)

    def count(self, kind: str, *, archived: bool = False) -> int:
        with self._portal.lock:
            return sum(1 for r in self.store(kind).all() if r.archived == archived)

    def record(self, kind: str, oid: str | int) -> HubSpotRecord | None:
        """The stored record (None when absent); a copy is not made: do not mutate."""
        with self._portal.lock:
            return self.store(kind).get(int(oid))

    def properties(self, kind: str, oid: str | int) -> dict[str, str | None]:
        with self._portal.lock:
            rec = self.store(kind).get(int(oid))
            if rec is None:
                raise KeyError(f"no {kind} {oid}")
            out = dict(rec.props)
            out.update(
                {n: rec.prop(kind, n) for n in ("hs_object_id", "createdate", LASTMOD[object_type(kind)])}
            )
            return out

    def associations(self, from_kind: str, from_id: int | str, to_kind: str) -> dict[int, bool]:
        """Target id -> primary of one record's associations."""
        return self._portal.associations(object_type(from_kind), int(from_id), object_type(to_kind))

    # ================================================================ seeding
    def seed_from(self, crm: SyntheticCRM) -> FakeHubSpot:
        """Serve ``crm``'s companies, contacts and deals (contacts lazily; HubSpot-style numeric ids)."""
        seed_portal(self._portal, crm)
        return self

    def seed_records(self, kind: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add records with the given properties (no webhooks); returns their ids."""
        with self._portal.lock:
            return [str(self.store(kind).new(r).id) for r in rows]

    # ================================================================ webhooks
    def sign(
        self, body: bytes, *, method: str = "POST", uri: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """The signature headers HubSpot sends with ``body`` (v1 and v3, side by side)."""
        return self._webhooks.sign(body, method=method, uri=uri, timestamp=timestamp)

    def batched_webhooks(self) -> AbstractContextManager[None]:
        """``with fake.batched_webhooks(): ...`` sends the events of several mutations in one array."""
        return self._webhooks.batched()

    def emit_events(self, events: list[dict[str, Any]]) -> None:
        """Send (or collect) an arbitrary event array, signed (for tests of odd payloads)."""
        self._webhooks.send(events)

    # ================================================================ mutation helpers (UI-like)
    def create(self, kind: str, props: Mapping[str, Any], *, source: str = "CRM_UI") -> str:
        kind = object_type(kind)
        with self._portal.lock:
            rec = self.store(kind).new(props)
            if kind == "contacts" and self._portal.links.link_company(rec):
                self._portal.links.mark_explicit(rec.id)
            events = [self._webhooks.creation(kind, rec, source)]
        self._webhooks.emit(events)
        return str(rec.id)

    def update_property(
        self, kind: str, oid: str | int, name: str, value: Any, *, source: str = "CRM_UI"
    ) -> None:
        self.update(kind, oid, {name: value}, source=source)

    def update(self, kind: str, oid: str | int, props: Mapping[str, Any], *, source: str = "CRM_UI") -> None:
        kind = object_type(kind)
        with self._portal.lock:
            changes, at = self._portal.update(kind, int(oid), props)
            events = self._webhooks.property_changes(kind, int(oid), changes, at, source)
        self._webhooks.emit(events)

    def delete(self, kind: str, oid: str | int, *, source: str = "CRM_UI") -> None:
        """Archive (restorable): ``archivedAt`` is set, the last-modified date is not bumped."""
        kind = object_type(kind)
        with self._portal.lock:
            st = self.store(kind)
            rec = st.touch(int(oid))
            if rec is None or rec.archived:
                raise KeyError(f"no {kind} {oid}")
            events = [self._webhooks.deletion(kind, st.archive(rec), source)]
        self._webhooks.emit(events)

    def restore(self, kind: str, oid: str | int, *, source: str = "CRM_UI") -> None:
        kind = object_type(kind)
        with self._portal.lock:
            rec = self._portal.restore(kind, int(oid))
            events = [self._webhooks.event(kind, "restore", rec.id, source=source, changeFlag="RESTORED",
                                           occurredAt=rec.updated_ms)]  # fmt: skip
        self._webhooks.emit(events)

    def merge(self, kind: str, primary_id: str | int, merged_id: str | int, *, source: str = "CRM_UI") -> str:
        """Merge ``merged_id`` into ``primary_id``: the merged record is gone; reads of it redirect."""
        kind = object_type(kind)
        with self._portal.lock:
            primary, n_moved = self._portal.merge(kind, int(primary_id), int(merged_id))
            events = [self._webhooks.event(kind, "merge", primary.id, source=source, primaryObjectId=primary.id,
                                           mergedObjectIds=[int(merged_id)], newObjectId=primary.id,
                                           numberOfPropertiesMoved=n_moved, occurredAt=primary.updated_ms)]  # fmt: skip
        self._webhooks.emit(events)
        return str(primary.id)

    def associate(
        self,
        from_kind: str,
        from_id: str | int,
        to_kind: str,
        to_id: str | int,
        *,
        remove: bool = False,
        primary: bool = False,
        source: str = "CRM_UI",
    ) -> None:
        """Add (or remove) an association and emit ``associationChange`` events for both sides."""
        fk, tk = object_type(from_kind), object_type(to_kind)
        fid, tid = int(from_id), int(to_id)
        with self._portal.lock:
            ts = self._portal.associate(fk, fid, tk, tid, remove=remove, primary=primary)
            events: list[Event] = []
            for a, aid, b, bid in ((fk, fid, tk, tid), (tk, tid, fk, fid)):
                events.append(self._webhooks.event(
                    a, "associationChange", aid, source=source, occurredAt=ts,
                    associationType=f"{SINGULAR[a].upper()}_TO_{SINGULAR[b].upper()}",
                    fromObjectId=aid, toObjectId=bid, associationRemoved=remove, isPrimaryAssociation=primary,
                ))  # fmt: skip
        self._webhooks.emit(events)

    # ================================================================ FakeServer hooks
    def _limit_class(self, req: Request) -> str | None:
        return "search" if req.path.endswith("/search") else "general"

    def _check_limits(self, limit_class: str | None) -> Response | None:
        ok, _ = (self._search if limit_class == "search" else self._general).hit()
        return None if ok else self._rate_limited(limit_class or "general")

    def _rate_limited(self, limit_class: str, *, storm: bool = False) -> Response:
        return errors.rate_limited(limit_class, self.faults.retry_after)

    def _unauthorized(self, reason: str) -> Response:
        return errors.unauthorized(reason)

    def _server_error(self, status: int) -> Response:
        return errors.server_error(status)

    def _route(self, req: Request) -> Response:
        resp = self._routes.route(req)
        if not req.path.endswith("/search"):
            resp.headers.update({
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self._general.seconds * 1000)),
                "X-HubSpot-RateLimit-Max": str(self._general.limit),
                "X-HubSpot-RateLimit-Remaining": str(self._general.remaining()),
            })  # fmt: skip
        return resp
