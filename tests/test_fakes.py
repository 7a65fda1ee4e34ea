"""The fake CRMs themselves: wire shapes, limits, faults, request log, scale, and signed webhooks.

Signatures are checked with independent computations written here from the reference's formulas
(HubSpot v1 = hex sha256(secret + body); v3 = base64 HMAC-SHA256(secret, method + uri + body + timestamp);
Attio = hex HMAC-SHA256(secret, raw body)), and the reference's documented test vectors are reproduced.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.hubspot.model import iso_ms
from crmindex.testing.hubspot.search import _compile_filter, _filter_ok
from crmindex.testing.hubspot.store import HubSpotRecord
from crmindex.testing.hubspot.webhooks import sign_v1, sign_v3
from crmindex.testing.synthetic import SyntheticCRM

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"


def v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode("utf-8") + body).hexdigest()


def v3(secret: str, method: str, uri: str, body: bytes, ts: str) -> str:
    msg = (method + uri).encode("utf-8") + body + ts.encode("utf-8")
    return base64.b64encode(hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).digest()).decode()


def attio_sig(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- documented test vectors
def test_reference_signature_vectors() -> None:
    body = b"{'example_field':'example_value'}"
    uri = "https://www.example.com/webhook_uri"
    assert v1(SECRET, body) == "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
    assert v3(SECRET, "POST", uri, body, "15000000") == "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
    # the fake's signers agree with the vectors
    assert sign_v1(SECRET, body) == v1(SECRET, body)
    assert sign_v3(SECRET, "POST", uri, body, "15000000") == "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
    # the docs' v1 example: the documented event array
    doc = [{"eventId": 1, "subscriptionId": 12345, "portalId": 62515, "occurredAt": 1564113600000,
            "subscriptionType": "contact.creation", "attemptNumber": 0, "objectId": 123,
            "changeSource": "CRM", "changeFlag": "NEW", "appId": 54321}]  # fmt: skip
    raw = json.dumps(doc, separators=(",", ":")).encode()
    assert v1(SECRET, raw) == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    with FakeHubSpot(client_secret=SECRET, webhook_url=uri, emit="collect") as fake:
        headers = fake.sign(raw, timestamp=15000000)
        assert (
            headers["X-HubSpot-Signature"]
            == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
        )
        assert headers["X-HubSpot-Signature-Version"] == "v1"
        fake.emit_events(doc)
        (d,) = fake.take_deliveries()
        assert d.body == raw and d.headers["X-HubSpot-Signature"] == v1(SECRET, raw)


# --------------------------------------------------------------------------- webhook receiver
class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        rec = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/hubspot?x=1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_hubspot_webhooks_sent_and_signed(receiver: Receiver) -> None:
    with FakeHubSpot(webhook_url=receiver.url, client_secret="s3cret", limits=False, portal_id=777) as fake:
        fake.seed_from(SyntheticCRM(seed=1, contacts=5))
        cid = fake.create("contacts", {"email": "a@b.test", "firstname": "A"})
        fake.update_property("contacts", cid, "jobtitle", "CTO")
        fake.delete("contacts", cid)
        fake.restore("contacts", cid)
        fake.merge("contacts", "100000001", "100000002")
        fake.associate("contacts", cid, "companies", "5000000001", primary=True)
    assert len(receiver.received) == 6
    types = []
    for path, headers, body in receiver.received:
        assert path == "/hooks/hubspot?x=1"
        assert headers["X-HubSpot-Signature"] == v1("s3cret", body)
        ts = headers["X-HubSpot-Request-Timestamp"]
        assert abs(int(ts) / 1000 - time.time()) < 60
        assert headers["X-HubSpot-Signature-v3"] == v3("s3cret", "POST", receiver.url, body, ts)
        events = json.loads(body)
        assert isinstance(events, list)
        for ev in events:
            assert ev["portalId"] == 777 and ev["attemptNumber"] == 0 and isinstance(ev["occurredAt"], int)
            types.append(ev["subscriptionType"])
    assert types == ["contact.creation", "contact.propertyChange", "contact.deletion", "contact.restore",
                     "contact.merge", "contact.associationChange", "company.associationChange"]  # fmt: skip
    change = json.loads(receiver.received[1][2])[0]
    assert change["propertyName"] == "jobtitle" and change["propertyValue"] == "CTO"
    merge = json.loads(receiver.received[4][2])[0]
    assert merge["primaryObjectId"] == 100000001 and merge["mergedObjectIds"] == [100000002]
    assoc = json.loads(receiver.received[5][2])[0]
    assert assoc["associationType"] == "CONTACT_TO_COMPANY" and assoc["associationRemoved"] is False


def test_hubspot_collect_mode_allows_reordering_and_duplicates(receiver: Receiver) -> None:
    with FakeHubSpot(webhook_url=receiver.url, client_secret="k", emit="collect", limits=False) as fake:
        cid = fake.create("contacts", {"email": "x@y.test"})
        with fake.batched_webhooks():
            fake.update_property("contacts", cid, "firstname", "X")
            fake.update_property("contacts", cid, "lastname", "Y")
        deliveries = fake.take_deliveries()
        assert len(deliveries) == 2 and receiver.received == []
        assert [e["propertyName"] for e in deliveries[1].json()] == ["firstname", "lastname"]
        for d in (deliveries[1], deliveries[0], deliveries[0]):  # reorder + duplicate
            assert d.send() == 200
    assert [r[2] for r in receiver.received] == [deliveries[1].body, deliveries[0].body, deliveries[0].body]


def test_api_writes_echo_as_webhooks_with_api_source() -> None:
    with FakeHubSpot(
        webhook_url="http://127.0.0.1:9/none", client_secret="k", emit="collect", limits=False
    ) as fake:
        r = requests.post(f"{fake.base_url}/crm/v3/objects/contacts/batch/create", headers=AUTH, timeout=5,
                          json={"inputs": [{"properties": {"email": "e@x.test"}}]})  # fmt: skip
        assert r.status_code == 201
        r.close()
        (d,) = fake.take_deliveries()
        assert d.json()[0]["changeSource"] == "API" and d.json()[0]["subscriptionType"] == "contact.creation"


def test_attio_webhooks_one_event_per_delivery_signed() -> None:
    with FakeAttio(webhook_url="http://127.0.0.1:9/none", webhook_secret="attio-secret", emit="collect",
                   limits=False) as fake:  # fmt: skip
        rid = fake.create("people", {"name": "Ada Lovelace", "email_addresses": ["ada@x.test"]})
        fake.update("people", rid, {"job_title": "Countess", "name": "Ada King"})
        other = fake.create("people", {"name": "Dup"})
        new = fake.merge("people", rid, other)
        fake.delete("people", new)
        deliveries = fake.take_deliveries()
    kinds = []
    for d in deliveries:
        payload = d.json()
        assert set(payload) == {"webhook_id", "events"} and len(payload["events"]) == 1
        assert d.headers["Attio-Signature"] == attio_sig("attio-secret", d.body)
        assert d.headers["X-Attio-Signature"] == d.headers["Attio-Signature"]
        ev = payload["events"][0]
        assert set(ev["id"]) >= {"workspace_id", "object_id", "record_id"} and ev["actor"]["type"]
        kinds.append(ev["event_type"])
    assert kinds == ["record.created", "record.updated", "record.updated", "record.created", "record.merged",
                     "record.merged", "record.deleted"]  # fmt: skip
    # an Idempotency-Key per message (docs.attio.com webhooks guide), the same when a delivery is sent again
    keys = [d.headers["Idempotency-Key"] for d in deliveries]
    assert len(set(keys)) == len(deliveries) and all(keys)
    updated = deliveries[1].json()["events"][0]
    assert "attribute_id" in updated["id"]
    # today's merges: a new record; one record.merged per original, both naming the new one
    merged = [d.json()["events"][0] for d in deliveries[4:6]]
    assert new not in (rid, other)
    assert {m["duplicate_record_id"] for m in merged} == {rid, other}
    assert {m["id"]["record_id"] for m in merged} == {new}


# --------------------------------------------------------------------------- HubSpot wire shapes
@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=9, contacts=30))
        yield fake


def _get(fake: FakeHubSpot | FakeAttio, path: str, **kw: Any) -> requests.Response:
    return requests.get(fake.base_url + path, headers=kw.pop("headers", AUTH), timeout=5, **kw)


def _post(fake: FakeHubSpot | FakeAttio, path: str, body: Any, **kw: Any) -> requests.Response:
    return requests.post(fake.base_url + path, headers=kw.pop("headers", AUTH), json=body, timeout=5, **kw)


def test_list_shape(hub: FakeHubSpot) -> None:
    r = _get(hub, "/crm/v3/objects/contacts", params={"limit": 2})
    body = r.json()
    assert r.status_code == 200 and len(body["results"]) == 2
    obj = body["results"][0]
    assert set(obj) >= {"id", "properties", "createdAt", "updatedAt", "archived"} and obj["archived"] is False
    assert set(obj["properties"]) == {"firstname", "lastname", "email", "lastmodifieddate", "hs_object_id",
                                      "createdate"}  # fmt: skip
    assert all(isinstance(v, str) for v in obj["properties"].values() if v is not None)
    assert body["paging"]["next"]["after"] and body["paging"]["next"]["link"].startswith("?after=")
    assert r.headers["X-HubSpot-RateLimit-Max"] == "100"
    assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    r.close()


def test_errors_shapes(hub: FakeHubSpot) -> None:
    r = _get(hub, "/crm/v3/objects/contacts", headers={})
    assert r.status_code == 401
    assert (
        set(r.json()) >= {"status", "message", "correlationId", "category"} and r.json()["status"] == "error"
    )
    r.close()
    r = _post(hub, "/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": str(i)} for i in range(101)]})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    r.close()
    r = _post(hub, "/crm/v3/objects/contacts/search", {"limit": 100, "after": "10000"})
    assert r.status_code == 400 and "10000" in r.json()["message"]
    r.close()
    r = _post(hub, "/crm/v3/objects/contacts/search", {"limit": 201})
    assert r.status_code == 400
    r.close()
    r = _post(hub, "/crm/v3/objects/contacts/search", {"filterGroups": [{"filters": []}] * 6})
    assert r.status_code == 400
    r.close()
    r = _post(hub, "/crm/v3/objects/contacts/search", {"query": "x" * 3100})
    assert r.status_code == 400
    r.close()


def test_search_shape_and_no_rate_headers(hub: FakeHubSpot) -> None:
    r = _post(hub, "/crm/v3/objects/contacts/search", {"limit": 10})
    body = r.json()
    assert body["total"] == 30 and len(body["results"]) == 10 and body["paging"]["next"]["after"] == "10"
    assert "X-HubSpot-RateLimit-Max" not in r.headers
    r.close()


def test_batch_read_207_shape(hub: FakeHubSpot) -> None:
    r = _post(hub, "/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": "100000001"}, {"id": "5"}],
                                                           "properties": ["email"]})  # fmt: skip
    body = r.json()
    assert r.status_code == 207 and body["numErrors"] == 1 and body["status"] == "COMPLETE"
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND" and body["errors"][0]["context"] == {
        "ids": ["5"]
    }
    assert body["results"][0]["properties"]["email"]
    r.close()


def test_rate_limit_bodies_and_request_log() -> None:
    with FakeHubSpot(burst_limit=3, burst_window=10) as fake:
        statuses = []
        for _ in range(4):
            r = _get(fake, "/crm/v3/objects/contacts")
            statuses.append(r.status_code)
            last = r.json()
            r.close()
        assert statuses == [200, 200, 200, 429]
        assert last["policyName"] == "TEN_SECONDLY_ROLLING" and last["errorType"] == "RATE_LIMIT"
        searches = []
        for _ in range(7):
            r = _post(fake, "/crm/v3/objects/contacts/search", {})
            searches.append(r.status_code)
            body = r.json()
            r.close()
        assert 429 in searches and body["policyName"] == "SECONDLY"
        log = fake.request_log
        assert [e.status for e in log[:4]] == statuses and log[0].method == "GET"
        assert log[0].path == "/crm/v3/objects/contacts" and log[0].time <= time.time()


def test_faults_latency_and_error_rate() -> None:
    with FakeHubSpot(limits=False, seed=3) as fake:
        fake.set_faults(latency=0.05)
        t0 = time.monotonic()
        _get(fake, "/crm/v3/objects/contacts").close()
        assert time.monotonic() - t0 >= 0.05
        fake.clear_faults()
        fake.set_faults(error_rate=0.5)
        codes = []
        for _ in range(20):
            r = _get(fake, "/crm/v3/objects/contacts")
            codes.append(r.status_code)
            r.close()
        assert 500 in codes and 200 in codes
        with pytest.raises(AttributeError):
            fake.set_faults(nonsense=1)


def test_500k_contacts_are_served_lazily() -> None:
    t0 = time.monotonic()
    with FakeHubSpot(limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=1, contacts=500_000))
        seeded = time.monotonic() - t0
        r = _get(fake, "/crm/v3/objects/contacts", params={"limit": 100})
        first = r.json()
        r.close()
        after = first["paging"]["next"]["after"]
        r = _get(fake, "/crm/v3/objects/contacts", params={"limit": 100, "after": after})
        assert r.json()["results"][0]["id"] == "100000101"
        r.close()
        # near the end: the cursor of id 100499990
        from crmindex.testing.hubspot.routes import encode_after

        r = _get(fake, "/crm/v3/objects/contacts", params={"limit": 100, "after": encode_after(100_499_990)})
        tail = r.json()
        r.close()
        assert len(tail["results"]) == 11 and "paging" not in tail
        r = _post(fake, "/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": "100250000"}]})
        assert r.json()["results"][0]["id"] == "100250000"
        r.close()
    assert seeded < 10 and time.monotonic() - t0 < 15


# --------------------------------------------------------------------------- Attio wire shapes
def test_attio_shapes() -> None:
    with FakeAttio(limits=False) as fake:
        rid = fake.create("people", {"name": "Ada Lovelace", "email_addresses": ["Ada@Example.com"]})
        r = _post(fake, "/v2/objects/people/records/query", {"limit": 10})
        (rec,) = r.json()["data"]
        r.close()
        assert set(rec) >= {"id", "created_at", "values"} and rec["id"]["record_id"] == rid
        email = rec["values"]["email_addresses"][0]
        assert (
            email["email_address"] == "ada@example.com"
            and email["original_email_address"] == "Ada@Example.com"
        )
        assert email["active_until"] is None and email["attribute_type"] == "email-address"
        assert rec["values"]["name"][0]["full_name"] == "Ada Lovelace"
        r = _get(fake, "/v2/objects/people/records/nope")
        assert r.status_code == 404 and set(r.json()) == {"status_code", "type", "code", "message"}
        r.close()
        r = _get(fake, f"/v2/objects/people/records/{rid}", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["type"] == "auth_error"
        r.close()
        fake.revoke_token(TOKEN)
        r = _get(fake, f"/v2/objects/people/records/{rid}")
        assert r.status_code == 401
        r.close()


def test_attio_write_limit() -> None:
    with FakeAttio(writes_per_second=2) as fake:
        codes = []
        for i in range(4):
            r = requests.put(f"{fake.base_url}/v2/objects/companies/records", headers=AUTH, timeout=5,
                             params={"matching_attribute": "domains"},
                             json={"data": {"values": {"domains": [f"d{i}.test"], "name": "D"}}})  # fmt: skip
            codes.append(r.status_code)
            if r.status_code == 429:
                assert "GMT" in r.headers["Retry-After"]
            r.close()
        assert codes[:2] == [200, 200] and 429 in codes
        assert [e.limit_class for e in fake.request_log] == ["write"] * 4


_FILTER_NAMES = [
    "hs_object_id",
    "createdate",
    "hs_createdate",
    "lastmodifieddate",
    "hs_lastmodifieddate",
    "email",
]
_FILTER_OPS = ["EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "HAS_PROPERTY", "CONTAINS_TOKEN", "XX"]
_FILTER_VALUES = st.one_of(
    st.integers(0, 2_000_000_000_000).map(str),
    st.integers(0, 2_000_000_000_000).map(iso_ms),
    st.sampled_from(["", "x", "-5", "1.5", "2026-01-01", "a@b.co", "  12 "]),
    st.none(),
)


@settings(max_examples=400, deadline=None)
@given(
    rec_id=st.integers(1, 10**12),
    created=st.integers(0, 2_000_000_000_000),
    updated=st.integers(0, 2_000_000_000_000),
    name=st.sampled_from(_FILTER_NAMES),
    op=st.sampled_from(_FILTER_OPS),
    value=_FILTER_VALUES,
    high=_FILTER_VALUES,
    near=st.booleans(),
)
def test_compiled_search_filter_answers_like_the_reference(
    rec_id: int,
    created: int,
    updated: int,
    name: str,
    op: str,
    value: str | None,
    high: str | None,
    near: bool,
) -> None:
    """The search's compiled filters (fast path for id and dates) agree with the plain per-record reading."""
    rec = HubSpotRecord(id=rec_id, props={"email": "a@b.co"}, created_ms=created, updated_ms=updated)
    if near:  # the boundary: the filter value equal to the record's own
        value = {
            "hs_object_id": str(rec_id),
            "createdate": str(created),
            "hs_createdate": iso_ms(created),
        }.get(name, str(updated))
    f = {"propertyName": name, "operator": op, "value": value, "highValue": high, "values": [value, high]}
    assert _compile_filter("contacts", f)(rec) == _filter_ok("contacts", rec, f)


def test_recent_changes_search_pages_by_id_and_filters_by_date() -> None:
    """The reconcile's query shape on a lazy seed: only records changed in the window, ascending ids, paged."""
    fake = FakeHubSpot(tokens=["t"], portal_id=1)
    fake.seed_from(SyntheticCRM(seed=3, contacts=5_000))
    first = int(SyntheticCRM(seed=3, contacts=5_000).contact_id(0))
    time.sleep(0.01)
    floor = int(time.time() * 1000)
    changed = sorted({first + i * 37 % 5_000 for i in range(250)})
    for oid in reversed(changed):
        fake.update("contacts", str(oid), {"jobtitle": f"t{oid}"})
    last_in_window = changed[200]
    with fake:
        seen: list[int] = []
        after: str | None = None
        while True:
            body: dict[str, Any] = {
                "filterGroups": [{"filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(floor)},
                    {"propertyName": "hs_object_id", "operator": "LTE", "value": str(last_in_window)},
                ]}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": ["jobtitle"], "limit": 100,
            }  # fmt: skip
            if after:
                body["after"] = after
            r = requests.post(
                f"{fake.base_url}/crm/v3/objects/contacts/search",
                json=body,
                headers={"Authorization": "Bearer t"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            page = r.json()
            assert page["total"] == 201
            seen += [int(x["id"]) for x in page["results"]]
            assert all(x["properties"]["jobtitle"] == f"t{x['id']}" for x in page["results"])
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                break
    assert seen == changed[:201]


def test_archived_listing_reads_only_archived_records_of_a_lazy_seed() -> None:
    """A reconcile's ``archived=true`` listing answers from the archived records alone: on a 500K lazy seed
    walking every id held the store's lock for seconds and stalled every other call (the mixed-load bench)."""
    crm = SyntheticCRM(seed=5, contacts=50_000)
    with FakeHubSpot(limits=False) as fake:
        fake.seed_from(crm)
        first = int(crm.contact_id(0))
        gone = [first + 40_000, first + 7, first + 123]
        for oid in gone:
            fake.delete("contacts", oid)
        store = fake.store("contacts")
        assert store.seed is not None
        built = 0
        build = store.seed.build

        def counting_build(i: int) -> HubSpotRecord:
            nonlocal built
            built += 1
            return build(i)

        store.seed.build = counting_build
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 2, "archived": "true"}
        while True:
            r = _get(fake, "/crm/v3/objects/contacts", params=params)
            body = r.json()
            r.close()
            assert all(x["archived"] is True and x["archivedAt"] for x in body["results"])
            seen += [x["id"] for x in body["results"]]
            if "paging" not in body:
                break
            params["after"] = body["paging"]["next"]["after"]
        assert seen == [str(i) for i in sorted(gone)]
        assert built == 0
        r = _get(fake, "/crm/v3/objects/contacts", params={"limit": 3})
        assert [x["id"] for x in r.json()["results"]] == [str(first + i) for i in (0, 1, 2)]
        r.close()
