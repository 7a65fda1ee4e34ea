"""Resolving contact references (index id, CRM id, email), one at a time and in one query for many."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from crmindex.errors import InvalidInputError, NotFoundError
from crmindex.index.refs import resolve_contact, resolve_contacts
from crmindex.index.writes import ContactRow, ensure_org, upsert_contacts
from tests.orgs import ORG

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
