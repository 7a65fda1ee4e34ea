"""HubSpotClient <-> FakeHubSpot round trips: paging, batches, search, associations, merges, errors."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from crmindex.crm.errors import (
    AuthError,
    MalformedResponseError,
    NotFoundError,
    RateLimited,
    RetryableError,
    SearchLimitExceeded,
    ValidationError,
)
from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.hubspot.mapping import hubspot_company_to_row, hubspot_contact_to_row, hubspot_deal_to_row
from crmindex.platform.limits import LimitClass
from crmindex.testing import FakeHubSpot
from crmindex.testing.synthetic import SyntheticCRM

TOKEN = "pat-na1-SECRET-0123456789"


class SpyLimiter:
    """Records permits and penalties; never blocks."""

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


@pytest.fixture(scope="module")
def seeded() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(tokens=[TOKEN], limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=11, contacts=250))
        yield fake


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(tokens=[TOKEN], limits=False) as f:
        f.seed_from(SyntheticCRM(seed=5, contacts=120))
        yield f


def client_for(fake: FakeHubSpot, limiter: object = None, **kw: object) -> HubSpotClient:
    kw.setdefault("retry", RetryPolicy.fast())
    return HubSpotClient(fake.base_url, lambda: TOKEN, limiter, portal_id=fake.portal_id, **kw)  # type: ignore[arg-type]


def test_list_pages_and_resume_from_saved_cursor(seeded: FakeHubSpot) -> None:
    with client_for(seeded) as c:
        pages = list(c.iter_pages("contacts"))
        assert [len(p.results) for p in pages] == [100, 100, 50]
        assert pages[-1].after is None and pages[0].after is not None
        all_ids = [o.id for p in pages for o in p.results]
        assert all_ids == sorted(all_ids, key=int) and len(set(all_ids)) == 250
        # a sync checkpoints page 1's cursor, dies, and resumes from it
        saved = pages[0].after
        resumed = [o.id for p in c.iter_pages("contacts", after=saved) for o in p.results]
        assert resumed == all_ids[100:]
        first = pages[0].results[0]
        assert all(v is None or isinstance(v, str) for v in first.properties.values())
        assert "hs_merged_object_ids" in first.properties  # merge awareness requested by default
        row = hubspot_contact_to_row(first)
        assert row["crm_record_id"] == first.id and row["email"] == first.properties["email"]
        assert row["deleted_at"] is None and row["company_crm_id"]


def test_list_limit_and_properties_are_sent(seeded: FakeHubSpot) -> None:
    seeded.clear_log()
    with client_for(seeded) as c:
        page = c.list_page("companies", limit=7, properties=["name", "domain"])
    assert len(page.results) == 7
    req = seeded.requests_to("/crm/v3/objects/companies")[-1]
    assert req.query["limit"] == ["7"] and req.query["archived"] == ["false"]
    assert set(page.results[0].properties) >= {"name", "domain", "hs_object_id", "createdate"}
    row = hubspot_company_to_row(page.results[0])
    assert row["name"] and row["domain"]


def test_batch_read_chunks_at_100_and_reports_missing(seeded: FakeHubSpot) -> None:
    with client_for(seeded) as c:
        ids = [o.id for o in c.iter_objects("contacts")]
        seeded.clear_log()
        result = c.batch_read("contacts", [*ids, "999999999"])
    calls = seeded.requests_to("/batch/read")
    assert len(calls) == 3  # 251 ids -> 100 + 100 + 51
    assert len(result.objects) == 250 and result.missing == ["999999999"]
    assert result.errors == []


def test_get_and_not_found(seeded: FakeHubSpot) -> None:
    with client_for(seeded) as c:
        some = next(iter(c.iter_objects("contacts")))
        got = c.get("contacts", some.id)
        assert got.id == some.id
        by_email = c.get("contacts", str(some.properties["email"]), id_property="email")
        assert by_email.id == some.id
        with pytest.raises(NotFoundError) as exc:
            c.get("contacts", "424242")
        assert exc.value.status == 404 and "GET /crm/v3/objects/contacts/424242" in str(exc.value)


def test_batch_create_update_upsert_with_207_partial_failures(fake: FakeHubSpot) -> None:
    with client_for(fake) as c:
        created = c.batch_create(
            "contacts",
            [
                {"email": "ada@example.com", "firstname": "Ada"},
                {"email": "not-an-email", "firstname": "Bad"},
                {"email": "grace@example.com", "lifecyclestage": "salesqualifiedlead"},
            ],
        )
        assert [r.ok for r in created] == [True, False, True]
        assert isinstance(created[1].error, ValidationError) and "invalid" in created[1].error.message
        ada_id = created[0].crm_record_id
        assert ada_id is not None and created[2].crm_record_id not in (None, ada_id)

        updated = c.batch_update(
            "contacts",
            [
                (ada_id, {"jobtitle": "CTO"}),
                ("123", {"jobtitle": "x"}),
                (ada_id, {"lifecyclestage": "bogus"}),
            ],
        )
        assert updated[0].ok and updated[0].object is not None
        assert updated[0].object.properties["jobtitle"] == "CTO"
        assert isinstance(updated[1].error, NotFoundError)
        assert (
            isinstance(updated[2].error, ValidationError) and updated[2].error.category == "VALIDATION_ERROR"
        )

        upserted = c.batch_upsert(
            "contacts",
            [("ada@example.com", {"lastname": "Lovelace"}), ("new@example.com", {"firstname": "N"})],
        )
        assert upserted[0].ok and upserted[0].object is not None and upserted[0].object.new is False
        assert upserted[0].crm_record_id == ada_id
        assert upserted[1].ok and upserted[1].object is not None and upserted[1].object.new is True
        assert fake.properties("contacts", ada_id)["lastname"] == "Lovelace"
        # idempotent: the same upsert again creates nothing
        again = c.batch_upsert("contacts", [("new@example.com", {"firstname": "N"})])
        assert again[0].crm_record_id == upserted[1].crm_record_id


def test_batch_write_chunks_at_100(fake: FakeHubSpot) -> None:
    with client_for(fake) as c:
        fake.clear_log()
        res = c.batch_create("companies", [{"name": f"Co {i}", "domain": f"co{i}.test"} for i in range(230)])
    assert all(r.ok for r in res) and len({r.crm_record_id for r in res}) == 230
    assert len(fake.requests_to("/batch/create")) == 3


def test_search_filters_sorts_total_and_search_limit_class(seeded: FakeHubSpot) -> None:
    spy = SpyLimiter()
    with client_for(seeded, spy) as c:
        since = datetime(2000, 1, 1, tzinfo=UTC)
        page = c.search(
            "contacts",
            filter_groups=[
                {
                    "filters": [
                        {
                            "propertyName": "lastmodifieddate",
                            "operator": "GTE",
                            "value": str(int(since.timestamp() * 1000)),
                        },
                        {"propertyName": "hs_object_id", "operator": "GT", "value": "100000010"},
                    ]
                }
            ],
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            limit=20,
        )
    assert page.total == 240 and len(page.results) == 20 and page.after == "20"
    assert page.results[0].id == "100000011"
    assert spy.acquired == [LimitClass.HUBSPOT_SEARCH]


def test_search_cap_is_a_typed_error_and_iter_modified_restarts_by_id() -> None:
    with FakeHubSpot(tokens=[TOKEN], limits=False, search_cap=100) as fake:
        fake.seed_from(SyntheticCRM(seed=2, contacts=260))
        with client_for(fake, search_cap=100) as c:
            with pytest.raises(SearchLimitExceeded) as exc:
                c.search("contacts", limit=50, after=100)
            assert exc.value.status == 400 and "limited to 100 total results" in exc.value.message
            assert exc.value.details["cap"] == 100
            lo, hi = datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1)
            ids = [o.id for o in c.iter_modified("contacts", lo, hi, page_size=40)]
    assert len(ids) == 260 and ids == sorted(ids, key=int) and len(set(ids)) == 260
    bodies = [r for r in fake.request_log if r.path.endswith("/search")]
    assert all(r.status == 200 for r in bodies[1:])


def test_real_cap_message_shape() -> None:
    with FakeHubSpot(tokens=[TOKEN], limits=False) as fake, client_for(fake) as c:
        with pytest.raises(SearchLimitExceeded) as exc:
            c.search("contacts", limit=200, after=9_900)
        err = exc.value
        assert err.category == "VALIDATION_ERROR" and err.correlation_id
        assert "10000 total results" in err.message


def test_associations_v4(seeded: FakeHubSpot) -> None:
    with client_for(seeded) as c:
        contacts = [o for o in c.list_page("contacts", limit=5).results]
        companies = c.contact_companies([o.id for o in contacts])
        for o in contacts:
            assert companies[o.id] == o.properties.get("associatedcompanyid")
        deals = c.list_page("deals").results
        links = c.deal_associations([d.id for d in deals])
        d0 = deals[0]
        contact_ids, company_id = links[d0.id]
        assert contact_ids and company_id
        row = hubspot_deal_to_row(d0, contact_crm_ids=contact_ids, company_crm_id=company_id)
        assert row["contact_crm_ids"] == sorted(contact_ids, key=int) and row["company_crm_id"] == company_id
        # an id without associations maps to an empty list (207 NO_ASSOCIATIONS_FOUND is not an error)
        assert c.batch_read_associations("deals", "contacts", ["987654"]) == {"987654": []}


def test_merge_awareness(fake: FakeHubSpot) -> None:
    with client_for(fake) as c:
        a, b = [o.id for o in c.list_page("contacts", limit=2).results]
        fake.merge("contacts", a, b)
        res = c.batch_read("contacts", [a, b])
        assert res.missing == [] and res.redirects == {b: a}
        primary = res.get(b)
        assert primary is not None and primary.id == a and primary.merged_ids == [b]
        third = c.list_page("contacts", limit=3).results[2].id
        merged = c.merge("contacts", a, third)
        assert merged.id == a
        assert c.get("contacts", a).merged_ids == [b, third]
        assert c.get("contacts", third).id == a  # a merged-away id reads as its primary


def test_archive_restore_and_archived_listing(fake: FakeHubSpot) -> None:
    with client_for(fake) as c:
        target = c.list_page("contacts", limit=1).results[0]
        c.archive("contacts", target.id)
        assert target.id in c.batch_read("contacts", [target.id]).missing
        archived = c.list_page("contacts", archived=True).results
        assert [o.id for o in archived] == [target.id] and archived[0].archived
        row = hubspot_contact_to_row(archived[0])
        assert row["deleted_at"] is not None and archived[0].archived_at is not None
        assert archived[0].updated_at == target.updated_at  # archiving does not bump the modified date
        fake.restore("contacts", target.id)
        assert target.id in c.batch_read("contacts", [target.id]).objects


def test_rate_limit_429_penalizes_and_retries() -> None:
    spy = SpyLimiter()
    with FakeHubSpot(tokens=[TOKEN], burst_limit=4, burst_window=0.3) as fake:
        fake.seed_from(SyntheticCRM(seed=1, contacts=20))
        with client_for(fake, spy) as c:
            for _ in range(10):
                assert c.list_page("contacts", limit=2).results
        statuses = [r.status for r in fake.request_log]
    assert 429 in statuses and statuses.count(200) == 10
    assert spy.penalties and all(cls is LimitClass.HUBSPOT_GENERAL for cls, _ in spy.penalties)


def test_429_storm_reads_policy_name_and_gives_up_when_bounded() -> None:
    spy = SpyLimiter()
    with FakeHubSpot(tokens=[TOKEN], limits=False) as fake:
        fake.set_faults(rate_limit_storm=2)
        with client_for(fake, spy) as c:
            assert c.list_page("contacts").results == []
            assert len(spy.penalties) == 2
            fake.set_faults(rate_limit_storm=50)
            policy = RetryPolicy(max_rate_limit_retries=1, wait_cap=0.01)
            with client_for(fake, spy, retry=policy) as c2, pytest.raises(RateLimited) as exc:
                c2.list_page("contacts")
            assert exc.value.limit_name == "TEN_SECONDLY_ROLLING" and exc.value.status == 429
            assert exc.value.retryable


def test_search_rate_limit_is_secondly() -> None:
    with FakeHubSpot(tokens=[TOKEN]) as fake:
        fake.seed_from(SyntheticCRM(seed=1, contacts=10))
        with client_for(fake, SpyLimiter()) as c:
            for _ in range(8):
                c.search("contacts", limit=1)
        limited = [r for r in fake.request_log if r.status == 429]
        assert limited and all(r.limit_class == "search" for r in limited)


def test_5xx_retried_then_succeeds_or_raises() -> None:
    with FakeHubSpot(tokens=[TOKEN], limits=False) as fake, client_for(fake) as c:
        fake.set_faults(fail_next=[500, 503])
        assert c.list_page("contacts").results == []
        fake.set_faults(fail_next=[502] * 5)
        with pytest.raises(RetryableError) as exc:
            c.list_page("contacts")
        assert exc.value.status == 502 and exc.value.retryable
        assert c.http.stats.retries >= 4


def test_create_is_not_retried_after_a_5xx() -> None:
    with FakeHubSpot(tokens=[TOKEN], limits=False) as fake, client_for(fake) as c:
        fake.set_faults(fail_next=[500])
        with pytest.raises(RetryableError):
            c.batch_create("contacts", [{"email": "once@example.com"}])
        assert len(fake.requests_to("/batch/create")) == 1


def test_timeouts_become_retryable_error_after_retries() -> None:
    with FakeHubSpot(tokens=[TOKEN], limits=False) as fake:
        fake.set_faults(timeout_rate=1.0, hang_seconds=0.3)
        with client_for(fake, timeout=(1.0, 0.1)) as c:
            started = time.monotonic()
            with pytest.raises(RetryableError) as exc:
                c.list_page("contacts")
            assert "timed out" in exc.value.message and exc.value.status is None
            assert time.monotonic() - started < 2
        assert len([r for r in fake.request_log if r.status == 0]) >= 1


def test_401_auth_error_and_revocation() -> None:
    with FakeHubSpot(tokens=[TOKEN], limits=False) as fake:
        with HubSpotClient(fake.base_url, lambda: "wrong", retry=RetryPolicy.fast()) as bad:
            with pytest.raises(AuthError) as exc:
                bad.list_page("contacts")
            assert exc.value.status == 401 and exc.value.category == "INVALID_AUTHENTICATION"
            assert not exc.value.retryable
        with client_for(fake) as c:
            c.list_page("contacts")
            fake.revoke_token(TOKEN)
            with pytest.raises(AuthError) as exc2:
                c.list_page("contacts")
            assert exc2.value.category == "EXPIRED_AUTHENTICATION"


def test_malformed_json_names_the_endpoint() -> None:
    with FakeHubSpot(tokens=[TOKEN], limits=False) as fake, client_for(fake) as c:
        fake.set_faults(malformed_rate=1.0)
        with pytest.raises(MalformedResponseError) as exc:
            c.batch_read("contacts", ["1"])
        assert "POST /crm/v3/objects/contacts/batch/read" in str(exc.value)
        assert exc.value.endpoint == "POST /crm/v3/objects/contacts/batch/read"


def test_token_never_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeHubSpot(tokens=["other"], limits=False) as fake, client_for(fake) as c:
        fake.set_faults(fail_next=[500])
        errors: list[Exception] = []
        for call in (lambda: c.list_page("contacts"), lambda: c.batch_read("contacts", ["1"])):
            try:
                call()
            except Exception as exc:
                errors.append(exc)
        assert errors and all(isinstance(e, AuthError) for e in errors)
        texts = [repr(c), repr(c.http), *map(str, errors), *map(repr, errors)]
        texts += [r.getMessage() for r in caplog.records]
        assert caplog.records
        assert not any(TOKEN in t for t in texts)


def test_token_provider_is_called_per_request(fake: FakeHubSpot) -> None:
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return TOKEN

    with HubSpotClient(fake.base_url, provider, retry=RetryPolicy.fast()) as c:
        c.list_page("contacts")
        c.list_page("companies")
    assert len(calls) == 2
    with pytest.raises(TypeError):
        HubSpotClient(fake.base_url, TOKEN)  # type: ignore[arg-type]
