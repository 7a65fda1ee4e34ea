"""The composition root (crmindex.app.CrmIndex): one object wires pool, key ring, clients, limiters, budgets,
workers and the webhook receiver for the CLI, the demo, WSGI and user code alike."""

from __future__ import annotations

import io
import uuid
from typing import Any

import psycopg
import pytest

import crmindex
from crmindex.app import CrmIndex
from crmindex.crm.http import RetryPolicy
from crmindex.index.writes import upsert_contacts
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.queue import enqueue_job
from crmindex.platform.secrets import SecretBox
from crmindex.testing import FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM

Conn = psycopg.Connection[tuple[Any, ...]]
ORG = uuid.UUID("00000000-0000-4000-8000-0000000a9901")
OTHER = uuid.UUID("00000000-0000-4000-8000-0000000a9902")
TOKEN = "app-test-token"


def test_the_public_surface_builds_the_root() -> None:
    assert crmindex.CrmIndex is CrmIndex
    assert "CrmIndex" in crmindex.__all__ and "Workers" in crmindex.__all__


def test_an_org_bound_connection_is_unbound_before_it_goes_back(db: Conn, db_dsn: str) -> None:
    crmindex.ensure_org(db, ORG, "a")
    crmindex.ensure_org(db, OTHER, "b")
    with CrmIndex(db_dsn, pool_size=1) as idx:  # one connection: the second block reuses the first's
        with idx.connection(ORG) as conn:
            assert conn.execute("SELECT crm.current_org_id()").fetchone() == (ORG,)
            with pytest.raises(crmindex.OrgMismatchError):
                crmindex.search(conn, OTHER, "anyone")
        with idx.connection() as conn:
            assert conn.execute("SELECT crm.current_org_id()").fetchone() == (None,)


def test_workers_and_bulk_calls_share_one_budget_per_account(db_dsn: str) -> None:
    with CrmIndex(db_dsn) as idx:
        a = idx.budget(ORG, "hubspot")
        assert idx.budget(str(ORG), "hubspot") is a and idx.budget(ORG, "attio") is not a
        workers = idx.workers()
        assert workers.budgets[(str(ORG), "hubspot")] is a  # the materialization worker's budget map


def test_queued_materializations_keep_to_the_budget_through_the_root(db: Conn, db_dsn: str) -> None:
    """What ``crmindex drain`` runs is built by CrmIndex.workers(): queued materializations of an account take
    permits from its budget (5 a minute here), the rest waits with no attempt spent."""
    crm = SyntheticCRM(seed=43, contacts=9)
    box = SecretBox.from_env()
    with FakeHubSpot(limits=False, tokens=[TOKEN]) as fake:
        fake.seed_from(crm)
        connect_with_token(db, box, ORG, "hubspot", TOKEN, account_id="9901", base_url=fake.base_url)
        upsert_contacts(db, ORG, "hubspot", [c.index_row() for c in crm.contacts()])  # type: ignore[arg-type]
        limiter = PgRateLimiter(db_dsn, ORG, "hubspot")
        try:
            limiter.configure("materialize", 5, 60.0)
        finally:
            limiter.close()
        for c in crm.contacts():
            enqueue_job(db, ORG, "materialize", {"crm_record_id": c.crm_record_id, "reason": "bulk"},
                        source="hubspot", dedupe_key=f"contact:hubspot:{c.crm_record_id}")  # fmt: skip
        with CrmIndex(db_dsn, allowed_base_urls=[fake.base_url], retry=RetryPolicy.fast()) as idx:
            counts = idx.workers().run_once()
        fetched = [r for r in fake.request_log if r.path.endswith("/batch/read")]
    assert counts["materialize"] >= 9
    assert db.execute("SELECT count(*) FROM crm.contact_record WHERE org_id = %s", (ORG,)).fetchone() == (5,)
    waiting = db.execute(
        "SELECT DISTINCT status, attempts FROM crm.job WHERE org_id = %s AND kind = 'materialize' "
        "AND status <> 'completed'",
        (ORG,),
    ).fetchall()
    assert waiting == [("pending", 0)]
    assert len(fetched) >= 1


def test_the_root_refuses_to_send_a_token_to_a_host_it_was_not_allowed(db: Conn, db_dsn: str) -> None:
    box = SecretBox.from_env()
    with FakeHubSpot(limits=False, tokens=[TOKEN]) as fake:
        connect_with_token(db, box, ORG, "hubspot", TOKEN, account_id="9901", base_url=fake.base_url)
        with CrmIndex(db_dsn, allowed_base_urls=(), retry=RetryPolicy.fast()) as idx:
            fetcher = idx.clients.fetcher(ORG, "hubspot")
            with pytest.raises(crmindex.CrmIndexError, match="not allowed"):
                fetcher.fetch("contacts", ["1"])
        assert fake.request_log == []


def test_the_wsgi_entry_point_is_configured_from_the_environment(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crmindex.app as app

    monkeypatch.setenv("DATABASE_URL", db_dsn)
    monkeypatch.setattr(app, "_default", None)
    answers: list[str] = []
    body = app.application(
        {"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()},
        lambda status, headers: answers.append(status),
    )
    assert answers == ["200 OK"] and b'"ok"' in b"".join(body)
    assert app._default is not None
    app._default.close()
