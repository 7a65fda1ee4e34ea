"""Initial sync and reconcile against the fake CRMs: completeness, resumability, faults, the search cap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from crmindex.crm.attio.client import AttioClient
from crmindex.crm.connections import get_connection
from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.freshness.reconcile import reconcile_attio, reconcile_hubspot
from crmindex.freshness.sync import AttioLister, HubSpotLister, SyncError, run_sync
from crmindex.platform.limiter import PgRateLimiter
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from tests.orgs import ORG

Conn = psycopg.Connection[tuple[object, ...]]
TOKEN = "test-token"


@pytest.fixture
def limiter(db_dsn: str) -> Iterator[PgRateLimiter]:
    """The account's shared Postgres limiter."""
    lim = PgRateLimiter(db_dsn, ORG, "hubspot")
    yield lim
    lim.close()


def hubspot_client(fake: FakeHubSpot, limiter: PgRateLimiter) -> HubSpotClient:
    """A client taking permits from the account's shared Postgres limiter."""
    return HubSpotClient(fake.base_url, lambda: TOKEN, limiter, retry=RetryPolicy.fast(max_attempts=6))


def counts(db: Conn, table: str = "crm.contact_index", source: str = "hubspot") -> tuple[int, int]:
    row = db.execute(
        f"SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL) "
        f"FROM {table} WHERE org_id = %s AND crm_source = %s",
        (ORG, source),
    ).fetchone()
    assert row is not None
    return int(str(row[0])), int(str(row[1]))


@pytest.fixture
def org(db: Conn) -> Conn:
    connect_with_token(db, None, ORG, "hubspot", None, account_id="62515")
    return db


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False) as f:
        f.seed_from(SyntheticCRM(seed=11, contacts=1500))
        yield f


def test_sync_indexes_everything_archived_as_deleted_and_twice_converges(
    org: Conn, limiter: PgRateLimiter, fake: FakeHubSpot
) -> None:
    gone = [str(i) for i in list(fake.store("contacts").ids_from(0))[:3]]
    for cid in gone:
        fake.delete("contacts", cid)
    client = hubspot_client(fake, limiter)
    report = run_sync(org, ORG, HubSpotLister(client), progress=False)
    assert counts(org) == (fake.count("contacts"), 3)
    assert counts(org, "crm.company_index")[0] == fake.count("companies")
    assert counts(org, "crm.deal_index")[0] == fake.count("deals")
    deleted = {
        str(r[0])
        for r in org.execute("SELECT crm_record_id FROM crm.contact_index WHERE deleted_at IS NOT NULL")
    }
    assert deleted == set(gone)
    # deal associations arrived: contacts of open deals carry the summary
    row = org.execute(
        "SELECT count(*) FROM crm.deal_contact WHERE org_id = %s AND NOT removed", (ORG,)
    ).fetchone()
    assert row is not None and int(str(row[0])) > 0
    assert report.records >= fake.count("contacts")
    # the time the records were all searchable, before the storage step (bench/sync.py times the two apart)
    assert report.finished_at is not None and report.indexed_at is not None
    assert report.started_at < report.indexed_at <= report.finished_at
    again = run_sync(org, ORG, HubSpotLister(client), progress=False)
    assert counts(org) == (fake.count("contacts"), 3)
    assert again.records == report.records
    state = dict(org.execute("SELECT object_type, status FROM crm.sync_state").fetchall())
    assert set(state.values()) == {"completed"}
    client.close()


def test_killed_sync_resumes_without_gap_or_duplicate(org: Conn, db_dsn: str) -> None:
    with FakeHubSpot(limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=12, contacts=6000))
        fake.set_faults(latency=0.02)
        code = (
            "import sys, uuid\n"
            "from crmindex.crm.hubspot.client import HubSpotClient\n"
            "from crmindex.freshness.sync import HubSpotLister, run_sync\n"
            "import psycopg\n"
            f"c = HubSpotClient({fake.base_url!r}, lambda: {TOKEN!r}, None)\n"
            f"with psycopg.connect({db_dsn!r}, autocommit=True) as conn:\n"
            f"    run_sync(conn, uuid.UUID({str(ORG)!r}), HubSpotLister(c), progress=False, read_ahead=2)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
        deadline = time.monotonic() + 60
        pages = 0
        while time.monotonic() < deadline and pages < 12:
            row = org.execute(
                "SELECT coalesce(sum(pages), 0) FROM crm.sync_state WHERE object_type = 'contacts'"
            ).fetchone()
            pages = int(str(row[0])) if row else 0
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert pages >= 12, "the sync did not get going"
        status, cursor = org.execute(
            "SELECT status, cursor FROM crm.sync_state WHERE object_type = 'contacts'"
        ).fetchone() or (None, None)
        assert status == "running" and cursor is not None
        indexed_before = counts(org)[0]
        assert 0 < indexed_before < fake.count("contacts")
        fake.clear_faults()
        client = HubSpotClient(fake.base_url, lambda: TOKEN, None)
        report = run_sync(org, ORG, HubSpotLister(client), progress=False)
        step = next(s for s in report.steps if s.step == "contacts")
        assert step.resumed_from == cursor  # continued from the last committed page
        assert step.records <= fake.count("contacts") - indexed_before + 100  # at most one page again
        assert counts(org)[0] == fake.count("contacts")
        ids = {str(r[0]) for r in org.execute("SELECT crm_record_id FROM crm.contact_index")}
        assert ids == {str(i) for i in fake.store("contacts").ids_from(0)}  # no gap
        client.close()


def test_sync_survives_429_storms_and_5xx(org: Conn, limiter: PgRateLimiter, fake: FakeHubSpot) -> None:
    fake.set_faults(rate_limit_storm=6, fail_next=[500, 502, 503], error_rate=0.05)
    client = hubspot_client(fake, limiter)
    run_sync(org, ORG, HubSpotLister(client), progress=False)
    assert counts(org)[0] == fake.count("contacts")
    statuses = [r.status for r in fake.request_log]
    assert statuses.count(429) >= 6 and any(s >= 500 for s in statuses)
    row = org.execute("SELECT sum(penalties) FROM crm.rate_limit WHERE org_id = %s", (ORG,)).fetchone()
    assert row is not None and int(str(row[0])) >= 1  # the account's shared limiter was pushed back
    client.close()


def test_malformed_page_stops_with_a_clear_error_then_resumes(
    org: Conn, limiter: PgRateLimiter, fake: FakeHubSpot
) -> None:
    client = HubSpotClient(fake.base_url, lambda: TOKEN, None, retry=RetryPolicy.fast(max_attempts=2))
    fake.set_faults(malformed_rate=1.0, only_paths="/crm/v3/objects/contacts")
    with pytest.raises(SyncError, match="contacts") as info:
        run_sync(org, ORG, HubSpotLister(client), progress=False)
    assert "run the sync again" in str(info.value)
    row = org.execute(
        "SELECT status, last_error FROM crm.sync_state WHERE object_type = 'contacts'"
    ).fetchone()
    assert row is not None and row[0] == "failed" and "contacts" in str(row[1])
    assert counts(org, "crm.company_index")[0] == fake.count("companies")  # what was synced is kept
    fake.clear_faults()
    run_sync(org, ORG, HubSpotLister(client), progress=False)
    assert counts(org)[0] == fake.count("contacts")
    client.close()


def test_attio_sync_ends_on_a_short_page(db: Conn, db_dsn: str) -> None:
    connect_with_token(db, None, ORG, "attio", None, account_id="ws-1")
    with FakeAttio(limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=13, contacts=1200, source="attio"))
        client = AttioClient(fake.base_url, lambda: TOKEN, None)
        run_sync(db, ORG, AttioLister(client), progress=False)
        assert counts(db, source="attio")[0] == len(fake.record_ids("people")) == 1200
        people_queries = [r for r in fake.request_log if r.path.endswith("/people/records/query")]
        assert len(people_queries) == 3  # 500 + 500 + 200: the short page ends it
        # Attio webhooks name objects by id: the sync keeps the ids it saw next to the connection
        learned = get_connection(db, ORG, "attio").settings["attio_object_ids"]
        assert learned == {fake.object_ids[s]: s for s in ("companies", "people", "deals")}
        # a person deleted in Attio while we were not listening: the rescan soft-deletes it
        victim = fake.record_ids("people")[0]
        fake.delete("people", victim)
        report = reconcile_attio(db, ORG, client)
        assert report.deleted["contacts"] == 1
        assert counts(db, source="attio") == (1199, 1)
        client.close()


def test_reconcile_repairs_changes_missed_during_downtime(
    org: Conn, limiter: PgRateLimiter, fake: FakeHubSpot
) -> None:
    client = hubspot_client(fake, limiter)
    run_sync(org, ORG, HubSpotLister(client), progress=False)
    ids = [str(i) for i in list(fake.store("contacts").ids_from(0))[:4]]
    time.sleep(0.01)
    fake.update_property("contacts", ids[0], "jobtitle", "Chief Revenue Officer")
    fake.delete("contacts", ids[1])
    new_id = fake.create("contacts", {"email": "fresh@newco.io", "firstname": "Fresh"})
    primary = fake.merge("contacts", ids[2], ids[3])
    report = reconcile_hubspot(org, ORG, client)
    assert report.upserted["contacts"] >= 2
    title = org.execute(
        "SELECT job_title, seniority FROM crm.contact_index WHERE crm_record_id = %s", (ids[0],)
    ).fetchone()
    assert title == ("Chief Revenue Officer", "c_suite")
    alive = {
        str(r[0]) for r in org.execute("SELECT crm_record_id FROM crm.contact_index WHERE deleted_at IS NULL")
    }
    assert new_id in alive and ids[1] not in alive and primary in alive
    assert counts(org)[0] == fake.count("contacts")
    client.close()


def test_reconcile_walks_past_the_10000_search_cap(db: Conn, db_dsn: str) -> None:
    connect_with_token(db, None, ORG, "hubspot", None, account_id="62515")
    with FakeHubSpot(limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=14, contacts=10_400, companies=10, deals=0))
        store = fake.store("contacts")
        store.materialize()
        same = int(datetime(2025, 5, 5, tzinfo=UTC).timestamp() * 1000)
        for rec in store.all():
            rec.updated_ms = same  # HubSpot's end-of-month batch stamps: one timestamp for all
        client = HubSpotClient(fake.base_url, lambda: TOKEN, None)
        report = reconcile_hubspot(db, ORG, client, since=datetime(2025, 5, 1, tzinfo=UTC))
        assert report.upserted["contacts"] == 10_400
        assert counts(db)[0] == 10_400
        searches = [r for r in fake.request_log if r.path.endswith("/contacts/search")]
        assert all(r.status == 200 for r in searches)  # never paged into the cap's 400
        assert len(searches) <= 10_400 // 200 + 3  # and never looped
        client.close()
