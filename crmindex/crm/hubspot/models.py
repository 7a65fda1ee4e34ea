"""Pydantic v2 models of the HubSpot payloads the client returns (CRM v3 objects, v4 associations).

Models accept unknown fields (the CRMs add fields over time) and keep them in ``model_extra``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _HubSpotModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow", coerce_numbers_to_str=True)


class NextPage(_HubSpotModel):
    after: str
    link: str | None = None


class Paging(_HubSpotModel):
    next: NextPage | None = None


class AssociationRef(_HubSpotModel):
    """One entry of a v3 object's inline ``associations`` (``?associations=companies``)."""

    id: str
    type: str | None = None


class AssociationCollection(_HubSpotModel):
    """A record's inline associations of one type: ``{results: [{id, type}], paging}``. An association with a
    primary label is listed once per label (``deal_to_company`` and ``deal_to_company_unlabeled``), in the order
    the associations were made; ``paging.next`` means the list was cut short."""

    results: list[AssociationRef] = Field(default_factory=list)
    paging: Paging | None = None

    @property
    def complete(self) -> bool:
        return self.paging is None or self.paging.next is None

    def ids(self) -> list[str]:
        """Every associated id, once each, in the order listed."""
        return list(dict.fromkeys(a.id for a in self.results))


class HubSpotObject(_HubSpotModel):
    """``SimplePublicObject`` (and its WithAssociations / Upsert variants): every property is a string."""

    id: str
    properties: dict[str, str | None] = Field(default_factory=dict)
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    archived: bool = False
    archived_at: datetime | None = Field(default=None, alias="archivedAt")
    object_write_trace_id: str | None = Field(default=None, alias="objectWriteTraceId")
    associations: dict[str, AssociationCollection] | None = None
    new: bool | None = None  # batch upsert: whether the record was created

    def prop(self, name: str) -> str | None:
        value = self.properties.get(name)
        return value if value not in (None, "") else None

    @property
    def merged_ids(self) -> list[str]:
        """Ids merged into this record (``hs_merged_object_ids``, semicolon-separated)."""
        raw = self.properties.get("hs_merged_object_ids") or ""
        return [p.strip() for p in raw.replace(",", ";").split(";") if p.strip()]

    def associated_ids(self, to_type: str) -> list[str]:
        """The ids of the inline associations of ``to_type`` (once each; none when the key is absent: HubSpot leaves
        out the types a record has no associations of)."""
        coll = (self.associations or {}).get(to_type)
        return [] if coll is None else coll.ids()

    def associations_complete(self, *to_types: str) -> bool:
        """Whether the inline associations of these types were listed whole (none was cut short by paging)."""
        return all((coll := (self.associations or {}).get(t)) is None or coll.complete for t in to_types)

    def primary_associated_id(self, to_type: str, primary_type: str) -> str | None:
        """The id listed with the primary association type (``deal_to_company``, ``contact_to_company``); else the
        only associated id; else the first listed (the oldest association) when none is labelled primary."""
        coll = (self.associations or {}).get(to_type)
        if coll is None:
            return None
        for a in coll.results:
            if a.type == primary_type:
                return a.id
        ids = coll.ids()
        return ids[0] if ids else None


class HubSpotPage(_HubSpotModel):
    """A list page: ``after`` is the cursor of the next page (None on the last page)."""

    results: list[HubSpotObject] = Field(default_factory=list)
    paging: Paging | None = None

    @property
    def after(self) -> str | None:
        return self.paging.next.after if self.paging and self.paging.next else None


class HubSpotSearchPage(HubSpotPage):
    total: int = 0


class StandardError(_HubSpotModel):
    """One entry of a 207 multi-status ``errors`` array."""

    status: str = "error"
    category: str | None = None
    message: str = ""
    sub_category: str | None = Field(default=None, alias="subCategory")
    context: dict[str, list[str]] = Field(default_factory=dict)
    errors: list[dict[str, Any]] = Field(default_factory=list)
    id: str | None = None

    def context_ids(self) -> list[str]:
        """The record ids (or objectWriteTraceIds) this error names."""
        out: list[str] = []
        for key in ("ids", "id", "objectWriteTraceId", "fromObjectId"):
            out.extend(self.context.get(key, []))
        return out


class BatchResponse(_HubSpotModel):
    """``BatchResponseSimplePublicObject`` (200/201) or its ``WithErrors`` variant (207)."""

    status: str = "COMPLETE"
    results: list[HubSpotObject] = Field(default_factory=list)
    errors: list[StandardError] = Field(default_factory=list)
    num_errors: int | None = Field(default=None, alias="numErrors")
    started_at: datetime | None = Field(default=None, alias="startedAt")
    completed_at: datetime | None = Field(default=None, alias="completedAt")


class AssociationType(_HubSpotModel):
    category: str
    type_id: int = Field(alias="typeId")
    label: str | None = None


class AssociationTarget(_HubSpotModel):
    to_object_id: str = Field(alias="toObjectId")
    association_types: list[AssociationType] = Field(default_factory=list, alias="associationTypes")


class FromRef(_HubSpotModel):
    id: str


class AssociationResult(_HubSpotModel):
    """One ``from`` record of a v4 associations batch read, with its targets."""

    from_: FromRef = Field(alias="from")
    to: list[AssociationTarget] = Field(default_factory=list)
    paging: Paging | None = None

    @property
    def to_ids(self) -> list[str]:
        return [t.to_object_id for t in self.to]

    def primary_id(self, primary_type_id: int | None = None) -> str | None:
        """The primary target (see :func:`primary_target`), else the first one."""
        return primary_target(self.to, primary_type_id)


class PipelineStage(_HubSpotModel):
    """A ``PipelineStage`` (pipelines v3 spec): deal stages' ``metadata`` holds ``isClosed`` ("true"/"false")
    and ``probability`` ("0.0" .. "1.0") as strings."""

    id: str
    label: str
    display_order: int = Field(alias="displayOrder")
    metadata: dict[str, str | None] = Field(default_factory=dict)
    archived: bool = False

    @property
    def is_closed(self) -> bool | None:
        value = self.metadata.get("isClosed")
        return None if value is None else str(value).lower() == "true"

    @property
    def is_won(self) -> bool | None:
        """Closed with probability 1.0 (HubSpot's "Closed won"; a closed stage below 1.0 is lost)."""
        closed = self.is_closed
        try:
            probability = float(self.metadata.get("probability") or "nan")
        except ValueError:
            return None
        if closed is None or probability != probability:  # NaN: no probability given
            return None
        return closed and probability >= 1.0


class Pipeline(_HubSpotModel):
    id: str
    label: str
    display_order: int = Field(alias="displayOrder")
    stages: list[PipelineStage] = Field(default_factory=list)
    archived: bool = False


class PipelineList(_HubSpotModel):
    """``CollectionResponsePipelineNoPaging``."""

    results: list[Pipeline] = Field(default_factory=list)


class Owner(_HubSpotModel):
    """A ``PublicOwner`` (owners v3): ``id``, names, ``email``, ``archived``, ``updatedAt``."""

    id: str
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    email: str | None = None
    archived: bool = False
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class OwnerPage(_HubSpotModel):
    """``CollectionResponsePublicOwnerForwardPaging``: ``after`` is the next page's cursor (None: the last)."""

    results: list[Owner] = Field(default_factory=list)
    paging: Paging | None = None

    @property
    def after(self) -> str | None:
        return self.paging.next.after if self.paging and self.paging.next else None


class AssociationBatchResponse(_HubSpotModel):
    status: str = "COMPLETE"
    results: list[AssociationResult] = Field(default_factory=list)
    errors: list[StandardError] = Field(default_factory=list)


# HubSpot-defined primary association type ids (reference A1: contact -> company 1, company -> contact 2, deal ->
# company 5, company -> deal 6). Rely on the type id, not the label text (changelog "changes-to-primary-labels",
# Feb 2024).
PRIMARY_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
}


def primary_target(targets: list[AssociationTarget], primary_type_id: int | None = None) -> str | None:
    """The target with the primary type id (or, without one given, a HubSpot-defined type labelled "Primary");
    else the first target (the oldest association: HubSpot lists them in the order they were made)."""
    for t in targets:
        for a in t.association_types:
            if (
                primary_type_id is not None
                and a.type_id == primary_type_id
                and a.category == "HUBSPOT_DEFINED"
            ):
                return t.to_object_id
            if primary_type_id is None and (a.label or "").lower() == "primary":
                return t.to_object_id
    return targets[0].to_object_id if targets else None
