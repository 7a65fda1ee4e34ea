-- writeback/activities.sql: logging activities (notes, calls, meetings, emails, tasks) on CRM records (issue 16).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).
--
-- An activity is a write-back job (entity 'activity', operation 'create') with a CRM-neutral payload that the
-- drainer's writers map (crmindex/crm/hubspot/adapters.py: engagement objects; crmindex/crm/attio/adapters.py:
-- notes and tasks):
--   {"kind": note|call|meeting|email|task, "target_type": contact|company|deal, "target_id": <CRM record id>,
--    "subject": text|null, "body": text, "occurred_at_ms": <epoch ms>}
-- Activities never coalesce: every job has its own match key ('activity:' and a random uuid). They are never
-- created twice: occurred_at_ms is the marker the CRM keeps (HubSpot hs_timestamp, Attio note created_at /
-- task deadline_at) and its millisecond part is drawn so that no other activity job of the record has the same
-- one; a job that may have reached the CRM before looks for it there first (crmindex/crm/activities.py).

-- The record an activity is logged on, in the org's index: p_ref is an index id ('#123') or a CRM record id, for
-- contacts also an email (crm.resolve_contact_refs), for companies also a domain. CX004 when nothing matches;
-- CX002 when it is deleted in the CRM or when two CRMs both hold such a record.
CREATE OR REPLACE FUNCTION crm.activity_target(p_org_id uuid, p_target_type text, p_ref text)
RETURNS TABLE (crm_source text, crm_record_id text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_ref text := btrim(p_ref);
    v_n integer;
    v_source text;
    v_id text;
    v_deleted boolean;
BEGIN
    IF v_ref IS NULL OR v_ref = '' THEN
        RAISE EXCEPTION 'the record to log the activity on is missing' USING ERRCODE = 'CX002';
    END IF;
    PERFORM crm.check_text_size('ref', v_ref, 320);
    IF p_target_type = 'contact' THEN
        SELECT count(*)::integer, min(r.crm_source), min(r.crm_record_id), bool_or(r.deleted)
        INTO v_n, v_source, v_id, v_deleted
        FROM crm.resolve_contact_refs(p_org_id, ARRAY[v_ref]) AS r WHERE r.id IS NOT NULL;
    ELSIF p_target_type = 'company' THEN
        SELECT count(*)::integer, min(c.crm_source), min(c.crm_record_id), bool_or(c.deleted_at IS NOT NULL)
        INTO v_n, v_source, v_id, v_deleted
        FROM crm.company_index AS c
        WHERE c.org_id = p_org_id AND (
            c.crm_record_id = v_ref OR ('#' || c.id::text) = v_ref OR lower(c.domain) = lower(v_ref)
        );
    ELSIF p_target_type = 'deal' THEN
        SELECT count(*)::integer, min(d.crm_source), min(d.crm_record_id), bool_or(d.deleted_at IS NOT NULL)
        INTO v_n, v_source, v_id, v_deleted
        FROM crm.deal_index AS d
        WHERE d.org_id = p_org_id AND (d.crm_record_id = v_ref OR ('#' || d.id::text) = v_ref);
    ELSE
        RAISE EXCEPTION 'an activity is logged on a contact, a company or a deal, not %',
            coalesce(quote_literal(left(p_target_type, 40)), 'NULL') USING ERRCODE = 'CX002';
    END IF;
    IF coalesce(v_n, 0) = 0 OR v_id IS NULL THEN
        RAISE EXCEPTION 'no indexed % matches % in this org', p_target_type, quote_literal(left(v_ref, 80))
            USING ERRCODE = 'CX004';
    END IF;
    IF v_n > 1 THEN
        RAISE EXCEPTION '% matches % indexed %s: use the index id (#...) or the CRM record id',
            quote_literal(left(v_ref, 80)), v_n, p_target_type USING ERRCODE = 'CX002';
    END IF;
    IF v_deleted THEN
        RAISE EXCEPTION '% % is deleted in the CRM', p_target_type, v_id USING ERRCODE = 'CX002';
    END IF;
    RETURN QUERY SELECT v_source, v_id;
END
$$;

-- Log an activity on a contact, company or deal and queue it for the CRM (the copilot's "log this call on Stan's
-- record"). p_kind: note, call, meeting, email or task; p_target_type / p_ref: the record (crm.activity_target);
-- p_body: the text (at most 60,000 characters; may be empty when p_subject is given); p_subject: a title (at
-- most 1,000); p_occurred_at: when it happened (a task: when it is due; default now). Returns the job, the
-- record and the marker (occurred_at_ms). Refused, changing nothing: another org (CX003), an unknown record
-- (CX004), anything else invalid (CX002). An API function of crm_app: SECURITY DEFINER.
CREATE OR REPLACE FUNCTION crm.log_activity(
    p_org_id uuid, p_kind text, p_target_type text, p_ref text, p_body text, p_subject text DEFAULT NULL,
    p_occurred_at timestamptz DEFAULT NULL, p_triggered_by text DEFAULT 'copilot', p_user_id uuid DEFAULT NULL,
    p_priority smallint DEFAULT 5
) RETURNS TABLE (job_id bigint, crm_source text, crm_record_id text, occurred_at_ms bigint, payload jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_target record;
    v_body text := coalesce(p_body, '');
    v_subject text := nullif(btrim(p_subject), '');
    v_at timestamptz := coalesce(p_occurred_at, clock_timestamp());
    v_second bigint;
    v_ms bigint;
    v_used bigint [];
    v_start integer;
    v_try integer;
    v_payload jsonb;
    v_job bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_kind IS NULL OR p_kind NOT IN ('note', 'call', 'meeting', 'email', 'task') THEN
        RAISE EXCEPTION 'activity kind must be note, call, meeting, email or task, not %',
            coalesce(quote_literal(left(p_kind, 40)), 'NULL') USING ERRCODE = 'CX002', DETAIL = 'field=kind';
    END IF;
    PERFORM crm.check_text_size('body', v_body, 60000);
    PERFORM crm.check_text_size('subject', v_subject);
    IF btrim(v_body) = '' AND v_subject IS NULL THEN
        RAISE EXCEPTION 'an activity needs a body or a subject' USING ERRCODE = 'CX002', DETAIL = 'field=body';
    END IF;
    IF v_at < '1970-01-02'::timestamptz OR v_at > clock_timestamp() + interval '10 years' THEN
        RAISE EXCEPTION 'occurred_at % is out of range', v_at USING ERRCODE = 'CX002', DETAIL = 'field=occurred_at';
    END IF;
    IF p_priority IS NULL OR p_priority NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'priority is 1 (highest) to 10' USING ERRCODE = 'CX002';
    END IF;
    SELECT t.crm_source, t.crm_record_id INTO v_target FROM crm.activity_target(p_org_id, p_target_type, p_ref) AS t;

    -- the marker: the second it happened and a millisecond no other activity job of this record holds
    v_second := floor(extract(EPOCH FROM v_at))::bigint * 1000;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_org_id::text || v_target.crm_record_id, 16));
    SELECT coalesce(array_agg((w.payload ->> 'occurred_at_ms')::bigint - v_second), '{}') INTO v_used
    FROM crm.writeback_queue AS w
    WHERE w.org_id = p_org_id AND w.crm_source = v_target.crm_source AND w.entity_type = 'activity'
        AND w.payload ->> 'target_id' = v_target.crm_record_id
        AND (w.payload ->> 'occurred_at_ms')::bigint BETWEEN v_second AND v_second + 999;
    v_start := floor(random() * 1000)::integer;
    FOR v_try IN 0..999 LOOP
        IF NOT ((v_start + v_try) % 1000)::bigint = ANY(v_used) THEN
            v_ms := v_second + (v_start + v_try) % 1000;
            EXIT;
        END IF;
    END LOOP;
    IF v_ms IS NULL THEN
        RAISE EXCEPTION 'more than 1,000 activities logged on this record within one second'
            USING ERRCODE = 'CX002';
    END IF;
    v_payload := jsonb_build_object(
        'kind', p_kind, 'target_type', p_target_type, 'target_id', v_target.crm_record_id,
        'subject', v_subject, 'body', v_body, 'occurred_at_ms', v_ms
    );
    v_job := crm.enqueue_writeback(
        p_org_id, v_target.crm_source, 'activity', NULL, 'create', v_payload, p_triggered_by, p_user_id, p_priority,
        'activity:' || gen_random_uuid()::text
    );
    RETURN QUERY SELECT v_job, v_target.crm_source::text, v_target.crm_record_id::text, v_ms, v_payload;
END
$$;
