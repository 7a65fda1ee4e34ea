"""Attio's error answers: ``{"status_code", "type", "code", "message"}``; 429s carry an HTTP-date
``Retry-After`` (whole seconds, "usually the following second")."""

from __future__ import annotations

import email.utils
import math
import time

from crmindex.testing._http import Response


class Invalid(Exception):
    """Raised for a request Attio refuses: ``code`` and ``status`` go into the answer."""

    def __init__(self, message: str, code: str = "validation_type", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def error(
    status: int, type_: str, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        status, {"status_code": status, "type": type_, "code": code, "message": message}, headers or {}
    )


def invalid(status: int, code: str, message: str) -> Response:
    return error(status, "invalid_request_error", code, message)


def not_found(rid: str) -> Response:
    return invalid(404, "not_found", f'Record with ID "{rid}" not found.')


def merge_in_progress(rid: str) -> Response:
    """Reading the new record of an asynchronous merge before it completes (docs.attio.com "Merge two records":
    "reading the merged record will return a 404 with the merge_in_progress error code until it completes")."""
    return invalid(404, "merge_in_progress", f'Record with ID "{rid}" is being merged. Please try again.')


def uniqueness_conflict(attribute: str, owner: str | None = None) -> Response:
    """A create (``owner``: the record that holds the value) or update that would duplicate a unique value."""
    held = "" if owner is None else f" ({owner})"
    return invalid(400, "uniqueness_conflict",
                   f'Uniqueness violation: a record with this "{attribute}" already exists{held}.')  # fmt: skip


def unauthorized(reason: str) -> Response:
    return error(401, "auth_error", "invalid_token" if reason != "missing" else "missing_token",
                 "The access token is invalid, revoked or missing.")  # fmt: skip


def server_error(status: int) -> Response:
    return error(status, "internal_server_error", "internal_server_error", "An unexpected error occurred.")


def rate_limited(retry_after: float | None, clock_skew: float = 0.0) -> Response:
    """429 ``rate_limit_exceeded`` with ``Retry-After`` as an HTTP-date, "usually the following second"
    (docs.attio.com/rest-api/guides/rate-limiting). The date is Attio's clock: ``clock_skew`` (seconds) is how far
    it lags the client's (a negative skew, or an answer that took a while to arrive, yields a date already past
    when it is read: whole seconds, so even without skew it may be less than a second away)."""
    retry_at = math.floor(time.time() + clock_skew) + (
        1 if retry_after is None else max(1, math.ceil(retry_after))
    )
    return error(429, "rate_limit_error", "rate_limit_exceeded", "Rate limit exceeded, please try again later",
                 {"Retry-After": email.utils.formatdate(retry_at, usegmt=True)})  # fmt: skip
