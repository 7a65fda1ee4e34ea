"""The account's lists and their entries into the index (``crm.crm_list``, ``crm.list_entry``): pipelines are often
Attio lists ("companies in the Enterprise pipeline at stage Negotiation").

Run by the sync after its pages and by reconcile's rescan (:func:`sync_lists`), for a lister that is a
:class:`~crmindex.crm.protocols.ListLister`. Each list is read whole: its entries are written page by page
(monotonic: an entry read before a newer write of it changes nothing), then the entries the listing did not see
and nobody read since it began are soft-deleted. Between full listings, ``list-entry.*`` webhooks keep entries
current through hydration (:mod:`crmindex.freshness.hydrate`). A list's stages are in ``crm.crm_pipeline_stage``
(object_type ``list:<list id>``, written with the vocabulary by :mod:`crmindex.freshness.metadata`); the entries'
stage labels follow them (``crm.list_entries_relabel``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from crmindex.crm.errors import CrmError
from crmindex.crm.protocols import Lister, ListLister
from crmindex.index.lists import relabel_entries, sweep_entries, upsert_entries
from crmindex.index.lists import sync_lists as write_lists
from crmindex.platform.db import Conn

log = logging.getLogger("crmindex.lists")


@dataclass
class ListsReport:
    lists: int = 0
    entries: int = 0
    deleted: int = 0
    per_list: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def sync_lists(conn: Conn, org_id: str, lister: Lister) -> ListsReport | None:
    """Read every list of the account and its entries into the index (``conn`` autocommit); None for a CRM
    whose lists are not indexed. A CRM error (a token without the lists' scopes, an outage) is logged and kept in
    the report: the records' sync stands on its own, the next sync or rescan reads the lists again."""
    if not isinstance(lister, ListLister):
        return None
    report = ListsReport()
    try:
        _sync(conn, str(org_id), lister, report)
    except CrmError as exc:
        log.warning("%s %s: lists not read (%s)", org_id, lister.source, exc)
        report.error = str(exc)
    return report


def _sync(conn: Conn, org: str, lister: ListLister, report: ListsReport) -> None:
    source = str(getattr(lister, "source", ""))
    lists = lister.lists()
    with conn.transaction():
        write_lists(conn, org, source, lists, complete=True)
    report.lists = len(lists)
    for lst in lists:
        list_id = str(lst["list_id"])
        began = datetime.now(UTC)
        seen: list[str] = []
        for rows in lister.entries(lst):
            seen.extend(str(r["entry_id"]) for r in rows)
            with conn.transaction():
                report.entries += upsert_entries(conn, org, source, rows)
        with conn.transaction():
            report.deleted += sweep_entries(conn, org, source, list_id, seen, began)
            relabel_entries(conn, org, source, list_id)
        report.per_list[list_id] = len(seen)
    log.info("%s %s lists: %d lists, %d entries written, %d removed", org, source, report.lists, report.entries,
             report.deleted)  # fmt: skip
