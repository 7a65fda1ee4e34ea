"""Receiving webhooks: verify on the raw bytes, route to the org's connection, store raw once, answer.

A request is acknowledged (2xx) only after its body is committed to ``crm.webhook_inbox``, or found to be a
replay of events already stored there; processing happens after, from the inbox
(``crmindex.freshness.webhooks``). Client errors get a 4xx with a short reason and change nothing; a database
outage gets 503 so the CRM retries the delivery.

The receiver faces the internet (issue 13):

* **Identical answers until a signature verifies.** An account no org has connected is checked against a
  dummy secret, with as many HMACs as a known one: a probe gets the same status, body and work whether the
  portal or workspace it names is connected or not.
* **HubSpot public apps** sign every portal's deliveries with the app's client secret: operator configuration
  of the receiver (``hubspot_client_secret``, else ``CRMINDEX_HUBSPOT_CLIENT_SECRET``), never
  a database value. It is checked first, before any routing or database work. Per-connection secrets (Attio
  webhook secrets, HubSpot private apps) come with the route.
* **Bounded routing.** Routes are a snapshot of every connection (``crm.webhook_route(NULL, NULL)``: memory
  bounded by the number of connections), reloaded every ``ROUTE_TTL_S``, and when a signature does not match
  (it may be made with a secret newer than the snapshot) at most once per ``ROUTE_RETRY_S`` whatever the
  accounts named: a flood of probes costs at most one query a second, an unknown account no query of its
  own, and it takes the same path as a known one (there is no per-account cache to probe).
* **Replays stored once.** Each event gets a key (:func:`hubspot_event_keys`, :func:`attio_keys`);
  ``crm.webhook_accept`` records them and stores the delivery only when it holds a new one. A replay is
  answered 200 ``duplicate`` (the CRM stops retrying) and costs one signature check and one small insert
  attempt.
* **Least privilege.** In the database the receiver only loads routes (:class:`RouteSource`) and calls
  ``crm.webhook_accept``: it can run as a role that is a member of ``crm_receiver`` only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets as _random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from crmindex.freshness.signatures import Verdict, verify_attio, verify_hubspot
from crmindex.platform.db import Conn
from crmindex.platform.secrets import Secret, SecretBox, SecretError

log = logging.getLogger("crmindex.webhooks")

MAX_BODY_BYTES = 1_000_000  # crm.webhook_accept refuses larger bodies
MAX_EVENTS = 1000
# the HubSpot public app's client secret (the same variable crmindex.crm.oauth reads for the OAuth flow)
HUBSPOT_SECRET_ENV = "CRMINDEX_HUBSPOT_CLIENT_SECRET"  # noqa: S105 (the variable's name)
# Routes are reloaded this often (new connections and rotated secrets are seen within it; forget_routes()
# reloads at the next request).
ROUTE_TTL_S = 30.0
# After a failed reload, the next attempt waits this long (a database outage costs one query a second).
ROUTE_RETRY_S = 1.0
# Every verification compares at least this many candidate secrets (dummies fill in), so a known account
# with a secret under rotation costs the same HMACs as an unknown one.
MIN_CANDIDATES = 2
# How long event keys are kept (crm.webhook_accept clamps them to 1 s .. 7 days):
# HubSpot retries a failed delivery up to 10 times over about a day (reference A3); a captured request cannot
# be replayed after 5 minutes anyway (the v3 timestamp).
HUBSPOT_KEY_TTL = timedelta(days=3)
# Attio retries up to 10 times over about 3 days, with the same Idempotency-Key header (docs.attio.com,
# webhooks): its message keys are kept longer than that.
# Attio signs the body only (no timestamp), and two real messages can have the same body (two edits of one
# attribute: events carry no time nor value). The Idempotency-Key header tells them apart, but it is not
# signed: a replay may carry any. So an Attio event key holds back a copy only while the delivery that carried
# it waits in the inbox (crm.webhook_accept): a real second edit after it was processed is stored (its refetch
# is needed), and replays with made-up headers are stored at most once per processing of the previous one.
ATTIO_KEY_TTL = timedelta(days=4)
# How long a request waits for a database connection before answering 503. The CRM gives up on a webhook
# after a few seconds (HubSpot: 1-5 s) and retries it later; waiting the pool's default 30 s through a
# database outage only held server threads and answered into the void.
STORE_WAIT_S = 2.0


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    reason: str
    inbox_id: int | None = None
    events: int = 0


def _parse_json(raw_body: bytes) -> tuple[Any, WebhookResponse | None]:
    """The JSON of a UTF-8 body, or a 400 (not UTF-8, not JSON, nested too deep to parse)."""
    try:
        return json.loads(raw_body.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, WebhookResponse(400, "body is not UTF-8")
    except (ValueError, RecursionError):
        return None, WebhookResponse(400, "malformed JSON")


def _hashable(value: object) -> object:
    # an id given as a list or object is malformed: a hashable stand-in (neither int nor str) that the
    # shape checks reject
    return value if value is None or isinstance(value, int | float | str | bool) else (type(value).__name__,)


# ------------------------------------------------------------------------------------------------ replay keys


def _digest(domain: str, value: object) -> str:
    """sha256 (hex) of a canonical JSON form: the same content gives the same key whatever its key order or
    spacing; ``domain`` keeps the kinds of key apart."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{domain}\n{text}".encode("ascii")).hexdigest()


def hubspot_event_keys(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """One key per event: its content without ``attemptNumber`` (HubSpot's retries increment it; ``eventId``
    alone is "not guaranteed to be unique", so every other field counts: subscription type, object, time,
    property and value, event id ...)."""
    return sorted(
        {_digest("hubspot-event", {k: v for k, v in e.items() if k != "attemptNumber"}) for e in events}
    )


def attio_keys(payload: Mapping[str, Any], idempotency_key: str | None) -> tuple[list[str], str | None]:
    """The event keys (webhook id + event) and the message key (webhook id + the ``Idempotency-Key`` header,
    "different for each message, but the same between retries and redeliveries"), when there is a header."""
    webhook_id = payload.get("webhook_id")
    events = payload.get("events") or []
    keys = sorted({_digest("attio-event", {"webhook_id": webhook_id, "event": e}) for e in events})
    message = (
        None
        if idempotency_key is None
        else _digest("attio-message", {"webhook_id": webhook_id, "idempotency_key": idempotency_key})
    )
    return keys, message


# ------------------------------------------------------------------------------------------------ routing


@dataclass(frozen=True)
class Route:
    """Where an account's deliveries go, and the per-connection secrets that sign them (none for a HubSpot
    portal of the public app, whose client secret is the receiver's configuration)."""

    org_id: str
    secrets: tuple[Secret, ...] = ()

    def __repr__(self) -> str:
        return f"Route(org_id={self.org_id!r}, secrets={len(self.secrets)})"


class RouteSource(Protocol):
    """Loads every route: ``{(crm_source, account_id): Route}``, in one round trip."""

    def __call__(self, conn: Conn) -> Mapping[tuple[str, str], Route]: ...


def stored_routes(box: SecretBox | None = None) -> RouteSource:
    """Every route from ``crm.webhook_route(NULL, NULL)`` (the one function the receiver role may call for
    routing), its sealed webhook secrets unsealed with ``box`` (default: the key ring of
    ``CRMINDEX_SECRET_KEYS``, read when the first sealed secret needs it). A secret that does not unseal is
    left out and logged (never its value): its account's deliveries get 401 until an operator fixes it."""
    boxes: list[SecretBox] = [] if box is None else [box]

    def unseal(org: str, source: str, key_id: str, ciphertext: bytes) -> Secret | None:
        try:
            if not boxes:
                boxes.append(SecretBox.from_env())
            return boxes[0].unseal(key_id, ciphertext, org_id=org, source=source, kind="webhook_secret")
        except SecretError as exc:
            log.warning("a webhook secret of org %s (%s) is not usable: %s", org, source, exc)
            return None

    def load(conn: Conn) -> dict[tuple[str, str], Route]:
        rows = conn.execute(
            "SELECT crm_source, account_id, org_id::text, key_id, ciphertext FROM crm.webhook_route(NULL, NULL)"
        ).fetchall()
        orgs: dict[tuple[str, str], str] = {}
        found: dict[tuple[str, str], list[Secret]] = {}
        for source, account, org, key_id, ciphertext in rows:
            key = (str(source), str(account))
            orgs.setdefault(key, str(org))  # the oldest connection first (one account, one org)
            secrets = found.setdefault(key, [])
            if key_id is not None and ciphertext is not None and str(org) == orgs[key]:
                secret = unseal(str(org), key[0], str(key_id), bytes(ciphertext))
                if secret is not None:
                    secrets.append(secret)
        return {key: Route(orgs[key], tuple(found[key])) for key in orgs}

    return load


class RouteTable:
    """A snapshot of every route, reloaded when older than ``ttl_s`` (one query, whatever the traffic).

    Looking an account up never queries the database by itself: an unknown account is simply absent. While a
    reload runs, other threads use the previous snapshot; a failed reload keeps it and is retried after
    ``retry_s``. Without any snapshot (first request, database down) :meth:`get` raises, and the caller
    answers 503 whatever the account.
    """

    def __init__(
        self,
        source: RouteSource,
        *,
        ttl_s: float = ROUTE_TTL_S,
        retry_s: float = ROUTE_RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl_s = ttl_s
        self._retry_s = retry_s
        self._clock = clock
        self._routes: Mapping[tuple[str, str], Route] | None = None
        self._fresh_until = float("-inf")
        self._next_try = float("-inf")
        self._loaded_at = float("-inf")  # when the current snapshot's query began
        self._lock = threading.Lock()
        self.loads = 0  # reloads attempted (for tests and metrics)

    def __len__(self) -> int:
        return 0 if self._routes is None else len(self._routes)

    def expire(self) -> None:
        """Reload at the next look-up (after connections or their secrets change)."""
        self._fresh_until = float("-inf")
        self._next_try = float("-inf")

    def get(self, pool: ConnectionPool[Conn], source: str, account_id: str) -> Route | None:
        """The account's route, None when no org connected it (reloads the snapshot when older than its TTL)."""
        now = self._clock()
        if self._routes is None or now >= self._fresh_until:
            self._reload(
                pool,
                wait=self._routes is None,
                needed=lambda t: (self._routes is None or t >= self._fresh_until) and t >= self._next_try,
            )
        routes = self._routes
        if routes is None:
            raise TimeoutError("no webhook routes loaded yet")
        return routes.get((source, account_id))

    def newer_than(self, pool: ConnectionPool[Conn], started: float, *, wait: bool) -> bool:
        """Make the snapshot younger than ``started`` (when a request began), reloading at most once per
        ``retry_s``: a connection made, or a secret stored, a moment ago is then seen. ``wait``: wait for the
        next allowed reload (for a request a signature vouched for: only the CRM can send it); else reload only
        when one is allowed now and no other thread is at it. True when the snapshot is younger."""
        if self._loaded_at >= started:
            return True
        if wait:
            time.sleep(max(0.0, min(self._next_try - self._clock(), self._retry_s)))
        elif self._clock() < self._next_try:
            return False
        return self._reload(pool, wait=wait, needed=lambda t: self._loaded_at < started) and (
            self._loaded_at >= started
        )

    def _reload(self, pool: ConnectionPool[Conn], *, wait: bool, needed: Callable[[float], bool]) -> bool:
        """Load a new snapshot when ``needed`` still holds once the lock is held (another thread may have
        loaded one meanwhile). False when it failed or another thread is at it (``wait`` False)."""
        if not self._lock.acquire(blocking=wait):
            return False
        try:
            now = self._clock()
            if not needed(now):
                return True
            self.loads += 1
            self._next_try = now + self._retry_s
            try:
                with pool.connection() as conn:
                    routes = dict(self._source(conn))
            except (psycopg.Error, TimeoutError):
                if self._routes is None:
                    raise
                log.warning("webhook routes not reloaded (database unavailable): using the previous ones")
                return False
            self._routes = routes
            self._loaded_at = now
            self._fresh_until = now + self._ttl_s
            return True
        finally:
            self._lock.release()


# ------------------------------------------------------------------------------------------------ receiver


def _configured_secrets(value: str | Sequence[str] | None) -> tuple[Secret, ...]:
    if value is None:
        value = os.environ.get(HUBSPOT_SECRET_ENV, "")
    values = [value] if isinstance(value, str) else list(value)
    return tuple(Secret(v.strip()) for v in values if v and v.strip())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


class WebhookReceiver:
    """Verifies and stores webhook deliveries for every connected org."""

    def __init__(
        self,
        conninfo: str | ConnectionPool[Conn],
        *,
        routes: RouteSource | None = None,
        secret_box: SecretBox | None = None,
        hubspot_client_secret: str | Sequence[str] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        allow_legacy_signatures: bool = False,
        route_ttl_s: float = ROUTE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``routes``: where routes and per-connection secrets come from (default: :func:`stored_routes` with
        ``secret_box``, itself by default the key ring of ``CRMINDEX_SECRET_KEYS``).
        ``hubspot_client_secret``: the HubSpot public app's client secret(s) (several during a rotation);
        default the environment variable ``CRMINDEX_HUBSPOT_CLIENT_SECRET``, none when unset.
        ``allow_legacy_signatures``: also accept HubSpot v1/v2 signatures (no timestamp: replayable) on requests
        without a v3 signature."""
        if not 0 < max_body_bytes <= MAX_BODY_BYTES:
            raise ValueError(f"max_body_bytes must be 1 .. {MAX_BODY_BYTES}")
        self.allow_legacy_signatures = allow_legacy_signatures
        if isinstance(conninfo, ConnectionPool):
            self._pool = conninfo
            self._own_pool = False
        else:
            self._pool = ConnectionPool(
                conninfo,
                min_size=1,
                max_size=4,
                kwargs={"autocommit": True},
                open=True,
                name="crmindex-webhooks",
                timeout=STORE_WAIT_S,
            )
            self._own_pool = True
        self.max_body_bytes = max_body_bytes
        self._clock = clock
        self.routes = RouteTable(
            routes if routes is not None else stored_routes(secret_box), ttl_s=route_ttl_s, clock=clock
        )
        self._app_secrets = _configured_secrets(hubspot_client_secret)
        # stand-ins for the secrets of an unknown account (random: nothing can be signed with them)
        self._dummies = tuple(Secret(_random.token_hex(32)) for _ in range(MIN_CANDIDATES))

    def __repr__(self) -> str:
        return "WebhookReceiver()"

    def close(self) -> None:
        if self._own_pool:
            self._pool.close()

    def forget_routes(self) -> None:
        """Reload the routes at the next request (after connections or their secrets change)."""
        self.routes.expire()

    # -- routing -------------------------------------------------------------------------------------
    def _route(self, source: str, account_id: str) -> Route | WebhookResponse | None:
        """The account's route, None when unknown, or a 503 when no routes could be loaded yet."""
        try:
            return self.routes.get(self._pool, source, account_id)
        except (psycopg.Error, TimeoutError) as exc:
            log.warning("webhook routing unavailable: %s", type(exc).__name__)
            return WebhookResponse(503, "storage unavailable, retry later")

    def _verified_route(
        self, source: str, account_id: str, verify: Callable[[Sequence[Secret]], Verdict]
    ) -> tuple[Route | None, Verdict] | WebhookResponse:
        """Route and check a request with the account's own secrets (dummies for an unknown account). A
        signature that does not match may be made with a secret newer than the snapshot (a connection made a
        moment ago, a rotation): one reload (at most one per second, whatever the account) and one more check."""
        started = self._clock()
        route = self._route(source, account_id)
        if isinstance(route, WebhookResponse):
            return route
        verdict = verify(self._candidates(route))
        stale = not verdict.ok and verdict.reason.startswith("bad signature")
        if stale and self.routes.newer_than(self._pool, started, wait=False):
            route = self._route(source, account_id)
            if isinstance(route, WebhookResponse):
                return route
            verdict = verify(self._candidates(route))
        return route, verdict

    def _candidates(self, route: Route | None) -> tuple[Secret, ...]:
        """The secrets to check a request against: the route's, filled up with dummies (an unknown account
        and a known one cost the same HMACs and give the same verdicts on unsigned requests)."""
        own = route.secrets if route is not None else ()
        return own + self._dummies[: max(0, MIN_CANDIDATES - len(own))]

    def _store(
        self,
        route: Route,
        source: str,
        account_id: str,
        body: bytes,
        headers: Mapping[str, Any],
        events: int,
        keys: Sequence[str],
        key_ttl: timedelta,
        message_key: str | None = None,
        message_ttl: timedelta | None = None,
    ) -> WebhookResponse:
        try:
            with self._pool.connection() as conn:
                row = conn.execute(
                    "SELECT crm.webhook_accept(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        route.org_id,
                        source,
                        account_id,
                        body.decode("utf-8"),
                        Jsonb(dict(headers)),
                        events,
                        list(keys),
                        key_ttl,
                        message_key,
                        message_ttl,
                    ),
                ).fetchone()
        except psycopg.DataError:
            # content the database cannot hold (e.g. a NUL escaped into a header value): a client error
            return WebhookResponse(400, "request cannot be stored (invalid characters)")
        except (psycopg.Error, TimeoutError) as exc:
            # nothing was stored: answer 503 so the CRM delivers again later
            log.warning("webhook inbox unavailable: %s", type(exc).__name__)
            return WebhookResponse(503, "storage unavailable, retry later")
        assert row is not None
        if row[0] is None:
            return WebhookResponse(200, "duplicate", None, events)
        return WebhookResponse(200, "accepted", int(row[0]), events)

    # -- HubSpot -------------------------------------------------------------------------------------
    def handle_hubspot(
        self, method: str, url: str, headers: Mapping[str, str], raw_body: bytes
    ) -> WebhookResponse:
        if len(raw_body) > self.max_body_bytes:
            return WebhookResponse(413, "body too large")
        payload, problem = _parse_json(raw_body)
        if problem is not None:
            return problem
        if not isinstance(payload, list) or not payload or len(payload) > MAX_EVENTS:
            return WebhookResponse(400, "expected a JSON array of 1 to 1000 events")
        if any(not isinstance(e, dict) for e in payload):
            return WebhookResponse(400, "events must be objects")
        portals: dict[str, list[dict[str, Any]]] = {}
        for e in payload:
            portal = _hashable(e.get("portalId"))
            if not isinstance(portal, int | str) or isinstance(portal, bool) or not str(portal).isdigit():
                return WebhookResponse(400, "missing or malformed portalId")
            portals.setdefault(str(portal), []).append(e)

        def verify(candidates: Sequence[Secret]) -> Verdict:
            return verify_hubspot(
                method, url, headers, raw_body, candidates, allow_legacy=self.allow_legacy_signatures
            )

        # the public app's client secret: before any routing or database work
        started = self._clock()
        verdict = verify(self._app_secrets) if self._app_secrets else None
        if verdict is not None and verdict.ok:
            # A public app's deliveries may hold events of several portals that installed it (one target URL and
            # one client secret for every portal: reference C): each portal's events are routed and stored apart.
            return self._store_portals(portals, raw_body, headers, verdict, started)
        if len(portals) > 1:
            # only the app's secret speaks for several portals (a private app belongs to one): checked like an
            # unknown portal, so the answer is the same 401 any unverified request gets
            routed = self._verified_route("hubspot", "", verify)
            if isinstance(routed, WebhookResponse):
                return routed
            _, verdict = routed
            return WebhookResponse(401, verdict.reason if not verdict.ok else "bad signature")
        ((account, events),) = portals.items()
        # per-connection secrets (private apps); an unknown portal is checked against dummies
        routed = self._verified_route("hubspot", account, verify)
        if isinstance(routed, WebhookResponse):
            return routed
        route, verdict = routed
        if not verdict.ok or route is None:
            return WebhookResponse(401, verdict.reason if not verdict.ok else "bad signature")
        return self._store_hubspot(route, account, raw_body, events, headers, verdict)

    def _store_portals(
        self,
        portals: Mapping[str, list[dict[str, Any]]],
        raw_body: bytes,
        headers: Mapping[str, str],
        verdict: Verdict,
        started: float,
    ) -> WebhookResponse:
        """Store each portal's events of an app-signed delivery as a delivery of its own. Events of portals no
        org connected are dropped (their portal alone would get 404: HubSpot does not retry a 404); any storage
        failure answers 503 so HubSpot delivers the whole request again (replay keys keep the stored parts once)."""
        stored: list[WebhookResponse] = []
        for account, events in portals.items():
            route = self._route("hubspot", account)
            if route is None:  # a portal connected a moment ago? (only HubSpot can sign this request)
                if not self.routes.newer_than(self._pool, started, wait=True):
                    return WebhookResponse(503, "storage unavailable, retry later")
                route = self._route("hubspot", account)
            if isinstance(route, WebhookResponse):
                return route
            if route is None:
                if len(portals) > 1:
                    log.info("webhook events of a HubSpot portal no org connected: dropped")
                continue
            # one portal: the body as it came; several: each portal's events as a body of its own
            body = raw_body if len(portals) == 1 else json.dumps(events, separators=(",", ":")).encode()
            resp = self._store_hubspot(route, account, body, events, headers, verdict)
            if resp.status != 200:
                return resp
            stored.append(resp)
        if not stored:  # signed by the app, so the sender knows the portal: no secret to keep
            return WebhookResponse(404, "unknown HubSpot portal")
        if len(stored) == 1:
            return stored[0]
        accepted = [r for r in stored if r.reason == "accepted"]
        return WebhookResponse(
            200,
            "accepted" if accepted else "duplicate",
            accepted[0].inbox_id if accepted else None,
            sum(r.events for r in stored),
        )

    def _store_hubspot(
        self,
        route: Route,
        account: str,
        body: bytes,
        events: list[dict[str, Any]],
        headers: Mapping[str, str],
        verdict: Verdict,
    ) -> WebhookResponse:
        try:
            keys = hubspot_event_keys(events)
        except (ValueError, RecursionError):
            return WebhookResponse(400, "malformed JSON")
        kept = {k: v for k, v in headers.items() if k.lower() in ("x-hubspot-request-timestamp",)}
        kept["signature_version"] = verdict.version or ""
        return self._store(route, "hubspot", account, body, kept, len(events), keys, HUBSPOT_KEY_TTL)

    # -- Attio ---------------------------------------------------------------------------------------
    def handle_attio(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookResponse:
        if len(raw_body) > self.max_body_bytes:
            return WebhookResponse(413, "body too large")
        payload, problem = _parse_json(raw_body)
        if problem is not None:
            return problem
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list) or not events or len(events) > MAX_EVENTS:
            return WebhookResponse(400, "expected {webhook_id, events: [...]}")
        workspaces = {
            _hashable((e.get("id") or {}).get("workspace_id"))
            if isinstance(e, dict) and isinstance(e.get("id"), dict)
            else None
            for e in events
        }
        if len(workspaces) != 1:
            return WebhookResponse(400, "events must carry ids of one workspace")
        workspace = workspaces.pop()
        if not isinstance(workspace, str) or not workspace:
            return WebhookResponse(400, "missing workspace_id")
        routed = self._verified_route("attio", workspace, lambda c: verify_attio(headers, raw_body, c))
        if isinstance(routed, WebhookResponse):
            return routed
        route, verdict = routed
        if not verdict.ok or route is None:
            return WebhookResponse(401, verdict.reason if not verdict.ok else "bad signature")
        idempotency = _header(headers, "idempotency-key")
        if idempotency is not None and not (0 < len(idempotency) <= 200 and idempotency.isprintable()):
            idempotency = None  # not a key Attio sends: the event keys still hold replays back
        try:
            keys, message_key = attio_keys(payload, idempotency)
        except (ValueError, RecursionError):
            return WebhookResponse(400, "malformed JSON")
        kept = {"webhook_id": str(payload.get("webhook_id", ""))[:200], "idempotency_key": idempotency or ""}
        return self._store(
            route,
            "attio",
            workspace,
            raw_body,
            kept,
            len(events),
            keys,
            ATTIO_KEY_TTL,
            message_key,
            ATTIO_KEY_TTL if message_key is not None else None,
        )
