"""A portal's vocabulary: deal pipelines with their stages, and owners, served as HubSpot serves them.

* ``GET /crm/v3/pipelines/{objectType}`` -> ``{"results": [Pipeline]}`` (``CollectionResponsePipelineNoPaging``:
  no paging, archived pipelines left out), ``GET .../{pipelineId}`` -> ``Pipeline``, ``GET .../{pipelineId}/stages``
  -> ``{"results": [PipelineStage]}``; a pipeline id that is unknown or archived answers 404 ("Pipeline ID
  validation" in the spec's description). Shapes: spec ``PublicApiSpecs/CRM/Pipelines/Rollouts/145896/v3/
  pipelines.json`` (the SDK's ``hubspot.crm.pipelines.models``): a ``Pipeline`` is ``{id, label, displayOrder,
  stages, createdAt, updatedAt, archived[, archivedAt]}``, a ``PipelineStage`` ``{id, label, displayOrder,
  metadata, createdAt, updatedAt, archived, writePermissions[, archivedAt]}``; deal stages' ``metadata`` is a map of
  strings: ``isClosed`` ("true"/"false") and ``probability`` (0.0 .. 1.0; "Closed won" is 1.0).
* The default deal pipeline has id ``default`` and the stages HubSpot creates in every portal
  (``appointmentscheduled`` ... ``closedwon``, ``closedlost``); stages of pipelines created later get numeric ids
  (developers.hubspot.com/docs/guides/api/crm/pipelines), which is why an index holding raw stage ids shows
  "12345678" unless it keeps the labels beside them.
* ``GET /crm/v3/owners/`` (``limit`` default 100, max 500; ``after`` cursor; ``email``; ``archived``) ->
  ``{"results": [PublicOwner], "paging": {"next": {"after", "link"}}}`` and ``GET /crm/v3/owners/{ownerId}``
  (``idProperty`` ``id`` | ``userId``): a ``PublicOwner`` is ``{id, email, firstName, lastName, userId,
  userIdIncludingInactive, createdAt, updatedAt, archived, teams, type}`` (``type`` ``PERSON`` | ``QUEUE``; the
  SDK's ``hubspot.crm.owners.models.PublicOwner``). ``archived=true`` lists only the deactivated owners.
* HubSpot sends no webhooks for pipelines or owners (the webhooks v3 spec's subscription types cover CRM objects
  only): a client has to poll these endpoints.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from crmindex.testing._http import Request, Response
from crmindex.testing.hubspot import errors
from crmindex.testing.hubspot.errors import BadRequest
from crmindex.testing.hubspot.model import iso_ms, now_ms

OWNER_PAGE_DEFAULT, OWNER_PAGE_MAX = 100, 500
PIPELINE_OBJECT_TYPES = ("deals", "tickets")

# HubSpot's default sales pipeline: stage id, label, probability, closed (the pipelines guide's example answer)
DEFAULT_DEAL_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)
_FIRST = ("Jane", "Omar", "Priya", "Lukas", "Mei", "Carlos", "Aisha", "Tom", "Sofia", "Kenji", "Nora", "Femi")
_LAST = (
    "Doe",
    "Haddad",
    "Raman",
    "Becker",
    "Chen",
    "Silva",
    "Bello",
    "Ward",
    "Rossi",
    "Sato",
    "Berg",
    "Okafor",
)


@dataclass
class Stage:
    id: str
    label: str
    display_order: int
    probability: str
    closed: bool
    created_ms: int
    updated_ms: int
    archived: bool = False

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "metadata": {"isClosed": "true" if self.closed else "false", "probability": self.probability},
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.updated_ms),
            "archived": self.archived,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }
        if self.archived:
            out["archivedAt"] = iso_ms(self.updated_ms)
        return out


@dataclass
class Pipeline:
    id: str
    label: str
    display_order: int
    created_ms: int
    updated_ms: int
    stages: list[Stage] = field(default_factory=list)
    archived: bool = False

    def live_stages(self) -> list[Stage]:
        return sorted((s for s in self.stages if not s.archived), key=lambda s: (s.display_order, s.label))

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "stages": [s.view() for s in self.live_stages()],
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.updated_ms),
            "archived": self.archived,
        }
        if self.archived:
            out["archivedAt"] = iso_ms(self.updated_ms)
        return out


@dataclass
class Owner:
    id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    user_id: int
    created_ms: int
    updated_ms: int
    archived: bool = False
    type: str = "PERSON"

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.updated_ms),
            "archived": self.archived,
            "teams": [],
            "type": self.type,
        }


class PortalMetadata:
    """The pipelines (per object type) and owners of one portal; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        now = now_ms()
        default = Pipeline("default", "Sales Pipeline", 0, now, now)
        default.stages = [Stage(sid, label, i, prob, closed, now, now)
                          for i, (sid, label, prob, closed) in enumerate(DEFAULT_DEAL_STAGES)]  # fmt: skip
        self.pipelines: dict[str, dict[str, Pipeline]] = {"deals": {"default": default}, "tickets": {}}
        self.owners: dict[str, Owner] = {}
        self._ids = itertools.count(1_000_000_001)  # numeric ids of pipelines and stages made later

    # -- changing (tests play the portal's admin) ---------------------------------------------------
    def add_pipeline(
        self, label: str, stages: list[tuple[str, str, bool]], *, object_type: str = "deals"
    ) -> tuple[str, list[str]]:
        """A new pipeline with ``stages`` ``(label, probability, closed)``: its numeric id and its stages' ids."""
        with self.lock:
            now = now_ms()
            pid = str(next(self._ids))
            pipes = self.pipelines[object_type]
            pipe = Pipeline(pid, label, len(pipes), now, now)
            pipe.stages = [Stage(str(next(self._ids)), sl, i, prob, closed, now, now)
                           for i, (sl, prob, closed) in enumerate(stages)]  # fmt: skip
            pipes[pid] = pipe
            return pid, [s.id for s in pipe.stages]

    def rename_stage(
        self, pipeline_id: str, stage_id: str, label: str, *, object_type: str = "deals"
    ) -> None:
        with self.lock:
            stage = self._stage(object_type, pipeline_id, stage_id)
            stage.label, stage.updated_ms = label, max(now_ms(), stage.updated_ms + 1)

    def archive_stage(self, pipeline_id: str, stage_id: str, *, object_type: str = "deals") -> None:
        with self.lock:
            stage = self._stage(object_type, pipeline_id, stage_id)
            stage.archived, stage.updated_ms = True, max(now_ms(), stage.updated_ms + 1)

    def _stage(self, object_type: str, pipeline_id: str, stage_id: str) -> Stage:
        for s in self.pipelines[object_type][pipeline_id].stages:
            if s.id == stage_id:
                return s
        raise KeyError(f"no stage {stage_id} in pipeline {pipeline_id}")

    def add_owner(
        self, first_name: str | None, last_name: str | None, email: str | None, *, owner_id: str | None = None
    ) -> str:
        with self.lock:
            oid = owner_id or str(next(self._ids))
            now = now_ms()
            self.owners[oid] = Owner(
                oid, first_name, last_name, email, 9_000_000 + len(self.owners), now, now
            )
            return oid

    def ensure_owners(self, ids: list[str]) -> None:
        """Owners for ids a seed names (deterministic names: the fake's stand-ins for a portal's users)."""
        with self.lock:
            for k, oid in enumerate(ids):
                if oid not in self.owners:
                    first, last = _FIRST[k % len(_FIRST)], _LAST[(k // len(_FIRST) + k) % len(_LAST)]
                    self.add_owner(first, last, f"{first}.{last}{k}@example.com".lower(), owner_id=oid)

    def update_owner(self, owner_id: str, **changes: Any) -> None:
        with self.lock:
            owner = self.owners[owner_id]
            for k, v in changes.items():
                setattr(owner, k, v)
            owner.updated_ms = max(now_ms(), owner.updated_ms + 1)

    # -- HTTP --------------------------------------------------------------------------------------
    def route(self, req: Request, parts: list[str]) -> Response | None:
        """Answer ``/crm/v3/pipelines/...`` and ``/crm/v3/owners/...`` (GET); None for other paths."""
        if parts[:3] == ["crm", "v3", "pipelines"] and req.method == "GET" and len(parts) >= 4:
            return self._pipelines(parts[3], parts[4:])
        if parts[:3] == ["crm", "v3", "owners"] and req.method == "GET":
            return self._owners(req, parts[3:])
        return None

    def _pipelines(self, object_type: str, rest: list[str]) -> Response:
        with self.lock:
            pipes = self.pipelines.get(object_type)
            if pipes is None:
                raise BadRequest(f"Unable to infer object type from: {object_type}")
            if not rest:
                live = sorted(
                    (p for p in pipes.values() if not p.archived), key=lambda p: (p.display_order, p.label)
                )
                return Response(200, {"results": [p.view() for p in live]})
            pipe = pipes.get(rest[0])
            if pipe is None or pipe.archived:
                return errors.not_found(f"Pipeline with ID {rest[0][:40]} not found")
            if len(rest) == 1:
                return Response(200, pipe.view())
            if rest[1:] == ["stages"]:
                return Response(200, {"results": pipe.view()["stages"]})
            if len(rest) == 3 and rest[1] == "stages":
                for s in pipe.stages:
                    if s.id == rest[2] and not s.archived:
                        return Response(200, s.view())
                return errors.not_found(f"Stage with ID {rest[2][:40]} not found")
        return errors.not_found("No route")

    def _owners(self, req: Request, rest: list[str]) -> Response:
        archived = (req.q("archived", "false") or "false").lower() == "true"
        with self.lock:
            if rest:
                by = req.q("idProperty", "id")
                for o in self.owners.values():
                    key = str(o.user_id) if by == "userId" else o.id
                    if key == rest[0] and o.archived == archived:
                        return Response(200, o.view())
                return errors.not_found(f"Owner {rest[0][:40]} not found")
            try:
                limit = int(req.q("limit", str(OWNER_PAGE_DEFAULT)) or OWNER_PAGE_DEFAULT)
                start = int(req.q("after", "0") or 0)
            except ValueError as exc:
                raise BadRequest("limit and after must be integers") from exc
            limit = max(1, min(limit, OWNER_PAGE_MAX))
            email = (req.q("email") or "").lower()
            rows = [o for o in sorted(self.owners.values(), key=lambda o: int(o.id) if o.id.isdigit() else 0)
                    if o.archived == archived and (not email or (o.email or "").lower() == email)]  # fmt: skip
            page = rows[start : start + limit]
            body: dict[str, Any] = {"results": [o.view() for o in page]}
            if start + limit < len(rows):
                nxt = str(start + limit)
                body["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
            return Response(200, body)
