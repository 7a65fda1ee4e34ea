"""bench/search: latency of every copilot search pattern at 500K contacts, beside the brief's way.

Data: one org of 500,000 contacts (50,000 companies, 10,000 deals) beside 9 orgs of 50,000, loaded through
the upserts as bench/ingest does. For each pattern, >= 200 queries drawn from the generated data run once
to warm up, then single-client and with 4 concurrent clients (p50/p95). The same patterns written the
brief's way (ILIKE / btree / an English FTS expression index, in a side table bench.brief_contact with the
brief's indexes, dropped afterwards) run single-client beside them. Result quality for "VPs at fintech":
precision/recall against the generator's ground truth, ours vs the brief's ILIKE query. Also: bytes per
contact of crm.contact_index by index, as loaded (``storage_as_loaded``) and after the storage step that ends the
product's initial sync (``storage``: crmindex.index.maintain.after_initial_sync; the searches run after it).

    python -m bench.search [--contacts 500000] [--others 9] [--other-contacts 50000] [--queries 200]

Targets: every pattern p95 <= 10 ms single-client; email/domain <= 2 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench.common import (
    BIG_ORG,
    LoadWatch,
    Timer,
    add_load_args,
    bench_database,
    org_uuid,
    summary_ms,
    write_results,
)
from bench.ingest import _load, _payloads
from crmindex.index.maintain import after_initial_sync
from crmindex.index.writes import ensure_org
from crmindex.testing.synthetic import SyntheticCRM

Query = tuple[str, tuple[Any, ...]]  # SQL, parameters

CONTACTS_SQL = "SELECT * FROM crm.search_contacts(%s, %s, %s::jsonb, 50)"
SEARCH_SQL = "SELECT crm.search(%s, %s, 50)"
SENIORITY_WORDS = {
    "vp": "VPs",
    "director": "directors",
    "head": "heads",
    "manager": "managers",
    "c_suite": "CxOs",
}
GROUP_WORDS = ["fintech", "banks", "healthcare", "saas", "insurance", "software", "retail", "manufacturing"]
TITLE_WORD = {"vp": "vp", "director": "director", "head": "head", "manager": "manager", "c_suite": "chief"}


def _typo(word: str, rng: random.Random) -> str:
    """Swap two adjacent inner letters ("John" -> "Jhon" / "Jonh")."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _first_word(name: str) -> str:
    return name.split()[0] if name.split() else name


def build_queries(crm: SyntheticCRM, n: int, seed: int = 7) -> dict[str, dict[str, list[Query]]]:
    """{pattern: {"ours": [...], "brief": [...]}} drawn from the generated data."""
    rng = random.Random(seed)
    org = str(BIG_ORG)
    pats: dict[str, dict[str, list[Query]]] = {}

    def add(name: str, ours: Query, brief: Query) -> None:
        pats.setdefault(name, {"ours": [], "brief": []})
        pats[name]["ours"].append(ours)
        pats[name]["brief"].append(brief)

    def contacts(pred: Callable[[Any], bool]) -> list[Any]:
        out: list[Any] = []
        while len(out) < n:
            c = crm.contact(rng.randrange(crm.n_contacts))
            if pred(c):
                out.append(c)
        return out

    b = "SELECT * FROM bench.brief_contact WHERE org_id = %s AND "
    for c in contacts(lambda c: bool(c.email)):
        add("email exact", (CONTACTS_SQL, (org, c.email, "{}")), (b + "email = %s LIMIT 50", (org, c.email)))
    for c in contacts(lambda c: bool(c.email)):
        dom = c.email.split("@", 1)[1]
        add(
            "email domain",
            (CONTACTS_SQL, (org, dom, "{}")),
            (b + "email ILIKE %s LIMIT 50", (org, "%@" + dom)),
        )
    for c in contacts(lambda c: bool(c.first_name and c.last_name)):
        add(
            "name",
            (CONTACTS_SQL, (org, f"{c.first_name} {c.last_name}", "{}")),
            (b + "first_name = %s AND last_name = %s LIMIT 50", (org, c.first_name, c.last_name)),
        )
    for c in contacts(lambda c: bool(c.first_name and c.last_name) and len(c.last_name) >= 4):
        q = f"{_typo(c.first_name, rng)} {_typo(c.last_name, rng)}"
        add(
            "name with typos",
            (CONTACTS_SQL, (org, q, "{}")),
            (
                b + "to_tsvector('english', " + BRIEF_DOC + ") @@ plainto_tsquery('english', %s) LIMIT 50",
                (org, q),
            ),
        )
    for c in contacts(
        lambda c: bool(c.company_name) and c.seniority in TITLE_WORD and c.department not in (None, "other")
    ):
        filters = {"company": c.company_name, "seniority": c.seniority, "department": c.department}
        add(
            "company + title",
            (CONTACTS_SQL, (org, "", json.dumps(filters))),
            (
                b + "company_name ILIKE %s AND job_title ILIKE %s LIMIT 50",
                (org, f"%{c.company_name}%", f"%{TITLE_WORD[c.seniority]}%"),
            ),
        )
    for c in contacts(lambda c: bool(c.first_name and c.company_name)):
        q = f"{c.first_name} {_first_word(c.company_name)}"
        add(
            "free text",
            (CONTACTS_SQL, (org, q, "{}")),
            (
                b + "to_tsvector('english', " + BRIEF_DOC + ") @@ plainto_tsquery('english', %s) LIMIT 50",
                (org, q),
            ),
        )
    stages = ["customer", "lead", "opportunity", "subscriber", "mql", "sql", "evangelist"]
    statuses = [None, "OPEN", "CONNECTED", "NEW", "IN_PROGRESS"]
    for i in range(n):
        stage, status = stages[i % len(stages)], statuses[(i // len(stages)) % len(statuses)]
        f: dict[str, Any] = {"lifecycle_stage": stage} | ({"lead_status": status} if status else {})
        brief_sql = b + "lifecycle_stage = %s" + (" AND lead_status = %s" if status else "") + " LIMIT 50"
        add(
            "lifecycle filter",
            (CONTACTS_SQL, (org, "", json.dumps(f))),
            (brief_sql, (org, stage, status) if status else (org, stage)),
        )
    for _ in range(n):
        v = rng.choice([1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000])
        add(
            "deal filter",
            (CONTACTS_SQL, (org, "", json.dumps({"has_active_deal": True, "deal_value_min": v}))),
            (b + "has_active_deal AND deal_value >= %s LIMIT 50", (org, v)),
        )
    for i in range(n):
        sen = list(SENIORITY_WORDS)[i % len(SENIORITY_WORDS)]
        grp = GROUP_WORDS[(i // len(SENIORITY_WORDS)) % len(GROUP_WORDS)]
        phrase = f"{SENIORITY_WORDS[sen]} at {grp} companies"
        add(
            "VPs at fintech (phrase)",
            (SEARCH_SQL, (org, phrase)),
            (
                b + "job_title ILIKE %s AND (company_name ILIKE %s OR industry = %s) LIMIT 50",
                (org, f"%{TITLE_WORD[sen]}%", f"%{grp}%", grp),
            ),
        )
    for c in contacts(lambda c: bool(c.first_name and c.company_name)):
        phrase = f"{c.first_name} from {_first_word(c.company_name)}"
        add(
            "Stan from Acme (phrase)",
            (SEARCH_SQL, (org, phrase)),
            (
                b + "first_name ILIKE %s AND company_name ILIKE %s LIMIT 50",
                (org, f"{c.first_name}%", f"%{_first_word(c.company_name)}%"),
            ),
        )
    return pats


BRIEF_DOC = (
    "coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '') || ' ' || "
    "coalesce(company_name, '') || ' ' || coalesce(job_title, '')"
)
BRIEF_SETUP = [
    "CREATE SCHEMA IF NOT EXISTS bench",
    "DROP TABLE IF EXISTS bench.brief_contact",
    """CREATE TABLE bench.brief_contact AS
       SELECT c.org_id, c.id, c.first_name, c.last_name, c.email, c.company_name, c.job_title, c.lifecycle_stage,
              c.lead_status, c.has_active_deal, c.deal_stage, c.deal_value, co.industry
       FROM crm.contact_index AS c LEFT JOIN crm.company_index AS co
         ON co.org_id = c.org_id AND co.crm_source = c.crm_source AND co.crm_record_id = c.company_crm_id""",
    "CREATE INDEX ON bench.brief_contact (org_id)",
    "CREATE INDEX ON bench.brief_contact (org_id, email)",
    "CREATE INDEX ON bench.brief_contact (org_id, first_name, last_name)",
    "CREATE INDEX ON bench.brief_contact (org_id, company_name)",
    "CREATE INDEX ON bench.brief_contact (org_id, job_title)",
    "CREATE INDEX ON bench.brief_contact (org_id, lifecycle_stage)",
    "CREATE INDEX ON bench.brief_contact (org_id, has_active_deal, deal_stage)",
    f"CREATE INDEX ON bench.brief_contact USING gin (to_tsvector('english', {BRIEF_DOC}))",
    "VACUUM ANALYZE bench.brief_contact",
]


def _run(dsn: str, queries: list[Query], org: str) -> list[float]:
    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT set_config('crm.org_id', %s, false)", (org,))
        for sql, params in queries:
            t = time.perf_counter()
            conn.execute(sql, params).fetchall()
            out.append(time.perf_counter() - t)
    return out


def _concurrent(dsn: str, queries: list[Query], org: str, clients: int) -> list[float]:
    results: list[list[float]] = [[] for _ in range(clients)]

    def work(k: int) -> None:
        mine = queries[k:] + queries[:k]  # each client runs every query, in a different order
        random.Random(k).shuffle(mine)
        results[k] = _run(dsn, mine, org)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for r in results for x in r]


def quality(conn: psycopg.Connection[Any], crm: SyntheticCRM) -> dict[str, Any]:
    """Precision/recall of "VPs at fintech" against the generator's ground truth, ours vs the brief's."""
    fintech = {c.crm_record_id for c in crm.companies() if c.is_fintech}
    truth = {c.crm_record_id for c in crm.contacts() if c.seniority == "vp" and c.company_crm_id in fintech}
    org = str(BIG_ORG)
    ours: set[str] = set()
    after: str | None = None
    while True:
        f: dict[str, Any] = {"seniority": "vp", "industry_group": "fintech"} | (
            {"after": after} if after else {}
        )
        rows = conn.execute(
            "SELECT crm_record_id, cursor FROM crm.search_contacts(%s, '', %s::jsonb, 1000)",
            (org, json.dumps(f)),
        ).fetchall()
        ours |= {r[0] for r in rows}
        if len(rows) < 1000:
            break
        after = rows[-1][1]
    interp = conn.execute("SELECT crm.interpret_query(%s, 'VPs at fintech companies')", (org,)).fetchone()
    brief = {
        r[0]
        for r in conn.execute(
            "SELECT c.crm_record_id FROM bench.brief_contact AS b JOIN crm.contact_index AS c "
            "ON c.org_id = b.org_id AND c.id = b.id WHERE b.org_id = %s AND b.job_title ILIKE '%%VP%%' "
            "AND (b.company_name ILIKE '%%fintech%%' OR b.industry = 'fintech')",
            (org,),
        )
    }

    def pr(got: set[str]) -> dict[str, Any]:
        tp = len(got & truth)
        return {
            "returned": len(got),
            "true_positives": tp,
            "precision": round(tp / len(got), 4) if got else None,
            "recall": round(tp / len(truth), 4) if truth else None,
        }

    return {
        "ground_truth_contacts": len(truth),
        "ours": pr(ours),
        "brief_ilike": pr(brief),
        "interpretation": interp[0] if interp else None,
    }


def storage(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    n = int(conn.execute("SELECT count(*) FROM crm.contact_index").fetchone()[0])  # type: ignore[index]
    sizes = conn.execute(
        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'crm.contact_index'::regclass ORDER BY 2 DESC"
    ).fetchall()
    heap, total = conn.execute(
        "SELECT pg_table_size('crm.contact_index'), pg_total_relation_size('crm.contact_index')"
    ).fetchone()  # type: ignore[misc]
    companies = conn.execute(
        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'crm.company_index'::regclass ORDER BY 2 DESC"
    ).fetchall()
    # The per-org vocabulary of name words (typo tier 2) exists only for contact search: counted with the contacts.
    vocab = int(conn.execute("SELECT pg_total_relation_size('crm.contact_name_word')").fetchone()[0])  # type: ignore[index]
    return {
        "contacts_in_table": n,
        "bytes_per_contact_total": round(int(total) / n, 1),
        "bytes_per_contact_name_vocabulary": round(vocab / n, 1),
        "bytes_per_contact_with_vocabulary": round((int(total) + vocab) / n, 1),
        "bytes_per_contact_table": round(int(heap) / n, 1),
        "bytes_per_contact_by_index": {str(k): round(int(v) / n, 1) for k, v in sizes},
        "company_index_bytes_by_index": {str(k): int(v) for k, v in companies},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=500_000)
    ap.add_argument("--others", type=int, default=9)
    ap.add_argument("--other-contacts", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    add_load_args(ap)
    args = ap.parse_args(argv)
    load = LoadWatch.begin(args)
    with bench_database("crmindex_bench_search") as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        t = Timer()
        for i in range(args.others):
            org = org_uuid(i + 1)
            ensure_org(conn, org)
            crm_i = SyntheticCRM(seed=1000 + i, contacts=args.other_contacts)
            _load(conn, org, {k: _payloads(crm_i, k, 1000) for k in ("companies", "contacts", "deals")})
        print(f"loaded {args.others} orgs x {args.other_contacts:,} in {t.elapsed:.0f} s", flush=True)
        big = SyntheticCRM(seed=42, contacts=args.contacts)
        ensure_org(conn, BIG_ORG)
        t = Timer()
        _load(conn, BIG_ORG, {k: _payloads(big, k, 1000) for k in ("companies", "contacts", "deals")})
        print(f"loaded the {args.contacts:,}-contact org in {t.elapsed:.0f} s", flush=True)
        conn.execute("VACUUM ANALYZE")
        store_as_loaded = storage(conn)
        # the storage step that ends the product's initial sync (crmindex.freshness.sync), run as the sync runs it:
        # the searches below run on the indexes as the product keeps them
        t = Timer()
        sync_step = after_initial_sync(conn, args.contacts)
        step_figures = {
            "indexes_rebuilt": len(sync_step.rebuilt),
            "skipped": sync_step.skipped,
            "seconds": round(t.elapsed, 2),
        }
        conn.execute("VACUUM ANALYZE crm.contact_index")
        store = storage(conn)
        for stmt in BRIEF_SETUP:
            conn.execute(stmt)

        pats = build_queries(big, args.queries)
        big_org = str(BIG_ORG)
        table: dict[str, Any] = {}
        for name, qs in pats.items():
            _run(dsn, qs["ours"], big_org)  # warm up
            _run(dsn, qs["brief"], big_org)
            row: dict[str, Any] = {
                "ours_1_client": summary_ms(_run(dsn, qs["ours"], big_org)),
                f"ours_{args.clients}_clients": summary_ms(
                    _concurrent(dsn, qs["ours"], big_org, args.clients)
                ),
                "brief_1_client": summary_ms(_run(dsn, qs["brief"], big_org)),
                "example": qs["ours"][0][1][1:],
            }
            table[name] = row
            print(
                f"{name:26} ours p50 {row['ours_1_client']['p50_ms']:7.2f} p95 {row['ours_1_client']['p95_ms']:7.2f}"
                f" | {args.clients} clients p50 {row[f'ours_{args.clients}_clients']['p50_ms']:7.2f}"
                f" p95 {row[f'ours_{args.clients}_clients']['p95_ms']:7.2f}"
                f" | brief p50 {row['brief_1_client']['p50_ms']:7.2f} p95 {row['brief_1_client']['p95_ms']:7.2f}",
                flush=True,
            )
        qual = quality(conn, big)
        conn.execute("DROP TABLE bench.brief_contact")
        figures = {
            "params": vars(args),
            "targets_ms": {"p95_every_pattern": 10, "p95_email_domain": 2},
            "patterns": table,
            "vps_at_fintech_quality": qual,
            "storage_as_loaded": store_as_loaded,
            "initial_sync_storage_step": step_figures,
            "storage": store,
        }
    path = write_results("search", figures, load)
    print(json.dumps({"vps_at_fintech_quality": qual, "storage": store}, indent=2, default=str))
    print(f"written {path}")
    return figures


if __name__ == "__main__":
    main()
