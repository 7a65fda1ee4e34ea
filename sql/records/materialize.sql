-- records/materialize.sql: tier 2, full records of active contacts and companies.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- Write a fetched contact to tier 2 and mark its index row, in the caller's transaction. p_row holds the
-- typed columns (keys as in crm.contact_record) and p_properties every CRM property. Returns the record id.
CREATE OR REPLACE FUNCTION crm.materialize_contact_write(
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

CREATE OR REPLACE FUNCTION crm.materialize_company_write(
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

-- The "All CRM Contacts" ops table: slim index columns and the materialized flag (RLS applies).
CREATE OR REPLACE VIEW crm.all_crm_contacts WITH (security_invoker = TRUE) AS
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
