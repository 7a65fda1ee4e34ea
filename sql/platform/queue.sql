-- platform/queue.sql: the one job-queue core (claim / lease / fence / backoff / dead letter).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).
--
-- Any table that carries the queue columns below is a queue; the functions take the table as a regclass,
-- so the webhook inbox, the generic job table and the write-back queue share one implementation:
--
--   org_id uuid, id bigint, crm_source text, status text, priority smallint, attempts integer,
--   max_attempts integer, next_retry_at timestamptz, lease_token uuid, leased_until timestamptz,
--   locked_by text, last_error text, created_at timestamptz, updated_at timestamptz, completed_at timestamptz
--
-- Life of a job:  pending --claim--> processing --complete--> completed
--                                     |--fail (retryable)--> failed (next_retry_at = backoff) --claim--> ...
--                                     |--fail (permanent, or attempts exhausted)--> dead_letter --requeue--> pending
--                                     |--release (429, shutdown)--> pending at next_retry_at, attempt not spent
--                                     '--lease expires (worker died)--> claimable again by anyone
-- A claim sets a fresh lease_token; complete/fail/release/extend only act under that token (fencing), so a
-- worker whose lease was taken over cannot change the job any more.
-- Backoff ladder: 1 min, 5 min, 30 min, 2 h, 12 h; with the default max_attempts = 6 the sixth failure
-- dead-letters the job with its last error.
CREATE OR REPLACE FUNCTION crm.queue_backoff(p_attempts integer) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN make_interval(
    secs => (ARRAY[60, 300, 1800, 7200, 43200])[least(greatest(p_attempts, 1), 5)]
);

-- Wake listening workers once per inserting statement: NOTIFY crm_queue, '<table name>'.
CREATE OR REPLACE FUNCTION crm.queue_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crm_queue', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

-- Enqueue a generic job; with a dedupe key an open job of the same kind and key absorbs it
-- (payload merged, later keys win). Returns the job id.
CREATE OR REPLACE FUNCTION crm.enqueue_job(
    p_org_id uuid, p_kind text, p_payload jsonb DEFAULT '{}'::jsonb, p_source text DEFAULT NULL,
    p_dedupe_key text DEFAULT NULL, p_priority smallint DEFAULT 5, p_run_at timestamptz DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    INSERT INTO crm.job AS j (org_id, crm_source, kind, payload, dedupe_key, priority, next_retry_at)
    VALUES (p_org_id, p_source, p_kind, coalesce(p_payload, '{}'::jsonb), p_dedupe_key, p_priority,
        coalesce(p_run_at, now()))
    ON CONFLICT (org_id, kind, dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'failed')
    DO UPDATE SET payload = j.payload || excluded.payload, priority = least(j.priority, excluded.priority),
        updated_at = now()
    RETURNING j.id INTO v_id;
    RETURN v_id;
END
$$;

-- Enqueue many jobs of one kind in one statement: p_items = [{"dedupe_key": ..., "payload": {...}}, ...].
-- Items sharing a dedupe key with an open job coalesce into it. Returns how many items were taken.
CREATE OR REPLACE FUNCTION crm.enqueue_jobs(p_org_id uuid, p_kind text, p_source text, p_items jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    INSERT INTO crm.job AS j (org_id, crm_source, kind, payload, dedupe_key)
    SELECT DISTINCT ON (coalesce(i.item ->> 'dedupe_key', i.ord::text))
        p_org_id, p_source, p_kind, coalesce(i.item -> 'payload', '{}'::jsonb), i.item ->> 'dedupe_key'
    FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i (item, ord)
    ORDER BY coalesce(i.item ->> 'dedupe_key', i.ord::text), i.ord DESC
    ON CONFLICT (org_id, kind, dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'failed')
    DO UPDATE SET payload = j.payload || excluded.payload, updated_at = now();
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Claim up to p_limit due jobs (pending/failed and due, or processing with an expired lease), oldest
-- first by priority; optionally only one org and/or CRM source (one account, for batching and rate limits)
-- and/or one kind (tables with a kind column). Returns each job as jsonb with its fresh lease token.
CREATE OR REPLACE FUNCTION crm.queue_claim(
    p_queue regclass, p_worker text, p_limit integer DEFAULT 10, p_lease_seconds double precision DEFAULT 60,
    p_org_filter uuid DEFAULT NULL, p_source text DEFAULT NULL, p_kind text DEFAULT NULL
) RETURNS TABLE (org_id uuid, id bigint, lease_token uuid, attempts integer, job jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_filter text := '';
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RETURN;
    END IF;
    IF p_org_filter IS NOT NULL THEN
        v_filter := v_filter || format(' AND q.org_id = %L', p_org_filter);
    END IF;
    IF p_source IS NOT NULL THEN
        v_filter := v_filter || format(' AND q.crm_source = %L', p_source);
    END IF;
    IF p_kind IS NOT NULL THEN
        v_filter := v_filter || format(' AND q.kind = %L', p_kind);
    END IF;
    RETURN QUERY EXECUTE format(
        $f$
        WITH due AS (
            SELECT q.org_id, q.id FROM %1$s AS q
            WHERE q.status IN ('pending', 'failed') AND q.next_retry_at <= clock_timestamp() %2$s
            ORDER BY q.priority, q.next_retry_at, q.id
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ),
        expired AS (
            SELECT q.org_id, q.id FROM %1$s AS q
            WHERE q.status = 'processing' AND q.leased_until < clock_timestamp() %2$s
            ORDER BY q.leased_until
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ),
        picked AS (
            SELECT u.org_id, u.id FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) AS u LIMIT $1
        )
        UPDATE %1$s AS j
        SET status = 'processing', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
            leased_until = clock_timestamp() + make_interval(secs => $2), locked_by = $3, updated_at = now()
        FROM picked
        WHERE j.org_id = picked.org_id AND j.id = picked.id
        RETURNING j.org_id, j.id, j.lease_token, j.attempts, to_jsonb(j.*)
        $f$,
        p_queue, v_filter
    ) USING p_limit, p_lease_seconds, p_worker;
END
$$;

-- Complete jobs under their lease tokens; returns how many were still ours.
CREATE OR REPLACE FUNCTION crm.queue_complete(p_queue regclass, p_org_ids uuid[], p_ids bigint[], p_tokens uuid[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    EXECUTE format(
        $f$
        UPDATE %s AS j
        SET status = 'completed', completed_at = now(), updated_at = now(), lease_token = NULL,
            leased_until = NULL, last_error = NULL
        FROM unnest($1::uuid [], $2::bigint [], $3::uuid []) AS d (org_id, id, token)
        WHERE j.org_id = d.org_id AND j.id = d.id AND j.lease_token = d.token AND j.status = 'processing'
        $f$,
        p_queue
    ) USING p_org_ids, p_ids, p_tokens;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Record a failure under the lease token. Retryable failures wait on the backoff ladder (or
-- p_retry_in_seconds when the CRM said how long) until attempts are exhausted; permanent ones
-- dead-letter at once. Returns the job's new status, or NULL when the lease was no longer ours.
CREATE OR REPLACE FUNCTION crm.queue_fail(
    p_org_id uuid, p_queue regclass, p_id bigint, p_token uuid, p_error text,
    p_retryable boolean DEFAULT TRUE, p_retry_in_seconds double precision DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    EXECUTE format(
        $f$
        UPDATE %s AS j
        SET status = CASE WHEN $5 AND j.attempts < j.max_attempts THEN 'failed' ELSE 'dead_letter' END,
            next_retry_at = clock_timestamp()
                + coalesce(make_interval(secs => $6), crm.queue_backoff(j.attempts)),
            last_error = left($4, 4000), lease_token = NULL, leased_until = NULL, updated_at = now()
        WHERE j.org_id = $1 AND j.id = $2 AND j.lease_token = $3 AND j.status = 'processing'
        RETURNING j.status
        $f$,
        p_queue
    ) INTO v_status USING p_org_id, p_id, p_token, p_error, p_retryable, p_retry_in_seconds;
    RETURN v_status;
END
$$;

-- Give a job back without spending an attempt (a 429, a shutdown): pending again after p_delay_seconds.
CREATE OR REPLACE FUNCTION crm.queue_release(
    p_org_id uuid, p_queue regclass, p_id bigint, p_token uuid, p_delay_seconds double precision DEFAULT 0,
    p_note text DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    EXECUTE format(
        $f$
        UPDATE %s AS j
        SET status = 'pending', attempts = greatest(j.attempts - 1, 0), lease_token = NULL, leased_until = NULL,
            next_retry_at = clock_timestamp() + make_interval(secs => greatest($4, 0)),
            last_error = coalesce($5, j.last_error), updated_at = now()
        WHERE j.org_id = $1 AND j.id = $2 AND j.lease_token = $3 AND j.status = 'processing'
        $f$,
        p_queue
    ) USING p_org_id, p_id, p_token, coalesce(p_delay_seconds, 0), p_note;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n = 1;
END
$$;

-- Heartbeat: keep a long job's lease. False when the lease is no longer ours.
CREATE OR REPLACE FUNCTION crm.queue_extend(
    p_org_id uuid, p_queue regclass, p_id bigint, p_token uuid, p_lease_seconds double precision
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    EXECUTE format(
        $f$
        UPDATE %s AS j SET leased_until = clock_timestamp() + make_interval(secs => $4), updated_at = now()
        WHERE j.org_id = $1 AND j.id = $2 AND j.lease_token = $3 AND j.status = 'processing'
        $f$,
        p_queue
    ) USING p_org_id, p_id, p_token, p_lease_seconds;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n = 1;
END
$$;

-- Put dead letters (all of an org, or the given ids) back in line with fresh attempts. A job whose return
-- would break a queue's uniqueness (e.g. a newer open write-back for the same record) stays dead.
CREATE OR REPLACE FUNCTION crm.queue_requeue(p_org_id uuid, p_queue regclass, p_ids bigint[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer := 0;
    v_id bigint;
    v_sql text := format(
        'UPDATE %s AS j SET status = ''pending'', attempts = 0, next_retry_at = now(), updated_at = now() '
        'WHERE j.org_id = $1 AND j.status = ''dead_letter'' AND j.id = ANY($2)',
        p_queue
    );
    v_ids bigint[];
BEGIN
    PERFORM crm.assert_org(p_org_id);
    EXECUTE format(
        'SELECT array_agg(j.id ORDER BY j.id) FROM %s AS j WHERE j.org_id = $1 AND j.status = ''dead_letter'' '
        'AND ($2::bigint [] IS NULL OR j.id = ANY($2))',
        p_queue
    ) INTO v_ids USING p_org_id, p_ids;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    BEGIN
        EXECUTE v_sql USING p_org_id, v_ids;
        GET DIAGNOSTICS v_n = ROW_COUNT;
    EXCEPTION WHEN unique_violation THEN
        v_n := 0;
        FOREACH v_id IN ARRAY v_ids LOOP
            BEGIN
                EXECUTE v_sql USING p_org_id, ARRAY[v_id];
                v_n := v_n + 1;
            EXCEPTION WHEN unique_violation THEN
                NULL;  -- superseded by a newer open job: stays a dead letter
            END;
        END LOOP;
    END;
    RETURN v_n;
END
$$;

-- Maintenance (pg_cron): expired leases of dead workers back to pending (or dead_letter when their
-- attempts are spent). Claims also take expired leases, so this only keeps status counts honest. A job
-- that cannot go back without breaking a queue's uniqueness (a newer open write-back for the same record)
-- is left for the next claim, which merges it.
CREATE OR REPLACE FUNCTION crm.queue_reclaim_expired(p_queue regclass) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer := 0;
    v_key record;
    v_sql text := format(
        $f$
        UPDATE %s AS j
        SET status = CASE WHEN j.attempts < j.max_attempts THEN 'pending' ELSE 'dead_letter' END,
            last_error = coalesce(j.last_error, 'lease expired: the worker stopped before finishing'),
            lease_token = NULL, leased_until = NULL, updated_at = now()
        WHERE j.status = 'processing' AND j.leased_until < clock_timestamp() AND ($1::uuid IS NULL OR
            (j.org_id = $1 AND j.id = $2))
        $f$,
        p_queue
    );
BEGIN
    BEGIN
        EXECUTE v_sql USING NULL::uuid, NULL::bigint;
        GET DIAGNOSTICS v_n = ROW_COUNT;
    EXCEPTION WHEN unique_violation THEN
        v_n := 0;
        FOR v_key IN EXECUTE format(
            'SELECT j.org_id, j.id FROM %s AS j WHERE j.status = ''processing'' '
            'AND j.leased_until < clock_timestamp()',
            p_queue
        ) LOOP
            BEGIN
                EXECUTE v_sql USING v_key.org_id, v_key.id;
                v_n := v_n + 1;
            EXCEPTION WHEN unique_violation THEN
                NULL;
            END;
        END LOOP;
    END;
    RETURN v_n;
END
$$;

-- Maintenance (pg_cron): delete completed jobs older than p_older_than.
CREATE OR REPLACE FUNCTION crm.queue_purge_completed(p_queue regclass, p_older_than interval DEFAULT '7 days')
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    EXECUTE format(
        'DELETE FROM %s AS j WHERE j.status = ''completed'' AND j.completed_at < now() - $1', p_queue
    ) USING p_older_than;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Queue health by org and status: counts and the oldest waiting job's age (all orgs, or one).
CREATE OR REPLACE FUNCTION crm.queue_stats(p_queue regclass, p_org_filter uuid DEFAULT NULL)
RETURNS TABLE (org_id uuid, status text, jobs bigint, oldest_age interval, last_error text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        $f$
        SELECT j.org_id, j.status, count(*), now() - min(j.created_at),
            (array_agg(j.last_error ORDER BY j.updated_at DESC) FILTER (WHERE j.last_error IS NOT NULL))[1]
        FROM %s AS j
        WHERE $1::uuid IS NULL OR j.org_id = $1
        GROUP BY j.org_id, j.status
        ORDER BY j.org_id, j.status
        $f$,
        p_queue
    ) USING p_org_filter;
END
$$;

-- Push an account's waiting jobs of a queue-core table p_delay_s out, attempts untouched: no worker of any
-- process sends them while the CRM rejects the account's token (p_kind narrows crm.job to one kind). The number held.
-- Jobs locked right now (being claimed, finished or merged by another session) are skipped, not waited for: a plain
-- multi-row UPDATE keeps the locks it takes on rows that changed under it (claimed meanwhile) and so could deadlock
-- with a drainer renewing them; a job skipped meets the rejected token and is held by its own worker.
CREATE OR REPLACE FUNCTION crm.queue_hold_account(
    p_org_id uuid, p_queue text, p_source text, p_note text, p_delay_s double precision, p_kind text DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_queue IS NULL OR p_queue NOT IN ('crm.writeback_queue', 'crm.job', 'crm.webhook_inbox') THEN
        RAISE EXCEPTION 'unknown queue %', coalesce(quote_literal(left(p_queue, 60)), 'NULL') USING ERRCODE = 'CX002';
    END IF;
    EXECUTE format(
        'UPDATE %1$s AS j '
        'SET next_retry_at = greatest(j.next_retry_at, clock_timestamp() + make_interval(secs => $1)), '
        'last_error = $2, updated_at = now() '
        'FROM (SELECT q.org_id, q.id FROM %1$s AS q WHERE q.org_id = $3 AND q.crm_source = $4 '
        'AND q.status IN (''pending'', ''failed'') AND ($5::text IS NULL OR %2$s) FOR UPDATE SKIP LOCKED) AS h '
        'WHERE j.org_id = h.org_id AND j.id = h.id',
        p_queue,
        CASE WHEN p_queue = 'crm.job' THEN 'q.kind = $5' ELSE 'TRUE' END
    )
    USING least(greatest(coalesce(p_delay_s, 60), 0), 86400), left(p_note, 4000), p_org_id, p_source, p_kind;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
