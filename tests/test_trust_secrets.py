"""Secrets and where requests may go, at the trust boundary (issue 13, items 1 and 3), reproduced as an attacker
holding org A's application session would try them, and shown refused:

* item 1: A cannot repoint its connection (no UPDATE, no operator function) and there is no token reference left
  to aim at another org's variable or the worker's DSN; even a connection whose ``base_url`` was set to a foreign
  host (by an older version, or an operator's mistake) makes the worker send nothing there: a listener receives
  no request; an allow-listed proxy receives A's token only, never B's or anything of the worker's environment;
* item 3: an org cannot squat another customer's portal: the account id comes from the token;
* the sealed tokens are not readable by the application or the webhook receiver role, and never appear in
  errors or reprs (tests/test_secrets_in_logs.py scans logs and output end to end).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from crmindex.app import Workers
from crmindex.crm.clients import Clients
from crmindex.crm.connections import (
    connect_private_app,
    get_connection,
    register_connection,
    route_webhook,
    set_status,
    store_secret,
)
from crmindex.crm.hosts import HostNotAllowedError, HostPolicy
from crmindex.crm.http import RetryPolicy
from crmindex.crm.tokens import ConnectionUnusableError, TokenStore
from crmindex.errors import InvalidInputError, OrgMismatchError
from crmindex.index.writes import ContactRow, upsert_contacts
from crmindex.platform.secrets import Secret, SecretBox
from crmindex.testing import FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.writeback.enqueue import update_contact
from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B
from tests.orgs import app_session

Conn = psycopg.Connection[Any]
TOKEN_A = "pat-na1-token-of-org-a-5a1"
TOKEN_B = "pat-na1-token-of-org-b-5b1"
PORTAL_A, PORTAL_B = 7100, 7900
REFUSED = (psycopg.errors.InsufficientPrivilege, OrgMismatchError)


class Listener:
    """An HTTP server an attacker runs: it records every request (headers and body) and answers 503."""

    def __init__(self) -> None:
        seen: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                             "body": self.rfile.read(length).decode("utf-8", "replace")})  # fmt: skip
                body = b"<html>internal admin page: db password hunter2</html>"
                self.send_response(503)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        self.requests = seen
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False, portal_id=PORTAL_A, tokens=[TOKEN_A, TOKEN_B]) as f:
        yield f


@pytest.fixture
def orgs(db: Conn, fake: FakeHubSpot) -> Conn:
    """A and B connected (to the same fake, as two accounts), each with a contact and its token sealed."""
    for org, token, portal in ((A, TOKEN_A, PORTAL_A), (B, TOKEN_B, PORTAL_B)):
        connect_with_token(db, None, org, "hubspot", token, account_id=str(portal), base_url=fake.base_url,
                           webhook_secret=f"whsec-{org.hex[-3:]}")  # fmt: skip
        upsert_contacts(
            db, org, "hubspot", [ContactRow(crm_record_id="1001", first_name="Stan", job_title="VP")]
        )
    return db


@pytest.fixture
def app(db_dsn: str) -> Iterator[Conn]:
    """Org A's application session."""
    with app_session(db_dsn, A) as conn:
        yield conn


@pytest.fixture
def receiver_role(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE crm_receiver")
        yield conn


def _drain(db_dsn: str, **kw: Any) -> Clients:
    clients = Clients(db_dsn, retry=RetryPolicy.fast(), **kw)
    try:
        Workers(db_dsn, clients).run_once()
    finally:
        clients.close()
    return clients


def _job(db: Conn, org: uuid.UUID) -> tuple[str, int, str | None]:
    row = db.execute(
        "SELECT status, attempts, last_error FROM crm.writeback_queue WHERE org_id = %s ORDER BY id DESC LIMIT 1",
        (org,),
    ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1]), row[2]


# -- item 1 -------------------------------------------------------------------------------------------------------
def test_the_application_cannot_repoint_its_connection_or_name_a_token(orgs: Conn, app: Conn,
                                                                        fake: FakeHubSpot) -> None:  # fmt: skip
    before = get_connection(orgs, A, "hubspot")
    for sql, params in (
        ("UPDATE crm.connection SET base_url = %s WHERE org_id = %s", ("http://127.0.0.1:1", A)),
        ("UPDATE crm.connection SET settings = '{}' WHERE org_id = %s", (A,)),
        ("DELETE FROM crm.connection WHERE org_id = %s", (A,)),
        ("INSERT INTO crm.connection (org_id, crm_source, account_id) VALUES (%s, 'attio', 'ws-x')", (A,)),
        ("UPDATE crm.connection_secret SET ciphertext = ciphertext WHERE org_id = %s", (A,)),
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(sql, params)  # type: ignore[arg-type]
    # the operator functions refuse an application session too
    box = SecretBox.from_env()
    for call in (
        lambda: register_connection(
            app, A, "hubspot", str(PORTAL_A), auth_kind="private_app", base_url="http://127.0.0.1:1"
        ),
        lambda: store_secret(app, box, A, "hubspot", "private_app_token", Secret(TOKEN_B)),
        lambda: set_status(app, A, "hubspot", "active"),
        lambda: app.execute("SELECT crm.connection_disconnect(%s, 'hubspot')", (A,)),
        lambda: app.execute(
            "SELECT crm.oauth_state_create(%s, 'hubspot', %s, 'https://x.example/cb')", (A, b"\x00" * 32)
        ),
    ):
        with pytest.raises(REFUSED):
            call()
    # there is no token reference any more, not even for the owner: nothing can name an environment variable
    for column in ("token_ref", "webhook_secret_ref"):
        with pytest.raises(psycopg.errors.UndefinedColumn):
            orgs.execute(f"UPDATE crm.connection SET {column} = 'env:DATABASE_URL'")
    assert get_connection(orgs, A, "hubspot") == before


def test_no_request_goes_to_a_host_that_is_not_allowed(orgs: Conn, db_dsn: str, fake: FakeHubSpot,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("HUBSPOT_TOKEN_B", TOKEN_B)  # what an attacker hoped to exfiltrate
    with Listener() as listener:
        # A's base_url points at the attacker's listener (an older version let the tenant set it)
        orgs.execute("UPDATE crm.connection SET base_url = %s WHERE org_id = %s", (listener.url, A))
        update_contact(orgs, A, "1001", {"job_title": "pwned"})
        fake.clear_log()
        _drain(db_dsn, allowed_base_urls=[fake.base_url])  # the operator allowed the fake, nothing else
        assert listener.requests == []
        status, attempts, error = _job(orgs, A)
        assert status in ("pending", "failed") and attempts == 0  # held, not spent
        assert error is not None and "is not allowed" in error and TOKEN_A not in error
        flagged = get_connection(orgs, A, "hubspot").auth_error
        assert flagged is not None and "not allowed" in flagged
        # a client built for it refuses before sending, whoever calls it
        clients = Clients(db_dsn, allowed_base_urls=[fake.base_url], retry=RetryPolicy.fast())
        try:
            with pytest.raises(HostNotAllowedError) as exc:
                clients.client(A, "hubspot").list_page("contacts", limit=1)
        finally:
            clients.close()
        assert TOKEN_A not in str(exc.value) and listener.url.split("//")[1] in str(exc.value)
        assert listener.requests == []
    # the allow-list is off by default: not even the fake is allowed without it
    monkeypatch.delenv("CRMINDEX_ALLOWED_BASE_URLS", raising=False)
    update_contact(orgs, B, "1001", {"job_title": "ok?"})
    _drain(db_dsn)
    assert not [r for r in fake.request_log if "/crm/v3/" in r.path]
    assert "is not allowed" in str(_job(orgs, B)[2])


def test_an_allowed_proxy_gets_the_orgs_own_token_and_nothing_else(orgs: Conn, db_dsn: str, fake: FakeHubSpot,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("HUBSPOT_TOKEN_B", TOKEN_B)
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    with Listener() as proxy:
        orgs.execute("UPDATE crm.connection SET base_url = %s WHERE org_id = %s", (proxy.url, A))
        update_contact(orgs, A, "1001", {"job_title": "CEO"})
        _drain(db_dsn, allowed_base_urls=[proxy.url, fake.base_url])
        assert proxy.requests, "the allowed proxy should have been called"
    sent = json.dumps(proxy.requests)
    assert {r["headers"].get("Authorization") for r in proxy.requests} == {f"Bearer {TOKEN_A}"}
    for secret in (TOKEN_B, db_dsn, "whsec-"):
        assert secret not in sent
    # the proxy's answer (an internal page) is not stored where the tenant reads
    error = _job(orgs, A)[2]
    assert error is not None and "hunter2" not in error and "<html>" not in error


def test_the_host_policy() -> None:
    default = HostPolicy()
    assert default.is_allowed("hubspot", "https://api.hubapi.com")
    assert default.is_allowed("hubspot", "https://API.hubapi.com:443/")
    assert default.is_allowed("attio", "https://api.attio.com") and default.is_allowed(
        "attio", "https://app.attio.com"
    )
    for source, url in (
        ("hubspot", "http://api.hubapi.com"),  # not https
        ("hubspot", "https://api.hubapi.com.evil.example"),
        ("hubspot", "https://evil.example/api.hubapi.com"),
        ("hubspot", "https://user:pw@api.hubapi.com"),
        ("hubspot", "https://api.hubapi.com:8443"),
        ("hubspot", "https://api.attio.com"),  # another CRM's host
        ("attio", "https://api.hubapi.com"),
        ("hubspot", "http://127.0.0.1:8765"),
        ("hubspot", "file:///etc/passwd"),
        ("hubspot", "not a url"),
    ):
        assert not default.is_allowed(source, url), url
    listed = HostPolicy(["http://127.0.0.1:8765/hub", "http://localhost:*"])
    assert listed.is_allowed("hubspot", "http://127.0.0.1:8765/hub")
    assert listed.is_allowed("hubspot", "http://127.0.0.1:8765/hub/v2")
    assert not listed.is_allowed("hubspot", "http://127.0.0.1:8765/hubx")
    assert not listed.is_allowed("hubspot", "http://127.0.0.1:8766/hub")
    assert not listed.is_allowed("hubspot", "https://127.0.0.1:8765/hub")
    assert listed.is_allowed("attio", "http://localhost:1234") and not listed.is_allowed(
        "attio", "http://localhost.x:1"
    )
    assert HostPolicy.from_env({"CRMINDEX_ALLOWED_BASE_URLS": " http://a.example , "}).is_allowed(
        "hubspot", "http://a.example"
    )
    with pytest.raises(ValueError, match="credentials"):
        HostPolicy(["http://u:p@proxy.example"])


# -- item 3 ---------------------------------------------------------------------------------------------------------
def test_no_org_can_squat_another_customers_portal(db: Conn, db_dsn: str, app: Conn) -> None:
    box = SecretBox.from_env()
    with (
        FakeHubSpot(limits=False, portal_id=PORTAL_A, tokens=[TOKEN_A]) as portal_a,
        FakeHubSpot(limits=False, portal_id=PORTAL_B, tokens=[TOKEN_B]) as portal_b,
    ):
        hosts = [portal_a.base_url, portal_b.base_url]
        # nobody connected portal B yet; org A (the attacker) has a token of its own portal only
        with pytest.raises(InvalidInputError, match=f"belongs to hubspot portal {PORTAL_A}, not {PORTAL_B}"):
            connect_private_app(db, box, A, "hubspot", Secret(TOKEN_A), base_url=portal_a.base_url, hosts=hosts,
                                expect_account=str(PORTAL_B))  # fmt: skip
        # its application session cannot register an account id at all
        with pytest.raises(REFUSED):
            register_connection(app, A, "hubspot", str(PORTAL_B), auth_kind="private_app")
        assert route_webhook(db, box, "hubspot", str(PORTAL_B)) is None  # B's deliveries route nowhere
        assert connect_private_app(db, box, A, "hubspot", Secret(TOKEN_A), base_url=portal_a.base_url,
                                   hosts=hosts).account_id == str(PORTAL_A)  # fmt: skip
        # the real owner connects later: its token says portal B, and it gets it
        owner = connect_private_app(
            db, box, B, "hubspot", Secret(TOKEN_B), base_url=portal_b.base_url, hosts=hosts
        )
        assert owner.account_id == str(PORTAL_B)
        route = route_webhook(db, box, "hubspot", str(PORTAL_B))
        assert route is not None and route.org_id == str(B)
        # and A's token cannot take B's portal away, nor B's token A's
        with pytest.raises(InvalidInputError):
            connect_private_app(
                db, box, B, "hubspot", Secret(TOKEN_A), base_url=portal_a.base_url, hosts=hosts
            )
        assert get_connection(db, B, "hubspot").account_id == str(PORTAL_B)


# -- the sealed secrets ---------------------------------------------------------------------------------------------
def test_sealed_secrets_are_not_readable_by_the_application_or_the_receiver(orgs: Conn, app: Conn,
                                                                            receiver_role: Conn) -> None:  # fmt: skip
    for who in (app, receiver_role):
        for sql in ("SELECT * FROM crm.connection_secret", "SELECT * FROM crm.oauth_state"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                who.execute(sql)
        with pytest.raises(REFUSED):
            who.execute("SELECT * FROM crm.connection_secret_get(%s, 'hubspot')", (A,))
    with pytest.raises(REFUSED):  # routing (with the sealed webhook secrets) is the receiver's
        app.execute("SELECT * FROM crm.webhook_route('hubspot', %s)", (str(PORTAL_A),))
    # the receiver gets the org and the sealed webhook secrets of the account it routes, no token
    rows = receiver_role.execute(
        "SELECT org_id, secret_ref, key_id, ciphertext FROM crm.webhook_route('hubspot', %s)",
        (str(PORTAL_A),),
    ).fetchall()
    webhook_ct = orgs.execute(
        "SELECT ciphertext FROM crm.connection_secret WHERE org_id = %s AND kind = 'webhook_secret'", (A,)
    ).fetchall()
    assert [(r[0], bytes(r[3])) for r in rows] == [(A, bytes(webhook_ct[0][0]))]
    # the application still reads its connection (no secret in it)
    assert app.execute("SELECT account_id, status FROM crm.connection").fetchall() == [
        (str(PORTAL_A), "active")
    ]


def test_secrets_never_appear_in_errors_or_reprs(orgs: Conn, db_dsn: str, fake: FakeHubSpot,
                                                 caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    box = SecretBox.from_env()
    store = TokenStore(db_dsn, box, hosts=[fake.base_url])
    token = store.token(A, "hubspot")
    texts = [repr(token), str(token), f"{token}", repr(store), repr(box)]
    logging.getLogger("crmindex.test").info("token %s", token)
    set_status(orgs, A, "hubspot", "broken", "the CRM refused the token refresh (400 BAD_REFRESH_TOKEN)")
    store.invalidate()
    with pytest.raises(ConnectionUnusableError) as exc:
        store.token(A, "hubspot")
    texts += [str(exc.value), repr(exc.value)]
    with pytest.raises(HostNotAllowedError) as exc2:
        HostPolicy().check("hubspot", f"https://{TOKEN_A}@evil.example/x?token={TOKEN_A}")
    texts += [str(exc2.value), caplog.text]
    for text in texts:
        assert TOKEN_A not in text and TOKEN_B not in text
    assert "broken" in str(exc.value) and "BAD_REFRESH_TOKEN" in str(exc.value)
