"""Issue 13, item 5: the unauthenticated webhook surface.

* unknown and known portals / workspaces get the same 401 (status, body, candidate secrets checked) until a
  signature verifies; the HubSpot app secret is checked before any routing;
* thousands of probes with random account ids cost a bounded number of database round trips and memory;
* a delivery or event sent again (a CRM retry, a captured replay) is stored once, and a burst of replays adds
  no rows anywhere;
* Attio deletions are hints: a replayed ``record.deleted`` of a record the CRM still has deletes nothing;
* the receiver runs as a login that is a member of ``crm_receiver`` only.

Each test names the assertion that failed on the code before issue 13.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from crmindex.crm.attio.adapters import AttioFetcher
from crmindex.crm.attio.client import AttioClient
from crmindex.freshness import intake, signatures
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.intake import ROUTE_RETRY_S, ROUTE_TTL_S, WebhookReceiver
from crmindex.freshness.signatures import attio_signature, hubspot_v3
from crmindex.freshness.sync import AttioLister, run_sync
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.freshness.wsgi import make_wsgi_app
from crmindex.platform.limits import LimitClass
from crmindex.platform.local_limiter import LocalRateLimiter, Rate
from crmindex.platform.queue import Queue, Worker
from crmindex.platform.secrets import SecretBox
from crmindex.testing import FakeAttio
from crmindex.testing.synthetic import SyntheticCRM
from tests.orgs import ORG
from tests.orgs import ORG_B as OTHER_ORG

Conn = psycopg.Connection[Any]
PORTAL, PUBLIC_PORTAL, UNKNOWN_PORTAL = "62515", "77001", "99999"
WORKSPACE, UNKNOWN_WORKSPACE = "ws-trust", "ws-nobody"
HS_SECRET, ATTIO_SECRET, APP_SECRET = "private-app-secret", "attio-webhook-secret", "public-app-client-secret"
PUBLIC = "https://hooks.example.com"
HS_URL = f"{PUBLIC}/webhooks/hubspot"
KEY = os.urandom(32)
BOX = SecretBox.from_keys(("t3", KEY))
KEY_SPEC = "t3:" + base64.urlsafe_b64encode(KEY).decode().rstrip("=")


# ------------------------------------------------------------------------------------------------ helpers
def connect(
    db: Conn,
    org: uuid.UUID,
    source: str,
    account: str,
    *,
    secret: str | None = None,
    auth_kind: str = "private_app",
    settings: dict[str, Any] | None = None,
    ref: str = "",
) -> None:
    """Register a connection the operator way, its webhook secret sealed (crm/connections.sql)."""
    db.execute(
        "SELECT crm.connection_register(%s, %s, %s, %s, NULL, '{}', %s)",
        (org, source, account, auth_kind, json.dumps(settings) if settings is not None else None),
    )
    if secret is not None:
        sealed = BOX.seal(secret, org_id=org, source=source, kind="webhook_secret")
        db.execute(
            "SELECT crm.connection_secret_put(%s, %s, 'webhook_secret', %s, %s, NULL, %s)",
            (org, source, sealed.key_id, sealed.ciphertext, ref),
        )


@pytest.fixture
def conns(db: Conn, monkeypatch: pytest.MonkeyPatch) -> Conn:
    monkeypatch.setenv("CRMINDEX_SECRET_KEYS", KEY_SPEC)
    monkeypatch.delenv("CRMINDEX_HUBSPOT_CLIENT_SECRET", raising=False)
    connect(db, ORG, "hubspot", PORTAL, secret=HS_SECRET)
    connect(db, ORG, "attio", WORKSPACE, secret=ATTIO_SECRET)
    connect(db, OTHER_ORG, "hubspot", PUBLIC_PORTAL, auth_kind="oauth")  # the public app's portal
    return db


class CountingPool(ConnectionPool[Conn]):
    """A pool that counts its checkouts: one per database round trip of the receiver."""

    checkouts = 0

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Conn]:
        self.checkouts += 1
        with super().connection(timeout) as conn:
            yield conn


def hs_events(portal: str, n: int = 2, *, attempt: int = 0, start: int = 0) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [
        {
            "eventId": 1000 + i,
            "subscriptionId": 7,
            "portalId": int(portal),
            "appId": 9,
            "occurredAt": now - 60_000 + i,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": attempt,
            "objectId": 500 + i,
            "propertyName": "jobtitle",
            "propertyValue": f"Title {i}",
            "changeSource": "CRM_UI",
        }
        for i in range(start, start + n)
    ]


def hs_headers(body: bytes, secret: str, *, ts_ms: int | None = None) -> dict[str, str]:
    ts = str(int(time.time() * 1000) if ts_ms is None else ts_ms)
    return {
        "X-HubSpot-Signature-v3": hubspot_v3(secret, "POST", HS_URL, body, ts),
        "X-HubSpot-Request-Timestamp": ts,
    }


def attio_body(workspace: str, record: str = "rec-1", event: str = "record.updated") -> bytes:
    return json.dumps(
        {
            "webhook_id": "wh-1",
            "events": [
                {
                    "event_type": event,
                    "id": {
                        "workspace_id": workspace,
                        "object_id": "people",
                        "record_id": record,
                        "attribute_id": "a",
                    },
                    "actor": {"type": "workspace-member", "id": "m"},
                }
            ],
        }
    ).encode()


def post(app: Callable[..., Any], path: str, body: bytes, headers: dict[str, str]) -> tuple[str, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "internal:8080",
    }
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    statuses: list[str] = []
    out = b"".join(app(environ, lambda status, _headers: statuses.append(status)))
    return statuses[0], out


def inbox(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT org_id, crm_source, account_id, body FROM crm.webhook_inbox ORDER BY id"
    ).fetchall()


def count(db: Conn, sql: str) -> int:
    row = db.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


# ------------------------------------------------------------------------------------------------ 401s
def _hubspot_probes(portal: str, secret: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """Requests an attacker can make for a portal: unsigned, garbage, signed with a guessed secret, stale."""
    body = json.dumps(hs_events(portal)).encode()
    old = int((time.time() - 600) * 1000)
    return [
        ("unsigned", body, {}),
        (
            "garbage",
            body,
            {"X-HubSpot-Signature-v3": "A" * 44, "X-HubSpot-Request-Timestamp": str(int(time.time() * 1000))},
        ),
        ("guessed_secret", body, hs_headers(body, "guess")),
        ("another_accounts_secret", body, hs_headers(body, secret)),
        ("stale", body, hs_headers(body, "guess", ts_ms=old)),
        ("legacy_v1", body, {"X-HubSpot-Signature": "0" * 64, "X-HubSpot-Signature-Version": "v1"}),
    ]


@pytest.mark.parametrize("app_secret", [None, APP_SECRET], ids=["private_apps", "with_public_app"])
def test_unknown_and_known_portals_get_the_same_401(
    conns: Conn, db_dsn: str, monkeypatch: pytest.MonkeyPatch, app_secret: str | None
) -> None:
    # before: the unknown portal got 404 "unknown HubSpot portal" (first assertion), and no signature check
    if app_secret is not None:
        monkeypatch.setenv("CRMINDEX_HUBSPOT_CLIENT_SECRET", app_secret)
    checked: list[int] = []
    real = signatures.verify_hubspot

    def counting(*args: Any, **kw: Any) -> Any:
        checked.append(len(args[4]))  # the candidate secrets compared
        return real(*args, **kw)

    monkeypatch.setattr(intake, "verify_hubspot", counting)
    receiver = WebhookReceiver(db_dsn)
    app = make_wsgi_app(receiver, public_url=PUBLIC)
    try:
        for known in (PORTAL, PUBLIC_PORTAL):
            for (name, kbody, kheaders), (_, ubody, uheaders) in zip(
                _hubspot_probes(known, ATTIO_SECRET), _hubspot_probes(UNKNOWN_PORTAL, HS_SECRET), strict=True
            ):
                checked.clear()
                k = post(app, "/webhooks/hubspot", kbody, kheaders)
                k_checked = list(checked)
                checked.clear()
                u = post(app, "/webhooks/hubspot", ubody, uheaders)
                assert k == u, (known, name, k, u)
                assert k[0] == "401 Unauthorized", (known, name, k)
                assert k_checked == checked and all(n >= 2 for n in checked[-1:]), (name, k_checked, checked)
        # a real delivery still gets through (per-connection secret; app secret for the public portal)
        body = json.dumps(hs_events(PORTAL)).encode()
        assert post(app, "/webhooks/hubspot", body, hs_headers(body, HS_SECRET))[0] == "200 OK"
        if app_secret is not None:
            body = json.dumps(hs_events(PUBLIC_PORTAL)).encode()
            assert post(app, "/webhooks/hubspot", body, hs_headers(body, app_secret))[0] == "200 OK"
            # signed by the app for a portal nobody connected: the sender is HubSpot, it may know
            body = json.dumps(hs_events(UNKNOWN_PORTAL)).encode()
            assert post(app, "/webhooks/hubspot", body, hs_headers(body, app_secret))[0] == "404 Not Found"
        else:  # without the app secret, nothing verifies a public-app portal
            body = json.dumps(hs_events(PUBLIC_PORTAL)).encode()
            assert post(app, "/webhooks/hubspot", body, hs_headers(body, APP_SECRET))[0] == "401 Unauthorized"
    finally:
        receiver.close()
    assert len(inbox(conns)) == (2 if app_secret else 1)


def test_the_app_secret_is_checked_before_any_routing(
    conns: Conn, db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: routing (a database query) came first, and there was no app secret at all (TypeError)
    order: list[str] = []
    source = intake.stored_routes(BOX)
    real = signatures.verify_hubspot

    def load(conn: Conn) -> Any:
        order.append("load routes")
        return source(conn)

    def verify(*args: Any, **kw: Any) -> Any:
        verdict = real(*args, **kw)
        order.append(f"verify {len(args[4])} secret(s): {verdict.ok}")
        return verdict

    monkeypatch.setattr(intake, "verify_hubspot", verify)
    receiver = WebhookReceiver(db_dsn, routes=load, hubspot_client_secret=APP_SECRET)
    try:
        body = json.dumps(hs_events(PUBLIC_PORTAL)).encode()
        assert receiver.handle_hubspot("POST", HS_URL, hs_headers(body, APP_SECRET), body).status == 200
        assert order == ["verify 1 secret(s): True", "load routes"]
    finally:
        receiver.close()


def test_unknown_and_known_attio_workspaces_get_the_same_401(conns: Conn, db_dsn: str) -> None:
    # before: the unknown workspace got 404 "unknown Attio workspace"
    receiver = WebhookReceiver(db_dsn)
    app = make_wsgi_app(receiver, public_url=PUBLIC)
    try:
        signers: list[tuple[str, Callable[[bytes], dict[str, str]]]] = [
            ("unsigned", lambda b: {}),
            ("garbage", lambda b: {"Attio-Signature": "zz" * 32}),
            ("guessed", lambda b: {"Attio-Signature": attio_signature("guess", b)}),
            ("others_secret", lambda b: {"X-Attio-Signature": attio_signature(ATTIO_SECRET, b + b" ")}),
        ]
        for name, sign in signers:
            known, unknown = attio_body(WORKSPACE), attio_body(UNKNOWN_WORKSPACE)
            k = post(app, "/webhooks/attio", known, sign(known))
            u = post(app, "/webhooks/attio", unknown, sign(unknown))
            assert k == u, (name, k, u)
            assert k[0] == "401 Unauthorized"
        # the unknown workspace signed with a known workspace's secret: still the same 401
        unknown = attio_body(UNKNOWN_WORKSPACE)
        assert post(
            app, "/webhooks/attio", unknown, {"Attio-Signature": attio_signature(ATTIO_SECRET, unknown)}
        )[0] == ("401 Unauthorized")
    finally:
        receiver.close()
    assert inbox(conns) == []


# ------------------------------------------------------------------------------------------------ routing cost
def test_thousands_of_random_probes_cost_bounded_routing(conns: Conn, db_dsn: str) -> None:
    # before: every probe queried crm.connection (3,000 checkouts, first assertion) and cached its answer
    # forever (3,004 entries)
    pool = CountingPool(db_dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True)
    receiver = WebhookReceiver(pool)
    rng = random.Random(13)
    started = time.monotonic()
    try:
        answers = set()
        for i in range(3000):
            if i % 2:
                body = json.dumps(hs_events(str(rng.randrange(10**9)), 1)).encode()
                headers = {
                    "X-HubSpot-Signature-v3": "A" * 44,
                    "X-HubSpot-Request-Timestamp": str(int(time.time() * 1000)),
                }
                res = receiver.handle_hubspot("POST", HS_URL, headers, body)
            else:
                body = attio_body(str(uuid.UUID(int=rng.getrandbits(128))))
                res = receiver.handle_attio({"Attio-Signature": "00" * 32}, body)
            answers.add((res.status, res.reason))
        elapsed = time.monotonic() - started
        # one load, then at most one reload per ROUTE_RETRY_S (signatures that do not match may be made with a
        # secret newer than the snapshot), whatever the number of probes and accounts
        reloads = 1 + int(elapsed / ROUTE_RETRY_S) + 1
        assert pool.checkouts <= reloads, (pool.checkouts, elapsed)
        assert receiver.routes.loads <= reloads
        assert len(receiver.routes) == 3  # bounded by the connections, not by the probes
        assert answers <= {(401, "bad signature (v3)"), (401, "bad signature")}, answers
    finally:
        receiver.close()
        pool.close()
    assert inbox(conns) == []


def test_routes_reload_on_their_ttl_and_a_new_connection_is_seen(conns: Conn, db_dsn: str) -> None:
    now = [1000.0]
    receiver = WebhookReceiver(db_dsn, clock=lambda: now[0])
    try:
        body = attio_body("ws-later")
        headers = {"Attio-Signature": attio_signature("later-secret", body)}
        assert receiver.handle_attio(headers, body).status == 401
        connect(conns, uuid.uuid4(), "attio", "ws-later", secret="later-secret")
        # a signature that does not match reloads the snapshot, at most once per ROUTE_RETRY_S: not yet
        assert receiver.handle_attio(headers, body).status == 401
        assert receiver.routes.loads == 1
        now[0] += ROUTE_RETRY_S
        assert receiver.handle_attio(headers, body).status == 200  # reloaded: the new secret is known
        assert receiver.routes.loads == 2
        for _ in range(100):  # failures within ROUTE_RETRY_S of a reload reload nothing
            assert receiver.handle_attio({"Attio-Signature": "00" * 32}, attio_body("ws-probe")).status == 401
        assert receiver.routes.loads == 2
        now[0] += ROUTE_TTL_S  # and every ROUTE_TTL_S, whatever the traffic
        assert (
            receiver.handle_attio({"Attio-Signature": attio_signature(ATTIO_SECRET, body)}, body).status
            == 401
        )
        assert receiver.routes.loads == 3
    finally:
        receiver.close()


# ------------------------------------------------------------------------------------------------ replays
def test_a_signed_hubspot_delivery_sent_three_times_is_stored_once(conns: Conn, db_dsn: str) -> None:
    # before: three inbox rows (first assertion)
    receiver = WebhookReceiver(db_dsn)
    try:
        events = hs_events(PORTAL, 3)
        answers = []
        for attempt in range(3):  # HubSpot's retries: attemptNumber + 1, a new timestamp and signature
            again = [{**e, "attemptNumber": attempt} for e in events]
            if attempt == 2:  # re-serialized: other key order and spacing
                again = [dict(reversed(list(e.items()))) for e in again]
            body = json.dumps(again, indent=attempt or None).encode()
            res = receiver.handle_hubspot("POST", HS_URL, hs_headers(body, HS_SECRET), body)
            answers.append((res.status, res.reason))
        assert len(inbox(conns)) == 1
        assert answers == [(200, "accepted"), (200, "duplicate"), (200, "duplicate")]
        # a burst of replays of a captured request adds nothing anywhere
        body = json.dumps(events).encode()
        headers = hs_headers(body, HS_SECRET)
        keys = count(conns, "SELECT count(*) FROM crm.webhook_event_key")
        for _ in range(50):
            assert receiver.handle_hubspot("POST", HS_URL, headers, body).reason == "duplicate"
        assert count(conns, "SELECT count(*) FROM crm.webhook_event_key") == keys == 3
        # a batch holding one new event among seen ones is stored (processing is idempotent)
        body = json.dumps(events[1:] + hs_events(PORTAL, 1, start=3)).encode()
        assert receiver.handle_hubspot("POST", HS_URL, hs_headers(body, HS_SECRET), body).reason == "accepted"
        # same eventId, another change: not a replay (eventId is "not guaranteed to be unique")
        body = json.dumps([{**events[0], "propertyValue": "Other"}]).encode()
        assert receiver.handle_hubspot("POST", HS_URL, hs_headers(body, HS_SECRET), body).reason == "accepted"
        assert len(inbox(conns)) == 3
    finally:
        receiver.close()


@pytest.mark.parametrize(
    "idempotency_key", [None, "3f1c2b5e-idem-0001"], ids=["no_header", "idempotency_key"]
)
def test_an_attio_body_sent_three_times_is_stored_once(
    conns: Conn, db_dsn: str, idempotency_key: str | None
) -> None:
    # before: three inbox rows (first assertion)
    receiver = WebhookReceiver(db_dsn)
    body = attio_body(WORKSPACE)
    headers = {"Attio-Signature": attio_signature(ATTIO_SECRET, body)}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    try:
        answers = [receiver.handle_attio(headers, body).reason for _ in range(3)]
        assert len(inbox(conns)) == 1
        assert answers == ["accepted", "duplicate", "duplicate"]
        # the header is not signed: replays with made-up keys are held back too, and add no key rows
        keys = count(conns, "SELECT count(*) FROM crm.webhook_event_key")
        for i in range(50):
            forged = {**headers, "Idempotency-Key": f"forged-{i}"}
            assert receiver.handle_attio(forged, body).reason == "duplicate"
        assert count(conns, "SELECT count(*) FROM crm.webhook_event_key") == keys
        # once that delivery has been processed, the same body can be a real new edit (Attio events carry no
        # time nor value), whose refetch is needed ...
        conns.execute("UPDATE crm.webhook_inbox SET status = 'completed'")
        if idempotency_key is not None:
            # ... but Attio's retry of the same message (same Idempotency-Key) is still a duplicate,
            assert receiver.handle_attio(headers, body).reason == "duplicate"
            # ... while a new message with the same body is stored
            assert (
                receiver.handle_attio({**headers, "Idempotency-Key": "idem-0002"}, body).reason == "accepted"
            )
        else:
            assert receiver.handle_attio(headers, body).reason == "accepted"
        assert receiver.handle_attio(headers, body).reason == "duplicate"  # waiting again: held back
        assert len(inbox(conns)) == 2
    finally:
        receiver.close()


def test_webhook_accept_is_a_definer_function_with_a_pinned_search_path(conns: Conn) -> None:
    row = conns.execute(
        "SELECT p.prosecdef, p.proconfig FROM pg_proc AS p WHERE p.oid = "
        "'crm.webhook_accept(uuid, text, text, text, jsonb, integer, text[], interval, text, interval)'"
        "::regprocedure"
    ).fetchone()
    assert row is not None and row[0] is True
    assert any(str(c).startswith("search_path=pg_catalog") for c in row[1] or [])
    # malformed keys are refused (a client error), nothing stored
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conns.execute(
            "SELECT crm.webhook_accept(%s, 'hubspot', %s, '[]', '{}', 0, ARRAY['not-a-digest'], NULL)",
            (ORG, PORTAL),
        )
    assert inbox(conns) == []


def test_maintenance_purges_expired_event_keys(conns: Conn, db_dsn: str) -> None:
    receiver = WebhookReceiver(db_dsn)
    try:
        body = json.dumps(hs_events(PORTAL, 4)).encode()
        assert receiver.handle_hubspot("POST", HS_URL, hs_headers(body, HS_SECRET), body).status == 200
    finally:
        receiver.close()
    conns.execute("UPDATE crm.webhook_event_key SET expires_at = now() - interval '1 second' WHERE ctid IN "
                  "(SELECT ctid FROM crm.webhook_event_key LIMIT 3)")  # fmt: skip
    row = conns.execute("SELECT crm.maintenance()").fetchone()
    assert row is not None and row[0]["purged_webhook_keys"] == 3
    assert count(conns, "SELECT count(*) FROM crm.webhook_event_key") == 1


# ------------------------------------------------------------------------------------------------ Attio deletions
ATTIO_FAST = LocalRateLimiter(
    {LimitClass.ATTIO_READ: Rate(10_000, 1_000), LimitClass.ATTIO_WRITE: Rate(10_000, 1_000)}
)


def test_a_replayed_attio_deletion_of_a_live_record_deletes_nothing(conns: Conn, db_dsn: str) -> None:
    # before: the deletion was applied at once, stamped with the receive time (first assertion)
    org = uuid.uuid4()
    with FakeAttio(limits=False, webhook_url=f"{PUBLIC}/webhooks/attio", webhook_secret="attio-fake-secret",
                   emit="collect", seed=3) as fake:  # fmt: skip
        fake.seed_from(SyntheticCRM(13, 12, companies=3, deals=2, source="attio"))
        slugs = {oid: slug for slug, oid in fake.object_ids.items()}
        connect(conns, org, "attio", fake.workspace_id, secret="attio-fake-secret",
                settings={"attio_object_ids": slugs})  # fmt: skip
        client = AttioClient(fake.base_url, lambda: "test-token", ATTIO_FAST)
        receiver = WebhookReceiver(db_dsn)
        fetcher = AttioFetcher(client)

        def drain() -> None:
            inbox_worker = Worker(db_dsn, INBOX, process_inbox)
            hydrate = Worker(db_dsn, Queue("crm.job"), hydrate_handler(lambda o, s: fetcher), kind="hydrate")
            while inbox_worker.run_once() + hydrate.run_once():
                pass

        def deleted(rid: str) -> bool:
            row = conns.execute(
                "SELECT deleted_at IS NOT NULL FROM crm.contact_index WHERE org_id = %s AND crm_record_id = %s",
                (org, rid),
            ).fetchone()
            assert row is not None
            return bool(row[0])

        try:
            run_sync(conns, org, AttioLister(client), progress=False)
            alive, gone = fake.record_ids("people")[:2]
            # a record.deleted of a record the CRM still has (a replayed old deletion, or a forged one)
            event = {
                "event_type": "record.deleted",
                "id": {
                    "workspace_id": fake.workspace_id,
                    "object_id": fake.object_ids["people"],
                    "record_id": alive,
                },
                "actor": {"type": "workspace-member", "id": "m"},
            }
            body = json.dumps({"webhook_id": fake.webhook_id, "events": [event]}).encode()
            assert receiver.handle_attio(fake.sign(body), body).status == 200
            drain()
            assert not deleted(alive)
            # a real deletion: the refetch finds the record gone, and it is soft-deleted
            fake.delete("people", gone)
            for d in fake.take_deliveries():
                assert receiver.handle_attio(d.headers, d.body).status == 200
            drain()
            assert deleted(gone) and not deleted(alive)
        finally:
            receiver.close()
            client.close()


# ------------------------------------------------------------------------------------------------ least privilege
def test_the_receiver_runs_as_a_member_of_crm_receiver_only(conns: Conn, db_dsn: str) -> None:
    # needs the grants of sql/platform/grants.sql (crm_receiver: EXECUTE on webhook_route and webhook_accept);
    # before: the receiver read crm.connection directly (permission denied for a crm_receiver member)
    role = f"rcv_{uuid.uuid4().hex[:8]}"
    conns.execute(f"CREATE ROLE {role} LOGIN IN ROLE crm_receiver")
    try:
        dsn = make_conninfo(db_dsn, user=role)
        with psycopg.connect(dsn, autocommit=True) as probe:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                probe.execute("SELECT 1 FROM crm.connection LIMIT 1")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                probe.execute("SELECT 1 FROM crm.webhook_inbox LIMIT 1")
        receiver = WebhookReceiver(dsn, hubspot_client_secret=APP_SECRET)
        try:
            body = json.dumps(hs_events(PORTAL)).encode()
            assert (
                receiver.handle_hubspot("POST", HS_URL, hs_headers(body, HS_SECRET), body).reason
                == "accepted"
            )
            assert (
                receiver.handle_hubspot("POST", HS_URL, hs_headers(body, HS_SECRET), body).reason
                == "duplicate"
            )
            body = json.dumps(hs_events(PUBLIC_PORTAL)).encode()
            assert (
                receiver.handle_hubspot("POST", HS_URL, hs_headers(body, APP_SECRET), body).reason
                == "accepted"
            )
            body = attio_body(WORKSPACE)
            assert (
                receiver.handle_attio({"Attio-Signature": attio_signature(ATTIO_SECRET, body)}, body).status
                == 200
            )
            body = attio_body(UNKNOWN_WORKSPACE)
            assert (
                receiver.handle_attio({"Attio-Signature": attio_signature(ATTIO_SECRET, body)}, body).status
                == 401
            )
        finally:
            receiver.close()
    finally:
        conns.execute(f"DROP ROLE {role}")
    assert [(str(r[0]), r[1], r[2]) for r in inbox(conns)] == [
        (str(ORG), "hubspot", PORTAL),
        (str(OTHER_ORG), "hubspot", PUBLIC_PORTAL),
        (str(ORG), "attio", WORKSPACE),
    ]
