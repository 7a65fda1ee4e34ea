"""Webhook ingestion: verify, store raw in the inbox, then apply order-independently.

    receiver = WebhookReceiver(dsn)                       # or a psycopg_pool.ConnectionPool
    receiver.handle_hubspot(method, url, headers, raw_body) -> WebhookResponse(status, reason)
    receiver.handle_attio(headers, raw_body)               -> WebhookResponse(status, reason)
    make_wsgi_app(receiver)                                -> a WSGI app (POST /webhooks/hubspot|attio)

``handle_hubspot`` / ``handle_attio`` below use a receiver on ``$DATABASE_URL`` created on first use.
Processing: ``crmindex.webhooks.process.process_inbox`` is the queue-core handler of ``crm.webhook_inbox``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from crmindex.db import resolve_dsn
from crmindex.webhooks.intake import WebhookReceiver, WebhookResponse
from crmindex.webhooks.wsgi import make_wsgi_app

__all__ = ["WebhookReceiver", "WebhookResponse", "handle_attio", "handle_hubspot", "make_wsgi_app"]

_default: WebhookReceiver | None = None
_lock = threading.Lock()


def _receiver() -> WebhookReceiver:
    global _default
    with _lock:
        if _default is None:
            _default = WebhookReceiver(resolve_dsn(None))
        return _default


def handle_hubspot(method: str, url: str, headers: Mapping[str, str], raw_body: bytes) -> WebhookResponse:
    return _receiver().handle_hubspot(method, url, headers, raw_body)


def handle_attio(headers: Mapping[str, str], raw_body: bytes) -> WebhookResponse:
    return _receiver().handle_attio(headers, raw_body)
