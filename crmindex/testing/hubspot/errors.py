"""HubSpot's error answers: the standard body ``{"status": "error", "message", "correlationId", "category"}``
(plus ``context`` and the like), the 401s of a missing or revoked token, 5xx, and the 429 bodies with
``policyName`` (``TEN_SECONDLY_ROLLING`` for the ten-second window, ``SECONDLY`` for search)."""

from __future__ import annotations

from typing import Any

from crmindex.testing._http import Response
from crmindex.testing._server import new_uuid


class BadRequest(Exception):
    """Raised by a route for a 400 ``VALIDATION_ERROR``; ``extra`` joins the error body (e.g. ``context``)."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


def error(status: int, message: str, category: str, **extra: Any) -> Response:
    body = {
        "status": "error",
        "message": message,
        "correlationId": new_uuid(),
        "category": category,
        **extra,
    }
    return Response(status, body)


def bad_request(exc: BadRequest) -> Response:
    return error(400, str(exc), "VALIDATION_ERROR", **exc.extra)


def not_found(message: str, **extra: Any) -> Response:
    return error(404, message, "OBJECT_NOT_FOUND", **extra)


def unauthorized(reason: str) -> Response:
    if reason == "revoked":
        return error(
            401,
            "The OAuth token used to make this call expired or was revoked.",
            "EXPIRED_AUTHENTICATION",
        )
    return error(
        401,
        "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        "INVALID_AUTHENTICATION",
    )


def server_error(status: int) -> Response:
    return error(status, "internal error", "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE")


# the window behind each limit class: search has its own per-second limit, everything else the ten-second one
# and the account's daily budget ("You have reached your daily limit.", policyName DAILY: the usage guidelines'
# example body, reference A2)
_POLICIES = {"search": ("secondly", "SECONDLY"), "general": ("ten_secondly_rolling", "TEN_SECONDLY_ROLLING"),
             "daily": ("daily", "DAILY")}  # fmt: skip


def rate_limited(limit_class: str, retry_after: float | None) -> Response:
    window, policy = _POLICIES[limit_class if limit_class in _POLICIES else "general"]
    body = {"status": "error", "message": f"You have reached your {window} limit.", "errorType": "RATE_LIMIT",
            "correlationId": new_uuid(), "policyName": policy, "requestId": new_uuid()}  # fmt: skip
    # HubSpot sends Retry-After only sometimes
    return Response(429, body, {} if retry_after is None else {"Retry-After": f"{retry_after:g}"})
