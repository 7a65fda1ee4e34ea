"""One error model for both CRMs (HubSpot, Attio), used by the clients, the sync and the write-back drainer.

Every error names its ``source`` ("hubspot" | "attio"), the HTTP ``status`` (None for transport failures),
the CRM's ``message`` and whether a retry can help (``retryable``). Messages never contain tokens: they are
built from the CRM's error body and the request's method and path only (never headers or query strings
that could carry credentials).

* :class:`RateLimited` — 429 (``wait_seconds``, ``limit_name`` such as ``TEN_SECONDLY_ROLLING``, ``DAILY``,
  ``SECONDLY`` or Attio's ``rate_limit_exceeded``).
* :class:`RetryableError` — 5xx, 423/477, timeouts, connection errors, Attio 409 ``concurrent_write_conflict``.
* :class:`NotRetryableError` and its :class:`ValidationError` — 4xx the caller must fix.
* :class:`AuthError` — 401/403; :class:`NotFoundError` — 404.
* :class:`MalformedResponseError` — a body that is not the JSON the endpoint returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from crmindex.errors import CrmIndexError

RETRYABLE_STATUSES = frozenset({408, 423, 477, 500, 502, 503, 504, 520, 521, 522, 523, 524})


class CrmError(CrmIndexError):
    """A CRM API call failed."""

    retryable: bool = False

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
    ) -> None:
        self.message = message
        self.source = source
        self.status = status
        self.endpoint = endpoint
        self.category = category
        self.code = code
        self.details: dict[str, Any] = dict(details or {})
        self.correlation_id = correlation_id
        if retryable is not None:
            self.retryable = retryable
        super().__init__(self._text())

    def _text(self) -> str:
        head = f"{self.source}"
        if self.status is not None:
            head += f" {self.status}"
        if self.category or self.code:
            head += f" {self.category or self.code}"
        where = f" ({self.endpoint})" if self.endpoint else ""
        return f"{head}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._text()!r})"


class RateLimited(CrmError):
    """429: the account is over a limit; nothing was processed, retry after ``wait_seconds``."""

    retryable = True

    def __init__(
        self, wait_seconds: float, limit_name: str, message: str = "rate limited", **kw: Any
    ) -> None:
        self.wait_seconds = float(wait_seconds)
        self.limit_name = limit_name
        kw.setdefault("status", 429)
        kw.setdefault("source", "crm")
        super().__init__(message, **kw)


class RetryableError(CrmError):
    """A transient failure: 5xx, timeout, connection error, Attio ``concurrent_write_conflict``."""

    retryable = True


class NotRetryableError(CrmError):
    """A 4xx the caller has to fix (retrying the same request cannot succeed)."""

    retryable = False


class ValidationError(NotRetryableError):
    """The CRM rejected the input (400/409/414/422...); ``category``/``code`` and ``details`` say why."""


class SearchLimitExceeded(ValidationError):
    """HubSpot search: paging beyond the 10,000-result cap of one query (restart with ``hs_object_id GT``)."""


class AuthError(NotRetryableError):
    """401/403: the token is missing, expired, revoked or lacks a scope."""


class NotFoundError(NotRetryableError, LookupError):
    """404: the record (or endpoint) does not exist."""


class MalformedResponseError(CrmError):
    """The CRM answered with a body that is not the JSON the endpoint returns (retrying may help)."""

    retryable = True


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


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
    message = str(info.get("message") or "") or (
        _short(response.text) if response.text and body is None else response.reason or f"HTTP {status}"
    )
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
    }
    if status == 429:
        limit_name = str(info.get("policyName") or info.get("code") or "unknown")
        wait = wait_seconds if wait_seconds is not None else (_retry_after_seconds(response) or 1.0)
        return RateLimited(wait, limit_name, message, **common)
    if status in (401, 403):
        return AuthError(message, **common)
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
    }
    if category == "OBJECT_NOT_FOUND" or status == 404:
        return NotFoundError(message, **kw)
    if category == "RATE_LIMITS":
        return RateLimited(1.0, "unknown", message, **kw)
    if status is not None and (status >= 500 or status in RETRYABLE_STATUSES):
        return RetryableError(message, **kw)
    return ValidationError(message, **kw)


def describe_body(body: Any) -> str:
    """A short, printable description of an unexpected body (for MalformedResponseError messages)."""
    try:
        return _short(json.dumps(body), 120)
    except (TypeError, ValueError):
        return type(body).__name__
