"""The migrated schema matches what the code expects (the Procrastinate schema-vs-code idea).

Rather than a second hand-kept copy of the schema, these tests hold the schema built from the
migrations to the rules and models the Python code relies on.
"""

from __future__ import annotations

import psycopg
from pydantic import BaseModel

from crmindex.index.writes import CompanyRow, ContactRow, DealRow

Conn = psycopg.Connection[tuple[object, ...]]

# Columns an upsert may not supply (mirrors crm.index_protected_columns) plus crm_source (the batch's).
NOT_IN_MODEL = {
    "crm.contact_index": {
        "org_id",
        "id",
        "crm_source",
        "updated_at",
        "email_domain",  # no column since 0021 (computed: crm.email_domain(email)), still refused as derived
        "seniority",
        "department",
        "has_active_deal",
        "deal_stage",
        "deal_value",
        "materialized_contact_id",
        "is_materialized",
        "materialized_at",
        "field_versions",
        "merged_into",
    },
    "crm.company_index": {
        "org_id",
        "id",
        "crm_source",
        "created_at",
        "updated_at",
        "industry_groups",
        "materialized_company_id",
        "is_materialized",
        "materialized_at",
        "field_versions",
        "merged_into",
    },
    "crm.deal_index": {
        "org_id",
        "id",
        "crm_source",
        "created_at",
        "updated_at",
        "is_active",
        "field_versions",
        "merged_into",
        "stage_label",
        "pipeline_label",
    },
}
MODELS: dict[str, type[BaseModel]] = {
    "crm.contact_index": ContactRow,
    "crm.company_index": CompanyRow,
    "crm.deal_index": DealRow,
}


def _columns(db: Conn, table: str) -> set[str]:
    rows = db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table,),
    ).fetchall()
    return {str(r[0]) for r in rows}


def test_row_models_and_index_tables_agree(db: Conn) -> None:
    for table, model in MODELS.items():
        columns = _columns(db, table)
        fields = set(model.model_fields) - {"contact_crm_ids"}
        assert fields <= columns, f"{model.__name__} has fields with no column: {fields - columns}"
        writable = columns - NOT_IN_MODEL[table]
        assert writable <= fields, f"{table} has writable columns the model lacks: {writable - fields}"
        protected = db.execute("SELECT crm.index_protected_columns(%s::regclass)", (table,)).fetchone()
        assert protected is not None
        assert set(protected[0]) == NOT_IN_MODEL[table] - {"crm_source"}


# Global tables: the migrator's bookkeeping, settings, and reference data shared by every org.
GLOBAL_TABLES = {
    "crm.schema_migration",
    "crm.schema_area",
    "crm.maintenance_setting",
    "crm.industry_group",
    "crm.industry_group_member",
    "crm.industry_keyword",
    "crm.industry_learned_word",
    "crm.industry_term",
    "crm.hubspot_industry",
}


def test_every_tenant_table_has_org_first_in_keys_and_rls(db: Conn) -> None:
    tables = db.execute(
        """
        SELECT c.oid::regclass::text, c.relrowsecurity
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'crm' AND c.relkind IN ('r', 'p') AND NOT c.oid::regclass::text = ANY(%s)
        """,
        (list(GLOBAL_TABLES),),
    ).fetchall()
    assert len(tables) >= 6
    for table, rls in tables:
        assert rls, f"{table} has no row-level security"
        assert "org_id" in _columns(db, str(table)), f"{table} has no org_id"
        keys = db.execute(
            """
            SELECT con.conname, (SELECT attname FROM pg_attribute WHERE attrelid = con.conrelid
                                 AND attnum = con.conkey[1])
            FROM pg_constraint AS con WHERE con.conrelid = %s::regclass AND con.contype IN ('p', 'u')
            """,
            (table,),
        ).fetchall()
        assert keys, f"{table} has no primary key"
        for name, first in keys:
            assert first == "org_id", f"{table}.{name} does not start with org_id"


def test_org_is_the_first_parameter_of_org_functions(db: Conn) -> None:
    rows = db.execute(
        """
        SELECT p.proname, p.proargnames
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = 'crm' AND 'p_org_id' = ANY(p.proargnames)
        """
    ).fetchall()
    assert {r[0] for r in rows} >= {"upsert_contacts", "upsert_companies", "upsert_deals"}
    for name, args in rows:
        assert next(iter(args)) == "p_org_id", f"crm.{name} must take p_org_id first"


def test_the_worker_role_can_use_every_org_table(db: Conn) -> None:
    """crm_worker reads and writes every org table; what crm_app may do (read some, write none) is the
    grant matrix of tests/test_grants.py."""
    rows = db.execute(
        """
        SELECT c.oid::regclass::text, has_table_privilege('crm_worker', c.oid, 'SELECT'),
               has_table_privilege('crm_worker', c.oid, 'INSERT'), has_table_privilege('crm_worker', c.oid, 'UPDATE'),
               has_table_privilege('crm_worker', c.oid, 'DELETE')
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'crm' AND c.relkind = 'r' AND NOT c.oid::regclass::text = ANY(%s)
        """,
        (list(GLOBAL_TABLES),),
    ).fetchall()
    for table, *privileges in rows:
        assert all(privileges), f"{table}: crm_worker={privileges}"


QUEUE_CONTRACT = {
    "org_id",
    "id",
    "crm_source",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "next_retry_at",
    "lease_token",
    "leased_until",
    "locked_by",
    "last_error",
    "created_at",
    "updated_at",
    "completed_at",
}


def test_every_queue_table_carries_the_queue_contract(db: Conn) -> None:
    for table in ("crm.job", "crm.webhook_inbox", "crm.writeback_queue"):
        missing = QUEUE_CONTRACT - _columns(db, table)
        assert not missing, f"{table} lacks queue columns {missing}"
        stats = db.execute("SELECT * FROM crm.queue_stats(%s)", (table,)).fetchall()
        assert stats == []


def test_global_tables_hold_no_org_data(db: Conn) -> None:
    present = {
        str(r[0])
        for r in db.execute(
            "SELECT c.oid::regclass::text FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'crm' AND c.relkind = 'r'"
        )
    }
    for table in GLOBAL_TABLES & present:
        assert "org_id" not in _columns(db, table), f"{table} holds org data but is listed as global"
