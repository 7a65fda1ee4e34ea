"""Pydantic v2 models of the Attio payloads the client returns (REST v2 records, lists and their entries,
statuses and select options, workspace members).

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
        """The newest ``active_from``/``active_until`` of any value: Attio records have no ``updated_at``.

        A GET or a records query returns the *active* values only (historic ones come from
        ``GET .../attributes/{attribute}/values?show_historic=true``), so a value cleared since cannot move this
        forward: its ``active_until`` is not in the payload. See :meth:`version`."""
        return _newest(self.values)

    def version(self, observed_at: datetime | None = None) -> datetime:
        """The record's version: the newest of ``created_at`` and every ``active_from``/``active_until`` in the
        payload. ``observed_at`` (when the record was read) is not mixed in: it goes beside the row (the index's
        ``observed_at``), where a snapshot may supersede a stored row whose version is newer than its own only when
        its content differs (a value was cleared): see ``crm.observed_versions`` in ``sql/index/writes.sql``."""
        changed = self.last_changed_at()
        return self.created_at if changed is None else max(changed, self.created_at)

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


def _ts(raw: Any) -> datetime | None:
    """An Attio timestamp (nanosecond precision, ``Z``: "2023-01-01T15:00:00.000000000Z") as a datetime."""
    if not raw:
        return None
    text = str(raw).replace("Z", "+00:00")
    head, dot, tail = text.partition(".")
    if dot:  # at most microseconds: Python's datetime
        digits = tail[: len(tail) - len(tail.lstrip("0123456789"))]
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.fromisoformat(text)


def _newest(values: dict[str, list[dict[str, Any]]]) -> datetime | None:
    newest: datetime | None = None
    for vals in values.values():
        for v in vals:
            for key in ("active_from", "active_until"):
                ts = _ts(v.get(key))
                if ts is not None and (newest is None or ts > newest):
                    newest = ts
    return newest


class AttioChoice(BaseModel):
    """A status (of a status attribute) or a select option: ``{"id": {..., "status_id"|"option_id"}, "title",
    "is_archived"}`` (docs.attio.com "List statuses" / "List select options"; statuses add
    ``celebration_enabled`` and ``target_time_in_status``)."""

    model_config = ConfigDict(extra="allow")

    id: dict[str, Any]
    title: str
    is_archived: bool = False
    celebration_enabled: bool | None = None

    @property
    def choice_id(self) -> str:
        return str(self.id.get("status_id") or self.id.get("option_id") or "")


class AttioAttribute(BaseModel):
    """An attribute of an object or list (``GET /v2/{target}/{identifier}/attributes``)."""

    model_config = ConfigDict(extra="allow")

    id: dict[str, Any]
    title: str | None = None
    api_slug: str
    type: str
    is_multiselect: bool = False
    is_archived: bool = False


class AttioList(BaseModel):
    """A list (``GET /v2/lists``): ``id.list_id``, ``api_slug``, ``name``, ``parent_object`` (an array: "some
    legacy lists may have multiple allowed parents"), ``created_at`` (interfere-inc/attio docs/models/list.md)."""

    model_config = ConfigDict(extra="allow")

    id: dict[str, Any]
    api_slug: str | None = None
    name: str | None = None
    parent_object: list[str] = Field(default_factory=list)
    created_at: datetime | None = None

    @property
    def list_id(self) -> str:
        return str(self.id.get("list_id") or "")


class AttioEntry(BaseModel):
    """A list entry (``POST /v2/lists/{list}/entries/query``, ``GET /v2/lists/{list}/entries/{entry_id}``):
    ``id: {workspace_id, list_id, entry_id}``, ``parent_record_id``, ``parent_object``, ``created_at``,
    ``entry_values`` (the list's attributes, valued as records' are)."""

    model_config = ConfigDict(extra="allow")

    id: dict[str, Any]
    parent_record_id: str
    parent_object: str
    created_at: datetime | None = None
    entry_values: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)

    @property
    def list_id(self) -> str:
        return str(self.id.get("list_id") or "")

    @property
    def entry_id(self) -> str:
        return str(self.id.get("entry_id") or "")

    def status(self, attribute: str) -> dict[str, Any] | None:
        """The active status (``{"id": {..., "status_id"}, "title", ...}``) of a status attribute, if any."""
        for v in self.entry_values.get(attribute, []):
            if v.get("active_until") is None and isinstance(v.get("status"), dict):
                return dict(v["status"])
        return None


class AttioMember(BaseModel):
    """A workspace member (``GET /v2/workspace_members``): ``id: {workspace_id, workspace_member_id}``,
    ``first_name``, ``last_name``, ``email_address``, ``access_level`` (``admin``, ``member``, ``suspended``:
    "We do not delete workspace members"), ``created_at`` (interfere-inc/attio docs/models/workspace-member.md)."""

    model_config = ConfigDict(extra="allow")

    id: dict[str, Any]
    first_name: str | None = None
    last_name: str | None = None
    email_address: str | None = None
    access_level: str | None = None
    created_at: datetime | None = None

    @property
    def member_id(self) -> str:
        return str(self.id.get("workspace_member_id") or "")


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
