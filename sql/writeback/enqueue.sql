-- writeback/enqueue.sql: queueing CRM writes (table crm.writeback_queue, on the queue core).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- Queue a CRM write. Updates coalesce into the record's open job (later values win per field); creates
-- coalesce by match key. Returns the job id.
CREATE OR REPLACE FUNCTION crm.enqueue_writeback(
    p_org_id uuid, p_source text, p_entity_type text, p_crm_record_id text, p_operation text, p_payload jsonb,
    p_triggered_by text, p_triggered_by_user_id uuid DEFAULT NULL, p_priority smallint DEFAULT 5,
    p_match_key text DEFAULT NULL, p_dedupe_key text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_queued jsonb;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' OR p_payload = '{}'::jsonb THEN
        RAISE EXCEPTION 'write-back payload must be a non-empty JSON object of fields' USING ERRCODE = 'CX002';
    END IF;
    IF p_operation NOT IN ('create', 'update', 'associate') THEN
        RAISE EXCEPTION 'unknown write-back operation %', p_operation USING ERRCODE = 'CX002';
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
    RETURN v_id;
END
$$;

-- CRM changes seen by webhooks: p_changes = [{"crm_record_id", "property", "value", "occurred_at"}].
-- A field of an open (not yet running) update job that the CRM changed after we queued it, to another
-- value than ours, is dropped; a job left with no field completes as superseded. Returns fields dropped.
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
            AND w.operation = 'update' AND w.status IN ('pending', 'failed')
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

-- Counts of an org's write-backs in the given statuses (org_stats, status).
CREATE OR REPLACE FUNCTION crm.writeback_count(p_org_id uuid, p_statuses text[]) RETURNS bigint
LANGUAGE sql STABLE
RETURN (
    SELECT count(*) FROM crm.writeback_queue AS w
    WHERE w.org_id = p_org_id AND w.status = any(p_statuses)
);

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
