"""Clients for connected orgs: each built from the org's stored connection (base URL, sealed token) with the
account's shared Postgres rate limiter; cached per (org, CRM) for a worker's lifetime. Fetchers, writers and
listers of an account are built on its client, as the CRM's entry in :mod:`crmindex.crm.registry` says.

Tokens come from the :class:`~crmindex.crm.tokens.TokenStore` (unsealed with the process's key ring, refreshed
once for all workers). A token is sent only where the :class:`~crmindex.crm.hosts.HostPolicy` allows: the CRM's
real API host, or a base URL on the operator's allow-list (``CRMINDEX_ALLOWED_BASE_URLS`` or
``allowed_base_urls=``). Anything else raises :class:`~crmindex.crm.hosts.HostNotAllowedError` before any request
is made (workers hold the connection's jobs and flag it).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psycopg

from crmindex.crm.connections import Connection, flag_auth_failure, get_connection
from crmindex.crm.hosts import HostNotAllowedError, HostPolicy
from crmindex.crm.oauth import OAuthApp
from crmindex.crm.protocols import CrmWriter, Lister, RecordFetcher
from crmindex.crm.registry import Account, CrmClient, crm
from crmindex.crm.tokens import TokenStore
from crmindex.errors import NotFoundError
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.secrets import SecretBox


class Clients:
    """Builds and caches the CRM clients of every connected org (thread-safe).

    ``box``: the key ring (default: ``CRMINDEX_SECRET_KEYS``, read on first use); ``allowed_base_urls``: base URLs
    other than the CRMs' own where tokens may go (default: ``CRMINDEX_ALLOWED_BASE_URLS``; ``()``: none);
    ``apps``: OAuth apps per CRM for refreshing (default: ``CRMINDEX_<CRM>_CLIENT_ID`` / ``_CLIENT_SECRET``).
    """

    def __init__(
        self,
        dsn: str,
        *,
        box: SecretBox | None = None,
        tokens: TokenStore | None = None,
        allowed_base_urls: HostPolicy | Iterable[str] | None = None,
        apps: Mapping[str, OAuthApp] | None = None,
        retry: Any = None,
    ) -> None:
        self.dsn = dsn
        self.retry = retry
        self.hosts = HostPolicy.resolve(allowed_base_urls)
        self.tokens = tokens or TokenStore(dsn, box, hosts=self.hosts, apps=apps)
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], CrmClient] = {}
        self._limiters: list[PgRateLimiter] = []
        self._flagged: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"Clients(orgs={len(self._clients)})"

    def connection(self, org_id: str, source: str) -> Connection:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return get_connection(conn, org_id, source)

    def _guarded(self, org_id: str, source: str, base_url: str) -> Callable[[], str]:
        """The token provider of a client for ``base_url``: checks the host before every token leaves."""
        provide = self.tokens.provider(org_id, source)

        def token() -> str:
            try:
                self.hosts.check(source, base_url)
            except HostNotAllowedError as exc:
                self._flag(org_id, source, str(exc))
                raise
            return provide()

        return token

    def _flag(self, org_id: str, source: str, error: str) -> None:
        key = (org_id, source)
        if key in self._flagged:
            return
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                flag_auth_failure(conn, org_id, source, error)
            self._flagged.add(key)
        except psycopg.Error:
            pass  # the caller's AuthError path flags it too

    def client(self, org_id: uuid.UUID | str, source: str) -> Any:
        """The account's client (the CRM's own class: :class:`~crmindex.crm.hubspot.client.HubSpotClient`, ...)."""
        key = (str(org_id), source)
        with self._lock:
            if key in self._clients:
                return self._clients[key]
        entry = crm(source)
        conn_info = self.connection(str(org_id), source)
        base_url = conn_info.base_url or entry.api_base
        limiter = PgRateLimiter(self.dsn, str(org_id), source)
        client = entry.client(
            Account(
                base_url,
                self._guarded(str(org_id), source, base_url),
                limiter,
                conn_info.account_id,
                self.retry,
            )
        )
        with self._lock:
            self._clients.setdefault(key, client)
            self._limiters.append(limiter)
            return self._clients[key]

    def fetcher(self, org_id: uuid.UUID | str, source: str) -> RecordFetcher:
        """Whole records of the account (materialization, hydration, reconcile)."""
        client = self.client(org_id, source)
        return crm(source).fetcher(client, self.connection(str(org_id), source).settings)

    def writer(self, org_id: str, source: str) -> CrmWriter | None:
        """Writes to the account (the drainer); None when the org has no such connection."""
        try:
            client = self.client(org_id, source)
        except NotFoundError:
            return None
        return crm(source).writer(client)

    def lister(self, org_id: uuid.UUID | str, source: str) -> Lister:
        """Every record of the account, page by page (the sync; reconcile)."""
        client = self.client(org_id, source)
        return crm(source).lister(client, self.connection(str(org_id), source).settings)

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            for lim in self._limiters:
                lim.close()
            self._clients.clear()
            self._limiters.clear()
