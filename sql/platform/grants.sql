-- platform/grants.sql: the whole grant matrix of schema crm, in one place. Applied LAST of the area files
-- (sql/areas.txt), after every function and view is (re)defined. tests/test_grants.py asserts it from the
-- catalog; docs/security.md explains the threat model behind it.
--
--   role          trusted with                           tables                          functions
--   ------------  -------------------------------------  ------------------------------  ---------------------------
--   crm_app       one org per session (crm.org_id):      SELECT, under row-level         the API below (search,
--                 the tenant's application               security, on its org's rows     resolve, stats, update /
--                                                        (platform/tenancy.sql)          create contacts, request
--                                                        no INSERT / UPDATE / DELETE     materialization, enqueue
--                                                                                        write-back, enrichment)
--   crm_receiver  nothing but filing verified webhook    none                            crm.webhook_route,
--                 deliveries (internet-facing)                                           crm.webhook_accept
--   crm_worker    every org: sync, webhook processing,   SELECT / INSERT / UPDATE /      every function but those
--                 hydration, materialization, drainers,  DELETE on org tables; SELECT    that run caller-supplied
--                 the operator path (connect, tokens)    on global reference tables      SQL or schedule cron jobs
--   PUBLIC        nothing                                none                            none
--   (owner)       the migrating role                     everything                      everything
--
-- What crm_app may change goes through SECURITY DEFINER functions (search_path pinned to pg_catalog,
-- pg_temp) that call crm.assert_org first (an unbound application session is refused) and validate and cap
-- their input (platform/bounds.sql).
--
-- Why every REVOKE below is repeated whenever the area files apply, instead of ALTER DEFAULT PRIVILEGES:
-- PostgreSQL grants EXECUTE to PUBLIC on every new function (CREATE OR REPLACE of an existing one keeps its
-- privileges). Default privileges given IN SCHEMA crm can only add to the global defaults, never remove the
-- built-in PUBLIC EXECUTE; the global form (ALTER DEFAULT PRIVILEGES FOR ROLE <migrator> REVOKE EXECUTE ON
-- FUNCTIONS FROM PUBLIC) would change every schema that role creates functions in (on Supabase, `postgres`
-- owns the user's own schemas too). So this file starts from nothing each time: the area files apply in one
-- transaction, so a function they create is never visible to other sessions with PUBLIC's EXECUTE.

------------------------------------------------------------------------------------------------------------
-- 1. From nothing
------------------------------------------------------------------------------------------------------------

REVOKE ALL ON SCHEMA crm FROM public, crm_app, crm_receiver, crm_worker;
REVOKE ALL ON ALL TABLES IN SCHEMA crm FROM public, crm_app, crm_receiver, crm_worker;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA crm FROM public, crm_app, crm_receiver, crm_worker;
REVOKE ALL ON ALL ROUTINES IN SCHEMA crm FROM public, crm_app, crm_receiver, crm_worker;

GRANT USAGE ON SCHEMA crm TO crm_app, crm_receiver, crm_worker;

------------------------------------------------------------------------------------------------------------
-- 2. crm_app: read its org, call the API
------------------------------------------------------------------------------------------------------------

-- Its org's rows (row-level security, platform/tenancy.sql) and the "All CRM Contacts" view over them.
GRANT SELECT ON
crm.org, crm.connection,
crm.contact_index, crm.company_index, crm.deal_index, crm.deal_contact,
crm.contact_record, crm.company_record, crm.activation_log,
crm.writeback_queue, crm.job, crm.sync_state,
crm.crm_owner, crm.crm_pipeline_stage,
crm.crm_list, crm.list_entry,
crm.all_crm_contacts
TO crm_app;
-- Global reference data: the industry taxonomy the interpreter and filters use, and the schema version.
GRANT SELECT ON
crm.hubspot_industry, crm.industry_group, crm.industry_group_member, crm.industry_keyword, crm.industry_term,
crm.industry_learned_word, crm.schema_migration
TO crm_app;

GRANT EXECUTE ON FUNCTION
-- the session's org (the row-level security policies call crm.current_org_id as the querying role)
crm.current_org_id(),
crm.assert_org(uuid),
crm.session_sees_every_org(),
-- the input limits (platform/bounds.sql), so an application can read them
crm.text_cap(text),
crm.input_cap(text),
-- search and entity resolution (SECURITY DEFINER; crm.resolve_contact_refs runs as the caller, under RLS)
crm.search(uuid, text, integer, text),
crm.search_contacts(uuid, text, jsonb, integer),
crm.search_companies(uuid, text, jsonb, integer),
crm.search_deals(uuid, text, jsonb, integer),
crm.interpret_query(uuid, text),
crm.resolve_contact(uuid, text, integer),
crm.resolve_contact_refs(uuid, text[], text),
-- status (crm.org_stats: SECURITY DEFINER; the counters run as the caller, under RLS)
crm.org_stats(uuid),
crm.writeback_count(uuid, text[]),
crm.queue_stats(regclass, uuid),
-- changes (SECURITY DEFINER, each checks the org and caps its input)
crm.update_contact(uuid, text, jsonb, text, uuid, smallint),
crm.create_contact(uuid, text, jsonb, text, uuid, smallint),
crm.enqueue_writeback(uuid, text, text, text, text, jsonb, text, uuid, smallint, text, text),
crm.request_materialization(uuid, text[], text, text, text),
crm.activate_local_contact(uuid, text, text, text, text, text),
crm.store_enrichment(uuid, uuid, text, jsonb),
-- the write path of issue 16 (writeback/activities.sql)
crm.log_activity(uuid, text, text, text, text, text, timestamptz, text, uuid, smallint),
crm.update_deal(uuid, text, jsonb, text, uuid, smallint),
crm.update_company(uuid, text, jsonb, text, uuid, smallint),
crm.create_company(uuid, text, jsonb, text, uuid, smallint),
crm.create_deal(uuid, text, jsonb, text, uuid, smallint),
crm.associate(uuid, text, text, text, text, text, uuid, smallint),
crm.disassociate(uuid, text, text, text, text, text, uuid, smallint)
TO crm_app;

------------------------------------------------------------------------------------------------------------
-- 3. crm_receiver: file verified webhook deliveries, nothing else
------------------------------------------------------------------------------------------------------------

-- Both are SECURITY DEFINER (freshness/webhooks.sql, crm/connections.sql). Granted by name, whatever their
-- arguments, and only when they exist (the intake and the connection store evolve separately).
DO $receiver$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
        WHERE p.pronamespace = 'crm'::regnamespace AND p.proname IN ('webhook_route', 'webhook_accept')
        ORDER BY 1
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO crm_receiver', v_fn);
    END LOOP;
END
$receiver$;

------------------------------------------------------------------------------------------------------------
-- 4. crm_worker: every org
------------------------------------------------------------------------------------------------------------

-- Tables: read and write the org tables (row-level security lets it see every org: platform/tenancy.sql);
-- read the global ones (reference data, schema bookkeeping, maintenance settings), whose changes are the
-- owner's, and the views. Decided by the table's shape (an org_id column), so a table added later is covered.
DO $worker$
DECLARE
    v_table regclass;
    v_writable boolean;
BEGIN
    FOR v_table, v_writable IN
        SELECT c.oid::regclass, c.relkind IN ('r', 'p') AND EXISTS (
            SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
        )
        FROM pg_class AS c
        WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'p', 'v')
        ORDER BY c.relname
    LOOP
        EXECUTE format(
            'GRANT %s ON %s TO crm_worker',
            CASE WHEN v_writable THEN 'SELECT, INSERT, UPDATE, DELETE' ELSE 'SELECT' END, v_table
        );
    END LOOP;
END
$worker$;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA crm TO crm_worker;

-- Functions: all of them, but
--   * crm.run_search_plan(jsonb) executes the SQL text it is given: it is called by the SECURITY DEFINER search
--     helpers (crm.search_contact_ids, crm.search_company_ids) as their owner, and by nobody else;
--   * crm.install_maintenance_schedule(text) creates pg_cron jobs: the owner's (sql/platform/maintenance.sql).
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA crm TO crm_worker;
REVOKE EXECUTE ON FUNCTION crm.run_search_plan(jsonb), crm.install_maintenance_schedule(text) FROM crm_worker;
