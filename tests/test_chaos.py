"""Chaos: drainer processes killed with SIGKILL at random moments, and the database restarted, while a
write-back queue drains against a flaky FakeHubSpot. Nothing may be lost, duplicated or applied out of order.

Retried jobs wait on the backoff ladder (1 min first); these tests fast-forward it (``next_retry_at =
now()`` for failed jobs) instead of waiting: the ladder itself is tested in test_drainer.py.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from crmindex.platform.migrate import migrate
from crmindex.platform.pgcluster import LocalCluster
from crmindex.testing import FakeHubSpot
from crmindex.testing.synthetic import SyntheticCRM
from tests.orgs import ORG
from tests.test_drainer import DRAINER_SCRIPT, FAST_FORWARD_FAILED, TOKEN, TOKEN_ENV, connect

Conn = psycopg.Connection[tuple[object, ...]]
SEED = 23
CONTACTS = 4_000
FIRST_ID = int(SyntheticCRM(seed=SEED, contacts=1).contact_id(0))
LEASE_S = 3.0

pytestmark = pytest.mark.slow


class Drainers:
    """Drainer processes (``Drainer.run`` with signal handlers), each logging to a file of its own."""

    def __init__(self, dsn: str, logs: Path, *, batch: int = 50, tries: int = 2) -> None:
        self.dsn, self.logs, self.batch, self.tries = dsn, logs, batch, tries
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0
        self.kills = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        with open(self.logs / f"drainer-{self.started}.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    DRAINER_SCRIPT,
                    self.dsn,
                    str(self.batch),
                    str(LEASE_S),
                    str(self.tries),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),
            )
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def kill9(self, rng: random.Random) -> None:
        victim = rng.choice(self.alive())
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        self.kills += 1

    def stop(self) -> list[int | None]:
        for p in self.alive():
            p.send_signal(signal.SIGTERM)
        codes = []
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            codes.append(p.returncode)
        return codes

    def crashed(self) -> str:
        """Tail of the logs of drainers that exited on their own (not killed by us), for failure messages."""
        out = []
        for i, p in enumerate(self.procs, 1):
            if p.returncode not in (None, 0, -signal.SIGKILL):
                out.append((self.logs / f"drainer-{i}.log").read_text()[-3000:])
        return "\n".join(out)


class Ledger:
    """Every write queued, in order: the last value per record and field is what the CRM must end with."""

    def __init__(self) -> None:
        self.updates: dict[tuple[str, str], str] = {}  # (record id, property) -> last value
        self.creates: dict[tuple[str, str], str] = {}  # (email, property) -> last value
        self.ops = 0

    def update(self, db: Conn, rid: int, props: dict[str, str]) -> None:
        db.execute(
            "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', %s, 'update', %s, 'enrichment')",
            (ORG, str(rid), Jsonb(props)),
        )
        for k, v in props.items():
            self.updates[(str(rid), k)] = v
        self.ops += 1

    def create(self, db: Conn, email: str, props: dict[str, str]) -> None:
        db.execute(
            "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', NULL, 'create', %s, 'copilot', NULL, "
            "5::smallint, %s)",
            (ORG, Jsonb({"email": email, **props}), email),
        )
        for k, v in props.items():
            self.creates[(email, k)] = v
        self.ops += 1


def open_jobs(db: Conn) -> int:
    row = db.execute(
        "SELECT count(*) FROM crm.writeback_queue WHERE status IN ('pending', 'failed', 'processing')"
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def wait_drained(db: Conn, drainers: Drainers, timeout: float) -> float:
    """Until no job is open; failed jobs are fast-forwarded past their backoff."""
    started = time.monotonic()
    while open_jobs(db) > 0:
        assert time.monotonic() - started < timeout, (
            f"{open_jobs(db)} jobs still open after {timeout} s\n{drainers.crashed()}"
        )
        db.execute(FAST_FORWARD_FAILED)
        time.sleep(0.25)
    return time.monotonic() - started


def summary(db: Conn) -> dict[str, Any]:
    rows = db.execute(
        "SELECT status, count(*), count(*) FILTER (WHERE attempts > 1), "
        "count(*) FILTER (WHERE result ? 'coalesced_into'), count(*) FILTER (WHERE last_error IS NULL) "
        "FROM crm.writeback_queue GROUP BY status"
    ).fetchall()
    return {str(r[0]): {"jobs": r[1], "attempts>1": r[2], "coalesced": r[3], "no_error": r[4]} for r in rows}


def check_crm(fake: FakeHubSpot, ledger: Ledger, db: Conn, seeded: int) -> None:
    # no update lost, none applied out of order: the CRM holds the last value queued for every field
    wrong = [
        (rid, prop, want, fake.properties("contacts", rid).get(prop))
        for (rid, prop), want in ledger.updates.items()
        if fake.properties("contacts", rid).get(prop) != want
    ]
    assert not wrong, f"{len(wrong)} fields differ from the last queued value, e.g. {wrong[:5]}"
    # no record created twice: one record per email, holding the last queued values
    emails = {email for email, _ in ledger.creates}
    assert fake.count("contacts") == seeded + len(emails)
    assert fake.requests_to("/batch/create") == []
    store = fake.store("contacts")
    for (email, prop), want in ledger.creates.items():
        rec = store.find_unique(email)
        assert rec is not None, email
        assert fake.properties("contacts", rec.id).get(prop) == want, (email, prop)
    ids = db.execute(
        "SELECT match_key, array_agg(DISTINCT result ->> 'crm_record_id') FILTER (WHERE result ? 'crm_record_id') "
        "FROM crm.writeback_queue WHERE operation = 'create' GROUP BY match_key"
    ).fetchall()
    assert all(len(r[1] or []) <= 1 for r in ids), [r for r in ids if len(r[1] or []) > 1][:5]


def check_queue(db: Conn) -> dict[str, Any]:
    stats = summary(db)
    assert set(stats) <= {"completed", "dead_letter"}, stats
    if "dead_letter" in stats:
        assert stats["dead_letter"]["no_error"] == 0, "a dead letter without its reason"
    return stats


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False, tokens=[TOKEN], seed=SEED) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=CONTACTS))
        yield f


def test_kill_9_drainers_repeatedly_during_a_5000_job_drain(
    db: Conn, db_dsn: str, fake: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    connect(db, db_dsn, ORG, "hubspot", fake.base_url, per_second=6)  # ~6 calls/s: the drain takes a while
    rng = random.Random(SEED)
    ledger = Ledger()
    for i in range(CONTACTS):
        ledger.update(db, FIRST_ID + i, {"jobtitle": f"u0-{i}"})
    creates = [f"chaos-{k}@newlead.io" for k in range(500)]
    for k, email in enumerate(creates):
        ledger.create(db, email, {"firstname": f"C{k}", "jobtitle": "c0"})
    fake.set_faults(error_rate=0.05, latency=0.05)

    def produce() -> None:
        """Later changes to records whose earlier writes are queued, in flight or lost with a killed drainer."""
        prng = random.Random(SEED + 1)
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            for r in range(1, 13):
                time.sleep(1.2)
                for i in prng.sample(range(600), 200):
                    props = {"jobtitle": f"u{r}-{i}"}
                    if prng.random() < 0.3:
                        props["phone"] = f"+1 555 {r:02d}{i:04d}"
                    ledger.update(conn, FIRST_ID + i, props)
                for email in prng.sample(creates, 25):
                    ledger.create(conn, email, {"jobtitle": f"c{r}"})

    drainers = Drainers(db_dsn, tmp_path)
    producer = threading.Thread(target=produce, name="producer")
    try:
        for _ in range(3):
            drainers.start()
        producer.start()
        while drainers.kills < 10:
            time.sleep(rng.uniform(0.4, 1.6))
            drainers.kill9(rng)
            drainers.start()
        producer.join(30)
        assert not producer.is_alive()
        chaos_s = time.monotonic() - started
        drained_s = wait_drained(db, drainers, timeout=60)
    finally:
        producer.join(30)
        codes = drainers.stop()
    assert codes.count(-signal.SIGKILL) == drainers.kills == 10
    assert all(c in (0, -signal.SIGKILL) for c in codes), (codes, drainers.crashed())
    stats = check_queue(db)
    check_crm(fake, ledger, db, CONTACTS)
    jobs = sum(int(str(s["jobs"])) for s in stats.values())
    errors = sum(1 for r in fake.request_log if r.status >= 500)
    print(
        f"\nchaos: {drainers.kills} kill -9s over {chaos_s:.1f} s, drained {drainers.started} drainer processes "
        f"in {time.monotonic() - started:.1f} s (tail {drained_s:.1f} s); {ledger.ops} writes queued -> {jobs} "
        f"jobs {stats}; {len(fake.request_log)} API calls ({errors} 5xx); every field holds its last "
        f"queued value, {len({e for e, _ in ledger.creates})} creates -> no duplicate"
    )
    assert ledger.ops > 7_000 and jobs > 4_800


def test_database_restart_mid_drain_drainers_reconnect_and_finish(
    fake: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with LocalCluster() as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE chaos")
        dsn = cluster.dsn("chaos")
        migrate(dsn)
        ledger = Ledger()
        with psycopg.connect(dsn, autocommit=True) as db:
            connect(db, dsn, ORG, "hubspot", fake.base_url, per_second=12)
            for i in range(2_000):
                ledger.update(db, FIRST_ID + i, {"jobtitle": f"r-{i}"})
        fake.set_faults(error_rate=0.05, latency=0.05)
        drainers = Drainers(dsn, tmp_path)
        try:
            for _ in range(2):
                drainers.start()
            deadline = time.monotonic() + 30
            while len(fake.request_log) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            before = len(fake.request_log)
            restart_at = time.monotonic()
            cluster.restart()
            restart_s = time.monotonic() - restart_at
            with psycopg.connect(dsn, autocommit=True) as db:
                open_at_restart = open_jobs(db)
                drained_s = wait_drained(db, drainers, timeout=60)
                assert all(p.poll() is None for p in drainers.procs), drainers.crashed()
                stats = check_queue(db)
                check_crm(fake, ledger, db, CONTACTS)
        finally:
            codes = drainers.stop()
        assert codes == [0, 0], drainers.crashed()
        logs = "".join((tmp_path / f"drainer-{i}.log").read_text() for i in (1, 2))
        assert "reconnecting" in logs or "starting over" in logs
        print(
            f"\nrestart: {before} calls before, {open_at_restart} jobs open at the restart ({restart_s:.1f} s); "
            f"the drainers reconnected and finished in {drained_s:.1f} s: {stats}"
        )
