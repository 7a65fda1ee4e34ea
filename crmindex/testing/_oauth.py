"""OAuth, token-info, account and (Attio) webhook-management endpoints of the fake CRMs, as the real APIs answer.

Each fake has one (``fake.oauth``), hooked into the shared server (``_server.FakeServer``): its :meth:`route` answers
these paths before the fake's own bearer check (the token endpoints authenticate with client credentials), its
:meth:`expired` makes access tokens it issued expire, and (Attio) :meth:`deliver` sends webhook deliveries to the
webhooks created through the API, each signed with its own secret.

Sources of each behaviour (HubSpot: HubSpot-public-api-spec-collection ``Auth/Oauth`` 2026-03 and v1,
``Account/Account Info``; Attio: docs.attio.com OAuth and REST reference; see ../shared/reference/crm-apis.md C.):

* the user's approval is :meth:`approve` (a method, not a page): it checks the authorize URL the way the CRM does
  (known client id, a redirect URI registered for the app, exact match) and returns the redirect URL with ``code``
  and ``state``; ``accept=False`` returns ``error=access_denied`` (RFC 6749 4.1.2.1);
* codes are single use and expire after ``code_ttl`` (RFC 6749 4.1.2: "a maximum authorization code lifetime of
  10 minutes is RECOMMENDED"); a code bound to a redirect URI is exchanged only with the same one (4.1.3); a PKCE
  challenge (S256) needs the matching ``code_verifier`` (RFC 7636; HubSpot's token endpoint takes
  ``code_verifier``);
* HubSpot tokens: ``POST /oauth/2026-03/token`` and deprecated ``POST /oauth/v1/token`` (form-encoded; v1 also
  reads ``client_secret``/``refresh_token`` from the query, as its spec lists them there), answering
  ``access_token``, ``refresh_token``, ``expires_in`` (1800: "30 minutes in practice"), ``token_type``, and in the
  versioned answer ``hub_id``, ``scopes``, ``token_use``; ``versioned=False`` makes the versioned paths 404 (a
  portal or gateway without them) so clients fall back to v1;
* refreshes rotate the refresh token when ``rotate_refresh_tokens`` (OAuth 2.0 Security BCP, refresh token
  rotation), revoking the old one; :meth:`revoke_refresh_token` models an uninstall or an app-side revocation;
  a refused grant is 400 with the Error schema (``message``, ``correlationId``, ``category``) and HubSpot's v1
  status names (``BAD_REFRESH_TOKEN``, ``BAD_AUTH_CODE``, ``BAD_CLIENT_ID``, ``BAD_REDIRECT_URI`` — the names as
  reported by integrators, not in the stored spec);
* HubSpot introspection ``POST /oauth/2026-03/token/introspect`` (client credentials + ``token``) and v1
  ``GET /oauth/v1/access-tokens/{token}``: ``active``, ``hub_id``, ``app_id``, ``scopes``, ``expires_in``,
  ``token_type``, ``user_id``; v1 answers 404 for an unknown token; refresh-token metadata
  ``GET|DELETE /oauth/v1/refresh-tokens/{token}``; revocation ``POST /oauth/2026-03/token/revoke``;
* HubSpot account details ``GET /account-info/2026-03/details`` and ``/account-info/v3/details`` (bearer: any token
  of the portal, private-app ones included) -> ``portalId``, ``accountType``, ``timeZone``, ``uiDomain``...;
* Attio ``POST /oauth/token`` (``client_id``, ``client_secret``, ``grant_type=authorization_code``, ``code``) ->
  ``{access_token, token_type: "Bearer"}``, no refresh token, no expiry; ``POST /oauth/introspect`` and
  ``GET /v2/self`` (bearer) -> ``active``, ``scope``, ``client_id``, ``token_type``, ``exp`` (null), ``iat``,
  ``sub``, ``workspace_id``, ``workspace_name``, ``workspace_slug``, ``authorized_by_workspace_member_id``;
* Attio ``POST /v2/webhooks`` (scope ``webhook:read-write``; ``target_url`` must be https — ``allow_http_targets``
  lets local tests use http://127.0.0.1) -> ``data`` with ``id.webhook_id``, ``status: "active"`` and the
  ``secret`` (only in this answer); ``GET /v2/webhooks`` and ``GET|DELETE /v2/webhooks/{id}`` (no secret).
  Deliveries go to every active webhook whose subscriptions name the event type, each body carrying its
  ``webhook_id`` and signed with its secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, urlsplit

import requests

from crmindex.testing._http import Request, Response

CODE_TTL_S = 600.0
HUBSPOT_ACCESS_TTL_S = 1800.0
ALL_HUBSPOT_SCOPES = (
    "oauth",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
)
ALL_ATTIO_SCOPES = (
    "record_permission:read-write",
    "object_configuration:read",
    "webhook:read-write",
    "user_management:read",
    "list_configuration:read",
    "list_entry:read",
)


class _Fake(Protocol):
    """What the OAuth endpoints use of their fake."""

    @property
    def source(self) -> str: ...

    @property
    def emit(self) -> str: ...

    def add_token(self, token: str) -> None: ...

    def revoke_token(self, token: str) -> None: ...

    def _auth(self, req: Any) -> str | None: ...


@dataclass
class _App:
    client_secret: str
    redirect_uris: set[str]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    expires: float


@dataclass
class _Access:
    client_id: str | None  # None: a token the fake was given (private-app / API token)
    scopes: tuple[str, ...]
    expires: float | None
    issued: float = field(default_factory=time.time)


@dataclass
class _Webhook:
    webhook_id: str
    target_url: str
    subscriptions: list[dict[str, Any]]
    secret: str
    created_at: str
    status: str = "active"


def _form(req: Request) -> dict[str, str]:
    """Form fields (or a JSON object's string fields) of a token request, then the query's."""
    out: dict[str, str] = {}
    ctype = req.headers.get("content-type", "")
    if "json" in ctype:
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            body = {}
        if isinstance(body, dict):
            out.update({k: v for k, v in body.items() if isinstance(v, str)})
    else:
        for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items():
            out[k] = v[0]
    for k, v in req.query.items():
        out.setdefault(k, v[0])
    return out


def _bearer(req: Request) -> str | None:
    header = req.headers.get("authorization", "")
    return header[len("Bearer ") :].strip() if header.startswith("Bearer ") else None


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class OAuthFake:
    """The state both CRMs' OAuth servers share: apps, codes, issued tokens, counters."""

    def __init__(self, fake: _Fake) -> None:
        self.fake = fake
        self.lock = threading.RLock()
        self.apps: dict[str, _App] = {}
        self.codes: dict[str, _Code] = {}
        self.access: dict[str, _Access] = {}
        self.refresh_tokens: dict[str, tuple[str, tuple[str, ...]]] = {}  # token -> (client id, scopes)
        self.revoked_refresh: set[str] = set()
        self.code_ttl = CODE_TTL_S
        self.token_calls = 0  # code exchanges + refreshes answered 200
        self.refresh_calls = 0  # refresh requests received (refused ones included)
        self.refresh_delay = 0.0  # seconds a refresh takes (widens races in tests)
        self.static_scopes: tuple[str, ...] = ()  # scopes of the tokens the fake was given

    def __repr__(self) -> str:
        return f"{type(self).__name__}(apps={len(self.apps)}, tokens={len(self.access)})"

    # -- configuration -----------------------------------------------------------------------------------------
    def register_app(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uris: Iterable[str] = (),
    ) -> tuple[str, str]:
        """Register an OAuth app (as in the CRM's developer settings): (client id, client secret)."""
        cid = client_id or str(uuid.uuid4())
        secret = client_secret or secrets.token_hex(16)
        with self.lock:
            self.apps[cid] = _App(secret, set(redirect_uris))
        return cid, secret

    def _new_token(self, prefix: str) -> str:
        return f"{prefix}-{secrets.token_urlsafe(24)}"

    # -- the user's approval -----------------------------------------------------------------------------------
    def _check_authorize(self, params: Mapping[str, str]) -> str | None:
        """None when the CRM would show the consent page, else why it refuses (no redirect happens)."""
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            return "unknown client_id"
        if params.get("redirect_uri", "") not in app.redirect_uris:
            return "redirect_uri is not registered for this app"
        return None

    def approve(self, authorize_url: str, *, accept: bool = True) -> str:
        """The user approves (or declines) the install on the CRM's authorize page: the URL the CRM redirects
        the browser to (``redirect_uri`` with ``code`` and ``state``, or ``error=access_denied``)."""
        params = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query, keep_blank_values=True).items()}
        with self.lock:
            problem = self._check_authorize(params)
            if problem is not None:
                raise ValueError(f"the CRM's authorize page refuses this request: {problem}")
            redirect = params["redirect_uri"]
            sep = "&" if "?" in redirect else "?"
            state = params.get("state")
            tail = "" if state is None else f"&state={quote(state, safe='')}"
            if not accept:
                return f"{redirect}{sep}error=access_denied{tail}"
            code = secrets.token_urlsafe(24)
            self.codes[code] = _Code(
                params["client_id"],
                redirect,
                self._granted_scopes(params),
                params.get("code_challenge")
                if params.get("code_challenge_method", "S256") == "S256"
                else None,
                time.monotonic() + self.code_ttl,
            )
        return f"{redirect}{sep}code={quote(code, safe='')}{tail}"

    def _granted_scopes(self, params: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(params.get("scope", "").split())

    # -- tokens --------------------------------------------------------------------------------------------------
    def issue(self, client_id: str | None, scopes: tuple[str, ...], ttl: float | None) -> str:
        token = self._new_token("fake-at")
        with self.lock:
            self.access[token] = _Access(client_id, scopes, None if ttl is None else time.time() + ttl)
        self.fake.add_token(token)
        return token

    def expired(self, token: str) -> bool:
        """Hook of the fake's bearer check: an access token this server issued has expired."""
        info = self.access.get(token)
        return info is not None and info.expires is not None and info.expires <= time.time()

    def expire_access_tokens(self) -> None:
        """Make every issued access token expire now (tests: force refreshes)."""
        with self.lock:
            for info in self.access.values():
                info.expires = time.time() - 1

    def revoke_refresh_token(self, token: str | None = None) -> None:
        """Revoke one refresh token (or all): later refreshes with it are refused (an uninstall)."""
        with self.lock:
            for t in [token] if token is not None else list(self.refresh_tokens):
                self.refresh_tokens.pop(t, None)
                self.revoked_refresh.add(t)

    def _token_info(self, token: str) -> _Access | None:
        info = self.access.get(token)
        if info is None:
            return (
                None if self.fake._auth(_Auth(token)) is not None else _Access(None, self.static_scopes, None)
            )
        return None if self.expired(token) or self.fake._auth(_Auth(token)) is not None else info

    # -- routing --------------------------------------------------------------------------------------------------
    def route(self, req: Request) -> Response | None:
        """Hook of the fake's dispatch: the answer for an OAuth/account path, None for any other path."""
        raise NotImplementedError

    def deliver(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Hook of the fake's webhook delivery: True when this server delivered it (to API-created webhooks)."""
        return False


class _Auth:
    """A request carrying just a bearer token (for the fake's own bearer check)."""

    def __init__(self, token: str) -> None:
        self.headers = {"authorization": f"Bearer {token}"}
        self.path = "/"
        self.method = "GET"


# ============================================================================================ HubSpot
def _hs_error(status: int, message: str, category: str, v1_status: str | None = None) -> Response:
    body: dict[str, Any] = {
        "status": v1_status or "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    return Response(status, body)


class HubSpotOAuthFake(OAuthFake):
    """HubSpot's OAuth server and account details for one fake portal."""

    def __init__(self, fake: _Fake, *, portal_id: int, app_id: int) -> None:
        super().__init__(fake)
        self._portal_id, self._app_id = portal_id, app_id
        self.versioned = True  # False: /oauth/2026-03/* and /account-info/2026-03/* answer 404
        self.access_ttl: float = HUBSPOT_ACCESS_TTL_S
        self.rotate_refresh_tokens = True
        self.static_scopes = ALL_HUBSPOT_SCOPES
        self.user_id = 45678

    @property
    def portal_id(self) -> int:  # the fake's, should a test change it
        return int(getattr(self.fake, "portal_id", self._portal_id))

    @property
    def app_id(self) -> int:
        return int(getattr(self.fake, "app_id", self._app_id))

    def route(self, req: Request) -> Response | None:
        path, m = req.path.rstrip("/"), req.method
        if not (path.startswith("/oauth/") or path.startswith("/account-info/")):
            return None
        if "/2026-03/" in path + "/" and not self.versioned:
            return _hs_error(404, f"No route for {m} {req.path}", "OBJECT_NOT_FOUND")
        if m == "POST" and path in ("/oauth/2026-03/token", "/oauth/v1/token"):
            return self._token(req, versioned=path.startswith("/oauth/2026-03"))
        if m == "POST" and path == "/oauth/2026-03/token/introspect":
            return self._introspect(_form(req))
        if m == "POST" and path == "/oauth/2026-03/token/revoke":
            return self._revoke(_form(req))
        if m == "GET" and path.startswith("/oauth/v1/access-tokens/"):
            return self._access_token_info(path.rsplit("/", 1)[1])
        if path.startswith("/oauth/v1/refresh-tokens/") and m in ("GET", "DELETE"):
            return self._refresh_token_info(path.rsplit("/", 1)[1], delete=m == "DELETE")
        if m == "GET" and path in ("/account-info/2026-03/details", "/account-info/v3/details"):
            return self._details(req)
        return _hs_error(404, f"No route for {m} {req.path}", "OBJECT_NOT_FOUND")

    def _client(self, form: Mapping[str, str]) -> Response | str:
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return _hs_error(400, "missing or invalid client id", "BAD_REQUEST", "BAD_CLIENT_ID")
        if not hmac.compare_digest(form.get("client_secret", ""), app.client_secret):
            return _hs_error(400, "missing or invalid client secret", "BAD_REQUEST", "BAD_CLIENT_SECRET")
        return form["client_id"]

    def _token(self, req: Request, *, versioned: bool) -> Response:
        form = _form(req)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            with self.lock:
                self.refresh_calls += 1
            if self.refresh_delay:
                time.sleep(self.refresh_delay)
        client = self._client(form)
        if isinstance(client, Response):
            return client
        with self.lock:
            if grant == "authorization_code":
                code = self.codes.pop(form.get("code", ""), None)  # single use, even when refused below
                if code is None or code.client_id != client or code.expires < time.monotonic():
                    return _hs_error(400, "missing or unknown auth code", "BAD_REQUEST", "BAD_AUTH_CODE")
                if form.get("redirect_uri") != code.redirect_uri:
                    return _hs_error(400, "redirect_uri does not match the authorization", "BAD_REQUEST",
                                     "BAD_REDIRECT_URI")  # fmt: skip
                if code.challenge is not None and (
                    not form.get("code_verifier")
                    or not hmac.compare_digest(_challenge(form["code_verifier"]), code.challenge)
                ):
                    return _hs_error(400, "code_verifier does not match the code challenge", "BAD_REQUEST",
                                     "BAD_AUTH_CODE")  # fmt: skip
                scopes = code.scopes
                refresh = self._new_token("fake-rt")
                self.refresh_tokens[refresh] = (client, scopes)
            elif grant == "refresh_token":
                old = form.get("refresh_token", "")
                held = self.refresh_tokens.get(old)
                if held is None or held[0] != client:
                    return _hs_error(
                        400, "missing or unknown refresh token", "BAD_REQUEST", "BAD_REFRESH_TOKEN"
                    )
                scopes = held[1]
                refresh = old
                if self.rotate_refresh_tokens:
                    refresh = self._new_token("fake-rt")
                    del self.refresh_tokens[old]
                    self.revoked_refresh.add(old)
                    self.refresh_tokens[refresh] = (client, scopes)
            else:
                return _hs_error(400, "unsupported grant_type", "BAD_REQUEST", "BAD_GRANT_TYPE")
            self.token_calls += 1
        access = self.issue(client, scopes, self.access_ttl)
        body: dict[str, Any] = {
            "token_type": "bearer",
            "refresh_token": refresh,
            "access_token": access,
            "expires_in": int(self.access_ttl),
        }
        if versioned:
            body.update({"hub_id": self.portal_id, "scopes": list(scopes), "token_use": "access_token",
                         "user_id": self.user_id})  # fmt: skip
        return Response(200, body)

    def _info_body(self, token: str, info: _Access) -> dict[str, Any]:
        left = None if info.expires is None else max(0, int(info.expires - time.time()))
        return {
            "token": token,
            "user": "owner@example.com",
            "hub_domain": f"portal-{self.portal_id}.example.com",
            "scopes": list(info.scopes),
            "hub_id": self.portal_id,
            "app_id": self.app_id,
            "expires_in": left if left is not None else 0,
            "user_id": self.user_id,
            "token_type": "access",
        }

    def _introspect(self, form: Mapping[str, str]) -> Response:
        client = self._client(form)
        if isinstance(client, Response):
            return client
        token = form.get("token", "")
        info = self.access.get(token)
        if info is None or self.expired(token) or self.fake._auth(_Auth(token)) is not None:
            return Response(200, {"active": False})
        return Response(200, {"active": True, "client_id": client, "token_use": "access_token",
                              "is_private_distribution": False, **self._info_body(token, info)})  # fmt: skip

    def _access_token_info(self, token: str) -> Response:
        info = self.access.get(token)
        if info is None or self.expired(token) or self.fake._auth(_Auth(token)) is not None:
            return _hs_error(404, "access token not found", "OBJECT_NOT_FOUND")
        return Response(200, self._info_body(token, info))

    def _refresh_token_info(self, token: str, *, delete: bool) -> Response:
        with self.lock:
            held = self.refresh_tokens.get(token)
            if held is None:
                return _hs_error(404, "refresh token not found", "OBJECT_NOT_FOUND")
            if delete:  # "This will not uninstall the application" (the access tokens keep working)
                self.revoke_refresh_token(token)
                return Response(204)
        return Response(200, {"token": token, "user": "owner@example.com", "hub_id": self.portal_id,
                              "scopes": list(held[1]), "client_id": held[0], "token_type": "refresh",
                              "user_id": self.user_id})  # fmt: skip

    def _revoke(self, form: Mapping[str, str]) -> Response:
        client = self._client(form)
        if isinstance(client, Response):
            return client
        self.revoke_refresh_token(form.get("token", ""))
        return Response(204)

    def _details(self, req: Request) -> Response:
        token = _bearer(req)
        if token is None or self._token_info(token) is None:
            return _hs_error(401, "The OAuth token used to make this call expired or was revoked.",
                             "EXPIRED_AUTHENTICATION" if token else "INVALID_AUTHENTICATION")  # fmt: skip
        return Response(200, {
            "portalId": self.portal_id,
            "accountType": "STANDARD",
            "timeZone": getattr(self.fake, "time_zone", "US/Eastern"),  # FakeHubSpot(time_zone=...)
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18000000,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        })  # fmt: skip


# ============================================================================================ Attio
def _attio_error(status: int, type_: str, code: str, message: str) -> Response:
    return Response(status, {"status_code": status, "type": type_, "code": code, "message": message})


class AttioOAuthFake(OAuthFake):
    """Attio's OAuth server, identity endpoints and webhook management for one fake workspace."""

    def __init__(self, fake: _Fake, *, workspace_id: str, member_id: str | None = None) -> None:
        super().__init__(fake)
        self._workspace_id = workspace_id
        self.member_id = member_id or str(uuid.uuid4())
        self.granted_scopes: tuple[str, ...] = ALL_ATTIO_SCOPES  # set in the app's settings, not per request
        self.static_scopes = ALL_ATTIO_SCOPES
        self.allow_http_targets = False
        self.webhooks: dict[str, _Webhook] = {}
        self.deliveries_sent: list[tuple[str, int]] = []  # (webhook id, status)

    @property
    def workspace_id(self) -> str:
        return str(getattr(self.fake, "workspace_id", self._workspace_id))

    def _granted_scopes(self, params: Mapping[str, str]) -> tuple[str, ...]:
        return self.granted_scopes

    def _check_authorize(self, params: Mapping[str, str]) -> str | None:
        if params.get("response_type") != "code":
            return 'response_type must be "code"'
        return super()._check_authorize(params)

    def route(self, req: Request) -> Response | None:
        path, m = req.path.rstrip("/"), req.method
        if m == "POST" and path == "/oauth/token":
            return self._token(_form(req))
        if m == "POST" and path == "/oauth/introspect":
            return self._self(req, introspect=True)
        if m == "GET" and path == "/v2/self":
            return self._self(req, introspect=False)
        if path == "/v2/webhooks" or path.startswith("/v2/webhooks/"):
            return self._webhooks(req, path)
        return None

    def _token(self, form: Mapping[str, str]) -> Response:
        app = self.apps.get(form.get("client_id", ""))
        if app is None or not hmac.compare_digest(form.get("client_secret", ""), app.client_secret):
            return _attio_error(401, "auth_error", "invalid_client", "Invalid client credentials.")
        if form.get("grant_type") != "authorization_code":
            return _attio_error(400, "invalid_request_error", "unsupported_grant_type",
                                'grant_type must be "authorization_code".')  # fmt: skip
        with self.lock:
            code = self.codes.pop(form.get("code", ""), None)
            if code is None or code.client_id != form["client_id"] or code.expires < time.monotonic():
                return _attio_error(400, "invalid_request_error", "invalid_grant", "Invalid or expired code.")
            if "redirect_uri" in form and form["redirect_uri"] != code.redirect_uri:
                return _attio_error(
                    400, "invalid_request_error", "invalid_grant", "redirect_uri does not match."
                )
            self.token_calls += 1
        return Response(
            200, {"access_token": self.issue(code.client_id, code.scopes, None), "token_type": "Bearer"}
        )

    def _self(self, req: Request, *, introspect: bool) -> Response:
        token = _bearer(req)
        info = None if token is None else self._token_info(token)
        if info is None:
            if introspect:
                return Response(200, {"active": False})
            return _attio_error(401, "auth_error", "invalid_token" if token else "missing_token",
                                "The access token is invalid, revoked or missing.")  # fmt: skip
        return Response(200, {
            "active": True,
            "scope": " ".join(info.scopes),
            "client_id": info.client_id or "api-token",
            "token_type": "Bearer",
            "exp": None if info.expires is None else int(info.expires),
            "iat": int(info.issued),
            "sub": self.workspace_id,
            "aud": info.client_id or "api-token",
            "iss": "attio.com",
            "authorized_by_workspace_member_id": self.member_id,
            "workspace_id": self.workspace_id,
            "workspace_name": "Fake Workspace",
            "workspace_slug": "fake-workspace",
            "workspace_logo_url": None,
        })  # fmt: skip

    def _view(self, hook: _Webhook, *, secret: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target_url": hook.target_url,
            "subscriptions": hook.subscriptions,
            "id": {"workspace_id": self.workspace_id, "webhook_id": hook.webhook_id},
            "status": hook.status,
            "created_at": hook.created_at,
        }
        if secret:
            out["secret"] = hook.secret
        return out

    def _webhooks(self, req: Request, path: str) -> Response:
        token = _bearer(req)
        info = None if token is None else self._token_info(token)
        if info is None:
            return _attio_error(401, "auth_error", "invalid_token" if token else "missing_token",
                                "The access token is invalid, revoked or missing.")  # fmt: skip
        m = req.method
        if m != "GET" and "webhook:read-write" not in info.scopes:
            return _attio_error(
                403, "auth_error", "missing_scopes", "This token lacks the webhook:read-write scope."
            )
        parts = path.split("/")
        with self.lock:
            if len(parts) == 3:
                if m == "GET":
                    return Response(200, {"data": [self._view(h) for h in self.webhooks.values()]})
                if m == "POST":
                    return self._create(req)
            elif len(parts) == 4:
                hook = self.webhooks.get(parts[3])
                if hook is None:
                    return _attio_error(404, "invalid_request_error", "not_found",
                                        f'Webhook with ID "{parts[3]}" not found.')  # fmt: skip
                if m == "GET":
                    return Response(200, {"data": self._view(hook)})
                if m == "DELETE":
                    del self.webhooks[hook.webhook_id]
                    return Response(200, {})
        return _attio_error(404, "invalid_request_error", "not_found", f"No route for {m} {req.path}")

    def _create(self, req: Request) -> Response:
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            body = None
        data = body.get("data") if isinstance(body, dict) else None
        target = data.get("target_url") if isinstance(data, dict) else None
        subs = data.get("subscriptions") if isinstance(data, dict) else None
        if (
            not isinstance(target, str)
            or not isinstance(subs, list)
            or not all(isinstance(s, dict) and isinstance(s.get("event_type"), str) for s in subs)
        ):
            return _attio_error(400, "invalid_request_error", "validation_type",
                                "Body must be {data: {target_url, subscriptions: [{event_type, filter}]}}.")  # fmt: skip
        scheme = urlsplit(target).scheme
        local = urlsplit(target).hostname in ("127.0.0.1", "localhost")
        if scheme != "https" and not (self.allow_http_targets and scheme == "http" and local):
            return _attio_error(
                400, "invalid_request_error", "validation_type", "target_url must be an HTTPS URL."
            )
        hook = _Webhook(
            str(uuid.uuid4()),
            target,
            [{"event_type": s["event_type"], "filter": s.get("filter")} for s in subs],
            secrets.token_hex(32),
            datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        )
        self.webhooks[hook.webhook_id] = hook
        return Response(200, {"data": self._view(hook, secret=True)})

    def active_webhooks(self) -> list[_Webhook]:
        with self.lock:
            return [h for h in self.webhooks.values() if h.status == "active"]

    def deliver(self, body: bytes, headers: Mapping[str, str]) -> bool:
        hooks = self.active_webhooks()
        if not hooks:
            return False  # none created through the API: the fake's own webhook_url / secret, if any
        try:
            payload = json.loads(body)
        except ValueError:
            return False
        events = payload.get("events") if isinstance(payload, dict) else None
        types = {e.get("event_type") for e in events or [] if isinstance(e, dict)}
        from crmindex.testing._server import Delivery  # the shared delivery record

        for hook in hooks:
            if not types & {s["event_type"] for s in hook.subscriptions}:
                continue
            out = json.dumps({**payload, "webhook_id": hook.webhook_id}, separators=(",", ":")).encode()
            sig = hmac.new(hook.secret.encode(), out, hashlib.sha256).hexdigest()
            d = Delivery(hook.target_url, {"Content-Type": "application/json", "Attio-Signature": sig,
                                           "X-Attio-Signature": sig}, out)  # fmt: skip
            if "Idempotency-Key" in headers:  # the message's key (crmindex.testing.attio.webhooks)
                d.headers["Idempotency-Key"] = headers["Idempotency-Key"]
            record = getattr(self.fake, "deliveries", None)
            if isinstance(record, list):
                record.append(d)
            if self.fake.emit == "send":
                try:
                    status = d.send()
                except requests.RequestException:
                    status = 0
                self.deliveries_sent.append((hook.webhook_id, status))
        return True
