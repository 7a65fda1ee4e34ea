"""Receiving webhooks: verify on the raw bytes, route to the org's connection, store raw, answer.

A request is acknowledged (2xx) only after its body is committed to ``crm.webhook_inbox``; processing
happens after, from the inbox (``crmindex.freshness.webhooks``). Client errors get a 4xx with a short reason
and change nothing; a database outage gets 503 so the CRM retries the delivery.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from crmindex.freshness.signatures import Verdict, verify_attio, verify_hubspot
from crmindex.platform.db import Conn
from crmindex.platform.secrets import SecretResolver, env_resolver, resolve_all

log = logging.getLogger("crmindex.webhooks")

MAX_BODY_BYTES = 1_000_000
MAX_EVENTS = 1000
_ROUTE_TTL_S = 30.0
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


@dataclass(frozen=True)
class _Route:
    org_id: str
    secret_ref: str | None


class WebhookReceiver:
    """Verifies and stores webhook deliveries for every connected org (uses the crm_worker's view)."""

    def __init__(
        self,
        conninfo: str | ConnectionPool[Conn],
        *,
        resolver: SecretResolver = env_resolver,
        max_body_bytes: int = MAX_BODY_BYTES,
        allow_legacy_signatures: bool = False,
    ) -> None:
        """``allow_legacy_signatures``: also accept HubSpot v1/v2 signatures (no timestamp: replayable) on
        requests without a v3 signature."""
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
        self._resolver = resolver
        self.max_body_bytes = max_body_bytes
        self._routes: dict[tuple[str, str], tuple[float, _Route | None]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "WebhookReceiver()"

    def close(self) -> None:
        if self._own_pool:
            self._pool.close()

    # -- routing -------------------------------------------------------------------------------------
    def _route(self, source: str, account_id: str) -> _Route | None:
        key = (source, account_id)
        now = time.monotonic()
        with self._lock:
            hit = self._routes.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        if "\x00" in account_id or not account_id.isprintable():
            return None  # no connection has such an account id (and Postgres text cannot hold NUL)
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT org_id::text, webhook_secret_ref FROM crm.connection "
                "WHERE crm_source = %s AND account_id = %s ORDER BY created_at LIMIT 1",
                (source, account_id),
            ).fetchone()
        route = None if row is None else _Route(str(row[0]), None if row[1] is None else str(row[1]))
        with self._lock:
            self._routes[key] = (now + _ROUTE_TTL_S, route)
        return route

    def forget_routes(self) -> None:
        """Drop the routing cache (after connections or their secrets change)."""
        with self._lock:
            self._routes.clear()

    def _route_or_answer(self, source: str, account_id: str, unknown: str) -> _Route | WebhookResponse:
        """The org the account routes to, or the answer: 404 when none, 503 when the database is unreachable
        (the CRM delivers again later)."""
        try:
            route = self._route(source, account_id)
        except (psycopg.Error, TimeoutError) as exc:
            log.warning("webhook routing unavailable: %s", type(exc).__name__)
            return WebhookResponse(503, "storage unavailable, retry later")
        return WebhookResponse(404, unknown) if route is None else route

    def _store(
        self,
        route: _Route,
        source: str,
        account_id: str,
        body: bytes,
        headers: Mapping[str, Any],
        events: int,
    ) -> WebhookResponse:
        try:
            with self._pool.connection() as conn:
                row = conn.execute(
                    "SELECT crm.webhook_accept(%s, %s, %s, %s, %s, %s)",
                    (route.org_id, source, account_id, body.decode("utf-8"), Jsonb(dict(headers)), events),
                ).fetchone()
        except psycopg.DataError:
            # content the database cannot hold (e.g. a NUL escaped into a header value): a client error
            return WebhookResponse(400, "request cannot be stored (invalid characters)")
        except (psycopg.Error, TimeoutError) as exc:
            # nothing was stored: answer 503 so the CRM delivers again later
            log.warning("webhook inbox unavailable: %s", type(exc).__name__)
            return WebhookResponse(503, "storage unavailable, retry later")
        assert row is not None
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
        portals = {_hashable(e.get("portalId")) for e in payload if isinstance(e, dict)}
        if len(portals) != 1 or any(not isinstance(e, dict) for e in payload):
            return WebhookResponse(400, "events must be objects of one portal")
        portal = portals.pop()
        if not isinstance(portal, int | str) or isinstance(portal, bool) or not str(portal).isdigit():
            return WebhookResponse(400, "missing or malformed portalId")
        account = str(portal)
        route = self._route_or_answer("hubspot", account, "unknown HubSpot portal")
        if isinstance(route, WebhookResponse):
            return route
        verdict: Verdict = verify_hubspot(
            method,
            url,
            headers,
            raw_body,
            resolve_all(route.secret_ref, self._resolver),
            allow_legacy=self.allow_legacy_signatures,
        )
        if not verdict.ok:
            return WebhookResponse(401, verdict.reason)
        kept = {k: v for k, v in headers.items() if k.lower() in ("x-hubspot-request-timestamp",)}
        kept["signature_version"] = verdict.version or ""
        return self._store(route, "hubspot", account, raw_body, kept, len(payload))

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
        route = self._route_or_answer("attio", workspace, "unknown Attio workspace")
        if isinstance(route, WebhookResponse):
            return route
        verdict = verify_attio(headers, raw_body, resolve_all(route.secret_ref, self._resolver))
        if not verdict.ok:
            return WebhookResponse(401, verdict.reason)
        return self._store(
            route,
            "attio",
            workspace,
            raw_body,
            {"webhook_id": str(payload.get("webhook_id", ""))},
            len(events),
        )
