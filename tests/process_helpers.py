"""Helpers of ``tests/test_faults_process.py``: connect a fake CRM to an org, generate CRM traffic with its
webhook deliveries, drain the inbox and hydration, and the worker process that those tests kill.

The comparison of the index with the fake HubSpot (``mismatches``) and the random CRM operations
(``World.run``) come from ``tests/test_convergence.py``; the receiver process from
``tests/test_webhook_durability.py``.
"""

from __future__ import annotations

import os
import random
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from crmindex.crm.protocols import RecordFetcher
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.pgcluster import LocalCluster
from crmindex.platform.queue import Queue, Worker
from crmindex.testing.connections import connect_with_token
from tests.test_convergence import OP_KINDS, World

Conn = psycopg.Connection[tuple[object, ...]]
TOKEN = "test-token"
TOKEN_ENV, SECRET_ENV = "FAULTS_CRM_TOKEN", "FAULTS_WEBHOOK_SECRET"
SECRET = "faults-webhook-secret"

# What `crmindex drain` runs (crmindex.app.Workers: inbox, hydration, materialization, write-back
# threads, SIGTERM stops them), with a short lease so a killed worker's deliveries come back in seconds
# rather than the default minute.
WORKERS_SCRIPT = textwrap.dedent(
    """
    import signal
    import sys

    from crmindex.crm.http import RetryPolicy
    from crmindex.crm.clients import Clients
    from crmindex.app import Workers

    dsn, lease_s = sys.argv[1], float(sys.argv[2])
    clients = Clients(dsn, retry=RetryPolicy.fast(max_attempts=3))
    workers = Workers(dsn, clients, poll_s=0.5)
    for worker in (workers.inbox, workers.hydrate):
        worker.lease_s = lease_s
        worker.batch = 25
    signal.signal(signal.SIGTERM, lambda *_: workers.stop.set())
    print("ready", flush=True)
    try:
        workers.run()
    finally:
        clients.close()
    """
)


def connect_crm(
    db: Conn,
    dsn: str,
    org: uuid.UUID,
    source: str,
    account: str,
    base_url: str,
    *,
    settings: dict[str, Any] | None = None,
    per_second: int = 1000,
) -> None:
    """Register the org's CRM connection (the token and webhook secret of ``$TOKEN_ENV`` / ``$SECRET_ENV``
    stored sealed) and give the account's shared limiter room (``per_second`` calls)."""
    connect_with_token(
        db,
        None,
        org,
        source,
        os.environ.get(TOKEN_ENV) or TOKEN,
        account_id=account,
        base_url=base_url,
        settings=settings or {},
        webhook_secret=os.environ.get(SECRET_ENV),
    )
    lim = PgRateLimiter(dsn, org, source)
    try:
        for cls in ("general",) if source == "hubspot" else ("read", "write"):
            lim.configure(cls, per_second, 1.0)
    finally:
        lim.close()


def random_ops(world: World, n: int, seed: int) -> None:
    """``n`` random CRM operations (creates, updates, deletes, restores, merges, associations, deal stages);
    their deliveries pile up in ``world.pending``."""
    rng = random.Random(seed)
    for _ in range(n):
        world.run((rng.choice(OP_KINDS), rng.randrange(1000), rng.randrange(1000), rng.randrange(1000)))


def drain(dsn: str, fetcher: RecordFetcher) -> None:
    """Apply every due inbox delivery and hydration job in this process."""
    inbox = Worker(dsn, INBOX, process_inbox)
    hydrate = Worker(dsn, Queue("crm.job"), hydrate_handler(lambda org, src: fetcher), kind="hydrate")
    while inbox.run_once() + hydrate.run_once():
        pass


def queue_status(db: Conn, org: uuid.UUID) -> dict[str, dict[str, int]]:
    """Rows per status of the inbox and of the job table."""
    out: dict[str, dict[str, int]] = {}
    for name, table in (("inbox", "crm.webhook_inbox"), ("jobs", "crm.job")):
        rows = db.execute(f"SELECT status, count(*) FROM {table} WHERE org_id = %s GROUP BY 1", (org,))
        out[name] = {str(s): int(str(n)) for s, n in rows}
    return out


def wait_for(
    check: Callable[[], bool], timeout: float, what: str, detail: Callable[[], str] = lambda: ""
) -> float:
    """Poll ``check`` until true; fails the test after ``timeout`` seconds. Returns the seconds waited."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not after {timeout} s {detail()}"
        time.sleep(0.1)
    return time.monotonic() - started


def stop(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """SIGTERM every live process, then wait (SIGKILL after 30 s); their exit codes."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    codes = []
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        codes.append(p.returncode)
    return codes


def pg_ctl(cluster: LocalCluster, *args: str) -> None:
    """Run ``pg_ctl`` on the cluster's data directory (as the ``postgres`` OS user when we are root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*prefix, str(cluster.bindir / "pg_ctl"), "-D", str(cluster.data_dir), *args],
        check=True,
        capture_output=True,
    )


def outage(cluster: LocalCluster, seconds: float) -> None:
    """A database outage: stop the server (fast: clients are disconnected), stay down, start it again."""
    assert cluster.base_dir is not None
    pg_ctl(cluster, "-m", "fast", "-w", "stop")
    time.sleep(seconds)
    pg_ctl(cluster, "-o", f"-p {cluster.port}", "-l", str(cluster.base_dir / "server.log"), "-w", "start")


def _count(dsn: str, query: str) -> int:
    with psycopg.connect(
        dsn, autocommit=True
    ) as conn:  # its own: a transaction sees one snapshot of the stats
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(str(row[0]))


def sessions_waiting_on_locks(dsn: str) -> int:
    """How many sessions of ``dsn``'s database wait for a lock right now."""
    return _count(
        dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )


def deadlocks_counted(dsn: str) -> int:
    """The deadlocks the server has counted in ``dsn``'s database (pg_stat_database, flushed within a second)."""
    return _count(dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
