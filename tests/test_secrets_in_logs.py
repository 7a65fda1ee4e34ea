"""Secrets never reach logs, output, errors, reprs or the database.

A HubSpot and an Attio connection are configured with distinctive tokens and webhook secrets (read once from
environment variables by ``crmindex connect``, stored sealed), and a HubSpot OAuth install issues marked access and
refresh tokens that get refreshed. Then, with logging at DEBUG captured: the CLI connects, syncs,
searches, materializes and reports status (in process and as subprocesses); webhooks are received with good and
forged signatures; write-backs drain through injected CRM errors (401, 429, 5xx) and a wrong token; the
processor and hydration run. Every captured text is scanned for the secrets and their encodings."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import time
import traceback
import uuid
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from crmindex.app import Workers
from crmindex.cli import main
from crmindex.crm.clients import Clients
from crmindex.crm.connections import (
    begin_oauth,
    complete_oauth,
    get_connection,
    oauth_provider,
    route_webhook,
    stored_secrets,
)
from crmindex.crm.http import RetryPolicy
from crmindex.crm.oauth import OAuthApp, parse_redirect
from crmindex.crm.tokens import TokenStore
from crmindex.freshness.intake import WebhookReceiver
from crmindex.freshness.signatures import attio_signature, hubspot_v1, hubspot_v3
from crmindex.platform.secrets import Secret, SecretBox
from crmindex.records.materialize import materialize_contact
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.enqueue import update_contact
from tests.orgs import ORG_A, ORG_B

Conn = psycopg.Connection[tuple[object, ...]]
ORG = str(ORG_A)  # as the CLI takes it
MARK = "ZQ7SECRET"  # every secret carries it: a partial leak (a truncated token) is caught too
SECRETS = {
    "FZS_HS_TOKEN": f"pat-na1-{MARK}tok-hs-5c1d2e",
    "FZS_ATTIO_TOKEN": f"attio-{MARK}tok-at-9e2f7a",
    "FZS_HS_WHSEC": f"hs-{MARK}wh-3a8b61",
    "FZS_ATTIO_WHSEC": f"at-{MARK}wh-7d4c05",
}
WRONG_TOKEN = f"pat-na1-{MARK}wrong-000000"
URL = "https://hooks.example.com/webhooks/hubspot"


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        MARK,
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        base64.b64encode(b"Bearer " + raw).decode().rstrip("="),
        raw.hex(),
        quote(secret, safe=""),
        secret[len(secret) // 2 :],
    ]


FORMS = sorted({f for s in [*SECRETS.values(), WRONG_TOKEN] for f in _forms(s)})


class Evidence:
    """Every text the run produced."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value: object) -> None:
        self.texts.append((where, value if isinstance(value, str) else repr(value)))

    def error(self, where: str, exc: BaseException) -> None:
        self.add(where + " str", str(exc))
        self.add(where + " repr", repr(exc))
        self.add(where + " traceback", "".join(traceback.format_exception(exc)))
        for arg in exc.args:
            self.add(where + " arg", arg)

    def call(self, where: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self.error(where, exc)
            return None
        self.add(where + " result", result)
        return result

    def leaks(self) -> list[str]:
        return [f"{where}: {form!r}" for where, text in self.texts for form in FORMS if form in text]


def _cli(ev: Evidence, capsys: pytest.CaptureFixture[str], *argv: str) -> int:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    ev.add(f"cli {argv[0]} stdout", out.out)
    ev.add(f"cli {argv[0]} stderr", out.err)
    return code


def _fast_forward(db: Conn) -> None:
    for table in ("crm.writeback_queue", "crm.job", "crm.webhook_inbox"):
        db.execute(f"UPDATE {table} SET next_retry_at = now() WHERE status = 'failed'")


OAUTH_ORG = str(ORG_B)


def _oauth_install_and_refresh(
    ev: Evidence, db: Conn, db_dsn: str, box: SecretBox, caplog: pytest.LogCaptureFixture
) -> None:
    """A HubSpot OAuth install whose tokens carry the mark, a refresh, then a refused refresh (broken)."""
    with FakeHubSpot(limits=False, portal_id=90_551) as fake:
        fake.oauth._new_token = lambda prefix: f"{prefix}-{MARK}-{uuid.uuid4().hex}"  # type: ignore[method-assign]
        cid, secret = fake.oauth.register_app(
            "cid-not-secret", f"{MARK}-client-secret", ["https://x.example/cb"]
        )
        app = OAuthApp(cid, Secret(secret))
        provider = oauth_provider("hubspot", app, api_base=fake.base_url,
                                  authorize_url=f"{fake.base_url}/oauth/authorize")  # fmt: skip
        auth = begin_oauth(db, box, provider, OAUTH_ORG, "https://x.example/cb")
        ev.add("authorization repr", auth)
        code, state = parse_redirect(fake.oauth.approve(auth.url))
        ev.add("code repr", (code, state))
        ev.add("oauth connection", ev.call("complete oauth", complete_oauth, db, box, provider, code=code,
                                           state=state))  # fmt: skip
        ev.call("replayed state", complete_oauth, db, box, provider, code=code, state=state)
        store = TokenStore(db_dsn, box, apps={"hubspot": app}, refresh_margin_s=10_000)
        ev.add("store repr", store)
        ev.call("refresh", store.token, OAUTH_ORG, "hubspot")
        fake.oauth.revoke_refresh_token()
        store.invalidate()
        ev.call("refused refresh", store.token, OAUTH_ORG, "hubspot")
        ev.add("broken connection", get_connection(db, OAUTH_ORG, "hubspot"))
        assert fake.oauth.refresh_calls == 2
        for t in [*fake.oauth.access, *fake.oauth.refresh_tokens, *fake.oauth.revoked_refresh]:
            assert MARK in t  # so the scan below would see any of them


def test_no_secret_in_logs_output_errors_reprs_or_the_database(
    db: Conn,
    db_dsn: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    ev = Evidence()
    with (
        FakeHubSpot(tokens=[SECRETS["FZS_HS_TOKEN"]], limits=False) as hs,
        FakeAttio(tokens=[SECRETS["FZS_ATTIO_TOKEN"]], limits=False) as at,
    ):
        hs.seed_from(SyntheticCRM(seed=31, contacts=60))
        at.seed_from(SyntheticCRM(seed=32, contacts=40, source="attio"))
        common = ["--org", ORG, "--dsn", db_dsn]
        assert _cli(ev, capsys, "connect", "hubspot", "--portal-id", str(hs.portal_id), "--base-url", hs.base_url,
                    "--token-env", "FZS_HS_TOKEN", "--webhook-secret-env", "FZS_HS_WHSEC", *common) == 0  # fmt: skip
        assert _cli(ev, capsys, "connect", "attio", "--workspace-id", at.workspace_id, "--base-url", at.base_url,
                    "--token-env", "FZS_ATTIO_TOKEN", "--webhook-secret-env", "FZS_ATTIO_WHSEC", *common) == 0  # fmt: skip
        assert _cli(ev, capsys, "sync", "--quiet", *common) == 0
        assert _cli(ev, capsys, "search", "vps", *common) == 0
        assert _cli(ev, capsys, "status", "--dsn", db_dsn) == 0
        assert _cli(ev, capsys, "status", "--json", "--dsn", db_dsn) == 0
        ev.add("connection repr", get_connection(db, ORG, "hubspot"))
        box = SecretBox.from_env()
        ev.add("secrets repr", stored_secrets(db, box, ORG, "hubspot"))
        ev.add("route repr", route_webhook(db, box, "hubspot", str(hs.portal_id)))
        # a token the CRM refuses, at connect time: an error that names no token
        monkeypatch.setenv("FZS_WRONG", WRONG_TOKEN)
        assert _cli(ev, capsys, "connect", "hubspot", "--base-url", hs.base_url, "--token-env", "FZS_WRONG",
                    "--org", "00000000-0000-4000-8000-0000000005ed", "--dsn", db_dsn) == 1  # fmt: skip
        _oauth_install_and_refresh(ev, db, db_dsn, box, caplog)

        # webhooks: accepted, and rejected for every signature failure
        receiver = WebhookReceiver(db_dsn)
        try:
            ev.add("receiver repr", receiver)
            now = int(time.time() * 1000)
            body = (
                b'[{"eventId":1,"subscriptionId":1,"portalId":%d,"occurredAt":%d,'
                b'"subscriptionType":"contact.creation","objectId":999001}]' % (hs.portal_id, now)
            )
            ts = str(now)
            for secret, stamp in (
                (SECRETS["FZS_HS_WHSEC"], ts),
                ("wrong", ts),
                (SECRETS["FZS_HS_WHSEC"], "1"),
            ):
                headers = {"X-HubSpot-Signature-v3": hubspot_v3(secret, "POST", URL, body, stamp),
                           "X-HubSpot-Request-Timestamp": stamp}  # fmt: skip
                ev.add("hubspot webhook", receiver.handle_hubspot("POST", URL, headers, body))
            v1 = {"X-HubSpot-Signature": hubspot_v1("wrong", body)}
            ev.add("hubspot v1 webhook", receiver.handle_hubspot("POST", URL, v1, body))
            attio_body = (
                b'{"webhook_id":"w","events":[{"event_type":"record.updated","id":{"workspace_id":"%s",'
                b'"object_id":"people","record_id":"r-1"}}]}' % at.workspace_id.encode()
            )
            for secret in (SECRETS["FZS_ATTIO_WHSEC"], "wrong"):
                sig = {"Attio-Signature": attio_signature(secret, attio_body)}
                ev.add("attio webhook", receiver.handle_attio(sig, attio_body))
        finally:
            receiver.close()

        # write-backs through CRM errors: 401, 429, 5xx, then a wrong token
        emails = {
            str(src): str(email)
            for src, email in db.execute(
                "SELECT DISTINCT ON (crm_source) crm_source, email FROM crm.contact_index "
                "WHERE org_id = %s AND email IS NOT NULL ORDER BY crm_source, id",
                (ORG,),
            )
        }
        assert set(emails) == {"hubspot", "attio"}
        for source, email in emails.items():
            ev.call(f"update {source}", update_contact, db, ORG, email, {"job_title": "Chief Fuzz Officer"})
        hs.set_faults(fail_next=[401, 429, 500, 503])
        at.set_faults(fail_next=[401, 429, 502])
        clients = Clients(db_dsn, retry=RetryPolicy.fast())
        try:
            ev.add("clients repr", clients)
            ev.add("client repr", clients.client(ORG, "hubspot"))
            for _ in range(4):
                ev.call("drain", Workers(db_dsn, clients).run_once)
                _fast_forward(db)
                db.execute("UPDATE crm.connection SET auth_error = NULL, auth_failed_at = NULL")
            for source, email in emails.items():
                result = ev.call(
                    f"materialize {source}", materialize_contact, db, clients.fetcher(ORG, source), ORG, email
                )
                assert result is not None
        finally:
            clients.close()
        hs.revoke_token(SECRETS["FZS_HS_TOKEN"])  # the CRM answers 401 to every call
        wrong = Clients(db_dsn, retry=RetryPolicy.fast())
        try:
            ev.call("materialize wrong token", materialize_contact, db, wrong.fetcher(ORG, "hubspot"), ORG,
                    emails["hubspot"])  # fmt: skip
            ev.call("update wrong token", update_contact, db, ORG, emails["hubspot"], {"job_title": "Again"})
            ev.call("drain wrong token", Workers(db_dsn, wrong).run_once)
        finally:
            wrong.close()
        assert _cli(ev, capsys, "materialize", emails["hubspot"], *common) in (
            0,
            1,
        )  # 1 when it calls the CRM
        hs.add_token(SECRETS["FZS_HS_TOKEN"])
        assert _cli(ev, capsys, "materialize", emails["attio"], *common) == 0
        assert _cli(ev, capsys, "drain", "--once", "--dsn", db_dsn) == 0
        assert _cli(ev, capsys, "status", "--org", ORG, "--dsn", db_dsn) == 0

        # the console script, as an operator runs it, with the secrets in its environment
        env = {**os.environ, **SECRETS, "DATABASE_URL": db_dsn}
        for args in (
            ["status"],
            ["search", "--org", ORG, "stan"],
            ["drain", "--once"],
            ["sync", "--org", "x"],
        ):
            proc = subprocess.run(
                [sys.executable, "-m", "crmindex.cli", *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            ev.add(f"subprocess {args[0]} stdout", proc.stdout)
            ev.add(f"subprocess {args[0]} stderr", proc.stderr)

    # what the faults did, so the scan below covers real error paths
    errors = db.execute(
        "SELECT count(*) FROM crm.writeback_queue WHERE last_error IS NOT NULL OR attempts > 0"
    ).fetchone()
    assert errors is not None and int(str(errors[0])) >= 1
    statuses = [r.getMessage() for r in caplog.records]
    assert statuses, "nothing was logged at DEBUG"
    for record in caplog.records:
        ev.add(f"log {record.name}", record.getMessage())
        if record.exc_info:
            ev.add(f"log {record.name} exc", "".join(traceback.format_exception(*record.exc_info)))
    ev.add("caplog text", caplog.text)
    # nothing secret is stored either
    tables = [str(r[0]) for r in db.execute("SELECT relname FROM pg_class WHERE relnamespace = 'crm'::regnamespace "
                                           "AND relkind IN ('r', 'p')")]  # fmt: skip
    for table in tables:
        for (row,) in db.execute(f"SELECT t::text FROM crm.{table} AS t"):
            ev.add(f"table {table}", str(row))
    assert len(ev.texts) > 50
    assert ev.leaks() == []
    # the scan itself finds a leak in any of the encodings it looks for
    for form in _forms(SECRETS["FZS_HS_TOKEN"])[::2]:
        control = Evidence()
        control.add("control", f"Authorization: {form}")
        assert control.leaks()
