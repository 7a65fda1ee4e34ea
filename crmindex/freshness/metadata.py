"""Each org's CRM vocabulary: owners, and deal pipelines with their stages, kept beside the index so it can show
and search labels ("Contract Sent", "Jane Doe") instead of the ids a CRM gives ("12345678", "80000001").

HubSpot sends no webhooks for pipelines or owners (its webhook subscriptions cover CRM objects only), so the
vocabulary is fetched whole (:class:`~crmindex.crm.protocols.MetadataLister`: HubSpot's owners and
``/crm/v3/pipelines/deals``) and stored by ``crm.crm_metadata_put`` (``sql/freshness/metadata.sql``), which relabels
the deals whose stage labels changed and their contacts' deal summaries:

* by the sync, before its pages (:func:`refresh_for_sync`: a failure is recorded, the sync goes on);
* on demand (:func:`refresh_metadata`, ``CrmIndex.refresh_metadata``);
* by ``metadata`` jobs (:func:`metadata_handler`), which the index writes queue when they name an owner or a stage
  the vocabulary does not know (``crm.metadata_note_rows``; webhook changes: :func:`note_ids`), at most once per
  account every ``crm.metadata_request_every()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from crmindex.crm.errors import CrmError
from crmindex.crm.outcomes import fetch_outcome
from crmindex.crm.protocols import Lister, MetadataLister
from crmindex.errors import CrmIndexError
from crmindex.platform.db import Conn
from crmindex.platform.queue import Handler, Job, Outcome

log = logging.getLogger("crmindex.metadata")

METADATA_KIND = "metadata"


@dataclass(frozen=True)
class MetadataReport:
    owners_changed: int
    stages_changed: int
    deals_relabelled: int


def refresh_metadata(conn: Conn, org_id: str, lister: Lister) -> MetadataReport | None:
    """Fetch the account's vocabulary and store it (``crm.crm_metadata_put``); None for a CRM whose vocabulary is not
    fetched (it is then not asked for again). Raises the CRM's error after recording it."""
    org = str(org_id)
    if not isinstance(lister, MetadataLister):
        conn.execute(
            "SELECT crm.crm_metadata_failed(%s, %s, %s, FALSE)",
            (org, lister.source, "this CRM's owners and stages are not fetched"),
        )
        return None
    try:
        vocab = lister.vocabulary()
    except CrmError as exc:
        conn.execute("SELECT crm.crm_metadata_failed(%s, %s, %s)", (org, lister.source, str(exc)))
        raise
    row = conn.execute(
        "SELECT owners_changed, stages_changed, deals_relabelled FROM crm.crm_metadata_put(%s, %s, %s, %s, %s)",
        (
            org,
            lister.source,
            None if vocab.owners is None else Jsonb(vocab.owners),
            None if vocab.stages is None else Jsonb(vocab.stages),
            list(vocab.object_types),
        ),
    ).fetchone()
    assert row is not None
    report = MetadataReport(int(str(row[0])), int(str(row[1])), int(str(row[2])))
    log.info(
        "%s %s vocabulary: %d owners and %d stages changed, %d deals relabelled",
        org,
        lister.source,
        report.owners_changed,
        report.stages_changed,
        report.deals_relabelled,
    )
    return report


def refresh_for_sync(conn: Conn, org_id: str, lister: Lister) -> MetadataReport | None:
    """The sync's refresh, before its pages: a CRM error is recorded and logged, the sync goes on (its pages say
    whether the account works; deals written without labels ask for a refresh later)."""
    if not isinstance(lister, MetadataLister):
        return None
    try:
        return refresh_metadata(conn, org_id, lister)
    except CrmError as exc:
        log.warning("%s %s: vocabulary not fetched (%s); the sync goes on", org_id, lister.source, exc)
        return None


def note_ids(
    conn: Conn, org_id: str, source: str, owner_ids: Iterable[str], stages: Sequence[Mapping[str, Any]] = ()
) -> bool:
    """Owner ids and ``{pipeline, stage}`` pairs a write named: ask for a refresh when the vocabulary does not know
    one (``crm.metadata_note_ids``, rate limited). Returns whether one was asked for."""
    owners = sorted({str(o) for o in owner_ids if o not in (None, "")})
    if not owners and not stages:
        return False
    row = conn.execute(
        "SELECT crm.metadata_note_ids(%s, %s, %s, %s)",
        (org_id, source, owners, Jsonb([dict(s) for s in stages])),
    ).fetchone()
    return bool(row and row[0])


def metadata_handler(lister_for: Callable[[str, str], Lister]) -> Handler:
    """Queue-core handler for ``metadata`` jobs (``crm.job``): refresh each account's vocabulary once."""

    def handle(conn: Conn, jobs: Sequence[Job]) -> Mapping[Job, Outcome]:
        outcomes: dict[Job, Outcome] = {}
        groups: dict[tuple[str, str], list[Job]] = {}
        for job in jobs:
            groups.setdefault((str(job.org_id), str(job.row.get("crm_source"))), []).append(job)
        for (org, source), group in groups.items():
            try:
                refresh_metadata(conn, org, lister_for(org, source))
                out = Outcome.done()
            except CrmError as exc:
                out = fetch_outcome(conn, org, source, exc, kind=METADATA_KIND)
            except (CrmIndexError, psycopg.DataError) as exc:  # no connection any more, unusable data
                out = Outcome.dead(f"vocabulary not refreshed: {exc}"[:4000])
            for job in group:
                outcomes[job] = out
        return outcomes

    return handle
