"""Tables and views: crm_app, in every binding mode, reads no row of org B in any relation of schema ``crm``, and
cannot insert, update or delete B's rows (nor write the global reference tables)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.orgs import ORG_A as A
from tests.orgs import ORG_B as B
from tests.tenancy.helpers import MODES, Conn, Mode, attempt, crm_relations, org_tables, snapshot
from tests.test_schema import GLOBAL_TABLES


def test_every_org_table_has_rls_and_rows_of_both_orgs(su: Conn) -> None:
    """The seed covers every table (so every check below sees B's rows); tables without org_id are the
    known global reference tables."""
    relations = crm_relations(su)
    assert {name for name, kind, has_org in relations if not has_org} == GLOBAL_TABLES
    for table in org_tables(su):
        row = su.execute("SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()
        assert row == (True,), f"{table} has no row-level security"
        counts = dict(su.execute(f"SELECT org_id, count(*) FROM {table} GROUP BY 1").fetchall())
        assert counts.get(A, 0) >= 1 and counts.get(B, 0) >= 1, (
            f"{table} is not seeded for both orgs: {counts}"
        )
    for name, kind, _ in relations:
        assert kind in ("r", "v"), f"{name}: relkind {kind} (materialized views / foreign tables bypass RLS)"


def _privilege(conn: Conn, relation: str, privilege: str) -> bool:
    row = conn.execute("SELECT has_table_privilege('crm_app', %s, %s)", (relation, privilege)).fetchone()
    return row == (True,)


def _is_denied(outcome: object) -> bool:
    return isinstance(outcome, psycopg.errors.InsufficientPrivilege) and "permission denied" in str(outcome)


def _is_rls_refusal(outcome: object) -> bool:
    return isinstance(outcome, psycopg.errors.InsufficientPrivilege) and "row-level security" in str(outcome)


@pytest.mark.parametrize("mode", list(MODES))
def test_app_reads_no_row_of_b_in_any_table_or_view(su: Conn, mode: Mode) -> None:
    before = snapshot(su)
    visible = {"bound_a": {A}, "unbound": set(), "empty": set(), "malformed": set()}[mode]
    for name, _, has_org in crm_relations(su):
        outcome, after = attempt(su, mode, f"SELECT {'org_id' if has_org else 'count(*)'} FROM {name}")
        assert after == before
        if not _privilege(su, name, "SELECT"):
            assert _is_denied(outcome), f"{name}: crm_app has no SELECT, yet got {outcome!r}"
        elif not has_org:
            assert isinstance(outcome, list), f"{name}: {outcome!r}"  # global reference data
        elif mode == "malformed":  # a malformed binding is an error, never rows
            assert isinstance(outcome, psycopg.errors.InvalidTextRepresentation), f"{name}: {outcome!r}"
        else:
            assert isinstance(outcome, list), f"{name}: {outcome!r}"
            assert {r[0] for r in outcome} <= visible, f"{name} shows { ({r[0] for r in outcome}) } in {mode}"
            if mode == "bound_a":
                assert outcome, f"{name}: A sees none of its own rows"


def _insert_copy_sql(conn: Conn, relation: str, org: uuid.UUID) -> str:
    """INSERT a copy of one of A's rows into ``relation`` with org_id = ``org`` (identity columns left out)."""
    cols = [
        str(r[0])
        for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "AND attidentity = '' AND attgenerated = '' ORDER BY attnum",
            (relation,),
        )
    ]
    values = ", ".join(f"'{org}'::uuid" if c == "org_id" else c for c in cols)
    return f"INSERT INTO {relation} ({', '.join(cols)}) SELECT {values} FROM {relation} WHERE org_id = '{A}' LIMIT 1"


def _insert_global_copy_sql(conn: Conn, relation: str) -> str:
    """INSERT a copy of a row of a global table (generated and identity columns left out, so that the statement
    is refused for want of privilege, not for naming a generated column)."""
    cols = [
        str(r[0])
        for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "AND attidentity = '' AND attgenerated = '' ORDER BY attnum",
            (relation,),
        )
    ]
    listed = ", ".join(cols)
    return f"INSERT INTO {relation} ({listed}) SELECT {listed} FROM {relation} LIMIT 1"


def test_app_cannot_insert_update_or_delete_rows_of_b(su: Conn) -> None:
    before = snapshot(su)
    for name, kind, has_org in crm_relations(su):
        if not has_org:
            first = su.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1", (name,)
            ).fetchone()
            assert first is not None
            statements = {
                "INSERT": _insert_global_copy_sql(su, name),
                "UPDATE": f"UPDATE {name} SET {first[0]} = {first[0]}",
                "DELETE": f"DELETE FROM {name}",
            }
            for privilege, sql in statements.items():
                # global reference data is shared by every org: the app role must not write it
                assert not _privilege(su, name, privilege), f"crm_app may {privilege} global table {name}"
                outcome, after = attempt(su, "bound_a", sql)
                assert _is_denied(outcome) and after == before, f"{privilege} {name}: {outcome!r}"
            continue
        checks = {
            "UPDATE": (f"UPDATE {name} SET org_id = org_id WHERE org_id = '{B}' RETURNING 1", []),
            "DELETE": (f"DELETE FROM {name} WHERE org_id = '{B}' RETURNING 1", []),
            # moving one of A's rows into B, inserting a row for B: refused by the policies' WITH CHECK
            "UPDATE ": (f"UPDATE {name} SET org_id = '{B}' WHERE org_id = '{A}' RETURNING 1", "rls"),
            "INSERT": (_insert_copy_sql(su, name, B), "rls"),
        }
        for label, (sql, expected) in checks.items():
            if not _privilege(su, name, label.strip()) and label == "INSERT":
                sql = f"INSERT INTO {name} (org_id) VALUES ('{B}')"
            outcome, after = attempt(su, "bound_a", sql)
            assert after == before, f"{label} on {name} changed B's data"
            if not _privilege(su, name, label.strip()):
                assert _is_denied(outcome), f"{label.strip()} {name}: no privilege, yet {outcome!r}"
            elif expected == "rls":
                assert _is_rls_refusal(outcome), f"{label.strip()} {name}: {outcome!r}"
            else:
                assert outcome == expected, f"{label.strip()} {name}: touched B's rows: {outcome!r}"
        # control: the same INSERT for A itself is allowed (what was refused above was org B)
        if kind == "r" and _privilege(su, name, "INSERT"):
            outcome, _ = attempt(su, "bound_a", _insert_copy_sql(su, name, A))
            assert not _is_rls_refusal(outcome), f"INSERT {name} for A itself: {outcome!r}"
