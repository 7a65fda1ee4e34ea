"""Fault matrix, CRM side (issue 9): the fake CRMs answer with 5xx storms, timeouts, 429 storms, malformed
bodies (truncated JSON, the wrong shape on a 200) or revoke the token mid-run, in every phase that calls them:
the initial sync, webhook processing with hydration, the write-back drain and materialization.

Each test ends by checking that nothing was lost:

* sync: the run stops with a typed error and a saved cursor; after the storm the next run resumes from it
  (no gap, no page twice) and the index equals the fake CRM;
* webhooks: every accepted delivery is applied; the hydrations it needs are kept with their error (never
  dead-lettered) and retried until the CRM recovers; then the index equals the fake CRM;
* write-back: every job is completed or dead-lettered with a reason, the CRM holds every value queued and
  no create landed twice; 429s never spend an attempt; a revoked token flags the connection and its jobs
  wait (no attempt spent) until the token works again;
* materialization: the caller gets the typed error and nothing is half-written (no tier-2 row, the index row
  untouched); queued materializations wait or retry, then complete.

Retried jobs wait on the backoff ladder (1 min first) and jobs of a rejected token wait ``AUTH_RETRY_S``:
these tests fast-forward them (``next_retry_at = now()``); the ladder itself is tested in test_drainer.py.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from crmindex.app import Workers
from crmindex.crm.attio.client import AttioClient
from crmindex.crm.clients import Clients
from crmindex.crm.errors import CrmError
from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.freshness.intake import WebhookReceiver
from crmindex.freshness.sync import AttioLister, HubSpotLister, SyncError, run_sync
from crmindex.index.writes import upsert_contacts
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.queue import enqueue_job
from crmindex.records.materialize import MATERIALIZE_KIND, materialize_contact
from crmindex.status import org_status, render
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.drainer import Drainer
from tests.fault_helpers import (
    CLIENT_TIMEOUT,
    SECRET,
    SECRET_ENV,
    AfterFirstCall,
    Conn,
    Fake,
    Fault,
    attio_mismatches,
    auth_error,
    connect_fake,
    faults,
    live_ids,
)
from tests.test_chaos import ORG, Ledger, check_crm, check_queue
from tests.test_convergence import World, mismatches
from tests.test_drainer import FAST_FORWARD_FAILED, TOKEN, TOKEN_ENV

SEED = 29
CONTACTS = 600  # 6 list pages of 100: a fault can start with pages left
FIRST_ID = int(SyntheticCRM(seed=SEED, contacts=1).contact_id(0))
URL = "https://hooks.example.com/webhooks/crm"
CRMS = ["hubspot", "attio"]


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(
        limits=False, tokens=[TOKEN], client_secret=SECRET, webhook_url=URL, emit="collect", seed=SEED
    ) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=CONTACTS))
        yield f


@pytest.fixture
def attio() -> Iterator[FakeAttio]:
    with FakeAttio(
        limits=False, tokens=[TOKEN], webhook_secret=SECRET, webhook_url=URL, emit="collect", seed=SEED
    ) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=CONTACTS, source="attio"))
        yield f


@pytest.fixture
def clients(db_dsn: str) -> Iterator[Clients]:
    c = Clients(db_dsn, retry=RetryPolicy.fast(max_attempts=2))
    yield c
    c.close()


def client_of(clients: Clients, fake: Fake) -> Any:
    """The org's client (as the workers build it), with the short timeout of these tests."""
    client = clients.client(ORG, fake.source)
    client.http.timeout = CLIENT_TIMEOUT
    return client


def connected(request: pytest.FixtureRequest, crm: str, db: Conn, dsn: str) -> Fake:
    fake: Fake = request.getfixturevalue(crm)
    connect_fake(db, dsn, ORG, fake)
    return fake


def index_equals_crm(db: Conn, dsn: str, fake: Fake) -> list[str]:
    """Every difference between the index and the fake CRM (HubSpot: test_convergence's comparison)."""
    if isinstance(fake, FakeAttio):
        return attio_mismatches(db, ORG, fake)
    world = World(fake, ORG, dsn, db, None, None)  # type: ignore[arg-type]
    bad = mismatches(world)
    if set(world.live("companies")) != live_ids(db, ORG, "hubspot", "companies"):
        bad.append("the live companies differ")
    return bad


def indexed_contacts(db: Conn, source: str) -> int:
    return len(live_ids(db, ORG, source, "contacts"))


def crm_contacts(fake: Fake) -> int:
    return fake.count("contacts") if isinstance(fake, FakeHubSpot) else len(fake.record_ids("people"))


def job_states(db: Conn, table: str, where: str = "TRUE") -> list[tuple[str, int, str | None]]:
    """(status, attempts, last_error) of every row of a queue table."""
    return [
        (str(r[0]), int(str(r[1])), None if r[2] is None else str(r[2]))
        for r in db.execute(f"SELECT status, attempts, last_error FROM {table} WHERE {where} ORDER BY id")
    ]


def fast_forward(db: Conn, table: str) -> None:
    """Waiting jobs become due now (instead of after their backoff or AUTH_RETRY_S)."""
    db.execute(f"UPDATE {table} SET next_retry_at = now() WHERE status IN ('pending', 'failed')")


def assert_waiting(rows: list[tuple[str, int, str | None]], fault: Fault, attempts: int) -> None:
    """Jobs that hit ``fault`` are kept with its error: failed (attempt spent) or, for a rejected token or
    a 429, pending (no attempt spent); never dead-lettered, never completed without their work."""
    assert rows
    waits = fault.name in ("revoked", "429")
    for status, spent, error in rows:
        assert status == ("pending" if waits else "failed"), (status, error)
        assert spent == (0 if waits else attempts), (spent, error)
        # the fault's message, or (the drainer's "RetryableError: <CRM message>") its typed error's name
        assert error is not None and (fault.text in error or fault.error.__name__ in error), error
        assert TOKEN not in error
        if fault.name == "revoked":
            assert error.startswith("auth failed, waiting for the connection's token")


# ---------------------------------------------------------------------------------------------- sync
class SmallPages(AttioLister):
    PAGE = 100  # Attio pages by offset: 100 per page, so a fault can start with pages left


def lister(fake: Fake, client: Any) -> HubSpotLister | AttioLister:
    return HubSpotLister(client) if isinstance(fake, FakeHubSpot) else SmallPages(client)


@pytest.mark.parametrize("fault", faults("5xx", "timeout", "truncated", "wrong_shape", "revoked"), ids=str)
@pytest.mark.parametrize("crm", CRMS)
def test_sync_stops_with_a_typed_error_then_resumes_to_the_crm_state(
    request: pytest.FixtureRequest, crm: str, fault: Fault, db: Conn, db_dsn: str, clients: Clients
) -> None:
    fake = connected(request, crm, db, db_dsn)
    client = client_of(clients, fake)

    injected: list[str] = []

    def start_fault(step: str, pages: int) -> None:  # after the first committed page of contacts
        if step == "contacts" and not injected:
            injected.append(step)
            fault.inject(fake)

    with pytest.raises(SyncError) as info:
        run_sync(db, ORG, lister(fake, client), progress=False, read_ahead=1, on_page=start_fault)
    fault.check(info.value.__cause__)
    assert info.value.retryable == fault.error.retryable
    assert "run the sync again to resume" in str(info.value)
    state = db.execute(
        "SELECT status, cursor, last_error FROM crm.sync_state WHERE org_id = %s AND object_type = 'contacts'",
        (ORG,),
    ).fetchone()
    assert state is not None
    status, cursor, last_error = state
    assert status == "failed" and cursor is not None
    assert fault.text in str(last_error) and TOKEN not in str(last_error)
    before = indexed_contacts(db, fake.source)
    total = crm_contacts(fake)
    assert 0 < before < total  # stopped mid-step, what it had is kept
    if fault.name == "revoked":
        flag = auth_error(db, ORG, fake.source)
        assert flag is not None and "401" in flag and TOKEN not in flag
        assert "token rejected" in render(org_status(db, ORG))

    fault.recover(fake)
    report = run_sync(db, ORG, lister(fake, client), progress=False)
    step = next(s for s in report.steps if s.step == "contacts")
    assert step.resumed_from == cursor
    assert step.records == total - before  # from the saved cursor on: no gap, no page twice
    assert report.steps[0].step == "contacts"  # companies were done: not fetched again
    assert index_equals_crm(db, db_dsn, fake) == []
    assert auth_error(db, ORG, fake.source) is None


@pytest.mark.slow
@pytest.mark.parametrize("crm", CRMS)
def test_sync_rides_out_a_429_storm_through_the_shared_limiter(
    request: pytest.FixtureRequest, crm: str, db: Conn, db_dsn: str
) -> None:
    fake = connected(request, crm, db, db_dsn)
    limiter = PgRateLimiter(db_dsn, ORG, fake.source)
    # honour the server's wait (no cap): Retry-After 1 s (HubSpot) / the next second (Attio's HTTP-date)
    policy = RetryPolicy(max_attempts=3, base_delay=0.005, max_delay=0.05, max_rate_limit_retries=10)
    client: HubSpotClient | AttioClient = (
        HubSpotClient(fake.base_url, lambda: TOKEN, limiter, retry=policy)
        if isinstance(fake, FakeHubSpot)
        else AttioClient(fake.base_url, lambda: TOKEN, limiter, retry=policy)
    )
    storm: list[float] = []

    def start_storm(step: str, pages: int) -> None:
        if step == "contacts" and not storm:
            storm.append(fake.storm("rate_limit", 1.5, retry_after=1))

    try:
        started = time.monotonic()
        run_sync(db, ORG, lister(fake, client), progress=False, read_ahead=1, on_page=start_storm)
        took = time.monotonic() - started
    finally:
        client.close()
        limiter.close()
    assert storm and time.monotonic() > storm[0]  # the run outlasted the storm rather than failing
    assert index_equals_crm(db, db_dsn, fake) == []
    throttled = [r for r in fake.request_log if r.status == 429]
    assert 1 <= len(throttled) <= 8, len(throttled)  # about one try per Retry-After, not a retry loop
    assert limiter.waited_s >= 1.0  # the shared limiter held the calls back
    row = db.execute(
        "SELECT sum(penalties) FROM crm.rate_limit WHERE org_id = %s AND crm_source = %s", (ORG, fake.source)
    ).fetchone()
    assert row is not None and int(str(row[0])) == len(throttled)
    print(f"\n{crm} sync through a 1.5 s 429 storm: {len(throttled)} 429s, {took:.1f} s in all")


# ---------------------------------------------------------------------------------------------- webhooks
def change_crm(fake: Fake) -> None:
    """Creations (hydrated), property changes, deletions and a merge, each emitting webhooks."""
    if isinstance(fake, FakeHubSpot):
        ids = [str(i) for i in itertools.islice(fake.store("contacts").ids_from(0), 30)]
        for i in range(8):
            fake.create("contacts", {"email": f"new{i}@faults.io", "firstname": f"New{i}", "jobtitle": "CTO"})
        for i in range(5):
            fake.update_property("contacts", ids[i], "jobtitle", f"VP of Faults {i}")
        fake.delete("contacts", ids[10])
        fake.merge("contacts", ids[20], ids[21])
        deal = next(iter(fake.store("deals").ids_from(0)))
        fake.update_property("deals", deal, "dealstage", "closedwon")
    else:
        ids = fake.record_ids("people")[:30]
        for i in range(8):
            fake.create(
                "people",
                {"name": f"New Person{i}", "email_addresses": [f"new{i}@faults.io"], "job_title": "CTO"},
            )
        for i in range(5):
            fake.update("people", ids[i], {"job_title": f"VP of Faults {i}"})
        fake.delete("people", ids[10])


def deliver_all(fake: Fake, receiver: WebhookReceiver) -> int:
    n = 0
    for d in fake.take_deliveries():
        if isinstance(fake, FakeHubSpot):
            res = receiver.handle_hubspot("POST", d.url, d.headers, d.body)
        else:
            res = receiver.handle_attio(d.headers, d.body)
        assert res.status == 200, res  # accepted: stored in the inbox before the answer
        n += 1
    return n


@pytest.mark.parametrize("fault", faults("5xx", "timeout", "truncated", "wrong_shape", "revoked"), ids=str)
@pytest.mark.parametrize("crm", CRMS)
def test_webhooks_are_applied_and_hydration_waits_out_the_fault(
    request: pytest.FixtureRequest, crm: str, fault: Fault, db: Conn, db_dsn: str, clients: Clients
) -> None:
    fake = connected(request, crm, db, db_dsn)
    client = client_of(clients, fake)
    run_sync(db, ORG, lister(fake, client), progress=False)
    receiver = WebhookReceiver(db_dsn)
    try:
        change_crm(fake)
        accepted = deliver_all(fake, receiver)
    finally:
        receiver.close()
    fault.inject(fake)
    workers = Workers(db_dsn, clients)
    for attempt in (1, 2):  # processed, then retried while the CRM still fails
        workers.run_once()
        inbox = job_states(db, "crm.webhook_inbox")
        assert len(inbox) == accepted and {s for s, _, _ in inbox} == {"completed"}
        assert_waiting(job_states(db, "crm.job", "kind = 'hydrate'"), fault, attempt)
        fast_forward(db, "crm.job")
    assert index_equals_crm(db, db_dsn, fake) != []  # the creations are not indexed yet
    if fault.name == "revoked":
        assert "401" in (auth_error(db, ORG, fake.source) or "")
        calls = [r for r in fake.request_log if r.status == 401]
        assert len(calls) <= 2 * 3  # one try per pass and object type, not one per job

    fault.recover(fake)
    workers.run_once()
    hydrations = job_states(db, "crm.job", "kind = 'hydrate'")
    assert {s for s, _, _ in hydrations} == {"completed"}, hydrations
    assert {s for s, _, _ in job_states(db, "crm.webhook_inbox")} == {"completed"}
    assert index_equals_crm(db, db_dsn, fake) == []
    assert auth_error(db, ORG, fake.source) is None


# ---------------------------------------------------------------------------------------------- write-back
def drainer_passes(db: Conn, drainer: Drainer, passes: int) -> None:
    for _ in range(passes):
        fast_forward(db, "crm.writeback_queue")
        drainer.run_once()


def _but_refused(rows: list[tuple[str, int, str | None]]) -> list[tuple[str, int, str | None]]:
    """The waiting jobs, but the one HubSpot refused by name: a batch refused as a whole (400 VALIDATION_ERROR) is
    split until the bad input stands alone (issue 15, item 1), and that 400 is the CRM's answer about it even while
    the CRM garbles its 2xx bodies (truncated, wrong_shape): dead-lettered at once, with its reason."""
    refused = [r for r in rows if r[0] == "dead_letter"]
    assert len(refused) <= 1 and all("VALIDATION_ERROR" in str(r[2]) for r in refused), refused
    return [r for r in rows if r[0] != "dead_letter"]


@pytest.mark.parametrize(
    "fault", faults("5xx", "timeout", "slow", "truncated", "wrong_shape", "revoked"), ids=str
)
def test_hubspot_writeback_completes_or_dead_letters_everything_after_a_fault(
    fault: Fault, db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    connect_fake(db, db_dsn, ORG, hubspot)
    seeded = hubspot.count("contacts")
    ledger = Ledger()
    for i in range(250):
        ledger.update(db, FIRST_ID + i, {"jobtitle": f"t-{i}"})
    for k in range(10):
        ledger.create(db, f"fault-{k}@newlead.io", {"firstname": f"F{k}", "jobtitle": "c0"})
    bogus = FIRST_ID + 299  # rejected by the CRM: dead-letters with its reason once the CRM answers
    db.execute(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', %s, 'update', %s, 'enrichment')",
        (ORG, str(bogus), Jsonb({"lifecyclestage": "bogus-stage"})),
    )
    client_of(clients, hubspot)
    writer = clients.writer(str(ORG), "hubspot")
    assert writer is not None
    wrapped = AfterFirstCall(writer, lambda: fault.inject(hubspot))
    d = Drainer(db_dsn, lambda o, s: wrapped, batch=100)
    d.run_once()  # the first call lands, then the fault starts
    waiting = job_states(db, "crm.writeback_queue", "status <> 'completed'")
    assert len(job_states(db, "crm.writeback_queue", "status = 'completed'")) == 100
    assert_waiting(_but_refused(waiting), fault, 1)
    assert len(waiting) == 250 + 10 + 1 - 100  # the rest: nothing lost, nothing dead-lettered
    if fault.name == "revoked":
        flag = auth_error(db, ORG, "hubspot")
        assert (
            flag is not None and "401 EXPIRED_AUTHENTICATION" in flag and "revoked" not in flag
        )  # no CRM text
        # a rejected token holds the whole account: one probe per AUTH_RETRY_S, however many jobs
        assert [r.status for r in hubspot.request_log].count(401) == 1
        for n in range(2, 10):  # more passes than max_attempts (6): the jobs still wait, none dies
            drainer_passes(db, d, 1)
            assert [r.status for r in hubspot.request_log].count(401) == n
        assert_waiting(job_states(db, "crm.writeback_queue", "status <> 'completed'"), fault, 0)
    else:
        drainer_passes(db, d, 1)  # retried while the CRM still fails: kept, one more attempt spent
        assert_waiting(_but_refused(job_states(db, "crm.writeback_queue", "status <> 'completed'")), fault, 2)

    fault.recover(hubspot)
    drainer_passes(db, d, 1)
    stats = check_queue(db)  # completed or dead-lettered with a reason
    dead = job_states(db, "crm.writeback_queue", "status = 'dead_letter'")
    assert len(dead) == 1 and "VALIDATION_ERROR" in str(dead[0][2]) and "bogus-stage" not in str(dead[0][2])
    assert hubspot.properties("contacts", bogus)["lifecyclestage"] != "bogus-stage"
    check_crm(hubspot, ledger, db, seeded)  # every queued value landed; no create twice
    assert auth_error(db, ORG, "hubspot") is None
    print(f"\nwrite-back through {fault}: {stats}, {len(hubspot.request_log)} API calls")


@pytest.mark.parametrize("fault", faults("5xx", "truncated", "revoked"), ids=str)
def test_attio_writeback_waits_out_the_fault(
    fault: Fault, db: Conn, db_dsn: str, attio: FakeAttio, clients: Clients
) -> None:
    connect_fake(db, db_dsn, ORG, attio)
    people = attio.record_ids("people")[:12]
    want = {rid: f"Attio title {i}" for i, rid in enumerate(people)}
    for rid, title in want.items():
        db.execute(
            "SELECT crm.enqueue_writeback(%s, 'attio', 'contact', %s, 'update', %s, 'enrichment')",
            (ORG, rid, Jsonb({"job_title": title})),
        )
    client_of(clients, attio)
    writer = clients.writer(str(ORG), "attio")
    assert writer is not None
    wrapped = AfterFirstCall(writer, lambda: fault.inject(attio))
    d = Drainer(db_dsn, lambda o, s: wrapped, batch=100)
    d.run_once()
    assert len(job_states(db, "crm.writeback_queue", "status = 'completed'")) == 1
    assert_waiting(job_states(db, "crm.writeback_queue", "status <> 'completed'"), fault, 1)
    if fault.name == "revoked":  # Attio writes one record per call: the first 401 stops the account
        assert [r.status for r in attio.request_log].count(401) == 1
        assert "401" in (auth_error(db, ORG, "attio") or "")
    fault.recover(attio)
    drainer_passes(db, d, 1)
    assert {s for s, _, _ in job_states(db, "crm.writeback_queue")} == {"completed"}
    for rid, title in want.items():
        rec = attio.record("people", rid)
        assert rec is not None and [v["value"] for v in rec["values"]["job_title"]] == [title]
    assert auth_error(db, ORG, "attio") is None


def wait_drained(db: Conn, timeout: float, storm_end: float) -> None:
    """Until no job is open; once the storm is over, failed jobs are fast-forwarded past their backoff
    (the ladder's first step, 1 min, outlasts a storm of seconds: no job retries inside it)."""
    deadline = time.monotonic() + timeout
    while True:
        row = db.execute(
            "SELECT count(*) FROM crm.writeback_queue WHERE status IN ('pending', 'failed', 'processing')"
        ).fetchone()
        assert row is not None
        if int(str(row[0])) == 0:
            return
        assert time.monotonic() < deadline, f"{row[0]} jobs still open after {timeout} s"
        if time.monotonic() > storm_end:
            db.execute(FAST_FORWARD_FAILED)
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("storm", ["rate_limit", "error"])
@pytest.mark.parametrize("crm", CRMS)
def test_three_drainers_through_a_time_boxed_storm(
    request: pytest.FixtureRequest, crm: str, storm: str, db: Conn, db_dsn: str
) -> None:
    """A storm of a few seconds (429 with Retry-After, or 502) hits three running drainers, then the CRM
    recovers by itself. 429s: the shared limiter slows every drainer and no job spends an attempt; 5xx: jobs
    retry. Either way every job completes and every value lands."""
    fake = connected(request, crm, db, db_dsn)
    hubspot = isinstance(fake, FakeHubSpot)
    if hubspot:
        records = [str(FIRST_ID + i) for i in range(300)]
        payload = "jobtitle"
    else:
        records = fake.record_ids("people")[:60]
        payload = "job_title"
    for i, rid in enumerate(records):
        db.execute(
            "SELECT crm.enqueue_writeback(%s, %s, 'contact', %s, 'update', %s, 'enrichment')",
            (ORG, fake.source, rid, Jsonb({payload: f"storm-{i}"})),
        )
    policy = RetryPolicy(max_attempts=2, base_delay=0.005, max_delay=0.05, max_rate_limit_retries=2)
    pools = [Clients(db_dsn, retry=policy) for _ in range(3)]
    drainers = [Drainer(db_dsn, c.writer, batch=25 if hubspot else 5, poll_s=0.2) for c in pools]
    threads = [threading.Thread(target=d.run, name=f"drainer-{i}") for i, d in enumerate(drainers)]
    seconds = 2.5
    if storm == "rate_limit":
        storm_end = fake.storm("rate_limit", seconds, retry_after=1)
    else:
        storm_end = fake.storm("error", seconds, error_status=502)
    started = time.monotonic()
    try:
        for t in threads:
            t.start()
        wait_drained(db, 60, storm_end)
    finally:
        for d in drainers:
            d.stop.set()
        for t in threads:
            t.join(30)
        waited = [c.client(ORG, fake.source).http.limiter.waited_s for c in pools]
        for c in pools:
            c.close()
    took = time.monotonic() - started
    assert not any(t.is_alive() for t in threads)
    rows = job_states(db, "crm.writeback_queue")
    assert len(rows) == len(records) and {s for s, _, _ in rows} == {"completed"}
    statuses = [r.status for r in fake.request_log]
    for i, rid in enumerate(records):
        if hubspot:
            assert fake.properties("contacts", rid)["jobtitle"] == f"storm-{i}"
        else:
            rec = fake.record("people", rid)
            assert rec is not None and [v["value"] for v in rec["values"]["job_title"]] == [f"storm-{i}"]
    if storm == "rate_limit":
        assert max(a for _, a, _ in rows) == 1  # a 429 never spent an attempt
        assert all(w >= 0.5 for w in waited), waited  # every drainer was held back, not only the one hit
        penalties = db.execute(
            "SELECT sum(penalties) FROM crm.rate_limit WHERE org_id = %s", (ORG,)
        ).fetchone()
        assert penalties is not None and int(str(penalties[0])) == statuses.count(429) > 0
        assert statuses.count(429) <= 40, statuses.count(429)  # ~one round of tries per Retry-After
        seen = statuses.count(429)
    else:
        spent = {a for _, a, _ in rows}
        assert 2 in spent and spent <= {1, 2}  # failed once in the storm, retried after it (or not hit)
        seen = statuses.count(502)
        assert seen > 0
    print(
        f"\n{crm} {storm} storm {seconds} s, 3 drainers: {len(records)} jobs done in {took:.1f} s, "
        f"{seen} {'429' if storm == 'rate_limit' else '502'}s, limiter waits {[round(w, 1) for w in waited]} s"
    )


# ---------------------------------------------------------------------------------------------- materialize
@pytest.mark.parametrize(
    "fault", faults("5xx", "timeout", "truncated", "wrong_shape", "revoked", "429"), ids=str
)
@pytest.mark.parametrize("crm", CRMS)
def test_materialize_raises_the_typed_error_and_writes_nothing(
    request: pytest.FixtureRequest, crm: str, fault: Fault, db: Conn, db_dsn: str, clients: Clients
) -> None:
    fake = connected(request, crm, db, db_dsn)
    synthetic = SyntheticCRM(seed=SEED, contacts=CONTACTS, source=fake.source)  # type: ignore[arg-type]
    rows = [c.index_row() for c in itertools.islice(synthetic.contacts(), 4)]
    upsert_contacts(db, ORG, fake.source, rows)  # type: ignore[arg-type]
    target, queued = str(rows[1]["crm_record_id"]), str(rows[2]["crm_record_id"])
    client_of(clients, fake)
    fetcher = clients.fetcher(ORG, fake.source)
    index_before = db.execute("SELECT * FROM crm.contact_index ORDER BY id").fetchall()
    enqueue_job(db, ORG, MATERIALIZE_KIND, {"crm_record_id": queued, "reason": "bulk"}, source=fake.source)
    fault.inject(fake)

    with pytest.raises(CrmError) as info:
        materialize_contact(db, fetcher, ORG, target, reason="meeting_booked")
    fault.check(info.value)
    # nothing half-written: no tier-2 row, the index untouched (not marked, not soft-deleted as gone)
    assert db.execute("SELECT count(*) FROM crm.contact_record").fetchone() == (0,)
    assert db.execute("SELECT * FROM crm.contact_index ORDER BY id").fetchall() == index_before
    assert db.execute("SELECT count(*) FROM crm.activation_log").fetchone() == (0,)
    # a queued materialization hits the same fault: kept with its error (waiting for a token), not dead
    workers = Workers(db_dsn, clients)
    workers.materialize.run_once()
    assert_waiting(job_states(db, "crm.job", f"kind = '{MATERIALIZE_KIND}'"), fault, 1)
    if fault.name == "revoked":
        assert "401" in (auth_error(db, ORG, fake.source) or "")

    fault.recover(fake)
    done = materialize_contact(db, fetcher, ORG, target, reason="meeting_booked")
    assert done.outcome == "materialized" and done.record is not None
    assert done.record.email == rows[1]["email"]
    fast_forward(db, "crm.job")
    workers.materialize.run_once()
    assert [s for s, _, _ in job_states(db, "crm.job", f"kind = '{MATERIALIZE_KIND}'")] == ["completed"]
    materialized = {
        str(r[0]) for r in db.execute("SELECT crm_record_id FROM crm.contact_index WHERE is_materialized")
    }
    assert materialized == {target, queued}
    assert auth_error(db, ORG, fake.source) is None  # the queued one's accepted call cleared the flag
