"""Fetching whole records from a CRM: the one protocol materialization, hydration and reconcile use.

``fetcher_for(connection, limiter)`` builds the fetcher of a connection (HubSpot: batch reads of <= 100
ids with every property; Attio: one GET per record). Ids the CRM does not return are gone (deleted,
archived or merged away).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


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
