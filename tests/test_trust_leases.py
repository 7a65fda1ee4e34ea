"""Issue 13, items 4 and 2 (the error half): a drainer that lost its lease never writes to the CRM, and no
error text a tenant can read quotes the CRM's (or any other server's) answer.

Item 4 as reproduced: W1 claims v1 under a short lease; its wait for the rate limit (the shared limiter, or a
429's wait) outlasts the lease; v2 is queued; W2 claims (the expired job and the new one coalesce) and sends v2;
then W1 woke up and sent v1: the CRM ended on v1 while the queue said v2 completed. W1's waits are held open
by a gate here, so the interleaving is the same on every run.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from crmindex.app import Workers
from crmindex.crm.clients import Clients
from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.adapters import HubSpotWriter
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.protocols import CrmWriter, WriteResult
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.limits import LimitClass
from crmindex.platform.queue import enqueue_job
from crmindex.status import org_status, render
from crmindex.testing import FakeHubSpot
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.drainer import Drainer
from tests.orgs import ORG
from tests.test_drainer import TOKEN, TOKEN_ENV, connect

Conn = psycopg.Connection[tuple[object, ...]]
SEED = 31
FIRST_ID = int(SyntheticCRM(seed=SEED, contacts=1).contact_id(0))
LEASE_S = 0.6  # W1's lease: its rate-limit wait below is longer


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False, tokens=[TOKEN]) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=20))
        yield f


@pytest.fixture
def org(db: Conn, db_dsn: str, fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch) -> Conn:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    connect(db, db_dsn, ORG, "hubspot", fake.base_url)
    return db


@pytest.fixture
def clients(db_dsn: str) -> Iterator[Clients]:
    c = Clients(db_dsn, retry=RetryPolicy.fast(max_attempts=2))
    yield c
    c.close()


def enqueue_update(db: Conn, rid: int, payload: dict[str, Any]) -> int:
    row = db.execute(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', %s, 'update', %s, 'copilot')",
        (ORG, str(rid), Jsonb(payload)),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def open_jobs(db: Conn) -> int:
    row = db.execute(
        "SELECT count(*) FROM crm.writeback_queue WHERE status IN ('pending', 'failed', 'processing')"
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def fast_forward(db: Conn) -> None:
    db.execute("UPDATE crm.writeback_queue SET next_retry_at = now() WHERE status IN ('pending', 'failed')")


class Gate:
    """A limiter ``sleep`` that holds W1 in its wait until the test opens the gate."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.open = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.waiting.set()
        assert self.open.wait(30), "the gate was never opened"


def w1_writer(
    dsn: str, fake: FakeHubSpot, gate: Gate, policy: RetryPolicy
) -> tuple[HubSpotWriter, PgRateLimiter]:
    """W1's client: the account's shared limiter (same row as everyone's), waiting at the gate."""
    limiter = PgRateLimiter(dsn, ORG, "hubspot", sleep=gate)
    return HubSpotWriter(HubSpotClient(fake.base_url, lambda: TOKEN, limiter, retry=policy)), limiter


# ---------------------------------------------------------------------------------------------- item 4
@pytest.mark.parametrize("wait", ["limiter", "429"])
def test_a_drainer_whose_wait_outlasts_its_lease_never_lands_an_older_value(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients, wait: str
) -> None:
    rid = FIRST_ID + 1
    setup = PgRateLimiter(db_dsn, ORG, "hubspot")
    if wait == "limiter":
        # the account's limiter is busy: the next call may go in ~1.5 s, longer than W1's lease
        setup.configure(LimitClass.HUBSPOT_GENERAL, 1, 1.5, headroom=1.0)
        setup.reserve(LimitClass.HUBSPOT_GENERAL)
        policy = RetryPolicy.fast()
    else:
        # the CRM answers W1's call with a 429 asking for 1.5 s: honoured (no cap), longer than W1's lease
        fake.set_faults(rate_limit_storm=1, retry_after=1.5)
        policy = RetryPolicy(max_attempts=2, base_delay=0.005, max_delay=0.05, max_rate_limit_retries=3)
    setup.close()
    gate = Gate()
    writer, limiter = w1_writer(db_dsn, fake, gate, policy)
    w1 = Drainer(db_dsn, lambda o, s: writer, lease_s=LEASE_S, worker_id="W1")
    first = enqueue_update(org, rid, {"jobtitle": "v1"})
    w1_pass = threading.Thread(target=w1.run_once)
    w1_pass.start()
    try:
        # W1 is either held in its wait (no lease check) or has given the job back
        deadline = time.monotonic() + 10
        while not gate.waiting.is_set() and w1_pass.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(LEASE_S + 0.1)  # W1's lease has expired by now
        enqueue_update(org, rid, {"jobtitle": "v2"})
        fast_forward(org)
        w2 = Drainer(db_dsn, clients.writer, worker_id="W2")
        w2.run_once()
    finally:
        gate.open.set()
        w1_pass.join(30)
        limiter.close()
    assert not w1_pass.is_alive()
    fast_forward(org)
    Drainer(db_dsn, clients.writer, worker_id="W3").run_once()
    # the CRM ends on the newest value, and the queue agrees with it
    assert fake.properties("contacts", rid)["jobtitle"] == "v2"
    assert open_jobs(org) == 0
    rows = org.execute(
        "SELECT id, payload ->> 'jobtitle', result FROM crm.writeback_queue WHERE status = 'completed' ORDER BY id"
    ).fetchall()
    sent = [r for r in rows if not (isinstance(r[2], dict) and "coalesced_into" in r[2])]
    assert [r[1] for r in sent][-1:] == ["v2"], rows
    assert rows[0][0] == first
    # W1 never sent anything: its wait would have outlasted its lease
    assert writer.client.http.stats.calls <= (1 if wait == "429" else 0)
    assert w1.completed == 0


def test_a_drainer_that_lost_its_lease_mid_pass_sends_nothing_more(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """W1's first call (an update) is slow; meanwhile its lease expires and W2 takes both jobs over. W1 must
    not send its second group (a create) after that."""
    rid = FIRST_ID + 2
    enqueue_update(org, rid, {"jobtitle": "slow"})
    org.execute(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', NULL, 'create', %s, 'copilot', NULL, "
        "5::smallint, %s)",
        (ORG, Jsonb({"email": "lease@example.com", "firstname": "Lea"}), "lease@example.com"),
    )
    real = clients.writer(str(ORG), "hubspot")
    assert real is not None
    w2 = Drainer(db_dsn, clients.writer, worker_id="W2")

    class Slow:
        source, max_batch = "hubspot", 100

        def update(
            self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]
        ) -> list[WriteResult]:
            time.sleep(LEASE_S + 0.1)  # the call outlasts the lease
            w2.run_once()  # another worker takes the expired jobs over and sends them
            return real.update(entity_type, items)

        def create(
            self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]
        ) -> list[WriteResult]:
            return real.create(entity_type, items)

    slow: CrmWriter = Slow()
    w1 = Drainer(db_dsn, lambda o, s: slow, lease_s=LEASE_S, worker_id="W1")
    w1.run_once()
    assert len(fake.requests_to("/batch/upsert", "POST")) == 1  # W2's only: W1 did not send after losing it
    assert open_jobs(org) == 0
    assert fake.properties("contacts", rid)["jobtitle"] == "slow"


def test_a_field_superseded_while_its_job_is_in_flight_is_not_sent(
    org: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """A webhook shows the CRM changed a field after we queued it, while the job is claimed: the field is
    dropped from the job in flight and not sent (the drainer renews and re-reads before each send group)."""
    rid = FIRST_ID + 3
    org.execute(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', NULL, 'create', %s, 'copilot', NULL, "
        "5::smallint, %s)",
        (ORG, Jsonb({"email": "first@example.com"}), "first@example.com"),
    )
    enqueue_update(org, rid, {"jobtitle": "ours", "phone": "ours"})
    real = clients.writer(str(ORG), "hubspot")
    assert real is not None

    class WebhookMeanwhile:
        source, max_batch = "hubspot", 100

        def create(
            self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]
        ) -> list[WriteResult]:
            # while this first group is out, someone edits the phone in HubSpot; its webhook is applied
            assert real.update("contact", [(str(rid), {"phone": "theirs"})])[0].ok
            change = {"crm_record_id": str(rid), "property": "phone", "value": "theirs"}
            change["occurred_at"] = "2999-01-01T00:00:00Z"
            org.execute(
                "SELECT crm.writeback_drop_superseded(%s, 'hubspot', 'contact', %s)", (ORG, Jsonb([change]))
            )
            return real.create(entity_type, items)

        def update(
            self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]
        ) -> list[WriteResult]:
            return real.update(entity_type, items)

    hook: CrmWriter = WebhookMeanwhile()
    Drainer(db_dsn, lambda o, s: hook).run_once()
    props = fake.properties("contacts", rid)
    assert (props["jobtitle"], props["phone"]) == ("ours", "theirs")
    assert open_jobs(org) == 0


# ---------------------------------------------------------------------------------------------- item 2
MARKER = "INTERNAL-SECRET-7f3a"


class Internal(http.server.BaseHTTPRequestHandler):
    """An internal service a base_url could point at: answers every request with a body holding MARKER."""

    status = 500
    json_body = False
    base_url = ""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.json_body:
            # category, code, correlation id and limit name are kept only when they are plain identifiers
            # (the rule keeps those of a real CRM): here each also carries text around the marker
            body = (
                f'{{"message": "{MARKER} db password", "category": "{MARKER} x y", "code": "<{MARKER}>",'
                f' "correlationId": "{MARKER} c", "policyName": "{MARKER} p", "errors": ["{MARKER}"]}}'
            ).encode()
            kind = "application/json"
        else:
            body = f"<html><body>admin console: {MARKER} api_key=abc</body></html>".encode()
            kind = f"text/html; {MARKER}"
        self.send_response(self.status, f"{MARKER} reason")
        if self.status == 429:
            self.send_header("Retry-After", "0.2")
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def internal() -> Iterator[type[Internal]]:
    handler = type("Handler", (Internal,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def everything_stored(db: Conn) -> str:
    """Every row of every table a tenant reads errors from, and the status report, as text."""
    parts = [
        str(db.execute(f"SELECT coalesce(jsonb_agg(t), '[]') FROM {table} AS t").fetchone())
        for table in (
            "crm.writeback_queue",
            "crm.job",
            "crm.connection",
            "crm.sync_state",
            "crm.webhook_inbox",
        )
    ]
    parts.append(render(org_status(db, ORG)))
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("status", "json_body"),
    [(400, False), (503, False), (401, False), (200, False), (400, True), (429, True), (401, True)],
    ids=["400-html", "503-html", "401-html", "200-html", "400-json", "429-json", "401-json"],
)
def test_no_stored_error_quotes_the_answer(
    db: Conn,
    db_dsn: str,
    internal: type[Internal],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    json_body: bool,
) -> None:
    """base_url points at an internal service (allowed by the operator, or before the allow-list): whatever it
    answers, queue rows, job rows, the connection and ``crmindex status`` hold status, category, code and
    correlation id at most, never the answer's text."""
    base_url = internal.base_url
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("CRMINDEX_ALLOWED_BASE_URLS", base_url)
    internal.status, internal.json_body = status, json_body
    connect(db, db_dsn, ORG, "hubspot", base_url)
    enqueue_update_for(db, FIRST_ID, {"jobtitle": "x"})
    enqueue_job(db, ORG, "hydrate", {"object_type": "contacts", "crm_record_id": str(FIRST_ID)},
                source="hubspot", dedupe_key=f"contacts:{FIRST_ID}")  # fmt: skip
    enqueue_job(db, ORG, "materialize", {"crm_record_id": str(FIRST_ID)}, source="hubspot",
                dedupe_key=f"contact:hubspot:{FIRST_ID}")  # fmt: skip
    clients = Clients(db_dsn, retry=RetryPolicy(max_attempts=1, max_rate_limit_retries=0))
    try:  # each worker of `crmindex drain` once (this server never recovers: --once would go on retrying)
        workers = Workers(db_dsn, clients)
        for worker in (workers.inbox, workers.hydrate, workers.materialize, workers.drainer):
            worker.run_once()
    finally:
        clients.close()
    stored = everything_stored(db)
    assert MARKER not in stored
    assert "api_key" not in stored and "db password" not in stored
    errors = [
        str(r[0])
        for r in db.execute(
            "SELECT last_error FROM crm.writeback_queue UNION ALL SELECT last_error FROM crm.job "
            "UNION ALL SELECT auth_error FROM crm.connection"
        )
        if r[0] is not None
    ]
    assert errors, "the calls failed, so something was recorded"
    if status != 200:
        assert any(f" {status}" in e for e in errors), errors  # the status is kept


def enqueue_update_for(db: Conn, rid: int, payload: dict[str, Any]) -> None:
    enqueue_update(db, rid, payload)
