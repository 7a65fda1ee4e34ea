"""The token store: the access token of an org's CRM connection, for the clients.

* Private-app / API tokens and non-expiring OAuth tokens (Attio) are unsealed from ``crm.connection_secret``.
* HubSpot OAuth access tokens live 30 minutes. One that expires within ``refresh_margin_s`` is refreshed **once
  for all workers**: in one transaction the worker locks the connection's token rows (``FOR UPDATE``), re-reads the
  access token (another worker may have refreshed it while this one waited: then it is used as is), calls the
  token endpoint, stores the new tokens sealed and commits. Workers that waited on the lock reuse the result.
* A refresh the CRM refuses (400 ``invalid_grant`` / ``BAD_REFRESH_TOKEN``, 401, 403) marks the connection
  **broken** with the reason; from then on the store raises :class:`ConnectionUnusableError` (an
  :class:`~crmindex.crm.errors.AuthError`: workers hold the connection's jobs, no call is made) until an operator
  connects again.
* Decrypted tokens are cached in memory for ``cache_s`` (so revocations, reconnects and other workers' refreshes
  are seen) and never logged.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from crmindex.crm.connections import oauth_provider, set_status, store_secret
from crmindex.crm.errors import AuthError, RetryableError
from crmindex.crm.hosts import HostPolicy
from crmindex.crm.oauth import OAuthApp, OAuthError, OAuthProvider, OAuthRefused, OAuthUnavailable
from crmindex.crm.registry import crm
from crmindex.errors import CrmIndexError
from crmindex.platform.db import Conn, translate_errors
from crmindex.platform.secrets import Secret, SecretBox, SecretError

log = logging.getLogger("crmindex.crm.tokens")

REFRESH_MARGIN_S = 300.0  # refresh a HubSpot access token this long before it expires
CACHE_S = 30.0  # re-read the stored token at least this often
LOCK_TIMEOUT = "60s"  # how long a worker waits for another's refresh


class ConnectionUnusableError(AuthError):
    """The connection has no usable token: broken (a refresh or the token was refused), needs reconnecting,
    gone, or this process cannot unseal or refresh its token. Nothing was sent to the CRM."""

    def __init__(self, message: str, *, source: str, code: str = "CONNECTION_UNUSABLE") -> None:
        super().__init__(message, source=source, category=code)


@dataclass
class _Cached:
    token: Secret
    expires_at: datetime | None
    read_at: float


ProviderFactory = Callable[[str, str], OAuthProvider]  # (source, api base) -> provider


class TokenStore:
    """Access tokens for (org, CRM), thread-safe; one per process is enough (any number of processes)."""

    def __init__(
        self,
        dsn: str,
        box: SecretBox | None = None,
        *,
        hosts: HostPolicy | Iterable[str] | None = None,
        apps: Mapping[str, OAuthApp] | None = None,
        providers: ProviderFactory | None = None,
        refresh_margin_s: float = REFRESH_MARGIN_S,
        cache_s: float = CACHE_S,
    ) -> None:
        self.dsn = dsn
        self._box = box
        self.hosts = HostPolicy.resolve(hosts)
        self._apps = dict(apps or {})
        self._providers = providers
        self.refresh_margin = timedelta(seconds=refresh_margin_s)
        self.cache_s = cache_s
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.refreshes = 0  # refresh calls this store made (tests, metrics)

    def __repr__(self) -> str:
        return f"TokenStore(cached={len(self._cache)})"

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.from_env()
        return self._box

    def invalidate(self, org_id: uuid.UUID | str | None = None, source: str | None = None) -> None:
        with self._guard:
            for key in list(self._cache):
                if (org_id is None or key[0] == str(org_id)) and (source is None or key[1] == source):
                    del self._cache[key]

    def provider(self, org_id: uuid.UUID | str, source: str) -> Callable[[], str]:
        """A token provider for :class:`~crmindex.crm.http.HttpTransport` (asked at each request)."""
        org = str(org_id)

        def provide() -> str:
            return self.token(org, source).reveal()

        return provide

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _fresh(self, expires_at: datetime | None) -> bool:
        return expires_at is None or expires_at - self.refresh_margin > datetime.now(UTC)

    def token(self, org_id: uuid.UUID | str, source: str) -> Secret:
        """The connection's current access token (refreshed first when it is about to expire)."""
        key = (str(org_id), source)
        with self._lock(key):  # one load / refresh per process at a time for an account
            cached = self._cache.get(key)
            if (
                cached is not None
                and time.monotonic() - cached.read_at < self.cache_s
                and self._fresh(cached.expires_at)
            ):
                return cached.token
            try:
                token, expires_at = self._load(*key)
            except ConnectionUnusableError:
                self._cache.pop(key, None)
                raise
            except SecretError as exc:
                raise ConnectionUnusableError(str(exc), source=source, code="SECRET_UNAVAILABLE") from None
            except psycopg.Error as exc:
                raise RetryableError(
                    f"token store unavailable ({type(exc).__name__})", source=source
                ) from None
            self._cache[key] = _Cached(token, expires_at, time.monotonic())
            return token

    # -- loading ---------------------------------------------------------------------------------------------
    def _connection(
        self, conn: Conn, org: str, source: str
    ) -> tuple[str, str | None, str | None, str | None]:
        row = conn.execute(
            "SELECT status, status_reason, auth_kind, base_url FROM crm.connection "
            "WHERE org_id = %s AND crm_source = %s",
            (org, source),
        ).fetchone()
        if row is None:
            raise ConnectionUnusableError(
                f"org {org} has no {source} connection", source=source, code="NOT_CONNECTED"
            )
        status, reason, kind, base = (None if v is None else str(v) for v in row)
        if status != "active":
            raise ConnectionUnusableError(
                f"the {source} connection of org {org} is {status}: {reason or 'connect it again'}",
                source=source,
                code=f"CONNECTION_{str(status).upper()}",
            )
        return str(status), reason, kind, base

    def _rows(
        self, conn: Conn, org: str, source: str, kinds: list[str], *, lock: bool = False
    ) -> dict[str, Any]:
        with translate_errors():
            rows = conn.execute(
                "SELECT kind, ref, key_id, ciphertext, expires_at, updated_at "
                "FROM crm.connection_secret_get(%s, %s, %s, %s)",
                (org, source, kinds, lock),
            ).fetchall()
        return {str(r[0]): r for r in rows if r[1] == ""}

    def _unseal(self, org: str, source: str, row: Any) -> Secret:
        return self.box.unseal(str(row[2]), bytes(row[3]), org_id=org, source=source, kind=str(row[0]))

    def _load(self, org: str, source: str) -> tuple[Secret, datetime | None]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            _, _, kind, base = self._connection(conn, org, source)
            if kind == "private_app":
                rows = self._rows(conn, org, source, ["private_app_token"])
                row = rows.get("private_app_token")
                if row is None:
                    raise self._unusable(conn, org, source, "no private-app token is stored")
                return self._unseal(org, source, row), row[4]
            rows = self._rows(conn, org, source, ["access_token", "refresh_token"])
            access = rows.get("access_token")
            if access is not None and self._fresh(access[4]):
                return self._unseal(org, source, access), access[4]
            if rows.get("refresh_token") is None:
                raise self._unusable(
                    conn, org, source,
                    "the access token expired and there is no refresh token" if access is not None
                    else "no access token is stored",
                )  # fmt: skip
        return self._refresh(org, source, base, None if access is None else access[5])

    def _unusable(self, conn: Conn, org: str, source: str, why: str) -> ConnectionUnusableError:
        set_status(conn, org, source, "needs_reconnect", f"{why}: connect it again")
        return ConnectionUnusableError(
            f"the {source} connection of org {org} needs reconnecting: {why}",
            source=source,
            code="NEEDS_RECONNECT",
        )

    # -- refresh -----------------------------------------------------------------------------------------------
    def _provider(self, source: str, base: str | None) -> OAuthProvider:
        api_base = base or crm(source).api_base
        if self._providers is not None:
            return self._providers(source, api_base)
        app = self._apps.get(source)
        if app is None:
            try:
                app = OAuthApp.from_env(source)
            except CrmIndexError as exc:
                raise ConnectionUnusableError(
                    f"this process cannot refresh {source} tokens: {exc}", source=source, code="NO_OAUTH_APP"
                ) from None
            self._apps[source] = app
        return oauth_provider(source, app, api_base=api_base, hosts=self.hosts)

    def _refresh(
        self, org: str, source: str, base: str | None, seen: datetime | None
    ) -> tuple[Secret, datetime | None]:
        """Refresh under the row lock: one refresh for every worker of every process. ``seen``: when the access
        token this worker found stale was stored; a newer one after the lock was stored by another worker."""
        refused: OAuthRefused | None = None
        missing = False
        # a status set below commits with the transaction; the raise comes after it
        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            rows = self._rows(conn, org, source, ["access_token", "refresh_token"], lock=True)
            access, refresh = rows.get("access_token"), rows.get("refresh_token")
            if access is not None and (
                self._fresh(access[4])
                or (access[5] != seen and (access[4] is None or access[4] > datetime.now(UTC)))
            ):  # another worker refreshed while this one waited for the lock
                return self._unseal(org, source, access), access[4]
            if refresh is None:
                missing = True
                set_status(conn, org, source, "needs_reconnect",
                           "there is no refresh token: connect it again")  # fmt: skip
            else:
                provider = self._provider(source, base)
                try:
                    grant = provider.refresh(self._unseal(org, source, refresh))
                except OAuthRefused as exc:
                    refused = exc
                    set_status(conn, org, source, "broken", f"the CRM refused the token refresh ({exc}): "
                               "connect it again (`crmindex connect`)")  # fmt: skip
                except OAuthUnavailable as exc:
                    if access is not None and access[4] is not None and access[4] > datetime.now(UTC):
                        log.warning("refresh of %s tokens of org %s failed (%s); the current token still "
                                    "works", source, org, exc)  # fmt: skip
                        return self._unseal(org, source, access), access[4]
                    raise RetryableError(f"token refresh failed: {exc}", source=source) from None
                except OAuthError as exc:
                    raise ConnectionUnusableError(f"token refresh failed: {exc}", source=source,
                                                  code="REFRESH_FAILED") from None  # fmt: skip
                else:
                    self.refreshes += 1
                    store_secret(conn, self.box, org, source, "access_token", grant.access_token,
                                 expires_at=grant.expires_at)  # fmt: skip
                    if grant.refresh_token is not None:  # rotated: the old one may be revoked already
                        store_secret(conn, self.box, org, source, "refresh_token", grant.refresh_token)
                    log.info("refreshed the %s access token of org %s", source, org)
                    return grant.access_token, grant.expires_at
        if missing:
            raise ConnectionUnusableError(
                f"the {source} connection of org {org} needs reconnecting: there is no refresh token",
                source=source,
                code="NEEDS_RECONNECT",
            )
        raise ConnectionUnusableError(
            f"the {source} connection of org {org} is broken: the CRM refused the token refresh ({refused})",
            source=source,
            code="CONNECTION_BROKEN",
        )


# -- key rotation -------------------------------------------------------------------------------------------------
def rotate_secrets(conn: Conn, box: SecretBox, *, batch: int = 500) -> int:
    """Re-seal every stored secret with the box's current key (run after putting a new key first in
    ``CRMINDEX_SECRET_KEYS``, keeping the old one until this returns). The number re-sealed."""
    done = 0
    current = box.current_key_id
    skipped: set[tuple[str, str, str, str]] = set()
    while True:
        with translate_errors():
            rows = conn.execute(
                "SELECT org_id, crm_source, kind, ref, key_id, ciphertext "
                "FROM crm.connection_secret_stale_keys(%s, %s)",
                (current, batch + len(skipped)),
            ).fetchall()
        todo = [r for r in rows if (str(r[0]), str(r[1]), str(r[2]), str(r[3])) not in skipped]
        if not todo:
            return done
        for org, source, kind, ref, key_id, ct in todo:
            ident = (str(org), str(source), str(kind), str(ref))
            try:
                plain = box.unseal(str(key_id), bytes(ct), org_id=org, source=str(source), kind=str(kind))
            except SecretError as exc:
                log.warning("cannot re-seal a %s of org %s (%s): %s", kind, org, source, exc)
                skipped.add(ident)
                continue
            sealed = box.seal(plain, org_id=org, source=str(source), kind=str(kind))
            with translate_errors():
                row = conn.execute(
                    "SELECT crm.connection_secret_rekey(%s, %s, %s, %s, %s, %s, %s)",
                    (org, source, kind, ref, key_id, sealed.key_id, sealed.ciphertext),
                ).fetchone()
            done += 1 if row and row[0] else 0
