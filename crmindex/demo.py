"""``crmindex demo``: the whole flow end to end on the embedded default.

A throwaway PostgreSQL, migrations, a fake HubSpot (50,000 contacts by default, with companies and deals) and
a smaller fake Attio, connected to two orgs; initial syncs with progress bars; the webhook receiver and the
workers running; live CRM changes streamed through signed webhooks; the copilot's searches with timings and
interpretations; materialization on a meeting booking and on enrichment; write-backs drained within the
rate limit; then ``crmindex status``. Ctrl-C at any point stops and removes everything it started.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg

from crmindex.app import CrmIndex
from crmindex.crm.connections import begin_oauth, complete_oauth, oauth_provider
from crmindex.crm.http import RetryPolicy
from crmindex.crm.oauth import OAuthApp, parse_redirect
from crmindex.index.search import search
from crmindex.index.writes import ensure_org
from crmindex.platform.db import Conn, connect
from crmindex.platform.migrate import migrate
from crmindex.platform.pgcluster import LocalCluster
from crmindex.platform.secrets import Secret, new_key_spec
from crmindex.records.materialize import activate_by_email, record_enrichment
from crmindex.status import org_status, render
from crmindex.testing import FakeAttio, FakeHubSpot
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.activities import log_activity
from crmindex.writeback.enqueue import update_contact
from crmindex.writeback.records import associate, update_deal

HUBSPOT_ORG = uuid.UUID("00000000-0000-4000-8000-00000000d3e0")
ATTIO_ORG = uuid.UUID("00000000-0000-4000-8000-00000000d3e1")
REDIRECT_URI = "https://crmindex.example/oauth/callback"  # the demo apps' registered redirect
PRO_LIMIT = 190  # HubSpot Professional: 190 requests per 10 s


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def _say(title: str) -> None:
    print(f"\n== {title}", flush=True)


@contextlib.contextmanager
def _database(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    print("starting a throwaway PostgreSQL cluster ...", flush=True)
    with LocalCluster(cron_database="crmindex") as cluster:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE crmindex")
        print(f"  PostgreSQL {cluster.major} at {cluster.url('crmindex')}", flush=True)
        yield cluster.dsn("crmindex")
    print("cluster stopped and removed", flush=True)


@contextlib.contextmanager
def _webhook_server(idx: CrmIndex) -> Iterator[str]:
    """The receiver of the composition root behind a local WSGI server; yields its URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, idx.wsgi_app(), handler_class=_QuietHandler)
    url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="crmindex-webhooks", daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def _wait(check: Callable[[], bool], timeout: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if check():
            return time.perf_counter() - started
        time.sleep(0.2)
    return -1.0


def _one(conn: Conn, sql: str, params: tuple[object, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the demo's duration (the receiver and workers read them), then restore."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_demo(contacts: int = 50_000, dsn: str | None = None, seed: int = 7) -> int:
    started = time.perf_counter()
    # a throwaway key ring seals the tokens; the demo's OAuth apps (one per fake CRM) have throwaway credentials:
    # the HubSpot app's client secret also signs its webhooks, and the receiver reads it from the environment
    keys = new_key_spec("demo")
    hs_app = OAuthApp("demo-hubspot-app", Secret(secrets.token_hex(16)), REDIRECT_URI)
    at_app = OAuthApp("demo-attio-app", Secret(secrets.token_hex(16)), REDIRECT_URI)
    rng = random.Random(seed)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_environ({
            "CRMINDEX_SECRET_KEYS": keys,
            "CRMINDEX_HUBSPOT_CLIENT_ID": hs_app.client_id,
            "CRMINDEX_HUBSPOT_CLIENT_SECRET": hs_app.client_secret.reveal(),
        }))  # fmt: skip
        target = stack.enter_context(_database(dsn))
        conn = stack.enter_context(connect(target))
        for m in migrate(conn):
            print(f"  applied migration {m.version:04d}_{m.name}")
        # the composition root: pool, key ring, token store, clients and limiters, workers, webhook receiver.
        # Tokens may go only to the CRMs' real hosts, and here to the fakes on 127.0.0.1 (the allow-list).
        idx = stack.enter_context(
            CrmIndex(
                target,
                allowed_base_urls=["http://127.0.0.1:*"],
                apps={"hubspot": hs_app},
                retry=RetryPolicy(),
            )
        )
        box = idx.box
        hook_url = stack.enter_context(_webhook_server(idx))

        _say(f"fake CRMs: HubSpot with {contacts:,} contacts, Attio with {max(contacts // 25, 200):,} people")
        hubspot = stack.enter_context(
            FakeHubSpot(
                tier="professional",  # 190 requests / 10 s, 625,000 a day: its X-HubSpot-RateLimit-* headers say so
                webhook_url=f"{hook_url}/webhooks/hubspot",
                client_secret=hs_app.client_secret.reveal(),
            )
        )
        hubspot.seed_from(SyntheticCRM(seed=seed, contacts=contacts))
        # a second deal pipeline (numeric stage ids, as HubSpot gives every pipeline but the default one) holding
        # a few deals: the index shows and searches their labels (owners and stages are synced per org)
        pipeline_id, stage_ids = hubspot.metadata.add_pipeline(
            "Enterprise",
            [("Discovery", "0.2", False), ("Negotiation", "0.7", False), ("Signed", "1.0", True)],
        )
        enterprise_deals = [str(d) for d in list(hubspot.store("deals").ids_from(0))[:30]]
        for k, deal_id in enumerate(enterprise_deals):
            hubspot.update("deals", deal_id, {"pipeline": pipeline_id, "dealstage": stage_ids[k % 3]})
        attio = stack.enter_context(FakeAttio())  # its webhook is registered through its API at connect
        attio.seed_from(SyntheticCRM(seed=seed + 1, contacts=max(contacts // 25, 200), source="attio"))
        print(
            f"  HubSpot at {hubspot.base_url} (Professional limits: {PRO_LIMIT} requests / 10 s), "
            f"Attio at {attio.base_url}"
        )

        _say("connect")
        ensure_org(conn, HUBSPOT_ORG, "Acme Sales (HubSpot)")
        ensure_org(conn, ATTIO_ORG, "Globex (Attio)")
        # OAuth installs: the authorize URL, the user's approval in the CRM (the fakes' approve()), the redirect's
        # code exchanged for tokens; each account id comes from its token; tokens are stored encrypted
        allowed = [hubspot.base_url, attio.base_url]  # the fakes: tokens go nowhere else
        hubspot.oauth.register_app(hs_app.client_id, hs_app.client_secret.reveal(), [REDIRECT_URI])
        attio.oauth.register_app(at_app.client_id, at_app.client_secret.reveal(), [REDIRECT_URI])
        # Attio wants an https webhook URL; the demo's receiver is local http
        attio.oauth.allow_http_targets = True
        hs_oauth = oauth_provider("hubspot", hs_app, api_base=hubspot.base_url,
                                  authorize_url=f"{hubspot.base_url}/oauth/authorize", hosts=allowed)  # fmt: skip
        at_oauth = oauth_provider("attio", at_app, api_base=attio.base_url, oauth_base=attio.base_url,
                                  hosts=allowed)  # fmt: skip
        installed = []
        for org, fake, provider, hook in (
            (HUBSPOT_ORG, hubspot, hs_oauth, None),
            (ATTIO_ORG, attio, at_oauth, f"{hook_url}/webhooks/attio"),
        ):
            auth = begin_oauth(conn, box, provider, org, REDIRECT_URI)
            code, state = parse_redirect(fake.oauth.approve(auth.url))  # the user clicks "Connect app"
            installed.append(complete_oauth(conn, box, provider, code=code, state=state, webhook_url=hook))
        print(
            f"  org Acme Sales -> HubSpot portal {installed[0].account_id}, org Globex -> Attio workspace "
            f"{installed[1].account_id} (OAuth installs; account ids from the tokens; tokens stored encrypted; "
            "Attio webhook registered through its API)"
        )

        _say("initial sync")
        t = time.perf_counter()
        [hs_report] = idx.sync(HUBSPOT_ORG, progress=True)
        hs_s = time.perf_counter() - t
        t = time.perf_counter()
        [at_report] = idx.sync(ATTIO_ORG, progress=True)
        at_s = time.perf_counter() - t
        print(
            f"  HubSpot: {hs_report.records:,} records in {hs_s:.1f} s; Attio: {at_report.records:,} in {at_s:.1f} s"
        )
        learned = conn.execute(
            "SELECT permits, per_seconds, origin, daily_limit FROM crm.rate_limit_status(%s, 'hubspot') "
            "WHERE limit_class = 'general'",
            (HUBSPOT_ORG,),
        ).fetchone()
        if learned is not None:
            print(
                f"  HubSpot limits read from its X-HubSpot-RateLimit-* headers: {learned[0]} requests / "
                f"{learned[1]:.0f} s ({learned[2]}), {learned[3] or 0:,} a day"
            )
        owners, stages = (
            _one(conn, "SELECT count(*) FROM crm.crm_owner WHERE org_id = %s", (HUBSPOT_ORG,)),
            _one(conn, "SELECT count(*) FROM crm.crm_pipeline_stage WHERE org_id = %s", (HUBSPOT_ORG,)),
        )
        print(f"  HubSpot vocabulary: {owners} owners, {stages} deal stages (labels beside the ids)")
        conn.execute("ANALYZE crm.contact_index; ANALYZE crm.company_index")

        _say("webhook receiver and workers running; streaming live CRM changes")
        workers = idx.workers(poll_s=2.0)
        worker_thread = threading.Thread(target=workers.run, name="crmindex-demo-workers", daemon=True)
        worker_thread.start()
        stack.callback(worker_thread.join, 30)
        stack.callback(workers.stop.set)
        ids = [str(i) for i in list(hubspot.store("contacts").ids_from(0))[:400]]
        t = time.perf_counter()
        new_ids = [
            hubspot.create(
                "contacts",
                {
                    "email": f"new.lead{i}@northwind-fin.com",
                    "firstname": f"Lead{i}",
                    "lastname": "Newman",
                    "jobtitle": "VP Finance",
                },
            )
            for i in range(10)
        ]
        for cid in rng.sample(ids, 20):
            hubspot.update_property(
                "contacts", cid, "jobtitle", rng.choice(["Head of Sales", "CTO", "VP Marketing"])
            )
        gone = rng.sample(ids, 3)
        for cid in gone:
            hubspot.delete("contacts", cid)
        primary, dup = ids[-1], ids[-2]
        hubspot.merge("contacts", primary, dup)
        attio_person = attio.record_ids("people")[0]
        attio.update_property("people", attio_person, "job_title", "Chief Executive Officer")
        sent = len(hubspot.deliveries) + len(attio.deliveries)
        applied = _wait(
            lambda: (
                _one(
                    conn,
                    "SELECT count(*) FROM crm.contact_index WHERE org_id = %s AND crm_record_id = ANY(%s)",
                    (HUBSPOT_ORG, new_ids),
                )
                == len(new_ids)
                and _one(
                    conn,
                    "SELECT count(*) FROM crm.contact_index WHERE org_id = %s AND deleted_at IS NOT NULL "
                    "AND crm_record_id = ANY(%s)",
                    (HUBSPOT_ORG, [*gone, dup]),
                )
                == len(gone) + 1
                and _one(
                    conn,
                    "SELECT job_title FROM crm.contact_index WHERE org_id = %s AND crm_record_id = %s",
                    (ATTIO_ORG, attio_person),
                )
                == "Chief Executive Officer"
            ),
            60,
        )
        print(
            f"  {sent} signed webhook deliveries (10 creates, 20 updates, 3 deletes, 1 merge, 1 Attio update) "
            f"accepted and applied in {max(applied, 0):.1f} s"
            + ("" if applied >= 0 else " (still catching up)")
        )

        _say("copilot searches (interpretation, timing, top results)")
        sample = hubspot.properties("contacts", ids[5])
        first, last = sample.get("firstname") or "john", sample.get("lastname") or "smith"
        typo = (
            (first[:1] + first[2:3] + first[1:2] + first[3:])
            + " "
            + (last[:2] + last[3:4] + last[2:3] + last[4:])
        )
        domain = hubspot.properties("companies", str(next(iter(hubspot.store("companies").ids_from(0))))).get(
            "domain"
        )
        for q in [
            "VPs at fintech companies",
            "Stan from Acme",
            f"customers at {domain}",
            "customers with an open deal over 50k",
            typo,
            "directors of engineering in healthcare",
        ]:
            t = time.perf_counter()
            res = search(conn, HUBSPOT_ORG, q, limit=3)
            ms = (time.perf_counter() - t) * 1000
            interp = res.interpretation.explanation if res.interpretation else ""
            print(f"  {q!r}: {len(res.hits)} shown in {ms:.1f} ms — {interp}")
            for h in res.hits:
                print(
                    f"      {h.name:<28} {h.job_title or '':<32} {h.company_name or '':<26} {h.industry or ''}"
                )

        _say("the filters a copilot asks for: place, size, owner, last contact, close date (issue 17)")
        for q in [
            "companies in Germany with more than 500 employees",
            "VPs at companies in the UK",
            "deals closing this quarter over 10k",
            "contacts I haven't talked to in 90 days",
            "hot leads in Berlin",  # "hot" is not understood: said, never searched as text
        ]:
            t = time.perf_counter()
            res = search(conn, HUBSPOT_ORG, q, limit=3)
            ms = (time.perf_counter() - t) * 1000
            interp = res.interpretation.explanation if res.interpretation else ""
            shown = len(res.hits) + len(res.companies) + len(res.deals)
            print(f"  {q!r}: {shown} {res.subject} shown in {ms:.1f} ms — {interp}")
            for c in res.companies:
                print(
                    f"      {c.name or '':<32} {c.city or '':<16} {c.country or '':<14} {c.employee_count or '-'} staff"
                )
            for d in res.deals:
                print(
                    f"      {d.name or '':<32} {d.stage_label or d.stage or '':<22} {d.amount or '-'}  {d.close_date}"
                )
            for h in res.hits:
                print(f"      {h.name:<28} {h.job_title or '':<32} {h.company_name or '':<26}")

        _say("stage and owner labels in search results")
        for q in ("customers with an open deal over 50k", "VPs at fintech companies"):
            res = search(conn, HUBSPOT_ORG, q, limit=3)
            print(f"  {q!r}:")
            for h in res.hits:
                owner = getattr(h, "owner_name", None) or "-"  # owner names in hits: issue 17's search change
                print(f"      {h.name:<28} deal stage: {h.deal_stage or '-':<24} owner: {owner}")
        for stage_id, label, pipe, deal_name in conn.execute(
            "SELECT stage, stage_label, pipeline_label, name FROM crm.deal_index WHERE org_id = %s "
            "AND crm_record_id = ANY(%s) ORDER BY crm_record_id LIMIT 3",
            (HUBSPOT_ORG, enterprise_deals),
        ):
            print(f"      deal {str(deal_name)[:40]:<40} stage {stage_id} -> {label!r} in pipeline {pipe!r}")

        _say("materialization (tier 2)")
        email = hubspot.properties("contacts", ids[7]).get("email") or ""
        booked = activate_by_email(
            conn,
            idx.clients.fetcher(HUBSPOT_ORG, "hubspot"),
            HUBSPOT_ORG,
            email,
            reason="meeting_booked",
            actor="savvycal",
        )
        print(
            f"  meeting booked by {email}: {booked.outcome}, "
            f"{len(booked.record.properties) if booked.record else 0} CRM properties stored"
        )
        stranger = activate_by_email(
            conn,
            idx.clients.fetcher(HUBSPOT_ORG, "hubspot"),
            HUBSPOT_ORG,
            "visitor@unknown-startup.io",
            "Vic Visitor",
            create_in_crm="hubspot",
        )
        print(f"  meeting booked by someone not in the CRM: {stranger.outcome} contact, CRM create queued")
        enriched = record_enrichment(
            conn,
            idx.clients.fetcher(HUBSPOT_ORG, "hubspot"),
            HUBSPOT_ORG,
            ids[8],
            "apollo",
            {"linkedin": "https://linkedin.example/in/someone", "seniority": "vp"},
            write_back={"job_title": "VP of Revenue"},
        )
        print(
            f"  enrichment from apollo stored on {enriched.first_name} {enriched.last_name}; "
            "job title queued for write-back"
        )

        _say("write-back through the queue, within the rate limit")
        batch_before = len(hubspot.requests_to("/batch/update"))
        targets = rng.sample([i for i in ids[10:] if i not in gone and i not in (primary, dup)], 250)
        t = time.perf_counter()
        with conn.transaction():  # one copilot bulk action: one transaction, one wake-up for the drainer
            for cid in targets:
                update_contact(conn, HUBSPOT_ORG, cid, {"lifecycle_stage": "sql"}, triggered_by="copilot")
        done = _wait(
            lambda: (
                _one(
                    conn,
                    "SELECT count(*) FROM crm.writeback_queue WHERE org_id = %s "
                    "AND status IN ('pending', 'processing', 'failed')",
                    (HUBSPOT_ORG,),
                )
                == 0
            ),
            90,
        )
        calls = len(hubspot.requests_to("/batch/update")) - batch_before
        landed = sum(
            1
            for cid in targets
            if hubspot.properties("contacts", cid).get("lifecyclestage") == "salesqualifiedlead"
        )
        print(
            f"  250 updates queued by the copilot -> {calls} HubSpot batch calls, {landed} landed in the CRM "
            f"in {max(done, 0):.1f} s"
        )

        _say("a poison write-back among 99 good ones (HubSpot refuses a whole batch for one bad value)")
        poison_targets = rng.sample([i for i in targets], 100)
        with conn.transaction():
            poison_jobs = [
                update_contact(
                    conn,
                    HUBSPOT_ORG,
                    cid,
                    # a lead status the portal's property does not have as an option: HubSpot answers 400
                    # VALIDATION_ERROR for the whole batch (INVALID_OPTION); the drainer isolates it
                    {"lead_status": "HOT_LEAD"} if k == 0 else {"job_title": "Account Executive"},
                    triggered_by="copilot",
                ).job_id
                for k, cid in enumerate(poison_targets)
            ]
        _wait(
            lambda: (
                _one(
                    conn,
                    "SELECT count(*) FROM crm.writeback_queue WHERE org_id = %s AND id = ANY(%s) "
                    "AND status IN ('pending', 'processing', 'failed')",
                    (HUBSPOT_ORG, poison_jobs),
                )
                == 0
            ),
            90,
        )
        states = dict(
            conn.execute(
                "SELECT status, count(*) FROM crm.writeback_queue WHERE org_id = %s AND id = ANY(%s) GROUP BY 1",
                (HUBSPOT_ORG, poison_jobs),
            ).fetchall()
        )
        dead_error = _one(
            conn,
            "SELECT last_error FROM crm.writeback_queue WHERE org_id = %s AND id = %s",
            (HUBSPOT_ORG, poison_jobs[0]),
        )
        print(f"  {states.get('completed', 0)} of the 99 good updates landed in HubSpot")
        print(f"  the poison one: {states.get('dead_letter', 0)} dead letter: {dead_error}")

        # ---- issue 16: the copilot's write path (a logged call, an association, a deal moved by stage label)
        _say(
            "the copilot's write path: log a call, add the contact to a deal, move the deal to 'Negotiation'"
        )
        contact_id, deal_id = targets[0], enterprise_deals[0]
        with conn.transaction():
            call = log_activity(conn, HUBSPOT_ORG, "call", "contact", contact_id, "Walked through the proposal",
                                subject="Proposal call")  # fmt: skip
            link = associate(conn, HUBSPOT_ORG, "contact", contact_id, "deal", deal_id)
            move = update_deal(conn, HUBSPOT_ORG, deal_id, {"stage": "Negotiation"})  # a label, not an id
        write_jobs = [call.job_id, link.job_id, move.job_id]
        _wait(
            lambda: (
                _one(
                    conn,
                    "SELECT count(*) FROM crm.writeback_queue WHERE org_id = %s AND id = ANY(%s) "
                    "AND status IN ('pending', 'processing', 'failed')",
                    (HUBSPOT_ORG, write_jobs),
                )
                == 0
            ),
            60,
        )
        logged = [e for e in hubspot.engagements_on("contacts", contact_id) if e["type"] == "calls"]
        for e in logged:
            print(f"  call on HubSpot contact {contact_id}: {e['properties']['hs_call_title']!r}, "
                  f"associated with {e['associations']}")  # fmt: skip
        on_deal = int(contact_id) in hubspot.associations("deals", deal_id, "contacts")
        print(f"  contact {contact_id} on deal {deal_id} in HubSpot: {on_deal}; in the index at once: "
              f"{_one(conn, 'SELECT has_active_deal FROM crm.contact_index WHERE org_id = %s AND crm_record_id = %s', (HUBSPOT_ORG, contact_id))}")  # fmt: skip
        print(f"  deal {deal_id} moved to 'Negotiation': HubSpot dealstage = "
              f"{hubspot.properties('deals', deal_id).get('dealstage')} (the stage's id: {stage_ids[1]})")  # fmt: skip

        _say("crmindex status")
        for org in (HUBSPOT_ORG, ATTIO_ORG):
            print(render(org_status(conn, org)))
        workers.stop.set()
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s")
    return 0
