-- 0004_rate_limit: one shared rate limiter per CRM account and limit class, held in Postgres.
--
-- GCRA with reservations: each call reserves the next free slot and is told how long to wait for it,
-- so any number of processes on any number of machines stay under the account's limit together, with
-- one short UPDATE per call and no polling. The database clock (clock_timestamp()) is the only clock.
--
--   crm.rate_limit_reserve(p_org_id, p_source, p_class, p_n)  -> seconds to wait before sending
--   crm.rate_limit_penalize(p_org_id, p_source, p_class, p_wait_s)  -> a 429: everyone waits
--   crm.rate_limit_configure(p_org_id, p_source, p_class, p_permits, p_per_seconds, p_headroom)
--
-- Emission interval T = window / (permits * headroom): with no burst allowance the most calls in any
-- window is 1 + permits * headroom, so the default headroom of 0.97 stays under the CRM's limit even
-- with some network jitter (HubSpot 100 per 10 s -> at most 98 in any 10 s window).

CREATE TABLE crm.rate_limit (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    limit_class text NOT NULL CHECK (limit_class ~ '^[a-z_]+$'),
    permits integer NOT NULL CHECK (permits > 0),
    per_seconds double precision NOT NULL CHECK (per_seconds > 0),
    headroom double precision NOT NULL DEFAULT 0.97 CHECK (headroom > 0 AND headroom <= 1),
    tat timestamptz NOT NULL DEFAULT '-infinity',
    penalized_until timestamptz,
    penalties integer NOT NULL DEFAULT 0,
    reserved bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, crm_source, limit_class)
) WITH (fillfactor = 50);

ALTER TABLE crm.rate_limit ENABLE ROW LEVEL SECURITY;
CREATE POLICY rate_limit_app ON crm.rate_limit TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY rate_limit_worker ON crm.rate_limit TO crm_worker USING (TRUE) WITH CHECK (TRUE);
GRANT SELECT, INSERT, UPDATE, DELETE ON crm.rate_limit TO crm_app, crm_worker;

-- The documented limits of each CRM (HubSpot Free/Starter tier; raise with rate_limit_configure).
CREATE FUNCTION crm.rate_limit_default(
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

CREATE FUNCTION crm.rate_limit_configure(
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
CREATE FUNCTION crm.rate_limit_reserve(p_org_id uuid, p_source text, p_class text, p_n integer DEFAULT 1)
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
CREATE FUNCTION crm.rate_limit_penalize(p_org_id uuid, p_source text, p_class text, p_wait_s double precision)
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

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA crm TO crm_app, crm_worker;
