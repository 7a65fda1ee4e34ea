"""HubSpot listings behind crmindex's :class:`~crmindex.crm.protocols.Lister` and
:class:`~crmindex.crm.protocols.ChangeLister`: the initial sync and reconcile.

* pages: ``GET /crm/v3/objects/{type}`` (100 per page, the ``after`` cursor is the resume point); deals with their
  contact / company associations (inline, the primary company by its ``deal_to_company`` type; v4 batch reads for a
  deal whose inline list was cut short); the
  ``archived=true`` listings give deleted records as soft deletes.
* split (``HubSpotLister(client, split=True)``; the registry's default, a connection setting ``split_sync: false``
  turns it off): the initial sync of contacts and companies reads the listing and ``hs_object_id`` ranges through
  search at once, spending the general ten-second budget and the search budget together
  (:mod:`crmindex.crm.hubspot.partitions`); the step's cursor holds both positions, and a sync stopped anywhere
  (a lost database, a killed process, a failed call) resumes from it.
* changed: the search API over a modified-time window, walked by ``hs_object_id`` past the 10,000-result cap
  (:meth:`HubSpotClient.iter_modified`), in batches of 500; deals with their associations.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from crmindex.crm.errors import CrmError
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.hubspot.mapping import hubspot_deal_to_row, hubspot_object_to_row
from crmindex.crm.hubspot.models import HubSpotObject
from crmindex.crm.hubspot.partitions import SplitReader, SplitState, list_window, probe, search_window
from crmindex.crm.protocols import FetchedRecord, Page, Vocabulary
from crmindex.platform.db import Conn

# companies first (contacts name them), deals last (they name both), then the listings of deleted records
STEPS = ("companies", "contacts", "deals", "archived_companies", "archived_contacts", "archived_deals")
CHANGED_BATCH = 500
# the steps a split sync reads through search as well (deals need their associations, which search answers
# lack; archived records are never in search results)
SPLIT_STEPS = ("companies", "contacts")
SEARCH_LAG_MARGIN = timedelta(minutes=5)


def _deal_rows(client: HubSpotClient, objs: list[HubSpotObject]) -> list[dict[str, Any]]:
    """Deal rows with their associations read now (v4 batch reads, every page)."""
    links = client.deal_associations([o.id for o in objs])
    return [
        hubspot_deal_to_row(
            o, contact_crm_ids=links.get(o.id, ([], None))[0], company_crm_id=links.get(o.id, ([], None))[1]
        )
        for o in objs
    ]


def _listed_deal_rows(client: HubSpotClient, objs: list[HubSpotObject]) -> list[dict[str, Any]]:
    """Deal rows from a listing that asked for their contacts and companies inline: HubSpot leaves the
    ``associations`` key out when a deal has none (an empty list, not "unknown"); a deal whose inline list was cut
    short by paging has its associations read whole (v4)."""
    cut = [o for o in objs if not o.associations_complete("contacts", "companies")]
    read = {row["crm_record_id"]: row for row in _deal_rows(client, cut)} if cut else {}
    rows = []
    for o in objs:
        if o.id in read:
            rows.append(read[o.id])
        elif o.associations is None:
            rows.append(hubspot_deal_to_row(o, contact_crm_ids=[]) | {"company_crm_id": None})
        else:
            rows.append(hubspot_deal_to_row(o))
    return rows


class HubSpotLister:
    source = "hubspot"
    steps = STEPS

    def __init__(self, client: HubSpotClient, *, split: bool = False) -> None:
        self.client = client
        self.split = split
        # search is eventually consistent ("It may take a few moments for newly created or updated CRM objects to
        # appear in search results"): after a split sync, reconcile re-reads the changes of the minutes before it
        self.watermark_margin = SEARCH_LAG_MARGIN if split else timedelta(0)
        # the split steps' readers of this run (the ranges they read: tests, bench)
        self.readers: list[SplitReader] = []
        # this lister's own search and list calls, spaced as HubSpot counts them (partitions.SendWindow)
        self.search_guard = search_window()
        self.list_guard = list_window()

    def __repr__(self) -> str:
        return f"HubSpotLister({self.client!r}, split={self.split!r})"

    def total(self, step: str) -> int | None:
        if step.startswith("archived_"):
            return None
        try:
            with self.search_guard.call():
                return self.client.search(step, limit=1).total
        except CrmError:
            return None

    def remember(self, conn: Conn, org_id: str) -> None:
        pass  # HubSpot events name object types: nothing to keep

    def vocabulary(self) -> Vocabulary:
        """Owners (active and archived) and deal pipelines with their stages (a stage is won when it is closed with
        probability 1.0: HubSpot's "Closed won"; pipelines v3 ``metadata``)."""
        owners = [
            {
                "owner_id": o.id,
                "first_name": o.first_name,
                "last_name": o.last_name,
                "email": o.email,
                "archived": archived or o.archived,
                "crm_updated_at": None if o.updated_at is None else o.updated_at.isoformat(),
            }
            for archived in (False, True)
            for o in self.client.owners(archived=archived)
        ]
        stages = [
            {
                "object_type": "deals",
                "pipeline_id": p.id,
                "pipeline_label": p.label,
                "stage_id": st.id,
                "stage_label": st.label,
                "display_order": st.display_order,
                "is_closed": st.is_closed,
                "is_won": st.is_won,
            }
            for p in self.client.pipelines("deals")
            if not p.archived
            for st in p.stages
            if not st.archived
        ]
        return Vocabulary(owners=owners, stages=stages)

    def pages(self, step: str, cursor: str | None) -> Iterator[Page]:
        state = SplitState.decode(cursor)
        if state is not None or (self.split and step in SPLIT_STEPS and cursor is None):
            yield from self._split_pages(step, state)
            return
        archived = step.startswith("archived_")
        object_type = step.removeprefix("archived_")
        assoc = ["contacts", "companies"] if object_type == "deals" and not archived else None
        for page in self.client.iter_pages(object_type, after=cursor, archived=archived, associations=assoc):
            objs = page.results
            if object_type == "deals" and not archived:
                rows = _listed_deal_rows(self.client, objs)
            else:
                rows = [hubspot_object_to_row(object_type, o) for o in objs]
            if archived:
                for row in rows:
                    row.setdefault("deleted_at", row.get("crm_updated_at"))
                    if row["deleted_at"] is None:
                        row["deleted_at"] = datetime.now(UTC).isoformat()
            yield Page(rows, page.after)

    def _split_pages(self, object_type: str, state: SplitState | None) -> Iterator[Page]:
        """The listing and search ranges at once (:mod:`crmindex.crm.hubspot.partitions`)."""
        if state is None:
            state = probe(self.client, object_type, self.search_guard)
            if state is None:  # nothing to read
                yield Page([], None)
                return
        elif state.list_top <= 0 and not state.search_done:
            # a cursor saved before the listing's coverage was kept (it said 0 whatever the listing had read): the
            # search goes down no further than the lowest id (what lies between is read again, harmlessly)
            span = probe(self.client, object_type, self.search_guard)
            if span is not None:
                state.list_top = max(state.list_top, span.list_top)

        def listing(after: str | None) -> Iterator[tuple[list[HubSpotObject], str | None]]:
            for page in self.client.iter_pages(object_type, after=after):
                yield page.results, page.after

        reader = SplitReader(
            self.client,
            object_type,
            state,
            listing,
            search_guard=self.search_guard,
            list_guard=self.list_guard,
        )
        self.readers.append(reader)
        for objs, next_state in reader.pages():
            rows = [hubspot_object_to_row(object_type, o) for o in objs]
            yield Page(rows, None if next_state is None else next_state.encode())

    def changed(self, object_type: str, since: datetime, until: datetime) -> Iterator[list[FetchedRecord]]:
        batch: list[HubSpotObject] = []
        for obj in self.client.iter_modified(object_type, since, until):
            batch.append(obj)
            if len(batch) >= CHANGED_BATCH:
                yield self._records(object_type, batch)
                batch = []
        if batch:
            yield self._records(object_type, batch)

    def _records(self, object_type: str, objs: list[HubSpotObject]) -> list[FetchedRecord]:
        if object_type == "deals":
            # taken before the read: the associations reflect every change that occurred before it
            read_at = datetime.now(UTC).isoformat()
            rows = [row | {"associations_read_at": read_at} for row in _deal_rows(self.client, objs)]
        else:
            rows = [hubspot_object_to_row(object_type, o) for o in objs]
        return [
            FetchedRecord(o.id, row, properties=dict(o.properties), merged_ids=tuple(o.merged_ids))
            for o, row in zip(objs, rows, strict=True)
        ]
