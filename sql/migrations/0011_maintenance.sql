-- 0011_maintenance: database-side upkeep, scheduled by pg_cron.
--
--   crm.maintenance()                  one pass: reclaim expired leases, wake drainers when retries fall due,
--                                      purge old completed jobs and old soft-deleted rows; returns a summary
--   crm.install_maintenance_schedule() installs (idempotently) the pg_cron jobs that run it every minute
--                                      and prune cron.job_run_details daily; run it in the database where
--                                      pg_cron is installed (cron.database_name), which must also hold
--                                      schema crm (the usual case, e.g. Supabase's postgres database)
-- pg_cron 1.4 has minute granularity: the schedules are cron expressions, never 'N seconds'.

CREATE TABLE crm.maintenance_setting (
    singleton boolean PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    deleted_retention interval NOT NULL DEFAULT '30 days',
    completed_retention interval NOT NULL DEFAULT '7 days',
    cron_history_retention interval NOT NULL DEFAULT '7 days'
);
INSERT INTO crm.maintenance_setting DEFAULT VALUES;
GRANT SELECT ON crm.maintenance_setting TO crm_app, crm_worker;

CREATE FUNCTION crm.maintenance() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_setting crm.maintenance_setting;
    v_queue regclass;
    v_reclaimed integer := 0;
    v_purged integer := 0;
    v_due integer := 0;
    v_n integer;
    v_deleted record;
BEGIN
    SELECT * INTO v_setting FROM crm.maintenance_setting;
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
        'purged_deals', v_deleted.deals
    );
END
$$;

CREATE FUNCTION crm.install_maintenance_schedule(p_schedule text DEFAULT '* * * * *')
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

REVOKE EXECUTE ON FUNCTION crm.maintenance() FROM public;
REVOKE EXECUTE ON FUNCTION crm.install_maintenance_schedule(text) FROM public;
GRANT EXECUTE ON FUNCTION crm.maintenance() TO crm_worker;
