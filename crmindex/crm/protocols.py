"""What crmindex needs from a CRM, as protocols: listing every record (sync, reconcile), fetching whole records
(materialization, hydration, reconcile), writing them back (the drainer) and reading its webhook deliveries.

A CRM is a package under ``crmindex.crm`` whose adapters implement these, plus one entry in
:mod:`crmindex.crm.registry` (its hosts, client, fetcher, writer, lister, event planner and OAuth provider);
everything else finds it there. Fetchers: HubSpot batch-reads <= 100 ids with every property, Attio GETs one
record at a time; ids the CRM does not return are gone (deleted, archived or merged away).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from crmindex.crm.errors import CrmError

M = TypeVar("M", bound=BaseModel)

Source = Literal["hubspot", "attio"]  # a CRM crmindex speaks to: its entry in crmindex.crm.registry
ObjectType = Literal["contacts", "companies", "deals"]  # what the index holds of every CRM
OBJECT_TYPES: tuple[ObjectType, ...] = ("contacts", "companies", "deals")
# singular entity names (write-back entity_type, activation log) <-> object types
OBJECT_TYPE_OF: dict[str, ObjectType] = {"contact": "contacts", "company": "companies", "deal": "deals"}
ENTITY_TYPE_OF: dict[str, str] = {v: k for k, v in OBJECT_TYPE_OF.items()}


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


@dataclass(frozen=True)
class Page:
    """One page of a listing: index rows, and the cursor of the next page (None: this was the last)."""

    rows: list[dict[str, Any]]
    next_cursor: str | None


class Lister(Protocol):
    """Every record of one CRM account, as pages from a saved cursor (the initial sync; a full rescan).

    ``steps`` names the listings in order (``contacts``, ...; ``archived_<type>`` for listings of deleted
    records, whose rows carry ``deleted_at``)."""

    @property
    def source(self) -> str: ...

    @property
    def steps(self) -> Sequence[str]: ...

    def pages(self, step: str, cursor: str | None) -> Iterator[Page]: ...

    def total(self, step: str) -> int | None: ...

    def remember(self, conn: Any, org_id: str) -> None:
        """Keep next to the connection what the pages listed so far taught that later webhook deliveries need
        (Attio: the ids of its objects); called after each committed page."""
        ...


@runtime_checkable
class ChangeLister(Protocol):
    """A lister that can also list the records modified in a time window (a CRM with a modified-time search):
    reconcile then repairs only that window instead of rescanning everything."""

    def changed(self, object_type: str, since: datetime, until: datetime) -> Iterator[list[FetchedRecord]]:
        """Batches of the records of ``object_type`` modified in ``[since, until]`` (deals with their
        associations and ``associations_read_at``; ``merged_ids``: records merged into each)."""
        ...


@dataclass(frozen=True)
class Vocabulary:
    """What a CRM calls things, fetched whole: owners (``{owner_id, first_name, last_name, email, archived,
    crm_updated_at}``) and pipeline stages (``{object_type, pipeline_id, pipeline_label, stage_id, stage_label,
    display_order, is_closed, is_won}``), keyed as ``crm.crm_owner`` / ``crm.crm_pipeline_stage`` columns
    (``crm.crm_metadata_put``, sql/freshness/metadata.sql). None: that part is not fetched."""

    owners: list[dict[str, Any]] | None
    stages: list[dict[str, Any]] | None
    object_types: tuple[str, ...] = ("deals",)


@runtime_checkable
class MetadataLister(Protocol):
    """A lister that can also fetch the account's vocabulary (HubSpot: owners, deal pipelines and stages), which
    the index needs to show and search labels instead of raw ids (crmindex.freshness.metadata)."""

    def vocabulary(self) -> Vocabulary: ...


@runtime_checkable
class ListLister(Protocol):
    """A lister that can also list the account's lists and their entries (Attio: pipelines are often lists):
    ``crm.crm_list`` rows, and pages of ``crm.list_entry`` rows per list (crmindex.freshness.lists)."""

    def lists(self) -> list[dict[str, Any]]: ...

    def entries(self, lst: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]: ...


@dataclass
class EventPlan:
    """What one webhook delivery asks the database to do, grouped by object type (built without I/O by the
    CRM's event planner, applied by ``crmindex.freshness.webhooks.apply_plan``)."""

    changes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    deletions: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    restores: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    deal_contacts: list[dict[str, Any]] = field(default_factory=list)
    # raw CRM property changes, to drop superseded fields from pending write-backs
    crm_changes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    hydrate: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # contacts merged (both sides): the CRM moved their deal associations, so their deals are refetched
    merged_contacts: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def events(self, raw: Sequence[Any], model: type[M]) -> Iterator[tuple[int, M]]:
        """The events of a delivery that validate as ``model``, with their position; each that does not is
        recorded in :attr:`errors` (a delivery is applied as far as it can be)."""
        for i, item in enumerate(raw):
            try:
                yield i, model.model_validate(item)
            except ValidationError as exc:
                self.errors.append(f"event {i}: invalid ({exc.error_count()} problems)")


class EventPlanner(Protocol):
    """Reads one stored webhook delivery of a CRM: its parsed body, when it was received and the settings of
    the connection it was routed to."""

    def __call__(self, body: Any, received_at: datetime, settings: Mapping[str, Any]) -> EventPlan: ...
