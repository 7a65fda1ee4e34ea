-- writeback/enqueue.sql: queueing CRM writes (table crm.writeback_queue, on the queue core).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- Queue a CRM write. Updates coalesce into the record's open job (later values win per field); creates
-- coalesce by match key. Returns the job id.
-- An API function of crm_app (platform/grants.sql): SECURITY DEFINER, so it checks the org (an unbound
-- application session is refused) and caps its input: a payload of at most 64 KB of JSON text, also once
-- coalesced into the open job (platform/bounds.sql).
CREATE OR REPLACE FUNCTION crm.enqueue_writeback(
    p_org_id uuid, p_source text, p_entity_type text, p_crm_record_id text, p_operation text, p_payload jsonb,
    p_triggered_by text, p_triggered_by_user_id uuid DEFAULT NULL, p_priority smallint DEFAULT 5,
    p_match_key text DEFAULT NULL, p_dedupe_key text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_queued jsonb;
    v_size integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    IF p_entity_type IS NULL OR p_entity_type NOT IN ('contact', 'company', 'deal', 'activity') THEN
        RAISE EXCEPTION 'unknown write-back entity type %', coalesce(quote_literal(left(p_entity_type, 40)), 'NULL')
            USING ERRCODE = 'CX002';
    END IF;
    IF p_triggered_by IS NULL OR p_triggered_by NOT IN ('copilot', 'enrichment', 'automation', 'user', 'system') THEN
        RAISE EXCEPTION 'triggered_by must be copilot, enrichment, automation, user or system' USING ERRCODE = 'CX002';
    END IF;
    IF p_priority IS NOT NULL AND p_priority NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'priority is 1 (highest) to 10' USING ERRCODE = 'CX002';
    END IF;
    PERFORM crm.check_text_size('crm_record_id', p_crm_record_id);
    PERFORM crm.check_text_size('match_key', p_match_key);
    PERFORM crm.check_text_size('dedupe_key', p_dedupe_key);
    PERFORM crm.check_json_size('payload', p_payload, 'payload');
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' OR p_payload = '{}'::jsonb THEN
        RAISE EXCEPTION 'write-back payload must be a non-empty JSON object of fields' USING ERRCODE = 'CX002';
    END IF;
    IF p_operation IS NULL OR p_operation NOT IN ('create', 'update', 'associate') THEN
        RAISE EXCEPTION 'unknown write-back operation %', coalesce(quote_literal(left(p_operation, 40)), 'NULL')
            USING ERRCODE = 'CX002';
    END IF;
    IF p_operation <> 'create' AND nullif(btrim(p_crm_record_id), '') IS NULL THEN
        RAISE EXCEPTION '% needs the CRM record id', p_operation USING ERRCODE = 'CX002';
    END IF;
    IF p_operation = 'create' AND nullif(btrim(p_match_key), '') IS NULL THEN
        RAISE EXCEPTION 'a create needs a match key (email, domain...) so that retries never duplicate'
            USING ERRCODE = 'CX002';
    END IF;
    SELECT jsonb_object_agg(k, clock_timestamp()) INTO v_queued FROM jsonb_object_keys(p_payload) AS k;

    IF p_operation = 'update' THEN
        INSERT INTO crm.writeback_queue AS w (
            org_id, crm_source, entity_type, crm_record_id, operation, payload, field_queued_at, triggered_by,
            triggered_by_user_id, priority, dedupe_key
        )
        VALUES (
            p_org_id, p_source, p_entity_type, p_crm_record_id, 'update', p_payload, v_queued, p_triggered_by,
            p_triggered_by_user_id, coalesce(p_priority, 5), p_dedupe_key
        )
        ON CONFLICT (org_id, crm_source, entity_type, crm_record_id)
        WHERE operation = 'update' AND status IN ('pending', 'failed')
        DO UPDATE SET payload = w.payload || excluded.payload,
            field_queued_at = w.field_queued_at || excluded.field_queued_at,
            priority = least(w.priority, excluded.priority), triggered_by = excluded.triggered_by,
            triggered_by_user_id = excluded.triggered_by_user_id, updated_at = now()
        RETURNING w.id INTO v_id;
    ELSIF p_operation = 'create' THEN
        INSERT INTO crm.writeback_queue AS w (
            org_id, crm_source, entity_type, crm_record_id, operation, payload, field_queued_at, match_key,
            triggered_by, triggered_by_user_id, priority, dedupe_key
        )
        VALUES (
            p_org_id, p_source, p_entity_type, NULL, 'create', p_payload, v_queued, lower(btrim(p_match_key)),
            p_triggered_by, p_triggered_by_user_id, coalesce(p_priority, 5), p_dedupe_key
        )
        ON CONFLICT (org_id, crm_source, entity_type, match_key)
        WHERE operation = 'create' AND status IN ('pending', 'failed')
        DO UPDATE SET payload = w.payload || excluded.payload,
            field_queued_at = w.field_queued_at || excluded.field_queued_at, updated_at = now()
        RETURNING w.id INTO v_id;
    ELSE
        INSERT INTO crm.writeback_queue AS w (
            org_id, crm_source, entity_type, crm_record_id, operation, payload, field_queued_at, triggered_by,
            triggered_by_user_id, priority, dedupe_key
        )
        VALUES (
            p_org_id, p_source, p_entity_type, p_crm_record_id, 'associate', p_payload, v_queued, p_triggered_by,
            p_triggered_by_user_id, coalesce(p_priority, 5), p_dedupe_key
        )
        ON CONFLICT (org_id, dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'failed', 'processing')
        DO NOTHING
        RETURNING w.id INTO v_id;
    END IF;
    -- coalescing merges payloads: the open job stays within the cap too (raising undoes this call only)
    SELECT octet_length(w.payload::text) INTO v_size FROM crm.writeback_queue AS w
    WHERE w.org_id = p_org_id AND w.id = v_id;
    IF v_size > crm.input_cap('payload') THEN
        RAISE EXCEPTION 'payload: the open write-back of this record would hold more than % bytes of JSON (%)',
            crm.input_cap('payload'), v_size USING ERRCODE = 'CX002', DETAIL = 'field=payload';
    END IF;
    RETURN v_id;
END
$$;

-- CRM changes seen by webhooks: p_changes = [{"crm_record_id", "property", "value", "occurred_at"}].
-- A field of an open or in-flight update job that the CRM changed after we queued it, to another value than
-- ours, is dropped; a job left with no field completes as superseded (a job in flight loses its lease with
-- it, so its drainer does not send it: crm.writeback_renew, sql/writeback/drainer.sql, returns the payload
-- without the dropped fields before every send). Returns fields dropped.
CREATE OR REPLACE FUNCTION crm.writeback_drop_superseded(
    p_org_id uuid, p_source text, p_entity_type text, p_changes jsonb
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_dropped integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    WITH newer AS (
        SELECT w.id, array_agg(DISTINCT c.elem ->> 'property') AS props
        FROM crm.writeback_queue AS w
        INNER JOIN jsonb_array_elements(p_changes) AS c (elem) ON w.crm_record_id = c.elem ->> 'crm_record_id'
        WHERE w.org_id = p_org_id AND w.crm_source = p_source AND w.entity_type = p_entity_type
            AND w.operation = 'update' AND w.status IN ('pending', 'failed', 'processing')
            AND w.payload ? (c.elem ->> 'property')
            AND (c.elem ->> 'occurred_at')::timestamptz > (w.field_queued_at ->> (c.elem ->> 'property'))::timestamptz
            AND (w.payload ->> (c.elem ->> 'property')) IS DISTINCT FROM (c.elem ->> 'value')
        GROUP BY w.id
    ),
    updated AS (
        UPDATE crm.writeback_queue AS w
        SET payload = w.payload - n.props, field_queued_at = w.field_queued_at - n.props,
            status = CASE WHEN (w.payload - n.props) = '{}'::jsonb THEN 'completed' ELSE w.status END,
            completed_at = CASE WHEN (w.payload - n.props) = '{}'::jsonb THEN now() END,
            result = CASE WHEN (w.payload - n.props) = '{}'::jsonb
                THEN jsonb_build_object('superseded', TRUE) ELSE w.result END,
            lease_token = CASE WHEN (w.payload - n.props) = '{}'::jsonb THEN NULL ELSE w.lease_token END,
            leased_until = CASE WHEN (w.payload - n.props) = '{}'::jsonb THEN NULL ELSE w.leased_until END,
            last_error = coalesce(w.last_error, '') || CASE WHEN w.last_error IS NULL THEN '' ELSE '; ' END
                || 'dropped fields changed in the CRM after they were queued: ' || array_to_string(n.props, ', '),
            updated_at = now()
        FROM newer AS n
        WHERE w.org_id = p_org_id AND w.id = n.id
        RETURNING cardinality(n.props) AS n
    )
    SELECT coalesce(sum(u.n), 0)::integer INTO v_dropped FROM updated AS u;
    RETURN v_dropped;
END
$$;

-- Counts of an org's write-backs in the given statuses (org_stats, status). Runs as the caller (under
-- row-level security for crm_app, which may call it for the org it is bound to).
CREATE OR REPLACE FUNCTION crm.writeback_count(p_org_id uuid, p_statuses text[]) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    RETURN (
        SELECT count(*) FROM crm.writeback_queue AS w
        WHERE w.org_id = p_org_id AND w.status = any(p_statuses)
    );
END
$$;

-- When the oldest write-back of a record that has not landed yet was queued (NULL: none open).
CREATE OR REPLACE FUNCTION crm.writeback_open_since(
    p_org_id uuid, p_source text, p_entity_type text, p_crm_record_id text
)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT min(w.created_at)
    FROM crm.writeback_queue AS w
    WHERE w.org_id = p_org_id AND w.crm_source = p_source AND w.entity_type = p_entity_type
        AND w.crm_record_id = p_crm_record_id AND w.status IN ('pending', 'processing', 'failed')
$$;

------------------------------------------------------------------------------------------------------------
-- Contacts: change locally now, queue the CRM write (crmindex/writeback/enqueue.py wraps these)
------------------------------------------------------------------------------------------------------------

-- The contact columns a local change may set (the typed columns tier 2 shares with the index).
CREATE OR REPLACE FUNCTION crm.writeback_contact_columns() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[
    'first_name', 'last_name', 'email', 'phone', 'company_name', 'job_title', 'lifecycle_stage', 'lead_status'
];

-- Validate and normalize the fields of a local contact change: a JSON object of writable columns
-- (crm.writeback_contact_columns) to a string, a number or null. Values are trimmed ('' is null), emails
-- lower-cased and checked, every value within crm.text_cap (so the whole stays far below 64 KB of JSON text).
-- p_for: 'update' or 'create' (wording of the errors). Returns {column: text or null}; CX002 naming the field
-- otherwise.
CREATE OR REPLACE FUNCTION crm.writeback_contact_fields(p_fields jsonb, p_for text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_out jsonb := '{}';
    v_key text;
    v_val jsonb;
    v_text text;
    v_unknown text[];
BEGIN
    IF p_fields IS NULL OR jsonb_typeof(p_fields) <> 'object' THEN
        RAISE EXCEPTION 'fields must be a JSON object of contact columns' USING ERRCODE = 'CX002';
    END IF;
    IF p_fields = '{}'::jsonb THEN
        RAISE EXCEPTION 'no fields to %', p_for USING ERRCODE = 'CX002';
    END IF;
    SELECT array_agg(left(k, 100) ORDER BY k) INTO v_unknown
    FROM jsonb_object_keys(p_fields) AS k WHERE NOT k = ANY(crm.writeback_contact_columns());
    IF v_unknown IS NOT NULL THEN
        IF p_for = 'create' THEN
            RAISE EXCEPTION 'cannot set % on a new contact', array_to_string(v_unknown, ', ') USING ERRCODE = 'CX002';
        END IF;
        RAISE EXCEPTION 'cannot update %: writable fields are %', array_to_string(v_unknown, ', '),
            array_to_string(crm.writeback_contact_columns(), ', ') USING ERRCODE = 'CX002';
    END IF;
    FOR v_key, v_val IN SELECT e.key, e.value FROM jsonb_each(p_fields) AS e ORDER BY e.key LOOP
        IF jsonb_typeof(v_val) NOT IN ('string', 'number', 'null') THEN
            RAISE EXCEPTION 'field % must be a string or null, not a JSON %', v_key, jsonb_typeof(v_val)
                USING ERRCODE = 'CX002', DETAIL = format('field=%s', left(v_key, 100));
        END IF;
        v_text := nullif(btrim(v_val #>> '{}'), '');
        PERFORM crm.check_text_size(v_key, v_text);
        IF v_key = 'email' AND v_text IS NOT NULL THEN
            v_text := lower(v_text);
            IF NOT crm.is_email(v_text) THEN
                RAISE EXCEPTION 'email % is not an email address', quote_literal(left(v_text, 80))
                    USING ERRCODE = 'CX002', DETAIL = 'field=email';
            END IF;
        END IF;
        v_out := v_out || jsonb_build_object(v_key, v_text);
    END LOOP;
    RETURN crm.check_json_size('fields', v_out, 'payload');
END
$$;

-- The CRM payload of a local contact change, mapped at enqueue time so that an unmappable field is an error
-- now (CX002), not a dead letter later. p_fields: normalized columns (crm.writeback_contact_fields);
-- p_current: the contact's current columns (the other half of a name on Attio).
--   HubSpot: contact properties (the names crmindex/crm/hubspot/properties.py reads), every value a string and
--     '' to clear; lifecycle stages as HubSpot's internal values (mql -> marketingqualifiedlead,
--     sql -> salesqualifiedlead; others lower-cased, as crmindex/crm/lifecycle.py maps them).
--   Attio: people attribute values (https://docs.attio.com/docs/attribute-types): name is one composite
--     {first_name, last_name, full_name} built from the new and current halves, email_addresses and
--     phone_numbers are lists ([] clears), job_title a text. Attio has no standard lifecycle / lead status:
--     a column maps to a custom attribute slug through the connection's settings.attio_attributes
--     ({"lifecycle_stage": "stage"}); without a mapping such a field is an error.
CREATE OR REPLACE FUNCTION crm.writeback_contact_payload(
    p_org_id uuid, p_source text, p_fields jsonb, p_current jsonb
) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_out jsonb := '{}';
    v_key text;
    v_val text;
    v_custom jsonb;
    v_first text;
    v_last text;
    v_prop text;
BEGIN
    IF p_source = 'hubspot' THEN
        FOR v_key, v_val IN SELECT e.key, e.value FROM jsonb_each_text(p_fields) AS e ORDER BY e.key LOOP
            v_prop := CASE v_key
                WHEN 'first_name' THEN 'firstname'
                WHEN 'last_name' THEN 'lastname'
                WHEN 'email' THEN 'email'
                WHEN 'phone' THEN 'phone'
                WHEN 'company_name' THEN 'company'
                WHEN 'job_title' THEN 'jobtitle'
                WHEN 'lifecycle_stage' THEN 'lifecyclestage'
                WHEN 'lead_status' THEN 'hs_lead_status'
            END;
            IF v_prop IS NULL THEN
                RAISE EXCEPTION '% cannot be written to HubSpot contacts', quote_literal(left(v_key, 100))
                    USING ERRCODE = 'CX002', DETAIL = format('field=%s', left(v_key, 100));
            END IF;
            v_out := v_out || jsonb_build_object(
                v_prop,
                CASE
                    WHEN v_val IS NULL THEN ''
                    WHEN v_key = 'lifecycle_stage' THEN CASE lower(v_val)
                        WHEN 'mql' THEN 'marketingqualifiedlead'
                        WHEN 'sql' THEN 'salesqualifiedlead'
                        ELSE lower(v_val)
                    END
                    ELSE v_val
                END
            );
        END LOOP;
        RETURN v_out;
    ELSIF p_source = 'attio' THEN
        SELECT c.settings -> 'attio_attributes' INTO v_custom FROM crm.connection AS c
        WHERE c.org_id = p_org_id AND c.crm_source = 'attio';
        IF jsonb_typeof(v_custom) IS DISTINCT FROM 'object' THEN
            v_custom := '{}';
        END IF;
        FOR v_key, v_val IN SELECT e.key, e.value FROM jsonb_each_text(p_fields) AS e ORDER BY e.key LOOP
            IF v_key IN ('first_name', 'last_name') THEN
                v_first := CASE WHEN p_fields ? 'first_name' THEN p_fields ->> 'first_name' ELSE p_current ->> 'first_name' END;
                v_last := CASE WHEN p_fields ? 'last_name' THEN p_fields ->> 'last_name' ELSE p_current ->> 'last_name' END;
                v_out := v_out || jsonb_build_object('name', jsonb_build_array(jsonb_build_object(
                    'first_name', coalesce(v_first, ''),
                    'last_name', coalesce(v_last, ''),
                    'full_name', concat_ws(' ', nullif(v_first, ''), nullif(v_last, ''))
                )));
            ELSIF v_key = 'email' THEN
                v_out := v_out || jsonb_build_object(
                    'email_addresses', CASE WHEN v_val IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(v_val) END
                );
            ELSIF v_key = 'phone' THEN
                v_out := v_out || jsonb_build_object(
                    'phone_numbers', CASE WHEN v_val IS NULL THEN '[]'::jsonb
                        ELSE jsonb_build_array(jsonb_build_object('original_phone_number', v_val)) END
                );
            ELSIF v_key = 'job_title' THEN
                v_out := v_out || jsonb_build_object('job_title', v_val);
            ELSIF jsonb_typeof(v_custom -> v_key) = 'string' AND btrim(v_custom ->> v_key) <> '' THEN
                v_out := v_out || jsonb_build_object(btrim(v_custom ->> v_key), v_val);
            ELSE
                RAISE EXCEPTION '% cannot be written to Attio people%', quote_literal(left(v_key, 100)),
                    CASE WHEN v_key IN ('lifecycle_stage', 'lead_status')
                        THEN ' (map it to an attribute in the connection''s settings.attio_attributes)' ELSE '' END
                    USING ERRCODE = 'CX002', DETAIL = format('field=%s', left(v_key, 100));
            END IF;
        END LOOP;
        RETURN v_out;
    END IF;
    RAISE EXCEPTION 'unknown CRM source %', coalesce(quote_literal(left(p_source, 40)), 'NULL')
        USING ERRCODE = 'CX002', HINT = 'use hubspot or attio';
END
$$;

-- Change an indexed contact now and queue the CRM write, in one transaction (the copilot's "mark Stan as an
-- SQL"). p_ref: an index id ('#123'), a CRM record id or an email (crm.resolve_contact_refs); p_fields: the
-- new values of writable columns (crm.writeback_contact_fields). The index row (and its tier-2 record when
-- materialized) changes immediately; the changed fields are stamped in field_versions so that an older CRM
-- event or snapshot cannot undo them before the write lands; the mapped write coalesces into the record's
-- open update (crm.enqueue_writeback). Refused, changing nothing: another org (CX003), an unknown contact
-- (CX004), a contact deleted in the CRM, an unwritable or unmappable field, an oversized value (CX002).
-- An API function of crm_app: SECURITY DEFINER, every query names the org.
CREATE OR REPLACE FUNCTION crm.update_contact(
    p_org_id uuid, p_ref text, p_fields jsonb, p_triggered_by text DEFAULT 'copilot', p_user_id uuid DEFAULT NULL,
    p_priority smallint DEFAULT 5
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fields jsonb;
    v_target record;
    v_current jsonb;
    v_payload jsonb;
    v_versions jsonb;
    v_job bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    v_fields := crm.writeback_contact_fields(p_fields, 'update');
    IF p_priority IS NULL OR p_priority NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'priority is 1 (highest) to 10' USING ERRCODE = 'CX002';
    END IF;
    SELECT r.id, r.crm_source, r.crm_record_id, r.is_materialized, r.deleted INTO v_target
    FROM crm.resolve_contact_refs(p_org_id, ARRAY[p_ref]) AS r;
    IF v_target.id IS NULL THEN
        RAISE EXCEPTION 'no indexed contact matches % in this org', quote_literal(left(btrim(p_ref), 80))
            USING ERRCODE = 'CX004';
    END IF;
    IF v_target.deleted THEN
        RAISE EXCEPTION 'contact % is deleted in the CRM', v_target.crm_record_id USING ERRCODE = 'CX002';
    END IF;
    SELECT jsonb_build_object('first_name', c.first_name, 'last_name', c.last_name) INTO v_current
    FROM crm.contact_index AS c WHERE c.org_id = p_org_id AND c.id = v_target.id
    FOR UPDATE;
    v_payload := crm.writeback_contact_payload(p_org_id, v_target.crm_source, v_fields, v_current);
    SELECT jsonb_object_agg(k, clock_timestamp()) INTO v_versions FROM jsonb_object_keys(v_fields) AS k;

    -- the fields given replace the stored ones (jsonb_populate_record keeps the others), in the index and tier 2
    UPDATE crm.contact_index AS c SET
        (first_name, last_name, email, phone, company_name, job_title, lifecycle_stage, lead_status) = (
            SELECT x.first_name, x.last_name, x.email, x.phone, x.company_name, x.job_title, x.lifecycle_stage,
                x.lead_status
            FROM jsonb_populate_record(c, v_fields) AS x
        ),
        field_versions = coalesce(c.field_versions, '{}'::jsonb) || v_versions,
        updated_at = now()
    WHERE c.org_id = p_org_id AND c.id = v_target.id;
    IF v_target.is_materialized THEN
        UPDATE crm.contact_record AS r SET
            (first_name, last_name, email, phone, company_name, job_title, lifecycle_stage, lead_status) = (
                SELECT x.first_name, x.last_name, x.email, x.phone, x.company_name, x.job_title, x.lifecycle_stage,
                    x.lead_status
                FROM jsonb_populate_record(r, v_fields) AS x
            ),
            updated_at = now()
        WHERE r.org_id = p_org_id AND r.crm_source = v_target.crm_source
            AND r.crm_record_id = v_target.crm_record_id;
    END IF;
    v_job := crm.enqueue_writeback(
        p_org_id, v_target.crm_source, 'contact', v_target.crm_record_id, 'update', v_payload, p_triggered_by,
        p_user_id, p_priority
    );
    RETURN QUERY SELECT v_job, v_target.crm_source::text, v_target.crm_record_id::text, v_payload;
END
$$;

-- Queue an idempotent CRM create of a contact (HubSpot upsert by email, Attio assert by email address): the
-- email is the match key, so a retry after a crash never duplicates and creates of one email coalesce.
-- p_fields as for crm.update_contact; the email is required. Nothing changes locally (the contact enters the
-- index when the CRM reports it). An API function of crm_app: SECURITY DEFINER.
CREATE OR REPLACE FUNCTION crm.create_contact(
    p_org_id uuid, p_source text, p_fields jsonb, p_triggered_by text DEFAULT 'copilot',
    p_user_id uuid DEFAULT NULL, p_priority smallint DEFAULT 5
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fields jsonb;
    v_payload jsonb;
    v_job bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_fields IS NOT NULL AND jsonb_typeof(p_fields) = 'object'
        AND nullif(btrim(p_fields ->> 'email'), '') IS NULL THEN
        RAISE EXCEPTION 'creating a CRM contact needs an email (the idempotency key)'
            USING ERRCODE = 'CX002', DETAIL = 'field=email';
    END IF;
    v_fields := jsonb_strip_nulls(crm.writeback_contact_fields(p_fields, 'create'));
    PERFORM crm.check_source(p_source);
    v_payload := crm.writeback_contact_payload(p_org_id, p_source, v_fields, '{}');
    v_job := crm.enqueue_writeback(
        p_org_id, p_source, 'contact', NULL, 'create', v_payload, p_triggered_by, p_user_id, p_priority,
        v_fields ->> 'email'
    );
    RETURN QUERY SELECT v_job, p_source, NULL::text, v_payload;
END
$$;
