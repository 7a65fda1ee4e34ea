"""The one error model (status -> typed error, per source), the transport's 429 reading, LocalRateLimiter."""

from __future__ import annotations

import json
import threading
import time
from email.utils import formatdate
from typing import Any

import pytest
import requests

from crmindex.crm.errors import (
    AuthError,
    NotFoundError,
    NotRetryableError,
    RateLimited,
    RetryableError,
    ValidationError,
    error_from_response,
    hubspot_item_error,
)
from crmindex.crm.http import HttpTransport, RetryPolicy
from crmindex.errors import CrmIndexError
from crmindex.platform.limits import LimitClass
from crmindex.platform.local_limiter import LocalRateLimiter, Rate


def response(
    status: int, body: Any = None, headers: dict[str, str] | None = None, url: str = ""
) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    r.headers.update(headers or {})
    req = requests.Request(
        "POST", url or "https://api.hubapi.com/crm/v3/objects/contacts/batch/read?hapikey=SECRET"
    )
    r.request = req.prepare()
    r.url = r.request.url or ""
    return r


def test_hubspot_statuses_map_to_types() -> None:
    body = {"status": "error", "message": "Property values were not valid", "correlationId": "c-1",
            "category": "VALIDATION_ERROR", "errors": [{"message": "bad email"}]}  # fmt: skip
    err = error_from_response(response(400, body), "hubspot")
    assert isinstance(err, ValidationError) and isinstance(err, NotRetryableError) and not err.retryable
    assert err.category == "VALIDATION_ERROR" and err.correlation_id == "c-1"
    assert (
        err.details["errors"] == [{"message": "bad email"}]
        and err.message == "Property values were not valid"
    )
    assert err.endpoint == "POST /crm/v3/objects/contacts/batch/read"
    assert "SECRET" not in str(err)  # the query string is never part of a message
    assert isinstance(err, CrmIndexError)
    for status, cls in ((401, AuthError), (403, AuthError), (404, NotFoundError), (500, RetryableError),
                        (502, RetryableError), (503, RetryableError), (504, RetryableError), (423, RetryableError),
                        (409, ValidationError), (422, ValidationError), (414, ValidationError)):  # fmt: skip
        e = error_from_response(response(status, {"message": "m"}), "hubspot")
        assert type(e) is cls, status
        assert e.source == "hubspot" and e.status == status


def test_429_and_retry_after() -> None:
    body = {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
            "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24", "policyName": "DAILY",
            "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd"}  # fmt: skip
    e = error_from_response(response(429, body), "hubspot", wait_seconds=12.5)
    assert isinstance(e, RateLimited) and e.limit_name == "DAILY" and e.wait_seconds == 12.5 and e.retryable
    e2 = error_from_response(response(429, {}, {"Retry-After": "3"}), "attio")
    assert isinstance(e2, RateLimited) and e2.wait_seconds == 3.0


def test_attio_errors() -> None:
    conflict = {"status_code": 409, "type": "invalid_request_error", "code": "concurrent_write_conflict",
                "message": "The record was modified by another request while this write was being validated. "
                           "Please try again."}  # fmt: skip
    e = error_from_response(response(409, conflict), "attio")
    assert isinstance(e, RetryableError) and e.code == "concurrent_write_conflict"
    nf = error_from_response(response(404, {"status_code": 404, "type": "invalid_request_error",
                                            "code": "not_found", "message": "Record not found."}), "attio")  # fmt: skip
    assert isinstance(nf, NotFoundError) and nf.category == "invalid_request_error"
    v = error_from_response(response(400, {"status_code": 400, "type": "invalid_request_error",
                                           "code": "value_not_found", "message": "no attr"}), "attio")  # fmt: skip
    assert isinstance(v, ValidationError) and v.code == "value_not_found"
    html = error_from_response(response(502, b"<html>upstream secret-7 down</html>"), "attio")
    assert isinstance(html, RetryableError) and html.message == "bad gateway (a non-JSON answer of 35 bytes)"
    assert "secret-7" not in str(html) + repr(html)  # a non-JSON answer is never quoted (issue 13)


def test_hubspot_item_errors() -> None:
    nf = hubspot_item_error({"status": "error", "category": "OBJECT_NOT_FOUND", "message": "gone",
                             "context": {"ids": ["1"]}})  # fmt: skip
    assert isinstance(nf, NotFoundError) and nf.details["context"] == {"ids": ["1"]}
    val = hubspot_item_error({"status": "error", "category": "VALIDATION_ERROR", "message": "bad"})
    assert isinstance(val, ValidationError)


def make_transport(source: str) -> HttpTransport:
    return HttpTransport(source, "http://127.0.0.1:9", lambda: "tok", retry=RetryPolicy())


def test_rate_limit_wait_reading() -> None:
    hs = make_transport("hubspot")
    rolling = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
               "policyName": "TEN_SECONDLY_ROLLING"}  # fmt: skip
    assert hs.rate_limit_wait(response(429, rolling)) == (10.0, "TEN_SECONDLY_ROLLING")
    secondly = {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "policyName": "SECONDLY",
    }
    assert hs.rate_limit_wait(response(429, secondly)) == (1.0, "SECONDLY")
    assert hs.rate_limit_wait(response(429, {"policyName": "DAILY"}))[1] == "DAILY"
    assert hs.rate_limit_wait(response(429, rolling, {"Retry-After": "2"})) == (2.0, "TEN_SECONDLY_ROLLING")
    assert hs.rate_limit_wait(response(429, {}))[0] == 3.0  # nothing said: Airbyte's default
    at = make_transport("attio")
    date = formatdate(time.time() + 2, usegmt=True)
    wait, name = at.rate_limit_wait(response(429, {"code": "rate_limit_exceeded"}, {"Retry-After": date}))
    assert 0.5 <= wait <= 2.0 and name == "rate_limit_exceeded"
    hs.close()
    at.close()


def test_daily_limit_is_raised_not_waited() -> None:
    class Spy:
        penalties: list[float] = []

        def acquire(self, limit_class: LimitClass, n: int = 1) -> None:
            return None

        def penalize(self, limit_class: LimitClass, wait_seconds: float) -> None:
            self.penalties.append(wait_seconds)

    spy = Spy()
    t = HttpTransport("hubspot", "http://127.0.0.1:9", lambda: "tok", spy)

    class FakeSession(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *a: Any, **kw: Any) -> requests.Response:  # type: ignore[override]
            return response(429, {"status": "error", "message": "You have reached your daily limit.",
                                  "policyName": "DAILY"})  # fmt: skip

    t._session.close()
    t._session = FakeSession()
    with pytest.raises(RateLimited) as exc:
        t.request("GET", "/crm/v3/objects/contacts", limit_class=LimitClass.HUBSPOT_GENERAL)
    assert exc.value.limit_name == "DAILY" and exc.value.wait_seconds == 3600.0 and spy.penalties == [3600.0]
    t.close()


def test_local_limiter_never_exceeds_its_rate_under_4_threads() -> None:
    rate = Rate(per_second=40.0, burst=4)
    lim = LocalRateLimiter({LimitClass.ATTIO_WRITE: rate})
    stamps: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 0.8

    def worker() -> None:
        while time.monotonic() < stop:
            lim.acquire(LimitClass.ATTIO_WRITE)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    # GCRA bound: in any window of W seconds at most burst + rate * W grants
    for i, s in enumerate(stamps):
        for w in (0.1, 0.25, 0.5):
            n = sum(1 for x in stamps[i:] if x - s <= w)
            assert n <= rate.burst + rate.per_second * w + 1, (w, n)
    assert len(stamps) >= 20  # and it did let work through


def test_local_limiter_window_and_penalty() -> None:
    assert Rate.window(100, 10.0, burst=10) == Rate(9.0, 10)
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    lim = LocalRateLimiter({LimitClass.HUBSPOT_SEARCH: Rate(5.0, 1)}, clock=lambda: now[0], sleep=sleep)
    lim.acquire(LimitClass.HUBSPOT_SEARCH)
    lim.acquire(LimitClass.HUBSPOT_SEARCH)
    assert slept == [pytest.approx(0.2)]
    lim.penalize(LimitClass.HUBSPOT_SEARCH, 10.0)
    lim.acquire(LimitClass.HUBSPOT_SEARCH)
    assert now[0] == pytest.approx(10.2)
    assert not lim.try_acquire(LimitClass.HUBSPOT_SEARCH)
    with pytest.raises(ValueError):
        lim.acquire(LimitClass.HUBSPOT_SEARCH, n=2)
    assert "GENERAL" in repr(lim)
