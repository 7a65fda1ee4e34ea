"""Associations (issue 16): associate / disassociate contact <-> company, contact <-> deal and company <-> deal
through the write-back queue; the index changes at once, the change lands in the fake CRM, and the webhooks
the CRM sends back (its echo) converge with it: nothing is undone or duplicated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from crmindex.crm.clients import Clients
from crmindex.crm.http import RetryPolicy
from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.sync import AttioLister, HubSpotLister, run_sync
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.index.writes import ensure_org
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.queue import Queue, Worker
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.drainer import Drainer
from crmindex.writeback.records import associate
from tests.orgs import ORG

Conn = psycopg.Connection[tuple[object, ...]]
TOKEN = "test-token"
SEED = 41
HOOK = "http://127.0.0.1:9/none"


def _connect(db: Conn, dsn: str, source: str, base_url: str, account: str) -> None:
    ensure_org(db, ORG)
    connect_with_token(db, None, ORG, source, TOKEN, account_id=account, base_url=base_url)
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
    with FakeHubSpot(limits=False, tokens=[TOKEN], webhook_url=HOOK, emit="collect") as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=20, companies=5, deals=5))
        _connect(db, db_dsn, "hubspot", f.base_url, str(f.portal_id))
        run_sync(db, ORG, HubSpotLister(clients.client(ORG, "hubspot")), progress=False)
        f.take_deliveries()
        yield f


@pytest.fixture
def attio(db: Conn, db_dsn: str, clients: Clients) -> Iterator[FakeAttio]:
    with FakeAttio(limits=False, tokens=[TOKEN], webhook_url=HOOK, emit="collect") as f:
        f.seed_from(SyntheticCRM(seed=SEED, contacts=20, companies=5, deals=5, source="attio"))
        _connect(db, db_dsn, "attio", f.base_url, f.workspace_id)
        run_sync(db, ORG, AttioLister(clients.client(ORG, "attio")), progress=False)
        f.take_deliveries()
        yield f


def _land_and_echo(db: Conn, dsn: str, clients: Clients, fake: Any, source: str, account: str) -> int:
    """Drain the queue, feed the CRM's webhooks back (the echo), process them and their hydrations."""
    sent = Drainer(dsn, clients.writer, poll_s=0.2).run_once()
    deliveries = fake.take_deliveries()
    assert deliveries, "the CRM echoes its API writes"
    with psycopg.connect(dsn, autocommit=True) as c2:
        for d in deliveries:
            c2.execute(
                "SELECT crm.webhook_accept(%s, %s, %s, %s, '{}', 1)", (ORG, source, account, d.body.decode())
            )
    Worker(dsn, INBOX, process_inbox).run_once()
    Worker(dsn, Queue("crm.job"), hydrate_handler(clients.fetcher), kind="hydrate").run_once()
    return sent


def _pick(db: Conn) -> tuple[str, str, str, str]:
    """A contact, a company that is not its company, a deal it is not on, a company that is not the deal's."""
    row = db.execute(
        "SELECT c.crm_record_id, co.crm_record_id, d.crm_record_id, dco.crm_record_id "
        "FROM crm.contact_index AS c, crm.company_index AS co, crm.deal_index AS d, crm.company_index AS dco "
        "WHERE co.crm_record_id IS DISTINCT FROM c.company_crm_id AND dco.crm_record_id IS DISTINCT FROM d.company_crm_id "
        "AND NOT EXISTS (SELECT FROM crm.deal_contact AS x WHERE x.deal_crm_id = d.crm_record_id "
        "AND x.contact_crm_id = c.crm_record_id AND NOT x.removed) "
        "ORDER BY c.id, co.id, d.id, dco.id LIMIT 1"
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1]), str(row[2]), str(row[3])


def _index_state(db: Conn, contact: str, deal: str) -> tuple[Any, ...]:
    row = db.execute(
        "SELECT (SELECT company_crm_id FROM crm.contact_index WHERE crm_record_id = %s), "
        "(SELECT company_crm_id FROM crm.deal_index WHERE crm_record_id = %s), "
        "(SELECT array_agg(contact_crm_id ORDER BY contact_crm_id) FROM crm.deal_contact "
        " WHERE deal_crm_id = %s AND NOT removed), "
        "(SELECT has_active_deal FROM crm.contact_index WHERE crm_record_id = %s)",
        (contact, deal, deal, contact),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_hubspot_associate_and_disassociate_round_trip_converges_with_the_echo(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    contact, company, deal, deal_company = _pick(db)
    associate(db, ORG, "company", company, "contact", contact)  # either order
    associate(db, ORG, "contact", contact, "deal", deal)
    associate(db, ORG, "deal", deal, "company", deal_company)
    again = associate(db, ORG, "contact", contact, "deal", deal)  # the same change again: the same job
    state = _index_state(db, contact, deal)
    assert state[0] == company and state[1] == deal_company and contact in (state[2] or [])
    assert db.execute("SELECT count(*) FROM crm.writeback_queue").fetchone() == (3,)
    assert again.payload["from_type"] == "deal" and again.payload["to_id"] == contact
    assert _land_and_echo(db, db_dsn, clients, hubspot, "hubspot", str(hubspot.portal_id)) == 3
    assert hubspot.associations("contacts", contact, "companies").get(int(company)) is True  # primary
    assert int(contact) in hubspot.associations("deals", deal, "contacts")
    assert hubspot.associations("deals", deal, "companies").get(int(deal_company)) is True
    assert hubspot.properties("contacts", contact)["associatedcompanyid"] == company
    assert _index_state(db, contact, deal) == state  # the echo confirmed it: nothing undone, nothing doubled
    assert db.execute(
        "SELECT count(*) FROM crm.deal_contact WHERE deal_crm_id = %s AND contact_crm_id = %s",
        (deal, contact),
    ).fetchone() == (1,)
    # and back
    associate(db, ORG, "contact", contact, "deal", deal, remove=True)
    associate(db, ORG, "deal", deal, "company", deal_company, remove=True)
    associate(db, ORG, "contact", contact, "company", company, remove=True)
    removed = _index_state(db, contact, deal)
    assert removed[0] is None and removed[1] is None and contact not in (removed[2] or [])
    assert _land_and_echo(db, db_dsn, clients, hubspot, "hubspot", str(hubspot.portal_id)) == 3
    assert int(company) not in hubspot.associations("contacts", contact, "companies")
    assert int(contact) not in hubspot.associations("deals", deal, "contacts")
    assert _index_state(db, contact, deal) == removed
    assert db.execute("SELECT status, count(*) FROM crm.writeback_queue GROUP BY 1").fetchall() == [
        ("completed", 6)
    ]


def test_attio_associate_and_disassociate_round_trip_converges_with_the_echo(
    db: Conn, db_dsn: str, attio: FakeAttio, clients: Clients
) -> None:
    contact, company, deal, deal_company = _pick(db)
    associate(db, ORG, "contact", contact, "company", company)
    associate(db, ORG, "deal", deal, "contact", contact)
    associate(db, ORG, "deal", deal, "company", deal_company)
    state = _index_state(db, contact, deal)
    assert _land_and_echo(db, db_dsn, clients, attio, "attio", attio.workspace_id) == 3

    def refs(obj: str, rid: str, attribute: str) -> list[str]:
        rec = attio.record(obj, rid)
        assert rec is not None
        return [
            v["target_record_id"] for v in rec["values"].get(attribute, []) if v.get("active_until") is None
        ]

    assert refs("people", contact, "company") == [company]
    assert contact in refs("deals", deal, "associated_people")
    assert refs("deals", deal, "associated_company") == [deal_company]
    assert _index_state(db, contact, deal) == state
    others = [c for c in refs("deals", deal, "associated_people") if c != contact]
    associate(db, ORG, "deal", deal, "contact", contact, remove=True)
    associate(db, ORG, "contact", contact, "company", company, remove=True)
    assert _land_and_echo(db, db_dsn, clients, attio, "attio", attio.workspace_id) == 2
    assert refs("deals", deal, "associated_people") == others  # the deal's other people stay
    assert refs("people", contact, "company") == []
    after = _index_state(db, contact, deal)
    assert after[0] is None and contact not in (after[2] or [])


def test_bad_associations_are_typed_errors_that_change_nothing(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot
) -> None:
    contact, company, deal, _ = _pick(db)
    with pytest.raises(InvalidInputError, match="contact and company"):
        associate(db, ORG, "contact", contact, "contact", contact)
    with pytest.raises(NotFoundError):
        associate(db, ORG, "contact", contact, "company", "404404")
    with pytest.raises(NotFoundError):
        associate(db, ORG, "deal", "nope", "company", company)
    assert db.execute("SELECT count(*) FROM crm.writeback_queue").fetchone() == (0,)
    assert _index_state(db, contact, deal)[0] != company


def test_an_older_echo_arriving_after_a_newer_local_change_does_not_undo_it(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    contact, company, deal, _ = _pick(db)
    associate(db, ORG, "contact", contact, "deal", deal)
    associate(db, ORG, "contact", contact, "company", company)
    assert Drainer(db_dsn, clients.writer, poll_s=0.2).run_once() == 2
    first_echo = hubspot.take_deliveries()
    # the user changes their mind before the CRM's webhooks for the first change arrive
    associate(db, ORG, "contact", contact, "deal", deal, remove=True)
    associate(db, ORG, "contact", contact, "company", company, remove=True)
    assert Drainer(db_dsn, clients.writer, poll_s=0.2).run_once() == 2
    second_echo = hubspot.take_deliveries()
    with psycopg.connect(db_dsn, autocommit=True) as c2:
        for d in [*second_echo, *first_echo]:  # the older echo last
            c2.execute(
                "SELECT crm.webhook_accept(%s, 'hubspot', %s, %s, '{}', 1)",
                (ORG, str(hubspot.portal_id), d.body.decode()),
            )
    Worker(db_dsn, INBOX, process_inbox).run_once()
    Worker(db_dsn, Queue("crm.job"), hydrate_handler(clients.fetcher), kind="hydrate").run_once()
    state = _index_state(db, contact, deal)
    assert state[0] != company and contact not in (state[2] or [])
    assert int(contact) not in hubspot.associations("deals", deal, "contacts")


def test_the_newest_intent_wins_over_an_opposite_change_still_waiting(
    db: Conn, db_dsn: str, hubspot: FakeHubSpot, clients: Clients
) -> None:
    """An associate that failed (waiting for its retry) and then a disassociate of the same pair: the associate
    is superseded, so its retry cannot land after the disassociate."""
    contact, _, deal, _ = _pick(db)
    first = associate(db, ORG, "contact", contact, "deal", deal)
    hubspot.set_faults(fail_next=[500, 500], only_paths="/associations/")
    assert Drainer(db_dsn, clients.writer, poll_s=0.2).run_once() == 1
    hubspot.clear_faults()
    assert db.execute("SELECT status FROM crm.writeback_queue WHERE id = %s", (first.job_id,)).fetchone() == (
        "failed",
    )
    second = associate(db, ORG, "deal", deal, "contact", contact, remove=True)
    db.execute("UPDATE crm.writeback_queue SET next_retry_at = now() WHERE status = 'failed'")
    assert db.execute(
        "SELECT status, result FROM crm.writeback_queue WHERE id = %s", (first.job_id,)
    ).fetchone() == (
        "completed",
        {"superseded_by": second.job_id},
    )
    assert Drainer(db_dsn, clients.writer, poll_s=0.2).run_once() == 1
    assert int(contact) not in hubspot.associations("deals", deal, "contacts")
    assert contact not in (_index_state(db, contact, deal)[2] or [])
