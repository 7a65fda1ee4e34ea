-- platform/tenancy.sql: who sees which org. A session binds itself to one org with
--     SET crm.org_id = '<uuid>'   (or set_config('crm.org_id', ..., true) per transaction)
-- and functions refuse any other org (crm.assert_org, SQLSTATE CX003).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- The org the current session is bound to (NULL when unbound).
CREATE OR REPLACE FUNCTION crm.current_org_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
RETURN nullif(current_setting('crm.org_id', TRUE), '')::uuid;

-- Raise CX003 when a function is asked for an org other than the one the session is bound to.
-- Inside a SECURITY DEFINER function (current_user is not the session's role) an unbound session must see
-- every org (crm.session_sees_every_org) to name one: workers serve every org, application sessions one.
CREATE OR REPLACE FUNCTION crm.assert_org(p_org_id uuid) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_bound uuid := crm.current_org_id();
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'org id must not be null' USING ERRCODE = 'CX002';
    END IF;
    IF v_bound IS NOT NULL AND v_bound <> p_org_id THEN
        RAISE EXCEPTION 'this session is bound to org %, not %', v_bound, p_org_id USING ERRCODE = 'CX003';
    END IF;
    IF v_bound IS NULL
        AND current_user <> coalesce(nullif(current_setting('role', TRUE), 'none'), session_user)
        AND NOT crm.session_sees_every_org() THEN
        RAISE EXCEPTION 'this session is not bound to an org (set crm.org_id)' USING ERRCODE = 'CX003';
    END IF;
END
$$;

-- Does the session's own role (SET ROLE, else the login; never the owner of a SECURITY DEFINER function
-- being run) see the rows of every org?
CREATE OR REPLACE FUNCTION crm.session_sees_every_org() RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_role text := coalesce(nullif(current_setting('role', TRUE), 'none'), session_user);
BEGIN
    RETURN EXISTS (SELECT 1 FROM pg_roles AS r WHERE r.rolname = v_role AND (r.rolsuper OR r.rolbypassrls))
        OR pg_has_role(v_role, 'crm_worker', 'USAGE')
        OR pg_has_role(
            v_role, (SELECT c.relowner FROM pg_class AS c WHERE c.oid = 'crm.contact_index'::regclass), 'USAGE'
        );
END
$$;

------------------------------------------------------------------------------------------------------------
-- Row-level security policies (the grants that go with them are in platform/grants.sql)
------------------------------------------------------------------------------------------------------------
-- Every table holding an org's rows has row-level security (enabled in its migration). Owners (the migrating
-- role) bypass it, and so do the SECURITY DEFINER functions they own, which therefore name the org in every
-- query and call crm.assert_org first.
--
-- crm_app, the tenant application, READS its org's rows of the tables below (SELECT policies only: it has no
-- INSERT / UPDATE / DELETE privilege on any table, and it changes data only through the API functions of
-- platform/grants.sql). An unbound session (crm.org_id unset or '') sees nothing.
--   * the tier-1 index: contact_index, company_index, deal_index, deal_contact
--   * tier 2 and its audit trail: contact_record, company_record, activation_log
--   * the state of its work: writeback_queue, job, sync_state (errors stored there hold status, category and
--     correlation id of the CRM's answer, never a raw response body)
--   * its org and its CRM connections: org, connection (no secret lives there: tokens and webhook secrets are
--     in crm.connection_secret)
--   * what its CRM calls things: crm_owner, crm_pipeline_stage, and its lists: crm_list, list_entry
-- No policy, no grant, so nothing at all, on: webhook_inbox (raw CRM deliveries and their headers), rate_limit
-- (the workers' budgets), connection_secret (encrypted tokens), and any table not listed here.

-- One policy per table, named <table>_app: SELECT, the rows of the session's org.
DO $app$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY[
        'org', 'connection', 'contact_index', 'company_index', 'deal_index', 'deal_contact', 'contact_record',
        'company_record', 'activation_log', 'writeback_queue', 'job', 'sync_state', 'crm_owner',
        'crm_pipeline_stage', 'crm_list', 'list_entry'
    ] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON crm.%I', v_table || '_app', v_table);
        EXECUTE format(
            'CREATE POLICY %I ON crm.%I FOR SELECT TO crm_app USING (org_id = crm.current_org_id())',
            v_table || '_app', v_table
        );
    END LOOP;
END
$app$;

-- what crm_app read and wrote until 0.1.x, and no longer sees
DROP POLICY IF EXISTS webhook_inbox_app ON crm.webhook_inbox;
DROP POLICY IF EXISTS rate_limit_app ON crm.rate_limit;

-- crm_worker serves every org (sync, webhook processing, hydration, materialization, drainers, and the
-- operator path: connect, disconnect, the token store): one policy per table with row-level security, for
-- every such table, so a table added later cannot be forgotten. Named <table>_worker.
DO $worker$
DECLARE
    v_table regclass;
    v_policy text;
BEGIN
    FOR v_table, v_policy IN
        SELECT c.oid::regclass, c.relname || '_worker' FROM pg_class AS c
        WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %s', v_policy, v_table);
        EXECUTE format('CREATE POLICY %I ON %s TO crm_worker USING (TRUE) WITH CHECK (TRUE)', v_policy, v_table);
    END LOOP;
END
$worker$;
