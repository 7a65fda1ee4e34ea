"""One error model for both CRMs (HubSpot, Attio), used by the clients, the sync and the write-back drainer.

Every error names its ``source`` ("hubspot" | "attio"), the HTTP ``status`` (None for transport failures),
the CRM's ``message`` and whether a retry can help (``retryable``). Messages never contain tokens: they are
built from the CRM's error body and the request's method and path only (never headers or query strings
that could carry credentials).

* :class:`RateLimited` — 429 (``wait_seconds``, ``limit_name`` such as ``TEN_SECONDLY_ROLLING``, ``DAILY``,
  ``SECONDLY`` or Attio's ``rate_limit_exceeded``).
* :class:`RetryableError` — 5xx, 423/477, timeouts, connection errors, Attio 409 ``concurrent_write_conflict``.
* :class:`NotRetryableError` and its :class:`ValidationError` — 4xx the caller must fix.
* :class:`AuthError` — 401/403; :class:`NotFoundError` — 404 (but Attio's 404 ``merge_in_progress`` is a
  :class:`MergeInProgress`, retryable: the record exists, its merge is not applied yet).
* :class:`MalformedResponseError` — a body that is not the JSON the endpoint returns.
* :class:`LeaseWouldExpire` — a wait for the account's rate limit would outlast the caller's deadline (a
  drainer's lease): nothing was sent.

What an error says is stored where a tenant can read it (a queue row's ``last_error``, the connection's
``auth_error``, ``crmindex status``), and a ``base_url`` may point anywhere the operator allowed. So ``str()`` and
``repr()`` hold only our own wording, the HTTP status, the CRM's category / code and correlation id (kept only
when they are plain identifiers) and the request's method and path: never the answer's text. A non-JSON body is
never kept at all; the CRM's JSON ``message`` stays on ``.message`` for callers that need it (and is flagged
``message_from_crm``), never in ``str()``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import requests

from crmindex.errors import CrmIndexError

RETRYABLE_STATUSES = frozenset({408, 423, 477, 500, 502, 503, 504, 520, 521, 522, 523, 524})


_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,79}")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9.+\-]{1,40}/[A-Za-z0-9.+\-]{1,60}")


def identifier(value: object) -> str | None:
    """A category, code, limit name or correlation id from a CRM's answer, kept only when it is a plain
    identifier: an answer cannot smuggle its text into an error message this way."""
    if value is None:
        return None
    text = str(value)
    return text if _IDENTIFIER.fullmatch(text) else None


def status_phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status (never the server's own, which it may fill with anything)."""
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"HTTP {status}"


class CrmError(CrmIndexError):
    """A CRM API call failed."""

    retryable: bool = False
    summary = "the CRM call failed"  # what str() says when the message is the CRM's own

    def __init__(
        self,
        message: str,
        *,
        source: str,
        status: int | None = None,
        endpoint: str | None = None,
        category: str | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        retryable: bool | None = None,
        message_from_crm: bool = False,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.message_from_crm = message_from_crm
        # the input field the CRM refused (a property we sent: the client sets it only for names it sent)
        self.field = identifier(field)
        self.source = source
        self.status = status
        self.endpoint = endpoint
        self.category = identifier(category)
        self.code = identifier(code)
        self.details: dict[str, Any] = dict(details or {})
        self.correlation_id = identifier(correlation_id)
        if retryable is not None:
            self.retryable = retryable
        super().__init__(self._text())

    def _text(self) -> str:
        """Status, category / code, our wording, the request's method and path, the correlation id."""
        head = f"{self.source}"
        if self.status is not None:
            head += f" {self.status}"
        if self.category or self.code:
            head += f" {self.category or self.code}"
        if self.category and self.code and self.code != self.category:
            head += f"/{self.code}"
        what = self.summary if self.message_from_crm else self.message
        if self.field:
            what += f" (field {self.field})"
        where = f" ({self.endpoint})" if self.endpoint else ""
        corr = f" [correlation id {self.correlation_id}]" if self.correlation_id else ""
        return f"{head}: {what}{where}{corr}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._text()!r})"


class RateLimited(CrmError):
    """429: the account is over a limit; nothing was processed, retry after ``wait_seconds``."""

    retryable = True
    summary = "rate limited"

    def __init__(
        self, wait_seconds: float, limit_name: str, message: str = "rate limited", **kw: Any
    ) -> None:
        self.wait_seconds = float(wait_seconds)
        self.limit_name = limit_name
        kw.setdefault("status", 429)
        kw.setdefault("source", "crm")
        super().__init__(message, **kw)

    @property
    def limit_name(self) -> str:
        """The limit hit (``TEN_SECONDLY_ROLLING``, ``DAILY``, ``rate_limit_exceeded`` ...; ``unknown``)."""
        return self._limit_name

    @limit_name.setter
    def limit_name(self, value: str) -> None:
        self._limit_name = identifier(value) or "unknown"


class LeaseWouldExpire(RateLimited):
    """Waiting ``wait_seconds`` for the account's rate limit (the shared limiter, or a 429's wait) would end
    after the caller's deadline (:func:`crmindex.crm.http.send_deadline`: a drainer's lease). Nothing was sent
    (or the 429'd call was not processed); the job goes back in line without spending an attempt."""

    def __init__(self, wait_seconds: float, limit_name: str = "limiter", **kw: Any) -> None:
        kw.setdefault("status", None)
        super().__init__(
            wait_seconds,
            limit_name,
            f"waiting {float(wait_seconds):.2f} s for the rate limit ({identifier(limit_name) or 'unknown'}) "
            "would outlast the lease: not sent",
            **kw,
        )


class RetryableError(CrmError):
    """A transient failure: 5xx, timeout, connection error, Attio ``concurrent_write_conflict``."""

    retryable = True
    summary = "temporary failure"


class MergeInProgress(RetryableError):
    """Attio 404 ``merge_in_progress``: the record is the new record of a merge still being applied ("reading the
    merged record will return a 404 with the merge_in_progress error code until it completes", docs.attio.com "Merge
    two records"). Not gone: read it again later."""

    summary = "the record is being merged"

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        # a fetch of many records that met one: what was read (id -> record) and the ids not read (retry them)
        self.partial: dict[str, Any] = {}
        self.pending: tuple[str, ...] = ()


class NotRetryableError(CrmError):
    """A 4xx the caller has to fix (retrying the same request cannot succeed)."""

    retryable = False
    summary = "the CRM refused the request"


class ValidationError(NotRetryableError):
    """The CRM rejected the input (400/409/414/422...); ``category``/``code`` and ``details`` say why."""

    summary = "the CRM rejected the input"


class SearchLimitExceeded(ValidationError):
    """HubSpot search: paging beyond the 10,000-result cap of one query (restart with ``hs_object_id GT``)."""

    summary = "search paging beyond the CRM's result cap"


class AuthError(NotRetryableError):
    """401/403: the token is missing, expired, revoked or lacks a scope."""

    summary = "the CRM refused the token"


class NotFoundError(NotRetryableError, LookupError):
    """404: the record (or endpoint) does not exist."""

    summary = "not found"


class MalformedResponseError(CrmError):
    """The CRM answered with a body that is not the JSON the endpoint returns (retrying may help)."""

    retryable = True
    summary = "unexpected answer"


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def endpoint_of(response: requests.Response) -> str:
    """``METHOD /path`` of the request (no host, no query string: those may carry credentials)."""
    req = response.request
    method = (req.method or "?") if req is not None else "?"
    url = (req.url or "") if req is not None else (response.url or "")
    path = urlsplit(url).path or "/"
    return f"{method} {path}"


def error_from_response(
    response: requests.Response, source: str, *, wait_seconds: float | None = None
) -> CrmError:
    """The typed error for a non-2xx response of ``source`` ("hubspot" | "attio").

    ``wait_seconds`` is the caller's reading of a 429 (it knows the source's conventions); without it
    a 429 carries ``Retry-After`` seconds when present, else 1 second.
    """
    status = response.status_code
    endpoint = endpoint_of(response)
    body = _json_or_none(response)
    info: dict[str, Any] = body if isinstance(body, dict) else {}
    crm_message = info.get("message")
    if crm_message:  # the CRM's own words: on .message for callers, never in str() (see the module docstring)
        message, from_crm = str(crm_message), True
    elif body is None and response.content:  # not JSON: an HTML error page, a proxy, a service that is no CRM
        message = f"{status_phrase(status)} (a non-JSON answer of {len(response.content)} bytes)"
        from_crm = False
    else:
        message, from_crm = status_phrase(status), False
    category = info.get("category") or info.get("type") or info.get("errorType")
    code = info.get("code") or info.get("subCategory")
    details: dict[str, Any] = {
        k: info[k]
        for k in ("context", "errors", "subCategory", "links", "policyName", "type", "code")
        if k in info
    }
    common: dict[str, Any] = {
        "source": source,
        "status": status,
        "endpoint": endpoint,
        "category": None if category is None else str(category),
        "code": None if code is None else str(code),
        "details": details,
        "correlation_id": None if info.get("correlationId") is None else str(info.get("correlationId")),
        "message_from_crm": from_crm,
    }
    if status == 429:
        limit_name = str(info.get("policyName") or info.get("code") or "unknown")
        wait = wait_seconds if wait_seconds is not None else (_retry_after_seconds(response) or 1.0)
        return RateLimited(wait, limit_name, message, **common)
    if status in (401, 403):
        return AuthError(message, **common)
    if status == 404 and str(info.get("code") or "") == "merge_in_progress":
        return MergeInProgress(message, **common)
    if status == 404:
        return NotFoundError(message, **common)
    if status == 409 and str(info.get("code") or "") == "concurrent_write_conflict":
        return RetryableError(message, **common)
    if status in RETRYABLE_STATUSES or status >= 500:
        return RetryableError(message, **common)
    if 400 <= status < 500:
        return ValidationError(message, **common)
    return MalformedResponseError(f"unexpected HTTP status {status}", **common)


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def hubspot_item_error(item: Mapping[str, Any], *, endpoint: str | None = None) -> CrmError:
    """A typed error for one entry of a HubSpot 207 ``errors`` array (``StandardError``)."""
    category = str(item.get("category") or "")
    message = str(item.get("message") or "batch item failed")
    try:
        status = int(str(item.get("status") or 0)) or None
    except ValueError:
        status = None
    kw: dict[str, Any] = {
        "source": "hubspot",
        "status": status,
        "endpoint": endpoint,
        "category": category or None,
        "code": None if item.get("subCategory") is None else str(item.get("subCategory")),
        "details": {k: item[k] for k in ("context", "errors", "id") if k in item},
        "message_from_crm": item.get("message") is not None,
    }
    if category == "OBJECT_NOT_FOUND" or status == 404:
        return NotFoundError(message, **kw)
    if category == "RATE_LIMITS":
        return RateLimited(1.0, "unknown", message, **kw)
    if status is not None and (status >= 500 or status in RETRYABLE_STATUSES):
        return RetryableError(message, **kw)
    return ValidationError(message, **kw)


def describe_body(body: Any) -> str:
    """The shape of an unexpected body, never its content (for MalformedResponseError messages)."""
    if isinstance(body, dict):
        return f"a JSON object of {len(body)} keys"
    if isinstance(body, list):
        return f"a JSON array of {len(body)} items"
    if body is None:
        return "null"
    return {str: "a JSON string", bool: "a JSON boolean", int: "a JSON number", float: "a JSON number"}.get(
        type(body), type(body).__name__
    )


def media_type(value: str | None) -> str:
    """A Content-Type header's media type when it is a plain one (``text/html``), else ``?``."""
    kind = (value or "").split(";", 1)[0].strip()
    return kind if _MEDIA_TYPE.fullmatch(kind) else "?"
