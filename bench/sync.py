"""bench/sync: the initial sync against FakeHubSpot served by another process (``crmindex fake-crm``).

(a) rate-limited: the real Free/Starter limit (100 requests / 10 s): wall time divided by the rate-limit
    bound (requests made / 10 per second) — target <= 1.05.
(b) limits off: end-to-end contacts/s (fetch + map + upsert, pipelined) — target >= 5,000/s on 2 cores.
Peak memory (max RSS of this process, which runs the sync; the fake has its own) at two CRM sizes shows
whether memory grows with the CRM's size.

    python -m bench.sync [--contacts 500000] [--limited-contacts 100000]
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

from bench.common import bench_database, write_results
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.freshness.sync import HubSpotLister, run_sync
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


def run(dsn: str, contacts: int, limited: bool) -> dict[str, Any]:
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
            counted = {"calls": 0}
            orig = client.http.request

            def counting(*a: Any, **k: Any) -> Any:
                counted["calls"] += 1
                return orig(*a, **k)

            client.http.request = counting  # type: ignore[method-assign]
            started = time.perf_counter()
            report = run_sync(conn, org, HubSpotLister(client), progress=False)
            elapsed = time.perf_counter() - started
            client.close()
            limiter.close()
            row = conn.execute(
                "SELECT count(*) FROM crm.contact_index WHERE org_id = %s AND deleted_at IS NULL", (org,)
            ).fetchone()
        calls = counted["calls"]
        out: dict[str, Any] = {
            "contacts": contacts,
            "rate_limited": limited,
            "seconds": round(elapsed, 1),
            "api_calls": calls,
            "records": report.records,
            "contacts_indexed": int(row[0]) if row else 0,
            "contacts_per_s": round(contacts / elapsed),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        if limited:
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
    ap.add_argument("--limited-contacts", type=int, default=100_000, help="(a) rate-limited")
    args = ap.parse_args(argv)
    figures: dict[str, Any] = {"params": vars(args)}
    with bench_database("crmindex_bench_sync") as dsn:
        figures["unlimited_small"] = run(dsn, args.small, limited=False)
        print(json.dumps(figures["unlimited_small"]), flush=True)
        figures["unlimited"] = run(dsn, args.contacts, limited=False)
        print(json.dumps(figures["unlimited"]), flush=True)
        figures["rate_limited"] = run(dsn, args.limited_contacts, limited=True)
        print(json.dumps(figures["rate_limited"]), flush=True)
    path = write_results("sync", figures)
    print(f"written {path}")
    return figures


if __name__ == "__main__":
    main()
