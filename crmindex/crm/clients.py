"""Clients for connected orgs: each built from the org's stored connection (base URL, token reference) with
the account's shared Postgres rate limiter; cached per (org, CRM) for a worker's lifetime."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg

from crmindex.crm.attio.adapters import AttioFetcher, AttioWriter
from crmindex.crm.connections import Connection, get_connection
from crmindex.crm.hubspot.adapters import HubSpotFetcher, HubSpotWriter
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.protocols import CrmWriter, RecordFetcher
from crmindex.errors import NotFoundError
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.secrets import SecretResolver, env_resolver, token_provider

DEFAULT_BASE_URLS = {"hubspot": "https://api.hubapi.com", "attio": "https://api.attio.com"}


class Clients:
    """Builds and caches the CRM clients of every connected org (thread-safe)."""

    def __init__(self, dsn: str, *, resolver: SecretResolver = env_resolver, retry: Any = None) -> None:
        self.dsn = dsn
        self.resolver = resolver
        self.retry = retry
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._limiters: list[PgRateLimiter] = []

    def __repr__(self) -> str:
        return f"Clients(orgs={len(self._clients)})"

    def connection(self, org_id: str, source: str) -> Connection:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return get_connection(conn, org_id, source)

    def client(self, org_id: uuid.UUID | str, source: str) -> Any:
        key = (str(org_id), source)
        with self._lock:
            if key in self._clients:
                return self._clients[key]
        conn_info = self.connection(str(org_id), source)
        if not conn_info.token_ref:
            raise NotFoundError(f"the {source} connection of org {org_id} has no token reference")
        limiter = PgRateLimiter(self.dsn, str(org_id), source)
        base_url = conn_info.base_url or DEFAULT_BASE_URLS[source]
        provider = token_provider(conn_info.token_ref, self.resolver)
        client: Any
        if source == "hubspot":
            client = HubSpotClient(base_url, provider, limiter, conn_info.account_id, retry=self.retry)
        else:
            from crmindex.crm.attio.client import AttioClient

            client = AttioClient(base_url, provider, limiter, retry=self.retry)
        with self._lock:
            self._clients.setdefault(key, client)
            self._limiters.append(limiter)
            return self._clients[key]

    def fetcher(self, org_id: uuid.UUID | str, source: str) -> RecordFetcher:
        client = self.client(org_id, source)
        if source == "hubspot":
            return HubSpotFetcher(client)
        custom = self.connection(str(org_id), source).settings.get("attio_attributes") or {}
        return AttioFetcher(client, custom)

    def writer(self, org_id: str, source: str) -> CrmWriter | None:
        try:
            client = self.client(org_id, source)
        except NotFoundError:
            return None
        return HubSpotWriter(client) if source == "hubspot" else AttioWriter(client)

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            for lim in self._limiters:
                lim.close()
            self._clients.clear()
            self._limiters.clear()
