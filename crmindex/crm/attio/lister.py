"""Attio listings behind crmindex's :class:`~crmindex.crm.protocols.Lister`: the initial sync and the full rescan
of reconcile (Attio has no modified-time filter).

Records are listed with ``POST /v2/objects/{slug}/records/query`` by offset (the cursor), 500 per page, until a
short page. Companies come first: people only reference their company, whose name the contact rows carry.
Attio webhooks name objects by id, so the listing remembers the ids of the objects it saw (:meth:`remember`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from crmindex.crm.attio.client import AttioClient
from crmindex.crm.attio.mapping import OBJECT_SLUGS, attio_to_row
from crmindex.crm.connections import remember_attio_object_ids
from crmindex.crm.protocols import Page
from crmindex.platform.db import Conn


class AttioLister:
    source = "attio"
    steps = ("companies", "contacts", "deals")
    PAGE = 500

    def __init__(self, client: AttioClient, custom: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.custom = dict(custom or {})
        self._company_names: dict[str, str] = {}
        self.object_ids: dict[str, str] = {}  # Attio object id -> slug, seen on the records listed

    def __repr__(self) -> str:
        return f"AttioLister({self.client!r})"

    def total(self, step: str) -> int | None:
        return None

    def remember(self, conn: Conn, org_id: str) -> None:
        remember_attio_object_ids(conn, org_id, self.object_ids)

    def pages(self, step: str, cursor: str | None) -> Iterator[Page]:
        offset = int(cursor) if cursor and cursor.isdigit() else 0
        slug = OBJECT_SLUGS[step]
        for start, records in self.client.iter_pages(slug, limit=self.PAGE, offset=offset):
            self.object_ids.update({r.id.object_id: slug for r in records[:1]})
            rows = [
                attio_to_row(step, r, company_names=self._company_names, custom=self.custom) for r in records
            ]
            if step == "companies":
                self._company_names.update(
                    {str(r["crm_record_id"]): str(r["name"]) for r in rows if r.get("name")}
                )
            last = len(records) < self.PAGE
            yield Page(rows, None if last else str(start + len(records)))
