"""HubSpot's OAuth and account endpoints (HubSpot-public-api-spec-collection, ``Auth/Oauth`` 2026-03 and v1,
``Account/Account Info`` 2026-03 and v3).

* Authorize: ``https://app.hubspot.com/oauth/authorize`` with ``client_id``, ``redirect_uri``, ``scope`` and
  ``state`` (and the PKCE challenge: the token endpoint accepts ``code_verifier``).
* Token (exchange and refresh): form-encoded ``POST /oauth/2026-03/token``; v1 ``POST /oauth/v1/token`` is
  deprecated (changelog "v1-oauth-api-deprecation", 2027-02-16) and used only when the versioned path answers 404.
  The answer: ``access_token``, ``refresh_token``, ``expires_in`` (30 minutes in practice), ``hub_id``, ``scopes``.
* Token info: ``POST /oauth/2026-03/token/introspect`` (form ``client_id``, ``client_secret``, ``token``,
  ``token_type_hint``) -> ``active``, ``hub_id``, ``scopes``, ``expires_in``...; v1 fallback
  ``GET /oauth/v1/access-tokens/{token}``.
* Private-app tokens have no token info: ``GET /account-info/2026-03/details`` (v3 fallback
  ``/account-info/v3/details``) with the token answers ``portalId``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from crmindex.crm.hosts import HostPolicy
from crmindex.crm.hubspot import API_BASE
from crmindex.crm.oauth import (
    OAuthApp,
    OAuthEndpoints,
    OAuthError,
    OAuthHttp,
    OAuthRefused,
    TokenGrant,
    TokenInfo,
    expiry,
    query_string,
)
from crmindex.platform.secrets import Secret

AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
VERSION = "2026-03"
# what crmindex reads and writes: contacts, companies, deals (the public app also needs "oauth")
SCOPES = (
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
)


def _scopes(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(s) for s in value if isinstance(s, str))
    if isinstance(value, str):
        return tuple(value.split())
    return ()


def _hub_id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        return None
    return str(value)


class HubSpotOAuth(OAuthEndpoints):
    source = "hubspot"
    uses_pkce = True
    refreshes = True
    scopes: tuple[str, ...] = SCOPES

    def __init__(
        self,
        app: OAuthApp | None = None,
        *,
        api_base: str = API_BASE,
        authorize_url: str = AUTHORIZE_URL,
        hosts: HostPolicy | None = None,
        http: OAuthHttp | None = None,
    ) -> None:
        super().__init__(app, api_base, hosts, http)
        self._authorize = authorize_url

    def __repr__(self) -> str:
        return f"HubSpotOAuth(api_base={self.api_base!r})"

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        params: dict[str, str | None] = {
            "client_id": self._app().client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256" if code_challenge else None,
        }
        return f"{self._authorize}?{query_string(params)}"

    def _token(self, form: dict[str, str], what: str) -> TokenGrant:
        app = self._app()
        form = {**form, "client_id": app.client_id, "client_secret": app.client_secret.reveal()}
        status, body = self.http.request(
            "POST", self.api_base, f"/oauth/{VERSION}/token", form=form, what=what
        )
        if status == 404:  # the versioned API is not there (yet): the deprecated v1 path
            status, body = self.http.request("POST", self.api_base, "/oauth/v1/token", form=form, what=what)
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise OAuthError(f"{what}: the token endpoint answered without an access token", source=self.source,
                             status=status)  # fmt: skip
        refresh = body.get("refresh_token")
        return TokenGrant(
            access_token=Secret(body["access_token"]),
            refresh_token=Secret(refresh) if isinstance(refresh, str) and refresh else None,
            expires_at=expiry(body.get("expires_in")),
            scopes=_scopes(body.get("scopes") or body.get("scope")),
            account_id=_hub_id(body.get("hub_id")),
        )

    def exchange(self, *, code: Secret, redirect_uri: str, code_verifier: Secret | None) -> TokenGrant:
        form = {"grant_type": "authorization_code", "code": code.reveal(), "redirect_uri": redirect_uri}
        if code_verifier is not None:
            form["code_verifier"] = code_verifier.reveal()
        return self._token(form, "code exchange")

    def refresh(self, refresh_token: Secret) -> TokenGrant:
        return self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token.reveal()}, "refresh"
        )

    def token_info(self, access_token: Secret) -> TokenInfo:
        app = self._app()
        form = {
            "client_id": app.client_id,
            "client_secret": app.client_secret.reveal(),
            "token": access_token.reveal(),
            "token_type_hint": "access_token",
        }
        status, body = self.http.request(
            "POST", self.api_base, f"/oauth/{VERSION}/token/introspect", form=form, what="token introspection"
        )
        if status == 404:
            status, body = self.http.request(
                "GET",
                self.api_base,
                "/oauth/v1/access-tokens/" + quote(access_token.reveal(), safe=""),
                what="access-token info",
            )
        info: dict[str, Any] = body if isinstance(body, dict) else {}
        if status == 404 or info.get("active") is False:
            raise OAuthRefused("the access token is not active", source=self.source, status=status)
        hub = _hub_id(info.get("hub_id"))
        if hub is None:
            raise OAuthError("token info without a hub_id", source=self.source, status=status)
        return TokenInfo(
            account_id=hub,
            scopes=_scopes(info.get("scopes")),
            expires_at=expiry(info.get("expires_in")),
            details={k: info[k] for k in ("app_id", "hub_domain", "user_id", "token_type") if k in info},
        )

    def account_of(self, token: Secret) -> TokenInfo:
        """The portal of a private-app token (account details)."""
        status, body = self.http.request(
            "GET", self.api_base, f"/account-info/{VERSION}/details", bearer=token, what="account details"
        )
        if status == 404:
            status, body = self.http.request(
                "GET", self.api_base, "/account-info/v3/details", bearer=token, what="account details"
            )
        info: dict[str, Any] = body if isinstance(body, dict) else {}
        portal = _hub_id(info.get("portalId"))
        if status != 200 or portal is None:
            raise OAuthError("account details without a portalId", source=self.source, status=status)
        return TokenInfo(
            account_id=portal,
            details={k: info[k] for k in ("accountType", "uiDomain", "timeZone") if k in info},
        )
