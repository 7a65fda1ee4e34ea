"""Pydantic v2 models of the Attio payloads the client returns (REST v2 records).

Models accept unknown fields (the CRMs add fields over time) and keep them in ``model_extra``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AttioRecordId(BaseModel):
    model_config = ConfigDict(extra="allow")

    workspace_id: str
    object_id: str
    record_id: str


class AttioRecord(BaseModel):
    """An Attio record: every attribute maps to an array of values, historic ones have ``active_until``."""

    model_config = ConfigDict(extra="allow")

    id: AttioRecordId
    created_at: datetime
    web_url: str | None = None
    values: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)

    @property
    def record_id(self) -> str:
        return self.id.record_id

    # -- values ------------------------------------------------------------------------------------
    def active(self, attribute: str) -> list[dict[str, Any]]:
        """The attribute's active values (``active_until`` is null)."""
        return [v for v in self.values.get(attribute, []) if v.get("active_until") is None]

    def active_values(self) -> dict[str, list[dict[str, Any]]]:
        return {k: self.active(k) for k in self.values}

    def first(self, attribute: str) -> dict[str, Any] | None:
        vals = self.active(attribute)
        return vals[0] if vals else None

    def text(self, attribute: str) -> str | None:
        """The plain value of a text / number / select / status attribute (first active value)."""
        v = self.first(attribute)
        if v is None:
            return None
        return _plain(v)

    def texts(self, attribute: str) -> list[str]:
        return [p for p in (_plain(v) for v in self.active(attribute)) if p is not None]

    def last_changed_at(self) -> datetime | None:
        """The newest ``active_from``/``active_until`` of any value: Attio records have no ``updated_at``."""
        newest: datetime | None = None
        for vals in self.values.values():
            for v in vals:
                for key in ("active_from", "active_until"):
                    raw = v.get(key)
                    if not raw:
                        continue
                    ts = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
                    if newest is None or ts > newest:
                        newest = ts
        return newest

    # -- people ------------------------------------------------------------------------------------
    @property
    def first_name(self) -> str | None:
        v = self.first("name")
        return None if v is None else (v.get("first_name") or None)

    @property
    def last_name(self) -> str | None:
        v = self.first("name")
        return None if v is None else (v.get("last_name") or None)

    @property
    def full_name(self) -> str | None:
        v = self.first("name")
        if v is None:
            return None
        if v.get("attribute_type") == "text" or ("value" in v and "full_name" not in v):
            return v.get("value") or None
        return v.get("full_name") or None

    @property
    def email_addresses(self) -> list[str]:
        return [str(v.get("email_address")) for v in self.active("email_addresses") if v.get("email_address")]

    @property
    def phone_numbers(self) -> list[str]:
        out = []
        for v in self.active("phone_numbers"):
            num = v.get("original_phone_number") or v.get("phone_number")
            if num:
                out.append(str(num))
        return out

    @property
    def job_title(self) -> str | None:
        return self.text("job_title")

    @property
    def company_ref(self) -> tuple[str, str] | None:
        """(target_object, target_record_id) of the person's company."""
        v = self.first("company")
        if v is None or not v.get("target_record_id"):
            return None
        return str(v.get("target_object") or "companies"), str(v["target_record_id"])

    # -- companies ---------------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        """A company's (or deal's) name; people use :attr:`full_name`."""
        return self.full_name

    @property
    def domains(self) -> list[str]:
        return [str(v.get("domain")) for v in self.active("domains") if v.get("domain")]

    @property
    def categories(self) -> list[str]:
        return self.texts("categories")

    @property
    def location(self) -> dict[str, Any] | None:
        return self.first("primary_location")

    def references(self, attribute: str) -> list[str]:
        """Target record ids of a record-reference attribute (e.g. deals' ``associated_people``)."""
        return [str(v["target_record_id"]) for v in self.active(attribute) if v.get("target_record_id")]


def _plain(v: dict[str, Any]) -> str | None:
    for key in ("value", "title"):
        if v.get(key) is not None:
            return str(v[key])
    for key in ("option", "status"):
        inner = v.get(key)
        if isinstance(inner, dict) and inner.get("title") is not None:
            return str(inner["title"])
    if v.get("currency_value") is not None:
        return str(v["currency_value"])
    if v.get("referenced_actor_id") is not None:
        return str(v["referenced_actor_id"])
    return None
