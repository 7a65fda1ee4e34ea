"""Resolving contact references (index id, CRM id, email), one at a time and in one query for many."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.index.refs import resolve_contact, resolve_contacts
from crmindex.index.writes import ContactRow, ensure_org, upsert_contacts
from tests.orgs import ORG
from tests.plan_helpers import explain_nested, plan_nodes

Conn = psycopg.Connection[tuple[object, ...]]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_many_refs_resolve_in_order_with_the_single_ref_rules(db: Conn) -> None:
    ensure_org(db, ORG)
    upsert_contacts(
        db,
        ORG,
        "hubspot",
        [
            ContactRow(crm_record_id="501", email="old@x.io", crm_updated_at=T0),
            ContactRow(crm_record_id="502", email="dup@x.io", crm_updated_at=T0, deleted_at=T0),
            ContactRow(crm_record_id="503", email="dup@x.io", crm_updated_at=T0 - timedelta(days=1)),
        ],
    )
    upsert_contacts(db, ORG, "attio", [ContactRow(crm_record_id="p-9", email="a@y.io")])
    index_id = int(
        str(db.execute("SELECT id FROM crm.contact_index WHERE crm_record_id = '501'").fetchone()[0])
    )  # type: ignore[index]
    refs: list[str | int] = ["OLD@x.io", "dup@x.io", "503", f"#{index_id}", index_id, "nobody@x.io", "a@y.io"]
    found = resolve_contacts(db, ORG, refs, source="hubspot")
    assert [f.crm_record_id if f else None for f in found] == ["501", "503", "503", "501", "501", None, None]
    # the single-ref call follows the same rules and names what is missing
    assert resolve_contact(db, ORG, "dup@x.io").crm_record_id == "503"  # a live record before a deleted one
    assert resolve_contact(db, ORG, "a@y.io").crm_source == "attio"
    with pytest.raises(NotFoundError, match=r"nobody@x\.io"):
        resolve_contact(db, ORG, "nobody@x.io")
    with pytest.raises(InvalidInputError, match="not an index id"):
        resolve_contacts(db, ORG, ["503", "#abc"])


def test_many_refs_read_the_contacts_once(db: Conn) -> None:
    """1,000 references read crm.contact_index once, not once per reference (bench.materialize's bulk case took 80 s
    when the matching contacts' CTE was inlined into the per-reference LATERAL: with that text this test sees a Seq
    Scan of 1,000 loops). The nested statement's own plan, from auto_explain sent to this client: every node reading
    crm.contact_index runs one loop; and every reference resolves to its own contact."""
    ensure_org(db, ORG)
    rows = [
        ContactRow(crm_record_id=str(9000 + i), email=f"p{i}@x.io", crm_updated_at=T0) for i in range(1200)
    ]
    upsert_contacts(db, ORG, "hubspot", rows)
    db.execute("ANALYZE crm.contact_index")
    refs = [f"p{i}@x.io" if i % 2 else str(9000 + i) for i in range(1000)]
    plans = explain_nested(db, analyze=True)
    found = resolve_contacts(db, ORG, refs, source="hubspot")
    db.execute("SET auto_explain.log_min_duration = -1")
    assert [f.crm_record_id if f else None for f in found] == [str(9000 + i) for i in range(1000)]
    readers = [n for p in plans for n in plan_nodes(p["Plan"]) if n.get("Relation Name") == "contact_index"]
    assert readers, plans
    assert all(n["Actual Loops"] == 1 for n in readers), [
        (n["Node Type"], n["Actual Loops"]) for n in readers
    ]


def test_a_crm_id_is_read_at_its_key_whatever_the_crm(db: Conn) -> None:
    """A reference by CRM record id with no CRM named (crm.update_contact's, every copilot write-back) is read from
    the unique key at (crm, record id) for each CRM, not along the org's whole key range testing record ids (130 ms a
    call at 200K contacts under bench.mixed_load; an index scan with the record ids as a non-leading key reports no
    removed rows, only the pages it read): no index node reads more than a few pages at 20K contacts, also once the
    plan is generic (plpgsql's after five calls). The answer is the rules' (any CRM)."""
    ensure_org(db, ORG)
    for start in range(0, 20000, 5000):
        rows = [
            ContactRow(crm_record_id=str(7000 + i), email=f"q{i}@x.io", crm_updated_at=T0)
            for i in range(start, start + 5000)
        ]
        upsert_contacts(db, ORG, "hubspot", rows)
    upsert_contacts(db, ORG, "attio", [ContactRow(crm_record_id="p-1", email="a@y.io", crm_updated_at=T0)])
    db.execute("VACUUM ANALYZE crm.contact_index")
    plans = explain_nested(db, analyze=True)
    for i in range(8):
        assert resolve_contact(db, ORG, str(7000 + i)).crm_record_id == str(7000 + i)
    assert resolve_contact(db, ORG, "p-1").crm_source == "attio"
    db.execute("SET auto_explain.log_min_duration = -1")
    assert len(plans) >= 9
    for plan in plans:
        readers = [
            n
            for n in plan_nodes(plan["Plan"])
            if n.get("Relation Name") == "contact_index" or "Index Name" in n
        ]
        assert readers and all(n["Node Type"] != "Seq Scan" for n in readers), readers
        pages = {
            str(n.get("Index Name") or n["Node Type"]): int(n["Shared Hit Blocks"])
            + int(n["Shared Read Blocks"])
            for n in readers
        }
        assert max(pages.values()) <= 12, pages
