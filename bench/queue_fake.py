"""bench/queue, the parts against FakeHubSpot (imported by ``bench.queue``).

* :func:`api_efficiency` — 10,000 field updates over 2,000 HubSpot contacts, drained through the real client
  and writer: API calls used (coalescing per record + batches of 100) vs one call per field update.
* :func:`rate_compliance` — 4 drainer processes for 60 s against FakeHubSpot enforcing 100 requests / 10 s
  with a steady supply of jobs: the most requests the fake saw in any rolling 10 s window (must stay <= 100),
  429s seen, and utilization of the allowance (target >= 90%).
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import threading
import time
import uuid
from typing import Any

import psycopg

from crmindex.crm.clients import Clients
from crmindex.crm.http import RetryPolicy
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.secrets import new_key_spec
from crmindex.testing import FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.drainer import Drainer

TOKEN = "bench-token"
TOKEN_ENV = "CRMINDEX_BENCH_HUBSPOT_TOKEN"
EFFICIENCY_ORG = uuid.UUID("00000000-0000-4000-8000-0000000ef001")
COMPLIANCE_ORG = uuid.UUID("00000000-0000-4000-8000-0000000ef002")


def _connect(dsn: str, org: uuid.UUID, fake: FakeHubSpot, account: str) -> None:
    # a throwaway key ring seals the token
    os.environ.setdefault("CRMINDEX_SECRET_KEYS", new_key_spec("bench"))
    # the fake (workers inherit both)
    os.environ.setdefault("CRMINDEX_ALLOWED_BASE_URLS", "http://127.0.0.1:*")
    with psycopg.connect(dsn, autocommit=True) as conn:
        connect_with_token(conn, None, org, "hubspot", TOKEN, account_id=account, base_url=fake.base_url)


def api_efficiency(dsn: str, updates: int = 10_000, contacts: int = 2_000) -> dict[str, Any]:
    """Queue ``updates`` field updates over ``contacts`` records, drain them, count the API calls."""
    crm = SyntheticCRM(seed=3, contacts=contacts)
    first = int(crm.contact_id(0))
    with FakeHubSpot(limits=False, tokens=[TOKEN]) as fake:
        fake.seed_from(crm)
        _connect(dsn, EFFICIENCY_ORG, fake, "bench-efficiency")
        limiter = PgRateLimiter(dsn, EFFICIENCY_ORG, "hubspot")
        try:
            limiter.configure("general", 10_000, 1.0)  # measure calls, not waiting
        finally:
            limiter.close()
        fields = ["jobtitle", "phone", "city", "hs_lead_status", "company"]
        with psycopg.connect(dsn, autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute(
                """
                SELECT crm.enqueue_writeback(%s, 'hubspot', 'contact', (%s + g %% %s)::text, 'update',
                    jsonb_build_object((%s::text[])[(g / %s) %% cardinality(%s::text[]) + 1],
                        CASE WHEN (%s::text[])[(g / %s) %% cardinality(%s::text[]) + 1] = 'hs_lead_status'
                             THEN 'OPEN' ELSE 'v' || g END), 'enrichment')
                FROM generate_series(0, %s - 1) AS g ORDER BY g
                """,
                (
                    EFFICIENCY_ORG,
                    first,
                    contacts,
                    fields,
                    contacts,
                    fields,
                    fields,
                    contacts,
                    fields,
                    updates,
                ),
            )
            enqueue_s = time.perf_counter() - t0
            row = conn.execute(
                "SELECT count(*) FROM crm.writeback_queue WHERE org_id = %s AND status = 'pending'",
                (EFFICIENCY_ORG,),
            ).fetchone()
            jobs = int(str(row[0])) if row else 0
        clients = Clients(dsn, retry=RetryPolicy.fast())
        try:
            fake.clear_log()
            drainer = Drainer(dsn, clients.writer, batch=100)
            t0 = time.perf_counter()
            handled = drainer.run_once()
            drain_s = time.perf_counter() - t0
        finally:
            clients.close()
        calls = len(fake.request_log)
        ok = all(200 <= r.status < 300 for r in fake.request_log)
        sample = fake.properties("contacts", first + contacts - 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FROM crm.writeback_queue "
                "WHERE org_id = %s",
                (EFFICIENCY_ORG,),
            ).fetchone()
    assert row is not None
    return {
        "field_updates": updates,
        "contacts": contacts,
        "jobs_after_coalescing": jobs,
        "jobs_handled": handled,
        "jobs_completed": int(str(row[0])),
        "api_calls": calls,
        "api_calls_one_per_update": updates,
        "calls_saved_pct": round(100 * (1 - calls / updates), 2),
        "all_calls_2xx": ok,
        "last_value_landed": sample.get("jobtitle") is not None,
        "enqueue_s": round(enqueue_s, 2),
        "drain_s": round(drain_s, 2),
    }


def _drainer_process(dsn: str, seconds: float, out: Any) -> None:
    clients = Clients(dsn)
    drainer = Drainer(dsn, clients.writer, batch=100, poll_s=1.0)
    timer = threading.Timer(seconds, drainer.stop.set)
    timer.start()
    try:
        drainer.run()
    finally:
        timer.cancel()
        clients.close()
    out.put({"calls": drainer.sent_calls, "completed": drainer.completed})


def _max_in_window(times: list[float], window: float) -> int:
    best = 0
    for i, t in enumerate(times):
        best = max(best, bisect.bisect_left(times, t + window, lo=i) - i)
    return best


def rate_compliance(
    dsn: str, processes: int = 4, seconds: float = 60.0, limit: int = 100, window: float = 10.0
) -> dict[str, Any]:
    """``processes`` drainers for ``seconds`` against a fake enforcing ``limit`` requests per ``window``."""
    contacts = 100_000
    crm = SyntheticCRM(seed=4, contacts=contacts, companies=10, deals=0)
    first = int(crm.contact_id(0))
    with FakeHubSpot(limits=True, burst_limit=limit, burst_window=window, tokens=[TOKEN]) as fake:
        fake.seed_from(crm)
        _connect(dsn, COMPLIANCE_ORG, fake, "bench-compliance")
        # more jobs than the allowance can carry in the run (100 per call): the drainers never run dry
        supply = min(contacts, int(seconds / window * limit * 100 * 1.2))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                """
                INSERT INTO crm.writeback_queue (org_id, crm_source, entity_type, crm_record_id, operation,
                                                 payload, triggered_by)
                SELECT %s, 'hubspot', 'contact', (%s + g)::text, 'update',
                       jsonb_build_object('jobtitle', 'Rate ' || g), 'system'
                FROM generate_series(0, %s - 1) AS g
                """,
                (COMPLIANCE_ORG, first, supply),
            )
            conn.execute("ANALYZE crm.writeback_queue")
        fake.clear_log()
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_drainer_process, args=(dsn, seconds, out)) for _ in range(processes)]
        for p in procs:
            p.start()
        per_process = [out.get(timeout=seconds + 120) for _ in procs]
        for p in procs:
            p.join(30)
        log = list(fake.request_log)
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'), "
                "count(*) FILTER (WHERE status IN ('pending', 'failed')) FROM crm.writeback_queue "
                "WHERE org_id = %s",
                (COMPLIANCE_ORG,),
            ).fetchone()
    assert row is not None
    times = sorted(r.time for r in log)
    limited = sum(1 for r in log if r.status == 429)
    span = (times[-1] - times[0]) if len(times) > 1 else 0.0
    allowance = span / window * limit if span else float("nan")
    return {
        "processes": processes,
        "seconds": seconds,
        "limit": f"{limit} requests / {window:g} s",
        "requests": len(log),
        "requests_429": limited,
        "max_requests_in_any_window": _max_in_window(times, window),
        "within_limit": _max_in_window(times, window) <= limit,
        "active_span_s": round(span, 1),
        "utilization_pct": round(100 * len(log) / allowance, 1) if span else None,
        "jobs_completed": int(str(row[0])),
        "jobs_still_queued": int(str(row[1])),
        "per_process_calls": [p["calls"] for p in per_process],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Only the FakeHubSpot parts (``bench.queue`` runs them too): writes bench/results/queue_fake.json."""
    import argparse
    import json

    from bench.common import LoadWatch, add_load_args, bench_database, write_results

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="rate-compliance run length")
    add_load_args(ap)
    args = ap.parse_args(argv)
    load = LoadWatch.begin(args)
    figures: dict[str, Any] = {"params": vars(args)}
    with bench_database("crmindex_bench_queue_fake") as bench_dsn:
        figures["api_efficiency"] = api_efficiency(bench_dsn)
        print(json.dumps(figures["api_efficiency"]), flush=True)
        figures["rate_compliance"] = rate_compliance(bench_dsn, seconds=args.seconds)
        print(json.dumps(figures["rate_compliance"]), flush=True)
    print(f"written {write_results('queue_fake', figures, load)}")
    return figures


if __name__ == "__main__":
    main()
