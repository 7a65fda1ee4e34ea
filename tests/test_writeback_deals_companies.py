"""Deals and companies (issue 16): a deal moved by stage label lands with the stage id, a company created twice
through the queue exists once (both fakes), and a dead-lettered update leaves the index equal to the CRM's value,
shown in status and in the activity log."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from crmindex.crm.clients import Clients
from crmindex.crm.http import RetryPolicy
from crmindex.crm.protocols import Source
from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.sync import AttioLister, HubSpotLister, run_sync
from crmindex.index.writes import ensure_org
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.queue import Queue, Worker
from crmindex.status import org_status, render
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.drainer import Drainer
from crmindex.writeback.enqueue import update_contact
from crmindex.writeback.records import create_company, create_deal, update_company, update_deal
from tests.orgs import ORG

Conn = psycopg.Connection[tuple[object, ...]]
TOKEN = "test-token"
SEED = 31


def _connect(db: Conn, dsn: str, source: str, base_url: str) -> None:
    ensure_org(db, ORG)
    connect_with_token(db, None, ORG, source, TOKEN, account_id=f"{source}-{ORG.hex[-6:]}", base_url=base_url)
    lim = PgRateLimiter(dsn, ORG, source)
    try:
        for cls in ("general", "search") if source == "hubspot" else ("read", "write"):
            lim.configure(cls, 1000, 1.0)
    finally:
        lim.close()


@pytest.fixture
def clients(db_dsn: str) -> Iterator[Clients]:
    c = Clients(db_dsn, retry=RetryPolicy.fast(max_attempts=2))
    yield c
    c.close()


@pytest.fixture
def hubspot(db: Conn, db_dsn: str, clients: Clients) -> Iterator[FakeHubSpot]:
    with FakeHubSpot(limits=False, tokens=[TOKEN]) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=20, companies=5, deals=5))
        _connect(db, db_dsn, "hubspot", f.base_url)
        run_sync(db, ORG, HubSpotLister(clients.client(ORG, "hubspot")), progress=False)
        yield f


@pytest.fixture
def attio(db: Conn, db_dsn: str, clients: Clients) -> Iterator[FakeAttio]:
    with FakeAttio(limits=False, tokens=[TOKEN]) as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=20, companies=5, deals=5, source="attio"))
        _connect(db, db_dsn, "attio", f.base_url)
        run_sync(db, ORG, AttioLister(clients.client(ORG, "attio")), progress=False)
        yield f


def _drain(dsn: str, clients: Clients) -> int:
    return Drainer(dsn, clients.writer, poll_s=0.2).run_once()


def _one(db: Conn, sql: str, *params: object) -> object:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _other_stage(db: Conn, source: str, deal: str) -> tuple[str, str]:
    """(label, id) of a stage of the deal's pipeline other than its current one, with a label unique in the org."""
    row = db.execute(
        "SELECT s.stage_label, s.stage_id FROM crm.crm_pipeline_stage AS s "
        "JOIN crm.deal_index AS d ON d.org_id = s.org_id AND d.crm_source = s.crm_source AND d.pipeline = s.pipeline_id "
        "WHERE d.crm_record_id = %s AND s.crm_source = %s AND s.stage_id IS DISTINCT FROM d.stage AND NOT s.archived "
        "AND (SELECT count(*) FROM crm.crm_pipeline_stage AS o WHERE o.org_id = s.org_id "
        "     AND lower(o.stage_label) = lower(s.stage_label)) = 1 "
        "ORDER BY s.display_order LIMIT 1",
        (deal, source),
    ).fetchone()
    assert row is not None, "the synced vocabulary has stages"
    return str(row[0]), str(row[1])


def test_hubspot_deal_moved_by_stage_label_lands_with_the_stage_id(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    deal = str(
        _one(db, "SELECT crm_record_id FROM crm.deal_index WHERE pipeline = 'default' ORDER BY id LIMIT 1")
    )
    label, stage_id = _other_stage(db, "hubspot", deal)
    q = update_deal(db, ORG, deal, {"stage": label.upper(), "amount": 125000})
    assert q.payload == {"dealstage": stage_id, "amount": "125000"}
    # the index shows it at once, with its label
    assert db.execute(
        "SELECT stage, stage_label, amount FROM crm.deal_index WHERE crm_record_id = %s", (deal,)
    ).fetchone() == (stage_id, label, 125000)
    assert _drain(db_dsn, clients) == 1
    props = hubspot.properties("deals", deal)
    assert props["dealstage"] == stage_id and props["amount"] == "125000"


def test_attio_deal_moved_by_stage_label_lands_with_the_status(
    db: Conn, db_dsn: str, attio: FakeAttio, clients: Clients
) -> None:
    deal = str(_one(db, "SELECT crm_record_id FROM crm.deal_index ORDER BY id LIMIT 1"))
    label, stage_id = _other_stage(db, "attio", deal)
    q = update_deal(db, ORG, deal, {"stage": label})
    assert q.payload == {"stage": [{"status": stage_id}]}
    assert _drain(db_dsn, clients) == 1
    rec = attio.record("deals", deal)
    assert rec is not None
    [stage] = [v for v in rec["values"]["stage"] if v.get("active_until") is None]
    assert stage["status"]["id"]["status_id"] == stage_id and stage["status"]["title"] == label


def test_an_unknown_or_ambiguous_stage_is_a_typed_error_that_changes_nothing(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot
) -> None:
    deal = str(
        _one(db, "SELECT crm_record_id FROM crm.deal_index WHERE pipeline = 'default' ORDER BY id LIMIT 1")
    )
    before = db.execute(
        "SELECT stage, field_versions FROM crm.deal_index WHERE crm_record_id = %s", (deal,)
    ).fetchone()
    with pytest.raises(InvalidInputError, match="no deal stage 'Negotiation'"):
        update_deal(db, ORG, deal, {"stage": "Negotiation"})
    with pytest.raises(InvalidInputError, match="cannot update"):
        update_deal(db, ORG, deal, {"dealstage": "x"})
    with pytest.raises(InvalidInputError, match="amount"):
        update_deal(db, ORG, deal, {"amount": "lots"})
    with pytest.raises(NotFoundError):
        update_deal(db, ORG, "999999999", {"name": "x"})
    after = db.execute(
        "SELECT stage, field_versions FROM crm.deal_index WHERE crm_record_id = %s", (deal,)
    ).fetchone()
    assert after == before
    assert _one(db, "SELECT count(*) FROM crm.writeback_queue") == 0


@pytest.mark.parametrize("source", ["hubspot", "attio"])
def test_a_company_created_twice_through_the_queue_exists_once(
    db: Conn, db_dsn: str, clients: Clients, source: Source, request: pytest.FixtureRequest
) -> None:
    fake = request.getfixturevalue(source)
    kind = "companies"
    before = fake.count(kind) if source == "hubspot" else len(fake.record_ids(kind))
    first = create_company(
        db, ORG, source, {"name": "Nimbus Labs", "domain": "https://www.NimbusLabs.io/about"}
    )
    again = create_company(db, ORG, source, {"name": "Nimbus Labs", "domain": "nimbuslabs.io"})
    assert first.job_id == again.job_id  # queued twice: one job (coalesced by the domain)
    assert _drain(db_dsn, clients) == 1
    third = create_company(db, ORG, source, {"name": "Nimbus Labs Inc", "domain": "nimbuslabs.io"})
    assert third.job_id != first.job_id  # the first landed: a new job, which finds the company by its domain
    assert _drain(db_dsn, clients) == 1
    after = fake.count(kind) if source == "hubspot" else len(fake.record_ids(kind))
    assert after == before + 1
    ids = db.execute(
        "SELECT DISTINCT result ->> 'crm_record_id' FROM crm.writeback_queue WHERE operation = 'create'"
    ).fetchall()
    assert len(ids) == 1


def test_update_company_changes_the_index_now_and_lands(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    cid = str(_one(db, "SELECT crm_record_id FROM crm.company_index ORDER BY id LIMIT 1"))
    update_company(db, ORG, cid, {"name": "Renamed Co"})
    assert _one(db, "SELECT name FROM crm.company_index WHERE crm_record_id = %s", cid) == "Renamed Co"
    assert _drain(db_dsn, clients) == 1
    assert hubspot.properties("companies", cid)["name"] == "Renamed Co"
    with pytest.raises(InvalidInputError, match="not a domain"):
        update_company(db, ORG, cid, {"domain": "not a domain"})


def test_a_dead_lettered_update_returns_the_index_to_the_crm_value_and_shows_in_status(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    rid = str(
        _one(
            db, "SELECT crm_record_id FROM crm.contact_index WHERE job_title IS NOT NULL ORDER BY id LIMIT 1"
        )
    )
    crm_title = hubspot.properties("contacts", rid)["jobtitle"]
    crm_stage = hubspot.properties("contacts", rid).get("lifecyclestage")
    # a lifecycle stage HubSpot refuses (not an option of the property): the write is dead-lettered at once
    q = update_contact(db, ORG, rid, {"job_title": "Chief Optimist", "lifecycle_stage": "astronaut"})
    assert (
        _one(db, "SELECT job_title FROM crm.contact_index WHERE crm_record_id = %s", rid) == "Chief Optimist"
    )
    _drain(db_dsn, clients)
    assert _one(db, "SELECT status FROM crm.writeback_queue WHERE id = %s", q.job_id) == "dead_letter"
    # the refetch was queued; the hydrate worker writes the CRM's values back over the optimistic ones
    assert _one(db, "SELECT count(*) FROM crm.job WHERE kind = 'hydrate' AND status = 'pending'") == 1
    Worker(db_dsn, Queue("crm.job"), hydrate_handler(clients.fetcher), kind="hydrate").run_once()
    row = db.execute(
        "SELECT job_title, lifecycle_stage FROM crm.contact_index WHERE crm_record_id = %s", (rid,)
    ).fetchone()
    assert row is not None and row[0] == crm_title
    assert (row[1] or None) == (crm_stage or None) or row[1] != "astronaut"
    # visible: org_stats, status and the activity log
    assert _one(db, "SELECT writebacks_dead FROM crm.org_stats(%s)", ORG) == 1
    text = render(org_status(db, ORG))
    assert f"dead #{q.job_id}" in text
    log = db.execute(
        "SELECT entity_type, reason, outcome, detail ->> 'job_id' FROM crm.activation_log WHERE crm_record_id = %s",
        (rid,),
    ).fetchall()
    assert log == [("contact", "writeback", "dead_letter", str(q.job_id))]


@pytest.mark.parametrize("source", ["hubspot", "attio"])
def test_a_deal_created_twice_through_the_queue_exists_once_with_its_stage_id(
    db: Conn, db_dsn: str, clients: Clients, source: Source, request: pytest.FixtureRequest
) -> None:
    fake = request.getfixturevalue(source)
    pipeline = "default" if source == "hubspot" else "stage"
    row = db.execute(
        "SELECT stage_label, stage_id FROM crm.crm_pipeline_stage WHERE crm_source = %s AND pipeline_id = %s "
        "AND NOT archived ORDER BY display_order DESC LIMIT 1",
        (source, pipeline),
    ).fetchone()
    assert row is not None
    label, stage_id = str(row[0]), str(row[1])

    def count() -> int:
        return int(fake.count("deals")) if source == "hubspot" else len(fake.record_ids("deals"))

    before = count()
    first = create_deal(db, ORG, source, {"name": "Nimbus expansion", "stage": label, "amount": 9000})
    again = create_deal(db, ORG, source, {"name": "Nimbus expansion", "stage": label})
    assert first.job_id == again.job_id
    assert _drain(db_dsn, clients) == 1
    third = create_deal(db, ORG, source, {"name": "Nimbus expansion", "amount": 12000})
    assert third.job_id != first.job_id
    assert _drain(db_dsn, clients) == 1
    assert count() == before + 1
    ids = db.execute(
        "SELECT DISTINCT result ->> 'crm_record_id' FROM crm.writeback_queue WHERE operation = 'create'"
    ).fetchall()
    assert len(ids) == 1
    deal = str(ids[0][0])
    if source == "hubspot":
        props = fake.properties("deals", deal)
        assert (props["dealname"], props["amount"]) == ("Nimbus expansion", "12000")
        assert props["dealstage"] == stage_id == first.payload["dealstage"]  # the third did not reset it
    else:
        assert first.payload["stage"] == [{"status": stage_id}]
        rec = fake.record("deals", deal)
        assert rec is not None
        [stage] = [v for v in rec["values"]["stage"] if v.get("active_until") is None]
        assert stage["status"]["id"]["status_id"] == stage_id
    with pytest.raises(InvalidInputError, match="needs a name"):
        create_deal(db, ORG, source, {"stage": label})
    with pytest.raises(InvalidInputError, match="no deal stage"):
        create_deal(db, ORG, source, {"name": "x", "stage": "Teleportation"})


def test_the_tools_run_the_write_path_for_the_callers_org_only(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    """The executor (as crm_app, bound to the caller's org) runs update_deal by label, associate, create_company,
    create_deal and log_activity; an org among the arguments is refused, and bad input is a typed error."""
    from crmindex.app import CrmIndex
    from crmindex.tools import ToolExecutor

    deal = str(
        _one(db, "SELECT crm_record_id FROM crm.deal_index WHERE pipeline = 'default' ORDER BY id LIMIT 1")
    )
    contact = str(_one(db, "SELECT crm_record_id FROM crm.contact_index ORDER BY id LIMIT 1"))
    label, stage_id = _other_stage(db, "hubspot", deal)
    with CrmIndex(db_dsn, pool_size=2) as idx:
        tools = ToolExecutor(idx, ORG)
        moved = tools.call("update_deal", {"deal": deal, "fields": {"stage": label}})
        assert moved.content["payload"] == {"dealstage": stage_id}, moved.content
        linked = tools.call(
            "associate", {"record_type": "contact", "record": contact, "other_type": "deal", "other": deal}
        )
        assert linked.content["payload"]["action"] == "associate", linked.content
        made = tools.call("create_company", {"fields": {"name": "Orbit", "domain": "orbit.example"}})
        assert made.content["crm_source"] == "hubspot", made.content
        newdeal = tools.call("create_deal", {"fields": {"name": "Orbit pilot", "stage": label}})
        assert newdeal.content["payload"]["dealstage"] == stage_id, newdeal.content
        note = tools.call("log_activity", {"kind": "meeting", "record": contact, "body": "Kickoff"})
        assert note.content["crm_record_id"] == contact, note.content
        refused = tools.call("update_deal", {"deal": deal, "fields": {"stage": label}, "org_id": str(ORG)})
        assert refused.content["error"]["code"] == "org_not_allowed"
        bad = tools.call("update_deal", {"deal": deal, "fields": {"stage": "Teleportation"}})
        assert bad.content["error"]["code"] == "invalid_input"
    assert _drain(db_dsn, clients) == 5
    assert hubspot.properties("deals", deal)["dealstage"] == stage_id
    assert int(contact) in hubspot.associations("deals", deal, "contacts")
    assert [e["type"] for e in hubspot.engagements_on("contacts", contact)] == ["meetings"]
