"""``crmindex status``: what an operator wants to know about each org, in one typed object."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from crmindex.platform.db import Conn, translate_errors

QUEUES = ("crm.writeback_queue", "crm.webhook_inbox", "crm.job")


class QueueHealth(BaseModel):
    queue: str
    by_status: dict[str, int]
    oldest_pending_age_s: float | None
    dead_letters: list[dict[str, Any]]


class LimiterState(BaseModel):
    crm_source: str
    limit_class: str
    permits: int
    per_seconds: float
    backlog_s: float
    penalties: int
    penalized_until: datetime | None


class OrgStatus(BaseModel):
    org_id: uuid.UUID
    name: str
    connections: list[dict[str, Any]]
    contacts_indexed: int
    contacts_materialized: int
    contacts_deleted: int
    companies_indexed: int
    companies_materialized: int
    deals_indexed: int
    last_webhook_at: datetime | None
    sync: dict[str, Any]
    queues: list[QueueHealth]
    limiters: list[LimiterState]


def terminal_text(value: object) -> str:
    """``value`` as text that is safe to print on a terminal: every character that is not printable (ESC and
    the other C0/C1 controls, CR, LF, DEL, bidirectional overrides such as U+202E, zero-width and other format
    characters, unpaired surrogates) is shown escaped (``\\x1b``, ``\\u202e``). CRM data (names, titles, the
    CRM's error texts) and echoed arguments can then neither clear the screen, set the window title, nor
    reorder or hide what is shown, nor break a line in two."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape", "backslashreplace").decode()
        for ch in str(value)
    )


def list_orgs(conn: Conn) -> list[uuid.UUID]:
    return [
        uuid.UUID(str(r[0])) for r in conn.execute("SELECT org_id FROM crm.org ORDER BY created_at, org_id")
    ]


def org_status(conn: Conn, org_id: uuid.UUID | str) -> OrgStatus:
    org = str(org_id)
    with translate_errors():
        stats = conn.execute("SELECT * FROM crm.org_stats(%s)", (org,)).fetchone()
    assert stats is not None
    name_row = conn.execute("SELECT name FROM crm.org WHERE org_id = %s", (org,)).fetchone()
    connections = [
        {
            "crm_source": r[0],
            "account_id": r[1],
            "base_url": r[2],
            "auth_error": r[3],
            "auth_failed_at": r[4],
            "auth_kind": r[5],
            "status": r[6],
            "status_reason": r[7],
            "status_at": r[8],
        }
        for r in conn.execute(
            "SELECT crm_source, account_id, base_url, auth_error, auth_failed_at, auth_kind, status, status_reason, "
            "status_at FROM crm.connection WHERE org_id = %s ORDER BY 1",
            (org,),
        )
    ]
    # an application session (crm_app) reads only what row-level security and its grants show it: not the
    # webhook inbox nor the rate limiter's rows (sql/platform/grants.sql)
    readable = {
        str(r[0]): bool(r[1])
        for r in conn.execute(
            "SELECT t, has_table_privilege(t, 'SELECT') FROM unnest(%s::text[]) AS t",
            ([*QUEUES, "crm.rate_limit"],),
        )
    }
    queues: list[QueueHealth] = []
    for q in (q for q in QUEUES if readable[q]):
        rows = conn.execute(
            "SELECT status, jobs, oldest_age FROM crm.queue_stats(%s, %s)", (q, org)
        ).fetchall()
        by_status = {str(r[0]): int(r[1]) for r in rows}
        pending_age = [r[2] for r in rows if r[0] in ("pending", "failed") and isinstance(r[2], timedelta)]
        dead = conn.execute(
            f"SELECT id, last_error, updated_at FROM {q} WHERE org_id = %s AND status = 'dead_letter' "
            "ORDER BY updated_at DESC LIMIT 5",
            (org,),
        ).fetchall()
        queues.append(
            QueueHealth(
                queue=q,
                by_status=by_status,
                oldest_pending_age_s=max(a.total_seconds() for a in pending_age) if pending_age else None,
                dead_letters=[{"id": int(d[0]), "last_error": d[1], "at": d[2]} for d in dead],
            )
        )
    limiter_rows = (
        conn.execute(
            "SELECT crm_source, limit_class, permits, per_seconds, "
            # tat is '-infinity' until the first reservation (configure/penalize create the row)
            "greatest(0, extract(epoch FROM greatest(tat, now()) - clock_timestamp())), penalties, "
            "penalized_until "
            "FROM crm.rate_limit WHERE org_id = %s ORDER BY 1, 2",
            (org,),
        ).fetchall()
        if readable["crm.rate_limit"]
        else []
    )
    limiters = [
        LimiterState(
            crm_source=r[0],
            limit_class=r[1],
            permits=r[2],
            per_seconds=r[3],
            backlog_s=float(r[4]),
            penalties=r[5],
            penalized_until=r[6],
        )
        for r in limiter_rows
    ]
    return OrgStatus(
        org_id=uuid.UUID(org),
        name=str(name_row[0]) if name_row else "",
        connections=connections,
        contacts_indexed=stats[0],
        contacts_materialized=stats[1],
        contacts_deleted=stats[2],
        companies_indexed=stats[3],
        companies_materialized=stats[4],
        deals_indexed=stats[5],
        last_webhook_at=stats[10],
        sync=stats[11] or {},
        queues=queues,
        limiters=limiters,
    )


def render(status: OrgStatus) -> str:
    """A readable block for the terminal (CRM-provided text escaped: :func:`terminal_text`)."""
    lines = [f"org {status.org_id} {status.name}".rstrip()]
    for c in status.connections:
        lines.append(
            f"  connection   {c['crm_source']} account {c['account_id']}"
            + (f" ({c['auth_kind']})" if c.get("auth_kind") else "")
            + (
                f", {str(c['status']).upper()} since {c['status_at']}: {c['status_reason'] or 'no reason given'}"
                if c.get("status") and c["status"] != "active"
                else ""
            )
            + (
                f", token rejected since {c['auth_failed_at']}: {c['auth_error']}"
                if c.get("auth_error")
                else ""
            )
        )
    lines.append(
        f"  contacts     {status.contacts_indexed:,} indexed, {status.contacts_materialized:,} materialized, "
        f"{status.contacts_deleted:,} deleted"
    )
    lines.append(
        f"  companies    {status.companies_indexed:,} indexed, {status.companies_materialized:,} materialized"
    )
    lines.append(f"  deals        {status.deals_indexed:,} indexed")
    lines.append(f"  last webhook {status.last_webhook_at or 'never'}")
    for key, s in sorted(status.sync.items()):
        lines.append(
            f"  sync {key:<24} {s.get('status')}, {s.get('records', 0):,} records in {s.get('pages', 0):,} pages"
            + (f", error: {s['last_error']}" if s.get("last_error") else "")
        )
    for q in status.queues:
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(q.by_status.items())) or "empty"
        age = f", oldest waiting {q.oldest_pending_age_s:.0f}s" if q.oldest_pending_age_s is not None else ""
        lines.append(f"  {q.queue:<20} {counts}{age}")
        for d in q.dead_letters:
            lines.append(f"    dead #{d['id']}: {str(d['last_error'])[:100]}")
    for lim in status.limiters:
        lines.append(
            f"  limit {lim.crm_source}:{lim.limit_class:<8} {lim.permits}/{lim.per_seconds:g}s, "
            f"backlog {lim.backlog_s:.1f}s, 429s seen {lim.penalties}"
        )
    return "\n".join(terminal_text(line) for line in lines)
