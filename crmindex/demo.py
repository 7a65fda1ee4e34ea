"""``crmindex demo``: the flow end to end on the embedded default (a throwaway local PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import psycopg
from tqdm import tqdm

from crmindex.db import Conn, connect
from crmindex.index import ensure_org, upsert_companies, upsert_contacts, upsert_deals
from crmindex.migrate import migrate
from crmindex.pgcluster import LocalCluster
from crmindex.synthetic import SyntheticCRM

DEMO_ORG = uuid.UUID("00000000-0000-4000-8000-00000000d3e0")
BATCH = 1000


@contextmanager
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


def _load(conn: Conn, crm: SyntheticCRM) -> None:
    ensure_org(conn, DEMO_ORG, "Demo Org")
    steps: tuple[tuple[Literal["companies", "contacts", "deals"], int, Any], ...] = (
        ("companies", crm.n_companies, upsert_companies),
        ("contacts", crm.n_contacts, upsert_contacts),
        ("deals", crm.n_deals, upsert_deals),
    )
    for kind, total, fn in steps:
        with tqdm(total=total, desc=f"indexing {kind}", unit=" rows", unit_scale=True) as bar:
            for rows in crm.batches(kind, BATCH):
                fn(conn, DEMO_ORG, "hubspot", rows)
                bar.update(len(rows))


def _show(conn: Conn, title: str, sql: str, params: tuple[object, ...]) -> None:
    started = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    ms = (time.perf_counter() - started) * 1000
    print(f"\n{title}  ({len(rows)} shown, {ms:.1f} ms)")
    for row in rows:
        print("  " + " | ".join("" if v is None else str(v) for v in row))


def run_demo(contacts: int = 50_000, dsn: str | None = None, seed: int = 7) -> int:
    started = time.perf_counter()
    with _database(dsn) as target, connect(target) as conn:
        for m in migrate(conn):
            print(f"  applied migration {m.version:04d}_{m.name}")
        crm = SyntheticCRM(seed=seed, contacts=contacts)
        _load(conn, crm)
        conn.execute("ANALYZE crm.contact_index; ANALYZE crm.company_index")
        _show(
            conn,
            "VPs at fintech companies",
            """
            SELECT c.first_name, c.last_name, c.job_title, co.name, co.industry
            FROM crm.company_index AS co
            JOIN crm.contact_index AS c
              ON c.org_id = co.org_id AND c.crm_source = co.crm_source AND c.company_crm_id = co.crm_record_id
            WHERE co.org_id = %s AND co.industry_groups @> ARRAY['fintech'] AND c.seniority = 'vp'
              AND c.deleted_at IS NULL
            LIMIT 10
            """,
            (DEMO_ORG,),
        )
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE has_active_deal) FROM crm.contact_index WHERE org_id = %s",
            (DEMO_ORG,),
        ).fetchone()
        assert row is not None
        print(f"\n{row[0]:,} contacts indexed, {row[1]:,} with an open deal")
    print(f"demo finished in {time.perf_counter() - started:.1f} s")
    return 0
