"""bench/ingest: bulk upsert throughput and storage per contact at 500K contacts.

Loads 9 orgs of 50,000 contacts, then one org of 500,000 (with companies and deals), through
crm.upsert_contacts in the batch size the sync uses (1,000 rows = one round trip). Then loads the same
500,000 derived rows by COPY into an identical table (LIKE ... INCLUDING ALL: same columns, defaults,
constraints and indexes) holding the same other-org rows: the floor. Two floors, in the same run: COPY into
that table as it is (``copy_floor``, no triggers: LIKE copies none; the ratio committed before issue 18), and
COPY into a second identical table that also has crm.contact_index's own triggers and foreign key
(``copy_floor_same_triggers``: the derive trigger that computes seniority and department, the other triggers and
the org check run for COPY as for the upsert, "the same table"). Reports rows/s, both ratios, and bytes per contact (heap + TOAST + every index): as the upserts
left the table (``storage_as_loaded``) and after the storage step that ends the product's initial sync
(``storage``: crmindex.index.maintain.after_initial_sync rebuilds the contact indexes concurrently).

    python -m bench.ingest [--contacts 500000] [--others 9] [--other-contacts 50000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import psycopg

from bench.common import BIG_ORG, LoadWatch, Timer, add_load_args, bench_database, org_uuid, write_results
from crmindex.index.maintain import after_initial_sync
from crmindex.index.writes import ensure_org, rows_json
from crmindex.testing.synthetic import SyntheticCRM


def _payloads(crm: SyntheticCRM, kind: str, batch: int) -> list[str]:
    return [rows_json(rows) for rows in crm.batches(kind, batch)]  # type: ignore[arg-type]


def _load(conn: psycopg.Connection[Any], org: Any, payloads: dict[str, list[str]]) -> dict[str, float]:
    times: dict[str, float] = {}
    for kind, fn in (
        ("companies", "upsert_companies"),
        ("contacts", "upsert_contacts"),
        ("deals", "upsert_deals"),
    ):
        t = Timer()
        for p in payloads[kind]:
            conn.execute(f"SELECT * FROM crm.{fn}(%s, 'hubspot', %s::jsonb)", (org, p))
        times[kind] = t.elapsed
    return times


def _storage(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    sizes = conn.execute(
        """
        SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'crm.contact_index'::regclass ORDER BY 2 DESC
        """
    ).fetchall()
    heap = conn.execute(
        "SELECT pg_relation_size('crm.contact_index'), pg_table_size('crm.contact_index'), "
        "pg_total_relation_size('crm.contact_index'), count(*) FROM crm.contact_index"
    ).fetchone()
    assert heap is not None
    heap_b, table_b, total_b, n = (int(v) for v in heap)
    # The per-org vocabulary of name words (typo tier 2) exists only for contact search: counted with the contacts.
    vocab_row = conn.execute("SELECT pg_total_relation_size('crm.contact_name_word')").fetchone()
    assert vocab_row is not None
    vocab_b = int(vocab_row[0])
    return {
        "contacts_in_table": n,
        "bytes_per_contact_total": round(total_b / n, 1),
        "bytes_per_contact_name_vocabulary": round(vocab_b / n, 1),
        "bytes_per_contact_with_vocabulary": round((total_b + vocab_b) / n, 1),
        "bytes_per_contact_heap": round(heap_b / n, 1),
        "bytes_per_contact_toast_fsm_vm": round((table_b - heap_b) / n, 1),
        "bytes_per_contact_by_index": {str(name): round(int(size) / n, 1) for name, size in sizes},
        "total_mb": round(total_b / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contacts", type=int, default=500_000)
    ap.add_argument("--others", type=int, default=9)
    ap.add_argument("--other-contacts", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000)
    add_load_args(ap)
    args = ap.parse_args(argv)
    load = LoadWatch.begin(args)

    with bench_database("crmindex_bench_ingest") as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        print(f"loading {args.others} orgs x {args.other_contacts:,} contacts ...", flush=True)
        for i in range(args.others):
            org = org_uuid(i + 1)
            ensure_org(conn, org)
            crm = SyntheticCRM(seed=1000 + i, contacts=args.other_contacts)
            _load(conn, org, {k: _payloads(crm, k, args.batch) for k in ("companies", "contacts", "deals")})
        conn.execute("VACUUM ANALYZE")

        print(f"generating the {args.contacts:,}-contact org ...", flush=True)
        big = SyntheticCRM(seed=42, contacts=args.contacts)
        payloads = {k: _payloads(big, k, args.batch) for k in ("companies", "contacts", "deals")}
        ensure_org(conn, BIG_ORG)
        print("upserting ...", flush=True)
        conn.execute("CHECKPOINT")  # each timed phase (the upsert, each COPY) starts with no dirty buffers
        times = _load(conn, BIG_ORG, payloads)
        upsert_rate = args.contacts / times["contacts"]

        # the floors: COPY of the same derived rows into an identical table beside the same other-org rows, as
        # LIKE makes it (no triggers) and with crm.contact_index's own triggers re-created on it
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        triggers = conn.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'crm.contact_index'::regclass "
            "AND NOT tgisinternal"
        ).fetchall()
        # LIKE copies no foreign key either: the upsert checks every row's org against crm.org (the key's internal
        # trigger), so the same-table floor checks it too
        foreign_keys = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'crm.contact_index'::regclass "
            "AND contype = 'f'"
        ).fetchall()
        for table, with_triggers in (("bench.contact_copy", False), ("bench.contact_copy_trg", True)):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} (LIKE crm.contact_index INCLUDING ALL)")
            conn.execute(
                f"INSERT INTO {table} OVERRIDING SYSTEM VALUE SELECT * FROM crm.contact_index WHERE org_id <> %s",
                (BIG_ORG,),
            )
            if with_triggers:
                for (definition,) in triggers:
                    conn.execute(str(definition).replace(" ON crm.contact_index ", f" ON {table} "))
                for (definition,) in foreign_keys:
                    conn.execute(f"ALTER TABLE {table} ADD {definition}")
            conn.execute(f"VACUUM ANALYZE {table}")
        buf = io.BytesIO()
        with conn.cursor().copy(
            "COPY (SELECT * FROM crm.contact_index WHERE org_id = %s) TO STDOUT", (BIG_ORG,)
        ) as cp:
            for chunk in cp:
                buf.write(chunk)
        data = buf.getvalue()
        copy_times: dict[str, float] = {}
        for table in ("bench.contact_copy", "bench.contact_copy_trg"):
            conn.execute("CHECKPOINT")
            t = Timer()
            with conn.transaction(), conn.cursor().copy(f"COPY {table} FROM STDIN") as cp:
                step = 8 << 20
                for i in range(0, len(data), step):
                    cp.write(data[i : i + step])
            copy_times[table] = t.elapsed
        copy_s = copy_times["bench.contact_copy"]
        copy_trg_s = copy_times["bench.contact_copy_trg"]
        copy_rate = args.contacts / copy_s

        conn.execute("VACUUM ANALYZE crm.contact_index")
        as_loaded = _storage(conn)
        # the step that ends the product's initial sync (crmindex.freshness.sync: the big org is > 25% of the table,
        # so it rebuilds crm.contact_index's indexes concurrently), run exactly as the sync runs it
        t = Timer()
        sync_step = after_initial_sync(conn, args.contacts)
        step_s = t.elapsed
        conn.execute("VACUUM ANALYZE crm.contact_index")
        figures = {
            "params": vars(args),
            "upsert": {
                "contacts_rows_per_s": round(upsert_rate),
                "contacts_seconds": round(times["contacts"], 2),
                "companies_seconds": round(times["companies"], 2),
                "deals_seconds": round(times["deals"], 2),
            },
            "copy_floor": {"rows_per_s": round(copy_rate), "seconds": round(copy_s, 2)},
            "copy_floor_same_triggers": {
                "rows_per_s": round(args.contacts / copy_trg_s),
                "seconds": round(copy_trg_s, 2),
                "triggers": [str(d) for (d,) in triggers],
                "foreign_keys": [str(d) for (d,) in foreign_keys],
            },
            "ratio_upsert_time_to_copy_time": round(times["contacts"] / copy_s, 3),
            "ratio_upsert_time_to_copy_time_same_triggers": round(times["contacts"] / copy_trg_s, 3),
            # as the upserts left it, then after the initial sync's storage step (what the product keeps)
            "storage_as_loaded": as_loaded,
            "initial_sync_storage_step": {
                "indexes_rebuilt": len(sync_step.rebuilt),
                "skipped": sync_step.skipped,
                "seconds": round(step_s, 2),
            },
            "storage": _storage(conn),
        }
    path = write_results("ingest", figures, load)
    print(json.dumps(figures, indent=2))
    print(f"written {path}")
    return figures


if __name__ == "__main__":
    main()
