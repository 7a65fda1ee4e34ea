"""The rate-limit protocol every CRM client call goes through.

One limiter per CRM account (connection) and limit class. The production implementation keeps its
state in Postgres (``crmindex.platform.limiter.PgRateLimiter``) so every worker and every sync of an account
shares it; ``LocalRateLimiter`` (in ``crmindex.platform.local_limiter``) is the in-process version.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from crmindex.errors import CrmIndexError


class LimitClass(StrEnum):
    """Which budget of an account a call spends."""

    HUBSPOT_GENERAL = "general"  # per-10-second window by tier (100 or 190 per 10 s)
    HUBSPOT_SEARCH = "search"  # CRM search endpoints: 5 requests per second
    ATTIO_READ = "read"  # 100 per second
    ATTIO_WRITE = "write"  # 25 per second


class WaitPastDeadline(CrmIndexError):
    """``acquire`` would have to wait ``wait_seconds``, past the caller's deadline: nothing was taken."""

    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = float(wait_seconds)
        super().__init__(f"the rate limit needs a wait of {self.wait_seconds:.2f} s, past the deadline")


class LimitHeld(WaitPastDeadline):
    """The account's calls of this class are held for ``wait_seconds`` (``reason``: ``DAILY`` when the daily budget
    is spent, until the account's midnight): nothing was taken; the caller gives up instead of sleeping."""

    def __init__(self, wait_seconds: float, reason: str = "held") -> None:
        super().__init__(wait_seconds)
        self.reason = reason
        self.args = (f"the account's calls are held for {self.wait_seconds:.0f} s ({reason})",)


class RateLimiter(Protocol):
    """Blocks until the account may spend ``n`` permits of ``limit_class``.

    With ``deadline`` (a ``time.monotonic()`` instant), a wait that would end at or after it raises
    :class:`WaitPastDeadline` at once, taking nothing (the write-back drainer's lease).
    """

    def acquire(self, limit_class: LimitClass, n: int = 1, *, deadline: float | None = None) -> None: ...

    def penalize(self, limit_class: LimitClass, wait_seconds: float) -> None:
        """A 429 was seen: nobody of this account may call ``limit_class`` for ``wait_seconds``."""
        ...


class Unlimited:
    """A limiter that never waits (for fakes with limits off and unit tests)."""

    def acquire(self, limit_class: LimitClass, n: int = 1, *, deadline: float | None = None) -> None:
        return None

    def penalize(self, limit_class: LimitClass, wait_seconds: float) -> None:
        return None


@runtime_checkable
class AdaptiveLimiter(Protocol):
    """A limiter that also learns from what the CRM reports (HubSpot's ``X-HubSpot-RateLimit-*`` headers):
    :class:`crmindex.platform.limiter.PgRateLimiter`."""

    def observe(self, limit_class: LimitClass | str, permits: int, per_seconds: float) -> bool:
        """The CRM's own limit for the class (its tier); an operator's configuration wins."""
        ...

    def observe_daily(
        self,
        daily_limit: int,
        daily_remaining: int,
        resets_at: datetime | None,
        reserve: int,
        classes: Sequence[str],
    ) -> bool:
        """The account's daily budget; at or below ``reserve`` calls left, ``classes`` are held until
        ``resets_at``. Returns whether they are held."""
        ...

    def hold(self, classes: Sequence[str], until: datetime, reason: str) -> None:
        """Nobody of the account calls these classes before ``until``."""
        ...
