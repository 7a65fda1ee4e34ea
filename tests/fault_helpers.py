"""Shared pieces of the CRM-side fault matrix (``tests/test_faults_crm.py``): the faults, their typed
errors, connecting an org to a fake CRM, and comparing the index with the fake."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from crmindex.crm.attio.mapping import attio_person_to_row
from crmindex.crm.attio.models import AttioRecord
from crmindex.crm.errors import AuthError, CrmError, MalformedResponseError, RateLimited, RetryableError
from crmindex.crm.http import RetryPolicy
from crmindex.crm.protocols import CrmWriter, WriteResult
from crmindex.platform.limiter import PgRateLimiter
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.connections import connect_with_token
from tests.test_drainer import TOKEN, TOKEN_ENV

Conn = psycopg.Connection[tuple[object, ...]]
Fake = FakeHubSpot | FakeAttio
SECRET_ENV = "CRMINDEX_TEST_FAULTS_SECRET"
SECRET = "faults-webhook-secret"
CLIENT_TIMEOUT = 0.25  # the clients' timeout in these tests; a hang or latency of HANG exceeds it
HANG = 0.6
FAST = RetryPolicy.fast(max_attempts=3)
STORM_S = 3600.0  # "until recovered": the tests end storms themselves (except the time-boxed ones)
OBJECTS = {"people": "contacts", "companies": "companies", "deals": "deals"}
INDEX = {"contacts": "crm.contact_index", "companies": "crm.company_index", "deals": "crm.deal_index"}


@dataclass(frozen=True)
class Fault:
    """One CRM-side fault: how to start it, how the CRM recovers, and the typed error a caller sees."""

    name: str
    error: type[CrmError]
    text: str  # part of the error's message

    def inject(self, fake: Fake) -> None:
        if self.name == "5xx":
            fake.storm("error", STORM_S, error_status=503)
        elif self.name == "timeout":  # held past the client's timeout, then dropped unanswered
            fake.storm("timeout", STORM_S, hang_seconds=HANG)
        elif self.name == "slow":  # answered (a write lands) only after the client gave up
            fake.set_faults(latency=HANG)
        elif self.name in ("truncated", "wrong_shape"):
            fake.storm("malformed", STORM_S, malformed_kind=self.name)
        elif self.name == "revoked":
            fake.revoke_token(TOKEN)
        elif self.name == "429":  # HubSpot: no Retry-After (as usual); Attio: the next second
            fake.storm("rate_limit", STORM_S)
        else:
            raise ValueError(self.name)

    def recover(self, fake: Fake) -> None:
        if self.name == "revoked":
            fake.add_token(TOKEN)
        else:
            fake.clear_faults()

    def check(self, exc: BaseException | None) -> None:
        """``exc`` is this fault's typed error (never a bare exception, never carrying the token)."""
        assert isinstance(exc, self.error), repr(exc)
        assert self.text in str(exc), str(exc)
        assert TOKEN not in str(exc) and TOKEN not in repr(exc)

    def __str__(self) -> str:
        return self.name


FAULTS = {
    f.name: f
    for f in (
        Fault("5xx", RetryableError, "503"),
        Fault("timeout", RetryableError, "timed out"),
        Fault("slow", RetryableError, "timed out"),
        Fault("truncated", MalformedResponseError, "not JSON"),
        Fault("wrong_shape", MalformedResponseError, "unexpected body"),
        Fault("revoked", AuthError, "401"),
        Fault("429", RateLimited, "429"),
    )
}


def faults(*names: str) -> list[Fault]:
    return [FAULTS[n] for n in names]


def connect_fake(db: Conn, dsn: str, org: uuid.UUID, fake: Fake, per_second: int = 1000) -> None:
    """Connect ``org`` to the fake (webhook routing by portal / workspace id; the token and the webhook secret of
    ``$SECRET_ENV`` stored sealed) and give the account's shared limiter room for tests."""
    hubspot = isinstance(fake, FakeHubSpot)
    settings: dict[str, Any] = {}
    if isinstance(fake, FakeAttio):
        settings["attio_object_ids"] = {fake.object_ids[slug]: slug for slug in OBJECTS}
    connect_with_token(
        db,
        None,
        org,
        "hubspot" if hubspot else "attio",
        os.environ.get(TOKEN_ENV) or TOKEN,
        account_id=str(fake.portal_id) if isinstance(fake, FakeHubSpot) else fake.workspace_id,
        base_url=fake.base_url,
        settings=settings,
        webhook_secret=os.environ.get(SECRET_ENV),
    )
    lim = PgRateLimiter(dsn, org, fake.source)
    try:
        for cls in ("general",) if hubspot else ("read", "write"):
            lim.configure(cls, per_second, 1.0)
    finally:
        lim.close()


def auth_error(db: Conn, org: uuid.UUID, source: str) -> str | None:
    row = db.execute(
        "SELECT auth_error FROM crm.connection WHERE org_id = %s AND crm_source = %s", (org, source)
    ).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


def live_ids(db: Conn, org: uuid.UUID, source: str, object_type: str) -> set[str]:
    return {
        str(r[0])
        for r in db.execute(
            f"SELECT crm_record_id FROM {INDEX[object_type]} "
            "WHERE org_id = %s AND crm_source = %s AND deleted_at IS NULL",
            (org, source),
        )
    }


def attio_mismatches(db: Conn, org: uuid.UUID, fake: FakeAttio) -> list[str]:
    """Every difference between the fake Attio workspace and the index: live ids per object, and the
    people's names, email and title."""
    out: list[str] = []
    for slug, object_type in OBJECTS.items():
        want, got = set(fake.record_ids(slug)), live_ids(db, org, "attio", object_type)
        out += [f"{slug} {r}: not in the index" for r in sorted(want - got)]
        out += [f"{slug} {r}: live in the index, not in Attio" for r in sorted(got - want)]
    rows = {
        str(r[0]): tuple(r[1:])
        for r in db.execute(
            "SELECT crm_record_id, first_name, last_name, email, job_title FROM crm.contact_index "
            "WHERE org_id = %s AND crm_source = 'attio'",
            (org,),
        )
    }
    for rid in fake.record_ids("people"):
        raw = fake.record("people", rid)
        assert raw is not None
        row = attio_person_to_row(AttioRecord.model_validate(raw))
        want_row = (
            row["first_name"],
            row["last_name"],
            (row["email"] or "").lower() or None,
            row["job_title"],
        )
        if rows.get(rid) != want_row:
            out.append(f"person {rid}: Attio {want_row} != index {rows.get(rid)}")
    return out


class AfterFirstCall:
    """The real writer; ``then`` runs once, right after its first call (a fault that starts mid-drain)."""

    def __init__(self, writer: CrmWriter, then: Callable[[], None]) -> None:
        self.writer, self.then = writer, then
        self.source, self.max_batch = writer.source, writer.max_batch
        self.calls = 0

    def _after(self, results: list[WriteResult]) -> list[WriteResult]:
        self.calls += 1
        if self.calls == 1:
            self.then()
        return results

    def update(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        return self._after(self.writer.update(entity_type, items))

    def create(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        return self._after(self.writer.create(entity_type, items))
