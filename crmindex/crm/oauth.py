"""Connecting a CRM account with OAuth 2.0 (authorization code), the generic part.

1. :func:`begin_authorization` makes a single-use ``state`` bound to the org, the CRM and the redirect URI (and a
   PKCE verifier where the CRM supports it), remembers only its SHA-256 (``crm.oauth_state``, 10 minutes), and
   returns the CRM's authorize URL with the scopes the library needs.
2. The user approves in the CRM; the CRM redirects to the redirect URI with ``code`` and ``state``
   (:func:`parse_redirect` reads the pasted URL or query).
3. :func:`finish_authorization` consumes the state (unknown, reused, expired or another CRM's: refused), and
   exchanges the code at the CRM's token endpoint. :mod:`crmindex.crm.connections` then asks the CRM which account
   the token belongs to and stores the tokens sealed.

The CRM specifics (endpoints, versions, scopes) are :class:`OAuthProvider` implementations:
:class:`crmindex.crm.hubspot.oauth.HubSpotOAuth` and :class:`crmindex.crm.attio.oauth.AttioOAuth`.

The app's client id and secret are operator configuration of the processes (:meth:`OAuthApp.from_env`:
``CRMINDEX_HUBSPOT_CLIENT_ID`` / ``CRMINDEX_HUBSPOT_CLIENT_SECRET``, same for ``ATTIO``), never stored in the
database. Errors carry the CRM's status, error code and correlation id, never a request or response body.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets as _random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, quote, urlsplit

import requests

from crmindex.crm.hosts import HostPolicy
from crmindex.errors import CrmIndexError, InvalidInputError
from crmindex.platform.db import Conn, translate_errors
from crmindex.platform.secrets import Secret, SecretBox

log = logging.getLogger("crmindex.crm.oauth")

STATE_TTL_S = 600
TIMEOUT = (5.0, 30.0)


class OAuthError(CrmIndexError):
    """An OAuth call failed. The message holds the CRM's status, error code and correlation id only."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.source = source
        self.status = status
        self.code = code
        self.correlation_id = correlation_id
        parts = [p for p in (str(status) if status else None, code) if p]
        corr = f" (correlation id {correlation_id})" if correlation_id else ""
        super().__init__(f"{source} OAuth: {message}" + (f" [{' '.join(parts)}]" if parts else "") + corr)


class OAuthRefused(OAuthError):
    """The CRM refused the grant or the token (400 ``invalid_grant`` / 401 / 403): connect again."""


class OAuthUnavailable(OAuthError):
    """The CRM could not answer (timeout, connection error, 429, 5xx): try again later."""


@dataclass(frozen=True)
class OAuthApp:
    """A CRM app's OAuth client (operator configuration, never stored in the database)."""

    client_id: str
    client_secret: Secret
    redirect_uri: str | None = None

    @classmethod
    def from_env(cls, source: str, environ: Mapping[str, str] | None = None) -> OAuthApp:
        """``CRMINDEX_<SOURCE>_CLIENT_ID``, ``..._CLIENT_SECRET`` and optional ``..._REDIRECT_URI``."""
        env = os.environ if environ is None else environ
        prefix = f"CRMINDEX_{source.upper()}_"
        client_id = env.get(prefix + "CLIENT_ID", "").strip()
        secret = env.get(prefix + "CLIENT_SECRET", "").strip()
        if not client_id or not secret:
            raise InvalidInputError(
                f"the {source} OAuth app is not configured: set {prefix}CLIENT_ID and {prefix}CLIENT_SECRET "
                "(from the app's settings) in the environment"
            )
        return cls(client_id, Secret(secret), env.get(prefix + "REDIRECT_URI", "").strip() or None)


@dataclass(frozen=True)
class TokenGrant:
    """What a token endpoint returned."""

    access_token: Secret
    refresh_token: Secret | None = None
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    account_id: str | None = None  # when the answer names the account (HubSpot ``hub_id``)


@dataclass(frozen=True)
class TokenInfo:
    """What the CRM says a token is: the account it belongs to (the only source of a connection's account
    id), its scopes, and its expiry when it has one."""

    account_id: str
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)  # non-secret extras (app id, user, hub domain)


class OAuthProvider(Protocol):
    """A CRM's OAuth endpoints."""

    source: str
    uses_pkce: bool
    refreshes: bool  # access tokens expire and are refreshed with a refresh token
    scopes: tuple[str, ...]  # what the library needs
    api_base: str

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str: ...

    def exchange(self, *, code: Secret, redirect_uri: str, code_verifier: Secret | None) -> TokenGrant: ...

    def refresh(self, refresh_token: Secret) -> TokenGrant: ...

    def token_info(self, access_token: Secret) -> TokenInfo: ...

    def account_of(self, token: Secret) -> TokenInfo: ...


class RegisteredWebhook(Protocol):
    @property
    def webhook_id(self) -> str: ...

    @property
    def secret(self) -> Secret | None: ...


@runtime_checkable
class WebhookRegistrar(Protocol):
    """An OAuth provider whose CRM registers webhooks through its API, one per connected account (Attio; HubSpot
    webhooks are app settings). Connecting with a webhook URL registers one and stores its signing secret."""

    def create_webhook(self, token: Secret, target_url: str) -> RegisteredWebhook: ...

    def delete_webhook(self, token: Secret, webhook_id: str) -> bool: ...


# -- HTTP for the OAuth and account endpoints ---------------------------------------------------------------
class OAuthHttp:
    """Requests to a CRM's OAuth and account endpoints: every URL's base is checked against the host policy
    before anything (a code, a client secret, a token) is sent; errors never include a body."""

    def __init__(
        self,
        source: str,
        hosts: HostPolicy | None = None,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = TIMEOUT,
    ) -> None:
        self.source = source
        self.hosts = hosts if hosts is not None else HostPolicy.from_env()
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = "crmindex/0.1"
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"OAuthHttp({self.source!r})"

    def close(self) -> None:
        self._session.close()

    def request(
        self,
        method: str,
        base: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        json: Any = None,
        bearer: Secret | None = None,
        what: str = "",
    ) -> tuple[int, Any]:
        """(status, JSON body) of a 2xx or 404 answer; other answers raise :class:`OAuthRefused` (400, 401,
        403) or :class:`OAuthUnavailable` (429, 5xx, no answer)."""
        url = self.hosts.check(self.source, base) + path
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer.reveal()}"
        label = what or f"{method} {path.split('?')[0][:80]}"
        try:
            resp = self._session.request(
                method,
                url,
                data=form,
                json=json,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise OAuthUnavailable(f"{label}: {type(exc).__name__}", source=self.source) from None
        try:
            body: Any = resp.json() if resp.content else None
        except ValueError:
            body = None
        status = resp.status_code
        resp.close()
        if 200 <= status < 300 or status == 404:
            return status, body
        info: dict[str, Any] = body if isinstance(body, dict) else {}
        code = next(
            (str(info[k]) for k in ("error", "status", "category", "code") if isinstance(info.get(k), str)),
            None,
        )
        corr = info.get("correlationId") or info.get("correlation_id") or resp.headers.get("X-Request-Id")
        kw: dict[str, Any] = {"source": self.source, "status": status, "code": code and code[:80],
                              "correlation_id": None if corr is None else str(corr)[:80]}  # fmt: skip
        if status in (400, 401, 403):
            raise OAuthRefused(f"{label} was refused", **kw)
        raise OAuthUnavailable(f"{label} failed", **kw)


class OAuthEndpoints:
    """What every CRM's :class:`OAuthProvider` shares: the app (client id and secret; None for connecting with a
    private-app token, which needs none), the API base (rstripped) and the host-checked HTTP."""

    source: str

    def __init__(
        self, app: OAuthApp | None, api_base: str, hosts: HostPolicy | None, http: OAuthHttp | None
    ) -> None:
        self.app = app
        self.api_base = api_base.rstrip("/")
        self.http = http or OAuthHttp(self.source, hosts)

    def close(self) -> None:
        self.http.close()

    def _app(self) -> OAuthApp:
        if self.app is None:
            raise OAuthError("no OAuth app configured (client id and secret)", source=self.source)
        return self.app


def expiry(expires_in: Any, now: datetime | None = None) -> datetime | None:
    """``expires_in`` seconds from now (None when absent or not a number)."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        return None
    return (now or datetime.now(UTC)) + timedelta(seconds=float(expires_in))


# -- the flow -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Authorization:
    """A started authorization: send the user to ``url``; ``state`` comes back on the redirect."""

    url: str
    state: Secret
    expires_at: datetime
    org_id: uuid.UUID
    source: str


def state_hash(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


def _challenge(verifier: str) -> str:
    # RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier))) without padding
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def begin_authorization(
    conn: Conn,
    box: SecretBox,
    provider: OAuthProvider,
    org_id: uuid.UUID | str,
    redirect_uri: str,
    *,
    ttl_s: int = STATE_TTL_S,
) -> Authorization:
    """Start connecting ``org_id`` to the provider's CRM: the authorize URL to send the user to."""
    org = uuid.UUID(str(org_id))
    state = _random.token_urlsafe(32)
    verifier = _random.token_urlsafe(64) if provider.uses_pkce else None
    sealed = (
        box.seal(verifier, org_id=org, source=provider.source, kind="pkce_verifier") if verifier else None
    )
    with translate_errors():
        row = conn.execute(
            "SELECT crm.oauth_state_create(%s, %s, %s, %s, %s, %s, %s)",
            (
                org,
                provider.source,
                state_hash(state),
                redirect_uri,
                None if sealed is None else sealed.key_id,
                None if sealed is None else sealed.ciphertext,
                ttl_s,
            ),
        ).fetchone()
    assert row is not None
    url = provider.authorize_url(
        state=state, redirect_uri=redirect_uri, code_challenge=_challenge(verifier) if verifier else None
    )
    return Authorization(url, Secret(state), row[0], org, provider.source)


def parse_redirect(text: str) -> tuple[Secret, Secret]:
    """(code, state) from the redirect URL the CRM sent the user to (or just its query string).

    An ``error`` parameter (the user declined) raises :class:`OAuthRefused`; a missing code or state raises
    :class:`InvalidInputError`."""
    raw = text.strip()
    query = urlsplit(raw).query if "://" in raw else raw.lstrip("?")
    params = parse_qs(query, keep_blank_values=True)
    if params.get("error"):
        code = params["error"][0][:80]
        raise OAuthRefused("the authorization was not granted", source="crm", code=code)
    code_v, state_v = params.get("code", [""])[0], params.get("state", [""])[0]
    if not code_v or not state_v:
        raise InvalidInputError(
            "the redirect URL has no code and state: paste the whole URL the CRM sent you to"
        )
    return Secret(code_v), Secret(state_v)


def finish_authorization(
    conn: Conn,
    box: SecretBox,
    provider: OAuthProvider,
    *,
    state: Secret,
    code: Secret,
    expect_org: uuid.UUID | str | None = None,
) -> tuple[uuid.UUID, TokenGrant]:
    """Consume the state (single use) and exchange the code: the org it was started for and the tokens
    (``expect_org``: refuse a state started for another org, before the code is exchanged)."""
    with translate_errors():
        row = conn.execute(
            "SELECT org_id, redirect_uri, key_id, verifier_ciphertext, problem "
            "FROM crm.oauth_state_consume(%s, %s)",
            (provider.source, state_hash(state.reveal())),
        ).fetchone()
    assert row is not None
    if row[4] == "expired":
        raise InvalidInputError("the OAuth authorization expired: start it again")
    if row[4] is not None:  # unknown, already used, or started for another CRM (and now used up)
        raise InvalidInputError("unknown or already used OAuth state: start the authorization again")
    org = uuid.UUID(str(row[0]))
    if expect_org is not None and uuid.UUID(str(expect_org)) != org:
        raise InvalidInputError("this authorization was started for another org: nothing was stored")
    verifier = (
        box.unseal(str(row[2]), bytes(row[3]), org_id=org, source=provider.source, kind="pkce_verifier")
        if row[3] is not None and row[2] is not None
        else None
    )
    grant = provider.exchange(code=code, redirect_uri=str(row[1]), code_verifier=verifier)
    return org, grant


def query_string(params: Mapping[str, str | None]) -> str:
    """``a=1&b=2`` of the non-None params, percent-encoded (spaces as %20, as OAuth servers expect)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items() if v is not None)
