-- records/materialize.sql: tier 2, full records of active contacts and companies.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- What both tier-2 writes check first (the org; the typed values of p_row within crm.text_cap, p_properties
-- within 1 MB of JSON text), and the id of the record's row in p_index (NULL when it is not indexed).
CREATE OR REPLACE FUNCTION crm.materialize_index_id(
    p_org_id uuid, p_index regclass, p_source text, p_crm_record_id text, p_row jsonb, p_properties jsonb
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_index_id bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_text_fields('row', p_row);
    PERFORM crm.check_json_size('properties', p_properties, 'properties');
    EXECUTE format(
        'SELECT i.id FROM %s AS i WHERE i.org_id = $1 AND i.crm_source = $2 AND i.crm_record_id = $3', p_index
    ) INTO v_index_id USING p_org_id, p_source, p_crm_record_id;
    RETURN v_index_id;
END
$$;

-- Write a fetched contact to tier 2 and mark its index row, in the caller's transaction. p_row holds the
-- typed columns (keys as in crm.contact_record, each within crm.text_cap) and p_properties every CRM property
-- (at most 1 MB of JSON text). Returns the record id. Workers only (platform/grants.sql).
CREATE OR REPLACE FUNCTION crm.materialize_contact_write(
    p_org_id uuid, p_source text, p_crm_record_id text, p_row jsonb, p_properties jsonb,
    p_crm_updated_at timestamptz DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_index_id bigint := crm.materialize_index_id(
        p_org_id, 'crm.contact_index', p_source, p_crm_record_id, p_row, p_properties
    );
    v_id uuid;
BEGIN
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

-- The same for a company (crm.company_record, crm.company_index).
CREATE OR REPLACE FUNCTION crm.materialize_company_write(
    p_org_id uuid, p_source text, p_crm_record_id text, p_row jsonb, p_properties jsonb,
    p_crm_updated_at timestamptz DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_index_id bigint := crm.materialize_index_id(
        p_org_id, 'crm.company_index', p_source, p_crm_record_id, p_row, p_properties
    );
    v_id uuid;
BEGIN
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

-- Record an activation (who materialized which record, why, with what outcome) in the caller's transaction.
-- Workers only: the application's activations are logged by the API functions that make them.
CREATE OR REPLACE FUNCTION crm.log_activation(
    p_org_id uuid, p_entity_type text, p_source text, p_crm_record_id text, p_record_id uuid, p_reason text,
    p_actor text, p_outcome text, p_detail jsonb DEFAULT '{}'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_text_size('actor', p_actor, crm.input_cap('name'));
    PERFORM crm.check_text_size('outcome', p_outcome);
    PERFORM crm.check_text_size('crm_record_id', p_crm_record_id);
    PERFORM crm.check_json_size('detail', p_detail, 'payload');
    INSERT INTO crm.activation_log AS a (
        org_id, entity_type, crm_source, crm_record_id, record_id, reason, actor, outcome, detail
    )
    VALUES (
        p_org_id, p_entity_type, p_source, p_crm_record_id, p_record_id, p_reason, p_actor, p_outcome,
        coalesce(p_detail, '{}')
    )
    RETURNING a.id INTO v_id;
    RETURN v_id;
END
$$;

-- A contact the CRM no longer has (a fetch found nothing), or merged into p_merged_into: soft-delete its index
-- row (crm.apply_deletions, stamped now) and its tier-2 record, in the caller's transaction. Workers only.
CREATE OR REPLACE FUNCTION crm.materialize_contact_gone(
    p_org_id uuid, p_source text, p_crm_record_id text, p_merged_into text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM d.crm_record_id FROM crm.apply_deletions(
        p_org_id, p_source, 'crm.contact_index', jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
            'crm_record_id', p_crm_record_id, 'occurred_at', clock_timestamp(), 'merged_into', p_merged_into
        )))
    ) AS d;
    UPDATE crm.contact_record AS r SET deleted_at = now()
    WHERE r.org_id = p_org_id AND r.crm_source = p_source AND r.crm_record_id = p_crm_record_id;
END
$$;

-- The application asks for full records; workers fetch them. Queues one 'materialize' job per contact (the
-- queue core's crm.job; payload {"crm_record_id", "reason", "actor"}, dedupe key contact:<crm>:<id>, so asking
-- twice before the fetch queues it once), in the order given, for crmindex.records.materialize's
-- materialize_jobs_handler, which fetches them in batches within the org's materialization budget.
-- p_refs as for crm.resolve_contact_refs (at most 1,000; a contact named twice is queued once); p_source limits
-- CRM ids and emails to one CRM; p_reason as in crm.activation_log. Returns, per reference, the contact and its
-- job. An unknown reference is CX004 and queues nothing. An API function of crm_app: SECURITY DEFINER.
CREATE OR REPLACE FUNCTION crm.request_materialization(
    p_org_id uuid, p_refs text[], p_reason text DEFAULT 'copilot', p_actor text DEFAULT NULL,
    p_source text DEFAULT NULL
) RETURNS TABLE (ref text, index_id bigint, crm_source text, crm_record_id text, job_id bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rows jsonb;
    v_missing text;
    v_target record;
    v_jobs jsonb := '{}';
    v_job bigint;
    v_key text;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_reason IS NULL
        OR p_reason NOT IN ('copilot', 'meeting_booked', 'enrichment', 'ops_table', 'webhook', 'manual', 'bulk') THEN
        RAISE EXCEPTION 'reason must be one of copilot, meeting_booked, enrichment, ops_table, webhook, manual, bulk'
            USING ERRCODE = 'CX002';
    END IF;
    IF p_source IS NOT NULL THEN
        PERFORM crm.check_source(p_source);
    END IF;
    PERFORM crm.check_text_size('actor', p_actor, crm.input_cap('name'));
    IF coalesce(cardinality(p_refs), 0) = 0 THEN
        RAISE EXCEPTION 'no contact to materialize' USING ERRCODE = 'CX002';
    END IF;
    SELECT jsonb_agg(to_jsonb(r.*) ORDER BY r.ord) INTO v_rows
    FROM crm.resolve_contact_refs(p_org_id, p_refs, p_source) AS r;
    SELECT x.e ->> 'ref' INTO v_missing FROM jsonb_array_elements(v_rows) AS x (e)
    WHERE x.e -> 'id' = 'null'::jsonb LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'no indexed contact matches % in this org', quote_literal(left(btrim(v_missing), 80))
            USING ERRCODE = 'CX004';
    END IF;
    -- one job per contact, enqueued one by one so that job ids (the queue's tie-break) keep the order
    FOR v_target IN SELECT x.e FROM jsonb_array_elements(v_rows) AS x (e) LOOP
        v_key := 'contact:' || (v_target.e ->> 'crm_source') || ':' || (v_target.e ->> 'crm_record_id');
        IF NOT v_jobs ? v_key THEN
            v_job := crm.enqueue_job(
                p_org_id, 'materialize',
                jsonb_build_object('crm_record_id', v_target.e ->> 'crm_record_id', 'reason', p_reason, 'actor', p_actor),
                v_target.e ->> 'crm_source', v_key
            );
            v_jobs := v_jobs || jsonb_build_object(v_key, v_job);
        END IF;
    END LOOP;
    RETURN QUERY
    SELECT x.e ->> 'ref', (x.e ->> 'id')::bigint, x.e ->> 'crm_source', x.e ->> 'crm_record_id',
        (v_jobs ->> ('contact:' || (x.e ->> 'crm_source') || ':' || (x.e ->> 'crm_record_id')))::bigint
    FROM jsonb_array_elements(v_rows) WITH ORDINALITY AS x (e, n) ORDER BY x.n;
END
$$;

-- The meeting-booked path for someone not in the index: a local tier-2 contact (origin 'local', one per
-- email: a second call fills in missing names), optionally an idempotent CRM create of it (p_create_in_crm:
-- 'hubspot' or 'attio', crm.create_contact), and the activation logged. p_name: "First Last". Returns the
-- record and the create's write-back job (NULL without one). An API function of crm_app: SECURITY DEFINER.
CREATE OR REPLACE FUNCTION crm.activate_local_contact(
    p_org_id uuid, p_email text, p_name text DEFAULT NULL, p_reason text DEFAULT 'meeting_booked',
    p_actor text DEFAULT NULL, p_create_in_crm text DEFAULT NULL
) RETURNS TABLE (record_id uuid, job_id bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_email text := lower(btrim(p_email));
    v_name text := btrim(coalesce(p_name, ''));
    v_first text;
    v_last text;
    v_id uuid;
    v_job bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF v_email IS NULL OR NOT crm.is_email(v_email) OR length(v_email) > crm.text_cap('email') THEN
        RAISE EXCEPTION 'not an email address: %', quote_literal(left(coalesce(p_email, ''), 80))
            USING ERRCODE = 'CX002', DETAIL = 'field=email';
    END IF;
    PERFORM crm.check_text_size('name', v_name, crm.input_cap('name'));
    PERFORM crm.check_text_size('actor', p_actor, crm.input_cap('name'));
    IF p_reason IS NULL
        OR p_reason NOT IN ('copilot', 'meeting_booked', 'enrichment', 'ops_table', 'webhook', 'manual', 'bulk') THEN
        RAISE EXCEPTION 'reason must be one of copilot, meeting_booked, enrichment, ops_table, webhook, manual, bulk'
            USING ERRCODE = 'CX002';
    END IF;
    v_first := nullif(split_part(v_name, ' ', 1), '');
    v_last := nullif(CASE WHEN strpos(v_name, ' ') > 0 THEN substr(v_name, strpos(v_name, ' ') + 1) END, '');
    INSERT INTO crm.contact_record AS r (org_id, origin, email, first_name, last_name)
    VALUES (p_org_id, 'local', v_email, v_first, v_last)
    ON CONFLICT (org_id, lower(email)) WHERE origin = 'local'
    DO UPDATE SET first_name = coalesce(r.first_name, excluded.first_name),
        last_name = coalesce(r.last_name, excluded.last_name), updated_at = now()
    RETURNING r.id INTO v_id;
    IF p_create_in_crm IS NOT NULL THEN
        SELECT c.job_id INTO v_job FROM crm.create_contact(
            p_org_id, p_create_in_crm,
            jsonb_strip_nulls(jsonb_build_object('email', v_email, 'first_name', v_first, 'last_name', v_last)),
            'automation'
        ) AS c;
    END IF;
    INSERT INTO crm.activation_log (org_id, entity_type, record_id, reason, actor, outcome, detail)
    VALUES (
        p_org_id, 'contact', v_id, p_reason, p_actor, 'local',
        jsonb_build_object('crm_create_job', v_job, 'email', v_email)
    );
    RETURN QUERY SELECT v_id, v_job;
END
$$;

-- Store an enrichment provider's payload on a tier-2 contact: enrichment.<provider> = {"fetched_at", "data"}
-- (a later payload of the same provider replaces it). p_provider: a short name (apollo, ai_ark, apify: letters,
-- digits, _ and -, at most 40); p_payload: a JSON object of at most 256 KB, and the record's enrichment stays
-- within 1 MB. An API function of crm_app: SECURITY DEFINER.
CREATE OR REPLACE FUNCTION crm.store_enrichment(p_org_id uuid, p_record_id uuid, p_provider text, p_payload jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_size integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_provider IS NULL OR p_provider !~ '^[A-Za-z0-9_-]{1,40}$' OR p_provider !~ '[A-Za-z0-9]' THEN
        RAISE EXCEPTION 'provider is a short name such as apollo, ai_ark, apify' USING ERRCODE = 'CX002';
    END IF;
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        RAISE EXCEPTION 'an enrichment payload is a JSON object' USING ERRCODE = 'CX002';
    END IF;
    PERFORM crm.check_json_size('payload', p_payload, 'enrichment');
    UPDATE crm.contact_record AS r
    SET enrichment = r.enrichment || jsonb_build_object(
            p_provider, jsonb_build_object('fetched_at', clock_timestamp(), 'data', p_payload)
        ),
        updated_at = now()
    WHERE r.org_id = p_org_id AND r.id = p_record_id
    RETURNING octet_length(r.enrichment::text) INTO v_size;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no tier-2 contact %', p_record_id USING ERRCODE = 'CX004';
    END IF;
    IF v_size > crm.input_cap('enrichment_total') THEN
        RAISE EXCEPTION 'payload: the enrichment of this contact would hold more than % bytes of JSON (%)',
            crm.input_cap('enrichment_total'), v_size USING ERRCODE = 'CX002', DETAIL = 'field=payload';
    END IF;
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
