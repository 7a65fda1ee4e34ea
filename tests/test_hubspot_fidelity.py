"""Issue 15, HubSpot half (items 1-7): the fake answers as HubSpot does, and the library copes with what it sends.

Each test names (in its docstring, "before:") the assertion that failed against the fake and library before issue
15. The sources of each behaviour are cited beside the fake's code (crmindex/testing/hubspot/).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests
from psycopg.types.json import Jsonb

from crmindex.crm.clients import Clients
from crmindex.crm.errors import RateLimited
from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.adapters import HubSpotFetcher
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.intake import WebhookReceiver
from crmindex.freshness.metadata import METADATA_KIND, metadata_handler, refresh_metadata
from crmindex.freshness.sync import HubSpotLister, run_sync
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.index.writes import ensure_org, upsert_rows
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.queue import Queue, Worker
from crmindex.testing import FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.drainer import Drainer
from crmindex.writeback.enqueue import update_contact
from tests.orgs import ORG, ORG_B

Conn = psycopg.Connection[tuple[object, ...]]
TOKEN = "test-token"
APP_SECRET = "public-app-client-secret"
SEED = 23
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False, tokens=[TOKEN]) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=300))
        yield f


def connect(db: Conn, dsn: str, fake: FakeHubSpot, org: uuid.UUID = ORG, account: str | None = None) -> None:
    """The org's HubSpot connection (token sealed) with room in its limiter for tests."""
    ensure_org(db, org)
    connect_with_token(db, None, org, "hubspot", TOKEN, account_id=account or str(fake.portal_id),
                       base_url=fake.base_url)  # fmt: skip
    lim = PgRateLimiter(dsn, org, "hubspot")
    try:
        lim.configure("general", 1000, 1.0)
        lim.configure("search", 1000, 1.0)
    finally:
        lim.close()


@pytest.fixture
def clients(db_dsn: str) -> Iterator[Clients]:
    c = Clients(db_dsn, retry=RetryPolicy.fast(max_attempts=2))
    yield c
    c.close()


def one(db: Conn, sql: str, *params: Any) -> Any:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def post(fake: FakeHubSpot, path: str, body: Any) -> requests.Response:
    return requests.post(fake.base_url + path, headers=AUTH, json=body, timeout=5)


def contact_ids(fake: FakeHubSpot, n: int) -> list[str]:
    """The first ``n`` contacts that have an email."""
    ids: list[str] = []
    params = {"limit": "100"}
    while len(ids) < n:
        body = requests.get(
            fake.base_url + "/crm/v3/objects/contacts", headers=AUTH, params=params, timeout=5
        ).json()
        ids += [o["id"] for o in body["results"] if o["properties"].get("email")]
        if "paging" not in body:
            break
        params["after"] = body["paging"]["next"]["after"]
    assert len(ids) >= n
    return ids[:n]


# ============================================================================ 1. whole-batch failures
def test_the_fake_refuses_a_whole_batch_for_one_bad_input(fake: FakeHubSpot) -> None:
    """before: the fake answered 207 and wrote the good inputs (``r.status_code == 400`` failed)."""
    a, b, c = contact_ids(fake, 3)
    before = fake.properties("contacts", a)["jobtitle"]
    r = post(fake, "/crm/v3/objects/contacts/batch/update", {"inputs": [
        {"id": a, "properties": {"jobtitle": "Lands?"}},
        {"id": b, "properties": {"email": "not-an-email"}},
        {"id": c, "properties": {"lifecyclestage": "bogus"}},
    ]})  # fmt: skip
    assert r.status_code == 400
    body = r.json()
    assert body["category"] == "VALIDATION_ERROR" and body["correlationId"]
    # only the first offender, in the documented form: a JSON list of {isValid, message, error, name}
    prefix = "Property values were not valid: "
    assert body["message"].startswith(prefix)
    (detail,) = json.loads(body["message"][len(prefix) :])
    assert (detail["isValid"], detail["error"], detail["name"]) == (False, "INVALID_EMAIL", "email")
    assert fake.properties("contacts", a)["jobtitle"] == before  # nothing written
    # a unique value already taken: 409 CONFLICT for the whole call, naming the existing record
    taken = fake.properties("contacts", a)["email"]
    r = post(fake, "/crm/v3/objects/contacts/batch/create", {"inputs": [
        {"properties": {"email": "fresh@ok.example"}}, {"properties": {"email": taken}},
    ]})  # fmt: skip
    assert r.status_code == 409 and r.json()["category"] == "CONFLICT"
    assert r.json()["message"] == f"Contact already exists. Existing ID: {a}"
    # two inputs with one email
    r = post(fake, "/crm/v3/objects/contacts/batch/create", {"inputs": [
        {"properties": {"email": "twice@ok.example"}}, {"properties": {"email": "TWICE@ok.example"}},
    ]})  # fmt: skip
    assert r.status_code == 409
    n = fake.count("contacts")
    assert post(fake, "/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": "fresh@ok.example"}],
                                                            "idProperty": "email"}).status_code == 207  # fmt: skip
    assert fake.count("contacts") == n


def test_a_poison_write_back_is_dead_lettered_alone_while_its_99_batch_neighbours_land(
    db: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """100 jobs in one batch, one with a malformed email: 99 land, the poison one is dead-lettered naming its
    field, within a few calls. before: the fake's 207 gave the dead letter ``hubspot VALIDATION_ERROR: the CRM
    rejected the input`` without the status, code or field (the ``last_error`` assertion failed)."""
    connect(db, db_dsn, fake)
    ids = contact_ids(fake, 100)
    jobs = []
    for i, rid in enumerate(ids):
        payload = {"email": "poison@@example"} if i == 37 else {"jobtitle": f"Neighbour {i}"}
        jobs.append(one(db, "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', %s, 'update', %s, 'enrichment')",
                        ORG, rid, Jsonb(payload)))  # fmt: skip
    fake.clear_log()
    d = Drainer(db_dsn, clients.writer, poll_s=0.2)
    assert d.run_once() == 100
    calls = fake.requests_to("/batch/update")
    assert calls[0].status == 400  # refused as a whole
    assert len(calls) <= 4, [c.status for c in calls]  # the poison input alone, the 99 together
    states = dict(db.execute("SELECT id, status FROM crm.writeback_queue").fetchall())
    assert sum(1 for s in states.values() if s == "completed") == 99
    poison = jobs[37]
    assert states[poison] == "dead_letter"
    err = one(db, "SELECT last_error FROM crm.writeback_queue WHERE id = %s", poison)
    assert err.startswith(
        "ValidationError: hubspot 400 VALIDATION_ERROR/INVALID_EMAIL: the CRM rejected the input (field email) "
        "(POST /crm/v3/objects/contacts/batch/update) [correlation id "
    ), err
    assert "poison" not in err and "not valid" not in err  # never the CRM's text
    for i, rid in enumerate(ids):
        if i != 37:
            assert fake.properties("contacts", rid)["jobtitle"] == f"Neighbour {i}"


def test_a_batch_refused_for_a_taken_email_dead_letters_that_update_with_its_field(
    db: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """409 CONFLICT for the whole call (another contact has the email): the others land. before: the fake answered
    207 per input (``calls[0].status == 409`` failed)."""
    connect(db, db_dsn, fake)
    a, b, c, d = contact_ids(fake, 4)
    taken = fake.properties("contacts", a)["email"]
    for rid, payload in ((b, {"jobtitle": "B"}), (c, {"email": taken}), (d, {"jobtitle": "D"})):
        db.execute("SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', %s, 'update', %s, 'enrichment')",
                   (ORG, rid, Jsonb(payload)))  # fmt: skip
    fake.clear_log()
    Drainer(db_dsn, clients.writer, poll_s=0.2).run_once()
    calls = fake.requests_to("/batch/update")
    assert calls[0].status == 409
    rows = dict(
        db.execute("SELECT crm_record_id, last_error FROM crm.writeback_queue WHERE status = 'dead_letter'")
    )
    assert list(rows) == [c]
    assert "409 CONFLICT" in rows[c] and "(field email)" in rows[c] and "Existing" not in rows[c]
    assert (
        fake.properties("contacts", b)["jobtitle"] == "B"
        and fake.properties("contacts", d)["jobtitle"] == "D"
    )


# ============================================================================ 2. primary company of a deal
def _deal_with_two_companies(fake: FakeHubSpot) -> tuple[str, str, str]:
    first = fake.create("companies", {"name": "Older Co", "domain": "older.example"})
    primary = fake.create("companies", {"name": "Primary Co", "domain": "primary.example"})
    deal = fake.create(
        "deals", {"dealname": "Two companies", "dealstage": "contractsent", "pipeline": "default"}
    )
    fake.associate("deals", deal, "companies", first)  # made first, not primary
    fake.associate("deals", deal, "companies", primary, primary=True)
    return deal, first, primary


def test_inline_associations_list_the_primary_type_beside_the_unlabeled_one_in_association_order(
    fake: FakeHubSpot,
) -> None:
    """before: results were sorted by id and all typed ``deal_to_company`` (the list equality failed)."""
    deal, first, primary = _deal_with_two_companies(fake)
    r = requests.get(fake.base_url + f"/crm/v3/objects/deals/{deal}", headers=AUTH, timeout=5)
    assert "associations" not in r.json()  # not asked for
    r = requests.get(fake.base_url + "/crm/v3/objects/deals", headers=AUTH,
                     params={"associations": "companies,contacts", "limit": 100, "after": ""}, timeout=5)  # fmt: skip
    listed = {o["id"]: o for o in r.json()["results"]}
    while "paging" in r.json():
        r = requests.get(fake.base_url + "/crm/v3/objects/deals", headers=AUTH, timeout=5,
                         params={"associations": "companies,contacts", "limit": 100,
                                 "after": r.json()["paging"]["next"]["after"]})  # fmt: skip
        listed.update({o["id"]: o for o in r.json()["results"]})
    assoc = listed[deal]["associations"]
    assert "contacts" not in assoc  # the key is absent when there are none
    assert assoc["companies"] == {"results": [
        {"id": first, "type": "deal_to_company_unlabeled"},
        {"id": primary, "type": "deal_to_company_unlabeled"},
        {"id": primary, "type": "deal_to_company"},
    ]}  # fmt: skip


def test_the_sync_takes_the_primary_company_and_reads_cut_short_association_lists_whole(
    db: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """before: the sync took ``ids[0]`` (``company_crm_id == primary`` failed: it stored the older company), and the
    fake never cut an inline list short (``"paging" in ...`` failed)."""
    connect(db, db_dsn, fake)
    deal, first, primary = _deal_with_two_companies(fake)
    people = [fake.create("contacts", {"email": f"p{i}@many.example"}) for i in range(3)]
    for p in people:
        fake.associate("deals", deal, "contacts", p)
    fake.inline_association_limit = 2
    listing = HubSpotLister(clients.client(ORG, "hubspot"))
    (mine,) = [
        o
        for o in listing.client.iter_objects("deals", associations=["contacts", "companies"])
        if o.id == deal
    ]
    inline = mine.associations or {}
    assert [a.id for a in inline["contacts"].results] == people[:2]  # cut short ...
    assert (
        inline["contacts"].paging is not None and inline["contacts"].paging.next is not None
    )  # ... and says so
    run_sync(db, ORG, listing, progress=False)
    assert one(db, "SELECT company_crm_id FROM crm.deal_index WHERE crm_record_id = %s", deal) == primary
    linked = {str(r[0]) for r in db.execute(
        "SELECT contact_crm_id FROM crm.deal_contact WHERE deal_crm_id = %s AND NOT removed", (deal,))}  # fmt: skip
    assert linked == set(people)
    # the v4 reads agree: the primary type id (5), not the first target
    client: HubSpotClient = clients.client(ORG, "hubspot")
    assert client.deal_associations([deal])[deal] == (people, primary)
    assert first != primary


def test_the_fake_lists_associations_of_a_long_deal_the_real_way_and_the_cursor_is_followed(
    fake: FakeHubSpot,
) -> None:
    """v4: ``GET /crm/v4/objects/deals/{id}/associations/contacts`` pages; batch reads page per input."""
    deal = fake.create("deals", {"dealname": "Crowded", "dealstage": "qualifiedtobuy", "pipeline": "default"})
    people = [fake.create("contacts", {"email": f"c{i}@crowd.example"}) for i in range(5)]
    for p in reversed(people):  # associated in reverse id order
        fake.associate("deals", deal, "contacts", p)
    fake.association_page_size = 2
    r = requests.get(
        fake.base_url + f"/crm/v4/objects/deals/{deal}/associations/contacts", headers=AUTH, timeout=5
    )
    body = r.json()
    assert [t["toObjectId"] for t in body["results"]] == list(reversed(people))[:2]
    assert body["paging"]["next"]["after"] == "2"
    with HubSpotClient(fake.base_url, lambda: TOKEN, retry=RetryPolicy.fast()) as c:
        ids = [t.to_object_id for t in c.batch_read_associations("deals", "contacts", [deal])[deal]]
    assert ids == list(reversed(people))


# ============================================================================ 3. merges, generic events, portals
def test_a_merge_that_creates_a_new_record_indexes_the_new_id_and_retires_both_originals(
    db: Conn, db_dsn: str, clients: Clients
) -> None:
    """before: ``newObjectId`` was ignored: the primary stayed live in the index and the new record was never
    fetched (the ``deleted_at`` assertion on the primary failed); the fake could not create a new record."""
    with FakeHubSpot(
        limits=False, tokens=[TOKEN], webhook_url="http://127.0.0.1:9/none", emit="collect"
    ) as fake:
        fake.seed_from(SyntheticCRM(seed=SEED, contacts=40))
        connect(db, db_dsn, fake)
        run_sync(db, ORG, HubSpotLister(clients.client(ORG, "hubspot")), progress=False)
        a, b = contact_ids(fake, 2)
        fake.take_deliveries()
        fake.merge_creates_new_object = True
        client: HubSpotClient = clients.client(ORG, "hubspot")
        merged = client.merge("contacts", a, b)
        assert merged.id not in (a, b) and sorted(client.get("contacts", merged.id).merged_ids) == sorted(
            [a, b]
        )
        (delivery,) = fake.take_deliveries()
        (event,) = delivery.json()
        assert (event["primaryObjectId"], event["mergedObjectIds"], event["newObjectId"]) == (
            int(a),
            [int(b)],
            int(merged.id),
        )
        with psycopg.connect(db_dsn, autocommit=True) as c2:
            c2.execute("SELECT crm.webhook_accept(%s, 'hubspot', %s, %s, '{}', 1)",
                       (ORG, str(fake.portal_id), delivery.body.decode()))  # fmt: skip
        Worker(db_dsn, INBOX, process_inbox).run_once()
        Worker(db_dsn, Queue("crm.job"), hydrate_handler(clients.fetcher), kind="hydrate").run_once()
        rows = {str(r[0]): (r[1], r[2]) for r in db.execute(
            "SELECT crm_record_id, deleted_at IS NOT NULL, merged_into FROM crm.contact_index "
            "WHERE crm_record_id = ANY(%s)", ([a, b, merged.id],))}  # fmt: skip
        assert rows[a] == (True, merged.id) and rows[b] == (True, merged.id)
        assert rows[merged.id] == (False, None)


def test_generic_association_change_events_are_applied_not_dead_lettered(db: Conn, db_dsn: str) -> None:
    """``object.associationChange`` carries object type ids and the association's type id, no ``associationType``.
    before: the planner found no ``objectTypeId`` and dead-lettered the delivery (``status == 'completed'``
    failed)."""
    ensure_org(db, ORG)
    with FakeHubSpot(
        limits=False, tokens=[TOKEN], webhook_url="http://127.0.0.1:9/none", emit="collect"
    ) as fake:
        fake.generic_webhooks = True
        contact = fake.create("contacts", {"email": "gen@eric.example", "firstname": "Gen"})
        company = fake.create("companies", {"name": "Generic Co", "domain": "eric.example"})
        deal = fake.create(
            "deals", {"dealname": "Generic deal", "dealstage": "contractsent", "pipeline": "default"}
        )
        fake.take_deliveries()
        db.execute("INSERT INTO crm.contact_index (org_id, crm_source, crm_record_id, first_name) "
                   "VALUES (%s, 'hubspot', %s, 'Gen')", (ORG, contact))  # fmt: skip
        db.execute("INSERT INTO crm.deal_index (org_id, crm_source, crm_record_id, name) "
                   "VALUES (%s, 'hubspot', %s, 'Generic deal')", (ORG, deal))  # fmt: skip
        fake.associate("contacts", contact, "companies", company, primary=True)
        fake.associate("deals", deal, "companies", company, primary=True)
        fake.associate("deals", deal, "contacts", contact)
        events = [e for d in fake.take_deliveries() for e in d.json()]
        assert {e["subscriptionType"] for e in events} == {"object.associationChange"}
        assert all("associationType" not in e and "objectTypeId" not in e for e in events)
        assert {e["associationTypeId"] for e in events} >= {1, 279, 5, 341, 3, 4}
        db.execute("SELECT crm.webhook_accept(%s, 'hubspot', '62515', %s, '{}', %s)",
                   (ORG, json.dumps(events), len(events)))  # fmt: skip
        Worker(db_dsn, INBOX, process_inbox).run_once()
    status, error = one(db, "SELECT status, last_error FROM crm.webhook_inbox")
    assert (status, error) == ("completed", None)
    assert (
        one(db, "SELECT company_crm_id FROM crm.contact_index WHERE crm_record_id = %s", contact) == company
    )
    assert one(db, "SELECT company_crm_id FROM crm.deal_index WHERE crm_record_id = %s", deal) == company
    assert one(db, "SELECT count(*) FROM crm.deal_contact WHERE deal_crm_id = %s AND NOT removed", deal) == 1


def test_a_delivery_holding_events_of_several_portals_is_stored_per_portal(
    db: Conn, db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public app's delivery may hold events of every portal that installed it. before: 400 "events must be
    objects of one portal" (``resp.status == 200`` failed)."""
    from crmindex.freshness.signatures import hubspot_v3

    for org, portal in ((ORG, "71001"), (ORG_B, "71002")):
        ensure_org(db, org)
        db.execute(
            "SELECT crm.connection_register(%s, 'hubspot', %s, 'oauth', NULL, '{}', NULL)", (org, portal)
        )
    now = int(time.time() * 1000)
    events = [
        {"eventId": i, "subscriptionId": 1, "portalId": int(portal), "appId": 9, "occurredAt": now - 1000 + i,
         "subscriptionType": "contact.propertyChange", "attemptNumber": 0, "objectId": 500 + i,
         "propertyName": "jobtitle", "propertyValue": f"T{i}", "changeSource": "CRM_UI"}
        for i, portal in enumerate(["71001", "71002", "71001", "71999"])
    ]  # fmt: skip
    body = json.dumps(events).encode()
    url = "https://hooks.example.com/webhooks/hubspot"
    ts = str(now)
    headers = {"X-HubSpot-Signature-v3": hubspot_v3(APP_SECRET, "POST", url, body, ts),
               "X-HubSpot-Request-Timestamp": ts}  # fmt: skip
    receiver = WebhookReceiver(db_dsn, hubspot_client_secret=APP_SECRET)
    try:
        resp = receiver.handle_hubspot("POST", url, headers, body)
        assert resp.status == 200 and resp.reason == "accepted" and resp.events == 3
        stored = db.execute("SELECT org_id, account_id, body FROM crm.webhook_inbox ORDER BY id").fetchall()
        assert [(r[0], r[1], len(json.loads(str(r[2])))) for r in stored] == [
            (ORG, "71001", 2),
            (ORG_B, "71002", 1),
        ]
        # a retry of the same request stores nothing new
        assert receiver.handle_hubspot("POST", url, headers, body).reason == "duplicate"
        # not signed by the app: several portals cannot be vouched for by one portal's secret: the same 401
        bad = dict(headers, **{"X-HubSpot-Signature-v3": "AAAA"})
        assert receiver.handle_hubspot("POST", url, bad, body).status == 401
    finally:
        receiver.close()


# ============================================================================ 4. non-unique upsert keys
def test_the_fake_refuses_domain_as_an_upsert_key_and_company_creates_search_then_create(
    db: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """before: the fake upserted companies by domain (``r.status_code == 400`` failed) and the writer sent such
    upserts."""
    r = post(fake, "/crm/v3/objects/companies/batch/upsert",
             {"inputs": [{"id": "acme.example", "idProperty": "domain", "properties": {"name": "Acme"}}]})  # fmt: skip
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    assert (
        r.json()["message"]
        == "Unable to perform update/upsert by non-unique 0-2 property domain in portal ID 62515"
    )
    connect(db, db_dsn, fake)
    writer = clients.writer(str(ORG), "hubspot")
    assert writer is not None
    n = fake.count("companies")
    fake.clear_log()
    (made,) = writer.create("company", [("newco.example", {"name": "NewCo"})])
    assert made.ok and made.crm_record_id and fake.count("companies") == n + 1
    (again,) = writer.create("company", [("newco.example", {"name": "NewCo Inc"})])
    assert again.ok and again.crm_record_id == made.crm_record_id and fake.count("companies") == n + 1
    assert fake.properties("companies", made.crm_record_id)["name"] == "NewCo Inc"
    assert fake.requests_to("/batch/upsert") == []
    # deals have no unique property either: the same name in the same pipeline is the match (issue 16)
    (deal,) = writer.create("deal", [("x", {"dealname": "No key", "pipeline": "default"})])
    (deal_again,) = writer.create(
        "deal", [("x", {"dealname": "No key", "pipeline": "default", "amount": "10"})]
    )
    assert deal.ok and deal_again.ok and deal_again.crm_record_id == deal.crm_record_id
    assert deal.crm_record_id and fake.properties("deals", deal.crm_record_id)["amount"] == "10"
    assert fake.requests_to("/batch/upsert") == []


# ============================================================================ 5. lifecycle stage rules
def test_the_fake_keeps_a_lifecycle_stage_that_an_api_write_moves_backwards(fake: FakeHubSpot) -> None:
    """before: the fake set any stage (``== 'opportunity'`` failed)."""
    (rid,) = contact_ids(fake, 1)
    fake.update("contacts", rid, {"lifecyclestage": "opportunity"})  # a user in the UI
    r = requests.patch(fake.base_url + f"/crm/v3/objects/contacts/{rid}", headers=AUTH, timeout=5,
                       json={"properties": {"lifecyclestage": "lead"}})  # fmt: skip
    assert r.status_code == 200 and r.json()["properties"]["lifecyclestage"] == "opportunity"
    assert fake.properties("contacts", rid)["lifecyclestage"] == "opportunity"
    # forward is fine; backwards needs a clear first (a separate request)
    post(
        fake,
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": rid, "properties": {"lifecyclestage": ""}}]},
    )
    post(fake, "/crm/v3/objects/contacts/batch/update",
         {"inputs": [{"id": rid, "properties": {"lifecyclestage": "lead"}}]})  # fmt: skip
    assert fake.properties("contacts", rid)["lifecyclestage"] == "lead"


def test_write_back_moves_a_lifecycle_stage_backwards_by_clearing_it_first(
    db: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """A user sets "lead" on an opportunity: it lands (clear, then set). before (with the fake's rule): the stage
    stayed "opportunity" although the job completed (the ``== 'lead'`` assertion failed)."""
    connect(db, db_dsn, fake)
    run_sync(db, ORG, HubSpotLister(clients.client(ORG, "hubspot")), progress=False)
    rid, other = contact_ids(fake, 2)
    fake.update("contacts", rid, {"lifecyclestage": "opportunity"})
    fake.update("contacts", other, {"lifecyclestage": "lead"})
    q1 = update_contact(db, ORG, rid, {"lifecycle_stage": "lead", "job_title": "Back to lead"})
    q2 = update_contact(db, ORG, other, {"lifecycle_stage": "customer"})
    fake.clear_log()
    Drainer(db_dsn, clients.writer, poll_s=0.2).run_once()
    assert fake.properties("contacts", rid)["lifecyclestage"] == "lead"
    assert fake.properties("contacts", rid)["jobtitle"] == "Back to lead"
    assert fake.properties("contacts", other)["lifecyclestage"] == "customer"
    assert {one(db, "SELECT status FROM crm.writeback_queue WHERE id = %s", q.job_id) for q in (q1, q2)} == {
        "completed"
    }
    assert len(fake.requests_to("/batch/update")) == 3  # the update, then clear + set for the one kept back


# ============================================================================ 6. pipelines, stages and owners
def _custom_pipeline(fake: FakeHubSpot) -> tuple[str, dict[str, str]]:
    pid, stage_ids = fake.metadata.add_pipeline(
        "Enterprise", [("Discovery", "0.1", False), ("Negotiation", "0.7", False), ("Won", "1.0", True),
                       ("Lost", "0.0", True)])  # fmt: skip
    return pid, dict(zip(("Discovery", "Negotiation", "Won", "Lost"), stage_ids, strict=True))


def test_the_sync_stores_owners_and_stages_and_labels_deals_contacts_and_companies(
    db: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """before: nothing filled crm.crm_owner / crm.crm_pipeline_stage and deals kept raw ids (``stage_label ==
    'Negotiation'`` failed); contacts had no owner, country or activity dates."""
    connect(db, db_dsn, fake)
    pid, stages = _custom_pipeline(fake)
    jane = fake.metadata.add_owner("Jane", "Roe", "jane@seller.example")
    (rid,) = contact_ids(fake, 1)
    fake.update("contacts", rid, {"hubspot_owner_id": jane, "country": "Germany",
                                  "notes_last_contacted": "2026-01-02T03:04:05.000Z",
                                  "hs_last_sales_activity_timestamp": "2026-02-03T04:05:06.000Z"})  # fmt: skip
    company = fake.create("companies", {"name": "Labelled Co", "domain": "labelled.example", "state": "Bavaria",
                                        "hubspot_owner_id": jane})  # fmt: skip
    deal = fake.create("deals", {"dealname": "Big one", "pipeline": pid, "dealstage": stages["Negotiation"],
                                 "amount": "90000000", "hubspot_owner_id": jane})  # fmt: skip
    fake.associate("deals", deal, "contacts", rid)
    run_sync(db, ORG, HubSpotLister(clients.client(ORG, "hubspot")), progress=False)
    assert (
        one(db, "SELECT first_name || ' ' || last_name FROM crm.crm_owner WHERE owner_id = %s", jane)
        == "Jane Roe"
    )
    assert one(db, "SELECT count(*) FROM crm.crm_owner") == len(fake.metadata.owners)
    assert one(db, "SELECT stage_label, pipeline_label, is_closed, is_won FROM crm.crm_pipeline_stage "
                   "WHERE stage_id = %s", stages["Won"]) == ("Won", "Enterprise", True, True)  # fmt: skip
    assert one(db, "SELECT is_won FROM crm.crm_pipeline_stage WHERE stage_id = 'closedlost'") is False
    assert one(db, "SELECT stage, stage_label, pipeline_label FROM crm.deal_index WHERE crm_record_id = %s",
               deal) == (stages["Negotiation"], "Negotiation", "Enterprise")  # fmt: skip
    assert (
        one(db, "SELECT stage_label FROM crm.deal_index WHERE stage = 'contractsent' LIMIT 1")
        == "Contract Sent"
    )
    assert one(db, "SELECT deal_stage, owner_crm_id, country, last_contacted_at, last_activity_at "
                   "FROM crm.contact_index WHERE crm_record_id = %s", rid) == (
        "Negotiation", jane, "Germany", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC))  # fmt: skip
    assert one(db, "SELECT owner_crm_id, region FROM crm.company_index WHERE crm_record_id = %s",
               company) == (jane, "Bavaria")  # fmt: skip
    # a won stage of a custom pipeline closes the deal (its numeric id says nothing)
    fake.update("deals", deal, {"dealstage": stages["Won"]})
    fetched = HubSpotFetcher(clients.client(ORG, "hubspot")).fetch("deals", [deal])[deal]
    upsert_rows(db, "deals", ORG, "hubspot", [fetched.row])
    assert one(db, "SELECT stage_label, is_active FROM crm.deal_index WHERE crm_record_id = %s", deal) == (
        "Won",
        False,
    )


def test_renamed_stages_relabel_deals_and_contact_summaries_on_refresh(
    db: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """before: no refresh existed (``refresh_metadata`` did not)."""
    connect(db, db_dsn, fake)
    pid, stages = _custom_pipeline(fake)
    (rid,) = contact_ids(fake, 1)
    deal = fake.create("deals", {"dealname": "Renamed", "pipeline": pid, "dealstage": stages["Discovery"],
                                 "amount": "50000000"})  # fmt: skip
    fake.associate("deals", deal, "contacts", rid)
    lister = HubSpotLister(clients.client(ORG, "hubspot"))
    run_sync(db, ORG, lister, progress=False)
    assert one(db, "SELECT deal_stage FROM crm.contact_index WHERE crm_record_id = %s", rid) == "Discovery"
    fake.metadata.rename_stage(pid, stages["Discovery"], "Qualification")
    fake.metadata.archive_stage(pid, stages["Lost"])
    report = refresh_metadata(db, str(ORG), lister)
    assert report is not None and report.stages_changed == 2 and report.deals_relabelled == 1
    assert one(db, "SELECT stage_label FROM crm.deal_index WHERE crm_record_id = %s", deal) == "Qualification"
    assert (
        one(db, "SELECT deal_stage FROM crm.contact_index WHERE crm_record_id = %s", rid) == "Qualification"
    )
    assert one(db, "SELECT archived FROM crm.crm_pipeline_stage WHERE stage_id = %s", stages["Lost"]) is True
    again = refresh_metadata(db, str(ORG), lister)
    assert again is not None and (again.owners_changed, again.stages_changed, again.deals_relabelled) == (
        0,
        0,
        0,
    )


def test_an_unknown_stage_or_owner_queues_one_refresh_that_labels_it(
    db: Conn, db_dsn: str, fake: FakeHubSpot, clients: Clients
) -> None:
    """A pipeline and an owner added after the sync, named first by a webhook: one ``metadata`` job, then labels.
    before: no such job (``== 1`` failed)."""
    connect(db, db_dsn, fake)
    run_sync(db, ORG, HubSpotLister(clients.client(ORG, "hubspot")), progress=False)
    deal = str(one(db, "SELECT crm_record_id FROM crm.deal_index ORDER BY id LIMIT 1"))
    _, stages = _custom_pipeline(fake)
    omar = fake.metadata.add_owner("Omar", "Quinn", "omar@seller.example")
    now = int(time.time() * 1000)
    events = [
        {"eventId": 1, "subscriptionId": 1, "portalId": 62515, "appId": 1, "occurredAt": now,
         "subscriptionType": "deal.propertyChange", "attemptNumber": 0, "objectId": int(deal),
         "propertyName": "dealstage", "propertyValue": stages["Negotiation"], "changeSource": "CRM_UI"},
        {"eventId": 2, "subscriptionId": 1, "portalId": 62515, "appId": 1, "occurredAt": now,
         "subscriptionType": "deal.propertyChange", "attemptNumber": 0, "objectId": int(deal),
         "propertyName": "hubspot_owner_id", "propertyValue": omar, "changeSource": "CRM_UI"},
    ]  # fmt: skip
    for _ in range(3):  # a burst: one request
        db.execute(
            "SELECT crm.webhook_accept(%s, 'hubspot', '62515', %s, '{}', 2)", (ORG, json.dumps(events))
        )
        Worker(db_dsn, INBOX, process_inbox).run_once()
    assert one(db, "SELECT count(*) FROM crm.job WHERE kind = %s", METADATA_KIND) == 1
    assert one(db, "SELECT stage_label FROM crm.deal_index WHERE crm_record_id = %s", deal) is None
    Worker(db_dsn, Queue("crm.job"), metadata_handler(clients.lister), kind=METADATA_KIND).run_once()
    assert one(db, "SELECT status FROM crm.job WHERE kind = %s", METADATA_KIND) == "completed"
    assert one(
        db, "SELECT stage_label, pipeline_label FROM crm.deal_index WHERE crm_record_id = %s", deal
    ) == ("Negotiation", "Enterprise")
    assert one(db, "SELECT first_name FROM crm.crm_owner WHERE owner_id = %s", omar) == "Omar"
    # known now: a later write asks for nothing
    db.execute("SELECT crm.webhook_accept(%s, 'hubspot', '62515', %s, '{}', 2)",
               (ORG, json.dumps([dict(e, eventId=e["eventId"] + 10) for e in events])))  # fmt: skip
    Worker(db_dsn, INBOX, process_inbox).run_once()
    assert one(db, "SELECT count(*) FROM crm.job WHERE kind = %s", METADATA_KIND) == 1


# ============================================================================ 7. rate limits as published
def test_the_fake_reports_the_published_limits_per_tier() -> None:
    """before: one configured number, no daily headers (the ``Daily`` header assertion failed)."""
    for kw, burst, daily in (({}, "100", "250000"), ({"tier": "professional"}, "190", "625000"),
                             ({"tier": "enterprise", "capacity_packs": 1}, "250", "2000000")):  # fmt: skip
        with FakeHubSpot(tokens=[TOKEN], **kw) as f:
            h = requests.get(f.base_url + "/crm/v3/objects/contacts", headers=AUTH, timeout=5).headers
            assert (h["X-HubSpot-RateLimit-Max"], h["X-HubSpot-RateLimit-Interval-Milliseconds"]) == (
                burst,
                "10000",
            )
            assert (h["X-HubSpot-RateLimit-Daily"], h["X-HubSpot-RateLimit-Daily-Remaining"]) == (
                daily,
                str(int(daily) - 1),
            )
            s = requests.post(
                f.base_url + "/crm/v3/objects/contacts/search", headers=AUTH, json={}, timeout=5
            )
            assert not [k for k in s.headers if k.lower().startswith("x-hubspot-ratelimit")]
    with FakeHubSpot(
        tokens=[TOKEN], oauth_app=True
    ) as f:  # a public app's OAuth requests: 110, no daily headers
        h = requests.get(f.base_url + "/crm/v3/objects/contacts", headers=AUTH, timeout=5).headers
        assert h["X-HubSpot-RateLimit-Max"] == "110" and "X-HubSpot-RateLimit-Daily" not in h


def test_the_client_learns_the_accounts_tier_from_the_headers(db: Conn, db_dsn: str) -> None:
    """before: the limiter kept the default 100 per 10 s (``== (190, 10.0, 'observed')`` failed)."""
    ensure_org(db, ORG)
    with FakeHubSpot(tokens=[TOKEN], tier="professional") as fake:
        lim = PgRateLimiter(db_dsn, ORG, "hubspot")
        try:
            with HubSpotClient(fake.base_url, lambda: TOKEN, lim, retry=RetryPolicy.fast()) as c:
                c.list_page("contacts", limit=1)
        finally:
            lim.close()
    assert one(
        db, "SELECT permits, per_seconds, origin FROM crm.rate_limit WHERE limit_class = 'general'"
    ) == (190, 10.0, "observed")
    # an operator's configuration is kept
    lim = PgRateLimiter(db_dsn, ORG, "hubspot")
    try:
        lim.configure("general", 50, 10)
        assert lim.observe("general", 190, 10) is False
    finally:
        lim.close()
    assert one(db, "SELECT permits FROM crm.rate_limit WHERE limit_class = 'general'") == 50


def test_the_daily_limit_is_never_exceeded_and_the_account_waits_for_its_midnight(
    db: Conn, db_dsn: str, clients: Clients
) -> None:
    """A daily budget of 40 calls: the client stops with a reserve left, every later call and write-back job waits
    for the account's midnight with the reason DAILY, the fake never answers 429. before: calls went on until
    HubSpot's 429s (``no 429`` failed) and jobs were retried after an hour, not at the account's midnight."""
    with FakeHubSpot(tokens=[TOKEN], daily_limit=40, time_zone="Asia/Tokyo") as fake:
        fake.seed_from(SyntheticCRM(seed=SEED, contacts=50))
        connect(db, db_dsn, fake)
        client: HubSpotClient = clients.client(ORG, "hubspot")
        reserve = client.daily_reserve if client.daily_reserve is not None else 1
        with pytest.raises(RateLimited) as exc:
            for _ in range(60):
                client.list_page("contacts", limit=1)
        assert exc.value.limit_name == "DAILY" and exc.value.status is None  # nothing was sent
        assert not [r for r in fake.request_log if r.status == 429]
        assert fake.daily_remaining() >= reserve - 1
        held = dict(
            db.execute("SELECT limit_class, held_until FROM crm.rate_limit WHERE held_reason = 'DAILY'")
        )
        assert set(held) == {"general", "search"}
        assert abs((held["general"] - fake.daily_resets_at()).total_seconds()) < 1  # Tokyo's midnight
        status = db.execute("SELECT daily_limit, daily_remaining FROM crm.rate_limit_status(%s, 'hubspot') "
                            "WHERE limit_class = 'general'", (ORG,)).fetchone()  # fmt: skip
        assert status is not None and status[0] == 40 and status[1] <= reserve
        # write-back jobs wait for midnight, no attempt spent
        (rid,) = contact_ids(fake, 1)
        job = one(db, "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', %s, 'update', %s, 'enrichment')",
                  ORG, rid, Jsonb({"jobtitle": "Tomorrow"}))  # fmt: skip
        calls = len(fake.request_log)
        Drainer(db_dsn, clients.writer, poll_s=0.2).run_once()
        assert len(fake.request_log) == calls
        state = db.execute("SELECT status, attempts, last_error, next_retry_at FROM crm.writeback_queue "
                           "WHERE id = %s", (job,)).fetchone()  # fmt: skip
        assert state is not None and state[:2] == ("pending", 0) and "rate limited (DAILY)" in state[2]
        assert state[3] >= fake.daily_resets_at() - timedelta(seconds=2)


def test_a_daily_429_of_an_oauth_app_holds_the_account_until_its_midnight(db: Conn, db_dsn: str) -> None:
    """OAuth requests get no daily headers: the first 429 DAILY holds the account. before: it was penalized for an
    hour whatever the account's midnight (the ``held_until`` assertion failed)."""
    ensure_org(db, ORG)
    with FakeHubSpot(tokens=[TOKEN], oauth_app=True, daily_limit=3, time_zone="America/Los_Angeles") as fake:
        lim = PgRateLimiter(db_dsn, ORG, "hubspot")
        try:
            with HubSpotClient(fake.base_url, lambda: TOKEN, lim, retry=RetryPolicy.fast()) as c:
                with pytest.raises(RateLimited) as exc:
                    for _ in range(10):
                        c.list_page("contacts", limit=1)
                assert exc.value.limit_name == "DAILY"
                assert [r.status for r in fake.request_log if r.path.startswith("/crm")].count(429) == 1
                with pytest.raises(RateLimited):
                    c.list_page("contacts", limit=1)  # held: not sent
                assert [r.status for r in fake.request_log if r.path.startswith("/crm")].count(429) == 1
        finally:
            lim.close()
        held = one(
            db,
            "SELECT held_until FROM crm.rate_limit WHERE limit_class = 'general' AND held_reason = 'DAILY'",
        )
        assert abs((held - fake.daily_resets_at()).total_seconds()) < 1
