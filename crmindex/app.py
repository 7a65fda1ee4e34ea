"""The composition root: :class:`CrmIndex` builds and owns everything a deployment uses.

One object, built once per process, by the CLI, the demo, the WSGI receiver and user code alike::

    idx = crmindex.CrmIndex()                              # $DATABASE_URL, $CRMINDEX_SECRET_KEYS, ...
    hits = idx.search(org, "vps at fintech companies")     # an org-bound (row-level security) session
    idx.materialize(org, "stan@acme.com", reason="meeting_booked")
    idx.update_contact(org, "stan@acme.com", {"lifecycle_stage": "sql"})
    idx.workers().run()                                    # what `crmindex drain` runs
    application = idx.wsgi_app()                           # the webhook receiver, for any WSGI server
    idx.close()

It owns the database pool, the key ring (:class:`~crmindex.platform.secrets.SecretBox`), the token store and the
CRM clients (:class:`~crmindex.crm.clients.Clients`, which hold the shared Postgres rate limiters), each org's
materialization budget, and builds the workers and the webhook receiver from them. Nothing else in the package
builds these: a fix to how clients, budgets or workers are wired is made here once.

``Workers`` is all background work as one unit (``crmindex drain``): the write-back drainer, the webhook inbox
processor, hydration of records webhooks name, and queued materializations within each org's budget.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from psycopg_pool import ConnectionPool

from crmindex.crm.clients import Clients
from crmindex.crm.connections import Connection, list_connections
from crmindex.crm.oauth import OAuthApp
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.intake import WebhookReceiver
from crmindex.freshness.metadata import METADATA_KIND, MetadataReport, metadata_handler, refresh_metadata
from crmindex.freshness.reconcile import ReconcileReport, reconcile
from crmindex.freshness.sync import Lister, SyncReport, run_sync
from crmindex.freshness.webhooks import HYDRATE_KIND, INBOX, process_inbox
from crmindex.freshness.wsgi import WsgiApp, make_wsgi_app
from crmindex.index.search import ResolveCandidate, SearchResult, resolve_contact, search
from crmindex.platform.db import Conn, bind_org, resolve_dsn
from crmindex.platform.queue import Queue, Worker
from crmindex.platform.secrets import KeyProvider, SecretBox
from crmindex.records.materialize import (
    MATERIALIZE_KIND,
    AccountBudget,
    Materialized,
    Reason,
    materialize_contact,
    materialize_jobs_handler,
    materialize_many,
)
from crmindex.status import OrgStatus, org_status
from crmindex.writeback.drainer import Drainer
from crmindex.writeback.enqueue import QueuedWrite, TriggeredBy, update_contact

log = logging.getLogger("crmindex.app")
JOBS = Queue("crm.job")
OrgId = uuid.UUID | str


class _Budgets(dict[object, object]):
    """Every account's budget, made on first use, so queued materializations keep to it under ``drain``."""

    def __missing__(self, key: object) -> object:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise KeyError(key)
        value = AccountBudget(str(key[0]), str(key[1]))
        self[key] = value
        return value

    def get(self, key: object, default: object = None) -> object:
        try:
            return self[key]
        except KeyError:
            return default


class _LazyFetchers(dict[tuple[str, str], object]):
    """Each account's record fetcher, built on first use (an account without a usable connection: None, and the
    handler retries its jobs later)."""

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
    """All background work of a deployment (``crmindex drain``); build it with :meth:`CrmIndex.workers`.

    ``run_once`` drains what is due now and returns counts (cron style, e.g. pg_cron + pg_net calling an
    endpoint); ``run`` keeps every worker going on LISTEN/NOTIFY wake-ups until ``stop`` is set (SIGTERM/SIGINT
    finish in-flight work and release the rest)."""

    dsn: str
    clients: Clients
    stop: threading.Event = field(default_factory=threading.Event)
    poll_s: float = 5.0
    budgets: Mapping[object, object] = field(default_factory=_Budgets)

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
            materialize_jobs_handler(_LazyFetchers(self.clients), self.budgets),  # type: ignore[arg-type]
            kind=MATERIALIZE_KIND,
            stop=self.stop,
            poll_s=self.poll_s,
        )
        # each account's owners and pipeline stages, when an index write named ones it did not know
        self.metadata = Worker(
            self.dsn,
            JOBS,
            metadata_handler(self.clients.lister),
            kind=METADATA_KIND,
            stop=self.stop,
            poll_s=self.poll_s,
        )

    def run_once(self, max_passes: int = 1000) -> dict[str, int]:
        """Drain everything due now (inbox first, then hydration, materialization and write-back), at most
        ``max_passes`` rounds (a CRM answering 429 forever would otherwise keep a ``--once`` run going)."""
        counts = {"inbox": 0, "hydrate": 0, "materialize": 0, "writeback": 0, "metadata": 0}
        for _ in range(max_passes):
            if self.stop.is_set():
                break
            a = self.inbox.run_once()
            b = self.hydrate.run_once()
            c = self.materialize.run_once()
            d = self.drainer.run_once()
            e = self.metadata.run_once()
            counts["inbox"] += a
            counts["hydrate"] += b
            counts["materialize"] += c
            counts["writeback"] += d
            counts["metadata"] += e
            if a + b + c + d + e == 0:
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
                ("metadata", self.metadata),
            )
        ]
        for t in threads:
            t.start()
        self.stop.wait()
        for t in threads:
            t.join(timeout=30)


class CrmIndex:
    """The one object a deployment builds (see the module docstring).

    ``dsn``: the database (default ``$DATABASE_URL``), used by workers and the operator path (a ``crm_worker``
    login, or the owner). ``keys``: the key ring that seals CRM tokens (a :class:`SecretBox`, a host
    :class:`KeyProvider` (a KMS), or default ``$CRMINDEX_SECRET_KEYS``, read on first use).
    ``allowed_base_urls``: base URLs other than the CRMs' own where tokens may go (fakes, a proxy; default
    ``$CRMINDEX_ALLOWED_BASE_URLS``, else none). ``apps``: the OAuth apps per CRM (default
    ``$CRMINDEX_<CRM>_CLIENT_ID`` / ``_CLIENT_SECRET``). ``hubspot_client_secret``: the HubSpot app's client
    secret for webhook signatures (default ``$CRMINDEX_HUBSPOT_CLIENT_SECRET``). ``retry``: the CRM clients'
    :class:`~crmindex.crm.http.RetryPolicy`.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        keys: SecretBox | KeyProvider | None = None,
        allowed_base_urls: Iterable[str] | None = None,
        apps: Mapping[str, OAuthApp] | None = None,
        hubspot_client_secret: str | Sequence[str] | None = None,
        retry: Any = None,
        pool_size: int = 4,
    ) -> None:
        self.dsn = resolve_dsn(dsn)
        self._box: SecretBox | None = (
            keys if isinstance(keys, SecretBox) else SecretBox(keys) if keys is not None else None
        )
        self._hubspot_client_secret = hubspot_client_secret
        self.clients = Clients(
            self.dsn,
            box=self._box,
            allowed_base_urls=allowed_base_urls,
            apps=apps,
            retry=retry,
        )
        self._pool_size = pool_size
        self._pool: ConnectionPool[Conn] | None = None
        self._budgets = _Budgets()
        self._receivers: list[WebhookReceiver] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CrmIndex(pool={'open' if self._pool is not None else 'closed'}, {self.clients!r})"

    # -- what it owns -----------------------------------------------------------------------------------------
    @property
    def box(self) -> SecretBox:
        """The key ring (built from the environment on first use when none was given)."""
        if self._box is None:
            self._box = SecretBox.from_env()
        return self._box

    @property
    def pool(self) -> ConnectionPool[Conn]:
        """The process's pool of autocommit connections (opened on first use)."""
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.dsn,
                    min_size=1,
                    max_size=self._pool_size,
                    kwargs={"autocommit": True},
                    open=True,
                    name="crmindex",
                )
            return self._pool

    @contextlib.contextmanager
    def connection(self, org_id: OrgId | None = None) -> Iterator[Conn]:
        """A pooled connection; with ``org_id`` it is bound to that org for the block (row-level security sees
        only its rows, and every function refuses another org). The binding is removed before it goes back."""
        with self.pool.connection() as conn:
            if org_id is None:
                yield conn
                return
            bind_org(conn, org_id)
            try:
                yield conn
            finally:
                bind_org(conn, None)

    def budget(self, org_id: OrgId, source: str) -> AccountBudget:
        """The account's materialization budget (one object per account for the process's lifetime)."""
        budget = self._budgets[(str(org_id), source)]
        assert isinstance(budget, AccountBudget)
        return budget

    def workers(self, *, stop: threading.Event | None = None, poll_s: float = 5.0) -> Workers:
        """Every background worker, sharing this object's clients, limiters and budgets."""
        return Workers(
            self.dsn, self.clients, stop=stop or threading.Event(), poll_s=poll_s, budgets=self._budgets
        )

    def receiver(self, **kwargs: Any) -> WebhookReceiver:
        """The webhook receiver (verifies on the raw bytes, files deliveries; see freshness/intake.py), sharing
        this object's pool and key ring. Closed with this object."""
        kwargs.setdefault("secret_box", self.box)
        if self._hubspot_client_secret is not None:
            kwargs.setdefault("hubspot_client_secret", self._hubspot_client_secret)
        receiver = WebhookReceiver(self.pool, **kwargs)
        self._receivers.append(receiver)
        return receiver

    def wsgi_app(self, *, trust_proxy: bool = False, public_url: str | None = None, **kwargs: Any) -> WsgiApp:
        """A WSGI app serving ``POST /webhooks/hubspot`` and ``/webhooks/attio`` (and ``GET /healthz``)."""
        return make_wsgi_app(self.receiver(**kwargs), trust_proxy=trust_proxy, public_url=public_url)

    # -- the flows --------------------------------------------------------------------------------------------
    def connections(self, org_id: OrgId | None = None) -> list[Connection]:
        with self.connection() as conn:
            return list_connections(conn, org_id)

    def _sources(self, org_id: OrgId, source: str | None) -> list[Connection]:
        found = [c for c in self.connections(org_id) if source is None or c.crm_source == source]
        if not found:
            from crmindex.errors import NotFoundError

            raise NotFoundError(
                f"org {org_id} has no {source or 'CRM'} connection (run `crmindex connect` first)"
            )
        return found

    def lister(self, org_id: OrgId, source: str) -> Lister:
        """Every record of the account, page by page (the CRM's own lister, from crm.registry)."""
        return self.clients.lister(org_id, source)

    def sync(
        self, org_id: OrgId, source: str | None = None, *, progress: bool = False, restart: bool = False
    ) -> list[SyncReport]:
        """The initial (resumable) sync of the org's connected CRMs into the index."""
        # a rerun after the database restarted must not fail again on the pool's idle connections of before: they are
        # checked (and replaced) first, once per sync, not on every borrow (searches keep their fixed cost)
        self.pool.check()
        reports = []
        for c in self._sources(org_id, source):
            with self.connection() as conn:
                reports.append(run_sync(conn, org_id, self.lister(org_id, c.crm_source), progress=progress,
                                        restart=restart))  # fmt: skip
        return reports

    def refresh_metadata(self, org_id: OrgId, source: str | None = None) -> list[MetadataReport]:
        """Fetch the org's CRM vocabulary now (owners, deal pipelines and stages: crmindex.freshness.metadata)."""
        out: list[MetadataReport] = []
        for c in self._sources(org_id, source):
            with self.connection() as conn:
                report = refresh_metadata(conn, str(org_id), self.lister(org_id, c.crm_source))
            if report is not None:
                out.append(report)
        return out

    def reconcile(self, org_id: OrgId, source: str | None = None) -> list[ReconcileReport]:
        """On-demand repair after webhook downtime (nothing runs it on a schedule)."""
        reports = []
        for c in self._sources(org_id, source):
            lister, fetcher = self.lister(org_id, c.crm_source), self.clients.fetcher(org_id, c.crm_source)
            with self.connection() as conn:
                reports.append(reconcile(conn, org_id, lister, fetcher))
        return reports

    def search(self, org_id: OrgId, query: str, limit: int = 50, after: str | None = None) -> SearchResult:
        """The copilot's search: interpret the phrase, search the org's index (an org-bound session)."""
        with self.connection(org_id) as conn:
            return search(conn, org_id, query, limit=limit, after=after)

    def resolve(self, org_id: OrgId, text: str, limit: int = 5) -> list[ResolveCandidate]:
        with self.connection(org_id) as conn:
            return resolve_contact(conn, org_id, text, limit)

    def materialize(self, org_id: OrgId, ref: str | int, *, reason: Reason = "copilot", actor: str | None = None
                    ) -> Materialized:  # fmt: skip
        """Fetch one contact's full record into tier 2 now (REF: index id, CRM id or email)."""
        from crmindex.index.refs import resolve_contact as resolve_ref

        with self.connection() as conn:
            source = resolve_ref(conn, org_id, ref).crm_source
            return materialize_contact(conn, self.clients.fetcher(org_id, source), org_id, ref, reason=reason,
                                       actor=actor)  # fmt: skip

    def materialize_many(self, org_id: OrgId, refs: Sequence[str | int], *, reason: Reason = "bulk",
                         source: str | None = None) -> Any:  # fmt: skip
        """Bulk materialization within the account's budget; the rest is queued for the workers."""
        with self.connection() as conn:
            src = source or self._sources(org_id, None)[0].crm_source
            return materialize_many(conn, self.clients.fetcher(org_id, src), org_id, refs, reason=reason,
                                    budget=self.budget(org_id, src))  # fmt: skip

    def update_contact(
        self,
        org_id: OrgId,
        ref: str | int,
        fields: Mapping[str, object],
        *,
        triggered_by: TriggeredBy = "copilot",
        user_id: uuid.UUID | None = None,
    ) -> QueuedWrite:
        """Change a contact in the index now and queue the CRM write (an org-bound session)."""
        with self.connection(org_id) as conn:
            return update_contact(conn, org_id, ref, fields, triggered_by=triggered_by, user_id=user_id)

    def status(self, org_id: OrgId) -> OrgStatus:
        with self.connection() as conn:
            return org_status(conn, org_id)

    # -- lifetime ---------------------------------------------------------------------------------------------
    def close(self) -> None:
        for receiver in self._receivers:
            receiver.close()
        self._receivers.clear()
        self.clients.close()
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> CrmIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


_default: CrmIndex | None = None
_default_lock = threading.Lock()


def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A WSGI entry point for the webhook receiver, configured from the environment (``gunicorn
    crmindex.app:application``): $DATABASE_URL (a ``crm_receiver`` login), $CRMINDEX_SECRET_KEYS,
    $CRMINDEX_HUBSPOT_CLIENT_SECRET; $CRMINDEX_PUBLIC_URL when behind a proxy."""
    import os

    global _default, _app
    with _default_lock:
        if _default is None:
            _default = CrmIndex()
            _app = _default.wsgi_app(public_url=os.environ.get("CRMINDEX_PUBLIC_URL") or None)
    return _app(environ, start_response)


_app: WsgiApp
