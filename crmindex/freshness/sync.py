"""Initial sync: every contact, company and deal of a connected CRM into the index, resumable.

Pages are fetched by a background thread (bounded read-ahead) while the main thread writes: API fetching
and database writing overlap, so a run is bounded by the CRM's rate limit, not by our own work. Each page's
rows and the cursor of the next page are committed in one transaction (``crm.sync_checkpoint``), so a
crash or Ctrl-C resumes from the last committed page: no gap, and no duplicate (upserts are idempotent).
Archived records (HubSpot ``archived=true`` listings) arrive as soft deletes. A finished sync sets the
org's watermark (the sync's start time) that ``reconcile`` repairs from after webhook downtime.

Order: companies, contacts, deals (with their contact/company associations), then the archived listings.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from tqdm import tqdm

from crmindex.crm.attio.client import AttioClient
from crmindex.crm.attio.mapping import attio_company_to_row, attio_deal_to_row, attio_person_to_row
from crmindex.crm.connections import clear_auth_failure, flag_auth_failure, remember_attio_object_ids
from crmindex.crm.errors import AuthError, CrmError
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.hubspot.mapping import hubspot_contact_to_row, hubspot_deal_to_row, hubspot_to_row
from crmindex.index.writes import rows_json
from crmindex.platform.db import Conn, translate_errors

log = logging.getLogger("crmindex.sync")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
UPSERT_FN = {"contacts": "upsert_contacts", "companies": "upsert_companies", "deals": "upsert_deals"}
HUBSPOT_STEPS = (
    "companies",
    "contacts",
    "deals",
    "archived_companies",
    "archived_contacts",
    "archived_deals",
)


class SyncError(CrmError):
    """The sync stopped; the message names the object type and page. Run it again to resume."""


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None  # None: this was the last page


class Lister(Protocol):
    """Pages of one CRM account, from a saved cursor."""

    @property
    def source(self) -> str: ...

    @property
    def steps(self) -> Sequence[str]: ...

    def pages(self, step: str, cursor: str | None) -> Iterator[Page]: ...

    def total(self, step: str) -> int | None: ...


class HubSpotLister:
    source = "hubspot"
    steps = HUBSPOT_STEPS

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def total(self, step: str) -> int | None:
        if step.startswith("archived_"):
            return None
        try:
            return self.client.search(step, limit=1).total
        except CrmError:
            return None

    def pages(self, step: str, cursor: str | None) -> Iterator[Page]:
        archived = step.startswith("archived_")
        object_type = step.removeprefix("archived_")
        assoc = ["contacts", "companies"] if object_type == "deals" and not archived else None
        for page in self.client.iter_pages(object_type, after=cursor, archived=archived, associations=assoc):
            objs = page.results
            if object_type == "deals" and not archived and objs and any(o.associations is None for o in objs):
                links = self.client.deal_associations([o.id for o in objs])
                rows = []
                for o in objs:
                    contacts, company = links.get(o.id, ([], None))
                    row = hubspot_to_row("deals", o)
                    row["contact_crm_ids"] = contacts
                    if company is not None:
                        row["company_crm_id"] = company
                    rows.append(row)
            elif object_type == "deals":
                rows = [hubspot_deal_to_row(o) for o in objs]
            elif object_type == "contacts":
                rows = [hubspot_contact_to_row(o) for o in objs]
            else:
                rows = [hubspot_to_row(object_type, o) for o in objs]
            if archived:
                for row in rows:
                    row.setdefault("deleted_at", row.get("crm_updated_at"))
                    if row["deleted_at"] is None:
                        row["deleted_at"] = datetime.now(UTC).isoformat()
            yield Page(rows, page.after)


class AttioLister:
    """Attio: records query pages by offset (the cursor), until a short page; people need company names."""

    source = "attio"
    steps = ("companies", "contacts", "deals")
    OBJECTS = {"companies": "companies", "contacts": "people", "deals": "deals"}
    PAGE = 500

    def __init__(self, client: AttioClient, custom: dict[str, str] | None = None) -> None:
        self.client = client
        self.custom = custom or {}
        self._company_names: dict[str, str] = {}
        self.object_ids: dict[str, str] = {}  # Attio object id -> slug, seen on the records listed

    def total(self, step: str) -> int | None:
        return None

    def pages(self, step: str, cursor: str | None) -> Iterator[Page]:
        offset = int(cursor) if cursor and cursor.isdigit() else 0
        slug = self.OBJECTS[step]
        for start, records in self.client.iter_pages(slug, limit=self.PAGE, offset=offset):
            self.object_ids.update({r.id.object_id: slug for r in records[:1]})
            if step == "companies":
                rows = [attio_company_to_row(r) for r in records]
                self._company_names.update(
                    {str(r["crm_record_id"]): str(r["name"]) for r in rows if r.get("name")}
                )
            elif step == "contacts":
                rows = [
                    attio_person_to_row(r, company_names=self._company_names, custom=self.custom)
                    for r in records
                ]
            else:
                rows = [attio_deal_to_row(r) for r in records]
            last = len(records) < self.PAGE
            yield Page(rows, None if last else str(start + len(records)))


def sanitize(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Keep what the CRM sent, minus values the index would reject (logged with the record id)."""
    for row in rows:
        email = row.get("email")
        if isinstance(email, str) and email.strip() and not _EMAIL.match(email.strip()):
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
    finished_at: datetime | None = None

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

    def worker() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        q.put(page, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # surfaced in the consumer
            q.put(exc)

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


def _state(conn: Conn, org: str, source: str, step: str) -> tuple[str | None, str | None]:
    row = conn.execute(
        "SELECT status, cursor FROM crm.sync_state WHERE org_id = %s AND crm_source = %s AND object_type = %s",
        (org, source, step),
    ).fetchone()
    return (None, None) if row is None else (str(row[0]), None if row[1] is None else str(row[1]))


def run_sync(
    conn: Conn,
    org_id: uuid.UUID | str,
    lister: Lister,
    *,
    progress: bool = True,
    read_ahead: int = 8,
    restart: bool = False,
    on_page: Callable[[str, int], None] | None = None,
) -> SyncReport:
    """Sync (or resume syncing) one org's CRM into the index; ``conn`` must be autocommit."""
    org = str(org_id)
    source = lister.source
    report = SyncReport(uuid.UUID(org), source)
    states = {step: _state(conn, org, source, step) for step in lister.steps}
    fresh_run = restart or all(s[0] in (None, "completed") for s in states.values())
    if fresh_run:
        conn.execute(
            "UPDATE crm.sync_state SET status = 'pending', cursor = NULL, pages = 0, records = 0, started_at = now(), "
            "finished_at = NULL, last_error = NULL, updated_at = now() WHERE org_id = %s AND crm_source = %s",
            (org, source),
        )
        states = {step: (None, None) for step in lister.steps}
    started_row = conn.execute("SELECT now()").fetchone()
    assert started_row is not None
    sync_started: datetime = started_row[0]
    for step in lister.steps:
        status, cursor = states[step]
        if status == "completed":
            continue
        step_report = StepReport(step, resumed_from=cursor)
        report.steps.append(step_report)
        object_type = step.removeprefix("archived_")
        fn = UPSERT_FN[object_type]
        bar = tqdm(
            total=lister.total(step) if progress else None,
            desc=f"{source} {step.replace('_', ' ')}",
            unit=" rec",
            unit_scale=True,
            disable=not progress,
            leave=True,
        )
        stop = threading.Event()
        try:
            for group in _prefetch(lister.pages(step, cursor), read_ahead, stop):
                rows = sanitize(
                    [r for page in group for r in page.rows], f"{source} {step} page after cursor {cursor!r}"
                )
                last = group[-1]
                with conn.transaction(), translate_errors():
                    if rows:
                        conn.execute(
                            f"SELECT * FROM crm.{fn}(%s, %s, %s::jsonb)",
                            (org, source, rows_json(rows)),
                        )
                    for page in group[:-1]:
                        conn.execute(
                            "SELECT crm.sync_checkpoint(%s, %s, %s, %s, %s, FALSE)",
                            (org, source, step, page.next_cursor, len(page.rows)),
                        )
                    conn.execute(
                        "SELECT crm.sync_checkpoint(%s, %s, %s, %s, %s, %s)",
                        (org, source, step, last.next_cursor, len(last.rows), last.next_cursor is None),
                    )
                cursor = last.next_cursor
                if source == "attio":  # webhooks name objects by id: keep the ids next to the connection
                    remember_attio_object_ids(conn, org, getattr(lister, "object_ids", {}))
                step_report.records += len(rows)
                step_report.pages += len(group)
                bar.update(len(rows))
                if on_page is not None:
                    on_page(step, step_report.pages)
            if step_report.pages == 0:
                conn.execute("SELECT crm.sync_checkpoint(%s, %s, %s, NULL, 0, TRUE)", (org, source, step))
        except CrmError as exc:
            if isinstance(exc, AuthError):  # say so on the connection too (``crmindex status``)
                flag_auth_failure(conn, org, source, str(exc))
            conn.execute(
                "INSERT INTO crm.sync_state (org_id, crm_source, object_type, status, cursor, last_error) "
                "VALUES (%s, %s, %s, 'failed', %s, %s) ON CONFLICT (org_id, crm_source, object_type) "
                "DO UPDATE SET status = 'failed', last_error = excluded.last_error, updated_at = now()",
                (org, source, step, cursor, f"{step} page after cursor {cursor!r}: {exc}"[:2000]),
            )
            raise SyncError(
                f"sync of {source} {step} stopped at the page after cursor {cursor!r}: {exc} "
                "(run the sync again to resume from there)",
                source=source,
                retryable=exc.retryable,
            ) from exc
        finally:
            stop.set()
            bar.close()
    # fresh statistics right away: until autovacuum gets to a bulk-loaded table, its plans are guesses
    conn.execute("ANALYZE crm.contact_index, crm.company_index, crm.deal_index, crm.deal_contact")
    # everything up to the sync's start is now indexed: reconcile repairs from here
    conn.execute(
        "UPDATE crm.sync_state SET watermark = greatest(watermark, %s) WHERE org_id = %s AND crm_source = %s",
        (sync_started, org, source),
    )
    clear_auth_failure(conn, org, source)  # the CRM accepted the token again
    report.finished_at = datetime.now(UTC)
    return report
