"""The write-back drainer against the fake CRMs: batching, values landing, idempotent creates, partial
failures, the backoff ladder, 429 storms, lease expiry, re-queueing dead letters and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from crmindex.crm.clients import Clients
from crmindex.crm.http import RetryPolicy
from crmindex.index.writes import upsert_contacts
from crmindex.platform.limiter import PgRateLimiter
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.drainer import WRITEBACK, Drainer
from crmindex.writeback.enqueue import create_contact, update_contact
from tests.orgs import ORG
from tests.process_helpers import deadlocks_counted, sessions_waiting_on_locks, wait_for

Conn = psycopg.Connection[tuple[object, ...]]
TOKEN = "test-token"
TOKEN_ENV = "CRMINDEX_TEST_DRAINER_TOKEN"
SEED = 17
CONTACTS = 2_000
FIRST_ID = int(SyntheticCRM(seed=SEED, contacts=1).contact_id(0))
# failed write-backs due now, beside running drainers: what a drainer holds is skipped (a plain multi-row UPDATE keeps
# the locks it takes on rows claimed under it and can deadlock with the drainer renewing them: a CI run did)
FAST_FORWARD_FAILED = (
    "UPDATE crm.writeback_queue SET next_retry_at = now() WHERE id IN "
    "(SELECT id FROM crm.writeback_queue WHERE status = 'failed' FOR UPDATE SKIP LOCKED)"
)


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False, tokens=[TOKEN]) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=CONTACTS))
        yield f


def connect(db: Conn, dsn: str, org: uuid.UUID, source: str, base_url: str, per_second: int = 1000) -> None:
    """Register the org's CRM connection (token stored sealed) and give its limiter room for tests."""
    connect_with_token(db, None, org, source, TOKEN, account_id=f"{source}-{org.hex[-6:]}", base_url=base_url)
    lim = PgRateLimiter(dsn, org, source)
    try:
        for cls in ("general",) if source == "hubspot" else ("read", "write"):
            lim.configure(cls, per_second, 1.0)
    finally:
        lim.close()


@pytest.fixture
def org(db: Conn, db_dsn: str, fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch) -> Conn:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    connect(db, db_dsn, ORG, "hubspot", fake.base_url)
    return db


@pytest.fixture
def clients(db_dsn: str) -> Iterator[Clients]:
    c = Clients(db_dsn, retry=RetryPolicy.fast(max_attempts=3))
    yield c
    c.close()


def drainer(dsn: str, clients: Clients, **kw: Any) -> Drainer:
    return Drainer(dsn, clients.writer, poll_s=0.2, **kw)


def index_contacts(db: Conn, n: int, org: uuid.UUID = ORG, source: str = "hubspot") -> SyntheticCRM:
    crm = SyntheticCRM(seed=SEED, contacts=n, source=source)  # type: ignore[arg-type]
    upsert_contacts(db, org, source, [c.index_row() for c in crm.contacts()])  # type: ignore[arg-type]
    return crm


def enqueue_update(db: Conn, record_id: str | int, payload: dict[str, Any], org: uuid.UUID = ORG) -> int:
    row = db.execute(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', %s, 'update', %s, 'enrichment')",
        (org, str(record_id), Jsonb(payload)),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def job(db: Conn, job_id: int) -> dict[str, Any]:
    cur = db.execute(
        "SELECT status, attempts, last_error, next_retry_at, clock_timestamp() AS now, result, lease_token "
        "FROM crm.writeback_queue WHERE id = %s",
        (job_id,),
    )
    row = cur.fetchone()
    assert row is not None and cur.description is not None
    return {d.name: v for d, v in zip(cur.description, row, strict=True)}


def statuses(db: Conn) -> dict[str, int]:
    return {
        str(s): int(str(n))
        for s, n in db.execute("SELECT status, count(*) FROM crm.writeback_queue GROUP BY status").fetchall()
    }


def batch_calls(fake: FakeHubSpot, op: str) -> list[Any]:
    return [r for r in fake.requests_to(f"/batch/{op}", "POST")]


# ---------------------------------------------------------------------------------------------- batching
def test_10k_field_updates_over_2k_contacts_take_at_most_25_calls(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    started = time.perf_counter()
    # 5 rounds over every contact, each changing one of several fields: 10,000 field updates
    org.execute(
        """
        SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', (%s + g %% %s)::text, 'update',
                                     jsonb_build_object((ARRAY['jobtitle', 'phone', 'jobtitle', 'city',
                                                              'jobtitle'])[g / %s + 1], 'v' || g),
                                     'enrichment')
        FROM generate_series(0, 9999) AS g ORDER BY g
        """,
        (ORG, FIRST_ID, CONTACTS, CONTACTS),
    )
    assert statuses(org) == {"pending": CONTACTS}  # coalesced: one open job per record
    fake.clear_log()
    d = drainer(db_dsn, clients)
    assert d.run_once() == CONTACTS
    calls = fake.request_log
    assert all(r.path == "/crm/v3/objects/contacts/batch/update" and r.status == 200 for r in calls)
    assert len(calls) <= 25, len(calls)
    assert len(calls) == d.sent_calls == CONTACTS // 100
    assert statuses(org) == {"completed": CONTACTS}
    # the last value of every field landed
    for i in (0, 1, 777, CONTACTS - 1):
        props = fake.properties("contacts", FIRST_ID + i)
        assert props["jobtitle"] == f"v{4 * CONTACTS + i}"
        assert props["phone"] == f"v{CONTACTS + i}"
        assert props["city"] == f"v{3 * CONTACTS + i}"
    print(f"10,000 field updates -> {len(calls)} API calls in {time.perf_counter() - started:.1f} s")


def test_update_contact_lands_mapped_in_hubspot(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    crm = index_contacts(org, 20)
    target = crm.contact(3)
    q = update_contact(org, ORG, target.crm_record_id, {"lifecycle_stage": "sql", "job_title": "VP Revenue"})
    assert q.payload == {"lifecyclestage": "salesqualifiedlead", "jobtitle": "VP Revenue"}
    assert drainer(db_dsn, clients).run_once() == 1
    props = fake.properties("contacts", target.crm_record_id)
    assert props["lifecyclestage"] == "salesqualifiedlead"
    assert props["jobtitle"] == "VP Revenue"
    assert job(org, q.job_id)["status"] == "completed"
    (call,) = batch_calls(fake, "update")
    assert call.status == 200


# ---------------------------------------------------------------------------------------------- creates
def test_create_after_a_crash_between_the_crm_call_and_completion_never_duplicates(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    before = fake.count("contacts")
    q = create_contact(org, ORG, "hubspot", {"email": "Ada@NewLead.io", "first_name": "Ada"})
    # a drainer claims the job and makes the CRM call, then dies before completing it
    (claimed,) = WRITEBACK.claim(org, "doomed-drainer", 10, lease_s=1.0, org_id=ORG, source="hubspot")
    writer = clients.writer(str(ORG), "hubspot")
    assert writer is not None
    (first,) = writer.create("contact", [(str(claimed.row["match_key"]), claimed.row["payload"])])
    assert first.ok and first.crm_record_id
    assert fake.count("contacts") == before + 1
    # nobody else can take it while the lease holds
    assert WRITEBACK.claim(org, "other", 10, lease_s=5, org_id=ORG) == []
    time.sleep(1.05)
    # lease expired: another drainer re-claims and re-sends; the upsert by email finds the record
    assert drainer(db_dsn, clients).run_once() == 1
    assert fake.count("contacts") == before + 1
    state = job(org, q.job_id)
    assert state["status"] == "completed"
    assert state["attempts"] == 2
    assert state["result"] == {"crm_record_id": first.crm_record_id}
    assert fake.properties("contacts", first.crm_record_id)["email"] == "ada@newlead.io"
    # the dead drainer's lease token is fenced out
    assert WRITEBACK.complete(org, [claimed]) == 0
    # a second create of the same email (a retry from the copilot) also lands on the same record
    create_contact(org, ORG, "hubspot", {"email": "ada@newlead.io", "job_title": "CTO"})
    assert drainer(db_dsn, clients).run_once() == 1
    assert fake.count("contacts") == before + 1
    assert fake.properties("contacts", first.crm_record_id)["jobtitle"] == "CTO"
    assert all(r.path.endswith("/batch/upsert") for r in batch_calls(fake, "upsert"))
    assert batch_calls(fake, "create") == []


# ---------------------------------------------------------------------------------------------- failures
def test_a_batch_refused_for_one_bad_input_lands_the_others_and_dead_letters_the_bad_one_at_once(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """HubSpot refuses the whole batch (400 VALIDATION_ERROR) for one invalid option (issue 15, item 1): the drainer
    resends the others, and only the bad job is dead-lettered, naming its field."""
    good = [enqueue_update(org, FIRST_ID + i, {"jobtitle": f"Good {i}"}) for i in range(3)]
    bad = enqueue_update(org, FIRST_ID + 3, {"lifecyclestage": "bogus-stage"})
    assert drainer(db_dsn, clients).run_once() == 4
    calls = batch_calls(fake, "update")
    assert calls[0].status == 400 and len(calls) <= 4  # refused whole, then split
    for i, jid in enumerate(good):
        assert job(org, jid)["status"] == "completed"
        assert fake.properties("contacts", FIRST_ID + i)["jobtitle"] == f"Good {i}"
    state = job(org, bad)
    assert state["status"] == "dead_letter"
    assert state["attempts"] == 1
    # the CRM's category and code and the field, never its message (which may quote anything: the tenant reads
    # last_error)
    assert state["last_error"].startswith(
        "ValidationError: hubspot 400 VALIDATION_ERROR/INVALID_OPTION: the CRM rejected the input (field lifecyclestage)"
    )
    assert "bogus-stage" not in state["last_error"]
    assert fake.properties("contacts", FIRST_ID + 3)["lifecyclestage"] != "bogus-stage"


def test_5xx_goes_down_the_backoff_ladder(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    jid = enqueue_update(org, FIRST_ID, {"jobtitle": "Later"})
    fake.set_faults(fail_next=[503, 503, 503])  # every try of the client's RetryPolicy.fast(3)
    assert drainer(db_dsn, clients).run_once() == 1
    assert [r.status for r in batch_calls(fake, "update")] == [503, 503, 503]
    state = job(org, jid)
    assert state["status"] == "failed"
    assert state["attempts"] == 1
    assert state["last_error"].startswith(
        "RetryableError: hubspot 503 SERVICE_UNAVAILABLE: temporary failure"
    )
    assert "[correlation id " in state["last_error"]
    wait = (state["next_retry_at"] - state["now"]).total_seconds()
    assert 55 <= wait <= 61, wait
    # not due yet: another pass sends nothing
    assert drainer(db_dsn, clients).run_once() == 0
    assert len(batch_calls(fake, "update")) == 3
    # a new local change to the record coalesces into the failed job instead of racing it
    assert enqueue_update(org, FIRST_ID, {"phone": "+1 555 0100"}) == jid
    # when due, it lands; the second failure would have waited 5 minutes
    org.execute("UPDATE crm.writeback_queue SET next_retry_at = now() WHERE id = %s", (jid,))
    assert drainer(db_dsn, clients).run_once() == 1
    assert job(org, jid)["status"] == "completed"
    props = fake.properties("contacts", FIRST_ID)
    assert (props["jobtitle"], props["phone"]) == ("Later", "+1 555 0100")
    backoff = org.execute("SELECT extract(epoch FROM crm.queue_backoff(2))").fetchone()
    assert backoff is not None and float(str(backoff[0])) == 300


def test_429_storm_releases_without_burning_an_attempt(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    jid = enqueue_update(org, FIRST_ID + 5, {"jobtitle": "Patient"})
    storm = RetryPolicy.fast().max_rate_limit_retries + 1  # more 429s than the client waits out
    fake.set_faults(rate_limit_storm=storm)
    assert drainer(db_dsn, clients).run_once() == 1
    calls = batch_calls(fake, "update")
    assert [r.status for r in calls] == [429] * storm
    state = job(org, jid)
    assert state["status"] == "pending"
    assert state["attempts"] == 0  # released, not failed
    assert "rate limited (TEN_SECONDLY_ROLLING)" in state["last_error"]
    assert 0 < (state["next_retry_at"] - state["now"]).total_seconds() <= 1.0
    # every worker of the account was slowed down through the shared limiter
    pen = org.execute(
        "SELECT penalties FROM crm.rate_limit WHERE org_id = %s AND crm_source = 'hubspot' "
        "AND limit_class = 'general'",
        (ORG,),
    ).fetchone()
    assert pen is not None and int(str(pen[0])) >= storm
    time.sleep(1.05)
    assert drainer(db_dsn, clients).run_once() == 1
    state = job(org, jid)
    assert (state["status"], state["attempts"]) == ("completed", 1)
    assert fake.properties("contacts", FIRST_ID + 5)["jobtitle"] == "Patient"


def test_expired_lease_is_claimable_again_and_the_old_token_is_fenced(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    jid = enqueue_update(org, FIRST_ID + 7, {"jobtitle": "Reclaimed"})
    (lost,) = WRITEBACK.claim(org, "crashed", 10, lease_s=0.3, org_id=ORG)
    assert drainer(db_dsn, clients).run_once() == 0  # leased: not due
    assert job(org, jid)["status"] == "processing"
    time.sleep(0.4)
    assert drainer(db_dsn, clients).run_once() == 1
    assert job(org, jid)["status"] == "completed"
    assert fake.properties("contacts", FIRST_ID + 7)["jobtitle"] == "Reclaimed"
    assert WRITEBACK.fail(org, lost, "too late") is None
    assert not WRITEBACK.release(org, lost)
    assert job(org, jid)["status"] == "completed"


def test_queue_requeue_puts_dead_letters_back_in_line(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    jid = enqueue_update(org, FIRST_ID + 9, {"jobtitle": "Second chance"})
    fake.set_faults(fail_next=[400])  # the whole call rejected: not retryable
    assert drainer(db_dsn, clients).run_once() == 1
    state = job(org, jid)
    assert state["status"] == "dead_letter"
    assert state["last_error"].startswith("ValidationError: hubspot 400 ")
    assert fake.properties("contacts", FIRST_ID + 9)["jobtitle"] != "Second chance"
    row = org.execute("SELECT crm.queue_requeue(%s, 'crm.writeback_queue')", (ORG,)).fetchone()
    assert row == (1,)
    state = job(org, jid)
    assert (state["status"], state["attempts"]) == ("pending", 0)
    assert drainer(db_dsn, clients).run_once() == 1
    assert job(org, jid)["status"] == "completed"
    assert fake.properties("contacts", FIRST_ID + 9)["jobtitle"] == "Second chance"


def test_updates_queued_while_a_write_is_in_flight_land_in_order(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """A change queued while the record's previous job is out (or lost with its worker) waits its turn."""
    rid = FIRST_ID + 11
    first = enqueue_update(org, rid, {"jobtitle": "Old", "phone": "1"})
    (lost,) = WRITEBACK.claim(org, "crashed", 10, lease_s=0.5, org_id=ORG)
    second = enqueue_update(org, rid, {"jobtitle": "New"})
    assert second != first
    # the newer job must not go out while the older one may still be in flight
    assert drainer(db_dsn, clients).run_once() <= 1
    assert batch_calls(fake, "update") == []
    time.sleep(0.6)
    drainer(db_dsn, clients).run_once()
    time.sleep(1.1)  # a job that was held back is released for a moment
    drainer(db_dsn, clients).run_once()
    props = fake.properties("contacts", rid)
    assert (props["jobtitle"], props["phone"]) == ("New", "1")
    assert statuses(org) == {"completed": 2}
    # the crashed worker's late report changes nothing
    assert WRITEBACK.fail(org, lost, "late") is None


def test_a_failed_write_with_a_newer_change_queued_keeps_one_open_job(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    rid = FIRST_ID + 13
    enqueue_update(org, rid, {"jobtitle": "A", "phone": "2"})
    writer = clients.writer(str(ORG), "hubspot")
    assert writer is not None

    class Interleaving:
        """Queue a newer change while the call is in flight, then let the call fail (5xx)."""

        source = "hubspot"
        max_batch = 100

        def update(self, entity_type: str, items: Any) -> Any:
            enqueue_update(org, rid, {"jobtitle": "B"})
            fake.set_faults(fail_next=[500, 500, 500])
            return writer.update(entity_type, items)

        def create(self, entity_type: str, items: Any) -> Any:
            raise AssertionError("no creates here")

    d = Drainer(db_dsn, lambda o, s: Interleaving(), poll_s=0.2)
    assert d.run_once() >= 1
    open_jobs = org.execute(
        "SELECT payload, status, attempts FROM crm.writeback_queue WHERE status IN ('pending', 'failed', "
        "'processing')"
    ).fetchall()
    assert len(open_jobs) == 1, open_jobs
    payload, status, attempts = open_jobs[0]
    assert payload == {"jobtitle": "B", "phone": "2"}
    assert status == "failed" and attempts == 1
    org.execute("UPDATE crm.writeback_queue SET next_retry_at = now() WHERE status = 'failed'")
    assert drainer(db_dsn, clients).run_once() == 1
    props = fake.properties("contacts", rid)
    assert (props["jobtitle"], props["phone"]) == ("B", "2")


def test_a_renew_chosen_as_deadlock_victim_runs_again_and_every_job_lands(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """Another session's statement crosses the drainer's renew (it holds one job of the next send group, then
    waits for the other, which the renew holds): the server rolls the renew back as the deadlock victim. The
    drainer runs it again, sends every job and completes it, instead of dropping its connection and leaving the
    claimed jobs to their leases' expiry (how a CI run once lost a minute)."""
    rids = [FIRST_ID + 20 + i for i in range(4)]
    ids = [enqueue_update(org, rid, {"jobtitle": f"T{i}"}) for i, rid in enumerate(rids)]
    writer = clients.writer(str(ORG), "hubspot")
    assert writer is not None
    errors: list[BaseException] = []
    crossing: list[threading.Thread] = []

    def cross() -> None:
        """Hold the second group's last job, then (once the renew waits for it) update its first job."""
        try:
            with psycopg.connect(db_dsn) as side:
                side.execute("SET deadlock_timeout = '20s'")  # the renew (1 s) detects the cycle: its victim
                side.execute("SELECT 1 FROM crm.writeback_queue WHERE id = %s FOR UPDATE", (ids[3],))
                held.set()
                # the renew has locked ids[2] and waits for ids[3]; then cross it before its deadlock check
                # runs (once, deadlock_timeout after it began to wait)
                wait_for(
                    lambda: sessions_waiting_on_locks(db_dsn) == 1, 10, "the renew waiting for the held job"
                )
                side.execute("UPDATE crm.writeback_queue SET updated_at = now() WHERE id = %s", (ids[2],))
                side.rollback()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    held = threading.Event()

    class Crossed:
        """Sends in groups of two; the first send starts the crossing session."""

        source = "hubspot"
        max_batch = 2

        def update(self, entity_type: str, items: Any) -> Any:
            if not crossing:
                crossing.append(threading.Thread(target=cross))
                crossing[0].start()
                assert held.wait(5)
            return writer.update(entity_type, items)

        def create(self, entity_type: str, items: Any) -> Any:
            raise AssertionError("no creates here")

    before = deadlocks_counted(db_dsn)
    d = Drainer(db_dsn, lambda o, s: Crossed(), poll_s=0.2)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("SET deadlock_timeout = '2s'")
        assert d.drain_account(conn, str(ORG), "hubspot") == 4  # no error reached the caller
    crossing[0].join(10)
    assert errors == []
    assert d.lost == 0 and d.completed == 4
    assert statuses(org) == {"completed": 4}
    assert [fake.properties("contacts", rid)["jobtitle"] for rid in rids] == ["T0", "T1", "T2", "T3"]
    wait_for(
        lambda: deadlocks_counted(db_dsn) > before, 5, "a deadlock counted"
    )  # the crossing really was one


# ---------------------------------------------------------------------------------------------- Attio
def test_attio_updates_and_idempotent_creates(
    db: Conn, db_dsn: str, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with FakeAttio(tokens=[TOKEN], limits=False) as attio:
        attio.seed_from(SyntheticCRM(seed=SEED, contacts=10, source="attio"))
        connect(db, db_dsn, ORG, "attio", attio.base_url)
        crm = index_contacts(db, 10, source="attio")
        target = crm.contact(2)
        update_contact(db, ORG, target.crm_record_id, {"job_title": "Head of Data"})
        create_contact(db, ORG, "attio", {"email": "grace@newlead.io", "first_name": "Grace"})
        people = len(attio.record_ids("people"))
        assert drainer(db_dsn, clients).run_once() == 2
        rec = attio.record("people", target.crm_record_id)
        assert rec is not None
        assert [v["value"] for v in rec["values"]["job_title"]] == ["Head of Data"]
        assert len(attio.record_ids("people")) == people + 1
        # the same create again (a retry) asserts the same person
        create_contact(db, ORG, "attio", {"email": "grace@newlead.io", "job_title": "CEO"})
        assert drainer(db_dsn, clients).run_once() == 1
        assert len(attio.record_ids("people")) == people + 1
        assert statuses(db) == {"completed": 3}
        results = db.execute(
            "SELECT DISTINCT result ->> 'crm_record_id' FROM crm.writeback_queue WHERE operation = 'create'"
        ).fetchall()
        assert len(results) == 1


# ---------------------------------------------------------------------------------------------- SIGTERM
DRAINER_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from crmindex.crm.http import RetryPolicy
    from crmindex.writeback.drainer import Drainer
    from crmindex.crm.clients import Clients

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    dsn, batch, lease_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    tries = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    clients = Clients(dsn, retry=RetryPolicy.fast(max_attempts=tries))
    d = Drainer(dsn, clients.writer, batch=batch, poll_s=0.2, lease_s=lease_s)
    d.install_signal_handlers()
    print("ready", flush=True)
    d.run()
    clients.close()
    print(f"stopped completed={d.completed} calls={d.sent_calls}", flush=True)
    """
)


def test_sigterm_finishes_the_call_in_flight_and_releases_the_rest(
    org: Conn, db_dsn: str, fake: FakeHubSpot
) -> None:
    org.execute(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', (%s + g)::text, 'update', "
        "jsonb_build_object('jobtitle', 'T' || g), 'enrichment') FROM generate_series(0, %s) AS g",
        (ORG, FIRST_ID, CONTACTS - 1),
    )
    fake.set_faults(latency=0.3)
    proc = subprocess.Popen(
        [sys.executable, "-c", DRAINER_SCRIPT, db_dsn, "400", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 20
        while len(batch_calls(fake, "update")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(batch_calls(fake, "update")) >= 2, proc.stderr.read() if proc.poll() is not None else ""
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    took = time.monotonic() - signalled
    assert proc.returncode == 0, err
    assert took < 5, took
    assert "stopped" in out
    counts = statuses(org)
    assert "processing" not in counts
    sent = len(batch_calls(fake, "update"))
    assert counts["completed"] == sent * 100
    assert counts["pending"] == CONTACTS - sent * 100 > 0
    released = org.execute(
        "SELECT count(*) FROM crm.writeback_queue WHERE status = 'pending' AND attempts = 0 "
        "AND last_error = 'released at shutdown before sending'"
    ).fetchone()
    assert released is not None and int(str(released[0])) > 0
    # what was sent has landed
    done = org.execute(
        "SELECT crm_record_id, payload ->> 'jobtitle' FROM crm.writeback_queue WHERE status = 'completed' "
        "ORDER BY random() LIMIT 20"
    ).fetchall()
    for rid, title in done:
        assert fake.properties("contacts", str(rid))["jobtitle"] == title
    print(f"SIGTERM -> exit in {took:.2f} s; {sent} calls finished, {counts['pending']} jobs released")


def test_the_drainer_sleeps_through_other_queues_notifications(
    db_dsn: str, org: Conn, clients: Clients
) -> None:
    """Inbox and job inserts notify the same channel: the drainer wakes only for write-back ones."""
    passes = 0

    class Counting(Drainer):
        def _accounts(self, conn: Conn) -> list[tuple[str, str]]:
            nonlocal passes
            passes += 1
            return super()._accounts(conn)

    d = Counting(db_dsn, clients.writer, poll_s=60)
    thread = threading.Thread(target=d.run)
    thread.start()
    try:
        wait_for(lambda: passes == 1, 5, "the first pass")
        for _ in range(30):
            org.execute("SELECT pg_notify('crm_queue', 'job'), pg_notify('crm_queue', 'webhook_inbox')")
        time.sleep(1.0)
        assert passes == 1
        org.execute("SELECT pg_notify('crm_queue', 'writeback_queue')")
        wait_for(lambda: passes == 2, 5, "woken by a write-back notification")
    finally:
        d.stop.set()
        thread.join(10)
    assert not thread.is_alive()
