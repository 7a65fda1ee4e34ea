"""Connecting a CRM for real, against the fakes: OAuth installs (the account id comes from the token), sealed
tokens, HubSpot refreshes made once for many workers at once, a refused refresh that marks the connection broken
and holds its jobs, private-app tokens through the same store, the Attio webhook registered at connect time with
its secret stored sealed, single-use OAuth state, and key rotation."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import requests

from crmindex.app import Workers
from crmindex.crm.clients import Clients
from crmindex.crm.connections import (
    begin_oauth,
    complete_oauth,
    connect_private_app,
    disconnect,
    get_connection,
    oauth_provider,
    route_webhook,
)
from crmindex.crm.http import RetryPolicy
from crmindex.crm.oauth import OAuthApp, OAuthRefused, parse_redirect
from crmindex.crm.tokens import ConnectionUnusableError, TokenStore, rotate_secrets
from crmindex.errors import InvalidInputError
from crmindex.freshness.signatures import attio_signature
from crmindex.index.writes import ContactRow, upsert_contacts
from crmindex.platform.secrets import Secret, SecretBox, SecretError, new_key_spec, parse_key_spec
from crmindex.status import org_status, render
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.enqueue import update_contact
from tests.orgs import ORG
from tests.orgs import ORG_B as OTHER

Conn = psycopg.Connection[tuple[object, ...]]
PORTAL = 7_770_001
REDIRECT = "https://app.example.com/crm/oauth/callback"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.from_env()


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False, portal_id=PORTAL, tokens=["pat-na1-static"]) as fake:
        fake.seed_from(SyntheticCRM(seed=5, contacts=30, companies=3, deals=0))
        yield fake


def hubspot_app(fake: FakeHubSpot) -> OAuthApp:
    cid, secret = fake.oauth.register_app(redirect_uris=[REDIRECT])
    return OAuthApp(cid, Secret(secret))


def hubspot_provider(fake: FakeHubSpot, app: OAuthApp) -> object:
    return oauth_provider("hubspot", app, api_base=fake.base_url, authorize_url=f"{fake.base_url}/oauth/authorize",
                          hosts=[fake.base_url])  # fmt: skip


def install_hubspot(db: Conn, box: SecretBox, fake: FakeHubSpot, org: uuid.UUID = ORG) -> OAuthApp:
    """The whole OAuth install of ``fake``'s portal for ``org``; the app it used."""
    app = hubspot_app(fake)
    provider = hubspot_provider(fake, app)
    auth = begin_oauth(db, box, provider, org, REDIRECT)  # type: ignore[arg-type]
    code, state = parse_redirect(fake.oauth.approve(auth.url))
    complete_oauth(db, box, provider, code=code, state=state)  # type: ignore[arg-type]
    return app


def secret_rows(db: Conn, org: uuid.UUID = ORG) -> dict[str, tuple[str, bytes]]:
    rows = db.execute(
        "SELECT kind || ':' || ref, key_id, ciphertext FROM crm.connection_secret WHERE org_id = %s", (org,)
    ).fetchall()
    return {str(k): (str(kid), bytes(ct)) for k, kid, ct in rows}  # type: ignore[arg-type]


# -- OAuth connect ----------------------------------------------------------------------------------------------
def test_hubspot_oauth_install_takes_the_portal_from_the_token(db: Conn, db_dsn: str, box: SecretBox,
                                                                hubspot: FakeHubSpot) -> None:  # fmt: skip
    app = hubspot_app(hubspot)
    provider = hubspot_provider(hubspot, app)
    auth = begin_oauth(db, box, provider, ORG, REDIRECT)  # type: ignore[arg-type]
    # the authorize URL names the app, the redirect, the scopes the library needs, the state and a PKCE challenge
    for part in (f"client_id={app.client_id}", "redirect_uri=https%3A%2F%2Fapp.example.com",
                 "crm.objects.contacts.write", "code_challenge=", "code_challenge_method=S256",
                 f"state={auth.state.reveal()}"):  # fmt: skip
        assert part in auth.url
    # only a hash of the state is stored
    stored = db.execute("SELECT state_hash, redirect_uri FROM crm.oauth_state").fetchall()
    assert stored == [(hashlib.sha256(auth.state.reveal().encode()).digest(), REDIRECT)]
    code, state = parse_redirect(hubspot.oauth.approve(auth.url))
    connection = complete_oauth(db, box, provider, code=code, state=state)  # type: ignore[arg-type]
    assert connection.account_id == str(PORTAL)  # from the token's introspection, never from the caller
    assert (connection.auth_kind, connection.status) == ("oauth", "active")
    assert "crm.objects.deals.write" in connection.scopes
    assert connection.base_url == hubspot.base_url
    assert db.execute("SELECT count(*) FROM crm.oauth_state").fetchone() == (0,)  # consumed
    assert hubspot.requests_to("/oauth/2026-03/token", "POST") and hubspot.requests_to("/token/introspect")
    # the tokens are stored sealed: the ciphertexts do not contain them, and unseal only for this org and kind
    rows = secret_rows(db)
    assert set(rows) == {"access_token:", "refresh_token:"}
    [access] = [t for t in hubspot.oauth.access]
    [refresh] = list(hubspot.oauth.refresh_tokens)
    for _, ct in rows.values():
        assert access.encode() not in ct and refresh.encode() not in ct
    kid, ct = rows["access_token:"]
    assert box.unseal(kid, ct, org_id=ORG, source="hubspot", kind="access_token").reveal() == access
    for org, kind in ((OTHER, "access_token"), (ORG, "refresh_token"), (ORG, "private_app_token")):
        with pytest.raises(SecretError):
            box.unseal(kid, ct, org_id=org, source="hubspot", kind=kind)
    # the clients use it
    clients = Clients(db_dsn, retry=RetryPolicy.fast())
    try:
        page = clients.client(ORG, "hubspot").list_page("contacts", limit=5)
        assert len(page.results) == 5
    finally:
        clients.close()
    # the state was single use
    with pytest.raises(InvalidInputError, match="already used"):
        complete_oauth(db, box, provider, code=code, state=state)  # type: ignore[arg-type]


def test_hubspot_oauth_falls_back_to_v1_and_checks_an_expected_portal(db: Conn, box: SecretBox,
                                                                       hubspot: FakeHubSpot) -> None:  # fmt: skip
    hubspot.oauth.versioned = False  # the date-versioned paths answer 404
    app = hubspot_app(hubspot)
    provider = hubspot_provider(hubspot, app)
    auth = begin_oauth(db, box, provider, ORG, REDIRECT)  # type: ignore[arg-type]
    code, state = parse_redirect(hubspot.oauth.approve(auth.url))
    with pytest.raises(InvalidInputError, match=f"belongs to hubspot portal {PORTAL}, not 999"):
        complete_oauth(db, box, provider, code=code, state=state, expect_account="999")  # type: ignore[arg-type]
    assert db.execute("SELECT count(*) FROM crm.connection").fetchone() == (0,)
    assert hubspot.requests_to("/oauth/v1/token", "POST") and hubspot.requests_to("/oauth/v1/access-tokens/")
    auth = begin_oauth(db, box, provider, ORG, REDIRECT)  # type: ignore[arg-type]
    code, state = parse_redirect(hubspot.oauth.approve(auth.url))
    connection = complete_oauth(db, box, provider, code=code, state=state, expect_account=str(PORTAL))  # type: ignore[arg-type]
    assert connection.account_id == str(PORTAL)


def test_oauth_state_is_bound_single_use_and_expires(db: Conn, box: SecretBox, hubspot: FakeHubSpot) -> None:
    app = hubspot_app(hubspot)
    provider = hubspot_provider(hubspot, app)
    attio = oauth_provider("attio", OAuthApp("x", Secret("y")), api_base=hubspot.base_url,
                           hosts=[hubspot.base_url])  # fmt: skip
    auth = begin_oauth(db, box, provider, ORG, REDIRECT)  # type: ignore[arg-type]
    code, state = parse_redirect(hubspot.oauth.approve(auth.url))
    with pytest.raises(InvalidInputError, match="unknown or already used"):  # another CRM's state
        complete_oauth(db, box, attio, code=code, state=state)
    with pytest.raises(InvalidInputError, match="unknown or already used"):  # used up by that attempt
        complete_oauth(db, box, provider, code=code, state=state)  # type: ignore[arg-type]
    auth = begin_oauth(db, box, provider, ORG, REDIRECT)  # type: ignore[arg-type]
    code, state = parse_redirect(hubspot.oauth.approve(auth.url))
    db.execute("UPDATE crm.oauth_state SET expires_at = now() - interval '1 second'")
    with pytest.raises(InvalidInputError, match="expired"):
        complete_oauth(db, box, provider, code=code, state=state)  # type: ignore[arg-type]
    # a forged code: the CRM refuses it, nothing is stored
    auth = begin_oauth(db, box, provider, ORG, REDIRECT)  # type: ignore[arg-type]
    with pytest.raises(OAuthRefused, match="BAD_AUTH_CODE"):
        complete_oauth(db, box, provider, code=Secret("forged"), state=auth.state)  # type: ignore[arg-type]
    # the user declined
    auth = begin_oauth(db, box, provider, ORG, REDIRECT)  # type: ignore[arg-type]
    with pytest.raises(OAuthRefused, match="access_denied"):
        parse_redirect(hubspot.oauth.approve(auth.url, accept=False))
    assert db.execute("SELECT count(*) FROM crm.connection").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM crm.connection_secret").fetchone() == (0,)


def test_attio_oauth_install_registers_the_webhook_and_stores_its_secret_sealed(db: Conn, db_dsn: str,
                                                                                box: SecretBox) -> None:  # fmt: skip
    with FakeAttio(limits=False, emit="collect") as fake:
        fake.seed_from(SyntheticCRM(seed=6, contacts=20, source="attio"))
        fake.oauth.allow_http_targets = True  # Attio wants https targets; the local receiver is http
        cid, secret = fake.oauth.register_app(redirect_uris=[REDIRECT])
        provider = oauth_provider("attio", OAuthApp(cid, Secret(secret)), api_base=fake.base_url,
                                  oauth_base=fake.base_url, hosts=[fake.base_url])  # fmt: skip
        auth = begin_oauth(db, box, provider, ORG, REDIRECT)
        assert auth.url.startswith(f"{fake.base_url}/authorize?") and "response_type=code" in auth.url
        code, state = parse_redirect(fake.oauth.approve(auth.url))
        target = "http://127.0.0.1:9/webhooks/attio"
        connection = complete_oauth(db, box, provider, code=code, state=state, webhook_url=target)
        assert connection.account_id == fake.workspace_id  # from /v2/self
        assert fake.requests_to("/v2/self", "GET")
        [hook] = fake.oauth.active_webhooks()
        assert hook.target_url == target
        assert {s["event_type"] for s in hook.subscriptions} >= {"record.updated", "record.deleted"}
        rows = secret_rows(db)
        assert set(rows) == {"access_token:", f"webhook_secret:{hook.webhook_id}"}
        assert hook.secret.encode() not in rows[f"webhook_secret:{hook.webhook_id}"][1]
        token = next(iter(fake.oauth.access))
        assert [w.webhook_id for w in provider.list_webhooks(Secret(token))] == [hook.webhook_id]  # type: ignore[attr-defined]
        # the receiver's route: the org and the unsealed secret
        route = route_webhook(db, box, "attio", fake.workspace_id)
        assert route is not None and route.org_id == str(ORG)
        assert [(ref, s.reveal()) for ref, s in route.secrets] == [(hook.webhook_id, hook.secret)]
        # deliveries go to the registered webhook, signed with its secret
        fake.update_property("people", fake.record_ids("people")[0], "job_title", "CTO")
        [delivery] = fake.take_deliveries()
        assert delivery.url == target and delivery.json()["webhook_id"] == hook.webhook_id
        assert delivery.headers["Attio-Signature"] == attio_signature(hook.secret, delivery.body)
        # connecting again replaces the webhook (and its secret); disconnecting deletes it
        auth = begin_oauth(db, box, provider, ORG, REDIRECT)
        code, state = parse_redirect(fake.oauth.approve(auth.url))
        complete_oauth(db, box, provider, code=code, state=state, webhook_url=target)
        [hook2] = fake.oauth.active_webhooks()
        assert hook2.webhook_id != hook.webhook_id
        assert set(secret_rows(db)) == {"access_token:", f"webhook_secret:{hook2.webhook_id}"}
        assert disconnect(db, box, ORG, "attio", provider=provider)
        assert fake.oauth.active_webhooks() == []
        assert db.execute("SELECT count(*) FROM crm.connection_secret").fetchone() == (0,)
        assert route_webhook(db, box, "attio", fake.workspace_id) is None


# -- private-app tokens -------------------------------------------------------------------------------------------
def test_private_app_tokens_connect_through_the_same_store(db: Conn, db_dsn: str, box: SecretBox,
                                                           hubspot: FakeHubSpot) -> None:  # fmt: skip
    with pytest.raises(InvalidInputError, match=f"portal {PORTAL}, not 1234"):
        connect_private_app(db, box, ORG, "hubspot", Secret("pat-na1-static"), base_url=hubspot.base_url,
                            hosts=[hubspot.base_url], expect_account="1234")  # fmt: skip
    assert db.execute("SELECT count(*) FROM crm.connection").fetchone() == (0,)
    hubspot.oauth.versioned = False  # account details: v3 fallback
    connection = connect_private_app(db, box, ORG, "hubspot", Secret("pat-na1-static"), base_url=hubspot.base_url,
                                     hosts=[hubspot.base_url], webhook_secret=Secret("pa-client-secret"))  # fmt: skip
    assert (connection.account_id, connection.auth_kind, connection.status) == (
        str(PORTAL),
        "private_app",
        "active",
    )
    assert hubspot.requests_to("/account-info/v3/details", "GET")
    assert set(secret_rows(db)) == {"private_app_token:", "webhook_secret:"}
    route = route_webhook(db, box, "hubspot", str(PORTAL))
    assert route is not None and [s.reveal() for _, s in route.secrets] == ["pa-client-secret"]
    store = TokenStore(db_dsn, box, hosts=[hubspot.base_url])
    assert store.token(ORG, "hubspot").reveal() == "pat-na1-static"
    # a wrong token is refused by the CRM: nothing stored
    with pytest.raises(Exception, match="401"):
        connect_private_app(db, box, OTHER, "hubspot", Secret("pat-na1-wrong"), base_url=hubspot.base_url,
                            hosts=[hubspot.base_url])  # fmt: skip
    assert db.execute("SELECT count(*) FROM crm.connection WHERE org_id = %s", (OTHER,)).fetchone() == (0,)
    # Attio API tokens: the workspace from /v2/self
    with FakeAttio(limits=False, tokens=["attio-api-token"]) as attio:
        conn2 = connect_private_app(db, box, ORG, "attio", Secret("attio-api-token"), base_url=attio.base_url,
                                    hosts=[attio.base_url])  # fmt: skip
        assert conn2.account_id == attio.workspace_id


# -- refresh ---------------------------------------------------------------------------------------------------------
def _short_lived_install(db: Conn, box: SecretBox, fake: FakeHubSpot, ttl: float) -> OAuthApp:
    fake.oauth.access_ttl = ttl
    return install_hubspot(db, box, fake)


def _token_in_process(args: tuple[str, str, float]) -> str:
    dsn, base_url, margin = args
    store = TokenStore(dsn, hosts=[base_url], refresh_margin_s=margin)
    return hashlib.sha256(store.token(ORG, "hubspot").reveal().encode()).hexdigest()


def test_many_workers_refresh_an_expiring_token_once(db: Conn, db_dsn: str, box: SecretBox,
                                                     hubspot: FakeHubSpot, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    app = _short_lived_install(db, box, hubspot, ttl=600)
    first = next(iter(hubspot.oauth.access))
    [old_refresh] = list(hubspot.oauth.refresh_tokens)
    hubspot.oauth.refresh_delay = 0.3  # a slow token endpoint: the others must wait, not refresh too
    # 8 workers (threads, each with its own store: nothing shared but the database), all seeing the token
    # expire within their margin at once
    stores = [TokenStore(db_dsn, box, hosts=[hubspot.base_url], apps={"hubspot": app}, refresh_margin_s=900)
              for _ in range(8)]  # fmt: skip
    barrier = threading.Barrier(len(stores))
    got: list[str] = []

    def work(store: TokenStore) -> None:
        barrier.wait()
        got.append(store.token(ORG, "hubspot").reveal())

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 8 and len(set(got)) == 1 and got[0] != first
    assert hubspot.oauth.refresh_calls == 1
    assert sum(s.refreshes for s in stores) == 1
    # the refresh token was rotated: the stored one is the new one, the old one is revoked at the CRM
    [new_refresh] = list(hubspot.oauth.refresh_tokens)
    assert new_refresh != old_refresh and old_refresh in hubspot.oauth.revoked_refresh
    kid, ct = secret_rows(db)["refresh_token:"]
    assert box.unseal(kid, ct, org_id=ORG, source="hubspot", kind="refresh_token").reveal() == new_refresh
    # the refreshed token works
    assert hubspot.oauth._token_info(got[0]) is not None

    # separate processes (the client secret from their environment): again one refresh
    hubspot.oauth.expire_access_tokens()
    expired = requests.get(f"{hubspot.base_url}/crm/v3/objects/contacts", timeout=10,
                           headers={"Authorization": f"Bearer {got[0]}"})  # fmt: skip
    assert expired.status_code == 401 and expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    db.execute("UPDATE crm.connection_secret SET expires_at = now() - interval '1 second' "
               "WHERE kind = 'access_token'")  # fmt: skip
    monkeypatch.setenv("CRMINDEX_HUBSPOT_CLIENT_ID", app.client_id)
    monkeypatch.setenv("CRMINDEX_HUBSPOT_CLIENT_SECRET", app.client_secret.reveal())
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        digests = pool.map(_token_in_process, [(db_dsn, hubspot.base_url, 60.0)] * 4)
    assert len(set(digests)) == 1
    assert hubspot.oauth.refresh_calls == 2


def test_a_refused_refresh_breaks_the_connection_and_holds_its_jobs(db: Conn, db_dsn: str, box: SecretBox,
                                                                    hubspot: FakeHubSpot,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    app = _short_lived_install(db, box, hubspot, ttl=600)
    monkeypatch.setenv("CRMINDEX_HUBSPOT_CLIENT_ID", app.client_id)
    monkeypatch.setenv("CRMINDEX_HUBSPOT_CLIENT_SECRET", app.client_secret.reveal())
    cid = str(next(iter(hubspot.store("contacts").ids_from(0))))
    upsert_contacts(db, ORG, "hubspot", [ContactRow(crm_record_id=cid, first_name="Ada", job_title="CTO")])
    update_contact(db, ORG, cid, {"job_title": "CEO"})
    # the portal uninstalled the app: the refresh token is revoked; the access token is about to expire
    hubspot.oauth.revoke_refresh_token()
    db.execute("UPDATE crm.connection_secret SET expires_at = now() + interval '10 seconds' "
               "WHERE kind = 'access_token'")  # fmt: skip
    hubspot.clear_log()
    clients = Clients(db_dsn, retry=RetryPolicy.fast())
    try:
        for _ in range(2):
            Workers(db_dsn, clients).run_once()
            db.execute("UPDATE crm.writeback_queue SET next_retry_at = now()")
            clients.tokens.invalidate()
    finally:
        clients.close()
    connection = get_connection(db, ORG, "hubspot")
    assert connection.status == "broken"
    assert connection.status_reason is not None and "refused the token refresh" in connection.status_reason
    assert "BAD_REFRESH_TOKEN" in connection.status_reason and "400" in connection.status_reason
    # one refresh was tried, then none: the connection is broken until an operator reconnects
    assert hubspot.oauth.refresh_calls == 1
    # nothing was written to the CRM; the job waits (released, no attempt spent) with a readable reason
    assert not [r for r in hubspot.request_log if "/crm/v3/objects" in r.path]
    status, attempts, error = db.execute(
        "SELECT status, attempts, last_error FROM crm.writeback_queue WHERE org_id = %s", (ORG,)
    ).fetchone()  # type: ignore[misc]
    assert status in ("pending", "failed") and attempts == 0
    assert "broken" in str(error) and "fake-rt" not in str(error)
    with pytest.raises(ConnectionUnusableError, match="broken"):
        TokenStore(db_dsn, box, hosts=[hubspot.base_url]).token(ORG, "hubspot")
    # the operator sees why in `crmindex status`
    shown = render(org_status(db, ORG))
    assert "hubspot account" in shown and "BROKEN since" in shown and "refused the token refresh" in shown
    # connecting again makes it active and the job goes out
    install_hubspot(db, box, hubspot)
    assert get_connection(db, ORG, "hubspot").status == "active"
    clients = Clients(db_dsn, retry=RetryPolicy.fast())
    try:
        Workers(db_dsn, clients).run_once()
    finally:
        clients.close()
    assert hubspot.properties("contacts", cid)["jobtitle"] == "CEO"


# -- keys ------------------------------------------------------------------------------------------------------------
def test_key_rotation_reseals_every_secret(db: Conn, db_dsn: str, hubspot: FakeHubSpot) -> None:
    old = parse_key_spec(new_key_spec("old"))
    old_box = SecretBox(old)
    connect_private_app(db, old_box, ORG, "hubspot", Secret("pat-na1-static"), base_url=hubspot.base_url,
                        hosts=[hubspot.base_url], webhook_secret=Secret("whsec"))  # fmt: skip
    assert {kid for kid, _ in secret_rows(db).values()} == {"old"}
    new_spec = new_key_spec("new")
    both = SecretBox(parse_key_spec(f"{new_spec},old:{_spec_key(old)}"))
    assert rotate_secrets(db, both) == 2
    assert {kid for kid, _ in secret_rows(db).values()} == {"new"}
    new_only = SecretBox(parse_key_spec(new_spec))
    assert (
        TokenStore(db_dsn, new_only, hosts=[hubspot.base_url]).token(ORG, "hubspot").reveal()
        == "pat-na1-static"
    )
    # the old key alone can no longer read them: a clear error, no secret in it
    with pytest.raises(ConnectionUnusableError, match="not in the key ring"):
        TokenStore(db_dsn, old_box, hosts=[hubspot.base_url]).token(ORG, "hubspot")


def _spec_key(keys: object) -> str:
    import base64

    raw = keys.key("old")  # type: ignore[attr-defined]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_the_key_ring_is_required_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMINDEX_SECRET_KEYS")
    with pytest.raises(SecretError, match="CRMINDEX_SECRET_KEYS is not set"):
        SecretBox.from_env()
    for bad, why in (("k1", "not kid:base64url"), ("k1:!!!", "not base64url"), ("k1:AAAA", "32 bytes"),
                     ("k 1:" + "A" * 43, "key id"), (f"{new_key_spec('a')},{new_key_spec('a')}", "twice")):  # fmt: skip
        with pytest.raises(SecretError, match=why):
            parse_key_spec(bad)
    box = SecretBox(parse_key_spec(new_key_spec()))
    sealed = box.seal(Secret("tok"), org_id=ORG, source="hubspot", kind="access_token")
    tampered = sealed.ciphertext[:-1] + bytes([sealed.ciphertext[-1] ^ 1])
    with pytest.raises(SecretError, match="altered"):
        box.unseal(sealed.key_id, tampered, org_id=ORG, source="hubspot", kind="access_token")
    assert (
        "tok" not in repr(sealed) and repr(Secret("tok")) == "Secret('***')" and f"{Secret('tok')}" != "tok"
    )
