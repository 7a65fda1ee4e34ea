"""What the tenancy suite shares: orgs A and B seeded into every table, what A might know of B (``Facts``), the
catalog of schema ``crm``, B's digest (``snapshot``), the leak check (``assert_nothing_of_b``) and ``attempt`` (one
statement as crm_app in a binding mode, rolled back)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from crmindex.index.writes import (
    CompanyRow,
    ContactRow,
    DealRow,
    ensure_org,
    upsert_companies,
    upsert_contacts,
    upsert_deals,
)
from crmindex.platform.queue import enqueue_job
from crmindex.records.materialize import activate_by_email
from crmindex.testing.connections import connect_with_token
from crmindex.writeback.enqueue import create_contact, update_contact
from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B

Conn = psycopg.Connection[Any]

SECRET = {A: "axsecreta", B: "qxsecretq"}  # in every org's stored data, never in an attacker's input
ID_BASE_B = 900_000_001  # B's identity ids start here: a B id in any result is unmistakable
PORTAL = {A: "4100", B: "4900"}
PREFIX = {A: "1", B: "9"}  # CRM record ids (numeric, as HubSpot's)
DOMAIN = {A: "acme.com", B: "zenith.io"}
COMPANY = {A: "Acme", B: "Zenith"}

# B's strings an attacker in A might try as references, text and filters (functions and Python layer)
B_EMAIL, B_DOMAIN, B_PORTAL = "stan@zenith.io", DOMAIN[B], PORTAL[B]
SEARCH_FILTERS = [
    {"email": B_EMAIL},
    {"email_domain": B_DOMAIN},
    {"domain": B_DOMAIN},
    {"company_domain": B_DOMAIN},
    {"company": COMPANY[B]},
    {"company": "x') OR TRUE --"},  # quoting attempt
    {"industry": "BANKING", "company_domain": B_DOMAIN},
]
COMPANY_FILTERS = [{"domain": B_DOMAIN}, {"company_domain": B_DOMAIN}, {"company": COMPANY[B]}]
DEAL_FILTERS = [{"company_domain": B_DOMAIN}, {"company": COMPANY[B]}, {"owner": "x') OR TRUE --"}]


# ------------------------------------------------------------------------------------------------- seeding


def seed_org(conn: Conn, org: uuid.UUID) -> None:
    s, p, dom = SECRET[org], PREFIX[org], DOMAIN[org]
    ensure_org(conn, org, f"Org {s}")
    for source, account in (("hubspot", PORTAL[org]), ("attio", f"ws-{PORTAL[org]}")):
        connect_with_token(conn, None, org, source, None, account_id=account, base_url=f"http://{s}.example",
                           settings={"note": s})  # fmt: skip
    # the CRM vocabulary's refresh state (freshness/metadata.sql), fresh: the writes below ask for no refresh
    conn.execute(
        "INSERT INTO crm.crm_metadata_state (org_id, crm_source, refreshed_at, requested_at, last_error) "
        "VALUES (%s, 'hubspot', now(), now(), %s)",
        (org, f"error {s}"),
    )
    upsert_companies(
        conn,
        org,
        "hubspot",
        [
            CompanyRow(
                crm_record_id=f"{p}01", name=f"{COMPANY[org]} Corp", domain=dom, industry="BANKING", city=s
            ),
            CompanyRow(crm_record_id=f"{p}02", name=f"{COMPANY[org]} Labs", domain=f"labs.{dom}", country=s),
        ],
    )
    upsert_contacts(
        conn,
        org,
        "hubspot",
        [
            ContactRow(
                crm_record_id=f"{p}{i}",
                first_name=first,
                last_name=f"Lee{s}",
                email=f"{first.lower()}@{dom}",
                phone=f"+1 555 {s}",
                company_name=f"{COMPANY[org]} Corp",
                company_crm_id=f"{p}01",
                job_title=f"VP of Sales {s}",
                lifecycle_stage="lead",
                crm_updated_at="2025-01-01T00:00:00Z",
            )
            for i, first in ((1, "Stan"), (2, "Jane"), (3, "Omar"))
        ],
    )
    upsert_deals(
        conn,
        org,
        "hubspot",
        [
            DealRow(
                crm_record_id=f"{p}d1",
                name=f"Deal {s}",
                stage="qualifiedtobuy",
                amount=54321,
                company_crm_id=f"{p}01",
                contact_crm_ids=[f"{p}1", f"{p}2"],
            )
        ],
    )
    conn.execute("SELECT crm.rate_limit_reserve(%s, 'hubspot', 'general')", (org,))
    conn.execute("SELECT crm.rate_limit_penalize(%s, 'hubspot', 'search', 5)", (org,))
    for i in range(4):
        enqueue_job(conn, org, "refetch", {"secret": s}, source="hubspot", dedupe_key=f"{p}{i}")
        conn.execute(
            "SELECT crm.webhook_accept(%s, 'hubspot', %s, %s, %s, 1)",
            (
                org,
                PORTAL[org],
                json.dumps([{"objectId": int(f"{p}{i}"), "secret": s}]),
                json.dumps({"sig": s}),
            ),
        )
    for first, field in (("stan", "lifecycle_stage"), ("jane", "lifecycle_stage"), ("omar", "lead_status")):
        update_contact(
            conn, org, f"{first}@{dom}", {field: "customer" if field == "lifecycle_stage" else "OPEN"}
        )
    create_contact(conn, org, "hubspot", {"email": f"new@{dom}", "first_name": "New", "last_name": s})
    conn.execute(
        "SELECT crm.materialize_contact_write(%s, 'hubspot', %s, %s, %s, now())",
        (org, f"{p}1", json.dumps({"first_name": "Stan", "last_name": f"Lee{s}"}), json.dumps({"secret": s})),
    )
    conn.execute(
        "SELECT crm.materialize_company_write(%s, 'hubspot', %s, %s, %s, now())",
        (
            org,
            f"{p}01",
            json.dumps({"name": f"{COMPANY[org]} Corp", "domain": dom}),
            json.dumps({"secret": s}),
        ),
    )
    conn.execute("UPDATE crm.contact_record SET notes = %s WHERE org_id = %s", (s, org))
    activate_by_email(conn, None, org, f"walkin@{dom}", f"Walk {s}", actor=s)
    conn.execute("SELECT crm.sync_checkpoint(%s, 'hubspot', 'contacts', %s, 3, FALSE)", (org, f"cursor-{s}"))
    conn.execute(
        "INSERT INTO crm.crm_owner (org_id, crm_source, owner_id, first_name, email) "
        "VALUES (%s, 'hubspot', %s, %s, %s)",
        (org, f"own-{s}", f"Owner{s}", f"owner-{s}@{s}.example"),
    )
    conn.execute(
        "INSERT INTO crm.crm_pipeline_stage (org_id, crm_source, object_type, pipeline_id, stage_id, stage_label) "
        "VALUES (%s, 'hubspot', 'deals', 'default', %s, %s)",
        (org, f"stage-{s}", f"Stage {s}"),
    )
    lists = [{"list_id": f"list-{s}", "name": f"Pipeline {s}", "parent_object": "companies",
              "stage_attribute": "stage"}]  # fmt: skip
    entries = [
        {"list_id": f"list-{s}", "entry_id": f"entry-{s}", "parent_object": "companies", "parent_record_id": f"{p}01",
         "stage_id": f"stage-{s}", "stage_label": f"Stage {s}", "crm_updated_at": "2024-01-01T00:00:00Z"}
    ]  # fmt: skip
    conn.execute("SELECT crm.lists_sync(%s, 'attio', %s)", (org, json.dumps(lists)))
    conn.execute("SELECT crm.list_entries_upsert(%s, 'attio', %s)", (org, json.dumps(entries)))
    _seed_hidden_tables(conn, org)
    # an old soft-deleted contact (what purge_deleted removes)
    upsert_contacts(
        conn,
        org,
        "hubspot",
        [ContactRow(crm_record_id=f"{p}4", first_name="Old", crm_updated_at="2019-01-01")],
    )
    conn.execute(
        "SELECT * FROM crm.apply_deletions(%s, 'hubspot', 'crm.contact_index', %s)",
        (org, json.dumps([{"crm_record_id": f"{p}4", "occurred_at": "2020-01-01T00:00:00Z"}])),
    )
    # stale derived values: a function that recomputes them for the wrong org would change them
    conn.execute(
        "UPDATE crm.contact_index SET has_active_deal = FALSE, deal_stage = NULL, deal_value = NULL "
        "WHERE org_id = %s AND crm_record_id = %s",
        (org, f"{p}1"),
    )
    conn.execute("UPDATE crm.company_index SET industry_groups = '{}' WHERE org_id = %s", (org,))
    # each queue: one job running under an expired lease (a token to attack), one dead letter (to requeue),
    # one completed long ago (to purge), the rest pending
    for queue in QUEUES:
        conn.execute("SELECT * FROM crm.queue_claim(%s, 'seed', 1, 0.001, %s)", (queue, org))
        for status, pick in (("dead_letter", "max"), ("completed", "min")):
            conn.execute(
                f"UPDATE {queue} SET status = %s, last_error = %s, completed_at = now() - interval '30 days' "
                f"WHERE org_id = %s AND id = (SELECT {pick}(id) FROM {queue} WHERE org_id = %s AND status = 'pending')",
                (status, s, org, org),
            )


def _seed_hidden_tables(conn: Conn, org: uuid.UUID) -> None:
    """Rows in the tables crm_app may not read at all (sealed secrets, OAuth state, webhook replay keys), as the
    owner: opaque bytes carrying the org's marker, so that any leak of them shows."""
    s = SECRET[org].encode()
    if conn.execute("SELECT to_regclass('crm.connection_secret')").fetchone() != (None,):
        conn.execute(
            "INSERT INTO crm.connection_secret (org_id, crm_source, kind, key_id, ciphertext) "
            "VALUES (%s, 'hubspot', 'webhook_secret', 'k1', %s) ON CONFLICT DO NOTHING",
            (org, s * 4),
        )
    if conn.execute("SELECT to_regclass('crm.oauth_state')").fetchone() != (None,):
        conn.execute(
            "INSERT INTO crm.oauth_state (org_id, state_hash, crm_source, redirect_uri, expires_at) "
            "VALUES (%s, %s, 'hubspot', %s, now() + interval '1 hour') ON CONFLICT DO NOTHING",
            (org, (s * 4)[:32], f"https://{s.decode()}.example/cb"),
        )
    if conn.execute("SELECT to_regclass('crm.webhook_event_key')").fetchone() != (None,):
        conn.execute(
            "INSERT INTO crm.webhook_event_key (org_id, crm_source, event_key, expires_at) "
            "VALUES (%s, 'hubspot', %s, now() + interval '1 day') ON CONFLICT DO NOTHING",
            (org, (s * 4)[:32]),
        )


QUEUES = ("crm.job", "crm.webhook_inbox", "crm.writeback_queue")


def identity_tables(conn: Conn) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT a.attrelid::regclass::text FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = 'crm'::regnamespace AND a.attname = 'id' AND a.attidentity <> ''"
        )
    ]


@dataclass(frozen=True)
class Facts:
    """What an attacker in org A might know or guess of org B (read as superuser after seeding)."""

    ids: frozenset[int]  # every identity id of B's rows, all tables
    uuids: frozenset[str]  # tier-2 record ids and lease tokens of B
    contact_ids: tuple[int, ...]
    record_id: str  # a tier-2 contact record of B
    running: dict[str, tuple[int, str]]  # queue -> (id, lease token) of B's running job
    dead: dict[str, int]  # queue -> id of B's dead letter


def read_facts(conn: Conn) -> Facts:
    ids: set[int] = set()
    for table in identity_tables(conn):
        ids |= {int(r[0]) for r in conn.execute(f"SELECT id FROM {table} WHERE org_id = %s", (B,))}
    uuids = {
        str(r[0])
        for r in conn.execute(
            "SELECT id FROM crm.contact_record WHERE org_id = %(b)s UNION ALL "
            "SELECT id FROM crm.company_record WHERE org_id = %(b)s UNION ALL "
            "SELECT materialized_contact_id FROM crm.contact_index WHERE org_id = %(b)s "
            "AND materialized_contact_id IS NOT NULL",
            {"b": B},
        )
    }
    running: dict[str, tuple[int, str]] = {}
    dead: dict[str, int] = {}
    for q in QUEUES:
        row = conn.execute(
            f"SELECT id, lease_token FROM {q} WHERE org_id = %s AND status = 'processing'", (B,)
        ).fetchone()
        assert row is not None
        running[q] = (int(row[0]), str(row[1]))
        uuids.add(str(row[1]))
        drow = conn.execute(
            f"SELECT id FROM {q} WHERE org_id = %s AND status = 'dead_letter'", (B,)
        ).fetchone()
        assert drow is not None
        dead[q] = int(drow[0])
    contact_ids = tuple(
        int(r[0])
        for r in conn.execute("SELECT id FROM crm.contact_index WHERE org_id = %s ORDER BY id", (B,))
    )
    record = conn.execute(
        "SELECT id FROM crm.contact_record WHERE org_id = %s AND origin = 'crm'", (B,)
    ).fetchone()
    assert record is not None and min(ids) >= ID_BASE_B
    return Facts(frozenset(ids), frozenset(uuids), contact_ids, str(record[0]), running, dead)


# ------------------------------------------------------------------------------------------------ catalog


def crm_relations(conn: Conn) -> list[tuple[str, str, bool]]:
    """(name, relkind, has org_id) of every table and view of schema crm."""
    return [
        (str(r[0]), str(r[1]), bool(r[2]))
        for r in conn.execute(
            """
            SELECT c.oid::regclass::text, c.relkind,
                EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attname = 'org_id'
                    AND NOT a.attisdropped)
            FROM pg_class AS c
            WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
            ORDER BY 1
            """
        )
    ]


def org_tables(conn: Conn) -> list[str]:
    return [name for name, kind, has_org in crm_relations(conn) if has_org and kind in ("r", "p")]


def snapshot(conn: Conn) -> dict[str, str]:
    """A digest of B's rows in every org table and of every global table (run as superuser)."""
    parts = []
    for name, kind, has_org in crm_relations(conn):
        if kind not in ("r", "p"):
            continue
        where = f"WHERE t.org_id = '{B}'" if has_org else ""
        parts.append(
            f"SELECT '{name}', md5(coalesce(string_agg(to_jsonb(t)::text, ',' ORDER BY to_jsonb(t)::text), '')) "
            f"FROM {name} AS t {where}"
        )
    return {str(r[0]): str(r[1]) for r in conn.execute(" UNION ALL ".join(parts))}


def assert_nothing_of_b(value: object, facts: Facts, absent: tuple[str, ...] = (), what: str = "") -> None:
    """No B data in a result: not its org id, its secret marker, its record uuids or identity ids."""
    text = repr(value)
    for marker in (str(B), SECRET[B], *facts.uuids, *absent):
        assert marker not in text, f"{what}: leaks {marker!r}: {text[:600]}"
    leaked = {int(m) for m in re.findall(r"(?<!\d)9\d{8}(?!\d)", text)} & facts.ids
    assert not leaked, f"{what}: leaks B's ids {sorted(leaked)}: {text[:600]}"


# ------------------------------------------------------------------------------- sessions as the app role


Mode = str  # how the crm_app session is bound
MODES: dict[Mode, str | None] = {
    "bound_a": str(A),
    "unbound": None,
    "empty": "",
    "malformed": "not-a-uuid",
}


def bind(conn: Conn, mode: Mode) -> None:
    """SET ROLE crm_app, then bind the way crmindex.platform.db.bind_org does (set_config, session level)."""
    conn.execute("SET ROLE crm_app")
    value = MODES[mode]
    if value is not None:
        conn.execute("SELECT set_config('crm.org_id', %s, false)", (value,))


def attempt(conn: Conn, mode: Mode, sql: str, params: Sequence[object] = ()) -> tuple[object, dict[str, str]]:
    """Run one statement as crm_app in ``mode`` inside a transaction that is rolled back; returns the rows
    (or the error) and B's snapshot taken as superuser in the same transaction, after the statement."""
    with conn.transaction(force_rollback=True):
        bind(conn, mode)
        outcome: object
        try:
            with conn.transaction():
                cur = conn.execute(sql, params)
                outcome = cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            outcome = exc
        conn.execute("RESET ROLE")
        after = snapshot(conn)
    return outcome, after
