"""Tier 2 on demand (the brief's Paths 2-4) against FakeHubSpot: every activation path logged, one fetch
under concurrency, gone-in-CRM, the materialization budget and its queue, batch reads, RLS, org stats and
the "All CRM Contacts" view, the Path 1 refresh of a materialized record and the documented host hook."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.adapters import HubSpotFetcher
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.errors import NotFoundError, OrgMismatchError
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.sync import HubSpotLister, run_sync
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.platform.db import bind_org, translate_errors
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.queue import Queue, Worker
from crmindex.records.materialize import (
    Materialized,
    activate_by_email,
    get_contact_record,
    materialize_contact,
    materialize_jobs_handler,
    materialize_many,
    record_enrichment,
    request_materialization,
)
from crmindex.testing import FakeHubSpot
from crmindex.testing.synthetic import SyntheticCRM
from tests.orgs import ORG, ORG_B

Conn = psycopg.Connection[tuple[object, ...]]
PORTAL = 62515
CONTACTS = 300
BATCH_READ = "/crm/v3/objects/contacts/batch/read"


def client_for(fake: FakeHubSpot) -> HubSpotClient:
    return HubSpotClient(fake.base_url, lambda: "test-token", None, retry=RetryPolicy.fast(max_attempts=4))


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False) as f:
        f.seed_from(SyntheticCRM(seed=23, contacts=CONTACTS))
        yield f


@pytest.fixture
def fetcher(fake: FakeHubSpot) -> Iterator[HubSpotFetcher]:
    client = client_for(fake)
    yield HubSpotFetcher(client)
    client.close()


def index_org(conn: Conn, org: uuid.UUID, fake: FakeHubSpot, account: int = PORTAL) -> None:
    # the connection row the operator path leaves (seeded as the owner: connecting is not under test here)
    conn.execute("INSERT INTO crm.org (org_id) VALUES (%s) ON CONFLICT DO NOTHING", (org,))
    conn.execute(
        "INSERT INTO crm.connection (org_id, crm_source, account_id) VALUES (%s, 'hubspot', %s)",
        (org, str(account)),
    )
    with client_for(fake) as client:
        run_sync(conn, org, HubSpotLister(client), progress=False)


@pytest.fixture
def org(db: Conn, fake: FakeHubSpot) -> Conn:
    """ORG with the fake's contacts synced into the index."""
    index_org(db, ORG, fake)
    fake.clear_log()
    return db


def indexed(db: Conn, n: int, org_id: uuid.UUID = ORG) -> list[tuple[int, str, str]]:
    """(index id, CRM id, email) of the first n live indexed contacts with an email, by CRM id."""
    rows = db.execute(
        "SELECT id, crm_record_id, email FROM crm.contact_index WHERE org_id = %s AND deleted_at IS NULL "
        "AND email IS NOT NULL ORDER BY crm_record_id::bigint LIMIT %s",
        (org_id, n),
    ).fetchall()
    assert len(rows) == n
    return [(int(str(r[0])), str(r[1]), str(r[2])) for r in rows]


def log_rows(db: Conn, org_id: uuid.UUID = ORG) -> list[dict[str, Any]]:
    cur = db.execute(
        "SELECT crm_record_id, record_id, reason, actor, outcome, detail FROM crm.activation_log "
        "WHERE org_id = %s ORDER BY id",
        (org_id,),
    )
    assert cur.description is not None
    names = [d.name for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def batch_reads(fake: FakeHubSpot) -> int:
    return len(fake.requests_to(BATCH_READ, "POST"))


def index_state(db: Conn, rid: str) -> tuple[Any, ...]:
    row = db.execute(
        "SELECT is_materialized, materialized_contact_id, deleted_at IS NOT NULL FROM crm.contact_index "
        "WHERE org_id = %s AND crm_source = 'hubspot' AND crm_record_id = %s",
        (ORG, rid),
    ).fetchone()
    assert row is not None
    return tuple(row)


def scalar(db: Conn, sql: str, *params: object) -> Any:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


# ------------------------------------------------------------------------------------ activation paths


@pytest.mark.parametrize("kind", ["email", "crm_id", "index_id"])
def test_copilot_reference_materializes_the_full_record(
    org: Conn, fake: FakeHubSpot, fetcher: HubSpotFetcher, kind: str
) -> None:
    index_id, rid, email = indexed(org, 1)[0]
    ref = {"email": email.upper(), "crm_id": rid, "index_id": f"#{index_id}"}[kind]
    res = materialize_contact(org, fetcher, ORG, ref, reason="copilot", actor="copilot-session-1")
    assert res.outcome == "materialized" and res.fetched and res.record is not None
    rec = res.record
    props = fake.properties("contacts", rid)
    assert (rec.crm_source, rec.crm_record_id, rec.origin) == ("hubspot", rid, "crm")
    assert rec.email == email and rec.first_name == props["firstname"] and rec.job_title == props["jobtitle"]
    assert rec.properties["email"] == props["email"] and len(rec.properties) >= 10  # every property fetched
    assert rec.fetched_at is not None
    assert index_state(org, rid) == (True, rec.id, False)
    assert batch_reads(fake) == 1
    assert log_rows(org) == [
        {
            "crm_record_id": rid,
            "record_id": rec.id,
            "reason": "copilot",
            "actor": "copilot-session-1",
            "outcome": "materialized",
            "detail": {},
        }
    ]
    # again within the freshness window: no CRM call, logged as fresh
    again = materialize_contact(org, fetcher, ORG, rid)
    assert again.outcome == "fresh" and not again.fetched and again.record is not None
    assert again.record.id == rec.id and batch_reads(fake) == 1
    assert [r["outcome"] for r in log_rows(org)] == ["materialized", "fresh"]


def test_unknown_reference_is_not_found(org: Conn, fetcher: HubSpotFetcher) -> None:
    with pytest.raises(NotFoundError):
        materialize_contact(org, fetcher, ORG, "nobody@nowhere.example")
    assert log_rows(org) == []


def test_meeting_booked_for_an_indexed_email_materializes(
    org: Conn, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    _, rid, email = indexed(org, 1)[0]
    res = activate_by_email(org, fetcher, ORG, f"  {email.upper()} ", "Whoever Booked")
    assert res.outcome == "materialized" and res.record is not None
    assert res.record.crm_record_id == rid and res.record.origin == "crm"
    assert index_state(org, rid)[0] is True
    assert [(r["reason"], r["outcome"], r["crm_record_id"]) for r in log_rows(org)] == [
        ("meeting_booked", "materialized", rid)
    ]
    assert scalar(org, "SELECT count(*) FROM crm.writeback_queue") == 0


def test_meeting_booked_for_an_unknown_email_creates_a_local_contact(
    org: Conn, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    res = activate_by_email(org, fetcher, ORG, "New.Person@Prospect.example", "Nina Newton")
    assert res.outcome == "local" and res.record is not None and res.job_id is None
    rec = res.record
    assert (rec.origin, rec.crm_source, rec.crm_record_id) == ("local", None, None)
    assert (rec.email, rec.first_name, rec.last_name) == ("new.person@prospect.example", "Nina", "Newton")
    assert batch_reads(fake) == 0 and scalar(org, "SELECT count(*) FROM crm.writeback_queue") == 0
    # booked again (now asking for a CRM create): the same local contact, plus one queued idempotent create
    again = activate_by_email(
        org, fetcher, ORG, "new.person@prospect.example", "Nina Newton", create_in_crm="hubspot"
    )
    assert again.outcome == "local" and again.record is not None and again.record.id == rec.id
    assert again.job_id is not None
    jobs = org.execute(
        "SELECT id, crm_source, entity_type, operation, crm_record_id, match_key, triggered_by, payload, status "
        "FROM crm.writeback_queue"
    ).fetchall()
    assert len(jobs) == 1
    job_id, source, entity, op, crm_id, match_key, by, payload, status = jobs[0]
    assert (job_id, source, entity, op, crm_id) == (again.job_id, "hubspot", "contact", "create", None)
    assert (match_key, by, status) == ("new.person@prospect.example", "automation", "pending")
    assert isinstance(payload, dict)
    assert payload["email"] == "new.person@prospect.example" and payload["firstname"] == "Nina"
    assert scalar(org, "SELECT count(*) FROM crm.contact_record WHERE org_id = %s", ORG) == 1
    logged = log_rows(org)
    assert [(r["reason"], r["outcome"], r["record_id"]) for r in logged] == [
        ("meeting_booked", "local", rec.id),
        ("meeting_booked", "local", rec.id),
    ]
    assert logged[0]["detail"] == {"email": "new.person@prospect.example", "crm_create_job": None}
    assert logged[1]["detail"] == {"email": "new.person@prospect.example", "crm_create_job": again.job_id}


def test_enrichment_materializes_first_then_stores_the_payload_and_queues_write_back(
    org: Conn, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    _, rid, email = indexed(org, 1)[0]
    payload = {"seniority": "vp", "headcount": 120, "linkedin": "https://linkedin.example/in/x"}
    rec = record_enrichment(
        org, fetcher, ORG, email, "apollo", payload, write_back={"job_title": "VP of Widgets"}, actor="enrich"
    )
    assert rec.crm_record_id == rid and index_state(org, rid)[0] is True
    assert rec.enrichment["apollo"]["data"] == payload
    fetched_at = datetime.fromisoformat(rec.enrichment["apollo"]["fetched_at"])
    assert fetched_at.tzinfo is not None
    # the enriched field is applied locally (index and tier 2) and queued for the CRM
    assert rec.job_title == "VP of Widgets"
    jobs = org.execute(
        "SELECT crm_record_id, operation, triggered_by, payload FROM crm.writeback_queue WHERE org_id = %s",
        (ORG,),
    ).fetchall()
    assert len(jobs) == 1
    assert jobs[0][:3] == (rid, "update", "enrichment") and jobs[0][3] == {"jobtitle": "VP of Widgets"}
    assert [(r["reason"], r["outcome"], r["actor"]) for r in log_rows(org)] == [
        ("enrichment", "materialized", "enrich")
    ]
    # a second provider adds to the same record without a second fetch
    rec2 = record_enrichment(org, fetcher, ORG, rid, "ai_ark", {"score": 0.9})
    assert set(rec2.enrichment) == {"apollo", "ai_ark"} and batch_reads(fake) == 1


def test_ops_table_reason_is_logged(org: Conn, fetcher: HubSpotFetcher) -> None:
    index_id, rid, _ = indexed(org, 1)[0]
    res = materialize_contact(org, fetcher, ORG, index_id, reason="ops_table", actor="table:all-crm-contacts")
    assert res.outcome == "materialized"
    assert [(r["reason"], r["actor"], r["crm_record_id"]) for r in log_rows(org)] == [
        ("ops_table", "table:all-crm-contacts", rid)
    ]


def test_webhook_change_to_a_materialized_contact_refreshes_tier_2(
    org: Conn, db_dsn: str, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    (_, rid, _), (_, other, _) = indexed(org, 2)
    res = materialize_contact(org, fetcher, ORG, rid)
    assert res.record is not None and res.record.job_title != "Chief Widget Officer"
    fake.update_property("contacts", rid, "jobtitle", "Chief Widget Officer")
    fake.update_property("contacts", other, "jobtitle", "Chief Widget Officer")  # not materialized
    occurred = int(time.time() * 1000)
    events = [
        {
            "eventId": 900 + i,
            "subscriptionId": 1,
            "portalId": PORTAL,
            "appId": 5,
            "occurredAt": occurred,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": int(cid),
            "propertyName": "jobtitle",
            "propertyValue": "Chief Widget Officer",
            "changeSource": "CRM_UI",
        }
        for i, cid in enumerate((rid, other))
    ]
    org.execute(
        "SELECT crm.webhook_accept(%s, 'hubspot', %s, %s, '{}', %s)",
        (ORG, str(PORTAL), json.dumps(events), len(events)),
    )
    assert Worker(db_dsn, INBOX, process_inbox).run_once() == 1
    # the index row changed from the event itself; tier 2 waits for the hydrate job (only the materialized one)
    hydrate = org.execute(
        "SELECT payload ->> 'crm_record_id' FROM crm.job WHERE kind = 'hydrate' AND status = 'pending'"
    ).fetchall()
    assert hydrate == [(rid,)]
    assert get_contact_record(org, ORG, res.record.id).job_title == res.record.job_title
    fake.clear_log()
    worker = Worker(db_dsn, Queue("crm.job"), hydrate_handler(lambda o, s: fetcher), kind="hydrate")
    assert worker.run_once() == 1
    assert batch_reads(fake) == 1
    refreshed = get_contact_record(org, ORG, res.record.id)
    assert refreshed.job_title == "Chief Widget Officer"
    assert refreshed.properties["jobtitle"] == "Chief Widget Officer"
    assert refreshed.fetched_at is not None and res.record.fetched_at is not None
    assert refreshed.fetched_at > res.record.fetched_at
    assert scalar(org, "SELECT count(*) FROM crm.contact_record WHERE org_id = %s", ORG) == 1
    assert scalar(org, "SELECT job_title FROM crm.contact_index WHERE crm_record_id = %s", other) == (
        "Chief Widget Officer"
    )


# ------------------------------------------------------------------------------------ concurrency, gone


def test_eight_concurrent_callers_make_one_fetch_and_one_row(
    org: Conn, db_dsn: str, fake: FakeHubSpot
) -> None:
    _, rid, _ = indexed(org, 1)[0]
    fake.set_faults(latency=0.1)  # the winner holds the record's lock across a real round trip
    barrier = threading.Barrier(8)
    results: list[Materialized] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def race() -> None:
        try:
            with psycopg.connect(db_dsn, autocommit=True) as conn, client_for(fake) as client:
                barrier.wait(10)
                res = materialize_contact(conn, HubSpotFetcher(client), ORG, rid, actor="racer")
            with lock:
                results.append(res)
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert batch_reads(fake) == 1
    assert sorted(r.outcome for r in results) == ["fresh"] * 7 + ["materialized"]
    assert len({r.record.id for r in results if r.record is not None}) == 1
    assert scalar(org, "SELECT count(*) FROM crm.contact_record WHERE org_id = %s", ORG) == 1
    assert sorted(r["outcome"] for r in log_rows(org)) == ["fresh"] * 7 + ["materialized"]


def test_contact_gone_from_the_crm_is_soft_deleted(
    org: Conn, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    (_, never, _), (_, was, _) = indexed(org, 2)
    fake.delete("contacts", never)
    res = materialize_contact(org, fetcher, ORG, never)
    assert res == Materialized(outcome="gone", fetched=True)
    assert index_state(org, never) == (False, None, True)
    assert scalar(org, "SELECT count(*) FROM crm.contact_record WHERE org_id = %s", ORG) == 0
    # materialized, then deleted in the CRM: the next (non-fresh) materialization soft-deletes both rows
    first = materialize_contact(org, fetcher, ORG, was)
    assert first.record is not None
    fake.delete("contacts", was)
    assert materialize_contact(org, fetcher, ORG, was, fresh_s=0).outcome == "gone"
    assert index_state(org, was)[2] is True
    assert scalar(org, "SELECT deleted_at IS NOT NULL FROM crm.contact_record WHERE id = %s", first.record.id)
    assert [(r["crm_record_id"], r["outcome"]) for r in log_rows(org)] == [
        (never, "gone"),
        (was, "materialized"),
        (was, "gone"),
    ]


def test_merged_away_contact_materializes_its_primary(
    org: Conn, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    (_, primary, _), (_, merged, _) = indexed(org, 2)
    fake.merge("contacts", primary, merged)
    res = materialize_contact(org, fetcher, ORG, merged)
    assert res.outcome == "materialized" and res.record is not None
    assert res.record.crm_record_id == primary
    assert index_state(org, primary)[:2] == (True, res.record.id)
    gone = org.execute(
        "SELECT deleted_at IS NOT NULL, merged_into FROM crm.contact_index WHERE org_id = %s AND crm_record_id = %s",
        (ORG, merged),
    ).fetchone()
    assert gone == (True, primary)
    assert [(r["crm_record_id"], r["detail"]) for r in log_rows(org)] == [(primary, {"merged_from": merged})]


# ------------------------------------------------------------------------------------ bulk and budget


def open_jobs(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, payload ->> 'crm_record_id', status, attempts, next_retry_at FROM crm.job "
        "WHERE kind = 'materialize' AND status NOT IN ('completed') ORDER BY id"
    ).fetchall()


def test_bulk_beyond_the_budget_is_queued_and_done_later_in_order(
    org: Conn, db_dsn: str, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    refs = [rid for _, rid, _ in indexed(org, 30)][::-1]  # an order that is not the ids' own
    budget = PgRateLimiter(db_dsn, ORG, "hubspot")
    try:
        budget.configure("materialize", 5, 1.0)  # 5 per second: a window's worth now, then ~5/s
        started = time.monotonic()
        counts = materialize_many(org, fetcher, ORG, refs, actor="bulk-user", budget=budget)
        assert counts == {"materialized": 5, "gone": 0, "queued": 25, "calls": 1}
        assert batch_reads(fake) == 1
        jobs = open_jobs(org)
        assert [j[1] for j in jobs] == refs[5:] and {j[2] for j in jobs} == {"pending"}
        handler = materialize_jobs_handler({(str(ORG), "hubspot"): fetcher}, {str(ORG): budget})
        worker = Worker(db_dsn, Queue("crm.job"), handler, kind="materialize")
        deadline = time.monotonic() + 60
        while open_jobs(org) and time.monotonic() < deadline:
            worker.run_once()
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        budget.close()
    assert open_jobs(org) == []  # none dropped, none dead
    assert (
        scalar(org, "SELECT count(*) FROM crm.job WHERE kind = 'materialize' AND status = 'completed'") == 25
    )
    logged = log_rows(org)
    assert [r["crm_record_id"] for r in logged] == refs  # in the order asked
    assert {(r["reason"], r["outcome"], r["actor"]) for r in logged} == {
        ("bulk", "materialized", "bulk-user")
    }
    materialized = scalar(
        org, "SELECT count(*) FROM crm.contact_index WHERE org_id = %s AND is_materialized", ORG
    )
    assert materialized == 30
    # 25 more at ~4.85/s after the first window: the budget was respected
    assert elapsed >= 3.5
    assert batch_reads(fake) >= 2


def test_jobs_waiting_for_the_budget_do_not_use_it_up(
    org: Conn, db_dsn: str, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    refs = [rid for _, rid, _ in indexed(org, 30)]
    budget = PgRateLimiter(db_dsn, ORG, "hubspot")
    try:
        budget.configure("materialize", 5, 60.0)  # the brief's "not 10K at once": 5 a minute
        counts = materialize_many(org, fetcher, ORG, refs, budget=budget)
        assert (counts["materialized"], counts["queued"]) == (5, 25)
        tat = scalar(
            org, "SELECT tat FROM crm.rate_limit WHERE org_id = %s AND limit_class = 'materialize'", ORG
        )
        handler = materialize_jobs_handler({(str(ORG), "hubspot"): fetcher}, {str(ORG): budget})
        Worker(db_dsn, Queue("crm.job"), handler, kind="materialize").run_once()
    finally:
        budget.close()
    # no permit: nothing fetched, every job given back (no attempt spent) until the next permit, in order
    assert batch_reads(fake) == 1
    jobs = open_jobs(org)
    assert [j[1] for j in jobs] == refs[5:]
    assert {(j[2], j[3]) for j in jobs} == {("pending", 0)}
    waits = [j[4] for j in jobs]
    assert waits == sorted(waits)
    now = scalar(org, "SELECT clock_timestamp()")
    assert all(0.5 < (w - now).total_seconds() < 15 for w in waits)
    # waiting took nothing from the budget (a job that reserves while it waits pushes everyone back forever)
    assert (
        scalar(org, "SELECT tat FROM crm.rate_limit WHERE org_id = %s AND limit_class = 'materialize'", ORG)
        == tat
    )


def test_bulk_uses_batch_reads_of_at_most_100(org: Conn, fake: FakeHubSpot, fetcher: HubSpotFetcher) -> None:
    refs: list[str | int] = [f"#{i}" for i, _, _ in indexed(org, 250)]
    counts = materialize_many(org, fetcher, ORG, refs + refs[:10])  # repeats are done once
    assert counts == {"materialized": 250, "gone": 0, "queued": 0, "calls": 3}
    assert batch_reads(fake) == 3
    assert scalar(org, "SELECT count(*) FROM crm.contact_record WHERE org_id = %s", ORG) == 250
    assert scalar(org, "SELECT count(*) FROM crm.activation_log WHERE reason = 'bulk'") == 250


# ------------------------------------------------------------------------------------ RLS, stats, view, hooks


def test_an_app_session_of_another_org_sees_and_materializes_nothing_of_it(
    org: Conn, db_dsn: str, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    index_org(org, ORG_B, fake, account=PORTAL + 1)  # another portal with the same records
    _, rid, email = indexed(org, 1)[0]
    assert materialize_contact(org, fetcher, ORG, rid).outcome == "materialized"
    activate_by_email(org, None, ORG, "local.only@a.example", "Lo Cal")
    with psycopg.connect(db_dsn, autocommit=True) as app:
        app.execute("SET ROLE crm_app")
        bind_org(app, ORG_B)
        for table in ("crm.contact_record", "crm.activation_log"):
            assert scalar(app, f"SELECT count(*) FROM {table}") == 0
        assert scalar(app, "SELECT count(*) FROM crm.all_crm_contacts WHERE org_id = %s", ORG) == 0
        with pytest.raises(OrgMismatchError):
            materialize_contact(app, fetcher, ORG, rid)
        with pytest.raises(OrgMismatchError):
            activate_by_email(app, fetcher, ORG, email)
        with pytest.raises(OrgMismatchError):
            materialize_many(app, fetcher, ORG, [rid])
        with pytest.raises(OrgMismatchError), translate_errors():
            app.execute("SELECT * FROM crm.org_stats(%s)", (ORG,))
        with pytest.raises(OrgMismatchError):
            request_materialization(app, ORG, [rid])
        # the application cannot fetch or write tier 2 itself (it holds no CRM token, and the tier-2 writers are
        # the workers'): for its own org it asks, and a worker fetches
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            materialize_contact(app, fetcher, ORG_B, rid, actor="b-user")
        [asked] = request_materialization(app, ORG_B, [rid], actor="b-user")
        assert asked.crm_record_id == rid
        handler = materialize_jobs_handler({(str(ORG_B), "hubspot"): fetcher})
        assert Worker(db_dsn, Queue("crm.job"), handler, kind="materialize").run_once() == 1
        assert scalar(app, "SELECT count(*) FROM crm.contact_record") == 1
        assert scalar(app, "SELECT count(DISTINCT org_id) FROM crm.activation_log") == 1
        assert scalar(app, "SELECT actor FROM crm.activation_log") == "b-user"
    assert scalar(org, "SELECT count(*) FROM crm.contact_record WHERE org_id = %s", ORG) == 2
    assert [r["outcome"] for r in log_rows(org)] == ["materialized", "local"]


def test_org_stats_and_the_all_crm_contacts_view(
    org: Conn, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    rows = indexed(org, 12)
    materialize_many(org, fetcher, ORG, [rid for _, rid, _ in rows[:10]])
    fake.delete("contacts", rows[10][1])
    assert materialize_contact(org, fetcher, ORG, rows[10][1]).outcome == "gone"
    activate_by_email(org, fetcher, ORG, "walk.in@local.example", "Walk In")  # tier 2 only, not indexed
    total = scalar(org, "SELECT count(*) FROM crm.contact_index WHERE org_id = %s", ORG)
    stats = org.execute(
        "SELECT contacts_indexed, contacts_materialized, contacts_deleted FROM crm.org_stats(%s)", (ORG,)
    ).fetchone()
    assert stats == (total - 1, 10, 1)
    view = org.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_materialized), "
        "count(*) FILTER (WHERE materialized_contact_id IS NOT NULL) FROM crm.all_crm_contacts WHERE org_id = %s",
        (ORG,),
    ).fetchone()
    assert view == (total - 1, 10, 10)
    assert scalar(org, "SELECT count(*) FROM crm.all_crm_contacts WHERE crm_record_id = %s", rows[10][1]) == 0


HOST_HOOK = """
CREATE FUNCTION app.mirror_contact() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO app.contacts (crm_record_id, org_id, email, full_name)
  VALUES (NEW.crm_record_id, NEW.org_id, NEW.email, concat_ws(' ', NEW.first_name, NEW.last_name))
  ON CONFLICT (org_id, crm_record_id) DO UPDATE SET email = excluded.email, full_name = excluded.full_name;
  RETURN NEW;
END $$;
CREATE TRIGGER mirror AFTER INSERT OR UPDATE ON crm.contact_record
FOR EACH ROW EXECUTE FUNCTION app.mirror_contact();
"""


def test_the_documented_host_hook_mirrors_in_the_same_transaction(
    org: Conn, fake: FakeHubSpot, fetcher: HubSpotFetcher
) -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "deployment.md").read_text()
    assert HOST_HOOK.strip() in doc  # the test runs exactly what the docs say
    org.execute("CREATE SCHEMA app")
    org.execute(
        "CREATE TABLE app.contacts (org_id uuid NOT NULL, crm_record_id text, email text, "
        "full_name text CHECK (full_name <> 'Refused Mirror'), UNIQUE (org_id, crm_record_id))"
    )
    org.execute(HOST_HOOK)
    (_, rid, _), (_, refused, _) = indexed(org, 2)
    res = materialize_contact(org, fetcher, ORG, rid)
    assert res.record is not None
    mirrored = org.execute(
        "SELECT org_id, email, full_name FROM app.contacts WHERE crm_record_id = %s", (rid,)
    )
    name = " ".join(p for p in (res.record.first_name, res.record.last_name) if p)
    assert mirrored.fetchall() == [(ORG, res.record.email, name)]
    # a refresh updates the mirror too
    fake.update_property("contacts", rid, "lastname", "Mirrored")
    refreshed = materialize_contact(org, fetcher, ORG, rid, fresh_s=0)
    assert refreshed.record is not None and refreshed.record.last_name == "Mirrored"
    assert scalar(org, "SELECT full_name FROM app.contacts WHERE crm_record_id = %s", rid).endswith(
        " Mirrored"
    )
    # same transaction: when the host's mirror fails, the materialization does not happen at all
    fake.update("contacts", refused, {"firstname": "Refused", "lastname": "Mirror"})
    with pytest.raises(psycopg.errors.CheckViolation):
        materialize_contact(org, fetcher, ORG, refused)
    assert index_state(org, refused)[:2] == (False, None)
    assert scalar(org, "SELECT count(*) FROM crm.contact_record WHERE crm_record_id = %s", refused) == 0
    assert scalar(org, "SELECT count(*) FROM app.contacts WHERE crm_record_id = %s", refused) == 0
    assert [r["crm_record_id"] for r in log_rows(org)] == [rid, rid]
