-- platform/maintenance.sql: database-side upkeep, scheduled by pg_cron.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- Delete the rows of p_index soft-deleted before p_before, with the rows of p_dependent that name them (same org
-- and CRM, p_dependent.<p_key> = the record id): tier-2 records, deal links. Returns how many index rows went.
CREATE OR REPLACE FUNCTION crm.purge_deleted_rows(
    p_index regclass, p_dependent regclass, p_key text, p_before timestamptz
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    EXECUTE format(
        'WITH gone AS ('
        '  DELETE FROM %1$s AS i WHERE i.deleted_at < $1 RETURNING i.org_id, i.crm_source, i.crm_record_id'
        '), dependent AS ('
        '  DELETE FROM %2$s AS r USING gone AS g'
        '  WHERE r.org_id = g.org_id AND r.crm_source = g.crm_source AND r.%3$I = g.crm_record_id RETURNING 1'
        ') SELECT count(*) FROM gone',
        p_index, p_dependent, p_key
    ) INTO v_n USING p_before;
    RETURN v_n;
END
$$;

-- Purge rows soft-deleted longer than p_retention ago (index rows, their tier-2 rows, deal links).
CREATE OR REPLACE FUNCTION crm.purge_deleted(p_retention interval DEFAULT '30 days')
RETURNS TABLE (contacts integer, companies integer, deals integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_before timestamptz := now() - p_retention;
BEGIN
    contacts := crm.purge_deleted_rows('crm.contact_index', 'crm.contact_record', 'crm_record_id', v_before);
    companies := crm.purge_deleted_rows('crm.company_index', 'crm.company_record', 'crm_record_id', v_before);
    deals := crm.purge_deleted_rows('crm.deal_index', 'crm.deal_contact', 'deal_crm_id', v_before);
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION crm.maintenance() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_setting crm.maintenance_setting;
    v_queue regclass;
    v_reclaimed integer := 0;
    v_purged integer := 0;
    v_due integer := 0;
    v_n integer;
    v_deleted record;
    v_keys integer;
BEGIN
    SELECT * INTO v_setting FROM crm.maintenance_setting;
    -- webhook event keys past their replay window (crm.webhook_accept)
    DELETE FROM crm.webhook_event_key AS k WHERE k.expires_at < now();
    GET DIAGNOSTICS v_keys = ROW_COUNT;
    FOREACH v_queue IN ARRAY ARRAY['crm.job', 'crm.webhook_inbox', 'crm.writeback_queue']::regclass [] LOOP
        v_reclaimed := v_reclaimed + crm.queue_reclaim_expired(v_queue);
        v_purged := v_purged + crm.queue_purge_completed(v_queue, v_setting.completed_retention);
        EXECUTE format(
            'SELECT count(*) FROM %s WHERE status IN (''pending'', ''failed'') AND next_retry_at <= now()', v_queue
        ) INTO v_n;
        IF v_n > 0 THEN
            PERFORM pg_notify('crm_queue', v_queue::text);
        END IF;
        v_due := v_due + v_n;
    END LOOP;
    SELECT * INTO v_deleted FROM crm.purge_deleted(v_setting.deleted_retention);
    RETURN jsonb_build_object(
        'reclaimed_leases', v_reclaimed, 'purged_jobs', v_purged, 'due_jobs', v_due,
        'purged_contacts', v_deleted.contacts, 'purged_companies', v_deleted.companies,
        'purged_deals', v_deleted.deals, 'purged_webhook_keys', v_keys
    );
END
$$;

CREATE OR REPLACE FUNCTION crm.install_maintenance_schedule(p_schedule text DEFAULT '* * * * *')
RETURNS TABLE (job_name text, schedule text)
LANGUAGE plpgsql AS $$
DECLARE
    v_retention interval;
BEGIN
    IF to_regnamespace('cron') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in database %', current_database()
            USING ERRCODE = 'CX002',
            HINT = 'CREATE EXTENSION pg_cron in the database named by cron.database_name';
    END IF;
    IF p_schedule ~* 'second' THEN
        RAISE EXCEPTION 'pg_cron 1.4 schedules by the minute: use a cron expression such as * * * * *'
            USING ERRCODE = 'CX002';
    END IF;
    SELECT s.cron_history_retention INTO v_retention FROM crm.maintenance_setting AS s;
    -- cron.schedule(name, ...) replaces a job of the same name: running this twice keeps one of each
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
    USING 'crmindex-maintenance', p_schedule, 'SELECT crm.maintenance()';
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
    USING 'crmindex-prune-cron-history', '17 3 * * *',
    format('DELETE FROM cron.job_run_details WHERE end_time < now() - %L::interval', v_retention);
    RETURN QUERY EXECUTE
    'SELECT jobname::text, schedule::text FROM cron.job WHERE jobname LIKE ''crmindex-%'' ORDER BY jobname';
END
$$;
