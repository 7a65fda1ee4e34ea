"""HubSpot listings behind crmindex's :class:`~crmindex.crm.protocols.Lister` and
:class:`~crmindex.crm.protocols.ChangeLister`: the initial sync and reconcile.

* pages: ``GET /crm/v3/objects/{type}`` (100 per page, the ``after`` cursor is the resume point); deals with their
  contact / company associations (inline when the listing returns them, else v4 batch reads); the
  ``archived=true`` listings give deleted records as soft deletes.
* changed: the search API over a modified-time window, walked by ``hs_object_id`` past the 10,000-result cap
  (:meth:`HubSpotClient.iter_modified`), in batches of 500; deals with their associations.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from crmindex.crm.errors import CrmError
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.hubspot.mapping import hubspot_deal_to_row, hubspot_object_to_row
from crmindex.crm.hubspot.models import HubSpotObject
from crmindex.crm.protocols import FetchedRecord, Page
from crmindex.platform.db import Conn

# companies first (contacts name them), deals last (they name both), then the listings of deleted records
STEPS = ("companies", "contacts", "deals", "archived_companies", "archived_contacts", "archived_deals")
CHANGED_BATCH = 500


def _deal_rows(client: HubSpotClient, objs: list[HubSpotObject]) -> list[dict[str, Any]]:
    """Deal rows with their associations read now (v4 batch reads)."""
    links = client.deal_associations([o.id for o in objs])
    return [
        hubspot_deal_to_row(
            o, contact_crm_ids=links.get(o.id, ([], None))[0], company_crm_id=links.get(o.id, ([], None))[1]
        )
        for o in objs
    ]


class HubSpotLister:
    source = "hubspot"
    steps = STEPS

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"HubSpotLister({self.client!r})"

    def total(self, step: str) -> int | None:
        if step.startswith("archived_"):
            return None
        try:
            return self.client.search(step, limit=1).total
        except CrmError:
            return None

    def remember(self, conn: Conn, org_id: str) -> None:
        pass  # HubSpot events name object types: nothing to keep

    def pages(self, step: str, cursor: str | None) -> Iterator[Page]:
        archived = step.startswith("archived_")
        object_type = step.removeprefix("archived_")
        assoc = ["contacts", "companies"] if object_type == "deals" and not archived else None
        for page in self.client.iter_pages(object_type, after=cursor, archived=archived, associations=assoc):
            objs = page.results
            if object_type == "deals" and not archived and any(o.associations is None for o in objs):
                rows = _deal_rows(self.client, objs)
            else:
                rows = [hubspot_object_to_row(object_type, o) for o in objs]
            if archived:
                for row in rows:
                    row.setdefault("deleted_at", row.get("crm_updated_at"))
                    if row["deleted_at"] is None:
                        row["deleted_at"] = datetime.now(UTC).isoformat()
            yield Page(rows, page.after)

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
