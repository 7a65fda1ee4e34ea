"""bench/webhooks: webhook intake and apply.

1. Apply throughput: deliveries of 100 HubSpot ``contact.propertyChange`` events against a 500,000-contact
   org: receive (verify + store) -> inbox -> applied, end to end; events/s.
2. Handler latency for one 100-event request (verify the v3 signature + store in the inbox): p50/p95.
3. Freshness (``--freshness``, on by default): ``fake.create("contacts", ...)`` on FakeHubSpot (100 ms API
   latency) -> the webhook delivery goes over HTTP to a real WSGI server (wsgiref, in a thread) running
   ``make_wsgi_app(receiver)`` -> inbox worker -> hydration worker (batch read from the fake) -> the contact
   is found by email in ``crm.contact_index``: p50/p95 over ``--creates`` creations (target p95 <= 2 s).
   The workers run as ``Worker.run()`` threads (LISTEN/NOTIFY), in the same 500,000-contact database.

    python -m bench.webhooks [--contacts 500000] [--deliveries 300] [--creates 60] [--no-freshness]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
import uuid
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg

from bench.common import BIG_ORG, LoadWatch, Timer, add_load_args, bench_database, summary_ms, write_results
from crmindex.crm.hubspot.adapters import HubSpotFetcher
from crmindex.crm.hubspot.client import HubSpotClient
from crmindex.freshness.hydrate import hydrate_handler
from crmindex.freshness.intake import WebhookReceiver
from crmindex.freshness.signatures import hubspot_v3
from crmindex.freshness.webhooks import INBOX, process_inbox
from crmindex.freshness.wsgi import make_wsgi_app
from crmindex.platform.local_limiter import LocalRateLimiter
from crmindex.platform.queue import Queue, Worker
from crmindex.platform.secrets import new_key_spec
from crmindex.testing import FakeHubSpot
from crmindex.testing.connections import connect_with_token

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
            FROM generate_series(%s::int, %s::int) AS g
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
    return {
        "X-HubSpot-Signature-v3": hubspot_v3(SECRET, "POST", URL, body, ts),
        "X-HubSpot-Request-Timestamp": ts,
    }


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


FRESH_ORG = uuid.UUID("00000000-0000-4000-8000-00000000f4e5")
FRESH_PORTAL = 626262


def freshness(dsn: str, creates: int, latency: float = 0.1) -> dict[str, Any]:
    """create in the CRM -> searchable by email in the index, with everything running (seconds -> ms)."""
    # a throwaway key ring seals the secrets
    os.environ.setdefault("CRMINDEX_SECRET_KEYS", new_key_spec("bench"))
    receiver = WebhookReceiver(dsn)
    server: WSGIServer = make_server("127.0.0.1", 0, make_wsgi_app(receiver), handler_class=_QuietHandler)
    serving = threading.Thread(target=server.serve_forever, name="webhook-server", daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/hubspot"
    fake = FakeHubSpot(limits=False, webhook_url=url, client_secret=SECRET, portal_id=FRESH_PORTAL)
    fake.set_faults(latency=latency)
    threads: list[threading.Thread] = []
    workers: list[Worker] = []
    client = None
    try:
        fake.start()
        with psycopg.connect(dsn, autocommit=True) as conn:
            connect_with_token(conn, None, FRESH_ORG, "hubspot", "test-token", account_id=str(FRESH_PORTAL),
                               base_url=fake.base_url, webhook_secret=SECRET)  # fmt: skip
        # HubSpot's own rates (100 requests per 10 s, bursts of 10) for the hydration reads
        client = HubSpotClient(fake.base_url, lambda: "test-token", LocalRateLimiter())
        fetcher = HubSpotFetcher(client)
        workers = [
            Worker(dsn, INBOX, process_inbox, poll_s=1.0),
            Worker(
                dsn, Queue("crm.job"), hydrate_handler(lambda org, src: fetcher), kind="hydrate", poll_s=1.0
            ),
        ]
        threads = [
            threading.Thread(target=w.run, name=f"worker-{i}", daemon=True) for i, w in enumerate(workers)
        ]
        for t in threads:
            t.start()
        lat: list[float] = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(creates + 3):  # 3 warm-up creations
                email = f"fresh{i}.{uuid.uuid4().hex[:8]}@freshness.example.com"
                t0 = time.perf_counter()
                fake.create(
                    "contacts", {"email": email, "firstname": "Fresh", "lastname": f"N{i}", "jobtitle": "CTO"}
                )
                assert fake.delivery_status[-1] == 200, fake.delivery_status[-1:]
                while True:
                    row = conn.execute(
                        "SELECT 1 FROM crm.contact_index WHERE org_id = %s AND email = %s AND deleted_at IS NULL",
                        (FRESH_ORG, email),
                    ).fetchone()
                    if row is not None:
                        break
                    if time.perf_counter() - t0 > 30:
                        raise RuntimeError(f"contact {email} not searchable after 30 s")
                    time.sleep(0.005)
                if i >= 3:
                    lat.append(time.perf_counter() - t0)
                time.sleep(random.uniform(0.05, 0.15))  # creations arrive apart, not in a burst
        out: dict[str, Any] = {"api_latency_ms": latency * 1000, **summary_ms(lat)}
        out["max_ms"] = round(max(lat) * 1000, 3)
        out["target_p95_ms"] = 2000
        out["meets_target"] = out["p95_ms"] <= 2000
        return out
    finally:
        for w in workers:
            w.stop.set()
        for t in threads:
            t.join(timeout=10)
        if client is not None:
            client.close()
        fake.stop()
        server.shutdown()
        server.server_close()
        receiver.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=500_000)
    ap.add_argument("--deliveries", type=int, default=300)
    ap.add_argument("--creates", type=int, default=60, help="freshness: contacts created (>= 50 for p95)")
    ap.add_argument(
        "--freshness",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure freshness (default on)",
    )
    add_load_args(ap)
    args = ap.parse_args(argv)
    load = LoadWatch.begin(args)

    # a throwaway key ring seals the secret
    os.environ.setdefault("CRMINDEX_SECRET_KEYS", new_key_spec("bench"))
    figures: dict[str, Any] = {"params": vars(args)}
    with bench_database("crmindex_bench_webhooks") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            print(f"loading {args.contacts:,} contacts ...", flush=True)
            load_contacts(conn, BIG_ORG, args.contacts)
            connect_with_token(
                conn, None, BIG_ORG, "hubspot", None, account_id=str(PORTAL), webhook_secret=SECRET
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

        # 3. freshness: create -> searchable, with the receiver and the workers running
        if args.freshness:
            print(f"freshness: {args.creates} creations ...", flush=True)
            figures["freshness_create_to_searchable"] = freshness(dsn, args.creates)
    path = write_results("webhooks", figures, load)
    print(json.dumps(figures, indent=2))
    print(f"written {path}")
    return figures


if __name__ == "__main__":
    main()
