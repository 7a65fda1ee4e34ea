"""How a failed CRM call becomes a queue outcome: one mapping for the write-back drainer, hydration and
materialization jobs.

* 429: released until the CRM's wait is over, no attempt spent (the shared limiter was penalized already);
* 401/403: the connection's token, not the job: released for ``AUTH_RETRY_S``, no attempt spent; fetch jobs
  also flag the connection and hold the account's other jobs of their kind (one probe per interval);
* a wait for the rate limit that would outlast the drainer's lease: released, no attempt spent;
* other retryable errors: retried on the backoff ladder; the rest: dead-lettered with the CRM's reason.

Every error text an outcome carries is stored in a queue row the tenant can read: it is ``str(error)``, which
holds only status, category / code, correlation id, the request's method and path and our own wording
(:mod:`crmindex.crm.errors`), never the CRM's answer text.
"""

from __future__ import annotations

from crmindex.crm.connections import AUTH_RETRY_S, flag_auth_failure, hold_account_jobs
from crmindex.crm.errors import AuthError, CrmError, LeaseWouldExpire, RateLimited
from crmindex.platform.db import Conn
from crmindex.platform.queue import Outcome

AUTH_NOTE = "auth failed, waiting for the connection's token"
LEASE_NOTE = "released: the rate limit's wait would outlast the lease"


def outcome_for(error: CrmError) -> Outcome:
    """A write-back job's outcome after ``error``."""
    if isinstance(error, LeaseWouldExpire):
        return Outcome.release(max(error.wait_seconds, 1.0), f"{LEASE_NOTE}: {error}")
    if isinstance(error, RateLimited):
        return Outcome.release(max(error.wait_seconds, 1.0), f"rate limited ({error.limit_name}): {error}")
    if isinstance(error, AuthError):
        return Outcome.release(AUTH_RETRY_S, f"{AUTH_NOTE}: {error}")
    if error.retryable:
        return Outcome.retry(f"{type(error).__name__}: {error}")
    return Outcome.dead(f"{type(error).__name__}: {error}")


def fetch_outcome(conn: Conn, org_id: str, source: str, error: CrmError, *, kind: str) -> Outcome:
    """A fetch job's (``crm.job`` of ``kind``) outcome after ``error``; a rejected token flags the connection
    and holds the account's other jobs of that kind."""
    if isinstance(error, AuthError):
        out = outcome_for(error)
        flag_auth_failure(conn, org_id, source, str(error))
        hold_account_jobs(conn, "crm.job", org_id, source, out.error or AUTH_NOTE, kind=kind)
        return out
    if isinstance(error, RateLimited):
        return outcome_for(error)
    return Outcome.retry(str(error)) if error.retryable else Outcome.dead(str(error))
