"""AttioClient <-> FakeAttio round trips: query paging, get, assert, update, delete, errors, values."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from crmindex.crm.attio.client import AttioClient
from crmindex.crm.attio.mapping import attio_company_to_row, attio_deal_to_row, attio_person_to_row
from crmindex.crm.attio.models import AttioRecord
from crmindex.crm.errors import AuthError, MalformedResponseError, RetryableError, ValidationError
from crmindex.crm.http import RetryPolicy
from crmindex.platform.limits import LimitClass
from crmindex.testing import FakeAttio
from crmindex.testing.synthetic import SyntheticCRM

TOKEN = "attio-SECRET-token-42"


class SpyLimiter:
    def __init__(self) -> None:
        self.acquired: list[LimitClass] = []
        self.penalties: list[tuple[LimitClass, float]] = []
        self._lock = threading.Lock()

    def acquire(self, limit_class: LimitClass, n: int = 1) -> None:
        with self._lock:
            self.acquired.append(limit_class)

    def penalize(self, limit_class: LimitClass, wait_seconds: float) -> None:
        with self._lock:
            self.penalties.append((limit_class, wait_seconds))


@pytest.fixture
def fake() -> Iterator[FakeAttio]:
    with FakeAttio(tokens=[TOKEN], limits=False) as f:
        f.seed_from(SyntheticCRM(seed=4, contacts=250, source="attio"))
        yield f


def client_for(fake: FakeAttio, limiter: object = None) -> AttioClient:
    return AttioClient(fake.base_url, lambda: TOKEN, limiter, retry=RetryPolicy.fast())  # type: ignore[arg-type]


def test_query_pages_until_a_short_page(fake: FakeAttio) -> None:
    spy = SpyLimiter()
    with client_for(fake, spy) as c:
        pages = list(c.iter_pages("people", limit=100))
    assert [(off, len(p)) for off, p in pages] == [(0, 100), (100, 100), (200, 50)]
    assert set(spy.acquired) == {LimitClass.ATTIO_READ}
    ids = [r.record_id for _, p in pages for r in p]
    assert len(set(ids)) == 250 and ids == fake.record_ids("people")


def test_query_exact_multiple_ends_with_an_empty_page() -> None:
    with FakeAttio(tokens=[TOKEN], limits=False) as fake:
        for i in range(4):
            fake.create("companies", {"name": f"C{i}", "domains": [f"c{i}.test"]})
        with client_for(fake) as c:
            pages = list(c.iter_pages("companies", limit=2))
    assert [len(p) for _, p in pages] == [2, 2, 0]


def test_people_accessors_and_row_mapping(fake: FakeAttio) -> None:
    crm = SyntheticCRM(seed=4, contacts=250, source="attio")
    truth = next(crm.contacts())
    with client_for(fake) as c:
        rec = c.get("people", truth.crm_record_id)
        assert rec is not None
        assert rec.first_name == truth.first_name and rec.last_name == truth.last_name
        assert rec.email_addresses == [truth.email]
        assert rec.company_ref == ("companies", truth.company_crm_id)
        company = c.get("companies", str(truth.company_crm_id))
        assert company is not None and company.name == truth.company_name
        row = attio_person_to_row(
            rec,
            company_names={company.record_id: str(company.name)},
            custom={"lifecycle_stage": "lifecycle_stage"},
        )
        assert row["crm_record_id"] == truth.crm_record_id and row["email"] == truth.email
        assert row["company_name"] == truth.company_name and row["job_title"] == truth.job_title
        assert row["lifecycle_stage"] == truth.lifecycle_stage
        assert datetime.fromisoformat(row["crm_updated_at"]) == truth.crm_updated_at
        crow = attio_company_to_row(company)
        assert crow["domain"] == next(crm.companies()).domain and crow["industry"]
        deal = next(iter(c.iter_records("deals", limit=5)))
        drow = attio_deal_to_row(deal)
        assert drow["contact_crm_ids"] and drow["company_crm_id"] and drow["stage"]


def test_active_value_extraction_with_history() -> None:
    with FakeAttio(tokens=[TOKEN], limits=False, include_historic=True) as fake, client_for(fake) as c:
        rid = fake.create("people", {"name": "Ada Lovelace", "job_title": "Analyst",
                                     "email_addresses": ["ada@example.com"]})  # fmt: skip
        fake.update("people", rid, {"job_title": "Engineer"})
        c.update("people", rid, {"job_title": "Countess"})
        rec = c.get("people", rid)
        assert rec is not None
        assert len(rec.values["job_title"]) == 3  # historic values are in the payload
        assert rec.job_title == "Countess" and [v["value"] for v in rec.active("job_title")] == ["Countess"]
        assert rec.full_name == "Ada Lovelace" and rec.first_name == "Ada"
        assert rec.active_values()["job_title"][0]["active_until"] is None


def test_active_helper_on_a_documented_shape() -> None:
    rec = AttioRecord.model_validate({
        "id": {"workspace_id": "w", "object_id": "o", "record_id": "r"},
        "created_at": "2024-01-01T00:00:00.000000000Z".replace("000000000Z", "000Z"),
        "values": {
            "email_addresses": [
                {"active_from": "2024-01-01T00:00:00Z", "active_until": "2024-02-01T00:00:00Z",
                 "email_address": "old@x.com", "attribute_type": "email-address"},
                {"active_from": "2024-02-01T00:00:00Z", "active_until": None,
                 "email_address": "new@x.com", "attribute_type": "email-address"},
            ],
            "categories": [{"active_from": "2024-01-01T00:00:00Z", "active_until": None,
                            "option": {"title": "B2B"}, "attribute_type": "select"}],
        },
    })  # fmt: skip
    assert rec.email_addresses == ["new@x.com"] and rec.categories == ["B2B"]
    assert rec.last_changed_at() == datetime(2024, 2, 1, tzinfo=UTC)


def test_assert_is_an_idempotent_upsert(fake: FakeAttio) -> None:
    spy = SpyLimiter()
    with client_for(fake, spy) as c:
        a = c.assert_record(
            "people", "email_addresses", {"email_addresses": ["z@example.com"], "name": "Zed Z"}
        )
        b = c.assert_record(
            "people", "email_addresses", {"email_addresses": ["z@example.com"], "job_title": "VP"}
        )
        assert a.record_id == b.record_id and b.job_title == "VP" and b.full_name == "Zed Z"
        assert spy.acquired == [LimitClass.ATTIO_WRITE, LimitClass.ATTIO_WRITE]
        with pytest.raises(ValidationError) as exc:
            c.assert_record("people", "nope", {"nope": 1})
        assert exc.value.code == "value_not_found" and exc.value.status == 400


def test_update_appends_multiselect_and_delete(fake: FakeAttio) -> None:
    with client_for(fake) as c:
        rid = fake.record_ids("people")[0]
        rec = c.update("people", rid, {"email_addresses": ["second@example.com"]})
        assert "second@example.com" in rec.email_addresses and len(rec.email_addresses) == 2
        c.delete("people", rid)
        assert c.get("people", rid) is None
        created = c.create("companies", {"name": "Acme", "domains": ["acme.test"]})
        assert created.domains == ["acme.test"]
        with pytest.raises(ValidationError) as exc:
            c.create("companies", {"name": "Acme 2", "domains": ["acme.test"]})
        assert exc.value.code == "uniqueness_conflict"


def test_429_with_http_date_retry_after_penalizes_reads() -> None:
    spy = SpyLimiter()
    # waits capped at 0.2 s: 20 retries outlast the fake's window (its HTTP-date rounds up to the second);
    # at RetryPolicy.fast's 0.05 s they spanned about 1 s, and a fast machine could run out of them
    retry = dataclasses.replace(RetryPolicy.fast(), wait_cap=0.2)
    with (
        FakeAttio(tokens=[TOKEN], reads_per_second=3) as fake,
        AttioClient(fake.base_url, lambda: TOKEN, spy, retry=retry) as c,  # type: ignore[arg-type]
    ):
        rid = fake.create("people", {"name": "A B"})
        for _ in range(8):
            assert c.get("people", rid) is not None
        assert any(r.status == 429 for r in fake.request_log)
    assert spy.penalties and all(cls is LimitClass.ATTIO_READ for cls, _ in spy.penalties)
    assert all(0 <= w <= 0.2 for _, w in spy.penalties)  # the policy caps the wait


def test_http_date_is_read_as_seconds() -> None:
    with FakeAttio(tokens=[TOKEN], reads_per_second=1) as fake, client_for(fake) as c:
        fake.create("people", {"name": "A B"})
        fake.set_faults(rate_limit_storm=1)
        import requests

        resp = requests.get(f"{fake.base_url}/v2/objects/people/records/x", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=5)  # fmt: skip
        assert resp.status_code == 429 and resp.headers["Retry-After"].endswith("GMT")
        wait, name = c.http.rate_limit_wait(resp)
        resp.close()
        assert 0 <= wait <= 2 and name == "rate_limit_exceeded"
        assert resp.json() == {"status_code": 429, "type": "rate_limit_error", "code": "rate_limit_exceeded",
                               "message": "Rate limit exceeded, please try again later"}  # fmt: skip


def test_concurrent_write_conflict_is_retryable(fake: FakeAttio) -> None:
    with client_for(fake) as c:
        rid = fake.record_ids("people")[1]
        fake.conflict_rate = 1.0
        with pytest.raises(RetryableError) as exc:
            c.update("people", rid, {"job_title": "X"})
        assert exc.value.code == "concurrent_write_conflict" and exc.value.status == 409
        assert len(fake.requests_to(f"/records/{rid}", "PATCH")) == 3
        fake.conflict_rate = 0.0
        assert c.update("people", rid, {"job_title": "X"}).job_title == "X"


def test_auth_and_malformed(fake: FakeAttio) -> None:
    with AttioClient(fake.base_url, lambda: "bad", retry=RetryPolicy.fast()) as bad, pytest.raises(AuthError):
        bad.query("people", limit=1)
    with client_for(fake) as c:
        fake.set_faults(malformed_rate=1.0)
        with pytest.raises(MalformedResponseError) as exc:
            c.query("people", limit=1)
        assert "POST /v2/objects/people/records/query" in str(exc.value)
        assert TOKEN not in str(exc.value) and TOKEN not in repr(c)


def test_query_filter(fake: FakeAttio) -> None:
    crm = SyntheticCRM(seed=4, contacts=250, source="attio")
    email = next(crm.contacts()).email
    with client_for(fake) as c:
        got = c.query("people", filter={"email_addresses": email})
        assert [r.email_addresses[0] for r in got] == [email]
        with pytest.raises(ValidationError) as exc:
            c.query("people", filter={"no_such_attribute": "x"})
        assert exc.value.code == "filter_error"
