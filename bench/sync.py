"""bench/sync: the initial sync against FakeHubSpot served by another process (``crmindex fake-crm``).

(a) rate-limited: the real Free/Starter limit (100 requests / 10 s): wall time divided by the rate-limit
    bound (requests made / 10 per second) — target <= 1.05.
(b) limits off: end-to-end contacts/s (fetch + map + upsert, pipelined) — target >= 5,000/s on 2 cores.
(c) split (issue 18 item 6): the same rate-limited portal synced with ``HubSpotLister(split=True)``: list pages
    (general budget, 100 / 10 s) and ``hs_object_id`` search ranges (search budget, 5 / s, 200 per page) at once.
    Reports its time until every record is written and searchable (``seconds_to_indexed``) over the list-only
    rate bound (the list-only run's requests / 10 per second) — target <= 0.6 — the 429s the fake answered (must
    be 0) and whether both syncs indexed the same contacts. The storage step that ends every initial sync (an
    index rebuild of crm.contact_index: every org's rows, so it depends on what the bench loaded before) is
    timed apart (``storage_step_seconds``), and ``ratio_with_storage_step`` gives the wall time over the bound.
    How it extrapolates to 500K: both syncs are bound by their budgets, not by our work (the limits-off run
    shows the pipeline several times faster than 2,000 records/s), so the times grow linearly with the
    records; the split's fixed costs (2 probe searches per object type, at most one narrowed range) are a
    few seconds, less at 500K than at 100K in relative terms. List-only bound at 500K contacts (+ companies and
    deals of the synthetic CRM): (5,000 + 600 + 600 + ~30) pages / 10 per s ≈ 620 s; the split reads half the
    contacts and companies through search: ≈ (2,800 + 600) / 10 per s ≈ 340 s, a ratio of about 0.55.
Peak memory (max RSS of this process, which runs the sync; the fake has its own) at two CRM sizes shows
whether memory grows with the CRM's size.

``--writers N`` writes contacts and companies on N connections at once in every run (``run_sync(writers=N)``); by
default run_sync's own choice: ``SPLIT_SYNC_WRITERS`` (2) for the split sync, whose ~2,000 records/s one
connection barely keeps up with, one for list-only syncs.

    python -m bench.sync [--contacts 500000] [--limited-contacts 100000] [--skip-unlimited] [--writers 2]
        [--allow-busy]
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg

from bench.common import LoadWatch, add_load_args, bench_database, write_results
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.freshness.sync import SPLIT_SYNC_WRITERS, HubSpotLister, run_sync
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.limits import LimitClass
from crmindex.testing.connections import connect_with_token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_fake(contacts: int, limits: bool) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "crmindex.cli",
        "fake-crm",
        "hubspot",
        "--contacts",
        str(contacts),
        "--port",
        str(port),
    ]
    if not limits:
        cmd.append("--no-limits")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}"


def run(
    dsn: str, contacts: int, limited: bool, split: bool = False, writers: int | None = None
) -> dict[str, Any]:
    org = uuid.uuid4()
    proc, base_url = _start_fake(contacts, limited)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            connect_with_token(
                conn, None, org, "hubspot", None, account_id=str(org.int % 10**8), base_url=base_url
            )
            limiter = PgRateLimiter(dsn, org, "hubspot")
            if not limited:
                limiter.configure(LimitClass.HUBSPOT_GENERAL, 1_000_000, 1.0)
                limiter.configure(LimitClass.HUBSPOT_SEARCH, 1_000_000, 1.0)
            client = HubSpotClient(base_url, lambda: "test-token", limiter)
            counted = {"calls": 0, "general": 0, "search": 0, "429": 0}
            orig = client.http.request

            def counting(*a: Any, **k: Any) -> Any:
                counted["calls"] += 1
                counted[str(k.get("limit_class", "general"))] += 1
                return orig(*a, **k)

            client.http.request = counting  # type: ignore[method-assign]
            # the 429s the fake answered (each is retried by the transport: the sync still finishes)
            orig_response = client.http.on_response

            def on_response(limit_class: Any, resp: Any) -> Any:
                if resp.status_code == 429:
                    counted["429"] += 1
                return orig_response(limit_class, resp) if orig_response is not None else None

            client.http.on_response = on_response
            lister = HubSpotLister(client, split=split)
            started = time.perf_counter()
            report = run_sync(conn, org, lister, progress=False, writers=writers)
            elapsed = time.perf_counter() - started
            client.close()
            limiter.close()
            row = conn.execute(
                "SELECT count(*) FROM crm.contact_index WHERE org_id = %s AND deleted_at IS NULL", (org,)
            ).fetchone()
        calls = counted["calls"]
        assert report.indexed_at is not None and report.finished_at is not None
        storage_s = (report.finished_at - report.indexed_at).total_seconds()
        out: dict[str, Any] = {
            "contacts": contacts,
            "rate_limited": limited,
            "split": split,
            "writers": writers if writers is not None else (SPLIT_SYNC_WRITERS if split else 1),
            "seconds": round(elapsed, 1),
            # every record written and searchable; the storage step after it (index rebuild of the whole table,
            # every org's rows: run_sync's after_initial_sync) is timed apart
            "seconds_to_indexed": round(elapsed - storage_s, 1),
            "storage_step_seconds": round(storage_s, 1),
            "api_calls": calls,
            "api_calls_general": counted["general"],
            "api_calls_search": counted["search"],
            "answers_429": counted["429"],
            "records": report.records,
            "contacts_indexed": int(row[0]) if row else 0,
            "contacts_per_s": round(contacts / elapsed),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        if split:
            out["search_ranges"] = sum(len(r.ranges) for r in lister.readers)
            out["ranges_narrowed"] = sum(r.narrowed for r in lister.readers)
            out["largest_range_total"] = max((t for r in lister.readers for _, t in r.ranges), default=0)
        if limited and not split:
            bound = calls / 10.0  # 100 requests per 10 s
            out["rate_limit_bound_seconds"] = round(bound, 1)
            out["ratio_to_bound"] = round(elapsed / bound, 3)
        return out
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=500_000, help="(b) limits off")
    ap.add_argument(
        "--small", type=int, default=50_000, help="(b) at a small size, for the memory comparison"
    )
    ap.add_argument("--limited-contacts", type=int, default=100_000, help="(a) and (c) rate-limited")
    ap.add_argument("--skip-unlimited", action="store_true", help="only (a) and (c)")
    ap.add_argument("--skip-split", action="store_true", help="leave out (c)")
    ap.add_argument(
        "--writers",
        type=int,
        default=None,
        help="database connections writing pages at once in every run (run_sync(writers=...); default run_sync's: "
        f"{SPLIT_SYNC_WRITERS} for the split sync, 1 list-only)",
    )
    add_load_args(ap)
    args = ap.parse_args(argv)
    load = LoadWatch.begin(args)
    figures: dict[str, Any] = {"params": vars(args)}
    with bench_database("crmindex_bench_sync") as dsn:
        if not args.skip_unlimited:
            figures["unlimited_small"] = run(dsn, args.small, limited=False, writers=args.writers)
            print(json.dumps(figures["unlimited_small"]), flush=True)
            figures["unlimited"] = run(dsn, args.contacts, limited=False, writers=args.writers)
            print(json.dumps(figures["unlimited"]), flush=True)
        listed = figures["rate_limited"] = run(dsn, args.limited_contacts, limited=True, writers=args.writers)
        print(json.dumps(listed), flush=True)
        if not args.skip_split:
            split = figures["split"] = run(
                dsn, args.limited_contacts, limited=True, split=True, writers=args.writers
            )
            bound = listed["api_calls"] / 10.0  # the list-only sync's requests at 100 per 10 s
            split["list_only_bound_seconds"] = round(bound, 1)
            split["ratio_to_list_only_bound"] = round(split["seconds_to_indexed"] / bound, 3)
            split["ratio_with_storage_step"] = round(split["seconds"] / bound, 3)
            split["time_vs_list_only"] = round(split["seconds_to_indexed"] / listed["seconds_to_indexed"], 3)
            split["same_contacts_indexed"] = split["contacts_indexed"] == listed["contacts_indexed"]
            print(json.dumps(split), flush=True)
    path = write_results("sync", figures, load)
    print(f"written {path}")
    return figures


if __name__ == "__main__":
    main()
