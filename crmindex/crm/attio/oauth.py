"""Attio's OAuth, identity and webhook endpoints (docs.attio.com: OAuth authorize / token / introspect, REST
``GET /v2/self``, ``/v2/webhooks``).

* Authorize: ``https://app.attio.com/authorize`` with ``client_id``, ``response_type=code``, ``redirect_uri``,
  ``state`` (scopes are set in the app's settings, not in the URL).
* Token: ``POST https://app.attio.com/oauth/token`` (``client_id``, ``client_secret``,
  ``grant_type=authorization_code``, ``code``) -> ``{access_token, token_type: "Bearer"}``: no refresh token in
  the documented answer; tokens do not expire unless revoked (``exp`` may be null).
* Identity: ``GET /v2/self`` -> ``active``, ``scope`` (space-separated), ``workspace_id``, ``exp``...: the
  workspace id of a connection comes from here, for OAuth and API tokens alike.
* Webhooks are per workspace and created by API (scope ``webhook:read-write``): ``POST /v2/webhooks`` with
  ``{data: {target_url, subscriptions: [{event_type, filter}]}}`` answers ``data.id.webhook_id`` and the signing
  ``secret`` ("only shown when setting up the webhook initially"); webhooks created with OAuth tokens do not show in
  the workspace's settings, so the integration lists and deletes its own (``GET``/``DELETE /v2/webhooks/{id}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crmindex.crm.attio import API_BASE, OAUTH_BASE
from crmindex.crm.hosts import HostPolicy
from crmindex.crm.oauth import (
    OAuthApp,
    OAuthEndpoints,
    OAuthError,
    OAuthHttp,
    OAuthRefused,
    TokenGrant,
    TokenInfo,
    query_string,
)
from crmindex.platform.secrets import Secret

# what crmindex uses: records (read and write), object and attribute definitions (statuses), its own webhooks, lists
# and their entries (pipelines), workspace members (deal owners) (docs.attio.com endpoint reference: required scopes)
SCOPES = (
    "record_permission:read-write",
    "object_configuration:read",
    "webhook:read-write",
    "list_configuration:read",
    "list_entry:read",
    "user_management:read",
)
# the events the intake applies: records, and list entries (docs.attio.com webhook reference)
WEBHOOK_EVENTS = (
    "record.created",
    "record.updated",
    "record.deleted",
    "record.merged",
    "list-entry.created",
    "list-entry.updated",
    "list-entry.deleted",
)


@dataclass(frozen=True)
class AttioWebhook:
    webhook_id: str
    target_url: str
    status: str
    secret: Secret | None = None  # only in the answer that created it


def _exp(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(float(value), UTC)


class AttioOAuth(OAuthEndpoints):
    source = "attio"
    uses_pkce = False
    refreshes = False
    scopes: tuple[str, ...] = SCOPES

    def __init__(
        self,
        app: OAuthApp | None = None,
        *,
        api_base: str = API_BASE,
        oauth_base: str = OAUTH_BASE,
        hosts: HostPolicy | None = None,
        http: OAuthHttp | None = None,
    ) -> None:
        super().__init__(app, api_base, hosts, http)
        self.oauth_base = oauth_base.rstrip("/")

    def __repr__(self) -> str:
        return f"AttioOAuth(api_base={self.api_base!r}, oauth_base={self.oauth_base!r})"

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        params = {
            "client_id": self._app().client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{self.oauth_base}/authorize?{query_string(params)}"

    def exchange(self, *, code: Secret, redirect_uri: str, code_verifier: Secret | None) -> TokenGrant:
        app = self._app()
        form = {
            "client_id": app.client_id,
            "client_secret": app.client_secret.reveal(),
            "grant_type": "authorization_code",
            "code": code.reveal(),
            "redirect_uri": redirect_uri,
        }
        status, body = self.http.request(
            "POST", self.oauth_base, "/oauth/token", form=form, what="code exchange"
        )
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise OAuthError("the token endpoint answered without an access token", source=self.source,
                             status=status)  # fmt: skip
        return TokenGrant(access_token=Secret(body["access_token"]))

    def refresh(self, refresh_token: Secret) -> TokenGrant:
        raise OAuthRefused("Attio access tokens are not refreshed: connect again", source=self.source)

    def token_info(self, access_token: Secret) -> TokenInfo:
        status, body = self.http.request(
            "GET", self.api_base, "/v2/self", bearer=access_token, what="identify"
        )
        info: dict[str, Any] = body if isinstance(body, dict) else {}
        if status == 404 or info.get("active") is False:
            raise OAuthRefused("the token is not active", source=self.source, status=status)
        workspace = info.get("workspace_id")
        if not isinstance(workspace, str) or not workspace:
            raise OAuthError("identify answered without a workspace_id", source=self.source, status=status)
        scope = info.get("scope")
        return TokenInfo(
            account_id=workspace,
            scopes=tuple(scope.split()) if isinstance(scope, str) else (),
            expires_at=_exp(info.get("exp")),
            details={k: info[k] for k in ("workspace_name", "workspace_slug", "client_id") if k in info},
        )

    def account_of(self, token: Secret) -> TokenInfo:
        return self.token_info(token)

    # -- webhooks ------------------------------------------------------------------------------------------
    def create_webhook(
        self, token: Secret, target_url: str, events: tuple[str, ...] = WEBHOOK_EVENTS
    ) -> AttioWebhook:
        payload = {
            "data": {
                "target_url": target_url,
                "subscriptions": [{"event_type": e, "filter": None} for e in events],
            }
        }
        status, body = self.http.request(
            "POST", self.api_base, "/v2/webhooks", json=payload, bearer=token, what="webhook creation"
        )
        data = body.get("data") if isinstance(body, dict) else None
        ident = data.get("id") if isinstance(data, dict) else None
        webhook_id = ident.get("webhook_id") if isinstance(ident, dict) else None
        secret = data.get("secret") if isinstance(data, dict) else None
        if status != 200 or not isinstance(webhook_id, str) or not isinstance(secret, str) or not secret:
            raise OAuthError("webhook creation answered without an id and secret", source=self.source,
                             status=status)  # fmt: skip
        assert isinstance(data, dict)
        return AttioWebhook(webhook_id, str(data.get("target_url", target_url)), str(data.get("status", "")),
                            Secret(secret))  # fmt: skip

    def list_webhooks(self, token: Secret) -> list[AttioWebhook]:
        _, body = self.http.request("GET", self.api_base, "/v2/webhooks", bearer=token, what="webhook list")
        rows = body.get("data") if isinstance(body, dict) else None
        out: list[AttioWebhook] = []
        for row in rows if isinstance(rows, list) else []:
            ident = row.get("id") if isinstance(row, dict) else None
            wid = ident.get("webhook_id") if isinstance(ident, dict) else None
            if isinstance(wid, str):
                out.append(AttioWebhook(wid, str(row.get("target_url", "")), str(row.get("status", ""))))
        return out

    def delete_webhook(self, token: Secret, webhook_id: str) -> bool:
        """True when deleted, False when Attio had no such webhook."""
        status, _ = self.http.request(
            "DELETE", self.api_base, f"/v2/webhooks/{webhook_id}", bearer=token, what="webhook deletion"
        )
        return status != 404
