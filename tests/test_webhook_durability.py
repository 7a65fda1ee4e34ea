"""Nothing accepted is lost: a delivery answered 2xx survives ``kill -9`` of the receiver before any worker
ran, and a worker killed in the middle of a batch leaves its deliveries to the next worker (lease expiry),
whose effects are the same as one clean run (the appliers are idempotent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

from crmindex.crm.hubspot.adapters import HubSpotFetcher
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.sync import HubSpotLister, run_sync
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.platform.limits import LimitClass
from crmindex.platform.local_limiter import LocalRateLimiter, Rate
from crmindex.platform.queue import Queue, Worker
from crmindex.testing import FakeHubSpot
from crmindex.testing._server import Delivery
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from tests.orgs import ORG

Conn = psycopg.Connection[tuple[object, ...]]
PORTAL = 424242
PUBLIC = "https://hooks.example.com"
URL = f"{PUBLIC}/webhooks/hubspot"
SECRET = "durability-client-secret"
ROOT = Path(__file__).resolve().parents[1]

RECEIVER = textwrap.dedent(
    """
    import sys
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from crmindex.freshness.intake import WebhookReceiver
    from crmindex.freshness.wsgi import make_wsgi_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    receiver = WebhookReceiver(sys.argv[1])
    server = make_server("127.0.0.1", 0, make_wsgi_app(receiver, public_url=sys.argv[2]), handler_class=Quiet)
    print(server.server_port, flush=True)
    server.serve_forever()
    """
)

# a worker that applies a batch (each delivery commits its own transaction) and is killed before it
# records the outcomes: its jobs stay 'processing' until the lease expires
DOOMED_WORKER = textwrap.dedent(
    """
    import sys
    import time

    from crmindex.platform.queue import Worker
    from crmindex.freshness.webhooks import INBOX, process_inbox

    def handler(conn, jobs):
        out = process_inbox(conn, jobs)
        print(len(jobs), flush=True)
        time.sleep(600)  # killed here
        return out

    Worker(sys.argv[1], INBOX, handler, batch=100, lease_s=float(sys.argv[2])).run_once()
    """
)


@dataclass
class Setup:
    db: Conn
    dsn: str
    fake: FakeHubSpot
    client: HubSpotClient


@pytest.fixture
def setup(db: Conn, db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("DURABILITY_HS_TOKEN", "test-token")
    monkeypatch.setenv("DURABILITY_HS_SECRET", SECRET)
    limiter = LocalRateLimiter(
        {LimitClass.HUBSPOT_GENERAL: Rate(10_000, 1_000), LimitClass.HUBSPOT_SEARCH: Rate(10_000, 1_000)}
    )
    with FakeHubSpot(
        limits=False, webhook_url=URL, client_secret=SECRET, emit="collect", portal_id=PORTAL
    ) as fake:
        fake.seed_from(SyntheticCRM(11, 40, companies=5, deals=3))
        connect_with_token(db, None, ORG, "hubspot", "test-token", account_id=str(PORTAL),
                           base_url=fake.base_url, webhook_secret=SECRET)  # fmt: skip
        client = HubSpotClient(fake.base_url, lambda: "test-token", limiter)
        try:
            run_sync(db, ORG, HubSpotLister(client), progress=False)
            yield Setup(db, db_dsn, fake, client)
        finally:
            client.close()


def _spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


def _kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    if proc.stdout is not None:
        proc.stdout.close()


def _mutate(s: Setup) -> tuple[list[Delivery], dict[str, str], str]:
    """Some CRM changes; returns their deliveries, the expected titles and a new contact's email."""
    ids = [str(i) for i in list(s.fake.store("contacts").ids_from(0))[:12]]
    titles = {}
    for n, rid in enumerate(ids):
        titles[rid] = f"VP of Durability {n}"
        s.fake.update_property("contacts", rid, "jobtitle", titles[rid])
    email = "survivor@kill-nine.io"
    s.fake.create("contacts", {"email": email, "firstname": "Sur", "lastname": "Vivor", "jobtitle": "CTO"})
    s.fake.delete("contacts", ids[-1])
    return s.fake.take_deliveries(), titles, email


def _drain(s: Setup) -> None:
    fetcher = HubSpotFetcher(s.client)
    inbox = Worker(s.dsn, INBOX, process_inbox, lease_s=2.0)
    hydrate = Worker(s.dsn, Queue("crm.job"), hydrate_handler(lambda org, src: fetcher), kind="hydrate")
    while inbox.run_once() + hydrate.run_once():
        pass


def _assert_applied(s: Setup, titles: dict[str, str], email: str) -> None:
    got = {
        str(r[0]): r[1]
        for r in s.db.execute(
            "SELECT crm_record_id, job_title FROM crm.contact_index "
            "WHERE org_id = %s AND crm_record_id = ANY(%s) AND deleted_at IS NULL",
            (ORG, list(titles)),
        )
    }
    last = list(titles)[-1]
    assert got == {k: v for k, v in titles.items() if k != last}
    deleted = s.db.execute(
        "SELECT deleted_at IS NOT NULL FROM crm.contact_index WHERE org_id = %s AND crm_record_id = %s",
        (ORG, last),
    ).fetchone()
    assert deleted == (True,)
    found = s.db.execute(
        "SELECT first_name, job_title, seniority FROM crm.contact_index WHERE org_id = %s AND email = %s",
        (ORG, email),
    ).fetchall()
    assert found == [("Sur", "CTO", "c_suite")]
    status = s.db.execute(
        "SELECT status, count(*) FROM crm.webhook_inbox WHERE org_id = %s GROUP BY status", (ORG,)
    ).fetchall()
    assert {str(k): int(str(v)) for k, v in status} == {"completed": _inbox_rows(s)}


def _inbox_rows(s: Setup) -> int:
    row = s.db.execute("SELECT count(*) FROM crm.webhook_inbox WHERE org_id = %s", (ORG,)).fetchone()
    assert row is not None
    return int(str(row[0]))


def test_accepted_deliveries_survive_kill_9_of_the_receiver(setup: Setup) -> None:
    s = setup
    deliveries, titles, email = _mutate(s)
    assert len(deliveries) == 14
    proc = _spawn(RECEIVER, s.dsn, PUBLIC)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for d in deliveries:
            res = requests.post(
                f"http://127.0.0.1:{port}/webhooks/hubspot", data=d.body, headers=d.headers, timeout=10
            )
            assert res.status_code == 200, res.text
    finally:
        _kill9(proc)  # before any worker ran
    pending = s.db.execute(
        "SELECT count(*) FROM crm.webhook_inbox WHERE org_id = %s AND status = 'pending'", (ORG,)
    ).fetchone()
    assert pending == (len(deliveries),)
    # the index has not changed yet; a worker started later applies everything
    assert s.db.execute(
        "SELECT count(*) FROM crm.contact_index WHERE org_id = %s AND email = %s", (ORG, email)
    ).fetchone() == (0,)
    _drain(s)
    _assert_applied(s, titles, email)


def test_a_worker_killed_mid_batch_is_replaced_after_its_lease(setup: Setup) -> None:
    s = setup
    deliveries, titles, email = _mutate(s)
    # deliveries are duplicated too: the CRM retries as well
    for d in deliveries + deliveries[:3]:
        s.db.execute(
            "SELECT crm.webhook_accept(%s, 'hubspot', %s, %s, '{}', 1)", (ORG, str(PORTAL), d.body.decode())
        )
    lease_s = 1.5
    proc = _spawn(DOOMED_WORKER, s.dsn, str(lease_s))
    try:
        assert proc.stdout is not None
        assert int(proc.stdout.readline()) == len(deliveries) + 3  # the whole batch was applied...
    finally:
        _kill9(proc)  # ...and the worker dies before recording any outcome
    row = s.db.execute(
        "SELECT count(*) FILTER (WHERE status = 'processing'), count(*) FROM crm.webhook_inbox WHERE org_id = %s",
        (ORG,),
    ).fetchone()
    assert row == (len(deliveries) + 3, len(deliveries) + 3)
    # before the lease expires no one else takes them
    assert Worker(s.dsn, INBOX, process_inbox).run_once() == 0
    time.sleep(lease_s + 0.2)
    _drain(s)
    _assert_applied(s, titles, email)
    attempts = s.db.execute(
        "SELECT min(attempts), max(attempts) FROM crm.webhook_inbox WHERE org_id = %s", (ORG,)
    ).fetchone()
    assert attempts == (2, 2)  # each delivery applied by the killed worker, then by its replacement
    # effects are exactly once: one hydration per created record, however often it was asked for
    jobs = s.db.execute(
        "SELECT dedupe_key, count(*) FROM crm.job WHERE org_id = %s AND kind = 'hydrate' GROUP BY 1", (ORG,)
    ).fetchall()
    assert jobs and all(int(str(n)) == 1 for _, n in jobs), jobs
    rows = s.db.execute(
        "SELECT count(*), count(DISTINCT crm_record_id) FROM crm.contact_index WHERE org_id = %s", (ORG,)
    ).fetchone()
    assert rows is not None and rows[0] == rows[1] == 41
