"""bench/queue: the write-back queue and drainer.

1. Claim -> complete throughput with a no-op CRM writer: 100,000 jobs (10 orgs), drained by 1, 2 and 4
   drainer processes; jobs/s, and the table's size and dead tuples after the run (bloat).
2. API efficiency (``--fake``): 10,000 field updates over 2,000 HubSpot contacts through the real client
   against FakeHubSpot -> number of API calls used (coalescing + batches of 100) vs one call per update.
3. Rate compliance (``--fake``): 4 drainer processes for 60 s against FakeHubSpot at 100 requests / 10 s:
   the most requests the fake saw in any rolling 10 s window, and utilization.

    python -m bench.queue [--jobs 100000] [--skip-fake]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from bench.common import LoadWatch, add_load_args, bench_database, org_uuid, write_results
from crmindex.crm.protocols import WriteResult
from crmindex.writeback.drainer import Drainer


class NoopWriter:
    """A CRM that accepts everything instantly (measures the queue, not HTTP)."""

    source = "hubspot"
    max_batch = 100

    def update(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        return [WriteResult(True, rid) for rid, _ in items]

    def create(self, entity_type: str, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        return [WriteResult(True, f"new-{key}") for key, _ in items]


def _noop_factory(org_id: str, source: str) -> NoopWriter:
    return NoopWriter()


def _drain_process(dsn: str, out: Any) -> None:
    d = Drainer(dsn, _noop_factory, batch=100)
    n = d.run_once()
    out.put(n)


def _fill(dsn: str, jobs: int, orgs: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE crm.writeback_queue")
        for i in range(orgs):
            conn.execute("INSERT INTO crm.org (org_id) VALUES (%s) ON CONFLICT DO NOTHING", (org_uuid(i),))
        per = jobs // orgs
        for i in range(orgs):
            conn.execute(
                """
                INSERT INTO crm.writeback_queue (org_id, crm_source, entity_type, crm_record_id, operation, payload,
                                                 triggered_by)
                SELECT %s, 'hubspot', 'contact', g::text, 'update', jsonb_build_object('jobtitle', 'T' || g), 'system'
                FROM generate_series(1, %s) AS g
                """,
                (org_uuid(i), per),
            )
        conn.execute("VACUUM ANALYZE crm.writeback_queue")


def throughput(dsn: str, jobs: int, drainers: int) -> dict[str, Any]:
    _fill(dsn, jobs, 10)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_drain_process, args=(dsn, out)) for _ in range(drainers)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    handled = [out.get(timeout=1200) for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'completed'), pg_total_relation_size('crm.writeback_queue'), "
            "(SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'crm.writeback_queue'::regclass) "
            "FROM crm.writeback_queue"
        ).fetchone()
    assert row is not None
    return {
        "drainers": drainers,
        "jobs": jobs,
        "handled": sum(handled),
        "completed": int(row[0]),
        "seconds": round(elapsed, 2),
        "jobs_per_s": round(jobs / elapsed),
        "table_mb_after": round(int(row[1]) / 2**20, 1),
        "dead_tuples_after": int(row[2] or 0),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--skip-fake", action="store_true", help="only the throughput part")
    add_load_args(ap)
    args = ap.parse_args(argv)
    load = LoadWatch.begin(args)
    figures: dict[str, Any] = {"params": vars(args)}
    with bench_database("crmindex_bench_queue") as dsn:
        figures["throughput"] = []
        for n in (1, 2, 4):
            res = throughput(dsn, args.jobs, n)
            print(json.dumps(res), flush=True)
            figures["throughput"].append(res)
        if not args.skip_fake:
            from bench.queue_fake import api_efficiency, rate_compliance

            figures["api_efficiency"] = api_efficiency(dsn)
            print(json.dumps(figures["api_efficiency"]), flush=True)
            figures["rate_compliance"] = rate_compliance(dsn)
            print(json.dumps(figures["rate_compliance"]), flush=True)
    path = write_results("queue", figures, load)
    print(f"written {path}")
    return figures


if __name__ == "__main__":
    main()
