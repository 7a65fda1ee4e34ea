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
    results: list[AssociationRef] = Field(default_factory=list)
    paging: Paging | None = None


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
        coll = (self.associations or {}).get(to_type)
        return [] if coll is None else [a.id for a in coll.results]


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

    def primary_id(self) -> str | None:
        """The target labelled primary (HubSpot-defined type with label "Primary"), else the first one."""
        for t in self.to:
            if any((a.label or "").lower() == "primary" for a in t.association_types):
                return t.to_object_id
        return self.to[0].to_object_id if self.to else None


class AssociationBatchResponse(_HubSpotModel):
    status: str = "COMPLETE"
    results: list[AssociationResult] = Field(default_factory=list)
    errors: list[StandardError] = Field(default_factory=list)
