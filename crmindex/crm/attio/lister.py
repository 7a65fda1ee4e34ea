"""Attio listings behind crmindex's :class:`~crmindex.crm.protocols.Lister`: the initial sync and the full rescan
of reconcile (Attio has no modified-time filter); also the account's vocabulary (workspace members, the statuses
of deal stages and of lists: :class:`~crmindex.crm.protocols.MetadataLister`) and its lists with their entries
(:class:`~crmindex.crm.protocols.ListLister`).

Records are listed with ``POST /v2/objects/{slug}/records/query``, 500 per page, by offset, in a stable order:
``sorts`` by the ``created_at`` then ``record_id`` system attributes (docs.attio.com "Filtering and sorting").
Without a sort the order is the API's to choose, and offset paging over a changing order can skip records. With
it, a record created during the scan sorts last (it is listed or left for webhooks), but one *deleted* during the
scan shifts every later record one place back, so the record at the next page's boundary would be skipped. So each
page re-reads the last record of the previous one (offset - 1): when it is not there, records listed before were
deleted, and the listing steps back until it finds a record it listed, then goes on after it (records listed twice
are harmless: upserts are idempotent). The cursor is ``<offset>:<last record id>``.

Companies come first: people only reference their company, whose name the contact rows carry. Attio webhooks name
objects by id, so the listing remembers the ids of the objects it saw (:meth:`remember`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from crmindex.crm.attio.adapters import stage_attribute
from crmindex.crm.attio.client import AttioClient
from crmindex.crm.attio.mapping import (
    DEAL_STAGE_ATTRIBUTE,
    OBJECT_SLUGS,
    attio_to_row,
    entry_to_row,
    list_to_row,
    member_to_owner,
    statuses_to_stages,
)
from crmindex.crm.attio.models import AttioRecord
from crmindex.crm.connections import remember_attio_object_ids
from crmindex.crm.errors import AuthError, NotFoundError
from crmindex.crm.protocols import Page, Vocabulary
from crmindex.platform.db import Conn

log = logging.getLogger("crmindex.crm.attio.lister")

STABLE_ORDER: tuple[dict[str, str], ...] = (
    {"attribute": "created_at", "direction": "asc"},
    {"attribute": "record_id", "direction": "asc"},
)


def _cursor(cursor: str | None) -> tuple[int, str | None]:
    """(offset, id of the last record listed) of a saved cursor (a bare offset from older versions)."""
    if not cursor:
        return 0, None
    offset, _, last = cursor.partition(":")
    return (int(offset) if offset.isdigit() else 0), (last or None)


class AttioLister:
    source = "attio"
    steps = ("companies", "contacts", "deals")
    PAGE = 500

    def __init__(self, client: AttioClient, custom: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.custom = dict(custom or {})
        self._company_names: dict[str, str] = {}
        self.object_ids: dict[str, str] = {}  # Attio object id -> slug, seen on the records listed
        self.stepped_back = 0  # pages re-read because records listed before were deleted mid-scan
        self._lists: list[dict[str, Any]] | None = None  # crm.crm_list rows of the last vocabulary / lists()

    def __repr__(self) -> str:
        return f"AttioLister({self.client!r})"

    def total(self, step: str) -> int | None:
        return None

    def remember(self, conn: Conn, org_id: str) -> None:
        remember_attio_object_ids(conn, org_id, self.object_ids)

    # -- records -------------------------------------------------------------------------------------
    def records(
        self, slug: str, cursor: str | None
    ) -> Iterator[tuple[list[AttioRecord], str | None, datetime]]:
        """Pages of records not listed before (in the stable order), the cursor after each (None: the end) and the
        time just before the page was read (every change before it shows in the page)."""
        offset, last = _cursor(cursor)
        known: set[str] = {last} if last else set()
        while True:
            start = max(0, offset - 1) if known else offset
            observed = datetime.now(UTC)
            page = self.client.query(slug, limit=self.PAGE, offset=start, sorts=STABLE_ORDER)
            short = len(page) < self.PAGE
            new = page
            if known:
                at = [i for i, r in enumerate(page) if r.record_id in known]
                if at:
                    new = page[at[-1] + 1 :]
                elif start > 0:
                    # the boundary moved back: records listed before were deleted since. Step back (overlapping
                    # one record) until a record listed before shows where to go on.
                    self.stepped_back += 1
                    log.info("%s listing: records deleted mid-scan; re-reading from offset %d", slug, start)
                    offset = max(0, start - (self.PAGE - 1))
                    continue
            offset = start + len(page)
            if page:
                known = {r.record_id for r in page}
                last = page[-1].record_id
            yield new, None if short else f"{offset}:{last}", observed
            if short:
                return

    def pages(self, step: str, cursor: str | None) -> Iterator[Page]:
        slug = OBJECT_SLUGS[step]
        for records, next_cursor, observed in self.records(slug, cursor):
            self.object_ids.update({r.id.object_id: slug for r in records[:1]})
            rows = [
                attio_to_row(
                    step, r, company_names=self._company_names, custom=self.custom, observed_at=observed
                )
                for r in records
            ]
            if step == "companies":
                self._company_names.update(
                    {str(r["crm_record_id"]): str(r["name"]) for r in rows if r.get("name")}
                )
            yield Page(rows, next_cursor)

    # -- vocabulary (crmindex.freshness.metadata) ------------------------------------------------------
    def vocabulary(self) -> Vocabulary:
        """Workspace members (owners) and the stages of deals (the ``stage`` status attribute: object_type
        ``deals``, pipeline ``stage``) and of every list with a status attribute (object_type ``list:<id>``)."""
        owners = [member_to_owner(m) for m in self.client.workspace_members()]
        stages: list[dict[str, Any]] = []
        object_types = ["deals"]
        try:
            deal_attrs = {a.api_slug: a for a in self.client.attributes("objects", "deals")}
        except NotFoundError:  # a workspace without the deals object
            deal_attrs = {}
        stage_attr = deal_attrs.get(DEAL_STAGE_ATTRIBUTE)
        if stage_attr is not None and stage_attr.type == "status":
            rows = statuses_to_stages(
                self.client.statuses("objects", "deals", DEAL_STAGE_ATTRIBUTE),
                DEAL_STAGE_ATTRIBUTE,
                stage_attr.title,
            )
            stages += [{"object_type": "deals", **r} for r in rows]
        try:
            lists = self.lists()
        except AuthError as exc:  # a token without the lists' scopes: owners and deal stages still count
            log.warning("Attio lists not readable (%s): their stages are left out", exc)
            lists = []
        for lst in lists:
            attribute = lst["stage_attribute"]
            if attribute is None:
                continue
            object_type = f"list:{lst['list_id']}"
            object_types.append(object_type)
            rows = statuses_to_stages(
                self.client.statuses("lists", lst["list_id"], attribute), attribute, lst["name"]
            )
            stages += [{"object_type": object_type, **r} for r in rows]
        return Vocabulary(owners=owners, stages=stages, object_types=tuple(object_types))

    # -- lists (crmindex.freshness.lists) --------------------------------------------------------------
    def lists(self) -> list[dict[str, Any]]:
        """``crm.crm_list`` rows of every list, with the status attribute each takes as its stage."""
        rows = []
        for lst in self.client.lists():
            try:
                attribute = stage_attribute(self.client.attributes("lists", lst.list_id))
            except NotFoundError:  # deleted since the list of lists was read
                continue
            rows.append(list_to_row(lst, attribute))
        self._lists = rows
        return rows

    def entries(self, lst: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``crm.list_entry`` rows of one list (``lists()`` row), by offset until a short page."""
        offset = 0
        while True:
            observed = datetime.now(UTC)  # before the read: the version of the entries read
            page = self.client.query_entries(str(lst["list_id"]), limit=self.PAGE, offset=offset)
            yield [entry_to_row(e, lst.get("stage_attribute"), observed) for e in page]
            if len(page) < self.PAGE:
                return
            offset += len(page)
