"""Activities (issue 16): notes, calls, meetings (and tasks) logged through the write-back queue land once on
the fake CRM's record with their associations, even when the CRM times out after accepting the first attempt
or the drainer dies after sending; crm.log_activity refuses bad input, changing nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from crmindex.crm.activities import Activity, ActivityWriter
from crmindex.crm.clients import Clients
from crmindex.crm.http import RetryPolicy
from crmindex.errors import InvalidInputError, NotFoundError, OrgMismatchError
from crmindex.index.writes import upsert_contacts, upsert_rows
from crmindex.platform.limiter import PgRateLimiter
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.activities import log_activity
from crmindex.writeback.drainer import WRITEBACK, Drainer
from tests.orgs import ORG, ORG_B

Conn = psycopg.Connection[tuple[object, ...]]
TOKEN = "test-token"
SEED = 23


def _connect(db: Conn, dsn: str, source: str, base_url: str) -> None:
    connect_with_token(db, None, ORG, source, TOKEN, account_id=f"{source}-{ORG.hex[-6:]}", base_url=base_url)
    lim = PgRateLimiter(dsn, ORG, source)
    try:
        for cls in ("general",) if source == "hubspot" else ("read", "write"):
            lim.configure(cls, 1000, 1.0)
    finally:
        lim.close()


def _index(db: Conn, source: str, n: int = 5) -> SyntheticCRM:
    crm = SyntheticCRM(seed=SEED, contacts=n, source=source)  # type: ignore[arg-type]
    upsert_contacts(db, ORG, source, [c.index_row() for c in crm.contacts()])  # type: ignore[arg-type]
    return crm


@pytest.fixture
def clients(db_dsn: str) -> Iterator[Clients]:
    c = Clients(db_dsn, retry=RetryPolicy.fast(max_attempts=3))
    yield c
    c.close()


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False, tokens=[TOKEN]) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=5))
        yield f


@pytest.fixture
def attio() -> Iterator[FakeAttio]:
    with FakeAttio(limits=False, tokens=[TOKEN]) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=5, source="attio"))
        yield f


def _drain(dsn: str, clients: Clients) -> int:
    return Drainer(dsn, clients.writer, poll_s=0.2).run_once()


def _due_now(db: Conn) -> None:
    """Skip the backoff ladder's wait (a minute) for the jobs that failed."""
    db.execute("UPDATE crm.writeback_queue SET next_retry_at = now() WHERE status = 'failed'")


def _statuses(db: Conn) -> dict[str, int]:
    rows = db.execute("SELECT status, count(*) FROM crm.writeback_queue GROUP BY status").fetchall()
    return {str(s): int(str(n)) for s, n in rows}


def _log_three(db: Conn, ref: str) -> None:
    log_activity(db, ORG, "note", "contact", ref, "Asked for the security review", subject="Follow-up")
    log_activity(db, ORG, "call", "contact", ref, "Discussed pricing", subject="Pricing call")
    log_activity(db, ORG, "meeting", "contact", ref, "Demo with the team", subject="Demo")


def test_hubspot_note_call_meeting_land_once_with_associations_despite_a_timeout_after_accept(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    _connect(db, db_dsn, "hubspot", hubspot.base_url)
    contact = _index(db, "hubspot").contact(1).crm_record_id
    _log_three(db, contact)
    # the notes batch create is processed, but its answer never arrives (a timeout after HubSpot accepted it)
    hubspot.set_faults(accept_then_drop=1, hang_seconds=0.05, only_paths="/objects/notes/batch/create")
    assert _drain(db_dsn, clients) == 3
    assert _statuses(db) == {"completed": 2, "failed": 1}
    assert len(hubspot.engagements_on("contacts", contact)) == 3  # the note landed although the call failed
    hubspot.clear_faults()
    _due_now(db)
    assert _drain(db_dsn, clients) == 1
    assert _statuses(db) == {"completed": 3}
    found = hubspot.engagements_on("contacts", contact)
    assert sorted(e["type"] for e in found) == ["calls", "meetings", "notes"]
    for e in found:
        assert e["associations"] == {"contacts": [contact]}
        assert e["properties"]["hs_timestamp"]
    note = next(e for e in found if e["type"] == "notes")
    assert note["properties"]["hs_note_body"] == "Follow-up\n\nAsked for the security review"
    # the retry searched for its marker and created nothing
    assert len(hubspot.requests_to("/objects/notes/search", "POST")) == 1
    assert len(hubspot.requests_to("/objects/notes/batch/create", "POST")) == 1
    ids = db.execute(
        "SELECT result ->> 'crm_record_id' FROM crm.writeback_queue WHERE payload ->> 'kind' = 'note'"
    ).fetchall()
    assert ids == [(note["id"],)]


def test_hubspot_a_drainer_dying_after_the_send_does_not_duplicate(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    _connect(db, db_dsn, "hubspot", hubspot.base_url)
    contact = _index(db, "hubspot").contact(2).crm_record_id
    q = log_activity(db, ORG, "note", "contact", contact, "Sent the proposal")
    (claimed,) = WRITEBACK.claim(db, "doomed", 10, lease_s=1.0, org_id=ORG, source="hubspot")
    writer = clients.writer(str(ORG), "hubspot")
    assert isinstance(writer, ActivityWriter)
    (first,) = writer.log_activities([Activity.from_payload(claimed.row["payload"], maybe_sent=False)])
    assert first.ok
    time.sleep(1.05)  # the lease expires: another drainer claims it again (attempt 2) and looks first
    assert _drain(db_dsn, clients) == 1
    assert len(hubspot.engagements_on("contacts", contact)) == 1
    row = db.execute(
        "SELECT status, attempts, result FROM crm.writeback_queue WHERE id = %s", (q.job_id,)
    ).fetchone()
    assert row == ("completed", 2, {"crm_record_id": first.crm_record_id})


def test_attio_note_call_meeting_and_task_land_once_despite_a_timeout_after_accept(
    db: Conn, db_dsn: str, attio: FakeAttio, clients: Clients
) -> None:
    _connect(db, db_dsn, "attio", attio.base_url)
    person = _index(db, "attio").contact(1).crm_record_id
    _log_three(db, person)
    due = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)
    log_activity(db, ORG, "task", "contact", person, "Send the contract", occurred_at=due)
    attio.set_faults(accept_then_drop=1, hang_seconds=0.05, only_paths="/v2/notes")
    assert _drain(db_dsn, clients) == 4
    assert _statuses(db) == {"completed": 3, "failed": 1}
    attio.clear_faults()
    _due_now(db)
    assert _drain(db_dsn, clients) == 1
    assert _statuses(db) == {"completed": 4}
    found = attio.activities_on("people", person)
    assert sorted((a["type"], a.get("title") or a.get("content_plaintext")) for a in found) == [
        ("note", "Call: Pricing call"),
        ("note", "Follow-up"),
        ("note", "Meeting: Demo"),
        ("task", "Send the contract"),
    ]
    notes = [a for a in found if a["type"] == "note"]
    assert all(n["parent_object"] == "people" and n["parent_record_id"] == person for n in notes)
    task = next(a for a in found if a["type"] == "task")
    assert task["deadline_at"].startswith("2026-12-24T09:00:00.")
    assert [lr["target_record_id"] for lr in task["linked_records"]] == [person]
    assert len(attio.requests_to("/v2/notes", "POST")) == 3  # the retry listed the notes and found its own


def test_activities_never_coalesce_and_get_distinct_markers(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot
) -> None:
    _connect(db, db_dsn, "hubspot", hubspot.base_url)
    contact = _index(db, "hubspot").contact(0).crm_record_id
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    a = log_activity(db, ORG, "note", "contact", contact, "Same text", occurred_at=at)
    b = log_activity(db, ORG, "note", "contact", contact, "Same text", occurred_at=at)
    assert a.job_id != b.job_id
    assert a.occurred_at_ms != b.occurred_at_ms
    second = int(at.timestamp()) * 1000
    assert second <= a.occurred_at_ms < second + 1000 and second <= b.occurred_at_ms < second + 1000
    assert a.payload["target_id"] == contact and a.crm_source == "hubspot"


def test_log_activity_refuses_bad_input_changing_nothing(db: Conn, db_dsn: str, hubspot: FakeHubSpot) -> None:
    _connect(db, db_dsn, "hubspot", hubspot.base_url)
    contact = _index(db, "hubspot").contact(0).crm_record_id
    with pytest.raises(InvalidInputError, match="kind"):
        log_activity(db, ORG, "fax", "contact", contact, "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="body or a subject"):
        log_activity(db, ORG, "note", "contact", contact, "  ")
    with pytest.raises(InvalidInputError, match="contact, a company or a deal"):
        log_activity(db, ORG, "note", "lead", contact, "x")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        log_activity(db, ORG, "note", "contact", "nobody@nowhere.io", "x")
    with pytest.raises(NotFoundError):
        log_activity(db, ORG, "note", "deal", "404", "x")
    with pytest.raises(InvalidInputError, match="longer than"):
        log_activity(db, ORG, "note", "contact", contact, "x", subject="s" * 1001)
    with pytest.raises(InvalidInputError, match="priority"):
        log_activity(db, ORG, "note", "contact", contact, "x", priority=0)
    assert _statuses(db) == {}


def test_log_activity_refuses_another_org(db: Conn, db_dsn: str, hubspot: FakeHubSpot) -> None:
    _connect(db, db_dsn, "hubspot", hubspot.base_url)
    contact = _index(db, "hubspot").contact(0).crm_record_id
    db.execute("SET ROLE crm_app")
    db.execute("SELECT set_config('crm.org_id', %s, false)", (str(ORG),))
    with pytest.raises(OrgMismatchError):
        log_activity(db, ORG_B, "note", "contact", contact, "x")
    q = log_activity(db, ORG, "note", "contact", contact, "as the application")
    assert q.crm_record_id == contact
    db.execute("RESET ROLE")
    assert uuid.UUID(str(q.org_id)) == ORG


@pytest.mark.parametrize("source", ["hubspot", "attio"])
def test_activities_on_a_company_and_a_deal_land_associated_with_them(
    db: Conn, db_dsn: str, clients: Clients, source: str
) -> None:
    crm = SyntheticCRM(seed=SEED, contacts=5, companies=2, deals=2, source=source)  # type: ignore[arg-type]
    fake = (
        FakeHubSpot(limits=False, tokens=[TOKEN])
        if source == "hubspot"
        else FakeAttio(limits=False, tokens=[TOKEN])
    )
    with fake:
        fake.seed_from(crm)
        _connect(db, db_dsn, source, fake.base_url)
        upsert_rows(db, "companies", ORG, source, [c.index_row() for c in crm.companies()])
        upsert_rows(db, "deals", ORG, source, [d.index_row() for d in crm.deals()])
        company, deal = crm.company(0).crm_record_id, crm.deal(0).crm_record_id
        log_activity(db, ORG, "task", "company", company, "Send the renewal quote", subject="Quote")
        log_activity(
            db, ORG, "email", "deal", f"#{_index_id(db, deal)}", "Sent the contract", subject="Contract"
        )
        assert _drain(db_dsn, clients) == 2
        assert _statuses(db) == {"completed": 2}
        if isinstance(fake, FakeHubSpot):
            [task] = fake.engagements_on("companies", company)
            assert task["type"] == "tasks" and task["associations"] == {"companies": [company]}
            assert task["properties"]["hs_task_subject"] == "Quote"
            [email] = fake.engagements_on("deals", deal)
            assert email["type"] == "emails" and email["associations"] == {"deals": [deal]}
            assert email["properties"]["hs_email_subject"] == "Contract"
        else:
            [task] = fake.activities_on("companies", company)
            assert task["type"] == "task" and task["content_plaintext"] == "Quote\nSend the renewal quote"
            [email] = fake.activities_on("deals", deal)
            assert (email["type"], email["title"], email["parent_record_id"]) == (
                "note",
                "Email: Contract",
                deal,
            )


def _index_id(db: Conn, deal: str) -> int:
    row = db.execute("SELECT id FROM crm.deal_index WHERE crm_record_id = %s", (deal,)).fetchone()
    assert row is not None
    return int(str(row[0]))
