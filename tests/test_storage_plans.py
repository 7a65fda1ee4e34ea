"""Plans and results of the contact indexes migration 0021 narrowed for storage (issue 18 item 4).

The exact-email index is a hash index on the email alone (no org uuid in it): the exact-email search must still be
an index lookup, never a sequential scan, and still return only the caller's org's contacts when another org has
the same address. The owner and last-activity indexes hold only the contacts that have a value, and the
creation-time index holds no org: their filters (and those of the country and last-contacted indexes beside them)
must still use them, and "never contacted" must still find every contact without a last-contacted time.

Data: two orgs (60,000 and 6,000 contacts) by bulk SQL, then VACUUM ANALYZE. No timing assertions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import PgServer

ORG = uuid.UUID("00000000-0000-4000-8000-0000000000d1")
OTHER = uuid.UUID("00000000-0000-4000-8000-0000000000d2")
SHARED_EMAIL = "shared.person@example.com"

LOAD = """
INSERT INTO crm.org (org_id) VALUES (%(org)s) ON CONFLICT DO NOTHING;
INSERT INTO crm.crm_owner (org_id, crm_source, owner_id, first_name, last_name, email)
SELECT %(org)s, 'hubspot', (100 + i)::text, 'Owner' || i, 'Last' || i, 'owner' || i || '@ourco.com'
FROM generate_series(0, 49) AS i;
INSERT INTO crm.contact_index (org_id, crm_source, crm_record_id, first_name, last_name, email, company_name,
                               job_title, crm_updated_at, country, owner_crm_id, last_contacted_at,
                               last_activity_at, crm_created_at)
SELECT %(org)s, 'hubspot', 'c' || g, 'First' || (g %% 997), 'Last' || (g %% 991),
       CASE WHEN g %% 25 <> 0 THEN 'person' || g || '@' || %(domain)s END,
       'Company ' || (g %% 500), 'Engineer', now() - (g %% 5000) * interval '1 hour',
       CASE WHEN g %% 3 = 0 THEN (ARRAY['Germany', 'United Kingdom', 'France', 'US', 'DE', 'Iceland'])[1 + (hashint4(g * 5) & 1023) %% 6] END,
       CASE WHEN g %% 3 = 1 THEN (100 + g %% 50)::text END,
       CASE WHEN g %% 4 <> 0 THEN now() - (hashint4(g) & 1023) * interval '1 day' END,
       CASE WHEN g %% 5 = 0 THEN now() - (hashint4(g * 7) & 1023) * interval '1 day' END,
       now() - (hashint4(g * 3) & 4095) * interval '1 day'
FROM generate_series(0, %(contacts)s - 1) AS g;
INSERT INTO crm.contact_index (org_id, crm_source, crm_record_id, first_name, last_name, email, crm_updated_at)
VALUES (%(org)s, 'hubspot', 'shared', 'Shared', %(name)s, %(shared)s, now())
"""


def _load(conn: psycopg.Connection[Any]) -> None:
    for org, contacts, domain, name in (
        (ORG, 60_000, "big.example", "Big"),
        (OTHER, 6_000, "small.example", "Small"),
    ):
        for statement in filter(str.strip, LOAD.split(";\n")):
            conn.execute(
                statement,
                {"org": org, "contacts": contacts, "domain": domain, "name": name, "shared": SHARED_EMAIL},
            )
    conn.execute("VACUUM ANALYZE crm.contact_index")
    conn.execute("VACUUM ANALYZE crm.crm_owner")


@pytest.fixture(scope="module")
def loaded(pg_server: PgServer, template_db: str) -> Iterator[psycopg.Connection[Any]]:
    name = f"storage_{uuid.uuid4().hex[:12]}"
    with pg_server.admin() as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_db}")
    try:
        with psycopg.connect(pg_server.dsn(name), autocommit=True) as conn:
            _load(conn)
            yield conn
    finally:
        with pg_server.admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _scans(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> set[tuple[str, str]]:
    """(relation, index name or node type) of every scan of the plan of sql."""
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    doc = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    out: set[tuple[str, str]] = set()
    todo = [doc[0]["Plan"]]
    while todo:
        node = todo.pop()
        todo.extend(node.get("Plans", []))
        if "Relation Name" in node or "Index Name" in node:
            out.add((node.get("Relation Name", "?"), node.get("Index Name") or node["Node Type"]))
    return out


def _plan_scans(conn: psycopg.Connection[Any], query: str, filters: dict[str, Any]) -> set[tuple[str, str]]:
    row = conn.execute(
        "SELECT crm.search_contact_plan(%s, %s, %s::jsonb, 50)", (ORG, query, json.dumps(filters))
    ).fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0]
    scans: set[tuple[str, str]] = set()
    if plan["mode"] == "filter":
        for key in ("sample_sql", "collect_sql", "sql"):
            scans |= _scans(conn, plan[key])
    else:
        for src in plan["sources"]:
            scans |= _scans(conn, src["sql"])
    return scans


def _email(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "SELECT email FROM crm.contact_index WHERE org_id = %s AND crm_record_id = 'c1234'", (ORG,)
    ).fetchone()
    assert row is not None and row[0]
    return str(row[0])


def test_email_index_is_a_hash_index_on_the_email(loaded: psycopg.Connection[Any]) -> None:
    row = loaded.execute(
        "SELECT am.amname, pg_get_indexdef(c.oid) FROM pg_class AS c JOIN pg_am AS am ON am.oid = c.relam "
        "WHERE c.oid = 'crm.contact_index_email_idx'::regclass"
    ).fetchone()
    assert row is not None
    assert row[0] == "hash", row
    assert "(email)" in row[1], row


def test_exact_email_search_is_an_index_lookup(loaded: psycopg.Connection[Any]) -> None:
    email = _email(loaded)
    scans = _plan_scans(loaded, email, {})
    assert "contact_index_email_idx" in {index for _, index in scans}, scans
    assert ("contact_index", "Seq Scan") not in scans, scans
    # the bare lookup the benchmark compares with
    bare = _scans(loaded, "SELECT * FROM crm.contact_index WHERE org_id = %s AND email = %s", (ORG, email))
    assert "contact_index_email_idx" in {index for _, index in bare}, bare
    rows = loaded.execute(
        "SELECT crm_record_id, email FROM crm.search_contacts(%s, %s, '{}'::jsonb, 50)", (ORG, email)
    ).fetchall()
    assert rows and rows[0] == ("c1234", email), rows


def test_exact_email_search_stays_in_its_org(loaded: psycopg.Connection[Any]) -> None:
    """The hash index holds no org: the same address in two orgs is found once per org, each its own."""
    for org, last in ((ORG, "Big"), (OTHER, "Small")):
        rows = loaded.execute(
            "SELECT last_name, email FROM crm.search_contacts(%s, %s, '{}'::jsonb, 50)", (org, SHARED_EMAIL)
        ).fetchall()
        assert rows == [(last, SHARED_EMAIL)], (org, rows)
    # the resolver's exact-email lookup too
    rows = loaded.execute(
        "SELECT last_name FROM crm.contact_index WHERE org_id = %s AND email = ANY(%s)",
        (OTHER, [SHARED_EMAIL]),
    ).fetchall()
    assert rows == [("Small",)]


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"owner": "owner7"}, "contact_index_owner_idx"),
        ({"location": "Iceland"}, "contact_index_country_idx"),
        ({"last_contacted_before": "@days-1010"}, "contact_index_last_contacted_idx"),
        ({"last_activity_after": "@days-2"}, "contact_index_last_activity_idx"),
        ({"created_after": "@days-2"}, "contact_index_created_idx"),
    ],
    ids=["owner", "country", "last contacted", "last activity", "created"],
)
def test_narrowed_filter_indexes_are_used(
    loaded: psycopg.Connection[Any], filters: dict[str, Any], index: str
) -> None:
    resolved = dict(filters)
    for key, value in filters.items():
        if isinstance(value, str) and value.startswith("@days-"):
            row = loaded.execute("SELECT now() - %s * interval '1 day'", (int(value[6:]),)).fetchone()
            assert row is not None
            resolved[key] = row[0].isoformat()
    scans = _plan_scans(loaded, "", resolved)
    assert index in {name for _, name in scans}, scans
    assert ("contact_index", "Seq Scan") not in scans, scans
    rows = loaded.execute(
        "SELECT crm_record_id FROM crm.search_contacts(%s, '', %s::jsonb, 1000)", (ORG, json.dumps(resolved))
    ).fetchall()
    assert rows, filters


def test_never_contacted_finds_every_contact_without_a_time(
    loaded: psycopg.Connection[Any],
) -> None:
    want = {
        str(r[0])
        for r in loaded.execute(
            "SELECT crm_record_id FROM crm.contact_index WHERE org_id = %s AND last_contacted_at IS NULL",
            (OTHER,),
        )
    }
    got: set[str] = set()
    after: str | None = None
    while True:
        f: dict[str, Any] = {"never_contacted": True} | ({"after": after} if after else {})
        rows = loaded.execute(
            "SELECT crm_record_id, cursor FROM crm.search_contacts(%s, '', %s::jsonb, 1000)",
            (OTHER, json.dumps(f)),
        ).fetchall()
        got |= {str(r[0]) for r in rows}
        if len(rows) < 1000:
            break
        after = rows[-1][1]
    assert len(want) > 1000
    assert got == want


TITLES = [
    "VP of Sales",
    "Co-Founder & CTO",
    "Founder & CEO",
    "Chief of Staff",
    "Principal",
    "Assistant",
    "Geschäftsführer",
    "Partner, Litigation",
    "Measurement Partner",
    "Head of Data",
    "n/a",
    "",
    "Senior Software Engineer",
    "C.E.O.",
    "Office of the CFO",
]


def test_derive_trigger_tokenizes_once_with_the_same_result(db: psycopg.Connection[Any]) -> None:
    """Issue 18 item 5: the contact derive trigger classifies a title from one tokenization (crm.title_tokens_*),
    with the result of crm.title_seniority / crm.title_department of the title, on insert and on a title change."""
    db.execute("INSERT INTO crm.org (org_id) VALUES (%s)", (ORG,))
    for n, title in enumerate([*TITLES, None]):
        db.execute(
            "INSERT INTO crm.contact_index (org_id, crm_source, crm_record_id, job_title) VALUES (%s, 'hubspot', %s, %s)",
            (ORG, f"t{n}", title),
        )
    db.execute(
        "UPDATE crm.contact_index SET job_title = 'Director of Engineering' WHERE org_id = %s AND crm_record_id = 't0'",
        (ORG,),
    )
    rows = db.execute(
        "SELECT crm_record_id, job_title, seniority, department, crm.title_seniority(job_title),"
        " crm.title_department(job_title) FROM crm.contact_index WHERE org_id = %s",
        (ORG,),
    ).fetchall()
    assert len(rows) == len(TITLES) + 1
    for rid, title, seniority, department, want_seniority, want_department in rows:
        assert (seniority, department) == (want_seniority, want_department), (rid, title)
    assert {r[0]: r[2:4] for r in rows}["t0"] == ("director", "engineering")


# ---------------------------------------------------------------------------------------------------------------
# The storage step that ends an initial sync (crmindex.index.maintain): rebuilding crm.contact_index's indexes.

# An org whose uuid sorts first, loaded after another org: its ascending ids and record ids land in the middle of the
# primary key and the unique key (the bench's big org; PostgreSQL then splits those pages 50/50).
EARLY = uuid.UUID("00000000-0000-4000-8000-000000000001")
LATE = uuid.UUID("ffffffff-0000-4000-8000-000000000001")

MID_TREE_LOAD = """
INSERT INTO crm.org (org_id) VALUES (%(org)s) ON CONFLICT DO NOTHING;
INSERT INTO crm.contact_index (org_id, crm_source, crm_record_id, first_name, last_name, email, job_title,
                               crm_updated_at)
SELECT %(org)s, 'hubspot', (1000000 + g)::text, 'First' || (g %% 997), 'Last' || (g %% 991),
       'person' || g || '@' || %(domain)s, 'VP of Sales', now()
FROM generate_series(1, %(contacts)s) AS g
"""


def _mid_tree(conn: psycopg.Connection[Any], contacts: int = 20_000) -> None:
    for org, domain in ((LATE, "late.example"), (EARLY, "early.example")):
        for statement in filter(str.strip, MID_TREE_LOAD.split(";\n")):
            conn.execute(statement, {"org": org, "domain": domain, "contacts": contacts})
    conn.execute("VACUUM ANALYZE crm.contact_index")


def _index_defs(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, bool]]:
    rows = conn.execute(
        "SELECT c.relname, pg_get_indexdef(c.oid), i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = 'crm.contact_index'::regclass"
    ).fetchall()
    return {str(r[0]): (str(r[1]), bool(r[2])) for r in rows}


def test_reindex_packs_the_mid_tree_btrees_and_keeps_every_index(db: psycopg.Connection[Any]) -> None:
    from crmindex.index.maintain import reindex_contact_index

    _mid_tree(db)
    defs = _index_defs(db)
    seen: list[tuple[int, int, str]] = []
    rebuilt = reindex_contact_index(db, on_index=lambda done, total, r: seen.append((done, total, r.index)))
    assert {r.index for r in rebuilt} == set(defs)
    assert [s[:2] for s in seen] == [(i, len(defs)) for i in range(1, len(defs) + 1)]
    assert _index_defs(db) == defs  # same names, definitions, all valid
    by_name = {r.index: r for r in rebuilt}
    for name in ("contact_index_pkey", "contact_index_org_id_crm_source_crm_record_id_key"):
        r = by_name[name]
        assert r.bytes_after < 0.8 * r.bytes_before, r  # 50/50 splits in the middle -> packed leaves
    assert sum(r.bytes_after for r in rebuilt) < sum(r.bytes_before for r in rebuilt)
    # still used: the upserts' conflict target and a search by id
    row = db.execute(
        "SELECT count(*) FROM crm.contact_index WHERE org_id = %s AND crm_source = 'hubspot' AND crm_record_id = '1000007'",
        (EARLY,),
    ).fetchone()
    assert row is not None and row[0] == 1
    assert ("contact_index", "contact_index_org_id_crm_source_crm_record_id_key") in _scans(
        db,
        "SELECT id FROM crm.contact_index WHERE org_id = %s AND crm_source = 'hubspot' AND crm_record_id = '1000007'",
        (EARLY,),
    )


def test_reindex_drops_what_an_interrupted_run_left_and_needs_autocommit(db_dsn: str) -> None:
    from crmindex.errors import CrmIndexError
    from crmindex.index.maintain import reindex_contact_index

    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _mid_tree(conn, 200)
        # an interrupted REINDEX CONCURRENTLY leaves an invalid <name>_ccnew copy; a failed unique build does too
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY contact_index_pkey_ccnew ON crm.contact_index (org_id)"
            )
        assert _index_defs(conn)["contact_index_pkey_ccnew"][1] is False
        rebuilt = reindex_contact_index(conn)
        defs = _index_defs(conn)
        assert "contact_index_pkey_ccnew" not in defs
        assert "contact_index_pkey_ccnew" not in {r.index for r in rebuilt}
        assert all(valid for _, valid in defs.values())
    with psycopg.connect(db_dsn) as conn, pytest.raises(CrmIndexError, match="autocommit"):
        reindex_contact_index(conn)


def test_after_initial_sync_rebuilds_only_for_a_large_share_and_as_the_owner(
    db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmindex.index import maintain

    _mid_tree(db, 2_000)
    small = maintain.after_initial_sync(db, 2_000)  # below REINDEX_MIN_CONTACTS
    assert small.rebuilt == [] and small.skipped is not None and "threshold" in small.skipped
    monkeypatch.setattr(maintain, "REINDEX_MIN_CONTACTS", 1_000)
    share = maintain.after_initial_sync(db, 500)  # 500 of 4,000 rows: below the share
    assert share.rebuilt == [] and share.skipped is not None
    db.execute("SET ROLE crm_worker")  # the worker does not own the table: it says how, does nothing
    try:
        not_owner = maintain.after_initial_sync(db, 2_000)
    finally:
        db.execute("RESET ROLE")
    assert (
        not_owner.rebuilt == []
        and not_owner.skipped is not None
        and "maintain --reindex" in not_owner.skipped
    )
    done = maintain.after_initial_sync(db, 2_000)
    assert done.skipped is None and {r.index for r in done.rebuilt} == set(_index_defs(db))


def test_cli_maintain_reindex(db_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    from crmindex.cli import main

    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _mid_tree(conn, 500)
        names = set(_index_defs(conn))
    assert main(["maintain", "--dsn", db_dsn]) == 2  # nothing asked
    assert main(["maintain", "--reindex", "--dsn", db_dsn]) == 0
    out = capsys.readouterr().out
    assert f"rebuilding {len(names)} indexes of crm.contact_index concurrently" in out
    assert all(f" {name}: " in out for name in names)
    assert f"{len(names)}/{len(names)}" in out and "crm.contact_index indexes:" in out
