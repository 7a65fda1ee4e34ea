"""``FakeHubSpot``: the fake portal's server, wiring the data (``portal``), the HTTP API (``routes``,
``search``), webhooks (``webhooks``) and the shared server, fault injection and rate limits (``_server``).

Its limits are HubSpot's (developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines): a rolling
ten-second window per app and account by ``tier`` (Free/Starter 100, Professional/Enterprise 190, an API limit
increase 250; a publicly distributed OAuth app 110 per installed account), a per-second one for search (which the
ten-second window does not count: the spec's ``x-hubspot-rate-limit-exemptions: ["ten-secondly"]``), and a daily
one per account (250,000 / 625,000 / 1,000,000, +1,000,000 per capacity pack, at most 2) that "resets at midnight
based on your time zone setting" (the portal's ``time_zone``, as the account details report it). Non-search
responses carry ``X-HubSpot-RateLimit-Interval-Milliseconds``, ``-Max`` and ``-Remaining``, and
``X-HubSpot-RateLimit-Daily`` / ``-Daily-Remaining`` except on OAuth requests ("not sent for OAuth"); search
responses carry none. Over the daily limit every call answers 429 ``policyName: DAILY`` ("You have reached your
daily limit.").
Its mutation helpers (``create``, ``update``/``update_property``, ``delete``, ``restore``, ``merge``,
``associate``) change the portal as a user would in the UI and emit the webhook events HubSpot sends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from crmindex.testing._http import Request, Response
from crmindex.testing._oauth import HubSpotOAuthFake
from crmindex.testing._ratelimit import SlidingWindow
from crmindex.testing._server import EmitMode, FakeServer
from crmindex.testing.hubspot import errors
from crmindex.testing.hubspot.metadata import PortalMetadata
from crmindex.testing.hubspot.model import LASTMOD, object_type
from crmindex.testing.hubspot.portal import Portal
from crmindex.testing.hubspot.routes import HubSpotRoutes
from crmindex.testing.hubspot.search import SEARCH_CAP
from crmindex.testing.hubspot.seed import seed_portal
from crmindex.testing.hubspot.store import HubSpotRecord, ObjectStore
from crmindex.testing.hubspot.webhooks import Event, HubSpotWebhooks

if TYPE_CHECKING:
    from crmindex.testing.synthetic import SyntheticCRM

# tier -> (requests per ten seconds per app, requests per day per account): the usage guidelines' table
TIERS = {"free": (100, 250_000), "starter": (100, 250_000), "professional": (190, 625_000),
         "enterprise": (190, 1_000_000)}  # fmt: skip
CAPACITY_PACK_BURST, CAPACITY_PACK_DAILY, MAX_CAPACITY_PACKS = 250, 1_000_000, 2
OAUTH_APP_BURST = (
    110  # "each HubSpot account that installs your app is limited to 110 requests every 10 seconds"
)


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
        tier: str = "starter",
        capacity_packs: int = 0,
        oauth_app: bool = False,
        burst_limit: int | None = None,
        burst_window: float = 10.0,
        search_per_second: int = 5,
        daily_limit: int | None = None,
        time_zone: str = "US/Eastern",
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
        self.merge_creates_new_object = False  # API merges create a new record (see Portal.merge)
        self.inline_association_limit = 100  # inline associations per type before paging [unverified]
        self.association_page_size = 500  # v4 association reads: "Limit 500 per call"
        if tier not in TIERS or not 0 <= capacity_packs <= MAX_CAPACITY_PACKS:
            raise ValueError(f"tier is one of {sorted(TIERS)}; capacity_packs 0..{MAX_CAPACITY_PACKS}")
        burst, daily = TIERS[tier]
        if capacity_packs:
            burst, daily = CAPACITY_PACK_BURST, daily + capacity_packs * CAPACITY_PACK_DAILY
        if oauth_app:
            burst = OAUTH_APP_BURST
        self.oauth_app = oauth_app  # requests are OAuth ones: no daily headers
        self.time_zone = time_zone
        self.daily_limit = daily if daily_limit is None else daily_limit
        self.daily_used = 0
        self._daily_day: str | None = None
        self._daily_lock = threading.Lock()
        self._general = SlidingWindow(burst if burst_limit is None else burst_limit, burst_window)
        self._search = SlidingWindow(search_per_second, 1.0)
        self._portal = Portal()
        self.metadata = PortalMetadata()  # pipelines and owners (add_pipeline, add_owner, rename_stage ...)
        self._webhooks = HubSpotWebhooks(self)
        self._routes = HubSpotRoutes(self._portal, self._webhooks, self, self.metadata)
        self.oauth = HubSpotOAuthFake(self, portal_id=portal_id, app_id=app_id)  # OAuth + account endpoints

    # ================================================================ reading the portal
    def engagements_on(self, kind: str, oid: str | int) -> list[dict[str, Any]]:
        """The engagements (notes, calls, ...) associated with one contact / company / deal, as the API shows
        them: ``{"type", "id", "properties", "associations": {to_kind: [ids]}}`` (issue 16)."""
        return [
            {"type": e.kind, "id": str(e.id), "properties": dict(e.properties),
             "associations": {t: [str(i) for i in ids] for t, ids in e.associations.items()}}
            for e in self._routes.engagements.on_record(object_type(kind), int(oid))
        ]  # fmt: skip

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
        """Serve ``crm``'s companies, contacts and deals (contacts lazily; HubSpot-style numeric ids), and owners
        for the owner ids its deals name."""
        seed_portal(self._portal, crm)
        self.metadata.ensure_owners(crm.owner_ids())
        return self

    @property
    def generic_webhooks(self) -> bool:
        """Send the generic ``object.*`` webhook format (see ``webhooks``) instead of the legacy one."""
        return self._webhooks.generic

    @generic_webhooks.setter
    def generic_webhooks(self, value: bool) -> None:
        self._webhooks.generic = value

    def daily_resets_at(self, now: datetime | None = None) -> datetime:
        """The next midnight in the portal's time zone (when the daily limit resets)."""
        zone = ZoneInfo(self.time_zone)
        local = (now or datetime.now(UTC)).astimezone(zone)
        nxt = datetime(local.year, local.month, local.day, tzinfo=zone) + timedelta(days=1)
        return nxt.astimezone(UTC)

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

    def merge(
        self,
        kind: str,
        primary_id: str | int,
        merged_id: str | int,
        *,
        source: str = "CRM_UI",
        new_object: bool | None = None,
    ) -> str:
        """Merge ``merged_id`` into ``primary_id``: the merged record is gone; reads of it redirect. With
        ``new_object`` (default: ``merge_creates_new_object``) the merge makes a new record and both are gone.
        Returns the id of the record the merge left."""
        kind = object_type(kind)
        new = self.merge_creates_new_object if new_object is None else new_object
        with self._portal.lock:
            result, n_moved = self._portal.merge(kind, int(primary_id), int(merged_id), new_object=new)
            events = [self._webhooks.merge(kind, int(primary_id), [int(merged_id)], result.id, n_moved, source,
                                           result.updated_ms)]  # fmt: skip
        self._webhooks.emit(events)
        return str(result.id)

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
            events: list[Event] = self._webhooks.association(
                fk, fid, tk, tid, removed=remove, primary=primary, source=source, at=ts
            )
        self._webhooks.emit(events)

    # ================================================================ FakeServer hooks
    def _limit_class(self, req: Request) -> str | None:
        return "search" if req.path.endswith("/search") else "general"

    def _daily_spend(self) -> bool:
        """Count one call against the day's budget; False when the budget is spent."""
        day = self.daily_resets_at().isoformat()
        with self._daily_lock:
            if day != self._daily_day:  # past the portal's midnight: a new day's budget
                self._daily_day, self.daily_used = day, 0
            if self.daily_used >= self.daily_limit:
                return False
            self.daily_used += 1
            return True

    def daily_remaining(self) -> int:
        with self._daily_lock:
            return max(0, self.daily_limit - self.daily_used)

    def _check_limits(self, limit_class: str | None) -> Response | None:
        if not self._daily_spend():
            return self._rate_limited("daily")
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
            if not self.oauth_app:
                resp.headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
                resp.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.daily_remaining())
        return resp
