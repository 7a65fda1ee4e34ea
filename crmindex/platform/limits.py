"""The rate-limit protocol every CRM client call goes through.

One limiter per CRM account (connection) and limit class. The production implementation keeps its
state in Postgres (``crmindex.platform.limiter.PgRateLimiter``) so every worker and every sync of an account
shares it; ``LocalRateLimiter`` (in ``crmindex.platform.local_limiter``) is the in-process version.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class LimitClass(StrEnum):
    """Which budget of an account a call spends."""

    HUBSPOT_GENERAL = "general"  # per-10-second window by tier (100 or 190 per 10 s)
    HUBSPOT_SEARCH = "search"  # CRM search endpoints: 5 requests per second
    ATTIO_READ = "read"  # 100 per second
    ATTIO_WRITE = "write"  # 25 per second


class RateLimiter(Protocol):
    """Blocks until the account may spend ``n`` permits of ``limit_class``."""

    def acquire(self, limit_class: LimitClass, n: int = 1) -> None: ...

    def penalize(self, limit_class: LimitClass, wait_seconds: float) -> None:
        """A 429 was seen: nobody of this account may call ``limit_class`` for ``wait_seconds``."""
        ...


class Unlimited:
    """A limiter that never waits (for fakes with limits off and unit tests)."""

    def acquire(self, limit_class: LimitClass, n: int = 1) -> None:
        return None

    def penalize(self, limit_class: LimitClass, wait_seconds: float) -> None:
        return None
