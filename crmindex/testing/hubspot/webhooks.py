"""HubSpot's webhooks as the fake sends them: event objects (``eventId``, ``subscriptionId``, ``portalId``,
``appId``, ``occurredAt``, ``subscriptionType``, ``objectId``, ``changeSource`` and the type's fields) in
JSON arrays of up to 100 events per request, signed v1 (``X-HubSpot-Signature``: SHA-256 of secret + body)
and v3 (``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method + URI + body + timestamp, with
``X-HubSpot-Request-Timestamp``).

Two payload formats: the legacy one (``contact.propertyChange`` ...) and, when ``generic`` is on, the generic one
new apps receive (developers.hubspot.com/changelog/public-beta-generic-webhook-subscriptions, Aug 2024):
``object.creation|deletion|merge|restore|propertyChange`` carrying ``objectTypeId`` (``0-1`` contacts, ``0-2``
companies, ``0-3`` deals), and ``object.associationChange`` carrying ``fromObjectTypeId``, ``toObjectTypeId``,
``fromObjectId``, ``toObjectId``, ``associationTypeId``, ``associationCategory`` and ``associationRemoved``, sent for
both objects of the association; it has no legacy ``associationType`` name and no ``objectTypeId`` (the fake sends
neither, nor ``isPrimaryAssociation``: a primary association is its own type id, contact -> company 1, deal ->
company 5, made and removed beside the unlabeled one).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from crmindex.testing._server import Delivery
from crmindex.testing.hubspot.model import ASSOC_TYPES, KINDS, OBJECT_TYPE_ID, SINGULAR, now_ms
from crmindex.testing.hubspot.store import HubSpotRecord

Event = dict[str, Any]
EVENT_TYPES = ("creation", "deletion", "propertyChange", "merge", "restore", "associationChange")


def sign_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    msg = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def signature_headers(secret: str, body: bytes, *, method: str, uri: str, timestamp: str) -> dict[str, str]:
    """The signature headers HubSpot sends with ``body`` (v1 and v3, side by side)."""
    return {
        "X-HubSpot-Signature": sign_v1(secret, body),
        "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Signature-v3": sign_v3(secret, method, uri, body, timestamp),
        "X-HubSpot-Request-Timestamp": timestamp,
    }


class Sender(Protocol):
    """What the emitter reads from its fake when it sends: the app, the target and the delivery."""

    portal_id: int
    app_id: int
    webhook_url: str | None
    webhook_secret: str | None

    def _deliver(self, body: bytes, headers: Mapping[str, str]) -> Delivery | None: ...


class HubSpotWebhooks:
    """Builds the portal's events and sends them (or holds them while a :meth:`batched` block runs)."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self._event_id = itertools.count(1)
        self._subscription_ids = {t: 100_000 + i for i, t in enumerate(sorted(
            [f"{SINGULAR[k]}.{e}" for k in KINDS for e in EVENT_TYPES] + [f"object.{e}" for e in EVENT_TYPES]))}  # fmt: skip
        self.generic = False  # send the generic object.* format
        self._batch_events: list[Event] | None = None
        self._batch_lock = threading.Lock()

    # -- events ------------------------------------------------------------------------------------
    def event(self, kind: str, etype: str, object_id: int, *, source: str = "CRM_UI", **extra: Any) -> Event:
        sub = f"object.{etype}" if self.generic else f"{SINGULAR[kind]}.{etype}"
        ev: Event = {
            "eventId": next(self._event_id),
            "subscriptionId": self._subscription_ids[sub],
            "portalId": self._sender.portal_id,
            "appId": self._sender.app_id,
            "occurredAt": extra.pop("occurredAt", now_ms()),
            "subscriptionType": sub,
            "attemptNumber": 0,
            "objectId": object_id,
            "changeSource": source,
        }
        if source in ("CRM_UI", "CRM"):
            ev["sourceId"] = "userId:45678"
        if self.generic and etype != "associationChange":
            ev["objectTypeId"] = OBJECT_TYPE_ID[kind]
        ev.update(extra)
        return ev

    def merge(
        self, kind: str, primary: int, merged: list[int], new_id: int, moved: int, source: str, at: int
    ) -> Event:
        """A merge: ``primaryObjectId``, ``mergedObjectIds``, ``newObjectId`` (the record the merge left: the
        primary, or a new one) and ``numberOfPropertiesMoved`` (changelog "new-subscription-types-for-webhooks")."""
        return self.event(kind, "merge", new_id, source=source, primaryObjectId=primary, mergedObjectIds=merged,
                          newObjectId=new_id, numberOfPropertiesMoved=moved, occurredAt=at)  # fmt: skip

    def association(
        self, a: str, aid: int, b: str, bid: int, *, removed: bool, primary: bool, source: str, at: int
    ) -> list[Event]:
        """The events of one association made or removed between ``a`` ``aid`` and ``b`` ``bid``, both sides."""
        out: list[Event] = []
        for fk, fid, tk, tid in ((a, aid, b, bid), (b, bid, a, aid)):
            if not self.generic:
                out.append(self.event(
                    fk, "associationChange", fid, source=source, occurredAt=at,
                    associationType=f"{SINGULAR[fk].upper()}_TO_{SINGULAR[tk].upper()}",
                    fromObjectId=fid, toObjectId=tid, associationRemoved=removed, isPrimaryAssociation=primary,
                ))  # fmt: skip
                continue
            unl, prim = ASSOC_TYPES[(fk, tk)]
            for type_id in [unl] + ([prim] if primary and prim is not None else []):
                out.append(self.event(
                    fk, "associationChange", fid, source=source, occurredAt=at,
                    fromObjectTypeId=OBJECT_TYPE_ID[fk], toObjectTypeId=OBJECT_TYPE_ID[tk], fromObjectId=fid,
                    toObjectId=tid, associationTypeId=type_id, associationCategory="HUBSPOT_DEFINED",
                    associationRemoved=removed,
                ))  # fmt: skip
        return out

    def creation(self, kind: str, rec: HubSpotRecord, source: str) -> Event:
        return self.event(
            kind, "creation", rec.id, source=source, changeFlag="NEW", occurredAt=rec.created_ms
        )

    def deletion(self, kind: str, rec: HubSpotRecord, source: str) -> Event:
        return self.event(kind, "deletion", rec.id, source=source, changeFlag="DELETED",
                          occurredAt=rec.archived_ms)  # fmt: skip

    def property_changes(
        self, kind: str, oid: int, changes: list[tuple[str, str | None]], at: int, source: str
    ) -> list[Event]:
        return [self.event(kind, "propertyChange", oid, source=source, propertyName=name,
                           propertyValue="" if value is None else value, occurredAt=at)
                for name, value in changes]  # fmt: skip

    # -- sending -----------------------------------------------------------------------------------
    def sign(
        self, body: bytes, *, method: str = "POST", uri: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """The signature headers HubSpot sends with ``body`` to the fake's webhook URL, now."""
        return signature_headers(
            self._sender.webhook_secret or "",
            body,
            method=method,
            uri=uri or self._sender.webhook_url or "",
            timestamp=str(now_ms() if timestamp is None else timestamp),
        )

    def emit(self, events: list[Event]) -> None:
        """Send the events now, or add them to the open :meth:`batched` block's array."""
        if not events or self._sender.webhook_url is None:
            return
        with self._batch_lock:
            if self._batch_events is not None:
                self._batch_events.extend(events)
                return
        self.send(events)

    def send(self, events: list[Event]) -> None:
        for i in range(0, len(events), 100):  # HubSpot sends up to 100 events per request
            body = json.dumps(events[i : i + 100], separators=(",", ":")).encode()
            self._sender._deliver(body, self.sign(body))

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """The events of the block's mutations go out in one array when it ends."""
        with self._batch_lock:
            self._batch_events = []
        try:
            yield
        finally:
            with self._batch_lock:
                events, self._batch_events = self._batch_events or [], None
            self.send(events)
