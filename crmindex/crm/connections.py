"""CRM connections: which HubSpot portal / Attio workspace an org has connected, how, and in what state.

Connecting is an operator path (role ``crm_worker``; the SQL functions refuse application sessions):

* :func:`connect_private_app` — a HubSpot private-app token or an Attio API token the operator hands over once;
* :func:`begin_oauth` / :func:`complete_oauth` — the OAuth install flow (:mod:`crmindex.crm.oauth`);
* :func:`disconnect` — forget the tokens (and delete the Attio webhook we registered).

The account id of a connection always comes from the CRM (HubSpot token introspection or account details, Attio
``/v2/self``), never from the caller: an org cannot claim another customer's portal. Tokens and webhook secrets
are stored sealed (:class:`crmindex.platform.secrets.SecretBox`) in ``crm.connection_secret``, which neither the
application role nor the webhook receiver can read. Every write goes through a SQL function of
``sql/crm/connections.sql``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from crmindex.crm.hosts import HostPolicy
from crmindex.crm.oauth import (
    Authorization,
    OAuthApp,
    OAuthError,
    OAuthProvider,
    TokenInfo,
    WebhookRegistrar,
    begin_authorization,
    finish_authorization,
)
from crmindex.crm.protocols import Source
from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.platform.db import Conn, translate_errors
from crmindex.platform.secrets import Secret, SecretBox, SecretError

log = logging.getLogger("crmindex.crm.connections")

AuthKind = Literal["oauth", "private_app"]
Status = Literal["active", "broken", "needs_reconnect"]
# jobs of a connection whose token the CRM rejected wait this long (released: no attempt spent), then one
# call probes whether the token works again
AUTH_RETRY_S = 60.0

_COLUMNS = (
    "org_id, crm_source, account_id, base_url, settings, auth_kind, status, status_reason, status_at, scopes, "
    "connected_at, auth_error, auth_failed_at"
)


class Connection(BaseModel):
    """A connection as stored (no secret: those live sealed in ``crm.connection_secret``)."""

    model_config = ConfigDict(frozen=True)

    org_id: uuid.UUID
    crm_source: Source
    account_id: str = Field(min_length=1, max_length=200)
    base_url: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    auth_kind: AuthKind | None = None
    status: Status = "needs_reconnect"
    status_reason: str | None = None
    status_at: datetime | None = None
    scopes: list[str] = Field(default_factory=list)
    connected_at: datetime | None = None
    auth_error: str | None = None
    auth_failed_at: datetime | None = None

    @property
    def usable(self) -> bool:
        return self.status == "active"


def _row(r: Sequence[Any]) -> Connection:
    return Connection(
        org_id=r[0],
        crm_source=r[1],
        account_id=r[2],
        base_url=r[3],
        settings=r[4] or {},
        auth_kind=r[5],
        status=r[6],
        status_reason=r[7],
        status_at=r[8],
        scopes=list(r[9] or []),
        connected_at=r[10],
        auth_error=r[11],
        auth_failed_at=r[12],
    )


def get_connection(conn: Conn, org_id: uuid.UUID | str, source: str) -> Connection:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM crm.connection WHERE org_id = %s AND crm_source = %s",
        (str(org_id), source),
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"org {org_id} has no {source} connection (run `crmindex connect {source} --org ...`)"
        )
    return _row(row)


def list_connections(conn: Conn, org_id: uuid.UUID | str | None = None) -> list[Connection]:
    org = None if org_id is None else str(org_id)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM crm.connection WHERE %s::uuid IS NULL OR org_id = %s "
        "ORDER BY org_id, crm_source",
        (org, org),
    ).fetchall()
    return [_row(r) for r in rows]


# -- primitives over the SQL functions ---------------------------------------------------------------------
def register_connection(
    conn: Conn,
    org_id: uuid.UUID | str,
    source: str,
    account_id: str,
    *,
    auth_kind: AuthKind,
    base_url: str | None = None,
    scopes: Iterable[str] = (),
    settings: dict[str, Any] | None = None,
) -> None:
    """Register the org's connection to ``account_id`` (status active). ``account_id`` must be what the CRM
    said the token belongs to: :func:`connect_private_app` and :func:`complete_oauth` do that."""
    with translate_errors():
        conn.execute(
            "SELECT crm.connection_register(%s, %s, %s, %s, %s, %s, %s)",
            (str(org_id), source, account_id, auth_kind, base_url, list(scopes),
             None if settings is None else Jsonb(settings)),
        )  # fmt: skip


def store_secret(
    conn: Conn,
    box: SecretBox,
    org_id: uuid.UUID | str,
    source: str,
    kind: str,
    secret: Secret,
    *,
    expires_at: datetime | None = None,
    ref: str = "",
) -> None:
    """Seal ``secret`` for (org, CRM, kind) and store it (replacing the previous one of that kind and ref)."""
    sealed = box.seal(secret, org_id=org_id, source=source, kind=kind)
    with translate_errors():
        conn.execute(
            "SELECT crm.connection_secret_put(%s, %s, %s, %s, %s, %s, %s)",
            (str(org_id), source, kind, sealed.key_id, sealed.ciphertext, expires_at, ref),
        )


def stored_secrets(
    conn: Conn, box: SecretBox, org_id: uuid.UUID | str, source: str, kinds: Sequence[str] | None = None
) -> list[tuple[str, str, Secret, datetime | None]]:
    """(kind, ref, secret, expires_at) of the connection's stored secrets (those that unseal)."""
    with translate_errors():
        rows = conn.execute(
            "SELECT kind, ref, key_id, ciphertext, expires_at FROM crm.connection_secret_get(%s, %s, %s)",
            (str(org_id), source, None if kinds is None else list(kinds)),
        ).fetchall()
    out: list[tuple[str, str, Secret, datetime | None]] = []
    for kind, ref, key_id, ct, exp in rows:
        try:
            out.append((str(kind), str(ref), box.unseal(str(key_id), bytes(ct), org_id=org_id, source=source,
                                                          kind=str(kind)), exp))  # fmt: skip
        except SecretError as exc:
            log.warning("a stored %s of org %s (%s) does not unseal: %s", kind, org_id, source, exc)
    return out


def set_status(
    conn: Conn, org_id: uuid.UUID | str, source: str, status: Status, reason: str | None = None
) -> bool:
    """Mark the connection active, broken or needs_reconnect, with the reason shown by ``crmindex status``."""
    with translate_errors():
        row = conn.execute(
            "SELECT crm.connection_set_status(%s, %s, %s, %s)", (str(org_id), source, status, reason)
        ).fetchone()
    return bool(row and row[0])


def remember_attio_object_ids(conn: Conn, org_id: uuid.UUID | str, object_ids: dict[str, str]) -> bool:
    """Merge Attio object id -> slug pairs (learned from fetched records) into the connection's
    ``settings.attio_object_ids``: Attio webhooks name objects by id only. True when something was added."""
    if not object_ids:
        return False
    with translate_errors():
        row = conn.execute(
            "SELECT crm.connection_remember_attio_object_ids(%s, %s)", (str(org_id), Jsonb(object_ids))
        ).fetchone()
    return bool(row and row[0])


def flag_auth_failure(conn: Conn, org_id: uuid.UUID | str, source: str, error: str) -> None:
    """The CRM rejected the connection's token (401/403), or a token could not be used: record why, so
    operators see it in ``status``.

    Workers release the connection's jobs (no attempt spent) instead of failing them; the flag clears on the
    next call the CRM accepts (:func:`clear_auth_failure`). ``error`` is a typed error's text (status, category,
    code, correlation id and the CRM's message), never a token.
    """
    conn.execute("SELECT crm.connection_flag_auth(%s, %s, %s)", (str(org_id), source, error))


def clear_auth_failure(conn: Conn, org_id: uuid.UUID | str, source: str) -> bool:
    """A call was accepted again: clear the flag (True when there was one)."""
    row = conn.execute("SELECT crm.connection_clear_auth(%s, %s)", (str(org_id), source)).fetchone()
    return bool(row and row[0])


def hold_account_jobs(
    conn: Conn, queue_table: str, org_id: uuid.UUID | str, source: str, note: str, *, kind: str | None = None
) -> int:
    """Push the account's waiting jobs of ``queue_table`` (a queue-core table; ``kind`` for ``crm.job``)
    ``AUTH_RETRY_S`` out, attempts untouched: no worker of any process sends them with a rejected token."""
    with translate_errors():
        row = conn.execute(
            "SELECT crm.queue_hold_account(%s, %s, %s, %s, %s, %s)",
            (str(org_id), queue_table, source, note, AUTH_RETRY_S, kind),
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# -- providers -----------------------------------------------------------------------------------------------
def oauth_provider(
    source: str,
    app: OAuthApp | None = None,
    *,
    api_base: str | None = None,
    oauth_base: str | None = None,
    authorize_url: str | None = None,
    hosts: HostPolicy | Iterable[str] | None = None,
) -> OAuthProvider:
    """The CRM's OAuth endpoints (its entry in :mod:`crmindex.crm.registry`). Bases default to the real hosts; a
    fake's (tests) must be allow-listed."""
    from crmindex.crm.registry import crm  # the registry's adapters use this module

    return crm(source).oauth_provider(
        app,
        api_base=api_base,
        oauth_base=oauth_base,
        authorize_url=authorize_url,
        hosts=HostPolicy.resolve(hosts),
    )


def _stored_base(provider: OAuthProvider) -> str | None:
    from crmindex.crm.registry import crm

    base = provider.api_base.rstrip("/")
    return None if base == crm(provider.source).api_base else base


def _check_account(source: str, info: TokenInfo, expect_account: str | None) -> None:
    from crmindex.crm.registry import crm

    if expect_account is not None and str(expect_account).strip() != info.account_id:
        what = crm(source).account_noun
        raise InvalidInputError(
            f"the token belongs to {source} {what} {info.account_id}, not {str(expect_account).strip()[:80]}: "
            "nothing was stored"
        )


def _check_scopes(provider: OAuthProvider, scopes: Sequence[str]) -> None:
    if not scopes:  # not reported (HubSpot private-app tokens): the first call will tell
        return
    missing = [s for s in provider.scopes if s not in scopes and s != "oauth"]
    if missing:
        raise InvalidInputError(
            f"the {provider.source} token lacks the scopes crmindex needs: {', '.join(missing)}; nothing was stored"
        )


def _register_webhook(
    conn: Conn, box: SecretBox, provider: OAuthProvider, org: uuid.UUID, token: Secret, webhook_url: str
) -> str:
    """A CRM that registers webhooks through its API (Attio): create the account's webhook to ``webhook_url`` and
    store its secret (ref = webhook id); webhooks this org registered before are deleted. The new webhook id."""
    if not isinstance(provider, WebhookRegistrar):
        raise InvalidInputError(
            f"{provider.source} webhooks are not registered through its API (HubSpot: app settings)"
        )
    source = provider.source
    old = [ref for kind, ref, _, _ in stored_secrets(conn, box, org, source, ["webhook_secret"]) if ref]
    hook = provider.create_webhook(token, webhook_url)
    assert hook.secret is not None
    try:
        store_secret(conn, box, org, source, "webhook_secret", hook.secret, ref=hook.webhook_id)
    except Exception:
        provider.delete_webhook(token, hook.webhook_id)
        raise
    for ref in old:
        if ref != hook.webhook_id:
            try:
                provider.delete_webhook(token, ref)
            except OAuthError as exc:
                log.warning("could not delete the previous %s webhook %s: %s", source, ref, exc)
            with translate_errors():
                conn.execute(
                    "SELECT crm.connection_secret_delete(%s, %s, 'webhook_secret', %s)",
                    (str(org), source, ref),
                )
    return hook.webhook_id


# -- the operator API --------------------------------------------------------------------------------------
def connect_private_app(
    conn: Conn,
    box: SecretBox,
    org_id: uuid.UUID | str,
    source: str,
    token: Secret,
    *,
    base_url: str | None = None,
    hosts: HostPolicy | Iterable[str] | None = None,
    expect_account: str | None = None,
    webhook_secret: Secret | None = None,
    webhook_url: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Connection:
    """Connect with a HubSpot private-app token or an Attio API token: the CRM says which account it belongs
    to (``expect_account``, when given, must match), then the token is stored sealed.

    ``webhook_secret``: the HubSpot private app's client secret (signs its webhooks), stored sealed.
    ``webhook_url`` (Attio): register the workspace's webhook to this URL and store its secret sealed.
    """
    org = uuid.UUID(str(org_id))
    if not isinstance(token, Secret) or not token.reveal().strip():
        raise InvalidInputError("a token is required (a Secret, read once from the operator's environment)")
    provider = oauth_provider(source, api_base=base_url, hosts=hosts)
    info = provider.account_of(token)
    _check_account(source, info, expect_account)
    _check_scopes(provider, info.scopes)
    with conn.transaction():
        register_connection(conn, org, source, info.account_id, auth_kind="private_app",
                            base_url=_stored_base(provider), scopes=info.scopes, settings=settings)  # fmt: skip
        with translate_errors():
            conn.execute("SELECT crm.connection_secret_delete(%s, %s, 'access_token')", (str(org), source))
            conn.execute("SELECT crm.connection_secret_delete(%s, %s, 'refresh_token')", (str(org), source))
        store_secret(conn, box, org, source, "private_app_token", token, expires_at=info.expires_at)
        if webhook_secret is not None and webhook_secret.reveal():
            store_secret(conn, box, org, source, "webhook_secret", webhook_secret)
    if webhook_url:
        _register_webhook(conn, box, provider, org, token, webhook_url)
    log.info("connected %s account %s to org %s (private app token)", source, info.account_id, org)
    return get_connection(conn, org, source)


def begin_oauth(
    conn: Conn, box: SecretBox, provider: OAuthProvider, org_id: uuid.UUID | str, redirect_uri: str
) -> Authorization:
    """Start the OAuth install for ``org_id``: send the user to the returned ``url``."""
    return begin_authorization(conn, box, provider, org_id, redirect_uri)


def complete_oauth(
    conn: Conn,
    box: SecretBox,
    provider: OAuthProvider,
    *,
    code: Secret,
    state: Secret,
    expect_account: str | None = None,
    expect_org: uuid.UUID | str | None = None,
    webhook_url: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Connection:
    """Finish the OAuth install from the redirect's ``code`` and ``state``: exchange the code, ask the CRM which
    account the token belongs to, store the tokens sealed (Attio: and register the webhook to ``webhook_url``)."""
    org, grant = finish_authorization(conn, box, provider, state=state, code=code, expect_org=expect_org)
    info = provider.token_info(grant.access_token)
    if grant.account_id is not None and grant.account_id != info.account_id:
        raise OAuthError(
            "the token endpoint and the token info name different accounts", source=provider.source
        )
    _check_account(provider.source, info, expect_account)
    scopes = info.scopes or grant.scopes
    _check_scopes(provider, scopes)
    with conn.transaction():
        register_connection(conn, org, provider.source, info.account_id, auth_kind="oauth",
                            base_url=_stored_base(provider), scopes=scopes, settings=settings)  # fmt: skip
        with translate_errors():
            conn.execute(
                "SELECT crm.connection_secret_delete(%s, %s, 'private_app_token')",
                (str(org), provider.source),
            )
        store_secret(conn, box, org, provider.source, "access_token", grant.access_token,
                     expires_at=grant.expires_at or info.expires_at)  # fmt: skip
        if grant.refresh_token is not None:
            store_secret(conn, box, org, provider.source, "refresh_token", grant.refresh_token)
        else:
            with translate_errors():
                conn.execute(
                    "SELECT crm.connection_secret_delete(%s, %s, 'refresh_token')",
                    (str(org), provider.source),
                )
    if webhook_url:
        _register_webhook(conn, box, provider, org, grant.access_token, webhook_url)
    log.info("connected %s account %s to org %s (OAuth)", provider.source, info.account_id, org)
    return get_connection(conn, org, provider.source)


def disconnect(
    conn: Conn,
    box: SecretBox,
    org_id: uuid.UUID | str,
    source: str,
    *,
    provider: OAuthProvider | None = None,
) -> bool:
    """Remove the connection and its secrets (the account may then be connected again, by any org). With the
    ``provider`` of a CRM that registers webhooks through its API (Attio), the webhooks this org registered are
    deleted first (best effort)."""
    org = uuid.UUID(str(org_id))
    if isinstance(provider, WebhookRegistrar) and provider.source == source:
        secrets = stored_secrets(conn, box, org, source)
        token = next((s for k, _, s, _ in secrets if k in ("access_token", "private_app_token")), None)
        for kind, ref, _, _ in secrets:
            if kind == "webhook_secret" and ref and token is not None:
                try:
                    provider.delete_webhook(token, ref)
                except OAuthError as exc:
                    log.warning("could not delete the %s webhook %s: %s", source, ref, exc)
    with translate_errors():
        row = conn.execute("SELECT crm.connection_disconnect(%s, %s)", (str(org), source)).fetchone()
    return bool(row and row[0])


# -- webhook routing (the receiver) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookRoute:
    """Where a delivery for an account goes, and the stored secrets that may have signed it."""

    org_id: str
    status: str
    auth_kind: str | None
    secrets: list[tuple[str, Secret]]  # (ref, secret): ref '' or the Attio webhook id


def route_webhook(conn: Conn, box: SecretBox | None, source: str, account_id: str) -> WebhookRoute | None:
    """The org of ``account_id`` and its unsealed webhook secrets (``crm.webhook_route``); None when no org
    connected that account. With ``box`` None the secrets are left out."""
    with translate_errors():
        rows = conn.execute(
            "SELECT org_id, status, auth_kind, secret_ref, key_id, ciphertext FROM crm.webhook_route(%s, %s)",
            (source, account_id),
        ).fetchall()
    if not rows:
        return None
    org = str(rows[0][0])
    secrets: list[tuple[str, Secret]] = []
    for _, _, _, ref, key_id, ct in rows:
        if box is None or key_id is None or ct is None:
            continue
        try:
            secrets.append(
                (
                    str(ref),
                    box.unseal(str(key_id), bytes(ct), org_id=org, source=source, kind="webhook_secret"),
                )
            )
        except SecretError as exc:
            log.warning("a webhook secret of org %s (%s) does not unseal: %s", org, source, exc)
    return WebhookRoute(org, str(rows[0][1]), None if rows[0][2] is None else str(rows[0][2]), secrets)
