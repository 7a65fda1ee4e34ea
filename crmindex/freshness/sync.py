"""Initial sync: every contact, company and deal of a connected CRM into the index, resumable.

Pages are fetched by a background thread (bounded read-ahead) while the main thread writes: API fetching
and database writing overlap, so a run is bounded by the CRM's rate limit, not by our own work. Each page's
rows and the cursor of the next page are committed in one transaction (``crm.sync_checkpoint``), so a
crash or Ctrl-C resumes from the last committed page: no gap, and no duplicate (upserts are idempotent).
Archived records (HubSpot ``archived=true`` listings) arrive as soft deletes. A finished sync sets the
org's watermark (the sync's start time) that ``reconcile`` repairs from after webhook downtime.

The pages come from the account's :class:`~crmindex.crm.protocols.Lister` (its CRM's entry in
:mod:`crmindex.crm.registry`; HubSpot: companies, contacts, deals with their contact/company associations, then
the archived listings; Attio: companies, contacts, deals); every state change is a SQL function of
``sql/freshness/sync.sql`` (``crm.sync_restart``, ``crm.sync_checkpoint``, ``crm.sync_fail``,
``crm.sync_advance_watermark``) or an upsert (``crmindex.index.writes.upsert_rows``).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from tqdm import tqdm

from crmindex.crm.attio.lister import AttioLister
from crmindex.crm.connections import clear_auth_failure, flag_auth_failure
from crmindex.crm.errors import AuthError, CrmError
from crmindex.crm.hubspot.lister import HubSpotLister
from crmindex.crm.protocols import Lister, Page
from crmindex.freshness.lists import sync_lists
from crmindex.freshness.metadata import refresh_for_sync
from crmindex.index.maintain import AfterSync, Rebuilt, after_initial_sync
from crmindex.index.writes import upsert_rows
from crmindex.platform.bounds import is_email
from crmindex.platform.db import Conn, translate_errors

# the listers live with their CRMs (crmindex.crm.<crm>.lister; build them with Clients.lister); re-exported here for
# the callers that import them from the sync
__all__ = [
    "AttioLister",
    "HubSpotLister",
    "Lister",
    "Page",
    "SyncError",
    "SyncReport",
    "run_sync",
    "sanitize",
]

log = logging.getLogger("crmindex.sync")


class SyncError(CrmError):
    """The sync stopped; the message names the object type and page. Run it again to resume."""


def sanitize(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Keep what the CRM sent, minus values the index would reject (logged with the record id): an email that
    ``crm.upsert_contacts`` would refuse (trimmed of spaces as its ``btrim``, then ``crm.is_email``)."""
    for row in rows:
        email = row.get("email")
        if isinstance(email, str) and email.strip(" ") and not is_email(email.strip(" ")):
            log.warning(
                "%s: record %s has a malformed email; indexed without it", where, row.get("crm_record_id")
            )
            row["email"] = None
    return rows


@dataclass
class StepReport:
    step: str
    records: int = 0
    pages: int = 0
    resumed_from: str | None = None


@dataclass
class SyncReport:
    org_id: uuid.UUID
    source: str
    steps: list[StepReport] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # when every record was written, checkpointed and analyzed (searchable), before the storage step
    indexed_at: datetime | None = None
    finished_at: datetime | None = None
    # the storage step at the end (crmindex.index.maintain.after_initial_sync): indexes rebuilt, or why not
    storage: AfterSync | None = None

    @property
    def records(self) -> int:
        return sum(s.records for s in self.steps)


_DONE = object()


def _prefetch(
    pages: Iterator[Page], depth: int, stop: threading.Event, max_rows: int = 1000
) -> Iterator[list[Page]]:
    """Run ``pages`` in a thread, ``depth`` pages ahead of the consumer; yield the pages already fetched
    together (up to ``max_rows`` rows), so one transaction writes them when the database is the bottleneck."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)

    def put(item: object) -> None:
        """Hand ``item`` over, or drop it once the consumer has gone (it never waits on a full queue forever)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def worker() -> None:
        try:
            for page in pages:
                put(page)
                if stop.is_set():
                    return
            put(_DONE)
        except BaseException as exc:  # surfaced in the consumer
            put(exc)
        finally:
            # stopped early (the write failed: a lost database, Ctrl-C): end the pages here, in the thread that
            # runs them, so a lister's own threads (the split sync's streams) stop now, not whenever it is collected
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    t = threading.Thread(target=worker, name="crmindex-sync-fetch", daemon=True)
    t.start()
    try:
        pending: object = None
        while True:
            item = pending if pending is not None else q.get()
            pending = None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Page)
            group = [item]
            rows = len(item.rows)
            while rows < max_rows:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(nxt, Page) or rows + len(nxt.rows) > max_rows:
                    pending = nxt
                    break
                group.append(nxt)
                rows += len(nxt.rows)
            yield group
    finally:
        stop.set()
        t.join(timeout=60)  # no fetch keeps running (or holding the limiter) after the sync returns


WriteConnections = Callable[[], contextlib.AbstractContextManager[Conn]]
# the object types written on several connections at once (``run_sync(writers=...)``): each row's write touches only
# its own row (and a per-org metadata note). Not deals: two deal pages naming the same contacts would update those
# contacts' deal summaries in different orders (a deadlock the database would break by failing one).
PARALLEL_WRITES = ("contacts", "companies")
# run_sync's default writers for a lister that reads through two budgets at once (HubSpot's split sync, ~2,000
# records/s on Free/Starter): one connection upserts ~2,200 contacts/s on a quiet 2-core machine (bench/sync.py,
# unlimited), so a single writer is the split sync's bottleneck as soon as the database has other work (100K contacts
# at load 4.3: 152.8 s with one writer, 85-97 s with two; /work/notes/lead24). A list-only sync reads 1,000/s: one.
SPLIT_SYNC_WRITERS = 2


def _same_database(conn: Conn) -> WriteConnections:
    """Connections to ``conn``'s database as the same user (its DSN and password), closed after use."""

    @contextlib.contextmanager
    def opened() -> Iterator[Conn]:
        with psycopg.connect(conn.info.dsn, password=conn.info.password or None, autocommit=True) as c:
            yield c

    return opened


class _Writers:
    """Writes a step's page groups on ``n`` connections at once, and checkpoints them in order on the sync's own.

    A group's rows commit on their own (``crm.upsert_*`` in one transaction, as before); its pages' cursors are
    checkpointed only once every group before it has committed, so the saved cursor never passes a page whose rows
    are not written: a sync stopped anywhere resumes from there and reads again at most the groups written after it
    (upserts are idempotent). Nothing waits while holding a transaction open, so two writers can never wait on each
    other. Used when the database is the bottleneck (issue 18 item 6: the split sync reads ~2,000 records/s)."""

    def __init__(
        self, connections: WriteConnections, n: int, write: Callable[[Conn, list[dict[str, Any]]], None]
    ) -> None:
        self._stack = contextlib.ExitStack()
        self._write = write
        self._jobs: queue.Queue[tuple[int, list[dict[str, Any]]] | None] = queue.Queue(maxsize=n)
        self._lock = threading.Lock()
        self._done: set[int] = set()
        self._failed: BaseException | None = None
        self._changed = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        try:
            conns = [self._stack.enter_context(connections()) for _ in range(n)]
        except BaseException:
            self._stack.close()
            raise
        for i, c in enumerate(conns):
            t = threading.Thread(target=self._run, args=(c,), name=f"crmindex-sync-write-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self, conn: Conn) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            seq, rows = job
            try:
                if self._failed is None:
                    self._write(conn, rows)
            except BaseException as exc:  # surfaced in the sync's thread
                with self._changed:
                    self._failed = self._failed or exc
                    self._changed.notify_all()
                continue
            with self._changed:
                self._done.add(seq)
                self._changed.notify_all()

    def submit(self, seq: int, rows: list[dict[str, Any]]) -> None:
        while True:
            self.check()
            try:
                self._jobs.put((seq, rows), timeout=0.2)
                return
            except queue.Full:
                continue

    def check(self) -> None:
        if self._failed is not None:
            raise self._failed

    def written(self, seq: int, wait: bool) -> bool:
        """Whether group ``seq`` is written (waiting for it with ``wait``); raises a writer's error."""
        with self._changed:
            while True:
                if self._failed is not None:
                    raise self._failed
                if seq in self._done:
                    self._done.discard(seq)
                    return True
                if not wait:
                    return False
                self._changed.wait(0.5)

    def close(self) -> None:
        for _ in self._threads:
            while any(t.is_alive() for t in self._threads):
                try:
                    self._jobs.put(None, timeout=0.2)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        self._jobs.get_nowait()
        for t in self._threads:
            t.join(timeout=60)
        self._stack.close()


@dataclass
class _Checkpoints:
    """A step's bookkeeping once its groups are written: checkpoints (writers > 1), the report, progress."""

    conn: Conn
    org: str
    source: str
    step: str
    report: StepReport
    bar: Any
    on_page: Callable[[str, int], None] | None
    # groups handed to the writers and not checkpointed yet: (seq, pages, rows)
    pending: collections.deque[tuple[int, list[Page], int]] = field(default_factory=collections.deque)

    def written(self, group: list[Page], n_rows: int) -> str | None:
        """Count a group written and checkpointed; the cursor after it."""
        self.report.records += n_rows
        self.report.pages += len(group)
        self.bar.update(n_rows)
        if self.on_page is not None:
            self.on_page(self.step, self.report.pages)
        return group[-1].next_cursor

    def advance(self, pool: _Writers, wait: bool) -> str | None:
        """Checkpoint the groups the writers have finished, in order (every one with ``wait``); the last cursor
        checkpointed, None when none was."""
        cursor = None
        while self.pending and pool.written(self.pending[0][0], wait):
            _, group, n_rows = self.pending.popleft()
            with self.conn.transaction():
                _checkpoint(self.conn, self.org, self.source, self.step, group)
            cursor = self.written(group, n_rows)
        return cursor


def _write(conn: Conn, rows: list[dict[str, Any]], *, object_type: str, org: str, source: str) -> None:
    with conn.transaction(), translate_errors():
        if rows:
            upsert_rows(conn, object_type, org, source, rows)


def _checkpoint(conn: Conn, org: str, source: str, step: str, group: list[Page]) -> None:
    """The cursors after a group's pages (in the caller's transaction); the last one ends the step."""
    last = group[-1]
    for page in group[:-1]:
        conn.execute(
            "SELECT crm.sync_checkpoint(%s, %s, %s, %s, %s, FALSE)",
            (org, source, step, page.next_cursor, len(page.rows)),
        )
    conn.execute(
        "SELECT crm.sync_checkpoint(%s, %s, %s, %s, %s, %s)",
        (org, source, step, last.next_cursor, len(last.rows), last.next_cursor is None),
    )


def _state(conn: Conn, org: str, source: str, step: str) -> tuple[str | None, str | None]:
    """(status, cursor) of a step, (None, None) before its first page."""
    row = conn.execute(
        "SELECT status, cursor FROM crm.sync_state WHERE org_id = %s AND crm_source = %s AND object_type = %s",
        (org, source, step),
    ).fetchone()
    return (None, None) if row is None else (str(row[0]), None if row[1] is None else str(row[1]))


def _storage_step(conn: Conn, org: str, progress: bool) -> AfterSync:
    """A sync that brought a large share of the table packs crm.contact_index's indexes (see maintain.py)."""
    row = conn.execute("SELECT count(*) FROM crm.contact_index WHERE org_id = %s", (org,)).fetchone()
    contacts = int(row[0]) if row else 0
    bar: Any = None

    def on_index(done: int, total: int, rebuilt: Rebuilt) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="rebuilding contact indexes", unit=" idx", leave=True)
        bar.update(1)

    try:
        return after_initial_sync(conn, contacts, on_index=on_index if progress else None)
    finally:
        if bar is not None:
            bar.close()


def run_sync(
    conn: Conn,
    org_id: uuid.UUID | str,
    lister: Lister,
    *,
    progress: bool = True,
    read_ahead: int = 8,
    restart: bool = False,
    on_page: Callable[[str, int], None] | None = None,
    writers: int | None = None,
    write_connections: WriteConnections | None = None,
) -> SyncReport:
    """Sync (or resume syncing) one org's CRM into the index; ``conn`` must be autocommit.

    ``writers`` > 1: contacts and companies pages are written on that many connections at once
    (``write_connections``, by default new connections to ``conn``'s database as its user) and checkpointed in order
    on ``conn`` (:class:`_Writers`). By default :data:`SPLIT_SYNC_WRITERS` for a lister reading through two budgets
    at once (``lister.split``: HubSpot's split sync), else one.
    """
    if writers is None:
        writers = SPLIT_SYNC_WRITERS if getattr(lister, "split", False) is True else 1
    org = str(org_id)
    source = lister.source
    report = SyncReport(uuid.UUID(org), source)
    states = {step: _state(conn, org, source, step) for step in lister.steps}
    fresh_run = restart or all(s[0] in (None, "completed") for s in states.values())
    if fresh_run:
        conn.execute("SELECT crm.sync_restart(%s, %s)", (org, source))
        states = {step: (None, None) for step in lister.steps}
    started_row = conn.execute("SELECT now()").fetchone()
    assert started_row is not None
    sync_started: datetime = started_row[0]
    # the account's owners and stages first: deals are written with their labels (crmindex.freshness.metadata)
    refresh_for_sync(conn, org, lister)
    for step in lister.steps:
        status, cursor = states[step]
        if status == "completed":
            continue
        step_report = StepReport(step, resumed_from=cursor)
        report.steps.append(step_report)
        object_type = step.removeprefix("archived_")
        bar = tqdm(
            total=lister.total(step) if progress else None,
            desc=f"{source} {step.replace('_', ' ')}",
            unit=" rec",
            unit_scale=True,
            disable=not progress,
            leave=True,
        )
        stop = threading.Event()
        pool: _Writers | None = None
        done = _Checkpoints(conn, org, source, step, step_report, bar, on_page)
        try:
            if writers > 1 and object_type in PARALLEL_WRITES:
                pool = _Writers(
                    write_connections or _same_database(conn),
                    writers,
                    functools.partial(_write, object_type=object_type, org=org, source=source),
                )
            for seq, group in enumerate(_prefetch(lister.pages(step, cursor), read_ahead, stop)):
                rows = sanitize(
                    [r for page in group for r in page.rows], f"{source} {step} page after cursor {cursor!r}"
                )
                if pool is not None:
                    pool.submit(seq, rows)
                    done.pending.append((seq, group, len(rows)))
                    lister.remember(conn, org)
                    cursor = done.advance(pool, wait=False) or cursor
                    continue
                with conn.transaction(), translate_errors():
                    if rows:
                        upsert_rows(conn, object_type, org, source, rows)
                    _checkpoint(conn, org, source, step, group)
                lister.remember(conn, org)  # e.g. Attio: its webhooks name objects by ids the pages showed
                cursor = done.written(group, len(rows))
            if pool is not None:
                cursor = done.advance(pool, wait=True) or cursor
            if step_report.pages == 0:
                conn.execute("SELECT crm.sync_checkpoint(%s, %s, %s, NULL, 0, TRUE)", (org, source, step))
        except CrmError as exc:
            if pool is not None:
                # the groups read before the CRM failed are being written: checkpoint them, so that a rerun resumes
                # after them as it does with one writer (a writer's own error leaves the cursor where it was)
                try:
                    cursor = done.advance(pool, wait=True) or cursor
                except Exception as write_exc:  # the CRM's error is the one reported; the writer's is logged
                    log.warning("%s %s: a page write failed too: %s", source, step, write_exc)
            if isinstance(exc, AuthError):  # say so on the connection too (``crmindex status``)
                flag_auth_failure(conn, org, source, str(exc))
            conn.execute(
                "SELECT crm.sync_fail(%s, %s, %s, %s, %s)",
                (org, source, step, cursor, f"{step} page after cursor {cursor!r}: {exc}"),
            )
            raise SyncError(
                f"sync of {source} {step} stopped at the page after cursor {cursor!r}: {exc} "
                "(run the sync again to resume from there)",
                source=source,
                retryable=exc.retryable,
            ) from exc
        finally:
            stop.set()
            if pool is not None:
                pool.close()
            bar.close()
    sync_lists(conn, org, lister)  # the account's lists (Attio pipelines) and their entries
    # fresh statistics right away: until autovacuum gets to a bulk-loaded table, its plans are guesses
    conn.execute("ANALYZE crm.contact_index, crm.company_index, crm.deal_index, crm.deal_contact")
    # everything up to the sync's start is now indexed: reconcile repairs from here (less the lag of a search index
    # the lister read from: a change made just before the start may not have shown there yet)
    margin: timedelta = getattr(lister, "watermark_margin", timedelta(0))
    conn.execute("SELECT crm.sync_advance_watermark(%s, %s, %s)", (org, source, sync_started - margin))
    clear_auth_failure(conn, org, source)  # the CRM accepted the token again
    report.indexed_at = datetime.now(UTC)
    report.storage = _storage_step(conn, org, progress)
    report.finished_at = datetime.now(UTC)
    return report
