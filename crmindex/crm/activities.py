"""Activities (notes, calls, meetings, emails, tasks) on their way to a CRM: the job payload the queue carries
(built and validated by ``crm.log_activity``, ``sql/writeback/activities.sql``) and the writer protocol the
drainer sends them through (``HubSpotWriter.log_activities``, ``AttioWriter.log_activities``).

Activities never coalesce (two notes are two notes) and are never created twice: every job carries a marker
the CRM keeps, its timestamp (``occurred_at_ms``, whose millisecond part is drawn per job by the SQL function)
together with the record it is logged on. A job that may have reached the CRM before (a timeout, a 5xx or a
crash after sending: ``maybe_sent``) first looks for an activity with that marker on that record and reports
it as created instead of creating another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from crmindex.crm.protocols import WriteResult

KINDS = ("note", "call", "meeting", "email", "task")
TARGETS = ("contact", "company", "deal")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Activity:
    """One queued activity (the job payload)."""

    kind: str
    target_type: str
    target_id: str
    body: str
    subject: str | None
    occurred_at_ms: int
    maybe_sent: bool = False

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, maybe_sent: bool) -> Activity:
        return cls(
            kind=str(payload["kind"]),
            target_type=str(payload["target_type"]),
            target_id=str(payload["target_id"]),
            body=str(payload.get("body") or ""),
            subject=None if payload.get("subject") in (None, "") else str(payload["subject"]),
            occurred_at_ms=int(payload["occurred_at_ms"]),
            maybe_sent=maybe_sent,
        )

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromtimestamp(self.occurred_at_ms / 1000, tz=UTC)

    def iso(self) -> str:
        """The timestamp in ISO 8601 with milliseconds (the marker's precision)."""
        return self.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.occurred_at_ms % 1000:03d}Z"


@runtime_checkable
class ActivityWriter(Protocol):
    """A writer that can log activities (both CRMs' writers)."""

    def log_activities(self, items: Sequence[Activity]) -> list[WriteResult]: ...


@runtime_checkable
class AssociationWriter(Protocol):
    """A writer that can associate and disassociate records (both CRMs' writers): each item is the payload of
    ``crm.associate`` / ``crm.disassociate`` (``{"action", "from_type", "from_id", "to_type", "to_id",
    "primary"}``)."""

    def associate(self, items: Sequence[Mapping[str, Any]]) -> list[WriteResult]: ...


def parse_ms(value: Any) -> int | None:
    """Epoch milliseconds of an ISO 8601 text or an epoch-ms number (None when neither)."""
    if value is None or value == "":
        return None
    s = str(value).strip()
    if s.lstrip("-").isdigit():
        return int(s)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)  # integers: a float timestamp can lose the last ms
