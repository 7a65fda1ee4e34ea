"""The grant matrix of schema ``crm``, asserted from the catalog (issue 13, "Roles"; sql/platform/grants.sql).

Who may do what: ``crm_app`` reads its org and calls the API functions listed here, nothing else; ``crm_receiver``
files webhook deliveries and nothing else; ``crm_worker`` serves every org; PUBLIC gets nothing. Every
privilege is read from the ACLs (``aclexplode``), so a grant added anywhere (a migration, an area file, by hand)
fails here until the matrix below says so. A table added later must be placed in APP_READS or APP_HIDDEN.
"""

from __future__ import annotations

from collections import defaultdict

import psycopg
import pytest

Conn = psycopg.Connection[tuple[object, ...]]

ROLES = ("crm_app", "crm_receiver", "crm_worker", "public")

# tables and views the application reads (its org's rows, under row-level security; global reference data)
APP_READS_ORG = {
    "crm.org",
    "crm.connection",
    "crm.contact_index",
    "crm.company_index",
    "crm.deal_index",
    "crm.deal_contact",
    "crm.contact_record",
    "crm.company_record",
    "crm.activation_log",
    "crm.writeback_queue",
    "crm.job",
    "crm.sync_state",
    "crm.crm_owner",
    "crm.crm_pipeline_stage",
    "crm.crm_list",
    "crm.list_entry",
}
APP_READS = APP_READS_ORG | {
    "crm.all_crm_contacts",
    "crm.hubspot_industry",
    "crm.industry_group",
    "crm.industry_group_member",
    "crm.industry_keyword",
    "crm.industry_learned_word",
    "crm.industry_term",
    "crm.schema_migration",
}
# what the application cannot read at all: raw webhook deliveries, the workers' budgets, sealed secrets, OAuth
# state, replay keys of the intake, settings and the migrator's bookkeeping
APP_HIDDEN = {
    "crm.webhook_inbox",
    "crm.rate_limit",
    "crm.connection_secret",
    "crm.oauth_state",
    "crm.webhook_event_key",
    "crm.maintenance_setting",
    "crm.schema_area",
    "crm.crm_metadata_state",
    "crm.contact_name_word",  # tier 2 of a name search reads it in the SECURITY DEFINER helpers
}

# the application's API: every function crm_app may execute, by signature
APP_FUNCTIONS = {
    "crm.current_org_id()",
    "crm.assert_org(uuid)",
    "crm.session_sees_every_org()",
    "crm.text_cap(text)",
    "crm.input_cap(text)",
    "crm.search(uuid,text,integer,text)",
    "crm.search_contacts(uuid,text,jsonb,integer)",
    "crm.search_companies(uuid,text,jsonb,integer)",
    "crm.search_deals(uuid,text,jsonb,integer)",
    "crm.interpret_query(uuid,text)",
    "crm.resolve_contact(uuid,text,integer)",
    "crm.resolve_contact_refs(uuid,text[],text)",
    "crm.org_stats(uuid)",
    "crm.writeback_count(uuid,text[])",
    "crm.queue_stats(regclass,uuid)",
    "crm.update_contact(uuid,text,jsonb,text,uuid,smallint)",
    "crm.create_contact(uuid,text,jsonb,text,uuid,smallint)",
    "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
    "crm.request_materialization(uuid,text[],text,text,text)",
    "crm.activate_local_contact(uuid,text,text,text,text,text)",
    "crm.store_enrichment(uuid,uuid,text,jsonb)",
    "crm.log_activity(uuid,text,text,text,text,text,timestamp with time zone,text,uuid,smallint)",
    "crm.update_deal(uuid,text,jsonb,text,uuid,smallint)",
    "crm.update_company(uuid,text,jsonb,text,uuid,smallint)",
    "crm.create_company(uuid,text,jsonb,text,uuid,smallint)",
    "crm.create_deal(uuid,text,jsonb,text,uuid,smallint)",
    "crm.associate(uuid,text,text,text,text,text,uuid,smallint)",
    "crm.disassociate(uuid,text,text,text,text,text,uuid,smallint)",
}
# the API functions that change data: SECURITY DEFINER, and each checks the org first
APP_WRITERS = {
    "crm.update_contact(uuid,text,jsonb,text,uuid,smallint)",
    "crm.create_contact(uuid,text,jsonb,text,uuid,smallint)",
    "crm.enqueue_writeback(uuid,text,text,text,text,jsonb,text,uuid,smallint,text,text)",
    "crm.request_materialization(uuid,text[],text,text,text)",
    "crm.activate_local_contact(uuid,text,text,text,text,text)",
    "crm.store_enrichment(uuid,uuid,text,jsonb)",
    "crm.log_activity(uuid,text,text,text,text,text,timestamp with time zone,text,uuid,smallint)",
    "crm.update_deal(uuid,text,jsonb,text,uuid,smallint)",
    "crm.update_company(uuid,text,jsonb,text,uuid,smallint)",
    "crm.create_company(uuid,text,jsonb,text,uuid,smallint)",
    "crm.create_deal(uuid,text,jsonb,text,uuid,smallint)",
    "crm.associate(uuid,text,text,text,text,text,uuid,smallint)",
    "crm.disassociate(uuid,text,text,text,text,text,uuid,smallint)",
}
RECEIVER_FUNCTION_NAMES = {"webhook_route", "webhook_accept"}
# functions nobody but their owner may execute: run caller-supplied SQL, schedule cron jobs
OWNER_ONLY = {"crm.run_search_plan(jsonb)", "crm.install_maintenance_schedule(text)"}


def _relations(db: Conn) -> dict[str, tuple[str, bool]]:
    """name -> (relkind, has org_id) of every table and view of schema crm."""
    return {
        str(r[0]): (str(r[1]), bool(r[2]))
        for r in db.execute(
            """
            SELECT c.oid::regclass::text, c.relkind, EXISTS (
                SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
            )
            FROM pg_class AS c WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
            """
        )
    }


def _acl(db: Conn, catalog: str, name_sql: str, where: str) -> dict[str, dict[str, set[str]]]:
    """object -> role -> privileges granted to it, for the four roles (the owner's own privileges left out)."""
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for obj, grantee, privilege in db.execute(
        f"""
        SELECT {name_sql}, CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END, a.privilege_type
        FROM {catalog} AS o CROSS JOIN LATERAL aclexplode(o.{"relacl" if catalog == "pg_class" else "proacl"}) AS a
        WHERE {where}
        """
    ):
        if grantee in ROLES:
            out[str(obj)][str(grantee)].add(str(privilege))
    return out


def _functions(db: Conn) -> dict[str, tuple[str, bool, list[str], str]]:
    """signature -> (name, SECURITY DEFINER, proconfig, body) of every routine of schema crm."""
    return {
        str(r[0]): (str(r[1]), bool(r[2]), [str(c) for c in (r[3] or [])], str(r[4] or ""))
        for r in db.execute(
            "SELECT p.oid::regprocedure::text, p.proname, p.prosecdef, p.proconfig, p.prosrc FROM pg_proc AS p "
            "WHERE p.pronamespace = 'crm'::regnamespace"
        )
    }


# ------------------------------------------------------------------------------------------------ tables


def test_table_privileges_of_every_role(db: Conn) -> None:
    relations = _relations(db)
    assert set(relations) >= APP_READS, f"gone: {APP_READS - set(relations)}"
    assert set(relations) - APP_READS - APP_HIDDEN == set(), (
        "new tables: decide whether crm_app may read them"
    )
    acl = _acl(db, "pg_class", "o.oid::regclass::text", "o.relnamespace = 'crm'::regnamespace")
    problems = []
    for name, (kind, has_org) in sorted(relations.items()):
        writable = kind in ("r", "p") and has_org
        expected = {
            "crm_app": {"SELECT"} if name in APP_READS else set(),
            "crm_receiver": set(),
            "crm_worker": {"SELECT", "INSERT", "UPDATE", "DELETE"} if writable else {"SELECT"},
            "public": set(),
        }
        for role in ROLES:
            got = acl.get(name, {}).get(role, set())
            if got != expected[role]:
                problems.append(f"{name} {role}: {sorted(got)} (expected {sorted(expected[role])})")
    assert problems == []


def test_no_role_inherits_more(db: Conn) -> None:
    """The matrix holds with role membership too: no role is a member of another crm role, a superuser or
    BYPASSRLS; so has_table_privilege agrees with the ACLs."""
    rows = db.execute(
        "SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcanlogin, "
        "ARRAY(SELECT g.rolname FROM pg_auth_members AS m JOIN pg_roles AS g ON g.oid = m.roleid "
        "WHERE m.member = r.oid) FROM pg_roles AS r WHERE r.rolname IN ('crm_app', 'crm_receiver', 'crm_worker')"
    ).fetchall()
    assert {r[0] for r in rows} == {"crm_app", "crm_receiver", "crm_worker"}
    for name, superuser, bypass, login, member_of in rows:
        assert (superuser, bypass, login, member_of) == (False, False, False, []), name
    for table in ("crm.webhook_inbox", "crm.rate_limit", "crm.contact_index", "crm.connection"):
        for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
            row = db.execute("SELECT has_table_privilege('crm_app', %s, %s)", (table, privilege)).fetchone()
            assert row == (False,), f"crm_app {privilege} {table}"


def test_sequences_and_the_schema(db: Conn) -> None:
    acl = _acl(
        db, "pg_class", "o.oid::regclass::text", "o.relnamespace = 'crm'::regnamespace AND o.relkind = 'S'"
    )
    for seq, roles in acl.items():
        assert set(roles) <= {"crm_worker"}, f"{seq}: {dict(roles)}"
    schema = {
        str(r[0]): str(r[1])
        for r in db.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END, a.privilege_type "
            "FROM pg_namespace AS n CROSS JOIN LATERAL aclexplode(n.nspacl) AS a "
            "WHERE n.nspname = 'crm' AND a.grantee <> n.nspowner"
        )
    }
    assert schema == {"crm_app": "USAGE", "crm_receiver": "USAGE", "crm_worker": "USAGE"}


# --------------------------------------------------------------------------------------------- functions


def test_function_privileges_of_every_role(db: Conn) -> None:
    functions = _functions(db)
    assert set(functions) >= APP_FUNCTIONS, f"gone: {APP_FUNCTIONS - set(functions)}"
    acl = _acl(db, "pg_proc", "o.oid::regprocedure::text", "o.pronamespace = 'crm'::regnamespace")
    receiver = {sig for sig, (name, *_) in functions.items() if name in RECEIVER_FUNCTION_NAMES}
    problems = []
    for sig in sorted(functions):
        expected = {
            "crm_app": {"EXECUTE"} if sig in APP_FUNCTIONS else set(),
            "crm_receiver": {"EXECUTE"} if sig in receiver else set(),
            "crm_worker": set() if sig in OWNER_ONLY else {"EXECUTE"},
            "public": set(),
        }
        for role in ROLES:
            got = acl.get(sig, {}).get(role, set())
            if got != expected[role]:
                problems.append(f"{sig} {role}: {sorted(got)} (expected {sorted(expected[role])})")
    assert problems == []


def test_nothing_runs_caller_sql_but_the_owner(db: Conn) -> None:
    for sig in OWNER_ONLY:
        for role in ROLES:
            row = db.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, sig)).fetchone()
            assert row == (False,), f"{role} may execute {sig}"


def test_the_application_changes_data_only_through_checked_definer_functions(db: Conn) -> None:
    """Every API function that writes runs as its owner, so it must name the org itself: each calls
    crm.assert_org (which refuses an unbound application session inside a SECURITY DEFINER function). Every
    SECURITY DEFINER function pins its search path (no object of the caller's can be slipped in)."""
    functions = _functions(db)
    for sig, (_, definer, config, _) in functions.items():
        if definer:
            assert "search_path=pg_catalog, pg_temp" in config, f"{sig}: {config}"
    for sig in APP_WRITERS:
        _, definer, _, body = functions[sig]
        assert definer, f"{sig} is not SECURITY DEFINER"
        assert "PERFORM crm.assert_org(p_org_id);" in body, f"{sig} does not check the org"
    for sig in APP_FUNCTIONS - APP_WRITERS:
        _, definer, _, body = functions[sig]
        if definer:
            assert "crm.assert_org(p_org_id)" in body or "crm.interpret_query(p_org_id" in body, sig


# --------------------------------------------------------------------------------------- row-level security


def test_every_org_table_has_row_level_security_and_the_policies_of_the_matrix(db: Conn) -> None:
    relations = _relations(db)
    org_tables = {n for n, (kind, has_org) in relations.items() if kind in ("r", "p") and has_org}
    rls = {
        str(r[0]): bool(r[1])
        for r in db.execute(
            "SELECT oid::regclass::text, relrowsecurity FROM pg_class WHERE relnamespace = 'crm'::regnamespace"
        )
    }
    assert [t for t in sorted(org_tables) if not rls[t]] == []
    policies: dict[str, list[tuple[str, str, list[str], str, str]]] = defaultdict(list)
    for table, name, cmd, roles, qual, check in db.execute(
        "SELECT p.polrelid::regclass::text, p.polname, p.polcmd, "
        "ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END FROM unnest(p.polroles) AS r), "
        "pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) "
        "FROM pg_policy AS p JOIN pg_class AS c ON c.oid = p.polrelid WHERE c.relnamespace = 'crm'::regnamespace"
    ):
        policies[str(table)].append((str(name), str(cmd), list(roles), str(qual), str(check)))
    for table in sorted(org_tables):
        expected = [(f"{table.split('.')[1]}_worker", "*", ["crm_worker"], "true", "true")]
        if table in APP_READS_ORG:
            expected.append(
                (f"{table.split('.')[1]}_app", "r", ["crm_app"], "(org_id = crm.current_org_id())", "None")
            )
        assert sorted(policies.pop(table, [])) == sorted(expected), table
    assert dict(policies) == {}, "policies on tables without org_id"


@pytest.mark.parametrize("role", ["crm_app", "crm_receiver"])
def test_the_tenant_facing_roles_hold_no_secret_table(db: Conn, role: str) -> None:
    for table in ("crm.connection_secret", "crm.oauth_state", "crm.webhook_inbox"):
        if table in _relations(db):
            row = db.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, table)).fetchone()
            assert row == (False,), f"{role} reads {table}"
