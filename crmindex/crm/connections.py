"""CRM connections: which HubSpot portal / Attio workspace an org has connected, and where its secrets are.

Secrets themselves are never stored; ``token_ref`` / ``webhook_secret_ref`` are references such as
``env:HUBSPOT_TOKEN`` (see :mod:`crmindex.platform.secrets`).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, field_validator

from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.platform.db import Conn, translate_errors

Source = Literal["hubspot", "attio"]
# jobs of a connection whose token the CRM rejected wait this long (released: no attempt spent), then one
# call probes whether the token works again
AUTH_RETRY_S = 60.0


class Connection(BaseModel):
    model_config = ConfigDict(frozen=True)

    org_id: uuid.UUID
    crm_source: Source
    account_id: str = Field(min_length=1, max_length=200)
    base_url: str | None = None
    token_ref: str | None = None
    webhook_secret_ref: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("token_ref", "webhook_secret_ref")
    @classmethod
    def _is_reference(cls, value: str | None) -> str | None:
        if value is None:
            return value
        for ref in value.split(","):
            kind, _, name = ref.strip().partition(":")
            if kind != "env" or not name.replace("_", "").isalnum():
                raise ValueError(
                    "secrets are given by reference, e.g. env:HUBSPOT_TOKEN (never the secret itself)"
                )
        return value


def save_connection(conn: Conn, connection: Connection) -> Connection:
    """Create or update the org's connection for that CRM (one per org and source)."""
    with translate_errors():
        conn.execute(
            """
            INSERT INTO crm.org (org_id) VALUES (%s) ON CONFLICT (org_id) DO NOTHING
            """,
            (connection.org_id,),
        )
        other = conn.execute(
            "SELECT org_id FROM crm.connection WHERE crm_source = %s AND account_id = %s AND org_id <> %s",
            (connection.crm_source, connection.account_id, connection.org_id),
        ).fetchone()
        if other is not None:
            raise InvalidInputError(
                f"{connection.crm_source} account {connection.account_id} is already connected to another org"
            )
        conn.execute(
            """
            INSERT INTO crm.connection (org_id, crm_source, account_id, base_url, token_ref, webhook_secret_ref, settings)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (org_id, crm_source) DO UPDATE SET
                account_id = excluded.account_id, base_url = excluded.base_url, token_ref = excluded.token_ref,
                webhook_secret_ref = excluded.webhook_secret_ref, settings = excluded.settings, updated_at = now()
            """,
            (
                connection.org_id,
                connection.crm_source,
                connection.account_id,
                connection.base_url,
                connection.token_ref,
                connection.webhook_secret_ref,
                Jsonb(connection.settings),
            ),
        )
    return connection


def get_connection(conn: Conn, org_id: uuid.UUID | str, source: str) -> Connection:
    row = conn.execute(
        "SELECT org_id, crm_source, account_id, base_url, token_ref, webhook_secret_ref, settings "
        "FROM crm.connection WHERE org_id = %s AND crm_source = %s",
        (str(org_id), source),
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"org {org_id} has no {source} connection (run `crmindex connect {source} --org ...`)"
        )
    return Connection(
        org_id=row[0],
        crm_source=row[1],
        account_id=row[2],
        base_url=row[3],
        token_ref=row[4],
        webhook_secret_ref=row[5],
        settings=row[6] or {},
    )


def list_connections(conn: Conn, org_id: uuid.UUID | str | None = None) -> list[Connection]:
    rows = conn.execute(
        "SELECT org_id, crm_source, account_id, base_url, token_ref, webhook_secret_ref, settings "
        "FROM crm.connection WHERE %s::uuid IS NULL OR org_id = %s ORDER BY org_id, crm_source",
        (None if org_id is None else str(org_id), None if org_id is None else str(org_id)),
    ).fetchall()
    return [
        Connection(
            org_id=r[0],
            crm_source=r[1],
            account_id=r[2],
            base_url=r[3],
            token_ref=r[4],
            webhook_secret_ref=r[5],
            settings=r[6] or {},
        )
        for r in rows
    ]


def remember_attio_object_ids(conn: Conn, org_id: uuid.UUID | str, object_ids: dict[str, str]) -> bool:
    """Merge Attio object id -> slug pairs (learned from fetched records) into the connection's
    ``settings.attio_object_ids``: Attio webhooks name objects by id only. True when something was added."""
    if not object_ids:
        return False
    with translate_errors():
        cur = conn.execute(
            "UPDATE crm.connection SET settings = jsonb_set(settings, '{attio_object_ids}', "
            "coalesce(settings -> 'attio_object_ids', '{}'::jsonb) || %s), updated_at = now() "
            "WHERE org_id = %s AND crm_source = 'attio' "
            "AND NOT coalesce(settings -> 'attio_object_ids', '{}'::jsonb) @> %s",
            (Jsonb(object_ids), str(org_id), Jsonb(object_ids)),
        )
    return cur.rowcount > 0


def flag_auth_failure(conn: Conn, org_id: uuid.UUID | str, source: str, error: str) -> None:
    """The CRM rejected the connection's token (401/403): record why, so operators see it in ``status``.

    Workers release the connection's jobs (no attempt spent) instead of failing them; the flag clears on the
    next call the CRM accepts (:func:`clear_auth_failure`). ``error`` comes from the CRM's error body, which
    never contains the token.
    """
    conn.execute(
        "UPDATE crm.connection SET auth_error = left(%s, 2000), auth_failed_at = coalesce(auth_failed_at, now()), "
        "updated_at = now() WHERE org_id = %s AND crm_source = %s",
        (error, str(org_id), source),
    )


def clear_auth_failure(conn: Conn, org_id: uuid.UUID | str, source: str) -> bool:
    """A call was accepted again: clear the flag (True when there was one)."""
    return (
        conn.execute(
            "UPDATE crm.connection SET auth_error = NULL, auth_failed_at = NULL, updated_at = now() "
            "WHERE org_id = %s AND crm_source = %s AND auth_error IS NOT NULL",
            (str(org_id), source),
        ).rowcount
        > 0
    )


def hold_account_jobs(
    conn: Conn, queue_table: str, org_id: uuid.UUID | str, source: str, note: str, *, kind: str | None = None
) -> int:
    """Push the account's waiting jobs of ``queue_table`` (a queue-core table; ``kind`` for ``crm.job``)
    ``AUTH_RETRY_S`` out, attempts untouched: no worker of any process sends them with a rejected token."""
    sql = (
        f"UPDATE {queue_table} SET next_retry_at = greatest(next_retry_at, clock_timestamp() "
        "+ make_interval(secs => %s)), last_error = %s, updated_at = now() "
        "WHERE org_id = %s AND crm_source = %s AND status IN ('pending', 'failed')"
    )
    params: tuple[object, ...] = (AUTH_RETRY_S, note[:4000], str(org_id), source)
    if kind is not None:
        sql, params = sql + " AND kind = %s", (*params, kind)
    return conn.execute(sql, params).rowcount
