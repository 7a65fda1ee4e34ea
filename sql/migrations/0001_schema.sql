-- 0001_schema: extensions, roles, orgs, connections and the tier-1 index tables (contacts, companies,
-- deals, deal<->contact associations) with row-level security by org.
--
-- Tenancy: every table carries org_id and every primary key / unique constraint starts with it, so the
-- schema can be distributed by org_id (Citus). An application session binds itself to one org with
--     SET crm.org_id = '<uuid>'   (or set_config('crm.org_id', ..., true) per transaction)
-- and, as a member of role crm_app, sees and writes only that org's rows. Workers serving every org use
-- role crm_worker.

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS btree_gin WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public;

-- Roles are cluster-wide; create them once, never fail when they exist.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm_app') THEN
        CREATE ROLE crm_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm_worker') THEN
        CREATE ROLE crm_worker NOLOGIN;
    END IF;
END
$roles$;

GRANT USAGE ON SCHEMA crm TO crm_app, crm_worker;
GRANT SELECT ON crm.schema_migration TO crm_app, crm_worker;

-- unaccent() is STABLE; an IMMUTABLE wrapper with the dictionary named by schema is safe to use in
-- indexes and generated values. Built dynamically because the extension may live in public or in
-- another schema (Supabase: extensions).
DO $wrap$
DECLARE
    v_schema text;
BEGIN
    SELECT n.nspname INTO v_schema
    FROM pg_extension AS e INNER JOIN pg_namespace AS n ON e.extnamespace = n.oid
    WHERE e.extname = 'unaccent';
    EXECUTE format(
        'CREATE FUNCTION crm.unaccent_text(p text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT '
        'RETURN %I.unaccent(%L::regdictionary, p)',
        v_schema, v_schema || '.unaccent'
    );
END
$wrap$;

-- The org the current session is bound to (NULL when unbound).
CREATE FUNCTION crm.current_org_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
RETURN nullif(current_setting('crm.org_id', TRUE), '')::uuid;

-- Raise CX003 when a function is asked for an org other than the one the session is bound to.
CREATE FUNCTION crm.assert_org(p_org_id uuid) RETURNS void
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
END
$$;

CREATE TABLE crm.org (
    org_id uuid PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A CRM account connected to an org. Secrets are never stored: token_ref / webhook_secret_ref name
-- where the process finds them (e.g. 'env:HUBSPOT_TOKEN').
CREATE TABLE crm.connection (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    account_id text NOT NULL,
    base_url text,
    token_ref text,
    webhook_secret_ref text,
    settings jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, crm_source)
);
-- webhook routing: portal / workspace id -> org
CREATE INDEX connection_account_idx ON crm.connection (crm_source, account_id);

CREATE TABLE crm.contact_index (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    id bigint GENERATED ALWAYS AS IDENTITY,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    crm_record_id text NOT NULL CHECK (crm_record_id <> ''),
    -- slim searchable fields, as the CRM has them (email lower-cased and trimmed)
    first_name text,
    last_name text,
    email text,
    phone text,
    company_name text,
    company_crm_id text,
    job_title text,
    lifecycle_stage text,
    lead_status text,
    -- derived at write time (never supplied): see crm.contact_index_derive()
    email_domain text,
    seniority text,
    department text,
    -- deal summary, derived from crm.deal_contact + crm.deal_index
    has_active_deal boolean NOT NULL DEFAULT FALSE,
    deal_stage text,
    deal_value numeric,
    -- materialization (tier 2)
    materialized_contact_id uuid,
    is_materialized boolean NOT NULL DEFAULT FALSE,
    materialized_at timestamptz,
    -- freshness and soft delete. crm_updated_at is the CRM time of the last full record written;
    -- field_versions holds {column: CRM time} for single fields changed by webhooks after it.
    crm_created_at timestamptz,
    crm_updated_at timestamptz,
    field_versions jsonb,
    last_webhook_at timestamptz,
    deleted_at timestamptz,
    merged_into text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, crm_source, crm_record_id),
    CHECK (email IS NULL OR email = lower(btrim(email)))
);

CREATE TABLE crm.company_index (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    id bigint GENERATED ALWAYS AS IDENTITY,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    crm_record_id text NOT NULL CHECK (crm_record_id <> ''),
    name text,
    domain text,
    industry text,
    employee_count integer,
    annual_revenue numeric,
    city text,
    country text,
    -- derived
    industry_groups text[] NOT NULL DEFAULT '{}',
    -- materialization (tier 2)
    materialized_company_id uuid,
    is_materialized boolean NOT NULL DEFAULT FALSE,
    materialized_at timestamptz,
    crm_created_at timestamptz,
    crm_updated_at timestamptz,
    field_versions jsonb,
    last_webhook_at timestamptz,
    deleted_at timestamptz,
    merged_into text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, crm_source, crm_record_id)
);

CREATE TABLE crm.deal_index (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    id bigint GENERATED ALWAYS AS IDENTITY,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    crm_record_id text NOT NULL CHECK (crm_record_id <> ''),
    name text,
    stage text,
    pipeline text,
    amount numeric,
    close_date date,
    is_closed boolean,
    company_crm_id text,
    owner_crm_id text,
    -- derived: open (not closed) deal
    is_active boolean NOT NULL DEFAULT FALSE,
    crm_created_at timestamptz,
    crm_updated_at timestamptz,
    field_versions jsonb,
    last_webhook_at timestamptz,
    deleted_at timestamptz,
    merged_into text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, crm_source, crm_record_id)
);

-- deal <-> contact associations (by CRM ids, so either side may arrive first). A removal is kept as a
-- tombstone (removed = true) with the CRM time it happened, so add/remove events applied in any order
-- converge: a change applies only when newer than the pair's version.
CREATE TABLE crm.deal_contact (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    deal_crm_id text NOT NULL,
    contact_crm_id text NOT NULL,
    removed boolean NOT NULL DEFAULT FALSE,
    version timestamptz,
    PRIMARY KEY (org_id, crm_source, deal_crm_id, contact_crm_id)
);
CREATE INDEX deal_contact_contact_idx ON crm.deal_contact (org_id, crm_source, contact_crm_id);

-- Plain btree lookups (low-cardinality keys deduplicate to a few bytes per row).
CREATE INDEX contact_index_email_idx ON crm.contact_index (org_id, email);
CREATE INDEX contact_index_email_domain_idx ON crm.contact_index (org_id, email_domain);
CREATE INDEX contact_index_company_idx ON crm.contact_index (org_id, crm_source, company_crm_id);
CREATE INDEX company_index_domain_idx ON crm.company_index (org_id, domain);
CREATE INDEX deal_index_company_idx ON crm.deal_index (org_id, crm_source, company_crm_id);

-- Row-level security: crm_app sees one org, crm_worker sees all. Owners (the migrating role) bypass RLS.
ALTER TABLE crm.org ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.connection ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.contact_index ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.company_index ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.deal_index ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.deal_contact ENABLE ROW LEVEL SECURITY;

CREATE POLICY org_app ON crm.org TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY org_worker ON crm.org TO crm_worker USING (TRUE) WITH CHECK (TRUE);
CREATE POLICY connection_app ON crm.connection TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY connection_worker ON crm.connection TO crm_worker USING (TRUE) WITH CHECK (TRUE);
CREATE POLICY contact_index_app ON crm.contact_index TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY contact_index_worker ON crm.contact_index TO crm_worker USING (TRUE) WITH CHECK (TRUE);
CREATE POLICY company_index_app ON crm.company_index TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY company_index_worker ON crm.company_index TO crm_worker USING (TRUE) WITH CHECK (TRUE);
CREATE POLICY deal_index_app ON crm.deal_index TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY deal_index_worker ON crm.deal_index TO crm_worker USING (TRUE) WITH CHECK (TRUE);
CREATE POLICY deal_contact_app ON crm.deal_contact TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY deal_contact_worker ON crm.deal_contact TO crm_worker USING (TRUE) WITH CHECK (TRUE);

GRANT SELECT, INSERT, UPDATE, DELETE ON
crm.org, crm.connection, crm.contact_index, crm.company_index, crm.deal_index, crm.deal_contact
TO crm_app, crm_worker;
