"""All background work of a deployment, as one unit: ``crmindex drain`` runs this.

* the write-back drainer (``crm.writeback_queue``),
* the webhook inbox processor (``crm.webhook_inbox``),
* hydration of records named by webhooks (``crm.job`` kind ``hydrate``),
* queued bulk materializations (``crm.job`` kind ``materialize``, within each org's budget).

``run_once`` drains what is due now and returns counts (cron style, e.g. pg_cron + pg_net calling an
endpoint); ``run`` keeps every worker going on LISTEN/NOTIFY wake-ups until ``stop`` is set (SIGTERM/SIGINT
finish in-flight work and release the rest).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from crmindex.crm.clients import Clients
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.webhooks import HYDRATE_KIND, INBOX, process_inbox
from crmindex.platform.queue import Queue, Worker
from crmindex.records.materialize import MATERIALIZE_KIND, materialize_jobs_handler
from crmindex.writeback.drainer import Drainer

log = logging.getLogger("crmindex.workers")
JOBS = Queue("crm.job")


@dataclass(frozen=True)
class _AccountBudget:
    """An account's materialization budget: the ``materialize`` class of its shared limiter row."""

    org_id: str
    source: str


class _Budgets(dict[object, object]):
    """Every account's materialization budget, so queued materializations keep to it under ``crmindex drain``
    (``materialize_many`` queues what its budget does not allow now; the jobs must not then run at once)."""

    def __missing__(self, key: object) -> object:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise KeyError(key)
        value = _AccountBudget(str(key[0]), str(key[1]))
        self[key] = value
        return value

    def get(self, key: object, default: object = None) -> object:
        try:
            return self[key]
        except KeyError:
            return default


class _LazyFetchers(dict[tuple[str, str], object]):
    def __init__(self, clients: Clients) -> None:
        super().__init__()
        self.clients = clients

    def __missing__(self, key: tuple[str, str]) -> object:
        value = self.clients.fetcher(*key)
        self[key] = value
        return value

    def get(self, key: tuple[str, str], default: object = None) -> object:
        try:
            return self[key]
        except Exception:  # no connection / token: the handler retries the job later
            return default


@dataclass
class Workers:
    dsn: str
    clients: Clients
    stop: threading.Event = field(default_factory=threading.Event)
    poll_s: float = 5.0

    def __post_init__(self) -> None:
        self.drainer = Drainer(self.dsn, self.clients.writer, stop=self.stop, poll_s=self.poll_s)
        self.inbox = Worker(self.dsn, INBOX, process_inbox, stop=self.stop, poll_s=self.poll_s)
        self.hydrate = Worker(
            self.dsn,
            JOBS,
            hydrate_handler(self.clients.fetcher),
            kind=HYDRATE_KIND,
            stop=self.stop,
            poll_s=self.poll_s,
        )
        self.materialize = Worker(
            self.dsn,
            JOBS,
            materialize_jobs_handler(_LazyFetchers(self.clients), _Budgets()),  # type: ignore[arg-type]
            kind=MATERIALIZE_KIND,
            stop=self.stop,
            poll_s=self.poll_s,
        )

    def run_once(self) -> dict[str, int]:
        """Drain everything due now (inbox first, then hydration, materialization and write-back)."""
        counts = {"inbox": 0, "hydrate": 0, "materialize": 0, "writeback": 0}
        while not self.stop.is_set():
            a = self.inbox.run_once()
            b = self.hydrate.run_once()
            c = self.materialize.run_once()
            d = self.drainer.run_once()
            counts["inbox"] += a
            counts["hydrate"] += b
            counts["materialize"] += c
            counts["writeback"] += d
            if a + b + c + d == 0:
                break
        return counts

    def run(self) -> None:
        """Run every worker in its own thread until ``stop`` is set."""
        threads = [
            threading.Thread(target=w.run, name=f"crmindex-{name}", daemon=True)
            for name, w in (
                ("inbox", self.inbox),
                ("hydrate", self.hydrate),
                ("materialize", self.materialize),
                ("writeback", self.drainer),
            )
        ]
        for t in threads:
            t.start()
        self.stop.wait()
        for t in threads:
            t.join(timeout=30)
