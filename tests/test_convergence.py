"""Issue 5's proof: webhooks are hints, yet the index converges to the CRM's state.

Random sequences of CRM mutations on :class:`FakeHubSpot` (create, property updates, delete, restore, merge,
contact<->company and deal<->contact associations, deal stage changes) each emit signed webhook deliveries.
Hypothesis decides what happens to every delivery: delivered at once, later (reordered behind newer ones),
twice (duplicated) or never (dropped). Processing runs at random points in between, so hydration reads
intermediate CRM states. Then:

1. every record no dropped delivery was about must already equal the fake CRM's state, field by field
   (webhooks + hydration alone converge, whatever the order and duplicates);
2. after ``reconcile_hubspot`` (the repair tool for drops) the whole index equals the CRM's state: contact
   fields, soft deletes of deleted and merged-away records, deal<->contact links, deal summaries.

Like real HubSpot, the fake bumps a record's last-modified date when its associations change
(``associatedcompanyid`` on contacts, the ``num_associated_*`` rollups on deals), so a modified-time reconcile
sees association changes whose webhooks were dropped.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmindex.crm.hubspot.adapters import HubSpotFetcher
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.crm.hubspot.properties import LIFECYCLE_FROM_HUBSPOT
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.intake import WebhookReceiver
from crmindex.freshness.reconcile import reconcile_hubspot
from crmindex.freshness.sync import HubSpotLister, run_sync
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.platform.limits import LimitClass
from crmindex.platform.local_limiter import LocalRateLimiter, Rate
from crmindex.platform.queue import Queue, Worker
from crmindex.testing import FakeHubSpot
from crmindex.testing._server import Delivery
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM

Conn = psycopg.Connection[tuple[object, ...]]
URL = "https://hooks.example.com/webhooks/hubspot"
SECRET = "convergence-client-secret"
TOKEN_ENV, SECRET_ENV = "CONVERGENCE_HS_TOKEN", "CONVERGENCE_HS_SECRET"
N_CONTACTS = 24
CONTACT_FIELDS = ("firstname", "lastname", "email", "jobtitle", "lifecyclestage")
VALUES: dict[str, list[str]] = {
    "firstname": ["Ann", "Bob", "Chloé", ""],
    "lastname": ["Lee", "O'Brien", "Smith", ""],
    "jobtitle": ["CTO", "VP of Sales", "Software Engineer", "Head of Growth", ""],
    "lifecyclestage": ["lead", "marketingqualifiedlead", "salesqualifiedlead", "customer", "opportunity", ""],
}
STAGES = ["appointmentscheduled", "qualifiedtobuy", "closedwon", "closedlost", "contractsent"]

_portal = iter(range(700_000, 800_000))


# ---------------------------------------------------------------------------------------------- operations
# An operation is a tuple of small ints; targets are picked among the records that exist when it runs
# (so every generated sequence is valid, and shrinking keeps it valid).
OP_KINDS = [
    "create",
    "update",
    "update",
    "update",
    "delete",
    "restore",
    "merge",
    "company",
    "deal_contact",
    "deal_contact",
    "deal_stage",
    "deal_delete",
    "deal_restore",
]
ops_strategy = st.lists(
    st.tuples(st.sampled_from(OP_KINDS), st.integers(0, 1_000), st.integers(0, 1_000), st.integers(0, 1_000)),
    min_size=1,
    max_size=18,
)
# what happens to one webhook delivery
FATES = st.sampled_from(["now", "now", "now", "later", "twice", "drop"])


@dataclass
class World:
    fake: FakeHubSpot
    org: uuid.UUID
    dsn: str
    db: Conn
    receiver: WebhookReceiver
    client: HubSpotClient
    pending: list[Delivery] = field(default_factory=list)
    tainted: set[tuple[str, str]] = field(default_factory=set)  # (kind, id) named by a dropped delivery
    ever_linked: dict[str, set[str]] = field(default_factory=dict)  # deal id -> contacts ever linked
    email_n: int = 0

    # -- CRM side -------------------------------------------------------------------------------------
    def live(self, kind: str) -> list[str]:
        st_ = self.fake.store(kind)
        out = []
        for oid in st_.ids_from(0):
            rec = st_.get(oid)
            if rec is not None and not rec.archived:
                out.append(str(oid))
        return out

    def archived(self, kind: str) -> list[str]:
        st_ = self.fake.store(kind)
        return [str(o) for o in st_.ids_from(0) if (r := st_.get(o)) is not None and r.archived]

    def email(self) -> str:
        self.email_n += 1
        return f"Person.{self.email_n}@Example-{self.org.hex[:6]}.COM"

    def run(self, op: tuple[str, int, int, int]) -> None:
        kind, a, b, c = op
        fake = self.fake
        contacts, companies, deals = self.live("contacts"), self.live("companies"), self.live("deals")
        if kind == "create":
            props: dict[str, Any] = {
                "email": self.email(),
                "firstname": VALUES["firstname"][a % 3],
                "lastname": VALUES["lastname"][b % 3],
                "jobtitle": VALUES["jobtitle"][c % 4],
                "lifecyclestage": VALUES["lifecyclestage"][a % 5],
            }
            if b % 2 and companies:
                props["associatedcompanyid"] = companies[c % len(companies)]
            fake.create("contacts", props)
        elif kind == "update" and contacts:
            name = CONTACT_FIELDS[b % len(CONTACT_FIELDS)]
            value = self.email() if name == "email" else VALUES[name][c % len(VALUES[name])]
            fake.update_property("contacts", contacts[a % len(contacts)], name, value)
        elif kind == "delete" and contacts:
            fake.delete("contacts", contacts[a % len(contacts)])
        elif kind == "restore" and (gone := self.archived("contacts")):
            fake.restore("contacts", gone[a % len(gone)])
        elif kind == "merge" and len(contacts) >= 2:
            primary = contacts[a % len(contacts)]
            others = [x for x in contacts if x != primary]
            fake.merge("contacts", primary, others[b % len(others)])
        elif kind == "company" and contacts and companies:
            contact, company = contacts[a % len(contacts)], companies[b % len(companies)]
            linked = company in {str(k) for k in fake.associations("contacts", contact, "companies")}
            remove = linked and c % 2 == 0
            fake.associate(
                "contacts", contact, "companies", company, remove=remove, primary=not remove and c % 3 != 1
            )
        elif kind == "deal_contact" and contacts and deals:
            deal, contact = deals[a % len(deals)], contacts[b % len(contacts)]
            linked = int(contact) in fake.associations("deals", deal, "contacts")
            if c % 2 == 0:
                fake.associate("deals", deal, "contacts", contact, remove=linked)
            else:
                fake.associate("contacts", contact, "deals", deal, remove=linked)
            self.ever_linked.setdefault(deal, set()).add(contact)
        elif kind == "deal_stage" and deals:
            fake.update_property("deals", deals[a % len(deals)], "dealstage", STAGES[b % len(STAGES)])
        elif kind == "deal_delete" and deals:
            fake.delete("deals", deals[a % len(deals)])
        elif kind == "deal_restore" and (gone := self.archived("deals")):
            fake.restore("deals", gone[a % len(gone)])
        else:
            return
        time.sleep(0.002)  # distinct millisecond event times between operations
        self.pending.extend(fake.take_deliveries())

    # -- delivery and processing ------------------------------------------------------------------------
    def deliver(self, fates: list[str], order: list[int]) -> None:
        keep: list[Delivery] = []
        for i in order:
            d, fate = self.pending[i], fates[i]
            if fate == "later":
                keep.append(d)
                continue
            if fate == "drop":
                self._taint(d)
                continue
            for _ in range(2 if fate == "twice" else 1):
                res = self.receiver.handle_hubspot("POST", d.url, d.headers, d.body)
                assert res.status == 200, res
        self.pending = keep

    def _taint(self, d: Delivery) -> None:
        kinds = {"contact": "contacts", "company": "companies", "deal": "deals"}
        for ev in d.json():
            kind = kinds[ev["subscriptionType"].split(".")[0]]
            for key in ("objectId", "primaryObjectId"):
                if ev.get(key) is not None:
                    self.tainted.add((kind, str(ev[key])))
            for m in ev.get("mergedObjectIds") or []:
                self.tainted.add((kind, str(m)))
            if ev.get("associationType"):
                a, b = ev["associationType"].split("_TO_")
                self.tainted.add((kinds[a.lower()], str(ev["fromObjectId"])))
                self.tainted.add((kinds[b.lower()], str(ev["toObjectId"])))

    def process(self) -> None:
        fetcher = HubSpotFetcher(self.client)
        inbox = Worker(self.dsn, INBOX, process_inbox)
        hydrate = Worker(
            self.dsn, Queue("crm.job"), hydrate_handler(lambda org, src: fetcher), kind="hydrate"
        )
        while inbox.run_once() + hydrate.run_once():
            pass


# ---------------------------------------------------------------------------------------------- comparison
def _lifecycle(v: str | None) -> str | None:
    return None if not v else LIFECYCLE_FROM_HUBSPOT.get(v.lower(), v.lower())


def _text(v: str | None) -> str | None:
    return (v or "").strip() or None


def _deal_open(props: dict[str, str | None]) -> bool:
    closed = props.get("hs_is_closed")
    if closed not in (None, ""):
        return str(closed).lower() != "true"
    return (props.get("dealstage") or "").lower() not in ("closedwon", "closedlost")


def mismatches(
    world: World, *, skip: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset()
) -> list[str]:
    """Every difference between the fake CRM and the index (records in ``skip`` are not compared)."""
    fake, db, org = world.fake, world.db, world.org
    out: list[str] = []
    rows = {
        str(r[0]): r[1:]
        for r in db.execute(
            "SELECT crm_record_id, first_name, last_name, email, job_title, lifecycle_stage, company_crm_id, "
            "deleted_at IS NOT NULL, has_active_deal, merged_into FROM crm.contact_index "
            "WHERE org_id = %s AND crm_source = 'hubspot'",
            (org,),
        )
    }
    deals_idx = {
        str(r[0]): r[1:]
        for r in db.execute(
            "SELECT crm_record_id, stage, deleted_at IS NOT NULL FROM crm.deal_index "
            "WHERE org_id = %s AND crm_source = 'hubspot'",
            (org,),
        )
    }
    links_idx = {
        (str(d), str(c))
        for d, c in db.execute(
            "SELECT deal_crm_id, contact_crm_id FROM crm.deal_contact "
            "WHERE org_id = %s AND crm_source = 'hubspot' AND NOT removed",
            (org,),
        )
    }
    live_deals = set(world.live("deals"))
    live_contacts = set(world.live("contacts"))
    links_fake = {(d, str(c)) for d in live_deals for c in fake.associations("deals", d, "contacts")}
    active: set[str] = set()
    for d in live_deals:
        if _deal_open(fake.properties("deals", d)):
            active.update(c for dd, c in links_fake if dd == d)
    st_ = fake.store("contacts")
    for oid in st_.ids_from(0):
        rid = str(oid)
        if ("contacts", rid) in skip:
            continue
        rec = st_.get(oid)
        row = rows.get(rid)
        if row is None and (rec is None or rec.archived):
            continue  # created and deleted before it was ever indexed: nothing to soft-delete
        if row is None:
            out.append(f"contact {rid}: not in the index")
            continue
        first, last, email, title, stage, company, deleted, has_deal, merged_into = row
        if rec is None:  # merged away
            want = str(st_.redirect.get(oid))
            if not deleted or merged_into != want:
                out.append(
                    f"contact {rid}: merged into {want}, index deleted={deleted} merged_into={merged_into}"
                )
            continue
        if rec.archived:
            if not deleted:
                out.append(f"contact {rid}: archived in the CRM, live in the index")
            continue
        p = rec.props
        want_row = (
            _text(p.get("firstname")),
            _text(p.get("lastname")),
            (_text(p.get("email")) or "").lower() or None,
            _text(p.get("jobtitle")),
            _lifecycle(p.get("lifecyclestage")),
            _text(p.get("associatedcompanyid")),
            False,
            rid in active,
        )
        got = (first, last, email, title, stage, company, deleted, has_deal)
        if got != want_row:
            out.append(f"contact {rid}: CRM {want_row} != index {got}")
    for deal_oid in world.fake.store("deals").ids_from(0):
        rid = str(deal_oid)
        if ("deals", rid) in skip:
            continue
        rec = fake.record("deals", rid)
        assert rec is not None
        got_deal = deals_idx.get(rid)
        want_deal: tuple[object, bool] = (_text(rec.props.get("dealstage")), rec.archived)
        if rec.archived and got_deal is not None:  # a deleted record's fields are not compared
            want_deal = (got_deal[0], True)
        if got_deal != want_deal:
            out.append(f"deal {rid}: CRM {want_deal} != index {got_deal}")
    compared = {
        (d, c)
        for d, c in links_idx | links_fake
        if d in live_deals and c in live_contacts and ("deals", d) not in skip and ("contacts", c) not in skip
    }
    for d, c in sorted(compared):
        if ((d, c) in links_fake) != ((d, c) in links_idx):
            out.append(f"deal {d} <-> contact {c}: CRM {(d, c) in links_fake}, index {(d, c) in links_idx}")
    return out


def tainted_closure(world: World) -> set[tuple[str, str]]:
    """Records a dropped delivery may have left stale (a stale deal also stales its contacts' summaries)."""
    out = set(world.tainted)
    for kind, rid in list(out):
        if kind == "deals":
            out.update(("contacts", c) for c in world.ever_linked.get(rid, ()))
            out.update(("contacts", str(c)) for c in world.fake.associations("deals", rid, "contacts"))
    # merges carry over whatever the merged-away record had
    st_ = world.fake.store("contacts")
    for old, new in st_.redirect.items():
        if ("contacts", str(old)) in out:
            out.add(("contacts", str(new)))
    # and a record merged into one whose own merge went undelivered (1 into 23, then 23 into 3 with the second
    # webhook dropped: the fake's redirect says 1 -> 3, the index can only know 1 -> 23) waits for reconcile too
    for old, new in st_.redirect.items():
        if ("contacts", str(new)) in out:
            out.add(("contacts", str(old)))
    return out


# ---------------------------------------------------------------------------------------------- the test
@pytest.fixture
def env(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, WebhookReceiver]]:
    monkeypatch.setenv(TOKEN_ENV, "test-token")
    monkeypatch.setenv(SECRET_ENV, SECRET)
    receiver = WebhookReceiver(db_dsn)
    yield db_dsn, receiver
    receiver.close()


FAST = LocalRateLimiter(
    {LimitClass.HUBSPOT_GENERAL: Rate(10_000, 1_000), LimitClass.HUBSPOT_SEARCH: Rate(10_000, 1_000)}
)


@settings(
    max_examples=int(os.environ.get("CONVERGENCE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(ops=ops_strategy, data=st.data())
def test_index_converges_to_the_crm(
    env: tuple[str, WebhookReceiver], ops: list[tuple[str, int, int, int]], data: st.DataObject
) -> None:
    dsn, receiver = env
    org = uuid.uuid4()
    portal = next(_portal)
    with (
        FakeHubSpot(
            limits=False, webhook_url=URL, client_secret=SECRET, emit="collect", portal_id=portal
        ) as fake,
        psycopg.connect(dsn, autocommit=True) as db,
    ):
        fake.seed_from(SyntheticCRM(7, N_CONTACTS, companies=5, deals=3))
        connect_with_token(db, None, org, "hubspot", "test-token", account_id=str(portal),
                           base_url=fake.base_url, webhook_secret=SECRET)  # fmt: skip
        receiver.forget_routes()  # see the new connection at once (else within a second: intake.ROUTE_RETRY_S)
        client = HubSpotClient(fake.base_url, lambda: "test-token", FAST)
        try:
            run_sync(db, org, HubSpotLister(client), progress=False)
            world = World(fake, org, dsn, db, receiver, client)
            for d in fake.store("deals").ids_from(0):
                world.ever_linked[str(d)] = {str(c) for c in fake.associations("deals", d, "contacts")}
            assert mismatches(world) == [], "the initial sync must equal the CRM"
            started = datetime.now(UTC)
            for op in ops:
                world.run(op)
                if len(world.pending) > 0 and data.draw(st.booleans(), label="flush"):
                    n = len(world.pending)
                    fates = data.draw(st.lists(FATES, min_size=n, max_size=n), label="fates")
                    order = data.draw(st.permutations(range(n)), label="order")
                    world.deliver(fates, order)
                    if data.draw(st.booleans(), label="process"):
                        world.process()
            # the rest: nothing stays "later" forever
            n = len(world.pending)
            if n:
                fates = [
                    f if f != "later" else "now" for f in data.draw(st.lists(FATES, min_size=n, max_size=n))
                ]
                world.deliver(fates, data.draw(st.permutations(range(n)), label="final order"))
            world.process()
            left = db.execute(
                "SELECT (SELECT count(*) FROM crm.webhook_inbox WHERE org_id = %s AND status <> 'completed'), "
                "(SELECT count(*) FROM crm.job WHERE org_id = %s AND status <> 'completed')",
                (org, org),
            ).fetchone()
            assert left == (0, 0), f"unfinished inbox deliveries / jobs: {left}"

            skip = tainted_closure(world)
            bad = mismatches(world, skip=skip)
            assert bad == [], "webhooks alone did not converge:\n" + "\n".join(bad)

            reconcile_hubspot(db, org, client, since=started - timedelta(seconds=1))
            world.process()
            bad = mismatches(world)
            assert bad == [], "not converged after reconcile:\n" + "\n".join(bad)
        finally:
            client.close()
