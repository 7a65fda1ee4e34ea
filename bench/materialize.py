"""bench/materialize: tier 2 on demand against FakeHubSpot with 100 ms API latency and HubSpot's limits.

1. Single materialization (the copilot's "tell me more about ..."): p50/p95 over distinct indexed contacts,
   next to the bare API round trip (one batch read of one id through the same client). Target: p95 <= one
   round trip + 15 ms. Also the repeat within the freshness window (no API call).
2. Bulk: 1,000 contacts with a materialization budget that allows them now -> API calls used (batch reads
   of <= 100) and seconds; every call goes through the account's shared PgRateLimiter (HubSpot's 100 per 10 s)
   and the fake enforces that limit too (a 429 would show as retries).
3. Bulk of 1,000 under the default budget (100 per 60 s): how many are done now and how many are queued.

    python -m bench.materialize [--contacts 20000] [--singles 60] [--bulk 1000]
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

import psycopg

from bench.common import BIG_ORG, LoadWatch, Timer, add_load_args, bench_database, summary_ms, write_results
from crmindex.crm.http import RetryPolicy
from crmindex.crm.hubspot.adapters import HubSpotFetcher
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.freshness.sync import HubSpotLister, run_sync
from crmindex.platform.limiter import PgRateLimiter
from crmindex.records.materialize import materialize_contact, materialize_many
from crmindex.testing import FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM

LATENCY_S = 0.1
BATCH_READ = "/crm/v3/objects/contacts/batch/read"
ORG_DEFAULT_BUDGET = uuid.UUID("00000000-0000-4000-8000-0000000000d2")


def _ids(conn: psycopg.Connection[Any], org: uuid.UUID) -> list[str]:
    rows = conn.execute(
        "SELECT crm_record_id FROM crm.contact_index WHERE org_id = %s AND deleted_at IS NULL "
        "ORDER BY crm_record_id::bigint",
        (org,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def run(contacts: int, singles: int, bulk: int) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "contacts": contacts,
        "api_latency_ms": LATENCY_S * 1000,
        "note": "shared machine: other sessions' load may inflate the figures",
    }
    with bench_database("crmindex_bench_materialize") as dsn, FakeHubSpot(limits=True) as fake:
        fake.seed_from(SyntheticCRM(seed=5, contacts=contacts))
        with psycopg.connect(dsn, autocommit=True) as conn:
            for org, portal in ((BIG_ORG, "515151"), (ORG_DEFAULT_BUDGET, "515152")):
                connect_with_token(conn, None, org, "hubspot", None, account_id=portal)
            # index the portal quickly (sync speed is bench.ingest's subject, not this one's)
            fake.limits = False
            t = Timer()
            with HubSpotClient(fake.base_url, lambda: "test-token", None, retry=RetryPolicy.fast(6)) as c:
                report = run_sync(conn, BIG_ORG, HubSpotLister(c), progress=False)
            figures["sync"] = {"records": report.records, "seconds": round(t.elapsed, 1)}
            # what autovacuum does soon after a big initial sync (run_sync itself does not ANALYZE)
            conn.execute("ANALYZE crm.contact_index")
            conn.execute("ANALYZE crm.contact_record")
            ids = _ids(conn, BIG_ORG)
            print(f"indexed {len(ids):,} contacts in {t.elapsed:.1f}s")

            fake.limits = True
            fake.set_faults(latency=LATENCY_S)
            limiter = PgRateLimiter(dsn, BIG_ORG, "hubspot")
            client = HubSpotClient(fake.base_url, lambda: "test-token", limiter, retry=RetryPolicy())
            try:
                fetcher = HubSpotFetcher(client)
                # the bare round trip through the same client (limiter included)
                rtt = []
                for rid in ids[-20:]:
                    t = Timer()
                    fetcher.fetch("contacts", [rid])
                    rtt.append(t.elapsed)
                single, fresh = [], []
                for rid in ids[:singles]:
                    t = Timer()
                    res = materialize_contact(conn, fetcher, BIG_ORG, rid, reason="copilot")
                    single.append(t.elapsed)
                    assert res.outcome == "materialized", res.outcome
                    t = Timer()
                    assert materialize_contact(conn, fetcher, BIG_ORG, rid).outcome == "fresh"
                    fresh.append(t.elapsed)
                rtt_s, single_s = summary_ms(rtt), summary_ms(single)
                budget_ms = rtt_s["p50_ms"] + 15
                figures["single"] = {
                    "api_round_trip": rtt_s,
                    "materialize": single_s,
                    "overhead_p50_ms": round(single_s["p50_ms"] - rtt_s["p50_ms"], 3),
                    "target_p95_ms": round(budget_ms, 3),
                    "meets_target": single_s["p95_ms"] <= budget_ms,
                    # the same target against the round trip's own p95 (like for like)
                    "target_p95_vs_rtt_p95_ms": round(rtt_s["p95_ms"] + 15, 3),
                    "meets_target_vs_rtt_p95": single_s["p95_ms"] <= rtt_s["p95_ms"] + 15,
                    "repeat_within_freshness_window": summary_ms(fresh),
                }
                print(f"single: {json.dumps(figures['single'])}")

                # bulk, with a budget that allows the whole batch now
                targets = ids[singles : singles + bulk]
                budget = PgRateLimiter(dsn, BIG_ORG, "hubspot")
                try:
                    budget.configure("materialize", bulk, 60, headroom=1.0)
                    fake.clear_log()
                    waited0 = limiter.waited_s
                    t = Timer()
                    counts = materialize_many(conn, fetcher, BIG_ORG, targets, budget=budget)
                    elapsed = t.elapsed
                finally:
                    budget.close()
                reads = fake.requests_to(BATCH_READ, "POST")
                figures["bulk"] = {
                    "contacts": len(targets),
                    "seconds": round(elapsed, 3),
                    "contacts_per_s": round(len(targets) / elapsed, 1),
                    "api_calls": len(fake.request_log),
                    "batch_reads": len(reads),
                    "http_429": sum(1 for r in fake.request_log if r.status == 429),
                    "rate_limiter_wait_s": round(limiter.waited_s - waited0, 3),
                    "counts": counts,
                }
                print(f"bulk: {json.dumps(figures['bulk'])}")
            finally:
                client.close()
                limiter.close()

            # the default budget (100 per 60 s) on a second org indexed from the same portal
            fake.set_faults(latency=0.0)
            fake.limits = False
            with HubSpotClient(fake.base_url, lambda: "test-token", None, retry=RetryPolicy.fast(6)) as c:
                run_sync(conn, ORG_DEFAULT_BUDGET, HubSpotLister(c), progress=False)
            conn.execute("ANALYZE crm.contact_index")
            fake.limits = True
            fake.set_faults(latency=LATENCY_S)
            limiter = PgRateLimiter(dsn, ORG_DEFAULT_BUDGET, "hubspot")
            budget = PgRateLimiter(dsn, ORG_DEFAULT_BUDGET, "hubspot")
            client = HubSpotClient(fake.base_url, lambda: "test-token", limiter, retry=RetryPolicy())
            try:
                t = Timer()
                counts = materialize_many(
                    conn, HubSpotFetcher(client), ORG_DEFAULT_BUDGET, _ids(conn, ORG_DEFAULT_BUDGET)[:bulk],
                    budget=budget,
                )  # fmt: skip
                figures["bulk_default_budget"] = {
                    "budget": "100 per 60 s (burst of one window)",
                    "seconds": round(t.elapsed, 3),
                    "counts": counts,
                }
                print(f"bulk, default budget: {json.dumps(figures['bulk_default_budget'])}")
            finally:
                client.close()
                limiter.close()
                budget.close()
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--contacts", type=int, default=20_000)
    ap.add_argument("--singles", type=int, default=60)
    ap.add_argument("--bulk", type=int, default=1_000)
    add_load_args(ap)
    args = ap.parse_args()
    load = LoadWatch.begin(args)
    figures = run(args.contacts, args.singles, args.bulk)
    path = write_results("materialize", figures, load)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
