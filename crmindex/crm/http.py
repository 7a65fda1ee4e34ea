"""The shared HTTP transport of the CRM clients: auth, rate-limit permits, 429 handling, retries, typed errors.

Every call:

1. takes a permit of its :class:`~crmindex.platform.limits.LimitClass` from the account's limiter;
2. asks the token provider for the token (per request, so OAuth refresh and rotation fit) and sends it as
   ``Authorization: Bearer``; the token never appears in logs, exceptions or ``repr``;
3. on 429 reads the server's wait (HubSpot: ``Retry-After`` when present, else by ``policyName``: about a
   10-second window for ``TEN_SECONDLY_ROLLING``, 1 s for ``SECONDLY``, a long wait for ``DAILY``; Attio:
   the ``Retry-After`` HTTP-date), calls ``limiter.penalize`` so every worker of the account backs off,
   and retries (bounded); a wait longer than ``RetryPolicy.give_up_after`` raises :class:`RateLimited`;
4. retries retryable errors (5xx, timeouts, connection errors, malformed bodies, Attio 409
   ``concurrent_write_conflict``) with exponential backoff and jitter, ``RetryPolicy.max_attempts`` in all;
5. raises the typed error of :mod:`crmindex.crm.errors` otherwise.

Inside ``with send_deadline(at):`` (a drainer's lease) no wait ends after ``at``: a limiter or 429 wait that would
raises :class:`~crmindex.crm.errors.LeaseWouldExpire` (nothing sent), a retry whose backoff would raises the
last error, and no request starts after ``at``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from crmindex.crm.errors import (
    CrmError,
    LeaseWouldExpire,
    MalformedResponseError,
    RateLimited,
    RetryableError,
    describe_body,
    error_from_response,
    media_type,
)
from crmindex.platform.limits import LimitClass, LimitHeld, RateLimiter, Unlimited, WaitPastDeadline

log = logging.getLogger("crmindex.crm.http")

TokenProvider = Callable[[], str]
# Called with every answer (any status) of a transport's source: a client reads what the CRM reports about its
# limits there (HubSpot's X-HubSpot-RateLimit-* headers). For a 429 it may return the wait (seconds) it knows
# better than the transport (HubSpot DAILY: until the account's midnight). It must not raise.
ResponseObserver = Callable[[LimitClass, requests.Response], float | None]
_DEADLINE: ContextVar[float | None] = ContextVar("crmindex_send_deadline", default=None)


@contextmanager
def send_deadline(at: float | None) -> Iterator[None]:
    """CRM calls made inside (this thread / context) must be sent by ``at`` (``time.monotonic()``; None: no
    deadline). The write-back drainer sets it to what is left of its lease, so no limiter or 429 wait, and no
    retry, makes it send after another worker may have taken the job over."""
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> float | None:
    """The deadline set by :func:`send_deadline` around this call, if any."""
    return _DEADLINE.get()


@dataclass(frozen=True)
class RetryPolicy:
    """How a transport retries. Tests use tiny delays (``RetryPolicy.fast()``)."""

    max_attempts: int = 5  # total tries of a call failing with retryable errors (5xx, timeouts, ...)
    base_delay: float = 0.5  # first backoff; doubles per attempt
    max_delay: float = 30.0
    jitter: float = 0.5  # each delay is multiplied by 1 + jitter * random()
    max_rate_limit_retries: int = 8  # 429s retried per call before RateLimited is raised
    give_up_after: float = 120.0  # a 429 asking for a longer wait is raised, not waited out
    wait_cap: float | None = None  # clamp every 429 wait (tests); None = honour the server
    hubspot_rolling_wait: float = 10.0  # TEN_SECONDLY_ROLLING without Retry-After: the window
    hubspot_secondly_wait: float = 1.0  # SECONDLY (search) without Retry-After
    hubspot_daily_wait: float = 3600.0  # DAILY: until the account's midnight (unknown here): raised
    default_429_wait: float = 3.0  # a 429 that says nothing about the wait (Airbyte's default)
    # Attio's Retry-After is an HTTP-date of its own clock, "usually the following second": one already past
    # (clock skew, a slow answer) is waited at least this long, never retried at once
    attio_min_429_wait: float = 1.0

    @classmethod
    def fast(cls, max_attempts: int = 3) -> RetryPolicy:
        """Millisecond delays for tests and local fakes."""
        return cls(
            max_attempts=max_attempts,
            base_delay=0.005,
            max_delay=0.05,
            jitter=0.5,
            max_rate_limit_retries=20,
            wait_cap=0.05,
            give_up_after=120.0,
        )

    def backoff(self, attempt: int) -> float:
        delay = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        return float(delay * (1.0 + self.jitter * random.random()))


@dataclass
class ApiResponse:
    """A successful response: status and parsed JSON body (None for empty bodies such as 204)."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


class _BearerAuth(requests.auth.AuthBase):
    """Sets the bearer header at send time (also keeps requests from consulting ~/.netrc)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "_BearerAuth('***')"


@dataclass
class TransportStats:
    calls: int = 0  # HTTP requests sent
    retries: int = 0  # retries after retryable errors
    rate_limited: int = 0  # 429s seen
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, calls: int = 0, retries: int = 0, rate_limited: int = 0) -> None:
        with self.lock:
            self.calls += calls
            self.retries += retries
            self.rate_limited += rate_limited


class HttpTransport:
    """A ``requests.Session`` wrapper shared by the HubSpot and Attio clients."""

    def __init__(
        self,
        source: str,
        base_url: str,
        token_provider: TokenProvider,
        limiter: RateLimiter | None = None,
        *,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        user_agent: str = "crmindex/0.1",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not callable(token_provider):
            raise TypeError("token_provider must be a callable returning the token (not the token itself)")
        self.source = source
        self.base_url = base_url.rstrip("/")
        self._token_provider = token_provider
        self.limiter: RateLimiter = limiter if limiter is not None else Unlimited()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = user_agent
        self._session.headers["Accept"] = "application/json"
        self._sleep = sleep
        self.on_response: ResponseObserver | None = None
        self._not_before: dict[LimitClass, float] = {}
        self._nb_lock = threading.Lock()
        self.stats = TransportStats()

    def __repr__(self) -> str:
        return f"HttpTransport(source={self.source!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- 429 ---------------------------------------------------------------------------------------
    def rate_limit_wait(self, response: requests.Response) -> tuple[float, str]:
        """(seconds to wait, limit name) for a 429 of this transport's source."""
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        info: dict[str, Any] = body if isinstance(body, dict) else {}
        header = response.headers.get("Retry-After")
        policy = self.retry
        if self.source == "hubspot":
            name = str(info.get("policyName") or "unknown")
            message = str(info.get("message") or "").lower()
            wait: float | None = _seconds_or_date(header)
            if wait is None:
                if name == "DAILY" or "daily" in message:
                    name, wait = "DAILY", policy.hubspot_daily_wait
                elif name == "SECONDLY" or "secondly limit" in message:
                    wait = policy.hubspot_secondly_wait
                elif name == "TEN_SECONDLY_ROLLING" or "ten_secondly" in message:
                    wait = policy.hubspot_rolling_wait
                else:
                    wait = policy.default_429_wait
            return wait, name
        name = str(info.get("code") or "rate_limit_exceeded")
        wait = _seconds_or_date(header)
        return max(policy.default_429_wait if wait is None else wait, policy.attio_min_429_wait), name

    def _hold(self, limit_class: LimitClass, until: float) -> None:
        with self._nb_lock:
            if until > self._not_before.get(limit_class, 0.0):
                self._not_before[limit_class] = until

    def _wait_turn(self, limit_class: LimitClass, endpoint: str) -> None:
        deadline = _DEADLINE.get()
        try:
            if deadline is None:
                self.limiter.acquire(limit_class)
            else:
                self.limiter.acquire(limit_class, deadline=deadline)
        except LimitHeld as exc:  # the account's calls are held (a spent daily budget): nothing sent
            raise RateLimited(
                exc.wait_seconds,
                exc.reason,
                f"the account's calls are held ({exc.reason}) for {exc.wait_seconds:.0f} s: not sent",
                source=self.source,
                endpoint=endpoint,
                status=None,
            ) from None
        except WaitPastDeadline as exc:
            raise LeaseWouldExpire(
                exc.wait_seconds, "limiter", source=self.source, endpoint=endpoint
            ) from None
        # a limiter that does not block (Unlimited) must not make us hammer the server after a 429
        with self._nb_lock:
            until = self._not_before.get(limit_class, 0.0)
        remaining = until - time.monotonic()
        if deadline is not None and max(remaining, 0.0) >= deadline - time.monotonic():
            raise LeaseWouldExpire(max(remaining, 0.0), "limiter", source=self.source, endpoint=endpoint)
        if remaining > 0:
            self._sleep(remaining)

    # -- requests ----------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        limit_class: LimitClass,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
        timeout: float | tuple[float, float] | None = None,
        limited: bool = True,
    ) -> ApiResponse:
        """Send one API call (with permits, retries and typed errors); 2xx returns the parsed body.

        ``idempotent=False`` (creates): a request that may have reached the server (read timeout, 5xx) is
        not retried, so a retry can never create a duplicate; the retryable error is raised instead.
        ``limited=False``: no permit is taken (a client's own bookkeeping call made while the account is held).
        """
        endpoint = f"{method.upper()} {path}"
        url = self.base_url + path
        attempt = 0
        rl_retries = 0
        while True:
            attempt += 1
            if limited:
                self._wait_turn(limit_class, endpoint)
            started = time.monotonic()
            sent = True
            try:
                token = self._token_provider()
                self.stats.add(calls=1)
                resp = self._session.request(
                    method.upper(),
                    url,
                    params=params,
                    json=json,
                    auth=_BearerAuth(token),
                    timeout=timeout if timeout is not None else self.timeout,
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                sent = not isinstance(exc, requests.ConnectTimeout)
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                err: CrmError = RetryableError(
                    f"{kind} ({type(exc).__name__})", source=self.source, endpoint=endpoint
                )
            else:
                elapsed_ms = (time.monotonic() - started) * 1000
                log.debug("%s %s -> %s in %.0f ms", self.source, endpoint, resp.status_code, elapsed_ms)
                known_wait = self._observe(limit_class, resp)
                if resp.status_code == 429:
                    wait, name = self.rate_limit_wait(resp)
                    if known_wait is not None:
                        wait = known_wait
                    if self.retry.wait_cap is not None:
                        wait = min(wait, self.retry.wait_cap)
                    self.stats.add(rate_limited=1)
                    self.limiter.penalize(limit_class, wait)
                    self._hold(limit_class, time.monotonic() + wait)
                    rl_err = error_from_response(resp, self.source, wait_seconds=wait)
                    resp.close()
                    if isinstance(rl_err, RateLimited):
                        rl_err.limit_name = name
                    if wait > self.retry.give_up_after or rl_retries >= self.retry.max_rate_limit_retries:
                        raise rl_err
                    deadline = _DEADLINE.get()
                    if deadline is not None and time.monotonic() + wait >= deadline:
                        raise LeaseWouldExpire(
                            wait, getattr(rl_err, "limit_name", name), source=self.source, endpoint=endpoint
                        ) from rl_err
                    rl_retries += 1
                    attempt -= 1  # a 429 was not processed: it does not spend an attempt
                    log.info("%s %s rate limited (%s); waiting %.2f s", self.source, endpoint, name, wait)
                    continue
                if 200 <= resp.status_code < 300:
                    try:
                        return ApiResponse(resp.status_code, self._parse(resp, endpoint), dict(resp.headers))
                    except MalformedResponseError as exc:
                        err = exc
                else:
                    err = error_from_response(resp, self.source)
                resp.close()
            may_retry = err.retryable and (idempotent or not sent)
            if may_retry and attempt < self.retry.max_attempts:
                delay = self.retry.backoff(attempt)
                deadline = _DEADLINE.get()
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise err  # no time left to retry before the deadline: the caller retries later
                self.stats.add(retries=1)
                log.warning(
                    "%s %s failed (%s); retry %d/%d in %.3f s",
                    self.source,
                    endpoint,
                    err,
                    attempt,
                    self.retry.max_attempts - 1,
                    delay,
                )
                self._sleep(delay)
                continue
            raise err

    def _observe(self, limit_class: LimitClass, resp: requests.Response) -> float | None:
        """Hand the answer to :attr:`on_response`; its bookkeeping never fails the call."""
        observer = self.on_response
        if observer is None:
            return None
        try:
            return observer(limit_class, resp)
        except Exception:  # bookkeeping: logged, the call goes on
            log.warning("%s: reading the answer's rate-limit headers failed", self.source, exc_info=True)
            return None

    def _parse(self, resp: requests.Response, endpoint: str) -> Any:
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise MalformedResponseError(
                f"response is not JSON (content-type {media_type(resp.headers.get('Content-Type'))}, "
                f"{len(resp.content)} bytes)",
                source=self.source,
                status=resp.status_code,
                endpoint=endpoint,
            ) from None

    def malformed(self, endpoint: str, what: str, body: Any) -> MalformedResponseError:
        """An error for a JSON body that lacks what ``endpoint`` returns."""
        return MalformedResponseError(
            f"unexpected body: {what}; got {describe_body(body)}", source=self.source, endpoint=endpoint
        )


def _seconds_or_date(value: str | None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
