-- platform/limiter.sql: one shared rate limiter per CRM account and limit class (GCRA), held in Postgres.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- The documented limits of each CRM (HubSpot Free/Starter tier; raise with rate_limit_configure).
CREATE OR REPLACE FUNCTION crm.rate_limit_default(
    p_source text, p_class text, OUT permits integer, OUT per_seconds double precision
)
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    CASE p_source || ':' || p_class
        WHEN 'hubspot:general' THEN permits := 100; per_seconds := 10;
        WHEN 'hubspot:search' THEN permits := 5; per_seconds := 1;
        WHEN 'attio:read' THEN permits := 100; per_seconds := 1;
        WHEN 'attio:write' THEN permits := 25; per_seconds := 1;
        WHEN 'hubspot:materialize', 'attio:materialize' THEN permits := 100; per_seconds := 60;
        ELSE
            RAISE EXCEPTION 'no default rate limit for % %', p_source, p_class
                USING ERRCODE = 'CX002', HINT = 'configure it with crm.rate_limit_configure';
    END CASE;
END
$$;

CREATE OR REPLACE FUNCTION crm.rate_limit_configure(
    p_org_id uuid, p_source text, p_class text, p_permits integer, p_per_seconds double precision,
    p_headroom double precision DEFAULT 0.97
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_permits IS NULL OR p_permits <= 0 OR p_per_seconds IS NULL OR p_per_seconds <= 0
        OR p_headroom IS NULL OR p_headroom <= 0 OR p_headroom > 1 THEN
        RAISE EXCEPTION 'rate limit must be a positive number of permits per positive seconds, headroom in (0, 1]'
            USING ERRCODE = 'CX002';
    END IF;
    INSERT INTO crm.rate_limit AS r (org_id, crm_source, limit_class, permits, per_seconds, headroom, origin)
    VALUES (p_org_id, p_source, p_class, p_permits, p_per_seconds, p_headroom, 'configured')
    ON CONFLICT (org_id, crm_source, limit_class) DO UPDATE
        SET permits = excluded.permits, per_seconds = excluded.per_seconds, headroom = excluded.headroom,
            origin = 'configured';
END
$$;

-- What the CRM says the account's limit is (HubSpot: X-HubSpot-RateLimit-Max per -Interval-Milliseconds on every
-- non-search answer: the account's tier, 100 / 190 / 250 per 10 s, or 110 for a public OAuth app; usage
-- guidelines). It replaces the default and earlier observations; an operator's configuration
-- (crm.rate_limit_configure) is kept. Returns whether the limit changed.
CREATE OR REPLACE FUNCTION crm.rate_limit_observe(
    p_org_id uuid, p_source text, p_class text, p_permits integer, p_per_seconds double precision
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_def record;
BEGIN
    IF p_permits IS NULL OR p_permits <= 0 OR p_per_seconds IS NULL OR p_per_seconds <= 0 THEN
        RETURN FALSE;
    END IF;
    UPDATE crm.rate_limit AS r SET permits = p_permits, per_seconds = p_per_seconds, origin = 'observed'
    WHERE r.org_id = p_org_id AND r.crm_source = p_source AND r.limit_class = p_class AND r.origin <> 'configured'
        AND (r.permits, r.per_seconds) IS DISTINCT FROM (p_permits, p_per_seconds);
    IF FOUND THEN
        RETURN TRUE;
    END IF;
    IF EXISTS (
        SELECT 1 FROM crm.rate_limit AS r
        WHERE r.org_id = p_org_id AND r.crm_source = p_source AND r.limit_class = p_class
    ) THEN
        RETURN FALSE;
    END IF;
    v_def := crm.rate_limit_default(p_source, p_class);  -- a class without a default is refused (CX002)
    INSERT INTO crm.rate_limit (org_id, crm_source, limit_class, permits, per_seconds, origin)
    VALUES (p_org_id, p_source, p_class, p_permits, p_per_seconds, 'observed')
    ON CONFLICT DO NOTHING;
    RETURN TRUE;
END
$$;

-- Nobody of the account calls the classes p_classes before p_until (a spent daily budget: p_reason 'DAILY'):
-- their next slot moves there and the hold is recorded (crm.rate_limit_hold_of), so a caller learns why instead of
-- meeting a stream of 429s. A hold never shortens an earlier one.
CREATE OR REPLACE FUNCTION crm.rate_limit_hold(
    p_org_id uuid, p_source text, p_classes text[], p_until timestamptz, p_reason text
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_class text;
    v_def record;
BEGIN
    IF p_until IS NULL OR p_until <= clock_timestamp() THEN
        RETURN;
    END IF;
    FOREACH v_class IN ARRAY p_classes LOOP
        v_def := crm.rate_limit_default(p_source, v_class);
        INSERT INTO crm.rate_limit AS r (
            org_id, crm_source, limit_class, permits, per_seconds, tat, penalized_until, held_until, held_reason
        )
        VALUES (p_org_id, p_source, v_class, v_def.permits, v_def.per_seconds, p_until, p_until, p_until, p_reason)
        ON CONFLICT (org_id, crm_source, limit_class) DO UPDATE
            SET tat = greatest(r.tat, excluded.tat), penalized_until = greatest(r.penalized_until, excluded.tat),
                held_until = greatest(r.held_until, excluded.held_until),
                held_reason = CASE WHEN r.held_until > excluded.held_until THEN r.held_reason ELSE excluded.held_reason END;
    END LOOP;
END
$$;

-- The hold in force on a class (NULLs when none): why a reservation's wait is long.
CREATE OR REPLACE FUNCTION crm.rate_limit_hold_of(
    p_org_id uuid, p_source text, p_class text, OUT held_until timestamptz, OUT held_reason text
)
LANGUAGE sql STABLE AS $$
    SELECT r.held_until, r.held_reason FROM crm.rate_limit AS r
    WHERE r.org_id = p_org_id AND r.crm_source = p_source AND r.limit_class = p_class
        AND r.held_until > clock_timestamp()
$$;

-- The account's daily budget as the CRM reports it (HubSpot: X-HubSpot-RateLimit-Daily and -Daily-Remaining on
-- non-search answers of private apps; "not sent for OAuth" requests: usage guidelines). Recorded on the 'general'
-- row; when no more than p_reserve calls are left, every class of p_classes is held until p_resets_at (the
-- account's midnight: "resets at midnight based on your time zone setting"), so the account never goes over its
-- daily limit (calls in flight elsewhere use the reserve). Returns whether it holds now.
CREATE OR REPLACE FUNCTION crm.rate_limit_daily(
    p_org_id uuid, p_source text, p_daily_limit integer, p_daily_remaining integer, p_resets_at timestamptz,
    p_reserve integer, p_classes text[]
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_def record;
BEGIN
    IF p_daily_limit IS NULL OR p_daily_remaining IS NULL OR p_daily_limit < 0 THEN
        RETURN FALSE;
    END IF;
    v_def := crm.rate_limit_default(p_source, 'general');
    INSERT INTO crm.rate_limit AS r (
        org_id, crm_source, limit_class, permits, per_seconds, daily_limit, daily_remaining, daily_observed_at
    )
    VALUES (p_org_id, p_source, 'general', v_def.permits, v_def.per_seconds, p_daily_limit, p_daily_remaining,
        clock_timestamp())
    ON CONFLICT (org_id, crm_source, limit_class) DO UPDATE
        SET daily_limit = excluded.daily_limit, daily_remaining = excluded.daily_remaining,
            daily_observed_at = excluded.daily_observed_at;
    IF p_daily_remaining <= greatest(coalesce(p_reserve, 0), 0) THEN
        PERFORM crm.rate_limit_hold(p_org_id, p_source, p_classes, p_resets_at, 'DAILY');
        RETURN TRUE;
    END IF;
    RETURN FALSE;
END
$$;

-- The account's limits and holds, per class, for status pages (crmindex status) and operators.
CREATE OR REPLACE FUNCTION crm.rate_limit_status(p_org_id uuid, p_source text DEFAULT NULL)
RETURNS TABLE (
    crm_source text, limit_class text, permits integer, per_seconds double precision, origin text,
    daily_limit integer, daily_remaining integer, daily_observed_at timestamptz, held_until timestamptz,
    held_reason text
)
LANGUAGE sql STABLE AS $$
    SELECT r.crm_source, r.limit_class, r.permits, r.per_seconds, r.origin, r.daily_limit, r.daily_remaining,
        r.daily_observed_at, CASE WHEN r.held_until > clock_timestamp() THEN r.held_until END,
        CASE WHEN r.held_until > clock_timestamp() THEN r.held_reason END
    FROM crm.rate_limit AS r
    WHERE r.org_id = p_org_id AND (p_source IS NULL OR r.crm_source = p_source)
    ORDER BY r.crm_source, r.limit_class
$$;

-- Reserve p_n permits unless the wait for them would be longer than p_max_wait_s (NULL: any wait); returns
-- the seconds to wait before making the call(s). Guarantee: a wait above p_max_wait_s is returned with
-- nothing reserved, so a caller that cannot wait that long (a drainer whose lease would expire meanwhile)
-- gives up without pushing every other caller of the account back. The GCRA step: the call may go at the
-- row's theoretical arrival time (tat), which moves one emission interval (per_seconds / (permits *
-- headroom)) per permit.
CREATE OR REPLACE FUNCTION crm.rate_limit_reserve_within(
    p_org_id uuid, p_source text, p_class text, p_n integer, p_max_wait_s double precision
)
RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_send timestamptz;
    v_def record;
BEGIN
    IF p_n IS NULL OR p_n < 1 THEN
        RAISE EXCEPTION 'permits to reserve must be >= 1' USING ERRCODE = 'CX002';
    END IF;
    UPDATE crm.rate_limit AS r
    SET
        tat = greatest(r.tat, v_now) + make_interval(secs => r.per_seconds / (r.permits * r.headroom)) * p_n,
        reserved = r.reserved + p_n
    WHERE r.org_id = p_org_id AND r.crm_source = p_source AND r.limit_class = p_class
        AND (p_max_wait_s IS NULL OR r.tat <= v_now + make_interval(secs => greatest(p_max_wait_s, 0)))
    RETURNING greatest(v_now, r.tat - make_interval(secs => r.per_seconds / (r.permits * r.headroom)) * p_n)
    INTO v_send;
    IF NOT FOUND THEN
        SELECT r.tat INTO v_send
        FROM crm.rate_limit AS r
        WHERE r.org_id = p_org_id AND r.crm_source = p_source AND r.limit_class = p_class;
        IF FOUND THEN  -- the wait is longer than the caller can wait: nothing reserved
            RETURN greatest(0, extract(EPOCH FROM v_send - v_now))::double precision;
        END IF;
        v_def := crm.rate_limit_default(p_source, p_class);
        INSERT INTO crm.rate_limit (org_id, crm_source, limit_class, permits, per_seconds)
        VALUES (p_org_id, p_source, p_class, v_def.permits, v_def.per_seconds)
        ON CONFLICT DO NOTHING;
        RETURN crm.rate_limit_reserve_within(p_org_id, p_source, p_class, p_n, p_max_wait_s);
    END IF;
    RETURN greatest(0, extract(EPOCH FROM v_send - v_now))::double precision;
END
$$;

-- Reserve p_n permits; returns the seconds to wait before making the call(s).
CREATE OR REPLACE FUNCTION crm.rate_limit_reserve(p_org_id uuid, p_source text, p_class text, p_n integer DEFAULT 1)
RETURNS double precision
LANGUAGE sql
RETURN crm.rate_limit_reserve_within(p_org_id, p_source, p_class, p_n, NULL);

-- Take up to p_want permits of a budget now, never waiting: returns how many were taken and the seconds
-- until the next permit. A budget (e.g. class 'materialize': tier-2 fetches per org) may be spent a whole
-- window (per_seconds) at once, then one permit per emission interval. Guarantee: when nothing is taken
-- nothing is reserved, so callers that wait (queued jobs released until the budget allows them) never push
-- the budget further out; an account without a row gets the class's default budget
-- (crm.rate_limit_default). Workers call it (crmindex.records.materialize_many and the queued materializations);
-- a session bound to an org takes only that org's permits (crm.assert_org).
CREATE OR REPLACE FUNCTION crm.rate_limit_take(
    p_org_id uuid, p_source text, p_class text, p_want integer,
    OUT taken integer, OUT next_in_s double precision
)
LANGUAGE plpgsql AS $$
DECLARE
    v_row record;
    v_def record;
    v_interval double precision;
    v_wait double precision;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    taken := 0;
    next_in_s := 0;
    IF p_want IS NULL OR p_want < 1 THEN
        RETURN;
    END IF;
    SELECT
        r.per_seconds / (r.permits * r.headroom) AS emission,
        r.per_seconds AS window_s,
        extract(EPOCH FROM greatest(r.tat, clock_timestamp()) - clock_timestamp())::double precision AS wait
    INTO v_row
    FROM crm.rate_limit AS r
    WHERE r.org_id = p_org_id AND r.crm_source = p_source AND r.limit_class = p_class
    FOR UPDATE;
    IF NOT FOUND THEN
        v_def := crm.rate_limit_default(p_source, p_class);
        INSERT INTO crm.rate_limit (org_id, crm_source, limit_class, permits, per_seconds)
        VALUES (p_org_id, p_source, p_class, v_def.permits, v_def.per_seconds)
        ON CONFLICT DO NOTHING;
        SELECT t.taken, t.next_in_s INTO taken, next_in_s
        FROM crm.rate_limit_take(p_org_id, p_source, p_class, p_want) AS t;
        RETURN;
    END IF;
    v_interval := v_row.emission;
    v_wait := v_row.wait;
    IF v_wait <= v_row.window_s THEN
        taken := least(p_want, floor((v_row.window_s - v_wait) / v_interval)::integer + 1);
    END IF;
    IF taken > 0 THEN
        UPDATE crm.rate_limit AS r
        SET tat = greatest(r.tat, clock_timestamp()) + make_interval(secs => v_interval * taken),
            reserved = r.reserved + taken
        WHERE r.org_id = p_org_id AND r.crm_source = p_source AND r.limit_class = p_class;
    END IF;
    next_in_s := greatest(0, v_wait + v_interval * taken - v_row.window_s);
END
$$;

-- A 429 (or Retry-After) seen by any worker: nobody of this account calls this class for p_wait_s.
CREATE OR REPLACE FUNCTION crm.rate_limit_penalize(
    p_org_id uuid, p_source text, p_class text, p_wait_s double precision
)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_until timestamptz := clock_timestamp() + make_interval(secs => greatest(coalesce(p_wait_s, 0), 0));
    v_def record;
BEGIN
    UPDATE crm.rate_limit AS r
    SET
        tat = greatest(r.tat, v_until),
        penalized_until = greatest(r.penalized_until, v_until),
        penalties = r.penalties + 1
    WHERE r.org_id = p_org_id AND r.crm_source = p_source AND r.limit_class = p_class;
    IF NOT FOUND THEN
        v_def := crm.rate_limit_default(p_source, p_class);
        INSERT INTO crm.rate_limit AS r (org_id, crm_source, limit_class, permits, per_seconds, tat, penalized_until,
            penalties)
        VALUES (p_org_id, p_source, p_class, v_def.permits, v_def.per_seconds, v_until, v_until, 1)
        ON CONFLICT (org_id, crm_source, limit_class) DO UPDATE
            SET tat = greatest(r.tat, v_until), penalized_until = greatest(r.penalized_until, v_until),
                penalties = r.penalties + 1;
    END IF;
END
$$;
