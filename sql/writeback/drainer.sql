-- writeback/drainer.sql: the write-back drainer's rules (crmindex/writeback/drainer.py only makes the CRM calls).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).
--
-- One pass of a drainer over one account (org + CRM), usable as is from psql:
--
--   SELECT * FROM crm.writeback_due_accounts();                         -- accounts with work due
--   SELECT * FROM crm.writeback_claim('<org>', 'hubspot', 'me', 100, 120); -- the jobs to send, with tokens
--   SELECT * FROM crm.writeback_renew('<org>', ARRAY[<ids>], ARRAY[<tokens>]::uuid [], 120); -- before a send
--   ... send each job's payload to the CRM ...
--   SELECT * FROM crm.writeback_finish('<org>', '[{"id": .., "lease_token": .., "action": "complete"}]');
--
-- The rules they keep, whoever drains:
--   * per record (an update's CRM record id, a create's match key), writes land in the order they were queued:
--     at most one job of a record is open (pending / failed; unique indexes of 0009), several claimed jobs of
--     one record go out as one, and a job whose record has an older job still open or in flight elsewhere is
--     held back until that one is done;
--   * nothing is sent under a lease that is no longer ours: a send group starts with crm.writeback_renew, which
--     extends the lease under its token and returns the payload as it is now (fields that a webhook showed
--     changed in the CRM meanwhile are gone, crm.writeback_drop_superseded); a job it does not return is not
--     sent;
--   * a job going back in line (retry, release) merges with a change queued for its record meanwhile.

-- The accounts (org, CRM) with write-backs due now: pending / failed and due, or in flight under an expired lease.
CREATE OR REPLACE FUNCTION crm.writeback_due_accounts(p_limit integer DEFAULT 1000)
RETURNS TABLE (org_id uuid, crm_source text)
LANGUAGE sql AS $$
    SELECT a.org_id, a.crm_source FROM (
        SELECT DISTINCT w.org_id, w.crm_source FROM crm.writeback_queue AS w
        WHERE w.status IN ('pending', 'failed') AND w.next_retry_at <= now()
        UNION
        SELECT DISTINCT w.org_id, w.crm_source FROM crm.writeback_queue AS w
        WHERE w.status = 'processing' AND w.leased_until < clock_timestamp()
    ) AS a
    LIMIT p_limit
$$;

-- Put a claimed write-back job back in line under its lease token: p_action 'retry' (an attempt spent, the
-- backoff ladder or p_delay_seconds; dead-lettered when attempts are exhausted) or 'release' (no attempt
-- spent, pending again after p_delay_seconds). Guarantee: one open job per record stays true. A change queued
-- for the record meanwhile (another pending / failed job) is merged: when it is newer it folds into this job
-- (its values win per field) and completes as {"coalesced_into": this job}; when it is older (this job was
-- held back) it takes this job's values and this job completes as coalesced into it. A concurrent enqueue is
-- retried, never lost. Returns the job's new status ('pending', 'failed', 'dead_letter', or 'completed' when
-- merged into an older job), NULL when the lease is no longer ours (nothing changed).
CREATE OR REPLACE FUNCTION crm.writeback_reopen(
    p_org_id uuid, p_id bigint, p_token uuid, p_action text, p_delay_seconds double precision DEFAULT NULL,
    p_error text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_job crm.writeback_queue;
    v_sib crm.writeback_queue;
    v_try integer;
BEGIN
    IF p_action IS NULL OR p_action NOT IN ('retry', 'release') THEN
        RAISE EXCEPTION 'writeback_reopen: action must be retry or release, not %', p_action USING ERRCODE = 'CX002';
    END IF;
    FOR v_try IN 1..5 LOOP
        BEGIN
            SELECT w.* INTO v_job FROM crm.writeback_queue AS w
            WHERE w.org_id = p_org_id AND w.id = p_id AND w.lease_token = p_token AND w.status = 'processing'
            FOR UPDATE;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
            v_sib := NULL;
            IF v_job.operation = 'update' THEN
                SELECT w.* INTO v_sib FROM crm.writeback_queue AS w
                WHERE w.org_id = p_org_id AND w.crm_source = v_job.crm_source AND w.entity_type = v_job.entity_type
                    AND w.operation = 'update' AND w.crm_record_id = v_job.crm_record_id
                    AND w.status IN ('pending', 'failed') AND w.id <> p_id
                FOR UPDATE;
            ELSIF v_job.operation = 'create' THEN
                SELECT w.* INTO v_sib FROM crm.writeback_queue AS w
                WHERE w.org_id = p_org_id AND w.crm_source = v_job.crm_source AND w.entity_type = v_job.entity_type
                    AND w.operation = 'create' AND w.match_key = v_job.match_key
                    AND w.status IN ('pending', 'failed') AND w.id <> p_id
                FOR UPDATE;
            END IF;
            IF v_sib.id IS NOT NULL AND v_sib.id > p_id THEN
                -- a newer change to the record: fold it into this job
                UPDATE crm.writeback_queue AS w
                SET status = 'completed', completed_at = now(), updated_at = now(),
                    result = jsonb_build_object('coalesced_into', p_id)
                WHERE w.org_id = p_org_id AND w.id = v_sib.id;
                UPDATE crm.writeback_queue AS w
                SET payload = v_job.payload || v_sib.payload,
                    field_queued_at = v_job.field_queued_at || v_sib.field_queued_at,
                    priority = least(v_job.priority, v_sib.priority)
                WHERE w.org_id = p_org_id AND w.id = p_id;
            ELSIF v_sib.id IS NOT NULL THEN
                -- an older open job of the record (this one was held back): it takes this job's values
                UPDATE crm.writeback_queue AS w
                SET payload = v_sib.payload || v_job.payload,
                    field_queued_at = v_sib.field_queued_at || v_job.field_queued_at,
                    priority = least(v_job.priority, v_sib.priority), updated_at = now()
                WHERE w.org_id = p_org_id AND w.id = v_sib.id;
                UPDATE crm.writeback_queue AS w
                SET status = 'completed', completed_at = now(), updated_at = now(), lease_token = NULL,
                    leased_until = NULL, result = jsonb_build_object('coalesced_into', v_sib.id)
                WHERE w.org_id = p_org_id AND w.id = p_id;
                RETURN 'completed';
            END IF;
            IF p_action = 'release' THEN
                PERFORM crm.queue_release(p_org_id, 'crm.writeback_queue', p_id, p_token, p_delay_seconds, p_error);
                RETURN 'pending';
            END IF;
            RETURN crm.queue_fail(
                p_org_id, 'crm.writeback_queue', p_id, p_token, coalesce(p_error, 'failed'), TRUE, p_delay_seconds
            );
        EXCEPTION WHEN unique_violation THEN
            NULL;  -- a change was queued for the record between our look and our update: look again
        END;
    END LOOP;
    RAISE EXCEPTION 'could not put write-back job % back in line (the record keeps changing)', p_id
        USING ERRCODE = '40001';
END
$$;

-- Claim up to p_limit due write-backs of one account (NULL org / source: any) for p_lease_seconds, and apply
-- the ordering rules before anything is sent. Returns every job it claimed, in id order, with a disposition:
--   'send'      still ours (lease_token set): send job ->> 'payload';
--   'coalesced' several claimed jobs of one record (an expired lease plus a later change): the oldest takes
--               the merged values (later ones win per field) and goes out once; the others completed as
--               {"coalesced_into": oldest}; a held-back job merged into an older open job also shows here;
--   'held_back' an older job of its record is still open or in flight elsewhere (a live lease, or a worker
--               that died until its lease expires): sending now could let the older write land last, so it
--               was released (no attempt spent) to look again after p_hold_back_seconds.
-- All in one transaction with the claim: no other worker can see a half-applied state.
CREATE OR REPLACE FUNCTION crm.writeback_claim(
    p_org_id uuid, p_source text, p_worker text, p_limit integer DEFAULT 100,
    p_lease_seconds double precision DEFAULT 120, p_hold_back_seconds double precision DEFAULT 1
) RETURNS TABLE (org_id uuid, id bigint, lease_token uuid, attempts integer, disposition text, job jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_orgs uuid [];
    v_ids bigint [];
    v_tokens uuid [];
    v_grp record;
    v_row record;
    v_payload jsonb;
    v_queued jsonb;
BEGIN
    SELECT array_agg(c.org_id ORDER BY c.id), array_agg(c.id ORDER BY c.id), array_agg(c.lease_token ORDER BY c.id)
    INTO v_orgs, v_ids, v_tokens
    FROM crm.queue_claim('crm.writeback_queue', p_worker, p_limit, p_lease_seconds, p_org_id, p_source) AS c;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    -- several claimed jobs of one record: one send, in order
    FOR v_grp IN
        SELECT w.org_id, array_agg(w.id ORDER BY w.id) AS ids, min(w.priority) AS priority
        FROM crm.writeback_queue AS w
        INNER JOIN unnest(v_orgs, v_ids) AS c (org_id, id) ON w.org_id = c.org_id AND w.id = c.id
        WHERE w.operation IN ('update', 'create')
        GROUP BY w.org_id, w.crm_source, w.entity_type, w.operation,
            CASE WHEN w.operation = 'update' THEN w.crm_record_id ELSE w.match_key END
        HAVING count(*) > 1
    LOOP
        v_payload := '{}'::jsonb;
        v_queued := '{}'::jsonb;
        FOR v_row IN
            SELECT w.payload, w.field_queued_at FROM crm.writeback_queue AS w
            WHERE w.org_id = v_grp.org_id AND w.id = any(v_grp.ids)
            ORDER BY w.id
        LOOP
            v_payload := v_payload || v_row.payload;
            v_queued := v_queued || v_row.field_queued_at;
        END LOOP;
        UPDATE crm.writeback_queue AS w
        SET payload = v_payload, field_queued_at = v_queued, priority = v_grp.priority, updated_at = now()
        WHERE w.org_id = v_grp.org_id AND w.id = v_grp.ids[1];
        UPDATE crm.writeback_queue AS w
        SET status = 'completed', completed_at = now(), updated_at = now(), lease_token = NULL, leased_until = NULL,
            result = jsonb_build_object('coalesced_into', v_grp.ids[1])
        WHERE w.org_id = v_grp.org_id AND w.id = any(v_grp.ids[2:]);
    END LOOP;

    -- an older job of the record open or in flight elsewhere: hold this one back
    FOR v_row IN
        SELECT x.org_id, x.id, x.lease_token, x.older FROM (
            SELECT c.org_id, c.id, c.token AS lease_token,
                CASE WHEN w.operation = 'update' THEN (
                    SELECT min(o.id) FROM crm.writeback_queue AS o
                    WHERE o.org_id = w.org_id AND o.crm_source = w.crm_source AND o.entity_type = w.entity_type
                        AND o.crm_record_id = w.crm_record_id AND o.operation = 'update' AND o.id < w.id
                        AND o.status IN ('pending', 'failed', 'processing') AND o.id <> all(v_ids)
                ) ELSE (
                    SELECT min(o.id) FROM crm.writeback_queue AS o
                    WHERE o.org_id = w.org_id AND o.crm_source = w.crm_source AND o.entity_type = w.entity_type
                        AND o.match_key = w.match_key AND o.operation = 'create' AND o.id < w.id
                        AND o.status IN ('pending', 'failed', 'processing') AND o.id <> all(v_ids)
                ) END AS older
            FROM unnest(v_orgs, v_ids, v_tokens) AS c (org_id, id, token)
            INNER JOIN crm.writeback_queue AS w ON w.org_id = c.org_id AND w.id = c.id
            WHERE w.status = 'processing' AND w.lease_token = c.token AND w.operation IN ('update', 'create')
        ) AS x
        WHERE x.older IS NOT NULL
        ORDER BY x.id
    LOOP
        PERFORM crm.writeback_reopen(
            v_row.org_id, v_row.id, v_row.lease_token, 'release', p_hold_back_seconds,
            format('held back: an older write to this record (job %s) is open', v_row.older)
        );
    END LOOP;

    RETURN QUERY
    SELECT w.org_id, w.id,
        CASE WHEN w.status = 'processing' AND w.lease_token = c.token THEN w.lease_token END,
        w.attempts,
        CASE
            WHEN w.status = 'processing' AND w.lease_token = c.token THEN 'send'
            WHEN w.status = 'completed' AND w.result ? 'coalesced_into' THEN 'coalesced'
            ELSE 'held_back'
        END,
        to_jsonb(w.*)
    FROM unnest(v_orgs, v_ids, v_tokens) AS c (org_id, id, token)
    INNER JOIN crm.writeback_queue AS w ON w.org_id = c.org_id AND w.id = c.id
    ORDER BY w.id;
END
$$;

-- Before sending: extend the leases still ours (jobs p_ids of one org under p_tokens) to p_lease_seconds from
-- now, and return each such job's payload as it is now. Guarantee: a job not returned is no longer ours (its
-- lease expired and another worker claimed it, or a webhook superseded every field it had) and must not be
-- sent; a returned payload lacks the fields the CRM changed after they were queued (writeback_drop_superseded
-- also edits jobs in flight).
CREATE OR REPLACE FUNCTION crm.writeback_renew(
    p_org_id uuid, p_ids bigint[], p_tokens uuid[], p_lease_seconds double precision
) RETURNS TABLE (id bigint, payload jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    IF p_lease_seconds IS NULL OR p_lease_seconds <= 0 THEN
        RAISE EXCEPTION 'writeback_renew: the lease must be a positive number of seconds' USING ERRCODE = 'CX002';
    END IF;
    RETURN QUERY
    UPDATE crm.writeback_queue AS w
    SET leased_until = clock_timestamp() + make_interval(secs => p_lease_seconds), updated_at = now()
    FROM unnest(p_ids, p_tokens) AS t (id, token)
    WHERE w.org_id = p_org_id AND w.id = t.id AND w.lease_token = t.token AND w.status = 'processing'
    RETURNING w.id, w.payload;
END
$$;

-- A create landed in the CRM as p_crm_record_id: index the new record (crm.enqueue_hydration, deduplicated per
-- record) and link the org's local tier-2 contact with the same email (p_match_key) to it. Idempotent.
CREATE OR REPLACE FUNCTION crm.writeback_after_create(
    p_org_id uuid, p_source text, p_entity_type text, p_match_key text, p_crm_record_id text
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_object text := CASE p_entity_type
        WHEN 'contact' THEN 'contacts' WHEN 'company' THEN 'companies' WHEN 'deal' THEN 'deals'
    END;
BEGIN
    IF v_object IS NULL OR nullif(p_crm_record_id, '') IS NULL THEN
        RETURN;
    END IF;
    PERFORM crm.enqueue_hydration(p_org_id, p_source, v_object, ARRAY[p_crm_record_id]);
    IF p_entity_type = 'contact' THEN
        UPDATE crm.contact_record AS r
        SET crm_source = p_source, crm_record_id = p_crm_record_id, updated_at = now()
        WHERE r.org_id = p_org_id AND r.origin = 'local' AND lower(r.email) = p_match_key
            AND r.crm_record_id IS NULL;
    END IF;
END
$$;

-- Record what became of claimed jobs of one org: p_outcomes = [{"id", "lease_token", "action", "error",
-- "delay_s", "crm_record_id"}, ...] with action
--   'complete' the CRM accepted it (a create gives the new record's "crm_record_id": stored as the job's result,
--              then crm.writeback_after_create);
--   'retry'    a retryable failure: the backoff ladder (or "delay_s"), dead-lettered when attempts are spent;
--   'release'  not processed (a 429, a rejected token, a lease that would expire, shutdown): pending again
--              after "delay_s", no attempt spent;
--   'dead'     the CRM will never accept it (a validation error): dead-lettered at once with "error".
-- Guarantees: every change is made under the job's lease token (a worker whose lease was taken over changes
-- nothing; such jobs count as 'lost'); retries and releases keep one open job per record (crm.writeback_reopen).
-- Returns how many jobs took each action (and 'lost').
CREATE OR REPLACE FUNCTION crm.writeback_finish(p_org_id uuid, p_outcomes jsonb)
RETURNS TABLE (action text, jobs integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_o record;
    v_job crm.writeback_queue;
    v_status text;
    v_counts jsonb := '{"complete": 0, "retry": 0, "release": 0, "dead": 0, "lost": 0}'::jsonb;
    v_action text;
BEGIN
    IF p_outcomes IS NULL OR jsonb_typeof(p_outcomes) <> 'array' THEN
        RAISE EXCEPTION 'writeback_finish: outcomes must be a JSON array' USING ERRCODE = 'CX002';
    END IF;
    FOR v_o IN
        SELECT o.* FROM jsonb_to_recordset(p_outcomes) AS o (
            id bigint, lease_token uuid, action text, error text, delay_s double precision, crm_record_id text
        )
        ORDER BY o.id
    LOOP
        v_action := v_o.action;
        IF v_action = 'complete' THEN
            UPDATE crm.writeback_queue AS w
            SET status = 'completed', completed_at = now(), updated_at = now(), lease_token = NULL,
                leased_until = NULL, last_error = NULL,
                result = CASE WHEN v_o.crm_record_id IS NULL THEN w.result
                    ELSE jsonb_build_object('crm_record_id', v_o.crm_record_id) END
            WHERE w.org_id = p_org_id AND w.id = v_o.id AND w.lease_token = v_o.lease_token
                AND w.status = 'processing'
            RETURNING w.* INTO v_job;
            IF NOT FOUND THEN
                v_action := 'lost';
                SELECT w.* INTO v_job FROM crm.writeback_queue AS w WHERE w.org_id = p_org_id AND w.id = v_o.id;
            END IF;
            -- the record exists in the CRM either way: index it and link the local contact
            IF v_job.operation = 'create' AND v_o.crm_record_id IS NOT NULL THEN
                PERFORM crm.writeback_after_create(
                    p_org_id, v_job.crm_source, v_job.entity_type, v_job.match_key, v_o.crm_record_id
                );
            END IF;
        ELSIF v_action = 'dead' THEN
            v_status := crm.queue_fail(
                p_org_id, 'crm.writeback_queue', v_o.id, v_o.lease_token, coalesce(v_o.error, 'failed'), FALSE
            );
            IF v_status IS NULL THEN
                v_action := 'lost';
            ELSE
                PERFORM crm.writeback_after_dead(p_org_id, v_o.id);  -- refetch, log (writeback/records.sql)
            END IF;
        ELSIF v_action IN ('retry', 'release') THEN
            v_status := crm.writeback_reopen(p_org_id, v_o.id, v_o.lease_token, v_action, v_o.delay_s, v_o.error);
            IF v_status IS NULL THEN
                v_action := 'lost';
            ELSIF v_status = 'dead_letter' THEN
                PERFORM crm.writeback_after_dead(p_org_id, v_o.id);
            END IF;
        ELSE
            RAISE EXCEPTION 'writeback_finish: unknown action % for job %', v_o.action, v_o.id
                USING ERRCODE = 'CX002';
        END IF;
        v_counts := jsonb_set(v_counts, ARRAY[v_action], to_jsonb((v_counts ->> v_action)::integer + 1));
    END LOOP;
    RETURN QUERY
    SELECT a.action, (v_counts ->> a.action)::integer
    FROM unnest(ARRAY['complete', 'retry', 'release', 'dead', 'lost']) WITH ORDINALITY AS a (action, n)
    ORDER BY a.n;
END
$$;
