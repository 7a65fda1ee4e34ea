"""What crmindex needs from a CRM, as protocols: fetching whole records (materialization, hydration, reconcile)
and writing them back (the drainer). A CRM is a package under ``crmindex.crm`` whose adapters implement both.

``fetcher_for(connection, limiter)`` builds the fetcher of a connection (HubSpot: batch reads of <= 100
ids with every property; Attio: one GET per record). Ids the CRM does not return are gone (deleted,
archived or merged away).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from crmindex.crm.errors import CrmError


@dataclass(frozen=True)
class FetchedRecord:
    """A record as the CRM has it now."""

    crm_record_id: str
    row: dict[str, Any]  # index row: keys are index column names (incl. crm_updated_at)
    properties: dict[str, Any] = field(default_factory=dict)  # every property / attribute as fetched
    merged_ids: tuple[str, ...] = ()  # ids merged into this record (HubSpot hs_merged_object_ids)


class RecordFetcher(Protocol):
    source: str

    def fetch(self, object_type: str, ids: Sequence[str]) -> dict[str, FetchedRecord]:
        """Fetch ``ids`` of ``object_type`` (contacts, companies, deals); absent keys are gone."""
        ...


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one record of a CRM write call."""

    ok: bool
    crm_record_id: str | None = None
    error: CrmError | None = None


class CrmWriter(Protocol):
    """Sends writes to one CRM account; implementations live in ``crmindex.crm.<crm>.adapters``."""

    source: str
    max_batch: int

    def update(
        self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[WriteResult]: ...

    def create(
        self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[WriteResult]: ...


WriterFactory = Callable[[str, str], CrmWriter | None]  # (org_id, source) -> writer, None if not connected
