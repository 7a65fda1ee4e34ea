"""bench/mixed_load: everything at once on one 500K-contact org beside 9 smaller ones.

Running together for ``--load-s`` seconds (default 300):

* ``--search-clients`` (8) copilot search clients on the big org: threads with a connection each, running the
  query patterns of bench/search, pausing a random 0..2x ``--think-ms`` between queries;
* a webhook stream: FakeHubSpot (its own process; Professional limits: ``--limit`` requests per 10 s, 5 search
  requests per second) changes ``--webhook-rate`` (100) contacts' job titles per second "in the CRM UI" and
  delivers the signed events, batched every 0.5 s as HubSpot does, to the WSGI receiver (its own process);
* ``--drainers`` (4) ``crmindex drain`` processes (write-back drainer + inbox + hydration + materialization
  workers each), all sharing the account's Postgres rate limiter;
* the copilot's write-backs: ``--copilot-rate`` phone updates per second through
  ``crmindex.writeback.update_contact`` (priority 5) and, every ``--burst-every`` seconds, an ops-table bulk
  edit of ``--burst-size`` contacts saved through the same call (priority 7): the drainers run at the limit;
* materializations: ``--materialize-rate`` contacts per second through ``materialize_contact``;
* one reconcile of the big org for the changes since the load began, started 5 s into the second bulk edit
  (so the two overlap: the case that once stalled copilot write-backs) or at ``--reconcile-at`` seconds.

Before it, an idle phase (``--idle-s``) runs the same search clients alone: the baseline.

Reported: search p50/p95 idle vs under load (target: p95 under load <= 2x idle), webhook apply lag (received ->
applied, and CRM change -> applied), write-back queue lag (enqueued -> landed in the CRM) for copilot jobs and
per burst, the most requests the fake saw in any rolling 10 s window (must stay <= the limit) and 429s,
materialization latency, the reconcile's duration. Then the stream stops, everything drains, and it is
checked: every delivery answered 2xx and applied, every write-back completed (none dead), and the index equals
the fake CRM for every contact the stream touched and every phone written back.

    python -m bench.mixed_load [--contacts 500000] [--others 9] [--other-contacts 20000] [--load-s 300]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg

from bench.common import (
    BIG_ORG,
    LoadWatch,
    Timer,
    add_load_args,
    bench_database,
    org_uuid,
    percentile,
    summary_ms,
    write_results,
)
from bench.ingest import _load, _payloads
from bench.search import build_queries
from crmindex.crm.clients import Clients
from crmindex.freshness.intake import WebhookReceiver
from crmindex.freshness.reconcile import reconcile_hubspot
from crmindex.freshness.wsgi import make_wsgi_app
from crmindex.index.writes import ensure_org
from crmindex.platform.limiter import PgRateLimiter
from crmindex.platform.limits import LimitClass
from crmindex.platform.secrets import new_key_spec
from crmindex.records.materialize import materialize_contact
from crmindex.testing import FakeHubSpot
from crmindex.testing.connections import connect_with_token
from crmindex.testing.synthetic import SyntheticCRM
from crmindex.writeback.enqueue import update_contact

PORTAL = 737373
TOKEN = "mixed-load-token"
TOKEN_ENV = "CRMINDEX_BENCH_MIXED_TOKEN"
SECRET_ENV = "CRMINDEX_BENCH_MIXED_SECRET"
WINDOW_S = 10.0
TITLES = ["VP of Sales", "Director of Engineering", "Account Executive", "CTO", "Head of Growth", "Engineer"]
Conn = psycopg.Connection[Any]


@dataclass
class Params:
    contacts: int = 500_000
    others: int = 9
    other_contacts: int = 20_000
    idle_s: float = 60.0
    load_s: float = 300.0
    search_clients: int = 8
    think_ms: float = 250.0
    queries: int = 50  # per search pattern
    webhook_rate: int = 100
    drainers: int = 4
    limit: int = 190  # HubSpot Professional: requests per 10 s
    headroom: float = 0.97  # the limiter's share of the limit (the library's default)
    copilot_rate: float = 20.0
    burst_every: float = 60.0
    burst_size: int = 5_000
    materialize_rate: float = 2.0
    reconcile_at: float = 0.0  # seconds into the load; 0: 5 s after the second bulk edit began
    settle_s: float = 600.0  # after the load: how long everything may take to drain
    seed: int = 42


@dataclass
class Recorder:
    """What the main process's load threads saw (appends from several threads; list.append is atomic)."""

    search: list[tuple[str, float, float]] = field(default_factory=list)  # phase, latency s, rows
    search_errors: list[str] = field(default_factory=list)
    materialize: list[float] = field(default_factory=list)
    materialize_errors: list[str] = field(default_factory=list)
    copilot_jobs: int = 0
    copilot_call_s: list[float] = field(default_factory=list)  # update_contact round trips (local side)
    copilot_errors: list[str] = field(default_factory=list)
    phones: dict[str, str] = field(default_factory=dict)  # crm id -> last phone written locally
    # crm id -> (call started, returned, phone) of every local phone write: the copilot and the bulk edits write from
    # two threads, and two calls on one contact that overlap in time may commit in either order
    phone_calls: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict)
    bursts: list[tuple[datetime, int, datetime]] = field(default_factory=list)  # started, jobs, queued by
    reconcile: dict[str, Any] = field(default_factory=dict)
    queue_depth: list[tuple[float, int, int]] = field(default_factory=list)  # t, write-back open, inbox open
    second_burst: threading.Event = field(default_factory=threading.Event)  # the second bulk edit began


# ------------------------------------------------------------------------------------- child processes
def _fake_process(p: Params, hook_url: str, out: Any, ctl: Any, go: Any, stop: Any) -> None:
    """FakeHubSpot holding the big org's CRM, and the UI change stream that makes its webhooks."""
    crm = SyntheticCRM(seed=p.seed, contacts=p.contacts)
    fake = FakeHubSpot(
        burst_limit=p.limit,
        burst_window=WINDOW_S,
        webhook_url=hook_url,
        client_secret=os.environ[SECRET_ENV],
        tokens=[TOKEN],
        portal_id=PORTAL,
        emit_api_changes=False,  # the drainers' own writes are not echoed (the stream is the 100 events/s)
    )
    fake.seed_from(crm)
    with fake:
        out.put(("ready", fake.base_url))
        go.wait()
        rng = random.Random(p.seed)
        first = int(crm.contact_id(0))
        touched: dict[str, str] = {}
        events = 0
        tick = 0.5
        due = time.monotonic()
        carry = 0.0
        while not stop.is_set():
            carry += p.webhook_rate * tick
            n, carry = int(carry), carry - int(carry)
            with fake.batched_webhooks():
                for _ in range(n):
                    oid = str(first + rng.randrange(p.contacts))
                    title = f"{rng.choice(TITLES)} {rng.randrange(10_000)}"
                    fake.update("contacts", oid, {"jobtitle": title})
                    touched[oid] = title
            events += n
            due += tick
            time.sleep(max(0.0, due - time.monotonic()))
        log = [(r.time, r.status, r.limit_class, r.method, r.path, r.seconds) for r in fake.request_log]
        out.put(
            (
                "done",
                {"log": log, "deliveries": list(fake.delivery_status), "touched": touched, "events": events},
            )
        )
        while (ids := ctl.get()) is not None:
            out.put(("props", {i: fake.properties("contacts", i) for i in ids}))


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _receiver_process(dsn: str, out: Any, stop: Any) -> None:
    """The webhook endpoint: verify the signature, store the body raw in the inbox, answer."""
    receiver = WebhookReceiver(dsn)
    server: WSGIServer = make_server("127.0.0.1", 0, make_wsgi_app(receiver), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    out.put(("hook", f"http://127.0.0.1:{server.server_port}/webhooks/hubspot"))
    stop.wait()
    server.shutdown()
    server.server_close()
    receiver.close()


# ------------------------------------------------------------------------------------- main-process load
def _search_client(dsn: str, queries: list[tuple[str, str, tuple[Any, ...]]], k: int, p: Params,
                   phase: list[str], stop: threading.Event, rec: Recorder) -> None:  # fmt: skip
    rng = random.Random(k)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT set_config('crm.org_id', %s, false)", (str(BIG_ORG),))
        while not stop.is_set():
            _name, sql, params = queries[rng.randrange(len(queries))]
            now_phase = phase[0]
            t = time.perf_counter()
            try:
                rows = conn.execute(sql, params).fetchall()
            except psycopg.Error as exc:
                rec.search_errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            rec.search.append((now_phase, time.perf_counter() - t, len(rows)))
            stop.wait(rng.uniform(0, 2 * p.think_ms / 1000))


def _paced(rate: float, stop: threading.Event) -> Iterator[int]:
    """Yield ticks at ``rate`` per second until ``stop``."""
    if rate <= 0:
        return
    i = 0
    due = time.monotonic()
    while not stop.is_set():
        yield i
        i += 1
        due += 1 / rate
        stop.wait(max(0.0, due - time.monotonic()))


def _copilot_writer(
    dsn: str, ids: list[tuple[int, str]], p: Params, stop: threading.Event, rec: Recorder
) -> None:
    rng = random.Random(p.seed + 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in _paced(p.copilot_rate, stop):
            index_id, crm_id = ids[rng.randrange(len(ids))]
            phone = f"+1 555 01{i:06d}"
            t = time.perf_counter()
            try:
                update_contact(conn, BIG_ORG, index_id, {"phone": phone}, triggered_by="copilot")
            except Exception as exc:  # reported, never silently dropped
                rec.copilot_errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            rec.copilot_call_s.append(time.perf_counter() - t)
            _note_phone(rec, crm_id, t, phone)
            rec.copilot_jobs += 1


def _note_phone(rec: Recorder, crm_id: str, started: float, phone: str) -> None:
    """A local phone write that returned now (committed between ``started`` and now)."""
    rec.phones[crm_id] = phone
    rec.phone_calls.setdefault(crm_id, []).append((started, time.perf_counter(), phone))


def phones_that_may_be_last(calls: list[tuple[float, float, str]]) -> set[str]:
    """The phones one of which the contact must hold: the write that returned last, and every write whose call
    overlapped it (it may have committed after it). A write that returned before another began committed first."""
    last = max(calls, key=lambda c: c[1])
    return {phone for started, returned, phone in calls if returned >= last[0]}


def _bursts(dsn: str, ids: list[tuple[int, str]], p: Params, stop: threading.Event, rec: Recorder) -> None:
    """Every ``burst_every`` s an ops-table edit of ``burst_size`` contacts (automation, priority 7), saved row by
    row through ``update_contact`` as an app would."""
    rng = random.Random(p.seed + 2)
    with psycopg.connect(dsn, autocommit=True) as conn:
        k = 0
        while not stop.wait(p.burst_every if k else p.burst_every / 2):
            if k == 1:
                rec.second_burst.set()
            first = rng.randrange(max(1, len(ids) - p.burst_size))
            at = datetime.now(UTC)
            n = 0
            for index_id, crm_id in ids[first : first + p.burst_size]:
                if stop.is_set():
                    break
                phone = f"+1 555 9{k:02d}-{index_id}"
                t = time.perf_counter()
                try:
                    update_contact(
                        conn, BIG_ORG, index_id, {"phone": phone}, triggered_by="automation", priority=7
                    )
                except Exception as exc:
                    rec.copilot_errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                _note_phone(rec, crm_id, t, phone)
                n += 1
            rec.bursts.append((at, n, datetime.now(UTC)))
            k += 1


def _materializer(dsn: str, ids: list[tuple[int, str]], clients: Clients, p: Params, stop: threading.Event,
                  rec: Recorder) -> None:  # fmt: skip
    rng = random.Random(p.seed + 3)
    fetcher = clients.fetcher(BIG_ORG, "hubspot")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in _paced(p.materialize_rate, stop):
            index_id, _crm = ids[rng.randrange(len(ids))]
            t = time.perf_counter()
            try:
                materialize_contact(conn, fetcher, BIG_ORG, index_id, reason="copilot")
            except Exception as exc:
                rec.materialize_errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            rec.materialize.append(time.perf_counter() - t)


def _reconciler(dsn: str, clients: Clients, since: datetime, at: float, stop: threading.Event,
                rec: Recorder) -> None:  # fmt: skip
    if at <= 0:  # during the second bulk edit
        while not rec.second_burst.wait(0.2):
            if stop.is_set():
                return
        at = 5.0
    if stop.wait(at):
        return
    t = time.perf_counter()
    rec.reconcile["started"] = datetime.now(UTC)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            report = reconcile_hubspot(conn, BIG_ORG, clients.client(BIG_ORG, "hubspot"), since=since)
        rec.reconcile |= {"seconds": round(time.perf_counter() - t, 2), "report": str(report)}
    except Exception as exc:
        rec.reconcile |= {
            "seconds": round(time.perf_counter() - t, 2),
            "error": f"{type(exc).__name__}: {exc}",
        }


def _sampler(dsn: str, t0: float, stop: threading.Event, rec: Recorder) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.wait(1.0):
            row = conn.execute(
                "SELECT (SELECT count(*) FROM crm.writeback_queue WHERE status IN ('pending', 'processing', 'failed')),"
                " (SELECT count(*) FROM crm.webhook_inbox WHERE status IN ('pending', 'processing', 'failed'))"
            ).fetchone()
            assert row is not None
            rec.queue_depth.append((round(time.monotonic() - t0, 1), int(row[0]), int(row[1])))


# ------------------------------------------------------------------------------------- figures
def _max_in_window(times: list[float], window: float) -> int:
    best = 0
    for i, t in enumerate(times):
        best = max(best, bisect.bisect_left(times, t + window, lo=i) - i)
    return best


def _lat(conn: Conn, sql: str, params: tuple[Any, ...]) -> dict[str, float]:
    values = [float(r[0]) for r in conn.execute(sql, params).fetchall() if r[0] is not None]
    return summary_ms(values) | {"max_ms": round(max(values) * 1000, 1) if values else float("nan")}


def _search_figures(rec: Recorder) -> dict[str, Any]:
    idle = [s for ph, s, _ in rec.search if ph == "idle"]
    load = [s for ph, s, _ in rec.search if ph == "load"]
    fig: dict[str, Any] = {
        "idle": summary_ms(idle),
        "load": summary_ms(load),
        "errors": len(rec.search_errors),
    }
    if idle and load:
        fig["p95_ratio_load_vs_idle"] = round(percentile(load, 95) / percentile(idle, 95), 2)
        fig["p50_ratio_load_vs_idle"] = round(percentile(load, 50) / percentile(idle, 50), 2)
        fig["meets_target_2x"] = fig["p95_ratio_load_vs_idle"] <= 2.0
    fig["empty_results"] = sum(1 for _ph, _s, n in rec.search if n == 0)
    return fig


def _wait_settled(conn: Conn, seconds: float) -> float:
    t = Timer()
    while t.elapsed < seconds:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM crm.writeback_queue WHERE status IN ('pending', 'processing', 'failed'))"
            " + (SELECT count(*) FROM crm.webhook_inbox WHERE status IN ('pending', 'processing', 'failed'))"
            " + (SELECT count(*) FROM crm.job WHERE status IN ('pending', 'processing', 'failed'))"
        ).fetchone()
        assert row is not None
        if int(row[0]) == 0:
            return t.elapsed
        time.sleep(0.5)
    raise RuntimeError(f"work still open after {seconds:.0f} s of settling")


def _verify(
    conn: Conn, props: dict[str, dict[str, Any]], touched: dict[str, str], rec: Recorder
) -> dict[str, Any]:
    """The index against the fake CRM for every contact the stream touched and every phone written back."""
    rows = conn.execute(
        "SELECT crm_record_id, job_title, phone FROM crm.contact_index "
        "WHERE org_id = %s AND crm_source = 'hubspot' AND crm_record_id = ANY(%s)",
        (BIG_ORG, list(props)),
    ).fetchall()
    index = {str(r[0]): (r[1], r[2]) for r in rows}
    title_bad = [
        i for i, t in touched.items() if index.get(i, (None, None))[0] != t or props[i].get("jobtitle") != t
    ]
    # the index and the CRM agree, on a phone that may have been written last
    phone_bad = [
        i
        for i, calls in rec.phone_calls.items()
        if index.get(i, (None, None))[1] != props[i].get("phone")
        or index.get(i, (None, None))[1] not in phones_that_may_be_last(calls)
    ]
    overlapping = sum(len(phones_that_may_be_last(calls)) > 1 for calls in rec.phone_calls.values())
    return {
        "contacts_checked": len(props),
        "titles_checked": len(touched),
        "title_mismatches": len(title_bad),
        "phones_checked": len(rec.phones),
        "phone_mismatches": len(phone_bad),
        "phones_with_overlapping_writes": overlapping,
        "examples": [
            {
                "id": i,
                "index": index.get(i),
                "crm_title": props[i].get("jobtitle"),
                "crm_phone": props[i].get("phone"),
                "stream_title": touched.get(i),
                "phone_written": rec.phones.get(i),
                "phones_that_may_be_last": sorted(
                    phones_that_may_be_last(rec.phone_calls.get(i, [(0, 0, "")]))
                ),
            }
            for i in (title_bad + phone_bad)[:5]
        ],
    }


# ------------------------------------------------------------------------------------- the run
def _load_data(conn: Conn, p: Params) -> dict[str, float]:
    t = Timer()
    for i in range(p.others):
        org = org_uuid(i + 1)
        ensure_org(conn, org)
        crm_i = SyntheticCRM(seed=1000 + i, contacts=p.other_contacts)
        _load(conn, org, {k: _payloads(crm_i, k, 1000) for k in ("companies", "contacts", "deals")})
    others_s = t.elapsed
    t = Timer()
    ensure_org(conn, BIG_ORG)
    big = SyntheticCRM(seed=p.seed, contacts=p.contacts)
    _load(conn, BIG_ORG, {k: _payloads(big, k, 1000) for k in ("companies", "contacts", "deals")})
    conn.execute("VACUUM ANALYZE")
    return {"others_s": round(others_s, 1), "big_s": round(t.elapsed, 1)}


def _spawn_drainers(dsn: str, n: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        with open(logs / f"drain-{i}.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "crmindex.cli", "drain", "--dsn", dsn],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=os.environ.copy(),
                )
            )
    return procs


def _stop_drainers(procs: list[subprocess.Popen[bytes]], logs: Path) -> list[int | None]:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    codes = []
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        codes.append(proc.returncode)
    return codes


def run(dsn: str, p: Params, *, say: Any = print) -> dict[str, Any]:
    """Load the data, run the idle phase and the mixed load, drain, verify; return the figures."""
    os.environ[TOKEN_ENV] = TOKEN
    # a throwaway key ring seals the token
    os.environ.setdefault("CRMINDEX_SECRET_KEYS", new_key_spec("bench"))
    # the fake (workers inherit both)
    os.environ.setdefault("CRMINDEX_ALLOWED_BASE_URLS", "http://127.0.0.1:*")
    os.environ.setdefault(SECRET_ENV, uuid.uuid4().hex)
    big = SyntheticCRM(seed=p.seed, contacts=p.contacts)
    with psycopg.connect(dsn, autocommit=True) as conn:
        say(f"loading {p.others} orgs x {p.other_contacts:,} and one of {p.contacts:,} contacts ...")
        loaded = _load_data(conn, p)
        say(f"  loaded in {loaded['others_s'] + loaded['big_s']:.0f} s")
        ids = [(int(str(r[0])), str(r[1])) for r in conn.execute(
            "SELECT id, crm_record_id FROM crm.contact_index WHERE org_id = %s ORDER BY id", (BIG_ORG,))]  # fmt: skip
    pats = build_queries(big, p.queries)
    queries = [(name, sql, params) for name, qs in pats.items() for sql, params in qs["ours"]]

    ctx = multiprocessing.get_context("spawn")
    fake_out, fake_ctl, recv_out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    go, stream_stop, recv_stop = ctx.Event(), ctx.Event(), ctx.Event()
    rec = Recorder()
    figures: dict[str, Any] = {"params": asdict(p), "load_data_s": loaded}
    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crmindex-mixed-")))
        receiver = ctx.Process(target=_receiver_process, args=(dsn, recv_out, recv_stop), daemon=True)
        receiver.start()
        stack.callback(receiver.join, 30)
        stack.callback(recv_stop.set)
        hook_url = recv_out.get(timeout=60)[1]
        fake = ctx.Process(
            target=_fake_process, args=(p, hook_url, fake_out, fake_ctl, go, stream_stop), daemon=True
        )
        fake.start()
        stack.callback(fake.join, 30)
        stack.callback(fake_ctl.put, None)
        stack.callback(stream_stop.set)
        stack.callback(go.set)
        base_url = fake_out.get(timeout=120)[1]
        with psycopg.connect(dsn, autocommit=True) as conn:
            connect_with_token(conn, None, BIG_ORG, "hubspot", TOKEN, account_id=str(PORTAL), base_url=base_url,
                               webhook_secret=os.environ[SECRET_ENV])  # fmt: skip
        limiter = PgRateLimiter(dsn, BIG_ORG, "hubspot")
        limiter.configure(LimitClass.HUBSPOT_GENERAL, p.limit, WINDOW_S, p.headroom)
        limiter.close()
        drainers = _spawn_drainers(dsn, p.drainers, logs)
        stack.callback(_stop_drainers, drainers, logs)  # also when the run fails: no drainer outlives it
        clients = Clients(dsn)
        stack.callback(clients.close)

        phase = ["idle"]
        search_stop = threading.Event()
        searchers = [
            threading.Thread(
                target=_search_client, args=(dsn, queries, k, p, phase, search_stop, rec), daemon=True
            )
            for k in range(p.search_clients)
        ]
        with psycopg.connect(dsn, autocommit=True) as conn:  # warm up: every query once, not measured
            conn.execute("SELECT set_config('crm.org_id', %s, false)", (str(BIG_ORG),))
            for _name, sql, params in queries:
                conn.execute(sql, params).fetchall()
        say(f"idle: {p.search_clients} search clients alone for {p.idle_s:.0f} s ...")
        for t in searchers:
            t.start()
        time.sleep(p.idle_s)

        load_stop = threading.Event()
        load_started = datetime.now(UTC)
        t0 = time.monotonic()
        phase[0] = "load"
        go.set()
        load = [
            threading.Thread(target=_copilot_writer, args=(dsn, ids, p, load_stop, rec), daemon=True),
            threading.Thread(target=_bursts, args=(dsn, ids, p, load_stop, rec), daemon=True),
            threading.Thread(target=_materializer, args=(dsn, ids, clients, p, load_stop, rec), daemon=True),
            threading.Thread(target=_reconciler, daemon=True, args=(
                dsn, clients, load_started - timedelta(seconds=60), p.reconcile_at, load_stop, rec)),
            threading.Thread(target=_sampler, args=(dsn, t0, load_stop, rec), daemon=True),
        ]  # fmt: skip
        for t in load:
            t.start()
        say(f"load: stream {p.webhook_rate} events/s, {p.drainers} drainers at {p.limit} req/10 s, "
            f"copilot {p.copilot_rate:g} writes/s + {p.burst_size:,}-row bursts every {p.burst_every:g} s, "
            f"{p.materialize_rate:g} materializations/s, a reconcile "
            f"{f'at {p.reconcile_at:g} s' if p.reconcile_at > 0 else 'during the second bulk edit'}, for {p.load_s:.0f} s ...")  # fmt: skip
        time.sleep(p.load_s)
        search_stop.set()
        load_stop.set()
        stream_stop.set()
        for t in [*searchers, *load]:
            t.join(120)
        kind, stream = fake_out.get(timeout=120)
        assert kind == "done"
        with psycopg.connect(dsn, autocommit=True) as conn:
            settle_s = _wait_settled(conn, p.settle_s)
            say(f"settled {settle_s:.1f} s after the load stopped; verifying against the fake CRM ...")
            check_ids = sorted(set(stream["touched"]) | set(rec.phones))
            props: dict[str, dict[str, Any]] = {}
            for i in range(0, len(check_ids), 5_000):
                fake_ctl.put(check_ids[i : i + 5_000])
                kind, part = fake_out.get(timeout=120)
                assert kind == "props"
                props.update(part)
            figures["verification"] = _verify(conn, props, stream["touched"], rec)
            figures.update(_db_figures(conn, load_started, rec))
        codes = _stop_drainers(drainers, logs)
        figures["drainer_exit_codes"] = codes
        figures["drainer_log_tail"] = [
            (logs / f"drain-{i}.log").read_text(errors="replace")[-400:]
            for i, c in enumerate(codes)
            if c != 0
        ]

    figures["search"] = _search_figures(rec)
    figures["search"]["queries_per_s_load"] = round(
        sum(1 for ph, _s, _n in rec.search if ph == "load") / p.load_s, 1
    )
    figures["search"]["error_examples"] = rec.search_errors[:3]
    figures["stream"] = {
        "events": stream["events"],
        "events_per_s": round(stream["events"] / p.load_s, 1),
        "deliveries": len(stream["deliveries"]),
        "deliveries_not_2xx": sum(1 for s in stream["deliveries"] if not 200 <= s < 300),
    }
    figures["rate_limit"] = _rate_figures(stream["log"], p)
    figures["materialize"] = summary_ms(rec.materialize) | {
        "errors": len(rec.materialize_errors),
        "error_examples": rec.materialize_errors[:3],
    }
    figures["copilot_writes"] = {"queued": rec.copilot_jobs, "errors": len(rec.copilot_errors),
                                 "error_examples": rec.copilot_errors[:3]}  # fmt: skip
    figures["reconcile"] = {k: v for k, v in rec.reconcile.items() if k != "started"}
    if "started" in rec.reconcile:
        figures["reconcile"]["started_s_into_load"] = round(
            (rec.reconcile["started"] - load_started).total_seconds(), 1
        )
    figures["queue_depth_max"] = {
        "writeback": max((d[1] for d in rec.queue_depth), default=0),
        "inbox": max((d[2] for d in rec.queue_depth), default=0),
    }
    figures["settle_s"] = round(settle_s, 1)
    return figures


# the fake's request log: received, status, limit class, method, path, seconds to answer
LogRow = tuple[float, int, str | None, str, str, float]


def _rate_figures(log: list[LogRow], p: Params) -> dict[str, Any]:
    general = sorted(t for t, _st, cls, *_ in log if cls != "search")
    search = sorted(t for t, _st, cls, *_ in log if cls == "search")
    most = _max_in_window(general, WINDOW_S)
    span = general[-1] - general[0] if len(general) > 1 else 0.0
    return {
        "limit": f"{p.limit} requests / {WINDOW_S:g} s (+ 5 search requests / s)",
        "requests": len(log),
        "requests_429": sum(1 for _t, st, *_ in log if st == 429),
        "max_requests_in_any_10s_window": most,
        "max_search_requests_in_any_1s": _max_in_window(search, 1.0),
        "held_in_every_window": most <= p.limit and _max_in_window(search, 1.0) <= 5,
        "utilization_pct": round(100 * len(general) / (span / WINDOW_S * p.limit), 1) if span else None,
        "by_path": {k: len(v) for k, v in _by_path(log).items()},
        # the fake CRM's own answer time (a slow fake would pass for a slow drainer)
        "fake_crm_seconds_by_path": {
            k: {"p50_ms": _ms(percentile(v, 50)), "p95_ms": _ms(percentile(v, 95)), "max_ms": _ms(max(v))}
            for k, v in _by_path(log).items()
        },
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _by_path(log: list[LogRow]) -> dict[str, list[float]]:
    """Each endpoint's answer times (ids in paths folded), the busiest first."""
    out: dict[str, list[float]] = {}
    for _t, _st, _cls, method, path, seconds in log:
        key = f"{method} {'/'.join(x if not x.isdigit() else '{id}' for x in path.split('/'))}"
        out.setdefault(key, []).append(seconds)
    return dict(sorted(out.items(), key=lambda kv: -len(kv[1])))


_WINDOWS = {
    (True, False): "burst_only",
    (False, True): "reconcile_only",
    (True, True): "burst_and_reconcile",
    (False, False): "other",
}


def _copilot_breakdown(conn: Conn, rec: Recorder) -> dict[str, Any]:
    """Copilot write-back lag split by what else was going on when the job was queued."""
    rows = conn.execute(
        "SELECT created_at, extract(epoch FROM completed_at - created_at)::float8, attempts "
        "FROM crm.writeback_queue WHERE org_id = %s AND priority = 5 AND status = 'completed'",
        (BIG_ORG,),
    ).fetchall()
    bursts = [(at, queued) for at, _n, queued in rec.bursts]
    r_start = rec.reconcile.get("started")
    r_end = r_start + timedelta(seconds=float(rec.reconcile.get("seconds", 0))) if r_start else None
    groups: dict[str, list[float]] = {
        "burst_only": [],
        "reconcile_only": [],
        "burst_and_reconcile": [],
        "other": [],
    }
    retried = 0  # (held-back releases cannot be counted afterwards: completion clears last_error)
    for created, lag, attempts in rows:
        retried += attempts > 1
        in_burst = any(a <= created <= q for a, q in bursts)
        in_reconcile = bool(r_start and r_end and r_start <= created <= r_end)
        groups[_WINDOWS[(in_burst, in_reconcile)]].append(lag)
    out: dict[str, Any] = {k: summary_ms(v) for k, v in groups.items()}
    out["update_contact_call"] = summary_ms(rec.copilot_call_s)
    out["more_than_one_attempt"] = retried
    return out


def _db_figures(conn: Conn, since: datetime, rec: Recorder) -> dict[str, Any]:
    inbox = conn.execute(
        "SELECT status, count(*) FROM crm.webhook_inbox WHERE org_id = %s AND received_at >= %s GROUP BY status",
        (BIG_ORG, since),
    ).fetchall()
    wb = conn.execute(
        "SELECT status, count(*) FROM crm.writeback_queue WHERE org_id = %s GROUP BY status", (BIG_ORG,)
    ).fetchall()
    dead = conn.execute(
        "SELECT last_error FROM crm.writeback_queue WHERE org_id = %s AND status = 'dead_letter' LIMIT 3",
        (BIG_ORG,),
    ).fetchall()
    bursts = []
    for i, (at, n, queued) in enumerate(rec.bursts):
        until = rec.bursts[i + 1][0] if i + 1 < len(rec.bursts) else datetime.now(UTC)
        row = conn.execute(
            "SELECT max(completed_at) FROM crm.writeback_queue WHERE org_id = %s AND priority = 7 "
            "AND created_at >= %s AND created_at < %s",
            (BIG_ORG, at, until),
        ).fetchone()
        done = row[0] if row else None
        bursts.append({
            "jobs": n,
            "queued_in_s": round((queued - at).total_seconds(), 1),
            "all_landed_after_s": round((done - at).total_seconds(), 1) if done else None,
        })  # fmt: skip
    return {
        "copilot_lag_by_window": _copilot_breakdown(conn, rec),
        "webhook_apply_lag": {
            "received_to_applied": _lat(
                conn,
                "SELECT extract(epoch FROM completed_at - received_at) FROM crm.webhook_inbox "
                "WHERE org_id = %s AND received_at >= %s AND status = 'completed'",
                (BIG_ORG, since),
            ),
            "crm_change_to_applied": _lat(
                conn,
                "SELECT extract(epoch FROM completed_at) - (body::jsonb -> 0 ->> 'occurredAt')::numeric / 1000 "
                "FROM crm.webhook_inbox WHERE org_id = %s AND received_at >= %s AND status = 'completed'",
                (BIG_ORG, since),
            ),
            "inbox_status": {str(s): int(n) for s, n in inbox},
        },
        "writeback_queue": {
            "copilot_enqueued_to_landed": _lat(
                conn,
                "SELECT extract(epoch FROM completed_at - created_at) FROM crm.writeback_queue "
                "WHERE org_id = %s AND priority = 5 AND status = 'completed'",
                (BIG_ORG,),
            ),
            "bursts": bursts,
            "status": {str(s): int(n) for s, n in wb},
            "dead_letter_reasons": [str(r[0]) for r in dead],
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Params()
    for name, value in asdict(defaults).items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    add_load_args(ap)
    args = ap.parse_args(argv)
    load = LoadWatch.begin(args)
    p = Params(**{k: v for k, v in vars(args).items() if k != "allow_busy"})
    with bench_database("crmindex_bench_mixed") as dsn:
        figures = run(dsn, p, say=lambda s: print(s, flush=True))
    path = write_results("mixed_load", figures, load)
    print(json.dumps({k: v for k, v in figures.items() if k != "params"}, indent=2, default=str))
    print(f"written {path}")
    return figures


if __name__ == "__main__":
    main()
