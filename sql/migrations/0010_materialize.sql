-- 0010_materialize: tier 2 (full records of active contacts and companies), the activation log,
-- org stats, the "All CRM Contacts" view and the purge of old soft-deleted rows.
--
-- A materialization writes the tier-2 row and marks the index row in one transaction
-- (crm.materialize_contact_write). Host apps mirror tier-2 rows into their own tables with a trigger on
-- crm.contact_record (see docs/deployment.md, "Host hooks").

CREATE TABLE crm.contact_record (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    -- NULL for a local contact (origin 'local': e.g. a meeting booked by someone not in the CRM yet)
    crm_source text CHECK (crm_source IN ('hubspot', 'attio')),
    crm_record_id text,
    index_id bigint,
    -- typed core columns (as in the CRM at fetch time)
    first_name text,
    last_name text,
    email text,
    phone text,
    company_name text,
    company_crm_id text,
    job_title text,
    lifecycle_stage text,
    lead_status text,
    -- every CRM property as fetched
    properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- enrichment payloads per provider: {"apollo": {"fetched_at": ..., "data": {...}}, ...}
    enrichment jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- for the host app: activity history, notes, prep, health signals
    activity jsonb NOT NULL DEFAULT '[]'::jsonb,
    notes text,
    origin text NOT NULL DEFAULT 'crm' CHECK (origin IN ('crm', 'local')),
    fetched_at timestamptz,
    crm_updated_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, crm_source, crm_record_id),
    CHECK (origin = 'local' OR (crm_source IS NOT NULL AND crm_record_id IS NOT NULL))
);
CREATE INDEX contact_record_email_idx ON crm.contact_record (org_id, lower(email));
-- one local contact per email
CREATE UNIQUE INDEX contact_record_local_email_idx ON crm.contact_record (org_id, lower(email))
WHERE origin = 'local';

CREATE TABLE crm.company_record (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    crm_record_id text NOT NULL,
    index_id bigint,
    name text,
    domain text,
    industry text,
    properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    enrichment jsonb NOT NULL DEFAULT '{}'::jsonb,
    notes text,
    fetched_at timestamptz,
    crm_updated_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, crm_source, crm_record_id)
);

-- Who activated which record, why and when.
CREATE TABLE crm.activation_log (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    id bigint GENERATED ALWAYS AS IDENTITY,
    entity_type text NOT NULL CHECK (entity_type IN ('contact', 'company')),
    crm_source text,
    crm_record_id text,
    record_id uuid,
    reason text NOT NULL CHECK (
        reason IN ('copilot', 'meeting_booked', 'enrichment', 'ops_table', 'webhook', 'manual', 'bulk')
    ),
    actor text,
    outcome text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id)
);
CREATE INDEX activation_log_record_idx ON crm.activation_log (org_id, crm_source, crm_record_id);

ALTER TABLE crm.contact_record ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.company_record ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.activation_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY contact_record_app ON crm.contact_record TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY contact_record_worker ON crm.contact_record TO crm_worker USING (TRUE) WITH CHECK (TRUE);
CREATE POLICY company_record_app ON crm.company_record TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY company_record_worker ON crm.company_record TO crm_worker USING (TRUE) WITH CHECK (TRUE);
CREATE POLICY activation_log_app ON crm.activation_log TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY activation_log_worker ON crm.activation_log TO crm_worker USING (TRUE) WITH CHECK (TRUE);
GRANT SELECT, INSERT, UPDATE, DELETE ON crm.contact_record, crm.company_record, crm.activation_log
TO crm_app, crm_worker;

-- Write a fetched contact to tier 2 and mark its index row, in the caller's transaction. p_row holds the
-- typed columns (keys as in crm.contact_record) and p_properties every CRM property. Returns the record id.
CREATE FUNCTION crm.materialize_contact_write(
    p_org_id uuid, p_source text, p_crm_record_id text, p_row jsonb, p_properties jsonb,
    p_crm_updated_at timestamptz DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_index_id bigint;
    v_id uuid;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    SELECT c.id INTO v_index_id FROM crm.contact_index AS c
    WHERE c.org_id = p_org_id AND c.crm_source = p_source AND c.crm_record_id = p_crm_record_id;
    INSERT INTO crm.contact_record AS r (
        org_id, crm_source, crm_record_id, index_id, first_name, last_name, email, phone, company_name,
        company_crm_id, job_title, lifecycle_stage, lead_status, properties, fetched_at, crm_updated_at
    )
    SELECT
        p_org_id, p_source, p_crm_record_id, v_index_id, x.first_name, x.last_name, lower(btrim(x.email)), x.phone,
        x.company_name, x.company_crm_id, x.job_title, x.lifecycle_stage, x.lead_status,
        coalesce(p_properties, '{}'::jsonb), now(), p_crm_updated_at
    FROM jsonb_populate_record(NULL::crm.contact_record, p_row) AS x
    ON CONFLICT (org_id, crm_source, crm_record_id) DO UPDATE SET
        index_id = excluded.index_id, first_name = excluded.first_name, last_name = excluded.last_name,
        email = excluded.email, phone = excluded.phone, company_name = excluded.company_name,
        company_crm_id = excluded.company_crm_id, job_title = excluded.job_title,
        lifecycle_stage = excluded.lifecycle_stage, lead_status = excluded.lead_status,
        properties = excluded.properties, fetched_at = excluded.fetched_at,
        crm_updated_at = excluded.crm_updated_at, deleted_at = NULL, updated_at = now()
    RETURNING r.id INTO v_id;
    UPDATE crm.contact_index AS c
    SET materialized_contact_id = v_id, is_materialized = TRUE, materialized_at = coalesce(c.materialized_at, now())
    WHERE c.org_id = p_org_id AND c.id = v_index_id;
    RETURN v_id;
END
$$;

CREATE FUNCTION crm.materialize_company_write(
    p_org_id uuid, p_source text, p_crm_record_id text, p_row jsonb, p_properties jsonb,
    p_crm_updated_at timestamptz DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_index_id bigint;
    v_id uuid;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    SELECT c.id INTO v_index_id FROM crm.company_index AS c
    WHERE c.org_id = p_org_id AND c.crm_source = p_source AND c.crm_record_id = p_crm_record_id;
    INSERT INTO crm.company_record AS r (
        org_id, crm_source, crm_record_id, index_id, name, domain, industry, properties, fetched_at, crm_updated_at
    )
    SELECT
        p_org_id, p_source, p_crm_record_id, v_index_id, x.name, crm.norm_domain(x.domain), x.industry,
        coalesce(p_properties, '{}'::jsonb), now(), p_crm_updated_at
    FROM jsonb_populate_record(NULL::crm.company_record, p_row) AS x
    ON CONFLICT (org_id, crm_source, crm_record_id) DO UPDATE SET
        index_id = excluded.index_id, name = excluded.name, domain = excluded.domain, industry = excluded.industry,
        properties = excluded.properties, fetched_at = excluded.fetched_at,
        crm_updated_at = excluded.crm_updated_at, deleted_at = NULL, updated_at = now()
    RETURNING r.id INTO v_id;
    UPDATE crm.company_index AS c
    SET materialized_company_id = v_id, is_materialized = TRUE, materialized_at = coalesce(c.materialized_at, now())
    WHERE c.org_id = p_org_id AND c.id = v_index_id;
    RETURN v_id;
END
$$;

-- The brief's "247,000 contacts indexed, 3,200 active" and the rest of an org's health, as one row.
CREATE FUNCTION crm.org_stats(p_org_id uuid)
RETURNS TABLE (
    contacts_indexed bigint, contacts_materialized bigint, contacts_deleted bigint,
    companies_indexed bigint, companies_materialized bigint, deals_indexed bigint,
    writebacks_pending bigint, writebacks_dead bigint, inbox_pending bigint, inbox_dead bigint,
    last_webhook_at timestamptz, sync_state jsonb
)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    RETURN QUERY SELECT
        (SELECT count(*) FROM crm.contact_index AS c WHERE c.org_id = p_org_id AND c.deleted_at IS NULL),
        (SELECT count(*) FROM crm.contact_index AS c WHERE c.org_id = p_org_id AND c.is_materialized
            AND c.deleted_at IS NULL),
        (SELECT count(*) FROM crm.contact_index AS c WHERE c.org_id = p_org_id AND c.deleted_at IS NOT NULL),
        (SELECT count(*) FROM crm.company_index AS c WHERE c.org_id = p_org_id AND c.deleted_at IS NULL),
        (SELECT count(*) FROM crm.company_index AS c WHERE c.org_id = p_org_id AND c.is_materialized
            AND c.deleted_at IS NULL),
        (SELECT count(*) FROM crm.deal_index AS d WHERE d.org_id = p_org_id AND d.deleted_at IS NULL),
        crm.writeback_count(p_org_id, ARRAY['pending', 'processing', 'failed']),
        crm.writeback_count(p_org_id, ARRAY['dead_letter']),
        (SELECT count(*) FROM crm.webhook_inbox AS w WHERE w.org_id = p_org_id
            AND w.status IN ('pending', 'processing', 'failed')),
        (SELECT count(*) FROM crm.webhook_inbox AS w WHERE w.org_id = p_org_id AND w.status = 'dead_letter'),
        (SELECT max(w.received_at) FROM crm.webhook_inbox AS w WHERE w.org_id = p_org_id),
        (
            SELECT coalesce(jsonb_object_agg(s.crm_source || ':' || s.object_type, jsonb_build_object(
                'status', s.status, 'records', s.records, 'pages', s.pages, 'watermark', s.watermark,
                'finished_at', s.finished_at, 'last_error', s.last_error
            )), '{}'::jsonb)
            FROM crm.sync_state AS s WHERE s.org_id = p_org_id
        );
END
$$;

-- The "All CRM Contacts" ops table: slim index columns and the materialized flag (RLS applies).
CREATE VIEW crm.all_crm_contacts WITH (security_invoker = TRUE) AS
SELECT
    c.org_id,
    c.id,
    c.crm_source,
    c.crm_record_id,
    c.first_name,
    c.last_name,
    c.email,
    c.company_name,
    c.job_title,
    c.seniority,
    c.lifecycle_stage,
    c.lead_status,
    c.has_active_deal,
    c.deal_stage,
    c.deal_value,
    c.is_materialized,
    c.materialized_contact_id,
    c.crm_updated_at
FROM crm.contact_index AS c
WHERE c.deleted_at IS NULL;

GRANT SELECT ON crm.all_crm_contacts TO crm_app, crm_worker;

-- Purge rows soft-deleted longer than p_retention ago (index rows, their tier-2 rows, deal links).
CREATE FUNCTION crm.purge_deleted(p_retention interval DEFAULT '30 days')
RETURNS TABLE (contacts integer, companies integer, deals integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_contacts integer;
    v_companies integer;
    v_deals integer;
BEGIN
    WITH gone AS (
        DELETE FROM crm.contact_index AS c WHERE c.deleted_at < now() - p_retention
        RETURNING c.org_id, c.crm_source, c.crm_record_id
    ),
    records AS (
        DELETE FROM crm.contact_record AS r USING gone AS g
        WHERE r.org_id = g.org_id AND r.crm_source = g.crm_source AND r.crm_record_id = g.crm_record_id
        RETURNING 1
    )
    SELECT count(*) INTO v_contacts FROM gone;
    WITH gone AS (
        DELETE FROM crm.company_index AS c WHERE c.deleted_at < now() - p_retention
        RETURNING c.org_id, c.crm_source, c.crm_record_id
    ),
    records AS (
        DELETE FROM crm.company_record AS r USING gone AS g
        WHERE r.org_id = g.org_id AND r.crm_source = g.crm_source AND r.crm_record_id = g.crm_record_id
        RETURNING 1
    )
    SELECT count(*) INTO v_companies FROM gone;
    WITH gone AS (
        DELETE FROM crm.deal_index AS d WHERE d.deleted_at < now() - p_retention
        RETURNING d.org_id, d.crm_source, d.crm_record_id
    ),
    links AS (
        DELETE FROM crm.deal_contact AS dc USING gone AS g
        WHERE dc.org_id = g.org_id AND dc.crm_source = g.crm_source AND dc.deal_crm_id = g.crm_record_id
        RETURNING 1
    )
    SELECT count(*) INTO v_deals FROM gone;
    RETURN QUERY SELECT v_contacts, v_companies, v_deals;
END
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA crm TO crm_app, crm_worker;
