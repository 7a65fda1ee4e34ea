-- writeback/records.sql: deals and companies changed locally now and queued for the CRM, and what happens to the
-- index when a write-back dead-letters (issue 16). Current definitions, re-applied after the migrations whenever
-- this file changes (sql/README.md).

------------------------------------------------------------------------------------------------------------
-- Deals
------------------------------------------------------------------------------------------------------------

-- The stage id of p_stage (a label such as 'Negotiation', matched case-insensitively, or a stage id) in the org's
-- vocabulary (crm.crm_pipeline_stage, refreshed by freshness/metadata.sql) for a deal of pipeline p_pipeline (NULL:
-- any pipeline). CX002 when no stage or more than one stage matches (naming the stages it knows).
CREATE OR REPLACE FUNCTION crm.resolve_deal_stage(p_org_id uuid, p_source text, p_pipeline text, p_stage text)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_ids text[];
    v_known text;
BEGIN
    SELECT array_agg(DISTINCT s.stage_id) INTO v_ids
    FROM crm.crm_pipeline_stage AS s
    WHERE s.org_id = p_org_id AND s.crm_source = p_source AND s.object_type = 'deals' AND NOT s.archived
        AND (p_pipeline IS NULL OR s.pipeline_id = p_pipeline)
        AND (lower(btrim(s.stage_label)) = lower(btrim(p_stage)) OR s.stage_id = btrim(p_stage));
    IF cardinality(v_ids) = 1 THEN
        RETURN v_ids[1];
    END IF;
    SELECT string_agg(DISTINCT s.stage_label, ', ') INTO v_known
    FROM crm.crm_pipeline_stage AS s
    WHERE s.org_id = p_org_id AND s.crm_source = p_source AND s.object_type = 'deals' AND NOT s.archived
        AND (p_pipeline IS NULL OR s.pipeline_id = p_pipeline);
    IF v_ids IS NULL THEN
        RAISE EXCEPTION 'no deal stage % in %', quote_literal(left(p_stage, 80)),
            CASE WHEN p_pipeline IS NULL THEN 'any pipeline' ELSE 'pipeline ' || quote_literal(p_pipeline) END
            USING ERRCODE = 'CX002', DETAIL = 'field=stage',
                HINT = coalesce('known stages: ' || left(v_known, 800), 'no pipelines are known yet (sync the metadata)');
    END IF;
    RAISE EXCEPTION 'deal stage % is ambiguous: % stages of different pipelines are called so',
        quote_literal(left(p_stage, 80)), cardinality(v_ids) USING ERRCODE = 'CX002', DETAIL = 'field=stage';
END
$$;

-- Change an indexed deal now and queue the CRM write (the copilot's "move the Acme deal to Negotiation").
-- p_ref: the index id ('#12') or the CRM record id; p_fields: any of name, stage (a label of the deal's pipeline or
-- a stage id: crm.resolve_deal_stage), amount (a number), close_date (YYYY-MM-DD; HubSpot only). The index row
-- changes at once (stage_label follows through the derive trigger; its contacts' deal summaries through
-- crm.refresh_contact_deals), the changed columns are stamped in field_versions, the CRM payload is mapped now
-- (HubSpot: dealname, dealstage, amount, closedate; Attio: name, stage as its status id, value) and coalesces into
-- the deal's open update. Refused, changing nothing: another org (CX003), an unknown deal (CX004), anything invalid
-- (CX002). An API function of crm_app: SECURITY DEFINER.
CREATE OR REPLACE FUNCTION crm.update_deal(
    p_org_id uuid, p_ref text, p_fields jsonb, p_triggered_by text DEFAULT 'copilot', p_user_id uuid DEFAULT NULL,
    p_priority smallint DEFAULT 5
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deal crm.deal_index;
    v_unknown text[];
    v_cols jsonb := '{}';
    v_payload jsonb := '{}';
    v_versions jsonb;
    v_text text;
    v_num numeric;
    v_date date;
    v_job bigint;
    v_contacts text[];
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_fields IS NULL OR jsonb_typeof(p_fields) <> 'object' OR p_fields = '{}'::jsonb THEN
        RAISE EXCEPTION 'fields must be a non-empty JSON object of deal fields' USING ERRCODE = 'CX002';
    END IF;
    PERFORM crm.check_json_size('fields', p_fields, 'payload');
    SELECT array_agg(left(k, 100) ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(p_fields) AS k WHERE k NOT IN ('name', 'stage', 'amount', 'close_date');
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'cannot update % of a deal: writable fields are name, stage, amount, close_date',
            array_to_string(v_unknown, ', ') USING ERRCODE = 'CX002';
    END IF;
    IF p_priority IS NULL OR p_priority NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'priority is 1 (highest) to 10' USING ERRCODE = 'CX002';
    END IF;
    PERFORM crm.check_text_size('ref', p_ref, 200);
    SELECT d.* INTO v_deal FROM crm.deal_index AS d
    WHERE d.org_id = p_org_id AND (d.crm_record_id = btrim(p_ref) OR ('#' || d.id::text) = btrim(p_ref))
    ORDER BY d.id LIMIT 1
    FOR UPDATE;
    IF v_deal.id IS NULL THEN
        RAISE EXCEPTION 'no indexed deal matches % in this org', quote_literal(left(btrim(p_ref), 80))
            USING ERRCODE = 'CX004';
    END IF;
    IF v_deal.deleted_at IS NOT NULL THEN
        RAISE EXCEPTION 'deal % is deleted in the CRM', v_deal.crm_record_id USING ERRCODE = 'CX002';
    END IF;
    IF p_fields ? 'name' THEN
        v_text := nullif(btrim(p_fields ->> 'name'), '');
        IF v_text IS NULL THEN
            RAISE EXCEPTION 'a deal needs a name' USING ERRCODE = 'CX002', DETAIL = 'field=name';
        END IF;
        PERFORM crm.check_text_size('name', v_text);
        v_cols := v_cols || jsonb_build_object('name', v_text);
        v_payload := v_payload || CASE v_deal.crm_source WHEN 'hubspot' THEN jsonb_build_object('dealname', v_text)
            ELSE jsonb_build_object('name', v_text) END;
    END IF;
    IF p_fields ? 'stage' THEN
        v_text := nullif(btrim(p_fields ->> 'stage'), '');
        IF v_text IS NULL OR jsonb_typeof(p_fields -> 'stage') <> 'string' THEN
            RAISE EXCEPTION 'stage must be a stage label or id' USING ERRCODE = 'CX002', DETAIL = 'field=stage';
        END IF;
        PERFORM crm.check_text_size('stage', v_text);
        v_text := crm.resolve_deal_stage(p_org_id, v_deal.crm_source, v_deal.pipeline, v_text);
        v_cols := v_cols || jsonb_build_object('stage', v_text);
        v_payload := v_payload || CASE v_deal.crm_source WHEN 'hubspot' THEN jsonb_build_object('dealstage', v_text)
            ELSE jsonb_build_object('stage', jsonb_build_array(jsonb_build_object('status', v_text))) END;
    END IF;
    IF p_fields ? 'amount' THEN
        BEGIN
            v_num := CASE WHEN jsonb_typeof(p_fields -> 'amount') IN ('number', 'string')
                THEN (p_fields ->> 'amount')::numeric END;
        EXCEPTION WHEN data_exception THEN
            v_num := NULL;
        END;
        IF v_num IS NULL OR v_num < 0 OR v_num >= 1e15 THEN
            RAISE EXCEPTION 'amount must be a number from 0 to 10^15' USING ERRCODE = 'CX002', DETAIL = 'field=amount';
        END IF;
        v_cols := v_cols || jsonb_build_object('amount', v_num);
        v_payload := v_payload || CASE v_deal.crm_source WHEN 'hubspot' THEN jsonb_build_object('amount', v_num::text)
            ELSE jsonb_build_object('value', v_num) END;
    END IF;
    IF p_fields ? 'close_date' THEN
        IF v_deal.crm_source <> 'hubspot' THEN
            RAISE EXCEPTION 'Attio deals have no close date attribute' USING ERRCODE = 'CX002', DETAIL = 'field=close_date';
        END IF;
        BEGIN
            v_date := (p_fields ->> 'close_date')::date;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'close_date must be a date (YYYY-MM-DD)' USING ERRCODE = 'CX002', DETAIL = 'field=close_date';
        END;
        v_cols := v_cols || jsonb_build_object('close_date', v_date);
        v_payload := v_payload || jsonb_build_object('closedate', coalesce(v_date::text, ''));
    END IF;
    SELECT jsonb_object_agg(k, clock_timestamp()) INTO v_versions FROM jsonb_object_keys(v_cols) AS k;

    UPDATE crm.deal_index AS d SET
        (name, stage, amount, close_date) = (
            SELECT x.name, x.stage, x.amount, x.close_date FROM jsonb_populate_record(d, v_cols) AS x
        ),
        field_versions = coalesce(d.field_versions, '{}'::jsonb) || v_versions,
        updated_at = now()
    WHERE d.org_id = p_org_id AND d.id = v_deal.id;
    SELECT array_agg(dc.contact_crm_id) INTO v_contacts FROM crm.deal_contact AS dc
    WHERE dc.org_id = p_org_id AND dc.crm_source = v_deal.crm_source AND dc.deal_crm_id = v_deal.crm_record_id
        AND NOT dc.removed;
    IF v_contacts IS NOT NULL THEN
        PERFORM crm.refresh_contact_deals(p_org_id, v_deal.crm_source, v_contacts);
    END IF;
    v_job := crm.enqueue_writeback(
        p_org_id, v_deal.crm_source, 'deal', v_deal.crm_record_id, 'update', v_payload, p_triggered_by, p_user_id,
        p_priority
    );
    RETURN QUERY SELECT v_job, v_deal.crm_source::text, v_deal.crm_record_id::text, v_payload;
END
$$;

-- Queue an idempotent CRM create of a deal: p_fields name (required), stage (a label or id; default: the
-- pipeline's first stage), pipeline (a label or id; HubSpot default 'default', Attio 'stage'), amount, close_date
-- (HubSpot). Neither CRM has a unique deal property, so the match key is the name in its pipeline: creates of one
-- key coalesce while queued, and the writers search the CRM for a deal of that name (in that pipeline) before
-- creating, so the same create queued twice makes one deal (a stage defaulted, listed in the payload's
-- "defaulted", is sent to a new deal only). Nothing changes locally (the deal enters the index
-- when the CRM reports it: crm.writeback_after_create). An API function of crm_app: SECURITY DEFINER.
CREATE OR REPLACE FUNCTION crm.create_deal(
    p_org_id uuid, p_source text, p_fields jsonb, p_triggered_by text DEFAULT 'copilot', p_user_id uuid DEFAULT NULL,
    p_priority smallint DEFAULT 5
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_unknown text[];
    v_name text;
    v_pipeline text;
    v_stage text;
    v_num numeric;
    v_date date;
    v_payload jsonb;
    v_job bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    IF p_fields IS NULL OR jsonb_typeof(p_fields) <> 'object' THEN
        RAISE EXCEPTION 'fields must be a JSON object of deal fields' USING ERRCODE = 'CX002';
    END IF;
    PERFORM crm.check_json_size('fields', p_fields, 'payload');
    SELECT array_agg(left(k, 100) ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(p_fields) AS k WHERE k NOT IN ('name', 'stage', 'pipeline', 'amount', 'close_date');
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'cannot set % on a new deal: fields are name, stage, pipeline, amount, close_date',
            array_to_string(v_unknown, ', ') USING ERRCODE = 'CX002';
    END IF;
    v_name := crm.check_text_size('name', nullif(btrim(p_fields ->> 'name'), ''));
    IF v_name IS NULL THEN
        RAISE EXCEPTION 'a new deal needs a name (with its pipeline, the idempotency key)'
            USING ERRCODE = 'CX002', DETAIL = 'field=name';
    END IF;
    v_pipeline := crm.check_text_size('pipeline', nullif(btrim(p_fields ->> 'pipeline'), ''));
    IF v_pipeline IS NOT NULL THEN
        SELECT min(s.pipeline_id) INTO v_pipeline FROM crm.crm_pipeline_stage AS s
        WHERE s.org_id = p_org_id AND s.crm_source = p_source AND s.object_type = 'deals' AND NOT s.archived
            AND (s.pipeline_id = v_pipeline OR lower(s.pipeline_label) = lower(v_pipeline));
        IF v_pipeline IS NULL THEN
            RAISE EXCEPTION 'no deal pipeline %', quote_literal(left(p_fields ->> 'pipeline', 80))
                USING ERRCODE = 'CX002', DETAIL = 'field=pipeline';
        END IF;
    ELSE
        v_pipeline := CASE p_source WHEN 'hubspot' THEN 'default' ELSE 'stage' END;
    END IF;
    IF nullif(btrim(p_fields ->> 'stage'), '') IS NOT NULL THEN
        v_stage := crm.resolve_deal_stage(p_org_id, p_source, v_pipeline, crm.check_text_size('stage', p_fields ->> 'stage'));
    ELSE
        SELECT s.stage_id INTO v_stage FROM crm.crm_pipeline_stage AS s
        WHERE s.org_id = p_org_id AND s.crm_source = p_source AND s.object_type = 'deals' AND NOT s.archived
            AND s.pipeline_id = v_pipeline
        ORDER BY s.display_order NULLS LAST, s.stage_id LIMIT 1;
        IF v_stage IS NULL THEN
            RAISE EXCEPTION 'say the new deal''s stage (no stages of its pipeline are known yet)'
                USING ERRCODE = 'CX002', DETAIL = 'field=stage';
        END IF;
    END IF;
    IF p_fields ? 'amount' AND jsonb_typeof(p_fields -> 'amount') <> 'null' THEN
        BEGIN
            v_num := (p_fields ->> 'amount')::numeric;
        EXCEPTION WHEN data_exception THEN
            v_num := -1;
        END;
        IF v_num < 0 OR v_num >= 1e15 THEN
            RAISE EXCEPTION 'amount must be a number from 0 to 10^15' USING ERRCODE = 'CX002', DETAIL = 'field=amount';
        END IF;
    END IF;
    IF p_fields ? 'close_date' AND jsonb_typeof(p_fields -> 'close_date') <> 'null' THEN
        IF p_source <> 'hubspot' THEN
            RAISE EXCEPTION 'Attio deals have no close date attribute' USING ERRCODE = 'CX002', DETAIL = 'field=close_date';
        END IF;
        BEGIN
            v_date := (p_fields ->> 'close_date')::date;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'close_date must be a date (YYYY-MM-DD)' USING ERRCODE = 'CX002', DETAIL = 'field=close_date';
        END;
    END IF;
    IF p_source = 'hubspot' THEN
        v_payload := jsonb_strip_nulls(jsonb_build_object(
            'dealname', v_name, 'pipeline', v_pipeline, 'dealstage', v_stage, 'amount', v_num::text,
            'closedate', v_date::text
        ));
    ELSE
        v_payload := jsonb_strip_nulls(jsonb_build_object(
            'name', v_name, 'stage', jsonb_build_array(jsonb_build_object('status', v_stage)), 'value', v_num
        ));
    END IF;
    IF nullif(btrim(p_fields ->> 'stage'), '') IS NULL THEN
        -- a default the writers send only to a new deal (an existing one keeps its stage)
        v_payload := v_payload || jsonb_build_object(
            'defaulted', jsonb_build_array(CASE p_source WHEN 'hubspot' THEN 'dealstage' ELSE 'stage' END)
        );
    END IF;
    v_job := crm.enqueue_writeback(
        p_org_id, p_source, 'deal', NULL, 'create', v_payload, p_triggered_by, p_user_id, p_priority,
        left(v_pipeline || ':' || lower(v_name), 320)
    );
    RETURN QUERY SELECT v_job, p_source, NULL::text, v_payload;
END
$$;

------------------------------------------------------------------------------------------------------------
-- Companies
------------------------------------------------------------------------------------------------------------

-- The CRM payload of company fields {name, domain} (normalized: trimmed, the domain lower-cased without scheme,
-- path or 'www.'). HubSpot: name, domain; Attio: name, domains (a list: [] clears).
CREATE OR REPLACE FUNCTION crm.writeback_company_payload(p_source text, p_fields jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_out jsonb := '{}';
    v_unknown text[];
    v_name text;
    v_domain text;
BEGIN
    IF p_fields IS NULL OR jsonb_typeof(p_fields) <> 'object' OR p_fields = '{}'::jsonb THEN
        RAISE EXCEPTION 'fields must be a non-empty JSON object of company fields' USING ERRCODE = 'CX002';
    END IF;
    SELECT array_agg(left(k, 100) ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(p_fields) AS k WHERE k NOT IN ('name', 'domain');
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'cannot write % of a company: writable fields are name, domain',
            array_to_string(v_unknown, ', ') USING ERRCODE = 'CX002';
    END IF;
    IF p_fields ? 'name' THEN
        v_name := crm.check_text_size('name', nullif(btrim(p_fields ->> 'name'), ''));
        v_out := v_out || jsonb_build_object('name', coalesce(v_name, ''));
    END IF;
    IF p_fields ? 'domain' THEN
        v_domain := crm.check_text_size('domain', crm.norm_domain(p_fields ->> 'domain'));
        IF v_domain IS NOT NULL AND v_domain !~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$' THEN
            RAISE EXCEPTION 'domain % is not a domain name', quote_literal(left(v_domain, 80))
                USING ERRCODE = 'CX002', DETAIL = 'field=domain';
        END IF;
        v_out := v_out || CASE p_source WHEN 'hubspot' THEN jsonb_build_object('domain', coalesce(v_domain, ''))
            ELSE jsonb_build_object('domains', CASE WHEN v_domain IS NULL THEN '[]'::jsonb
                ELSE jsonb_build_array(jsonb_build_object('domain', v_domain)) END) END;
    END IF;
    RETURN v_out;
END
$$;

-- Change an indexed company now and queue the CRM write. p_ref: the index id ('#12'), the CRM record id or the
-- domain; p_fields: name and / or domain. As crm.update_deal for the rest. An API function of crm_app.
CREATE OR REPLACE FUNCTION crm.update_company(
    p_org_id uuid, p_ref text, p_fields jsonb, p_triggered_by text DEFAULT 'copilot', p_user_id uuid DEFAULT NULL,
    p_priority smallint DEFAULT 5
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_target record;
    v_payload jsonb;
    v_cols jsonb := '{}';
    v_versions jsonb;
    v_job bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_json_size('fields', p_fields, 'payload');
    IF p_priority IS NULL OR p_priority NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'priority is 1 (highest) to 10' USING ERRCODE = 'CX002';
    END IF;
    SELECT t.crm_source, t.crm_record_id INTO v_target FROM crm.activity_target(p_org_id, 'company', p_ref) AS t;
    v_payload := crm.writeback_company_payload(v_target.crm_source, p_fields);
    IF p_fields ? 'name' THEN
        v_cols := v_cols || jsonb_build_object('name', nullif(btrim(p_fields ->> 'name'), ''));
    END IF;
    IF p_fields ? 'domain' THEN
        v_cols := v_cols || jsonb_build_object('domain', crm.norm_domain(p_fields ->> 'domain'));
    END IF;
    SELECT jsonb_object_agg(k, clock_timestamp()) INTO v_versions FROM jsonb_object_keys(v_cols) AS k;
    UPDATE crm.company_index AS c SET
        (name, domain) = (SELECT x.name, x.domain FROM jsonb_populate_record(c, v_cols) AS x),
        field_versions = coalesce(c.field_versions, '{}'::jsonb) || v_versions,
        updated_at = now()
    WHERE c.org_id = p_org_id AND c.crm_source = v_target.crm_source AND c.crm_record_id = v_target.crm_record_id;
    v_job := crm.enqueue_writeback(
        p_org_id, v_target.crm_source, 'company', v_target.crm_record_id, 'update', v_payload, p_triggered_by,
        p_user_id, p_priority
    );
    RETURN QUERY SELECT v_job, v_target.crm_source::text, v_target.crm_record_id::text, v_payload;
END
$$;

-- Queue an idempotent CRM create of a company, matched by its domain (the match key): creates of one domain
-- coalesce while queued, and the writers search the CRM by domain before creating (HubSpot: domain is not a
-- unique property; Attio: assert by domains), so the same create queued twice makes one company. Nothing changes
-- locally (the company enters the index when the CRM reports it). An API function of crm_app.
CREATE OR REPLACE FUNCTION crm.create_company(
    p_org_id uuid, p_source text, p_fields jsonb, p_triggered_by text DEFAULT 'copilot', p_user_id uuid DEFAULT NULL,
    p_priority smallint DEFAULT 5
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_payload jsonb;
    v_domain text;
    v_job bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    PERFORM crm.check_json_size('fields', p_fields, 'payload');
    v_domain := crm.norm_domain(CASE WHEN jsonb_typeof(p_fields) = 'object' THEN p_fields ->> 'domain' END);
    IF v_domain IS NULL THEN
        RAISE EXCEPTION 'creating a CRM company needs a domain (the idempotency key)'
            USING ERRCODE = 'CX002', DETAIL = 'field=domain';
    END IF;
    v_payload := crm.writeback_company_payload(p_source, p_fields);
    IF p_source = 'hubspot' THEN
        v_payload := v_payload - 'domain';  -- the writer searches by the match key and sets the domain itself
    END IF;
    IF v_payload = '{}'::jsonb THEN
        v_payload := jsonb_build_object('name', v_domain);
    END IF;
    v_job := crm.enqueue_writeback(
        p_org_id, p_source, 'company', NULL, 'create', v_payload, p_triggered_by, p_user_id, p_priority, v_domain
    );
    RETURN QUERY SELECT v_job, p_source, NULL::text, v_payload;
END
$$;

------------------------------------------------------------------------------------------------------------
-- Honest failure
------------------------------------------------------------------------------------------------------------

-- A write-back job dead-lettered: the index must not keep showing a value the CRM never took. For an update of a
-- contact / company / deal the stamps its local change left in field_versions go (those of a newer open job of
-- the record stay), and the record is queued for hydration (crm.enqueue_hydration): the refetch writes the CRM's
-- values over the optimistic ones. Every dead letter is logged in crm.activation_log (reason 'writeback', outcome
-- 'dead_letter', the error) beside crm.org_stats' writebacks_dead and `crmindex status`. Idempotent per job.
CREATE OR REPLACE FUNCTION crm.writeback_after_dead(p_org_id uuid, p_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_job crm.writeback_queue;
    v_newer timestamptz;
    v_table text;
BEGIN
    SELECT w.* INTO v_job FROM crm.writeback_queue AS w
    WHERE w.org_id = p_org_id AND w.id = p_id AND w.status = 'dead_letter';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_job.operation = 'update' AND v_job.entity_type IN ('contact', 'company', 'deal') THEN
        v_table := format('crm.%I', v_job.entity_type || '_index');
        SELECT min(w.created_at) INTO v_newer FROM crm.writeback_queue AS w
        WHERE w.org_id = p_org_id AND w.crm_source = v_job.crm_source AND w.entity_type = v_job.entity_type
            AND w.crm_record_id = v_job.crm_record_id AND w.id > v_job.id
            AND w.status IN ('pending', 'processing', 'failed');
        EXECUTE format(
            $f$
            UPDATE %s AS t SET field_versions = (
                SELECT jsonb_object_agg(f.key, f.value) FROM jsonb_each(t.field_versions) AS f
                WHERE (f.value #>> '{}')::timestamptz < $4 OR (f.value #>> '{}')::timestamptz >= $5
            )
            WHERE t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = $3 AND t.field_versions IS NOT NULL
            $f$,
            v_table
        ) USING p_org_id, v_job.crm_source, v_job.crm_record_id, v_job.created_at, coalesce(v_newer, 'infinity');
        PERFORM crm.enqueue_hydration(
            p_org_id, v_job.crm_source,
            CASE v_job.entity_type WHEN 'contact' THEN 'contacts' WHEN 'company' THEN 'companies' ELSE 'deals' END,
            ARRAY[v_job.crm_record_id]
        );
    END IF;
    INSERT INTO crm.activation_log (
        org_id, entity_type, crm_source, crm_record_id, reason, actor, outcome, detail
    )
    SELECT p_org_id, v_job.entity_type, v_job.crm_source, coalesce(v_job.crm_record_id, v_job.match_key), 'writeback',
        v_job.triggered_by, 'dead_letter',
        jsonb_build_object(
            'job_id', v_job.id, 'operation', v_job.operation, 'error', left(v_job.last_error, 1000),
            'refetch', v_job.operation = 'update' AND v_job.entity_type <> 'activity'
        )
    WHERE NOT EXISTS (
        SELECT FROM crm.activation_log AS a
        WHERE a.org_id = p_org_id AND a.reason = 'writeback' AND (a.detail ->> 'job_id')::bigint = v_job.id
    );
END
$$;

------------------------------------------------------------------------------------------------------------
-- Associations
------------------------------------------------------------------------------------------------------------

-- Associate (p_action 'associate') or disassociate ('disassociate') two records of the org: contact and company,
-- contact and deal, company and deal, in either order (references as crm.activity_target takes them). The index
-- changes at once: a contact's company (contact_index.company_crm_id), a deal's company (deal_index.company_crm_id)
-- stamped in field_versions, a deal's contacts (crm.deal_contact, versioned now: the CRM's echo, later, confirms
-- it) and the contacts' deal summaries (crm.refresh_contact_deals). The CRM write is queued as an 'associate' job
-- of the pair's first record (contact -> company, deal -> contact, deal -> company: the company becomes the
-- record's primary one, as the index shows a single company); the same change queued twice while open is one job,
-- and the opposite change still waiting is superseded by this one.
CREATE OR REPLACE FUNCTION crm.writeback_link(
    p_org_id uuid, p_action text, p_from_type text, p_from_ref text, p_to_type text, p_to_ref text,
    p_triggered_by text, p_user_id uuid, p_priority smallint
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, payload jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_from_type text := p_from_type;
    v_to_type text := p_to_type;
    v_from_ref text := p_from_ref;
    v_to_ref text := p_to_ref;
    v_a record;
    v_b record;
    v_on boolean := p_action = 'associate';
    v_stamp jsonb := jsonb_build_object('company_crm_id', clock_timestamp());
    v_payload jsonb;
    v_dedupe text;
    v_job bigint;
BEGIN
    IF p_priority IS NULL OR p_priority NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'priority is 1 (highest) to 10' USING ERRCODE = 'CX002';
    END IF;
    IF (v_from_type, v_to_type) IN (('company', 'contact'), ('contact', 'deal'), ('company', 'deal')) THEN
        v_from_type := p_to_type;
        v_to_type := p_from_type;
        v_from_ref := p_to_ref;
        v_to_ref := p_from_ref;
    END IF;
    IF (v_from_type, v_to_type) NOT IN (('contact', 'company'), ('deal', 'contact'), ('deal', 'company')) THEN
        RAISE EXCEPTION 'records associate as contact and company, contact and deal, or company and deal; not % and %',
            coalesce(quote_literal(left(p_from_type, 40)), 'NULL'), coalesce(quote_literal(left(p_to_type, 40)), 'NULL')
            USING ERRCODE = 'CX002';
    END IF;
    SELECT t.crm_source, t.crm_record_id INTO v_a FROM crm.activity_target(p_org_id, v_from_type, v_from_ref) AS t;
    SELECT t.crm_source, t.crm_record_id INTO v_b FROM crm.activity_target(p_org_id, v_to_type, v_to_ref) AS t;
    IF v_a.crm_source <> v_b.crm_source THEN
        RAISE EXCEPTION 'the two records are in different CRMs (% and %)', v_a.crm_source, v_b.crm_source
            USING ERRCODE = 'CX002';
    END IF;

    IF v_from_type = 'contact' THEN
        UPDATE crm.contact_index AS c
        SET company_crm_id = CASE WHEN v_on THEN v_b.crm_record_id END,
            field_versions = coalesce(c.field_versions, '{}'::jsonb) || v_stamp, updated_at = now()
        WHERE c.org_id = p_org_id AND c.crm_source = v_a.crm_source AND c.crm_record_id = v_a.crm_record_id
            AND (v_on OR c.company_crm_id = v_b.crm_record_id);
    ELSIF v_to_type = 'company' THEN
        UPDATE crm.deal_index AS d
        SET company_crm_id = CASE WHEN v_on THEN v_b.crm_record_id END,
            field_versions = coalesce(d.field_versions, '{}'::jsonb) || v_stamp, updated_at = now()
        WHERE d.org_id = p_org_id AND d.crm_source = v_a.crm_source AND d.crm_record_id = v_a.crm_record_id
            AND (v_on OR d.company_crm_id = v_b.crm_record_id);
    ELSE
        INSERT INTO crm.deal_contact AS dc (org_id, crm_source, deal_crm_id, contact_crm_id, removed, version)
        VALUES (p_org_id, v_a.crm_source, v_a.crm_record_id, v_b.crm_record_id, NOT v_on, clock_timestamp())
        ON CONFLICT (org_id, crm_source, deal_crm_id, contact_crm_id)
        DO UPDATE SET removed = excluded.removed, version = greatest(dc.version, excluded.version);
        PERFORM crm.refresh_contact_deals(p_org_id, v_a.crm_source, ARRAY[v_b.crm_record_id]);
    END IF;

    v_payload := jsonb_build_object(
        'action', p_action, 'from_type', v_from_type, 'from_id', v_a.crm_record_id, 'to_type', v_to_type,
        'to_id', v_b.crm_record_id, 'primary', v_to_type = 'company'
    );
    v_dedupe := left(format('%s:%s:%s:%s:%s', p_action, v_from_type, v_a.crm_record_id, v_to_type, v_b.crm_record_id), 200);
    v_job := crm.enqueue_writeback(
        p_org_id, v_a.crm_source, v_from_type, v_a.crm_record_id, 'associate', v_payload, p_triggered_by, p_user_id,
        p_priority, NULL, v_dedupe
    );
    IF v_job IS NULL THEN  -- the same change is queued already
        SELECT w.id INTO v_job FROM crm.writeback_queue AS w
        WHERE w.org_id = p_org_id AND w.dedupe_key = v_dedupe AND w.status IN ('pending', 'failed', 'processing');
    END IF;
    -- the opposite change of the pair still waiting (not in flight) is superseded: the newest intent wins, and a
    -- retry of the older one can never land after this one
    UPDATE crm.writeback_queue AS w
    SET status = 'completed', completed_at = now(), updated_at = now(),
        result = jsonb_build_object('superseded_by', v_job)
    WHERE w.org_id = p_org_id AND w.status IN ('pending', 'failed') AND w.id <> v_job
        AND w.dedupe_key = left(format(
            '%s:%s:%s:%s:%s', CASE WHEN v_on THEN 'disassociate' ELSE 'associate' END, v_from_type,
            v_a.crm_record_id, v_to_type, v_b.crm_record_id
        ), 200);
    RETURN QUERY SELECT v_job, v_a.crm_source::text, v_a.crm_record_id::text, v_payload;
END
$$;

-- Associate two records (crm.writeback_link). An API function of crm_app: SECURITY DEFINER.
CREATE OR REPLACE FUNCTION crm.associate(
    p_org_id uuid, p_from_type text, p_from_ref text, p_to_type text, p_to_ref text,
    p_triggered_by text DEFAULT 'copilot', p_user_id uuid DEFAULT NULL, p_priority smallint DEFAULT 5
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    RETURN QUERY SELECT * FROM crm.writeback_link(
        p_org_id, 'associate', p_from_type, p_from_ref, p_to_type, p_to_ref, p_triggered_by, p_user_id, p_priority
    );
END
$$;

-- Disassociate two records (crm.writeback_link). An API function of crm_app: SECURITY DEFINER.
CREATE OR REPLACE FUNCTION crm.disassociate(
    p_org_id uuid, p_from_type text, p_from_ref text, p_to_type text, p_to_ref text,
    p_triggered_by text DEFAULT 'copilot', p_user_id uuid DEFAULT NULL, p_priority smallint DEFAULT 5
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    RETURN QUERY SELECT * FROM crm.writeback_link(
        p_org_id, 'disassociate', p_from_type, p_from_ref, p_to_type, p_to_ref, p_triggered_by, p_user_id, p_priority
    );
END
$$;
