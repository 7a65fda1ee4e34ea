-- crm/connections.sql: the CRM accounts connected to each org.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- One CRM account belongs to one org: webhooks are routed by portal / workspace id. The check runs as the
-- table owner, whoever inserts (row-level security would hide another org's connection). A unique index on
-- (crm_source, account_id) would not start with org_id, which distributed (Citus) tables require; the advisory
-- lock serializes concurrent claims of one account.
CREATE OR REPLACE FUNCTION crm.connection_account_unique() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('crm.connection:' || new.crm_source || ':' || new.account_id, 0));
    IF EXISTS (
        SELECT 1 FROM crm.connection AS c
        WHERE c.crm_source = new.crm_source AND c.account_id = new.account_id AND c.org_id <> new.org_id
    ) THEN
        RAISE EXCEPTION '% account % is already connected to another org', new.crm_source, new.account_id
            USING ERRCODE = 'CX002';
    END IF;
    RETURN NULL;
END
$$;
