-- 0013_roles: the trust boundary of issue 13, structural part.
--
-- * crm_receiver: the internet-facing webhook receiver. It gets EXECUTE on the intake functions only
--   (sql/platform/grants.sql); it reads and writes no table.
-- * crm_app (the tenant application, one org per session) loses every direct write: until now it could
--   INSERT / UPDATE / DELETE the webhook inbox, the queues, the rate limiter, sync state, its connection and
--   its org (insert unsigned inbox rows, complete or requeue jobs, point its connection at any host). What it
--   may change now goes through SECURITY DEFINER functions that check the org and cap their input.
-- * PUBLIC loses everything it had in schema crm (EXECUTE on every function by default).
--
-- The grant matrix itself (who may run what, read what) is current state, kept in sql/platform/grants.sql and
-- re-applied with the other area files; the row-level security policies are in sql/platform/tenancy.sql.
-- These statements only make the upgrade safe between this migration and the area files.

-- Roles are cluster-wide; create them once, never fail when they exist.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm_receiver') THEN
        CREATE ROLE crm_receiver NOLOGIN;
    END IF;
END
$roles$;

REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA crm FROM crm_app;
REVOKE ALL ON ALL TABLES IN SCHEMA crm FROM public;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA crm FROM public;
REVOKE ALL ON ALL ROUTINES IN SCHEMA crm FROM public;
REVOKE EXECUTE ON FUNCTION crm.run_search_plan(jsonb) FROM crm_app, crm_worker;
