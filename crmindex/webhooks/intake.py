"""Receiving webhooks: verify on the raw bytes, route to the org's connection, store raw, answer.

A request is acknowledged (2xx) only after its body is committed to ``crm.webhook_inbox``; processing
happens after, from the inbox (``crmindex.webhooks.process``). Client errors get a 4xx with a short reason
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

from crmindex.db import Conn
from crmindex.secrets import SecretResolver, env_resolver, resolve_all
from crmindex.webhooks.signatures import Verdict, verify_attio, verify_hubspot

log = logging.getLogger("crmindex.webhooks")

MAX_BODY_BYTES = 1_000_000
MAX_EVENTS = 1000
_ROUTE_TTL_S = 30.0


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    reason: str
    inbox_id: int | None = None
    events: int = 0


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
    ) -> None:
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
        try:
            payload = json.loads(raw_body)
        except (ValueError, UnicodeDecodeError):
            return WebhookResponse(400, "malformed JSON")
        if not isinstance(payload, list) or not payload or len(payload) > MAX_EVENTS:
            return WebhookResponse(400, "expected a JSON array of 1 to 1000 events")
        portals = {e.get("portalId") for e in payload if isinstance(e, dict)}
        if len(portals) != 1 or any(not isinstance(e, dict) for e in payload):
            return WebhookResponse(400, "events must be objects of one portal")
        portal = portals.pop()
        if not isinstance(portal, int | str) or isinstance(portal, bool) or not str(portal).isdigit():
            return WebhookResponse(400, "missing or malformed portalId")
        account = str(portal)
        route = self._route("hubspot", account)
        if route is None:
            return WebhookResponse(404, "unknown HubSpot portal")
        verdict: Verdict = verify_hubspot(
            method, url, headers, raw_body, resolve_all(route.secret_ref, self._resolver)
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
        try:
            payload = json.loads(raw_body)
        except (ValueError, UnicodeDecodeError):
            return WebhookResponse(400, "malformed JSON")
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list) or not events or len(events) > MAX_EVENTS:
            return WebhookResponse(400, "expected {webhook_id, events: [...]}")
        workspaces = {
            (e.get("id") or {}).get("workspace_id")
            if isinstance(e, dict) and isinstance(e.get("id"), dict)
            else None
            for e in events
        }
        if len(workspaces) != 1:
            return WebhookResponse(400, "events must carry ids of one workspace")
        workspace = workspaces.pop()
        if not isinstance(workspace, str) or not workspace:
            return WebhookResponse(400, "missing workspace_id")
        route = self._route("attio", workspace)
        if route is None:
            return WebhookResponse(404, "unknown Attio workspace")
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
