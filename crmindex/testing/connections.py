"""For tests only: store a connection and its token without asking the CRM which account the token is for.

Production code connects with :func:`crmindex.crm.connections.connect_private_app` or the OAuth flow, where the
account id comes from the CRM. Tests often need many orgs against one fake, or an account id that matches seeded
webhooks; this helper registers the account id the test names (as an operator would vouch for it) and stores the
token sealed through the same SQL functions.
"""

from __future__ import annotations

import uuid
from typing import Any

from crmindex.crm.connections import (
    AuthKind,
    Connection,
    get_connection,
    register_connection,
    store_secret,
)
from crmindex.platform.db import Conn
from crmindex.platform.secrets import Secret, SecretBox


def connect_with_token(
    conn: Conn,
    box: SecretBox | None,
    org_id: uuid.UUID | str,
    source: str,
    token: str | Secret | None = "test-token",  # noqa: S107 - the fakes' default token
    *,
    account_id: str,
    base_url: str | None = None,
    settings: dict[str, Any] | None = None,
    webhook_secret: str | Secret | None = None,
    webhook_ref: str = "",
    auth_kind: AuthKind = "private_app",
) -> Connection:
    """Register ``account_id`` for the org (status active) and store ``token`` (kind private_app_token, or
    access_token for ``auth_kind="oauth"``) and ``webhook_secret`` sealed with ``box`` (default: the
    environment's key ring)."""
    if box is None and (token is not None or webhook_secret is not None):
        box = SecretBox.from_env()
    with conn.transaction():
        register_connection(conn, org_id, source, account_id, auth_kind=auth_kind, base_url=base_url,
                            settings=settings)  # fmt: skip
        if token is not None:
            kind = "private_app_token" if auth_kind == "private_app" else "access_token"
            assert box is not None
            store_secret(
                conn, box, org_id, source, kind, token if isinstance(token, Secret) else Secret(token)
            )
        if webhook_secret is not None:
            assert box is not None
            secret = webhook_secret if isinstance(webhook_secret, Secret) else Secret(webhook_secret)
            store_secret(conn, box, org_id, source, "webhook_secret", secret, ref=webhook_ref)
    return get_connection(conn, org_id, source)
