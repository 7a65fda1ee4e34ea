"""Webhook intake: verified bodies land in the inbox before the 2xx; bad requests change nothing."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import psycopg
import pytest

from crmindex.freshness.intake import WebhookReceiver
from crmindex.freshness.signatures import attio_signature, hubspot_v3
from crmindex.freshness.wsgi import make_wsgi_app
from tests.orgs import ORG
from tests.test_trust_webhooks import KEY_SPEC, connect

Conn = psycopg.Connection[tuple[object, ...]]
URL = "https://hooks.example.com/crmindex/hubspot"


@pytest.fixture
def receiver(db: Conn, db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    monkeypatch.setenv("CRMINDEX_SECRET_KEYS", KEY_SPEC)  # the key ring that unseals the webhook secrets
    connect(db, ORG, "hubspot", "62515", secret="hs-secret-1")  # a private app's secret ...
    connect(db, ORG, "hubspot", "62515", secret="hs-secret-0", ref="previous")  # ... during a rotation
    connect(db, ORG, "attio", "ws-1", secret="attio-secret")
    r = WebhookReceiver(db_dsn)
    yield r
    r.close()


def _events(n: int, portal: int = 62515) -> bytes:
    now = int(time.time() * 1000)
    return json.dumps(
        [
            {
                "eventId": i,
                "subscriptionId": 1,
                "portalId": portal,
                "appId": 9,
                "occurredAt": now,
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": 100 + i,
                "propertyName": "jobtitle",
                "propertyValue": "CTO",
                "changeSource": "CRM_UI",
            }
            for i in range(n)
        ]
    ).encode()


def _signed(body: bytes, secret: str = "hs-secret-1", ts: int | None = None) -> dict[str, str]:
    ts = int(time.time() * 1000) if ts is None else ts
    return {
        "X-HubSpot-Signature-v3": hubspot_v3(secret, "POST", URL, body, str(ts)),
        "X-HubSpot-Request-Timestamp": str(ts),
        "Content-Type": "application/json",
    }


def _inbox(db: Conn) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT crm_source, account_id, events, body, status FROM crm.webhook_inbox ORDER BY id"
    ).fetchall()


def test_verified_hubspot_batch_is_stored_raw_before_the_2xx(db: Conn, receiver: WebhookReceiver) -> None:
    body = _events(100)
    res = receiver.handle_hubspot("POST", URL, _signed(body), body)
    assert (res.status, res.reason, res.events) == (200, "accepted", 100)
    [(source, account, events, stored, status)] = _inbox(db)
    assert (source, account, events, status) == ("hubspot", "62515", 100, "pending")
    assert stored == body.decode()  # byte for byte


def test_rotated_secret_accepted(db: Conn, receiver: WebhookReceiver) -> None:
    body = _events(1)
    assert receiver.handle_hubspot("POST", URL, _signed(body, "hs-secret-0"), body).status == 200


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("wrong_secret", 401, "bad signature"),
        ("tampered", 401, "bad signature"),
        ("stale", 401, "stale"),
        ("future", 401, "future"),
        # the same answer as a known portal's bad signature (issue 13: no oracle of connected portals)
        ("unknown_portal", 401, "bad signature (v3)"),
        ("malformed", 400, "malformed JSON"),
        ("not_array", 400, "array"),
        ("too_big", 413, "too large"),
        ("no_signature", 401, "missing signature"),
    ],
)
def test_bad_hubspot_requests_are_rejected_and_store_nothing(
    db: Conn, receiver: WebhookReceiver, case: str, status: int, reason: str
) -> None:
    body = _events(3)
    headers = _signed(body)
    if case == "wrong_secret":
        headers = _signed(body, "nope")
    elif case == "tampered":
        body = body.replace(b"CTO", b"CEO")
    elif case == "stale":
        headers = _signed(body, ts=int((time.time() - 600) * 1000))
    elif case == "future":
        headers = _signed(body, ts=int((time.time() + 600) * 1000))
    elif case == "unknown_portal":
        body = _events(1, portal=999)
        headers = _signed(body)
    elif case == "malformed":
        body = b"[{not json"
        headers = _signed(body)
    elif case == "not_array":
        body = b'{"portalId": 62515}'
        headers = _signed(body)
    elif case == "too_big":
        body = b"[" + b" " * 1_000_001 + b"]"
    elif case == "no_signature":
        headers = {}
    res = receiver.handle_hubspot("POST", URL, headers, body)
    assert res.status == status
    assert reason in res.reason
    assert _inbox(db) == []


def test_attio_delivery_is_verified_and_stored(db: Conn, receiver: WebhookReceiver) -> None:
    body = json.dumps(
        {
            "webhook_id": "wh-1",
            "events": [
                {
                    "event_type": "record.updated",
                    "id": {
                        "workspace_id": "ws-1",
                        "object_id": "people",
                        "record_id": "r1",
                        "attribute_id": "a",
                    },
                    "actor": {"type": "workspace-member", "id": "m"},
                }
            ],
        }
    ).encode()
    ok = receiver.handle_attio({"Attio-Signature": attio_signature("attio-secret", body)}, body)
    assert ok.status == 200
    bad = receiver.handle_attio({"Attio-Signature": attio_signature("other", body)}, body)
    assert bad.status == 401
    assert [(r[0], r[1], r[2]) for r in _inbox(db)] == [("attio", "ws-1", 1)]


def test_database_outage_answers_503_so_the_crm_retries(db: Conn, receiver: WebhookReceiver) -> None:
    body = _events(1)
    receiver.handle_hubspot("POST", URL, _signed(body), body)  # warm the route cache
    body = _events(2)  # new events (the same ones again would be answered "duplicate" without the inbox)
    db.execute("ALTER TABLE crm.webhook_inbox RENAME TO webhook_inbox_moved")
    try:
        res = receiver.handle_hubspot("POST", URL, _signed(body), body)
    finally:
        db.execute("ALTER TABLE crm.webhook_inbox_moved RENAME TO webhook_inbox")
    assert res.status == 503
    assert res.reason == "storage unavailable, retry later"


def test_wsgi_app_verifies_against_the_public_url(db: Conn, receiver: WebhookReceiver) -> None:
    app = make_wsgi_app(receiver, public_url="https://hooks.example.com")
    body = _events(2)
    ts = str(int(time.time() * 1000))
    sig = hubspot_v3("hs-secret-1", "POST", "https://hooks.example.com/webhooks/hubspot", body, ts)

    def call(method: str, path: str, payload: bytes, headers: dict[str, str]) -> tuple[str, bytes]:
        environ: dict[str, object] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "CONTENT_LENGTH": str(len(payload)),
            "CONTENT_TYPE": "application/json",
            "wsgi.input": io.BytesIO(payload),
            "wsgi.url_scheme": "http",
            "HTTP_HOST": "internal:8080",
        }
        environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
        statuses: list[str] = []
        out = b"".join(app(environ, lambda status, _headers: statuses.append(status)))
        return statuses[0], out

    good = {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts}
    status, out = call("POST", "/webhooks/hubspot", body, good)
    assert status == "200 OK" and json.loads(out)["events"] == 2
    assert call("POST", "/webhooks/hubspot", body.replace(b"CTO", b"CFO"), good)[0] == "401 Unauthorized"
    assert call("GET", "/webhooks/hubspot", b"", {})[0] == "405 Method Not Allowed"
    assert call("POST", "/elsewhere", body, good)[0] == "404 Not Found"
    assert call("GET", "/healthz", b"", {})[0] == "200 OK"
