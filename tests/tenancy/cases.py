"""The adversarial calls of every function of schema ``crm`` (``CASES``): B as the org, B's ids, emails, domains,
companies, leases and record ids as arguments, each with what a session bound to A must get (an SQLSTATE or the
exact rows; ``ANY``: only the generic checks). ``tests/tenancy/test_functions.py`` runs them in every binding mode
and fails while a function crm_app may execute has no case."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B
from tests.tenancy.helpers import (
    B_DOMAIN,
    B_EMAIL,
    B_PORTAL,
    COMPANY,
    COMPANY_FILTERS,
    DEAL_FILTERS,
    QUEUES,
    SEARCH_FILTERS,
    SECRET,
    Facts,
)

LATER = "2030-01-01T00:00:00Z"
ANY = object()  # no exact expectation: the generic checks only (raise an allowed error, or nothing of B)
Params = Callable[[Facts], Sequence[object]]


@dataclass(frozen=True)
class Case:
    signature: str  # as pg_proc's oid::regprocedure::text
    sql: str
    params: Params = lambda f: ()
    expect: object = ANY  # bound to A: an SQLSTATE the call must raise, or the exact rows it returns
    absent: tuple[str, ...] = ()  # more strings the result must not contain


def _j(value: object) -> str:
    return json.dumps(value)


def _queue_cases(q: str) -> list[Case]:
    return [
        Case(
            "crm.queue_claim(regclass,text,integer,double precision,uuid,text,text)",
            "SELECT * FROM crm.queue_claim(%s, 'attacker', 100, 60, %s)",
            lambda f: (q, B),
            [],
        ),
        # no org filter: only A's due jobs (B's expired lease is due too, and stays B's)
        Case(
            "crm.queue_claim(regclass,text,integer,double precision,uuid,text,text)",
            "SELECT * FROM crm.queue_claim(%s, 'attacker', 100, 60)",
            lambda f: (q,),
        ),
        Case(
            "crm.queue_complete(regclass,uuid[],bigint[],uuid[])",
            "SELECT crm.queue_complete(%s, ARRAY[%s]::uuid[], ARRAY[%s]::bigint[], ARRAY[%s]::uuid[])",
            lambda f: (q, B, f.running[q][0], f.running[q][1]),
            [(0,)],
        ),
        Case(
            "crm.queue_extend(uuid,regclass,bigint,uuid,double precision)",
            "SELECT crm.queue_extend(%s, %s, %s, %s, 3600)",
            lambda f: (B, q, f.running[q][0], f.running[q][1]),
            [(False,)],
        ),
        Case(
            "crm.queue_fail(uuid,regclass,bigint,uuid,text,boolean,double precision)",
            "SELECT crm.queue_fail(%s, %s, %s, %s, 'pwned', false)",
            lambda f: (B, q, f.running[q][0], f.running[q][1]),
            [(None,)],
        ),
        Case(
            "crm.queue_release(uuid,regclass,bigint,uuid,double precision,text)",
            "SELECT crm.queue_release(%s, %s, %s, %s, 0, 'pwned')",
            lambda f: (B, q, f.running[q][0], f.running[q][1]),
            [(False,)],
        ),
        Case(
            "crm.queue_requeue(uuid,regclass,bigint[])",
            "SELECT crm.queue_requeue(%s, %s)",
            lambda f: (B, q),
            "CX003",
        ),
        Case(
            "crm.queue_requeue(uuid,regclass,bigint[])",
            "SELECT crm.queue_requeue(%s, %s, ARRAY[%s]::bigint[])",
            lambda f: (A, q, f.dead[q]),
            [(0,)],
        ),
        Case(
            "crm.queue_reclaim_expired(regclass)",
            "SELECT crm.queue_reclaim_expired(%s)",
            lambda f: (q,),
            [(1,)],
        ),
        Case(
            "crm.queue_purge_completed(regclass,interval)",
            "SELECT crm.queue_purge_completed(%s, '1 day')",
            lambda f: (q,),
            [(1,)],
        ),
        # crm_app cannot read the raw webhook inbox (issue 13), so neither its stats
        Case(
            "crm.queue_stats(regclass,uuid)",
            "SELECT * FROM crm.queue_stats(%s, %s)",
            lambda f: (q, B),
            "42501" if q == "crm.webhook_inbox" else [],
        ),
        Case("crm.queue_stats(regclass,uuid)", "SELECT * FROM crm.queue_stats(%s)", lambda f: (q,)),
    ]


_CONTACT_ROWS = _j([{"crm_record_id": "91", "first_name": "Hijack", "email": B_EMAIL}])
_SEARCH_TEXTS = [B_EMAIL, B_DOMAIN, f"Stan {COMPANY[B]}", "' OR TRUE --"]


def _search_cases() -> list[Case]:
    cases: list[Case] = []
    for fn, kind in (
        ("search_contacts", "contacts"),
        ("search_contact_ids", "contacts"),
        ("search_companies", "companies"),
        ("search_company_ids", "companies"),
        ("search_deals", "deals"),
        ("search_deal_ids", "deals"),
    ):
        sig = f"crm.{fn}(uuid,text,jsonb,integer)"
        cases.append(Case(sig, f"SELECT * FROM crm.{fn}(%s, 'Stan', '{{}}', 50)", lambda f: (B,), "CX003"))
        filters = {"contacts": SEARCH_FILTERS, "companies": COMPANY_FILTERS, "deals": DEAL_FILTERS}[kind]
        for flt in filters:
            cases.append(
                Case(sig, f"SELECT * FROM crm.{fn}(%s, '', %s::jsonb, 50)", lambda f, x=flt: (A, _j(x)), [])
            )
        for text in _SEARCH_TEXTS:
            expect: object = [] if text != f"Stan {COMPANY[B]}" or kind != "contacts" else ANY
            cases.append(
                Case(sig, f"SELECT * FROM crm.{fn}(%s, %s, '{{}}', 50)", lambda f, t=text: (A, t), expect)
            )
        # a keyset cursor pointing into B's id range
        cases.append(
            Case(
                sig,
                f"SELECT * FROM crm.{fn}(%s, '', %s::jsonb, 50)",
                lambda f: (A, _j({"after": f"0:{min(f.contact_ids) - 1}"})),
                [],
            )
        )
    for fn in ("search_contact_plan", "search_company_plan"):
        sig = f"crm.{fn}(uuid,text,jsonb,integer)"
        cases.append(Case(sig, f"SELECT crm.{fn}(%s, 'Stan', '{{}}', 50)", lambda f: (B,), "CX003"))
        for flt in COMPANY_FILTERS:
            # the plan's SQL names the matching companies' CRM ids: never B's
            cases.append(
                Case(
                    sig,
                    f"SELECT crm.{fn}(%s, %s, %s::jsonb, 50)",
                    lambda f, x=flt: (A, B_DOMAIN, _j(x)),
                    absent=("'{901}'", "'{902}'", "901,902"),
                )
            )
    cases += [
        Case(
            "crm.search(uuid,text,integer,text)", "SELECT crm.search(%s, 'vps', 50)", lambda f: (B,), "CX003"
        ),
        Case(
            "crm.search(uuid,text,integer,text)",
            "SELECT crm.search(%s, %s, 50)",
            lambda f: (A, f"VPs at {B_DOMAIN}"),
        ),
        Case("crm.search(uuid,text,integer,text)", "SELECT crm.search(%s, %s, 50)", lambda f: (A, B_EMAIL)),
        Case(
            "crm.search(uuid,text,integer,text)",
            "SELECT crm.search(%s, 'stan', 50, %s)",
            lambda f: (A, f"0:{min(f.contact_ids) - 1}"),
        ),
        Case(
            "crm.resolve_contact(uuid,text,integer)",
            "SELECT * FROM crm.resolve_contact(%s, %s)",
            lambda f: (B, B_EMAIL),
            "CX003",
        ),
        Case(
            "crm.resolve_contact(uuid,text,integer)",
            "SELECT * FROM crm.resolve_contact(%s, %s)",
            lambda f: (A, B_EMAIL),
            [],
        ),
        Case(
            "crm.resolve_contact(uuid,text,integer)",
            "SELECT * FROM crm.resolve_contact(%s, %s)",
            lambda f: (A, f"Stan from {COMPANY[B]}"),
        ),
        Case(
            "crm.interpret_query(uuid,text)", "SELECT crm.interpret_query(%s, 'vps')", lambda f: (B,), "CX003"
        ),
        Case(
            "crm.interpret_query(uuid,text)",
            "SELECT crm.interpret_query(%s, %s)",
            lambda f: (A, f"Stan from {COMPANY[B]}"),
        ),
        # invoker helpers that take an org: row-level security hides B's companies from them
        Case(
            "crm.search_company_condition(uuid,jsonb)",
            "SELECT crm.search_company_condition(%s, %s::jsonb) LIKE '%%name_phonetic_keys%%'",
            lambda f: (B, _j({"company": [COMPANY[B]]})),
            [(True,)],  # the fallback of a company that matches nothing in the org
        ),
        Case(
            "crm.search_contact_company_condition(uuid,text)",
            "SELECT crm.search_contact_company_condition(%s, %s)",
            lambda f: (B, f"co.domain = '{B_DOMAIN}'"),
            [("FALSE",)],
        ),
        Case(
            "crm.search_contact_company_condition(uuid,text)",
            "SELECT crm.search_contact_company_condition(%s, 'co.org_id IS NOT NULL OR TRUE')",
            lambda f: (A,),
            absent=("'{901,902}'", "'{901}'"),
        ),
        # plans are SQL text run as the invoker: a hand-made plan reading B's rows finds none
        Case(
            "crm.run_search_plan(jsonb)",
            "SELECT * FROM crm.run_search_plan(%s::jsonb)",
            lambda f: (
                _j(
                    {
                        "mode": "filter",
                        "sql": f"SELECT id, 0::float8 FROM crm.contact_index WHERE org_id = '{B}'",
                    }
                ),
            ),
            [],
        ),
        Case(
            "crm.run_search_plan(jsonb)",
            "SELECT * FROM crm.run_search_plan(%s::jsonb)",
            lambda f: (
                _j(
                    {
                        "mode": "text",
                        "sources": [{"tier": 0, "sql": "SELECT id FROM crm.contact_index"}],
                        "score_sql": "SELECT c.id, 1::float8 FROM crm.contact_index AS c WHERE c.id = ANY($1) "
                        f"AND c.org_id = '{B}'",
                    }
                ),
            ),
            [],
        ),
    ]
    return cases


def _api_cases() -> list[Case]:
    """The application's API functions of issue 13 (SECURITY DEFINER: B as the org, and B's references and data
    from A's session)."""
    upd = "crm.update_contact(uuid,text,jsonb,text,uuid,smallint)"
    create = "crm.create_contact(uuid,text,jsonb,text,uuid,smallint)"
    req = "crm.request_materialization(uuid,text[],text,text,text)"
    local = "crm.activate_local_contact(uuid,text,text,text,text,text)"
    enrich = "crm.store_enrichment(uuid,uuid,text,jsonb)"
    refs = "crm.resolve_contact_refs(uuid,text[],text)"
    log = "crm.log_activity(uuid,text,text,text,text,text,timestamp with time zone,text,uuid,smallint)"
    log_sql = "SELECT * FROM crm.log_activity(%s, 'note', %s, %s, 'pwned')"
    deal = "crm.update_deal(uuid,text,jsonb,text,uuid,smallint)"
    comp = "crm.update_company(uuid,text,jsonb,text,uuid,smallint)"
    newco = "crm.create_company(uuid,text,jsonb,text,uuid,smallint)"
    newdeal = "crm.create_deal(uuid,text,jsonb,text,uuid,smallint)"
    links = {
        fn: f"crm.{fn}(uuid,text,text,text,text,text,uuid,smallint)" for fn in ("associate", "disassociate")
    }
    pwned = _j({"job_title": "pwned"})
    b_refs = lambda f: [B_EMAIL, f"#{f.contact_ids[0]}", f"#{f.contact_ids[-1]}", "91"]  # noqa: E731
    return [
        Case(upd, "SELECT * FROM crm.update_contact(%s, '91', %s::jsonb)", lambda f: (B, pwned), "CX003"),
        *(
            Case(
                upd,
                "SELECT * FROM crm.update_contact(%s, %s, %s::jsonb)",
                lambda f, i=i: (A, b_refs(f)[i], pwned),
                "CX004",
            )
            for i in range(4)
        ),
        Case(
            upd,
            "SELECT job_id IS NOT NULL FROM crm.update_contact(%s, '11', %s::jsonb)",
            lambda f: (A, pwned),
            [(True,)],
        ),
        # issue 16: logging an activity on B's contact / company / deal from A's session
        Case(log, log_sql, lambda f: (B, "contact", "91"), "CX003"),
        *(
            Case(log, log_sql, lambda f, t=t, r=r: (A, t, r), "CX004")
            for t, r in (
                ("contact", B_EMAIL),
                ("company", "901"),
                ("company", B_DOMAIN),
                ("deal", "9d1"),
                ("deal", "91"),
            )
        ),
        Case(
            log,
            "SELECT job_id IS NOT NULL, crm_record_id FROM crm.log_activity(%s, 'call', 'contact', '11', 'ok')",
            lambda f: (A,),
            [(True, "11")],
        ),
        Case(deal, "SELECT * FROM crm.update_deal(%s, '9d1', '{\"name\": \"x\"}')", lambda f: (B,), "CX003"),
        *(
            Case(
                deal,
                'SELECT * FROM crm.update_deal(%s, %s, \'{"name": "pwned"}\')',
                lambda f, r=r: (A, r),
                "CX004",
            )
            for r in ("9d1", "91", B_DOMAIN)
        ),
        Case(
            comp, "SELECT * FROM crm.update_company(%s, '901', '{\"name\": \"x\"}')", lambda f: (B,), "CX003"
        ),
        *(
            Case(
                comp,
                'SELECT * FROM crm.update_company(%s, %s, \'{"name": "pwned"}\')',
                lambda f, r=r: (A, r),
                "CX004",
            )
            for r in ("901", B_DOMAIN, f"labs.{B_DOMAIN}")
        ),
        Case(
            newco,
            "SELECT * FROM crm.create_company(%s, 'hubspot', %s::jsonb)",
            lambda f: (B, _j({"domain": "n.io"})),
            "CX003",
        ),
        *(
            Case(
                newco,
                "SELECT job_id IS NOT NULL FROM crm.create_company(%s, %s, %s::jsonb)",
                lambda f, src=src: (A, src, _j({"domain": B_DOMAIN, "name": "Zenith"})),
                [(True,)],
            )
            for src in ("hubspot", "attio")
        ),
        Case(
            newco,
            "SELECT * FROM crm.create_company(%s, 'hubspot', %s::jsonb)",
            lambda f: (A, _j({"name": "x"})),
            "CX002",
        ),
        Case(
            newdeal,
            "SELECT * FROM crm.create_deal(%s, 'hubspot', %s::jsonb)",
            lambda f: (B, _j({"name": "x"})),
            "CX003",
        ),
        *(
            Case(
                newdeal,
                "SELECT * FROM crm.create_deal(%s, 'hubspot', %s::jsonb)",
                lambda f, v=v: (A, _j(v)),
                "CX002",
            )
            for v in ({"name": "x", "pipeline": "zenith"}, {"stage": "x"}, {"name": "x", "company": B_DOMAIN})
        ),
        # issue 16: associating A's records with B's (or B's with each other) from A's session
        *(
            case
            for fn, sig in links.items()
            for case in (
                Case(
                    sig,
                    f"SELECT * FROM crm.{fn}(%s, 'contact', '91', 'company', '901')",
                    lambda f: (B,),
                    "CX003",
                ),
                *(
                    Case(sig, f"SELECT * FROM crm.{fn}(%s, %s, %s, %s, %s)", lambda f, a=a: (A, *a), "CX004")
                    for a in (
                        ("contact", "11", "company", "901"),
                        ("contact", B_EMAIL, "company", "101"),
                        ("deal", "9d1", "contact", "11"),
                        ("company", B_DOMAIN, "deal", "1d1"),
                    )
                ),
                Case(
                    sig,
                    f"SELECT job_id IS NOT NULL FROM crm.{fn}(%s, 'company', '101', 'contact', '11')",
                    lambda f: (A,),
                    [(True,)],
                ),
            )
        ),
        Case(
            create,
            "SELECT * FROM crm.create_contact(%s, 'hubspot', %s::jsonb)",
            lambda f: (B, _j({"email": f"x@{B_DOMAIN}"})),
            "CX003",
        ),
        *(
            Case(
                create,
                "SELECT job_id IS NOT NULL FROM crm.create_contact(%s, %s, %s::jsonb)",
                lambda f, src=src: (A, src, _j({"email": B_EMAIL, "first_name": "Stan"})),
                [(True,)],
            )
            for src in ("hubspot", "attio")
        ),
        Case(
            create,
            "SELECT * FROM crm.create_contact(%s, 'attio', %s::jsonb)",
            lambda f: (A, _j({"email": f"x@{B_DOMAIN}", "lifecycle_stage": "customer", "lead_status": "x"})),
            "CX002",
        ),
        Case(req, "SELECT * FROM crm.request_materialization(%s, ARRAY['91'])", lambda f: (B,), "CX003"),
        *(
            Case(
                req,
                "SELECT * FROM crm.request_materialization(%s, ARRAY[%s])",
                lambda f, i=i: (A, b_refs(f)[i]),
                "CX004",
            )
            for i in range(4)
        ),
        Case(
            req,
            "SELECT count(job_id) FROM crm.request_materialization(%s, ARRAY['11', '12'])",
            lambda f: (A,),
            [(2,)],
        ),
        Case(local, "SELECT * FROM crm.activate_local_contact(%s, 'x@y.io')", lambda f: (B,), "CX003"),
        *(
            Case(
                local,
                "SELECT record_id IS NOT NULL, job_id IS NULL FROM crm.activate_local_contact(%s, %s, %s)",
                lambda f, e=e: (A, e, f"Walk {SECRET[A]}"),
                [(True, True)],
            )
            for e in (B_EMAIL, f"walkin@{B_DOMAIN}")
        ),
        Case(
            local,
            "SELECT job_id IS NOT NULL FROM crm.activate_local_contact(%s, %s, 'Stan', 'manual', NULL, "
            "'hubspot')",
            lambda f: (A, f"walkin@{B_DOMAIN}"),
            [(True,)],
        ),
        Case(
            enrich,
            "SELECT crm.store_enrichment(%s, %s::uuid, 'apollo', '{}')",
            lambda f: (B, f.record_id),
            "CX003",
        ),
        *(
            Case(
                enrich,
                "SELECT crm.store_enrichment(%s, %s::uuid, 'apollo', %s::jsonb)",
                lambda f, u=u: (A, u(f), _j({"secret": SECRET[A]})),
                "CX004",
            )
            for u in (lambda f: f.record_id, lambda f: sorted(f.uuids)[0], lambda f: sorted(f.uuids)[-1])
        ),
        Case(
            enrich,
            "SELECT crm.store_enrichment(%s, (SELECT id FROM crm.contact_record WHERE origin = 'crm' "
            "LIMIT 1), 'apollo', '{}')",
            lambda f: (A,),
            [("",)],
        ),
        Case(refs, "SELECT id FROM crm.resolve_contact_refs(%s, ARRAY['11'])", lambda f: (B,), "CX003"),
        Case(
            refs,
            "SELECT id, crm_record_id FROM crm.resolve_contact_refs(%s, %s::text[])",
            lambda f: (A, b_refs(f)),
            [(None, None)] * 4,
        ),
        Case("crm.org_stats(uuid)", "SELECT * FROM crm.org_stats(%s)", lambda f: (A,)),
        Case(
            "crm.org_stats(uuid)",
            "SELECT contacts_indexed, deals_indexed FROM crm.org_stats(%s)",
            lambda f: (A,),
            [(3, 1)],
        ),
        Case(
            "crm.org_stats(uuid)",
            "SELECT inbox_pending + inbox_dead > 0 FROM crm.org_stats(%s)",
            lambda f: (A,),
            [(True,)],
        ),
        Case("crm.interpret_query(uuid,text)", "SELECT crm.interpret_query(%s, %s)", lambda f: (A, B_EMAIL)),
        Case(
            "crm.interpret_query(uuid,text)",
            "SELECT crm.interpret_query(%s, %s)",
            lambda f: (A, f"VPs at {B_DOMAIN}"),
        ),
        Case(
            "crm.resolve_contact(uuid,text,integer)",
            "SELECT * FROM crm.resolve_contact(%s, %s)",
            lambda f: (A, B_DOMAIN),
            [],
        ),
        Case(
            "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
            "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', '91', 'update', '{\"firstname\": \"x\"}', "
            "'copilot') IS NOT NULL",
            lambda f: (A,),
            [(True,)],  # A's own write to the record 91 of A's CRM: never B's open job
        ),
        Case(
            "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
            "SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', '92', 'update', %s::jsonb, 'copilot')",
            lambda f: (A, _j({"x": "y" * 70_000})),
            "CX002",
        ),
    ]


def _cases() -> list[Case]:
    src = "'hubspot'"
    cases: list[Case] = [
        # org guard and binding
        Case("crm.assert_org(uuid)", "SELECT crm.assert_org(%s)", lambda f: (B,), "CX003"),
        Case("crm.current_org_id()", "SELECT crm.current_org_id()", expect=[(A,)]),
        Case("crm.session_sees_every_org()", "SELECT crm.session_sees_every_org()", expect=[(False,)]),
        # index writes
        *(
            Case(
                f"crm.{fn}(uuid,text,jsonb)",
                f"SELECT * FROM crm.{fn}(%s, {src}, %s::jsonb)",
                lambda f, r=rows: (B, r),
                "CX003",
            )
            for fn, rows in (
                ("upsert_contacts", _CONTACT_ROWS),
                ("upsert_companies", _j([{"crm_record_id": "901", "name": "Hijack"}])),
                (
                    "upsert_deals",
                    _j([{"crm_record_id": "9d1", "stage": "closedwon", "contact_crm_ids": ["91"]}]),
                ),
            )
        ),
        # A writing rows with B's CRM ids writes A's own rows, never B's
        Case(
            "crm.upsert_contacts(uuid,text,jsonb)",
            f"SELECT * FROM crm.upsert_contacts(%s, {src}, %s::jsonb)",
            lambda f: (A, _CONTACT_ROWS),
            [(1, 0, 0)],
        ),
        Case(
            "crm.write_index_rows(uuid,regclass,text,jsonb)",
            f"SELECT * FROM crm.write_index_rows(%s, 'crm.contact_index', {src}, %s::jsonb)",
            lambda f: (B, _CONTACT_ROWS),
            "42501",
        ),
        Case(
            "crm.check_index_rows(regclass,text,jsonb,text[])",
            f"SELECT crm.check_index_rows('crm.contact_index', {src}, %s::jsonb, '{{}}')",
            lambda f: (_j([{"crm_record_id": "91", "org_id": str(B)}]),),
            "CX001",
        ),
        Case(
            "crm.diagnose_index_rows(regclass,jsonb)",
            "SELECT crm.diagnose_index_rows('crm.contact_index', %s::jsonb)",
            lambda f: (_CONTACT_ROWS,),
            [("",)],  # void
        ),
        Case(
            "crm.refresh_contact_deals(uuid,text,text[])",
            f"SELECT crm.refresh_contact_deals(%s, {src}, ARRAY['91', '92'])",
            lambda f: (B,),
            [(0,)],
        ),
        Case(
            "crm.refresh_deal_contacts(uuid,text,jsonb)",
            f"SELECT crm.refresh_deal_contacts(%s, {src}, %s::jsonb)",
            lambda f: (B, _j([{"crm_record_id": "9d1"}])),
            [(0,)],
        ),
        Case(
            "crm.refresh_company_industry_groups(uuid)",
            "SELECT crm.refresh_company_industry_groups(%s)",
            lambda f: (B,),
            [(0,)],
        ),
        # NULL means every org: only A's are visible (A's were made stale too: one of them changes)
        Case(
            "crm.refresh_company_industry_groups(uuid)",
            "SELECT crm.refresh_company_industry_groups(NULL)",
            expect=[(1,)],
        ),
        # webhook appliers: B's records are "missing" for A (not "stale": that would confirm they exist)
        *(
            Case(
                f"crm.{fn}(uuid,text,regclass,jsonb)",
                f"SELECT * FROM crm.{fn}(%s, {src}, 'crm.contact_index', %s::jsonb)",
                lambda f, org=org, ev=ev: (org, _j(ev)),
                "CX003" if org == B else [(ev[0]["crm_record_id"], "missing")],
            )
            for fn, ev in (
                (
                    "apply_field_changes",
                    [{"crm_record_id": "91", "column": "job_title", "value": "x", "occurred_at": LATER}],
                ),
                ("apply_deletions", [{"crm_record_id": "91", "occurred_at": LATER, "privacy": True}]),
                ("apply_restores", [{"crm_record_id": "94", "occurred_at": LATER}]),
            )
            for org in (A, B)
        ),
        Case(
            "crm.apply_deal_associations(uuid,text,jsonb)",
            f"SELECT crm.apply_deal_associations(%s, {src}, %s::jsonb)",
            lambda f: (B, _j([{"deal_crm_id": "9d1", "contact_crm_id": "93", "occurred_at": LATER}])),
            "CX003",
        ),
        Case(
            "crm.apply_deal_associations(uuid,text,jsonb)",
            f"SELECT crm.apply_deal_associations(%s, {src}, %s::jsonb)",
            lambda f: (A, _j([{"deal_crm_id": "9d1", "contact_crm_id": "93", "occurred_at": LATER}])),
            [(0,)],
        ),
        Case(
            "crm.webhook_accept(uuid,text,text,text,jsonb,integer,text[],interval,text,interval)",
            f"SELECT crm.webhook_accept(%s, {src}, %s, '[]', '{{}}', 0)",
            lambda f: (B, B_PORTAL),
            "42501",
        ),
        # rate limits, sync state
        Case(
            "crm.rate_limit_configure(uuid,text,text,integer,double precision,double precision)",
            f"SELECT crm.rate_limit_configure(%s, {src}, 'general', 1, 3600)",
            lambda f: (B,),
            "CX003",
        ),
        Case(
            "crm.rate_limit_penalize(uuid,text,text,double precision)",
            f"SELECT crm.rate_limit_penalize(%s, {src}, 'general', 3600)",
            lambda f: (B,),
            "42501",
        ),
        Case(
            "crm.rate_limit_reserve(uuid,text,text,integer)",
            f"SELECT crm.rate_limit_reserve(%s, {src}, 'general', 1000)",
            lambda f: (B,),
            "42501",
        ),
        Case(
            "crm.sync_checkpoint(uuid,text,text,text,integer,boolean,bigint)",
            f"SELECT crm.sync_checkpoint(%s, {src}, 'contacts', 'pwned', 1, true)",
            lambda f: (B,),
            "42501",
        ),
        # jobs and write-backs
        Case(
            "crm.enqueue_job(uuid,text,jsonb,text,text,smallint,timestamp with time zone)",
            f"SELECT crm.enqueue_job(%s, 'refetch', '{{}}', {src}, '91')",
            lambda f: (B,),
            "CX003",
        ),
        # A's job with B's dedupe key is A's own: it never absorbs B's open job
        Case(
            "crm.enqueue_job(uuid,text,jsonb,text,text,smallint,timestamp with time zone)",
            f"SELECT crm.enqueue_job(%s, 'refetch', '{{\"x\": 1}}', {src}, '91')",
            lambda f: (A,),
        ),
        Case(
            "crm.enqueue_jobs(uuid,text,text,jsonb)",
            f"SELECT crm.enqueue_jobs(%s, 'refetch', {src}, %s::jsonb)",
            lambda f: (B, _j([{"dedupe_key": "91"}])),
            "CX003",
        ),
        Case(
            "crm.enqueue_jobs(uuid,text,text,jsonb)",
            f"SELECT crm.enqueue_jobs(%s, 'refetch', {src}, %s::jsonb)",
            lambda f: (A, _j([{"dedupe_key": "91"}, {"dedupe_key": "92"}])),
            [(2,)],
        ),
        Case(
            "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
            f"SELECT crm.enqueue_writeback(%s, {src}, 'contact', '92', 'update', '{{\"firstname\": \"x\"}}', 'copilot')",
            lambda f: (B,),
            "CX003",
        ),
        Case(
            "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
            f"SELECT crm.enqueue_writeback(%s, {src}, 'contact', NULL, 'create', '{{\"email\": \"x\"}}', 'copilot', "
            "NULL, 5::smallint, %s)",
            lambda f: (A, f"new@{B_DOMAIN}"),
        ),
        Case(
            "crm.writeback_drop_superseded(uuid,text,text,jsonb)",
            f"SELECT crm.writeback_drop_superseded(%s, {src}, 'contact', %s::jsonb)",
            lambda f: (
                B,
                _j(
                    [
                        {
                            "crm_record_id": "92",
                            "property": "lifecyclestage",
                            "value": "x",
                            "occurred_at": LATER,
                        }
                    ]
                ),
            ),
            "CX003",
        ),
        Case(
            "crm.writeback_drop_superseded(uuid,text,text,jsonb)",
            f"SELECT crm.writeback_drop_superseded(%s, {src}, 'contact', %s::jsonb)",
            lambda f: (
                A,
                _j(
                    [
                        {
                            "crm_record_id": "92",
                            "property": "lifecyclestage",
                            "value": "x",
                            "occurred_at": LATER,
                        }
                    ]
                ),
            ),
            [(0,)],
        ),
        Case(
            "crm.writeback_open_since(uuid,text,text,text)",
            f"SELECT crm.writeback_open_since(%s, {src}, 'contact', '92')",
            lambda f: (B,),
            [(None,)],  # B has an open write-back for 92
        ),
        Case(
            "crm.writeback_count(uuid,text[])",
            "SELECT crm.writeback_count(%s, ARRAY['pending', 'processing', "
            "'failed', 'dead_letter', 'completed'])",
            lambda f: (B,),
            "CX003",
        ),
        Case(
            "crm.writeback_count(uuid,text[])",
            "SELECT crm.writeback_count(%s, ARRAY['pending', 'processing', 'failed', 'dead_letter'])",
            lambda f: (A,),
        ),
        # tier 2 and stats
        *(
            Case(
                f"crm.{fn}(uuid,text,text,jsonb,jsonb,timestamp with time zone)",
                f"SELECT crm.{fn}(%s, {src}, %s, %s::jsonb, '{{}}')",
                lambda f, org=org, rid=rid: (org, rid, _j({"notes": "x"})),
                "CX003" if org == B else ANY,  # for A: a record of A's own, not linked to B's index row
            )
            for fn, rid in (("materialize_contact_write", "91"), ("materialize_company_write", "901"))
            for org in (A, B)
        ),
        Case("crm.org_stats(uuid)", "SELECT * FROM crm.org_stats(%s)", lambda f: (B,), "CX003"),
        Case("crm.purge_deleted(interval)", "SELECT * FROM crm.purge_deleted('1 day')", expect=[(1, 0, 0)]),
        # trigger functions cannot be called directly
        *(
            Case(f"crm.{fn}()", f"SELECT crm.{fn}()", expect="0A000")
            for fn in (
                "contact_index_derive",
                "company_index_derive",
                "deal_index_derive",
                "queue_notify",
                "connection_account_unique",
            )
        ),
    ]
    for q in QUEUES:
        cases += _queue_cases(q)
    cases += _search_cases()
    cases += _api_cases()
    # org-free helpers (derivations of their arguments and global reference data): given B's strings they
    # return what they return for anyone
    pure = {
        "crm.company_industry_groups(text,text,text,text,text[])": (
            f"'BANKING', '{COMPANY[B]} Corp', '{B_DOMAIN}', 'A bank', ARRAY['bank']"
        ),
        "crm.company_search_doc(text)": f"'{COMPANY[B]} Corp'",
        "crm.contact_name_norm(text,text)": "'Stan', 'Lee'",
        "crm.contact_search_doc(text,text,text,text)": f"'Stan', 'Lee', '{COMPANY[B]}', 'VP'",
        "crm.index_protected_columns(regclass)": "'crm.contact_index'",
        "crm.industry_group_industries(text)": "'fintech'",
        "crm.industry_term_group(text)": "'banks'",
        "crm.interpret_stop_words()": "",
        "crm.interpret_vocabulary()": "",
        "crm.name_phonetic_keys(text)": f"'{COMPANY[B]}'",
        "crm.name_soundex(text)": "'Lee'",
        "crm.norm_domain(text)": f"'https://{B_DOMAIN}/'",
        "crm.norm_text(text)": f"'{COMPANY[B]}'",
        "crm.normalize_search_filters(text,jsonb)": f"'contacts', '{_j({'email': B_EMAIL, 'company': COMPANY[B]})}'",
        "crm.phonetic_key(text)": f"'{COMPANY[B]}'",
        "crm.queue_backoff(integer)": "3",
        "crm.rate_limit_default(text,text)": "'hubspot', 'general'",
        "crm.search_candidate_cap()": "",
        "crm.search_company_name_condition(text[],text)": f"ARRAY['{COMPANY[B]}'], 'words'",
        "crm.search_departments()": "",
        "crm.search_filter_strings(text,jsonb)": f"'email', '\"{B_EMAIL}\"'",
        "crm.search_query_parts(text)": f"'{B_EMAIL} {B_DOMAIN} stan'",
        "crm.search_seniorities()": "",
        "crm.text_cap(text)": "'email'",
        "crm.input_cap(text)": "'payload'",
        "crm.title_department(text)": "'VP of Sales'",
        "crm.title_department_terms()": "",
        "crm.title_seniority(text)": "'VP of Sales'",
        "crm.title_seniority_terms()": "",
        "crm.title_tokens(text)": "'VP of Sales'",
        "crm.trgm_sim(text,text)": f"'{COMPANY[B]}', 'zenit'",
        "crm.trgm_word_match(text,text)": f"'{COMPANY[B]}', 'zenit'",
        "crm.trgm_word_sim(text,text)": f"'{COMPANY[B]}', 'zenit'",
        "crm.unaccent_text(text)": f"'{COMPANY[B]}'",
        "crm.word_phonetic_key(text)": f"'{COMPANY[B]}'",
    }
    cases += [Case(sig, f"SELECT * FROM {sig.split('(')[0]}({args})") for sig, args in pure.items()]
    return cases


CASES = _cases()
