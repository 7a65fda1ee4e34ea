"""Attio's webhooks as the fake sends them: one event per delivery, ``{"webhook_id", "events": [event]}``,
each event ``{"event_type", "id": {workspace, object, record (, attribute)}, "actor"}``, signed with a hex
HMAC-SHA256 of the raw body in ``Attio-Signature`` and ``X-Attio-Signature``, and carrying an ``Idempotency-Key``
header: a new one per message, the same on every retry of it (docs.attio.com/rest-api/how-to/webhooks:
"an Idempotency-Key header which will be different for each message, but the same between retries and
redeliveries"; a :class:`~crmindex.testing._server.Delivery` sent again keeps its headers).

List entries have their own events (docs.attio.com webhook reference, ``list-entry.created|updated|deleted``):
``id`` names the workspace, list and entry (and the attribute of an update), beside ``parent_object_id`` and
``parent_record_id``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from crmindex.testing._server import Delivery
from crmindex.testing.attio.schema import Workspace

Event = dict[str, Any]


class Sender(Protocol):
    """What the emitter reads from its fake when it sends: the secret and the delivery."""

    webhook_secret: str | None

    def _deliver(self, body: bytes, headers: Mapping[str, str]) -> Delivery | None: ...


class AttioWebhooks:
    def __init__(self, ws: Workspace, sender: Sender) -> None:
        self._ws = ws
        self._sender = sender

    def event(
        self, obj: str, event_type: str, rid: str, *, api: bool, attribute: str | None = None, **extra: Any
    ) -> Event:
        ident: dict[str, Any] = {
            "workspace_id": self._ws.workspace_id,
            "object_id": self._ws.object_ids[obj],
            "record_id": rid,
        }
        if attribute is not None:
            ident["attribute_id"] = self._ws.attribute_ids[(obj, attribute)]
        return {"event_type": event_type, "id": ident, "actor": self._ws.actor(api), **extra}

    def entry_event(
        self, event_type: str, list_id: str, entry_id: str, parent_object_id: str, parent_record_id: str, *,
        api: bool, attribute_id: str | None = None,
    ) -> Event:  # fmt: skip
        """A ``list-entry.*`` event (docs.attio.com webhook reference, list-entry events)."""
        ident: dict[str, Any] = {
            "workspace_id": self._ws.workspace_id,
            "list_id": list_id,
            "entry_id": entry_id,
        }
        if attribute_id is not None:
            ident["attribute_id"] = attribute_id
        return {"event_type": event_type, "id": ident, "parent_object_id": parent_object_id,
                "parent_record_id": parent_record_id, "actor": self._ws.actor(api)}  # fmt: skip

    def updated(self, obj: str, rid: str, changed: list[str], *, api: bool) -> list[Event]:
        """One ``record.updated`` event per changed attribute."""
        return [self.event(obj, "record.updated", rid, api=api, attribute=a) for a in changed]

    def sign(self, body: bytes) -> dict[str, str]:
        sig = hmac.new((self._sender.webhook_secret or "").encode(), body, hashlib.sha256).hexdigest()
        return {"Attio-Signature": sig, "X-Attio-Signature": sig}

    def emit(self, events: list[Event]) -> None:
        for ev in events:  # exactly one event per delivery (as Attio does today)
            body = json.dumps(
                {"webhook_id": self._ws.webhook_id, "events": [ev]}, separators=(",", ":")
            ).encode()
            # a new key per message; Delivery.send() of a retry sends the same headers, so the same key
            self._sender._deliver(body, {**self.sign(body), "Idempotency-Key": str(uuid.uuid4())})
