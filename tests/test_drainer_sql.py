"""The write-back drainer's rules as SQL functions (sql/writeback/drainer.sql) and the limiter's budget and
deadline functions (sql/platform/limiter.sql), called as a psql user would: plain SQL, as role crm_worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from crmindex.index.writes import ensure_org
from crmindex.platform.db import bind_org
from tests.orgs import ORG
from tests.orgs import ORG_B as OTHER

Conn = psycopg.Connection[tuple[object, ...]]
CLAIM = "SELECT id, lease_token, disposition, job FROM crm.writeback_claim(%s, 'hubspot', %s, 10, %s, %s)"


@pytest.fixture
def worker(db: Conn, both_orgs: Conn) -> Iterator[Conn]:
    db.execute("SET ROLE crm_worker")
    yield db
    db.execute("RESET ROLE")


def update(db: Conn, rid: str, payload: dict[str, Any]) -> int:
    row = db.execute(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', %s, 'update', %s, 'copilot')",
        (ORG, rid, Jsonb(payload)),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def claim(db: Conn, who: str, lease_s: float = 60.0, hold_s: float = 1.0) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute(CLAIM, (ORG, who, lease_s, hold_s)).fetchall()]


def state(db: Conn, job_id: int) -> dict[str, Any]:
    cur = db.execute(
        "SELECT status, attempts, payload, result, last_error, lease_token, "
        "extract(epoch FROM next_retry_at - clock_timestamp())::float8 AS due_in "
        "FROM crm.writeback_queue WHERE id = %s",
        (job_id,),
    )
    row = cur.fetchone()
    assert row is not None and cur.description is not None
    return {d.name: v for d, v in zip(cur.description, row, strict=True)}


def renew(db: Conn, ids: list[int], tokens: list[Any], lease_s: float = 60.0) -> dict[int, Any]:
    rows = db.execute(
        "SELECT id, payload FROM crm.writeback_renew(%s, %s, %s, %s)", (ORG, ids, tokens, lease_s)
    ).fetchall()
    return {int(str(r[0])): r[1] for r in rows}


def finish(db: Conn, outcomes: list[dict[str, Any]]) -> dict[str, int]:
    rows = db.execute(
        "SELECT action, jobs FROM crm.writeback_finish(%s, %s)", (ORG, Jsonb(outcomes))
    ).fetchall()
    return {str(a): int(str(n)) for a, n in rows if int(str(n))}


# ---------------------------------------------------------------------------------------------- claim
def test_claim_coalesces_an_expired_job_with_a_later_change_of_its_record(worker: Conn) -> None:
    first = update(worker, "101", {"jobtitle": "v1", "phone": "1"})
    [(jid, lost_token, disposition, _)] = claim(worker, "w1", lease_s=0.05)
    assert (jid, disposition) == (first, "send")
    time.sleep(0.1)  # w1's lease expires (w1 is stuck somewhere)
    second = update(worker, "101", {"jobtitle": "v2"})
    assert second != first  # the first is in flight: a new open job
    rows = claim(worker, "w2")
    assert [(r[0], r[2]) for r in rows] == [(first, "send"), (second, "coalesced")]
    assert rows[0][3]["payload"] == {"jobtitle": "v2", "phone": "1"}  # later values win per field
    assert rows[1][1] is None and state(worker, second)["result"] == {"coalesced_into": first}
    # w1 lost its lease: renewing gives nothing back, so it sends nothing
    assert renew(worker, [first], [lost_token]) == {}
    assert renew(worker, [first], [rows[0][1]]) == {first: {"jobtitle": "v2", "phone": "1"}}


def test_claim_holds_back_a_job_whose_record_is_in_flight_elsewhere(worker: Conn) -> None:
    first = update(worker, "102", {"jobtitle": "old"})
    [(_, token, _, _)] = claim(worker, "w1")
    second = update(worker, "102", {"jobtitle": "new"})
    [(jid, none, disposition, job)] = claim(worker, "w2", hold_s=5.0)
    assert (jid, none, disposition) == (second, None, "held_back")
    held = state(worker, second)
    assert (held["status"], held["attempts"], held["lease_token"]) == ("pending", 0, None)
    assert 4.0 < held["due_in"] <= 5.0
    assert held["last_error"] == f"held back: an older write to this record (job {first}) is open"
    assert job["payload"] == {"jobtitle": "new"}
    # w1's write fails: going back in line, it folds the newer change in (one open job per record)
    assert finish(worker, [{"id": first, "lease_token": str(token), "action": "retry", "error": "503"}]) == {
        "retry": 1
    }
    assert (state(worker, first)["status"], state(worker, first)["payload"]) == (
        "failed",
        {"jobtitle": "new"},
    )
    assert state(worker, second)["result"] == {"coalesced_into": first}


def test_due_accounts(worker: Conn) -> None:
    assert worker.execute("SELECT * FROM crm.writeback_due_accounts()").fetchall() == []
    update(worker, "103", {"jobtitle": "x"})
    assert worker.execute("SELECT * FROM crm.writeback_due_accounts()").fetchall() == [(ORG, "hubspot")]


# ---------------------------------------------------------------------------------------------- renew
def test_renew_returns_the_payload_without_fields_the_crm_changed_meanwhile(worker: Conn) -> None:
    jid = update(worker, "104", {"jobtitle": "ours", "phone": "ours"})
    [(_, token, _, _)] = claim(worker, "w1")

    def webhook(prop: str) -> int:
        change = [{"crm_record_id": "104", "property": prop, "value": "theirs",
                   "occurred_at": "2999-01-01T00:00:00Z"}]  # fmt: skip
        row = worker.execute(
            "SELECT crm.writeback_drop_superseded(%s, 'hubspot', 'contact', %s)", (ORG, Jsonb(change))
        ).fetchone()
        assert row is not None
        return int(str(row[0]))

    assert webhook("phone") == 1  # a job in flight loses the field too
    assert renew(worker, [jid], [token]) == {jid: {"jobtitle": "ours"}}
    assert webhook("jobtitle") == 1  # nothing left to send: superseded, and the lease is gone with it
    assert renew(worker, [jid], [token]) == {}
    done = state(worker, jid)
    assert (done["status"], done["result"], done["lease_token"]) == ("completed", {"superseded": True}, None)
    with pytest.raises(psycopg.Error, match="positive"):
        worker.execute("SELECT * FROM crm.writeback_renew(%s, %s, %s, 0)", (ORG, [jid], [token]))


# ---------------------------------------------------------------------------------------------- finish
def test_finish_records_each_outcome_under_its_lease_token(worker: Conn) -> None:
    worker.execute("RESET ROLE")
    worker.execute(
        "INSERT INTO crm.contact_record (org_id, origin, email) VALUES (%s, 'local', 'new@lead.io')", (ORG,)
    )
    worker.execute("SET ROLE crm_worker")
    created = int(str(worker.execute(
        "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', NULL, 'create', %s, 'copilot', NULL, "
        "5::smallint, 'New@Lead.io')", (ORG, Jsonb({"email": "new@lead.io"})),
    ).fetchone()[0]))  # type: ignore[index]  # fmt: skip
    retried = update(worker, "105", {"jobtitle": "a"})
    dead = update(worker, "106", {"lifecyclestage": "bogus"})
    released = update(worker, "107", {"jobtitle": "later"})
    tokens = {r[0]: str(r[1]) for r in claim(worker, "w1")}
    newer = update(worker, "105", {"phone": "9"})  # queued while 105 is out
    counts = finish(worker, [
        {"id": created, "lease_token": tokens[created], "action": "complete", "crm_record_id": "900"},
        {"id": retried, "lease_token": tokens[retried], "action": "retry", "error": "hubspot 503"},
        {"id": dead, "lease_token": tokens[dead], "action": "dead", "error": "hubspot 400 VALIDATION_ERROR"},
        {"id": released, "lease_token": tokens[released], "action": "release", "delay_s": 30, "error": "429"},
        {"id": released, "lease_token": str(uuid.uuid4()), "action": "complete"},  # a late worker: fenced
    ])  # fmt: skip
    assert counts == {"complete": 1, "retry": 1, "dead": 1, "release": 1, "lost": 1}
    # the create: its record id, its hydration queued, the local contact linked
    assert state(worker, created)["result"] == {"crm_record_id": "900"}
    hydrate = worker.execute(
        "SELECT payload FROM crm.job WHERE org_id = %s AND kind = 'hydrate' AND dedupe_key = 'contacts:900'",
        (ORG,),
    ).fetchall()
    assert hydrate == [({"object_type": "contacts", "crm_record_id": "900"},)]
    linked = worker.execute(
        "SELECT crm_source, crm_record_id FROM crm.contact_record WHERE org_id = %s", (ORG,)
    )
    assert linked.fetchall() == [("hubspot", "900")]
    # the retry took the change queued meanwhile: one open job for record 105
    r = state(worker, retried)
    assert (r["status"], r["attempts"], r["payload"]) == ("failed", 1, {"jobtitle": "a", "phone": "9"})
    assert 55 < r["due_in"] <= 60 and r["last_error"] == "hubspot 503"
    assert state(worker, newer)["result"] == {"coalesced_into": retried}
    d = state(worker, dead)
    assert (d["status"], d["last_error"]) == ("dead_letter", "hubspot 400 VALIDATION_ERROR")
    rel = state(worker, released)
    assert (rel["status"], rel["attempts"]) == ("pending", 0) and 25 < rel["due_in"] <= 30
    with pytest.raises(psycopg.Error, match="unknown action"):
        finish(worker, [{"id": released, "lease_token": tokens[released], "action": "explode"}])


def test_reopen_of_a_held_back_job_merges_into_the_older_open_job(worker: Conn) -> None:
    first = update(worker, "108", {"jobtitle": "old", "phone": "1"})
    [(_, t1, _, _)] = claim(worker, "w1")
    second = update(worker, "108", {"jobtitle": "new"})
    # a psql user claims the newer job with the bare queue core (no ordering rules)
    [t2] = [r[0] for r in worker.execute(
        "SELECT lease_token FROM crm.queue_claim('crm.writeback_queue', 'psql', 10, 60)"
    ).fetchall()]  # fmt: skip
    assert worker.execute(
        "SELECT crm.queue_fail(%s, 'crm.writeback_queue', %s, %s, 'boom')", (ORG, first, t1)
    ).fetchone() == ("failed",)
    row = worker.execute(
        "SELECT crm.writeback_reopen(%s, %s, %s, 'release', 0, 'held back')", (ORG, second, t2)
    ).fetchone()
    assert row == ("completed",)  # merged into the older open job, which now carries the newer value
    assert state(worker, first)["payload"] == {"jobtitle": "new", "phone": "1"}
    assert state(worker, second)["result"] == {"coalesced_into": first}
    assert worker.execute(
        "SELECT crm.writeback_reopen(%s, %s, %s, 'release')", (ORG, second, t2)
    ).fetchone() == (None,)  # no longer ours


# ---------------------------------------------------------------------------------------------- limiter
def test_rate_limit_take_spends_a_window_then_the_rate_and_reserves_nothing_when_it_takes_nothing(
    db: Conn, db_dsn: str
) -> None:
    ensure_org(db, ORG)
    ensure_org(db, OTHER)
    db.execute("SELECT crm.rate_limit_configure(%s, 'hubspot', 'materialize', 5, 1.0)", (ORG,))
    with psycopg.connect(db_dsn, autocommit=True) as app:
        app.execute("SET ROLE crm_worker")
        bind_org(app, ORG)  # a session bound to the org (a worker's is usually unbound: every org)

        def take(n: int, org: uuid.UUID = ORG, source: str = "hubspot") -> tuple[int, float]:
            row = app.execute(
                "SELECT taken, next_in_s FROM crm.rate_limit_take(%s, %s, 'materialize', %s)",
                (org, source, n),
            ).fetchone()
            assert row is not None
            return int(str(row[0])), float(str(row[1]))

        def reserved() -> int:
            row = db.execute(
                "SELECT reserved FROM crm.rate_limit WHERE org_id = %s AND limit_class = 'materialize' "
                "AND crm_source = 'hubspot'", (ORG,),
            ).fetchone()  # fmt: skip
            assert row is not None
            return int(str(row[0]))

        taken, next_s = take(10)
        assert taken == 5 and 0 < next_s <= 0.21  # a window's worth at once (5 per second, headroom 0.97)
        before = reserved()
        assert take(3)[0] == 0 and reserved() == before  # nothing taken, nothing reserved
        time.sleep(next_s + 0.02)
        assert 1 <= take(3)[0] < 3  # then about one per emission interval (0.21 s)
        assert take(0) == (0, 0.0)
        # no row yet: the default budget (100 a minute, headroom 0.97)
        assert take(150, source="attio")[0] == 98
        with pytest.raises(psycopg.Error, match="bound to org"):
            take(1, org=OTHER)  # a bound session spends only its own org's budget


def test_rate_limit_reserve_within_reserves_nothing_it_cannot_wait_for(worker: Conn) -> None:
    worker.execute("SELECT crm.rate_limit_configure(%s, 'hubspot', 'general', 1, 1.0, 1.0)", (ORG,))

    def within(max_wait: float) -> float:
        row = worker.execute(
            "SELECT crm.rate_limit_reserve_within(%s, 'hubspot', 'general', 1, %s)", (ORG, max_wait)
        ).fetchone()
        assert row is not None
        return float(str(row[0]))

    def reserved() -> int:
        row = worker.execute(
            "SELECT reserved FROM crm.rate_limit WHERE org_id = %s AND limit_class = 'general'", (ORG,)
        ).fetchone()
        assert row is not None
        return int(str(row[0]))

    assert within(5) == 0.0 and reserved() == 1
    wait = within(0.5)
    assert 0.9 < wait <= 1.0 and reserved() == 1  # a wait of ~1 s is more than 0.5: nothing reserved
    assert 0.9 < within(2) <= 1.0 and reserved() == 2
    row = worker.execute("SELECT crm.rate_limit_reserve(%s, 'hubspot', 'general')", (ORG,)).fetchone()
    assert row is not None and 1.9 < float(str(row[0])) <= 2.0 and reserved() == 3
