"""Attio as it really behaves (issue 15, items 6 and 8-13): the fake first, then the library.

Each test names the assertion that failed before the change (against the fake or the library of the time):

* clearing a value moves no version forward (a GET shows active values only): the clear reaches the index by
  webhook and by rescan (item 8);
* PATCH prepends to multi-value attributes, PUT overwrites them: write-back replaces the email the index shows
  (item 9);
* merges make a new record and two ``record.merged`` events; an asynchronous merge answers 404
  ``merge_in_progress``: hydration waits, never soft-deletes it (item 10);
* the rescan lists in a stable order and notices records deleted mid-scan (item 11);
* a ``Retry-After`` already past is waited a floor, not 0 s (item 12);
* lists and their entries are indexed, kept current by ``list-entry.*`` webhooks (item 13);
* workspace members and deal statuses become owner and stage labels (item 6, Attio);
* webhook deliveries carry an ``Idempotency-Key``, the same on a retry.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests

from crmindex.crm.attio.adapters import AttioFetcher, AttioWriter
from crmindex.crm.attio.client import AttioClient
from crmindex.crm.attio.lister import AttioLister
from crmindex.crm.errors import MergeInProgress
from crmindex.crm.http import RetryPolicy
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.reconcile import reconcile_attio
from crmindex.freshness.sync import run_sync
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.platform.queue import Queue, Worker
from crmindex.testing import FakeAttio
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from tests.orgs import ORG

Conn = psycopg.Connection[tuple[object, ...]]
TOKEN = "attio-fidelity-token"
FAST = RetryPolicy.fast()


def client_for(fake: FakeAttio, retry: RetryPolicy = FAST) -> AttioClient:
    return AttioClient(fake.base_url, lambda: TOKEN, None, retry=retry)


@pytest.fixture
def fake() -> Iterator[FakeAttio]:
    with FakeAttio(tokens=[TOKEN], limits=False, webhook_url="http://127.0.0.1:9/none", emit="collect") as f:
        f.seed_from(SyntheticCRM(seed=21, contacts=40, companies=6, deals=8, source="attio"))
        f.take_deliveries()
        yield f


class World:
    """An org connected to the fake: sync, webhook deliveries into the inbox, inbox and hydration workers."""

    def __init__(self, db: Conn, dsn: str, fake: FakeAttio) -> None:
        self.db, self.dsn, self.fake = db, dsn, fake
        connect_with_token(db, None, ORG, "attio", None, account_id=fake.workspace_id,
                           settings={"attio_object_ids": {oid: s for s, oid in fake.object_ids.items()}})  # fmt: skip
        self.client = client_for(fake)
        self.fetcher = AttioFetcher(self.client)

    def sync(self) -> None:
        run_sync(self.db, ORG, AttioLister(self.client), progress=False)

    def deliver(self) -> int:
        """The fake's webhook deliveries into the inbox (as the receiver stores them)."""
        n = 0
        for d in self.fake.take_deliveries():
            self.db.execute(
                "SELECT crm.webhook_accept(%s, 'attio', %s, %s, '{}', 1)",
                (ORG, self.fake.workspace_id, d.body.decode()),
            )
            n += 1
        return n

    def drain(self) -> None:
        inbox = Worker(self.dsn, INBOX, process_inbox)
        hydrate = Worker(
            self.dsn, Queue("crm.job"), hydrate_handler(lambda o, s: self.fetcher), kind="hydrate"
        )
        while inbox.run_once() + hydrate.run_once():
            pass

    def one(self, sql: str, *params: object) -> tuple[object, ...] | None:
        return self.db.execute(sql, params).fetchone()

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def world(db: Conn, db_dsn: str, fake: FakeAttio) -> Iterator[World]:
    w = World(db, db_dsn, fake)
    try:
        yield w
    finally:
        w.close()


# ============================================================================================ item 8: clears
def test_a_cleared_title_reaches_the_index_by_webhook(world: World, fake: FakeAttio) -> None:
    world.sync()
    rid = fake.record_ids("people")[3]
    fake.update("people", rid, {"job_title": "Chief Clearing Officer"})
    world.deliver()
    world.drain()
    assert world.one("SELECT job_title FROM crm.contact_index WHERE crm_record_id = %s", rid) == (
        "Chief Clearing Officer",
    )
    time.sleep(0.01)
    fake.update("people", rid, {"job_title": None})  # cleared: its active_from leaves the payload
    assert world.deliver() == 1
    world.drain()
    # before: ('Chief Clearing Officer',): the record's newest active_from moved back, the monotonic upsert
    # refused the row
    assert world.one("SELECT job_title, seniority FROM crm.contact_index WHERE crm_record_id = %s", rid) == (
        None,
        None,
    )
    # a stale snapshot (read before the clear) is still refused: replay the read of the set title
    row = world.one("SELECT crm_updated_at FROM crm.contact_index WHERE crm_record_id = %s", rid)
    assert row is not None and isinstance(row[0], datetime)
    stale = {"crm_record_id": rid, "job_title": "Chief Clearing Officer",
             "crm_updated_at": (row[0] - timedelta(seconds=5)).isoformat(),
             "observed_at": (row[0] - timedelta(seconds=1)).isoformat()}  # fmt: skip
    world.db.execute("SELECT * FROM crm.upsert_contacts(%s, 'attio', %s::jsonb)", (ORG, json.dumps([stale])))
    assert world.one("SELECT job_title FROM crm.contact_index WHERE crm_record_id = %s", rid) == (None,)


def test_a_clear_missed_by_webhooks_is_repaired_by_the_rescan(world: World, fake: FakeAttio) -> None:
    rid = fake.record_ids("people")[5]
    fake.update("people", rid, {"job_title": "VP Soon Gone"})
    world.sync()
    time.sleep(0.01)
    fake.update("people", rid, {"job_title": None})
    fake.take_deliveries()  # webhooks lost
    report = reconcile_attio(world.db, ORG, world.client)
    # before: ('VP Soon Gone',) and upserted == 0: the rescan's row was older than the stored one
    assert world.one("SELECT job_title FROM crm.contact_index WHERE crm_record_id = %s", rid) == (None,)
    assert report.upserted["contacts"] == 1  # only the changed record is rewritten
    # and a second rescan changes nothing (versions do not creep forward on identical rows)
    assert reconcile_attio(world.db, ORG, world.client).upserted["contacts"] == 0


# =============================================================================== item 9: PATCH appends, PUT overwrites
def test_the_fake_patch_prepends_and_put_overwrites(fake: FakeAttio) -> None:
    with client_for(fake) as c:
        rid = fake.create("people", {"name": "Multi Value", "email_addresses": ["first@x.test"],
                                     "phone_numbers": ["+1 555 0100"]})  # fmt: skip
        rec = c.update("people", rid, {"email_addresses": ["second@x.test"]})
        # before: ['first@x.test', 'second@x.test']: PATCH "prepended" (docs.attio.com update-a-record)
        assert rec.email_addresses == ["second@x.test", "first@x.test"]
        assert c.update("people", rid, {"email_addresses": []}).email_addresses == rec.email_addresses
        rec = c.replace("people", rid, {"email_addresses": ["third@x.test"]})
        assert rec.email_addresses == ["third@x.test"]
        assert c.replace("people", rid, {"email_addresses": []}).email_addresses == []
        # assert: the matching attribute is added to, any other multiselect overwritten (2024-11 spec)
        rec = c.assert_record("people", "email_addresses",
                              {"email_addresses": ["fourth@x.test"], "phone_numbers": ["+1 555 0199"]})  # fmt: skip
        assert rec.record_id != rid and rec.email_addresses == ["fourth@x.test"]  # no match: a new person
        rid2 = fake.create("people", {"name": "Assert Me", "email_addresses": ["a@x.test"],
                                      "phone_numbers": ["+1 555 0001"]})  # fmt: skip
        rec = c.assert_record("people", "email_addresses",
                              {"email_addresses": ["b@x.test", "a@x.test"], "phone_numbers": ["+1 555 0002"]})  # fmt: skip
        assert rec.record_id == rid2
        assert sorted(rec.email_addresses) == ["a@x.test", "b@x.test"]
        # before: ['+1 555 0001', '+1 555 0002'] (the assert appended to every multiselect)
        assert rec.phone_numbers == ["+1 555 0002"]


def test_write_back_replaces_the_email_the_index_shows(fake: FakeAttio) -> None:
    with client_for(fake) as c:
        writer = AttioWriter(c)
        rid = fake.create("people", {"name": "Ann Old", "email_addresses": ["old@x.test", "other@x.test"]})
        (res,) = writer.update("contact", [(rid, {"email_addresses": ["new@x.test"]})])
        assert res.ok
        rec = c.get("people", rid)
        assert rec is not None
        # before: ['new@x.test', 'old@x.test', 'other@x.test'] (PATCH: the old email stayed in Attio)
        assert rec.email_addresses == ["new@x.test", "other@x.test"]
        (res,) = writer.update("contact", [(rid, {"email_addresses": []})])  # the index's email cleared
        rec = c.get("people", rid)
        assert res.ok and rec is not None
        # before: unchanged (PATCH of [] appends nothing)
        assert rec.email_addresses == ["other@x.test"]
        assert fake.requests_to(f"/records/{rid}", "PUT") and not fake.requests_to(f"/records/{rid}", "PATCH")
        (res,) = writer.update("contact", [(rid, {"job_title": "CTO", "phone_numbers": [
            {"original_phone_number": "+44 20 7946 0000"}]})])  # fmt: skip
        rec = c.get("people", rid)
        assert (
            res.ok
            and rec is not None
            and rec.job_title == "CTO"
            and rec.phone_numbers == ["+44 20 7946 0000"]
        )


# =================================================================================== item 10: merges today
def test_the_fake_merges_as_attio_does_today(fake: FakeAttio) -> None:
    with client_for(fake) as c:
        a = fake.create("people", {"name": "Dup One", "email_addresses": ["one@x.test"], "job_title": "CEO"})
        b = fake.create("people", {"name": "Dup Two", "email_addresses": ["two@x.test"], "job_title": "CTO"})
        fake.take_deliveries()
        new = fake.merge("people", a, b)
        # before: the primary's id came back and stayed readable
        assert new not in (a, b)
        assert c.get("people", a) is None and c.get("people", b) is None
        merged = c.get("people", new)
        assert merged is not None and merged.job_title == "CEO"  # the primary's value wins
        assert merged.email_addresses == ["one@x.test", "two@x.test"]
        events = [d.json()["events"][0] for d in fake.take_deliveries()]
        assert [(e["event_type"], e["id"]["record_id"], e["duplicate_record_id"]) for e in events] == [
            ("record.merged", new, a),
            ("record.merged", new, b),
        ]
        # an asynchronous merge: 404 merge_in_progress until it completes
        c2 = fake.create("people", {"name": "Async A"})
        d2 = fake.create("people", {"name": "Async B"})
        slow = fake.merge("people", c2, d2, in_progress=-1)
        raw = requests.get(f"{fake.base_url}/v2/objects/people/records/{slow}",
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)  # fmt: skip
        assert raw.status_code == 404 and raw.json()["code"] == "merge_in_progress"
        with pytest.raises(MergeInProgress) as exc:
            c.get("people", slow)
        assert exc.value.retryable and exc.value.status == 404
        assert slow not in fake.record_ids("people")
        fake.complete_merges()
        assert c.get("people", slow) is not None and slow in fake.record_ids("people")


def test_hydration_waits_out_a_merge_in_progress(world: World, fake: FakeAttio) -> None:
    world.sync()
    a, b = fake.record_ids("people")[:2]
    new = fake.merge("people", a, b, in_progress=-1)
    assert world.deliver() == 2
    world.drain()
    # before: the new record was soft-deleted (its 404 read as "gone"); now it waits, the originals point at it
    assert world.one("SELECT 1 FROM crm.contact_index WHERE crm_record_id = %s", new) is None
    rows = world.db.execute(
        "SELECT crm_record_id, deleted_at IS NOT NULL, merged_into FROM crm.contact_index "
        "WHERE crm_record_id = ANY(%s) ORDER BY crm_record_id",
        ([a, b],),
    ).fetchall()
    assert {(r[0], r[1], r[2]) for r in rows} == {(a, True, new), (b, True, new)}
    job = world.one("SELECT status, last_error FROM crm.job WHERE payload ->> 'crm_record_id' = %s", new)
    assert job is not None and job[0] == "failed" and "merg" in str(job[1])
    fake.complete_merges()
    world.db.execute("UPDATE crm.job SET next_retry_at = now() WHERE status = 'failed'")
    world.drain()
    assert world.one("SELECT deleted_at IS NULL FROM crm.contact_index WHERE crm_record_id = %s", new) == (
        True,
    )


# ================================================================================ item 11: stable order, gaps
def test_the_rescan_misses_no_record_deleted_mid_scan() -> None:
    with FakeAttio(tokens=[TOKEN], limits=False) as fake:
        fake.seed_from(SyntheticCRM(seed=13, contacts=1200, companies=5, deals=0, source="attio"))
        with client_for(fake) as c:
            lister = AttioLister(c)
            sorts: list[object] = []
            query = c.query

            def spy(slug: str, **kw: Any) -> Any:
                sorts.append(kw.get("sorts"))
                return query(slug, **kw)

            c.query = spy  # type: ignore[method-assign]
            seen: list[str] = []
            deleted: list[str] = []
            for page in lister.pages("contacts", None):
                seen.extend(str(r["crm_record_id"]) for r in page.rows)
                if not deleted:  # records of the first page deleted while the scan goes on
                    deleted = seen[10:13]
                    for rid in deleted:
                        fake.delete("people", rid)
            alive = set(fake.record_ids("people"))
            # before: 3 records missing (the page boundary moved back three places)
            assert alive - set(seen) == set()
            assert lister.stepped_back == 1
            order = (
                {"attribute": "created_at", "direction": "asc"},
                {"attribute": "record_id", "direction": "asc"},
            )
            assert sorts and all(tuple(x or ()) == order for x in sorts)


def test_the_fake_sorts_by_created_at_and_refuses_unknown_sorts(fake: FakeAttio) -> None:
    with client_for(fake) as c:
        recs = c.query("people", limit=500, sorts=[{"attribute": "created_at", "direction": "asc"}])
        stamps = [r.created_at for r in recs]
        assert stamps == sorted(stamps) and len(recs) == 40
        desc = c.query("people", limit=500, sorts=[{"attribute": "created_at", "direction": "desc"}])
        assert [r.record_id for r in desc] == [r.record_id for r in reversed(recs)]
        from crmindex.crm.errors import ValidationError

        with pytest.raises(ValidationError):
            c.query("people", sorts=[{"attribute": "nope", "direction": "asc"}])


# ======================================================================= item 12: Retry-After in the past
def test_a_retry_after_in_the_past_is_waited_a_floor() -> None:
    waits: list[float] = []
    retry = dataclasses.replace(RetryPolicy.fast(), wait_cap=None, max_rate_limit_retries=3)
    with FakeAttio(tokens=[TOKEN], limits=False) as fake:
        fake.clock_skew = -30.0  # the workspace's clock 30 s behind ours: its HTTP-dates are past on arrival
        rid = fake.create("people", {"name": "Skewed Clock"})
        fake.set_faults(rate_limit_storm=1)
        with AttioClient(fake.base_url, lambda: TOKEN, None, retry=retry) as c:
            c.http._sleep = waits.append  # type: ignore[method-assign]
            assert c.get("people", rid) is not None
    # before: [0.0]: the past date read as "retry now" (a busy loop against a rate limit)
    assert waits and waits[0] >= 0.9  # the 1 s floor, less the moments since the answer


def test_the_attio_429_reading_keeps_future_dates() -> None:
    with FakeAttio(tokens=[TOKEN], limits=False) as fake, client_for(fake) as c:
        resp = requests.Response()
        resp.status_code = 429
        resp.headers["Retry-After"] = email.utils.formatdate(time.time() + 5, usegmt=True)
        resp._content = (
            b'{"status_code":429,"type":"rate_limit_error","code":"rate_limit_exceeded","message":"x"}'
        )
        wait, name = c.http.rate_limit_wait(resp)
        assert 3.5 <= wait <= 5.5 and name == "rate_limit_exceeded"
        resp.headers["Retry-After"] = email.utils.formatdate(time.time() - 60, usegmt=True)
        assert c.http.rate_limit_wait(resp)[0] == c.http.retry.attio_min_429_wait == 1.0


# ============================================================================== webhooks: Idempotency-Key
def test_deliveries_carry_an_idempotency_key_kept_on_retries(fake: FakeAttio) -> None:
    rid = fake.record_ids("people")[0]
    fake.update("people", rid, {"job_title": "A"})
    fake.update("people", rid, {"job_title": "B"})
    first, second = fake.take_deliveries()
    # before: KeyError: no Idempotency-Key header
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]
    assert first.body == second.body  # two real messages may have the same body (events carry no time)
    uuid.UUID(first.headers["Idempotency-Key"])  # a retry (Delivery.send again) sends the same headers


# ================================================================ item 13: lists; item 6: owners and stages
def _pipeline(fake: FakeAttio) -> tuple[str, list[str], dict[str, str]]:
    lst = fake.create_list("Enterprise pipeline", "companies",
                           stages=["Prospecting", "Negotiation", "Won 🎉", "Lost"], slug="enterprise_pipeline")  # fmt: skip
    companies = fake.record_ids("companies")[:4]
    entries = {}
    for rid, stage in zip(companies, ["Negotiation", "Negotiation", "Won 🎉", None], strict=True):
        entries[rid] = fake.add_entry(lst, rid, {"stage": stage} if stage else {})
    fake.take_deliveries()
    return lst, companies, entries


def test_lists_and_entries_are_indexed_and_kept_current(world: World, fake: FakeAttio) -> None:
    lst, companies, entries = _pipeline(fake)
    world.sync()
    # before: relation "crm.crm_list" does not exist (no list was indexed)
    assert world.one("SELECT name, parent_object, stage_attribute, archived FROM crm.crm_list WHERE list_id = %s",
                     lst) == ("Enterprise pipeline", "companies", "stage", False)  # fmt: skip
    stages = world.db.execute(
        "SELECT stage_label, display_order, is_closed, is_won FROM crm.crm_pipeline_stage "
        "WHERE object_type = %s ORDER BY display_order",
        (f"list:{lst}",),
    ).fetchall()
    assert stages == [("Prospecting", 0, False, False), ("Negotiation", 1, False, False),
                      ("Won 🎉", 2, True, True), ("Lost", 3, True, False)]  # fmt: skip

    def in_stage(stage: str) -> set[str]:
        rows = world.db.execute(
            "SELECT co.crm_record_id FROM crm.company_index AS co WHERE EXISTS ("
            " SELECT 1 FROM crm.list_entry AS e JOIN crm.crm_list AS l USING (org_id, crm_source, list_id)"
            " WHERE e.org_id = co.org_id AND e.crm_source = co.crm_source AND e.parent_object = 'companies'"
            " AND e.parent_record_id = co.crm_record_id AND e.deleted_at IS NULL AND NOT l.archived"
            " AND lower(l.name) = lower(%s) AND lower(e.stage_label) = lower(%s))",
            ("Enterprise pipeline", stage),
        ).fetchall()
        return {str(r[0]) for r in rows}

    assert in_stage("negotiation") == set(companies[:2])
    # list-entry webhooks: a stage change, a removal, an addition
    fake.update_entry(lst, entries[companies[0]], {"stage": "Won 🎉"})
    fake.delete_entry(lst, entries[companies[1]])
    fake.add_entry(lst, companies[3], {"stage": "Negotiation"})
    assert world.deliver() == 3
    world.drain()
    assert in_stage("Negotiation") == {companies[3]}
    assert in_stage("won 🎉") == {companies[0], companies[2]}
    # a status renamed in Attio: the vocabulary and the entries follow at the next sync
    fake.rename_status(f"list:{lst}", "stage", "Negotiation", "Contract negotiation")
    world.sync()
    assert in_stage("Contract negotiation") == {companies[3]}
    # an entry removed while webhooks were down: the rescan's full listing notices it
    fake.delete_entry(lst, next(e["id"]["entry_id"] for e in fake.list_entries(lst)
                                if e["parent_record_id"] == companies[3] and e["entry_values"]["stage"]))  # fmt: skip
    fake.take_deliveries()
    reconcile_attio(world.db, ORG, world.client)
    assert in_stage("Contract negotiation") == set()


def test_owners_and_deal_stage_labels(world: World, fake: FakeAttio) -> None:
    world.sync()
    owners = world.db.execute(
        "SELECT owner_id, first_name, email, archived FROM crm.crm_owner WHERE crm_source = 'attio'"
    ).fetchall()
    members = {m["id"]["workspace_member_id"]: m for m in requests.get(
        f"{fake.base_url}/v2/workspace_members", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    ).json()["data"]}  # fmt: skip
    # before: [] (workspace members were not read)
    assert {str(o[0]) for o in owners} == set(members) and owners
    deals = world.db.execute(
        "SELECT stage, pipeline, stage_label, pipeline_label, owner_crm_id FROM crm.deal_index "
        "WHERE crm_source = 'attio'"
    ).fetchall()
    assert deals
    titles = {s["id"]["status_id"]: s["title"] for s in fake.statuses("deals", "stage")}
    for stage, pipeline, label, pipeline_label, owner in deals:
        # before: stage held the title and stage_label was NULL
        assert pipeline == "stage" and stage in titles and label == titles[stage]
        assert pipeline_label == "Deal stage"
        assert owner is None or owner in members
