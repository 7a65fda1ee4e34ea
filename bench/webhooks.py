"""bench/webhooks: webhook intake and apply.

1. Apply throughput: deliveries of 100 HubSpot ``contact.propertyChange`` events against a 500,000-contact
   org: receive (verify + store) -> inbox -> applied, end to end; events/s.
2. Handler latency for one 100-event request (verify the v3 signature + store in the inbox): p50/p95.
3. Freshness (``--freshness``): ``contact.creation`` emitted by FakeHubSpot (100 ms API latency) ->
   searchable in the index, with the webhook receiver and hydration worker running: p50/p95.

    python -m bench.webhooks [--contacts 500000] [--deliveries 300]
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from typing import Any

import psycopg

from bench.common import BIG_ORG, Timer, bench_database, summary_ms, write_results
from crmindex.connections import Connection, save_connection
from crmindex.queue import Worker
from crmindex.webhooks.intake import WebhookReceiver
from crmindex.webhooks.process import INBOX, process_inbox
from crmindex.webhooks.signatures import hubspot_v3

URL = "https://hooks.example.com/webhooks/hubspot"
PORTAL = 515151
SECRET = "bench-webhook-secret"
TITLES = ["VP of Sales", "Director of Engineering", "Account Executive", "CTO", "Head of Growth", "Intern"]


def load_contacts(conn: psycopg.Connection[Any], org: uuid.UUID, n: int) -> None:
    """n synthetic contacts by set-based SQL through the real write path (triggers, indexes)."""
    conn.execute("INSERT INTO crm.org (org_id) VALUES (%s) ON CONFLICT DO NOTHING", (org,))
    step = 50_000
    for start in range(1, n + 1, step):
        conn.execute(
            """
            INSERT INTO crm.contact_index (org_id, crm_source, crm_record_id, first_name, last_name, email, job_title,
                                           crm_updated_at)
            SELECT %s, 'hubspot', g::text, 'First' || (g %% 997), 'Last' || g, 'p' || g || '@co' || (g %% 5000) || '.com',
                   (ARRAY['VP Sales', 'Engineer', 'Director', 'Manager'])[1 + g %% 4], '2024-01-01Z'
            FROM generate_series(%s, %s) AS g
            """,
            (org, start, min(start + step - 1, n)),
        )
    conn.execute("VACUUM ANALYZE crm.contact_index")


def delivery(n: int, contacts: int, base_ms: int) -> bytes:
    events = [
        {
            "eventId": random.randint(1, 2**31),
            "subscriptionId": 1,
            "portalId": PORTAL,
            "appId": 1,
            "occurredAt": base_ms + i,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": random.randint(1, contacts),
            "propertyName": "jobtitle",
            "propertyValue": random.choice(TITLES),
            "changeSource": "CRM_UI",
        }
        for i in range(n)
    ]
    return json.dumps(events).encode()


def signed(body: bytes) -> dict[str, str]:
    ts = str(int(time.time() * 1000))
    return {"X-HubSpot-Signature-v3": hubspot_v3(SECRET, "POST", URL, body, ts), "X-HubSpot-Request-Timestamp": ts}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=500_000)
    ap.add_argument("--deliveries", type=int, default=300)
    args = ap.parse_args(argv)
    import os

    os.environ["CRMINDEX_BENCH_WEBHOOK_SECRET"] = SECRET
    figures: dict[str, Any] = {"params": vars(args)}
    with bench_database("crmindex_bench_webhooks") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            print(f"loading {args.contacts:,} contacts ...", flush=True)
            load_contacts(conn, BIG_ORG, args.contacts)
            save_connection(
                conn,
                Connection(org_id=BIG_ORG, crm_source="hubspot", account_id=str(PORTAL),
                           webhook_secret_ref="env:CRMINDEX_BENCH_WEBHOOK_SECRET"),
            )
        receiver = WebhookReceiver(dsn)
        base = int(time.time() * 1000) + 60_000  # events newer than the loaded snapshot
        bodies = [delivery(100, args.contacts, base + k * 1000) for k in range(args.deliveries)]
        # warm-up
        receiver.handle_hubspot("POST", URL, signed(bodies[0]), bodies[0])
        Worker(dsn, INBOX, process_inbox).run_once()

        # 2. handler latency (verify + store), one request at a time
        lat: list[float] = []
        for body in bodies[: min(200, len(bodies))]:
            headers = signed(body)
            t = time.perf_counter()
            res = receiver.handle_hubspot("POST", URL, headers, body)
            lat.append(time.perf_counter() - t)
            assert res.status == 200, res
        Worker(dsn, INBOX, process_inbox, batch=20).run_once()
        figures["handler_latency_100_events"] = summary_ms(lat)

        # 1. end to end: receive -> inbox -> applied
        timer = Timer()
        for body in bodies:
            res = receiver.handle_hubspot("POST", URL, signed(body), body)
            assert res.status == 200
        received_s = timer.elapsed
        Worker(dsn, INBOX, process_inbox, batch=20).run_once()
        total_s = timer.elapsed
        events = 100 * len(bodies)
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FROM crm.webhook_inbox"
            ).fetchone()
        assert row is not None and row[0] == row[1], row
        figures["apply"] = {
            "events": events,
            "deliveries": len(bodies),
            "receive_seconds": round(received_s, 2),
            "end_to_end_seconds": round(total_s, 2),
            "events_per_s_end_to_end": round(events / total_s),
            "events_per_s_apply_only": round(events / (total_s - received_s)),
        }
        receiver.close()
    path = write_results("webhooks", figures)
    print(json.dumps(figures, indent=2))
    print(f"written {path}")
    return figures


if __name__ == "__main__":
    main()
