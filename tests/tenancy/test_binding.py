"""Session binding edge cases: an unbound crm_app session gets nothing from the SECURITY DEFINER functions, the
worker role and the owner still see every org, and a transaction-local binding ends with its transaction."""

from __future__ import annotations

import json

import psycopg
import pytest

from crmindex.platform.db import bind_org
from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B
from tests.tenancy.helpers import B_DOMAIN, B_EMAIL, COMPANY, ID_BASE_B, Conn, Mode, attempt


@pytest.mark.parametrize("mode", ["unbound", "empty"])
def test_an_unbound_app_session_gets_nothing_from_the_security_definer_helpers(su: Conn, mode: Mode) -> None:
    """Regression (fixed in 0012, section tenancy): the SECURITY DEFINER search helpers bypass row-level
    security, and an unbound crm_app session got B's contact ids and scores from them. Since issue 13 the
    helpers are not the application's at all (42501), and the API functions, SECURITY DEFINER themselves,
    refuse an unbound application session (CX003)."""
    for sql, params in (
        ("SELECT * FROM crm.search_contact_ids(%s, 'Stan', '{}', 50)", (B,)),
        ("SELECT * FROM crm.search_contact_ids(%s, '', %s::jsonb, 50)", (B, json.dumps({"email": B_EMAIL}))),
        ("SELECT * FROM crm.search_company_ids(%s, %s, '{}', 50)", (B, COMPANY[B])),
        ("SELECT crm.search_contact_plan(%s, 'Stan', '{}', 50)", (B,)),
        (
            "SELECT crm.search_company_plan(%s, 'Stan', %s::jsonb, 50)",
            (B, json.dumps({"company_domain": B_DOMAIN})),
        ),
    ):
        outcome, _ = attempt(su, mode, sql, params)
        assert isinstance(outcome, psycopg.errors.InsufficientPrivilege), f"{sql}: {outcome!r}"
    for sql, params in (
        ("SELECT * FROM crm.search_contacts(%s, 'Stan', '{}', 50)", (B,)),
        ("SELECT * FROM crm.search_companies(%s, 'Zenith', '{}', 50)", (B,)),
        ("SELECT crm.search(%s, 'Stan')", (B,)),
        ("SELECT * FROM crm.resolve_contact(%s, 'Stan')", (B,)),
        ("SELECT contacts_indexed, deals_indexed, inbox_pending, sync_state FROM crm.org_stats(%s)", (B,)),
        ("SELECT * FROM crm.update_contact(%s, '91', '{\"job_title\": \"x\"}')", (B,)),
        ("SELECT * FROM crm.request_materialization(%s, ARRAY['91'])", (B,)),
    ):
        outcome, _ = attempt(su, mode, sql, params)
        assert isinstance(outcome, psycopg.Error) and outcome.sqlstate == "CX003", f"{sql}: {outcome!r}"
    # the counter runs as the caller: row-level security shows an unbound session nothing of B
    outcome, _ = attempt(
        su, mode, "SELECT crm.writeback_count(%s, ARRAY['pending', 'processing', 'dead_letter'])", (B,)
    )
    assert outcome == [(0,)]


def test_the_worker_role_and_the_owner_still_search_any_org_unbound(su: Conn) -> None:
    """The fix keeps what sees every org anyway: crm_worker and the migrating superuser."""
    expected = su.execute(
        "SELECT count(*) FROM crm.contact_index WHERE org_id = %s AND first_name = 'Stan'", (B,)
    ).fetchone()
    with su.transaction(force_rollback=True):
        su.execute("SET ROLE crm_worker")
        rows = su.execute("SELECT c.id FROM crm.search_contacts(%s, 'Stan', '{}', 50) AS c", (B,)).fetchall()
        assert len(rows) == expected[0] if expected else 0
        assert {int(r[0]) for r in rows} <= set(range(ID_BASE_B, ID_BASE_B + 100))
        plan = su.execute("SELECT crm.search_contact_plan(%s, 'Stan', '{}', 50)", (B,)).fetchone()
        assert plan is not None and plan[0]["mode"] == "text"
    assert (
        su.execute("SELECT count(*) FROM crm.search_contact_ids(%s, 'Stan', '{}', 50)", (B,)).fetchone()
        == expected
    )


def test_a_transaction_local_binding_ends_with_the_transaction(tenancy_dsn: str) -> None:
    """A pooled connection (unbound) binds per transaction with set_config(..., true): inside it sees A
    only; after COMMIT it is unbound again and sees nothing; a session bound to B (a previous tenant of a
    pooled connection) that binds A for one transaction sees A only in it, and B's rows are never mixed in."""
    count_sql = "SELECT org_id, count(*) FROM crm.contact_index GROUP BY 1"
    with psycopg.connect(tenancy_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE crm_app")
        with conn.transaction():
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(A),))
            assert {r[0] for r in conn.execute(count_sql)} == {A}
            # switching inside one transaction: each statement sees the org bound when it runs
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(B),))
            assert {r[0] for r in conn.execute(count_sql)} == {B}
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(A),))
            assert {r[0] for r in conn.execute(count_sql)} == {A}
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("UPDATE crm.contact_index SET org_id = %s WHERE org_id = %s", (B, A))
        assert conn.execute(count_sql).fetchall() == []
        assert conn.execute("SELECT crm.current_org_id()").fetchone() == (None,)
        bind_org(conn, B)
        with conn.transaction():
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(A),))
            assert {r[0] for r in conn.execute(count_sql)} == {A}
            hits = conn.execute("SELECT id FROM crm.search_contacts(%s, 'Stan', '{}', 50)", (A,)).fetchall()
            assert hits and all(int(h[0]) < ID_BASE_B for h in hits)
        assert {r[0] for r in conn.execute(count_sql)} == {B}
        # a failed transaction rolls the local binding back too
        with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
            conn.execute("SELECT set_config('crm.org_id', %s, true)", (str(A),))
            conn.execute("SELECT 1 / 0")
        assert conn.execute("SELECT crm.current_org_id()").fetchone() == (B,)
