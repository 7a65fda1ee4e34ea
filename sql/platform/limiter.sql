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
    INSERT INTO crm.rate_limit AS r (org_id, crm_source, limit_class, permits, per_seconds, headroom)
    VALUES (p_org_id, p_source, p_class, p_permits, p_per_seconds, p_headroom)
    ON CONFLICT (org_id, crm_source, limit_class) DO UPDATE
        SET permits = excluded.permits, per_seconds = excluded.per_seconds, headroom = excluded.headroom;
END
$$;

-- Reserve p_n permits; returns the seconds to wait before making the call(s).
CREATE OR REPLACE FUNCTION crm.rate_limit_reserve(p_org_id uuid, p_source text, p_class text, p_n integer DEFAULT 1)
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
    RETURNING greatest(v_now, r.tat - make_interval(secs => r.per_seconds / (r.permits * r.headroom)) * p_n)
    INTO v_send;
    IF NOT FOUND THEN
        v_def := crm.rate_limit_default(p_source, p_class);
        INSERT INTO crm.rate_limit (org_id, crm_source, limit_class, permits, per_seconds)
        VALUES (p_org_id, p_source, p_class, v_def.permits, v_def.per_seconds)
        ON CONFLICT DO NOTHING;
        RETURN crm.rate_limit_reserve(p_org_id, p_source, p_class, p_n);
    END IF;
    RETURN greatest(0, extract(EPOCH FROM v_send - v_now))::double precision;
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
