-- crm/connections.sql: the CRM accounts connected to each org.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- One CRM account belongs to one org: webhooks are routed by portal / workspace id. The check runs as the
-- table owner, whoever inserts (row-level security would hide another org's connection). A unique index on
-- (crm_source, account_id) would not start with org_id, which distributed (Citus) tables require; the advisory
-- lock serializes concurrent claims of one account.
CREATE OR REPLACE FUNCTION crm.connection_account_unique() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('crm.connection:' || new.crm_source || ':' || new.account_id, 0));
    IF EXISTS (
        SELECT 1 FROM crm.connection AS c
        WHERE c.crm_source = new.crm_source AND c.account_id = new.account_id AND c.org_id <> new.org_id
    ) THEN
        RAISE EXCEPTION '% account % is already connected to another org', new.crm_source, new.account_id
            USING ERRCODE = 'CX002';
    END IF;
    RETURN NULL;
END
$$;

-- Connection management (connect, secrets, OAuth state, status) is an operator path: the worker role, a
-- superuser or the schema owner, never an application session (which sees one org). Raises CX003 otherwise.
-- (Defense in depth: platform/grants.sql gives these functions to crm_worker only.)
CREATE OR REPLACE FUNCTION crm.assert_operator() RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT crm.session_sees_every_org() THEN
        RAISE EXCEPTION 'managing CRM connections and their secrets is an operator path (role crm_worker)'
            USING ERRCODE = 'CX003';
    END IF;
END
$$;

-- Register (or refresh) the org's connection to the account its token proved (crmindex.crm.connections finds
-- the account id in the CRM's token info, never takes it from a caller). The org row is created when missing.
-- One account belongs to one org (trigger crm.connection_account_unique, CX002); an org connected to one
-- account is not silently moved to another (its index holds the first account's records): disconnect first.
CREATE OR REPLACE FUNCTION crm.connection_register(
    p_org_id uuid,
    p_source text,
    p_account_id text,
    p_auth_kind text,
    p_base_url text DEFAULT NULL,
    p_scopes text[] DEFAULT '{}',
    p_settings jsonb DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_current text;
BEGIN
    PERFORM crm.assert_operator();
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    IF p_account_id IS NULL OR btrim(p_account_id) = '' OR length(p_account_id) > 200
        OR p_account_id !~ '^[[:print:]]+$' THEN
        RAISE EXCEPTION 'account id must be 1 to 200 printable characters' USING ERRCODE = 'CX002';
    END IF;
    IF p_auth_kind IS NULL OR p_auth_kind NOT IN ('oauth', 'private_app') THEN
        RAISE EXCEPTION 'auth kind must be oauth or private_app' USING ERRCODE = 'CX002';
    END IF;
    IF p_base_url IS NOT NULL AND (length(p_base_url) > 2000 OR p_base_url !~ '^https?://[^/?#@[:space:]]+') THEN
        RAISE EXCEPTION 'base URL must be an http(s) URL of at most 2000 characters' USING ERRCODE = 'CX002';
    END IF;
    IF cardinality(coalesce(p_scopes, '{}')) > 200 THEN
        RAISE EXCEPTION 'at most 200 scopes' USING ERRCODE = 'CX002';
    END IF;
    IF p_settings IS NOT NULL AND (jsonb_typeof(p_settings) <> 'object' OR length(p_settings::text) > 100000) THEN
        RAISE EXCEPTION 'settings must be a JSON object of at most 100000 characters' USING ERRCODE = 'CX002';
    END IF;
    INSERT INTO crm.org (org_id) VALUES (p_org_id) ON CONFLICT (org_id) DO NOTHING;
    SELECT c.account_id INTO v_current
    FROM crm.connection AS c
    WHERE c.org_id = p_org_id AND c.crm_source = p_source
    FOR UPDATE;
    IF FOUND AND v_current <> p_account_id THEN
        RAISE EXCEPTION 'org % is connected to % account %, not %: disconnect it first', p_org_id, p_source,
            v_current, p_account_id USING ERRCODE = 'CX002';
    END IF;
    INSERT INTO crm.connection AS c (
        org_id, crm_source, account_id, base_url, settings, auth_kind, scopes, status, status_reason, status_at,
        connected_at
    )
    VALUES (
        p_org_id, p_source, p_account_id, p_base_url, coalesce(p_settings, '{}'), p_auth_kind,
        coalesce(p_scopes, '{}'), 'active', NULL, now(), now()
    )
    ON CONFLICT (org_id, crm_source) DO UPDATE SET
        base_url = excluded.base_url,
        settings = coalesce(p_settings, c.settings),
        auth_kind = excluded.auth_kind,
        scopes = excluded.scopes,
        status = 'active',
        status_reason = NULL,
        status_at = now(),
        connected_at = now(),
        auth_error = NULL,
        auth_failed_at = NULL,
        updated_at = now();
END
$$;

-- Store (insert or replace) one sealed secret of a connection. The connection must exist (CX004).
CREATE OR REPLACE FUNCTION crm.connection_secret_put(
    p_org_id uuid,
    p_source text,
    p_kind text,
    p_key_id text,
    p_ciphertext bytea,
    p_expires_at timestamptz DEFAULT NULL,
    p_ref text DEFAULT ''
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_operator();
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    IF NOT EXISTS (SELECT 1 FROM crm.connection AS c WHERE c.org_id = p_org_id AND c.crm_source = p_source) THEN
        RAISE EXCEPTION 'org % has no % connection', p_org_id, p_source USING ERRCODE = 'CX004';
    END IF;
    IF p_kind IS NULL OR p_kind NOT IN ('access_token', 'refresh_token', 'private_app_token', 'webhook_secret') THEN
        RAISE EXCEPTION 'unknown secret kind %', coalesce(quote_literal(left(p_kind, 40)), 'NULL')
            USING ERRCODE = 'CX002';
    END IF;
    IF p_key_id IS NULL OR p_key_id !~ '^[A-Za-z0-9_.-]{1,64}$' THEN
        RAISE EXCEPTION 'key id must be 1 to 64 characters [A-Za-z0-9_.-]' USING ERRCODE = 'CX002';
    END IF;
    IF p_ciphertext IS NULL OR length(p_ciphertext) NOT BETWEEN 29 AND 16384 THEN
        RAISE EXCEPTION 'ciphertext must be 29 to 16384 bytes (a sealed secret)' USING ERRCODE = 'CX002';
    END IF;
    IF p_ref IS NULL OR length(p_ref) > 200 THEN
        RAISE EXCEPTION 'secret ref must be at most 200 characters' USING ERRCODE = 'CX002';
    END IF;
    INSERT INTO crm.connection_secret AS s (org_id, crm_source, kind, ref, key_id, ciphertext, expires_at)
    VALUES (p_org_id, p_source, p_kind, p_ref, p_key_id, p_ciphertext, p_expires_at)
    ON CONFLICT (org_id, crm_source, kind, ref) DO UPDATE SET
        key_id = excluded.key_id,
        ciphertext = excluded.ciphertext,
        expires_at = excluded.expires_at,
        updated_at = now();
END
$$;

-- The sealed secrets of a connection (all kinds, or those of p_kinds). p_lock takes their row locks (FOR UPDATE)
-- until the caller's transaction ends: the token store refreshes an OAuth access token once for every worker
-- by locking the refresh token's row, re-checking the access token's expiry, refreshing and committing.
CREATE OR REPLACE FUNCTION crm.connection_secret_get(
    p_org_id uuid,
    p_source text,
    p_kinds text[] DEFAULT NULL,
    p_lock boolean DEFAULT FALSE
) RETURNS TABLE (
    kind text, ref text, key_id text, ciphertext bytea, expires_at timestamptz, updated_at timestamptz
)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_operator();
    PERFORM crm.assert_org(p_org_id);
    IF p_lock THEN
        RETURN QUERY
        SELECT s.kind, s.ref, s.key_id, s.ciphertext, s.expires_at, s.updated_at
        FROM crm.connection_secret AS s
        WHERE s.org_id = p_org_id AND s.crm_source = p_source AND (p_kinds IS NULL OR s.kind = ANY(p_kinds))
        ORDER BY s.kind, s.ref
        FOR UPDATE;
    ELSE
        RETURN QUERY
        SELECT s.kind, s.ref, s.key_id, s.ciphertext, s.expires_at, s.updated_at
        FROM crm.connection_secret AS s
        WHERE s.org_id = p_org_id AND s.crm_source = p_source AND (p_kinds IS NULL OR s.kind = ANY(p_kinds))
        ORDER BY s.kind, s.ref;
    END IF;
END
$$;

-- Forget secrets of a connection (every kind, one kind, or one ref of a kind); the number removed.
CREATE OR REPLACE FUNCTION crm.connection_secret_delete(
    p_org_id uuid, p_source text, p_kind text DEFAULT NULL, p_ref text DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM crm.assert_operator();
    PERFORM crm.assert_org(p_org_id);
    DELETE FROM crm.connection_secret AS s
    WHERE s.org_id = p_org_id AND s.crm_source = p_source
        AND (p_kind IS NULL OR s.kind = p_kind) AND (p_ref IS NULL OR s.ref = p_ref);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Key rotation: secrets sealed with a key other than p_current_key_id (a page of them, every org).
CREATE OR REPLACE FUNCTION crm.connection_secret_stale_keys(p_current_key_id text, p_limit integer DEFAULT 500)
RETURNS TABLE (org_id uuid, crm_source text, kind text, ref text, key_id text, ciphertext bytea)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_operator();
    RETURN QUERY
    SELECT s.org_id, s.crm_source, s.kind, s.ref, s.key_id, s.ciphertext
    FROM crm.connection_secret AS s
    WHERE s.key_id <> p_current_key_id
    ORDER BY s.org_id, s.crm_source, s.kind, s.ref
    LIMIT least(greatest(coalesce(p_limit, 500), 1), 10000);
END
$$;

-- Key rotation: replace one secret's ciphertext if it is still sealed with p_old_key_id (compare and swap: a
-- refresh that stored a new token meanwhile wins). True when replaced.
CREATE OR REPLACE FUNCTION crm.connection_secret_rekey(
    p_org_id uuid,
    p_source text,
    p_kind text,
    p_ref text,
    p_old_key_id text,
    p_new_key_id text,
    p_ciphertext bytea
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_operator();
    IF p_new_key_id IS NULL OR p_new_key_id !~ '^[A-Za-z0-9_.-]{1,64}$'
        OR p_ciphertext IS NULL OR length(p_ciphertext) NOT BETWEEN 29 AND 16384 THEN
        RAISE EXCEPTION 'a new key id and a sealed ciphertext are required' USING ERRCODE = 'CX002';
    END IF;
    UPDATE crm.connection_secret AS s
    SET key_id = p_new_key_id, ciphertext = p_ciphertext, updated_at = now()
    WHERE s.org_id = p_org_id AND s.crm_source = p_source AND s.kind = p_kind AND s.ref = p_ref
        AND s.key_id = p_old_key_id;
    RETURN FOUND;
END
$$;

-- Set a connection's status: active, broken (the CRM refused a refresh or a token, or its base URL is not
-- allowed) or needs_reconnect, with the reason an operator reads in `crmindex status`. True when it changed.
CREATE OR REPLACE FUNCTION crm.connection_set_status(
    p_org_id uuid, p_source text, p_status text, p_reason text DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_operator();
    PERFORM crm.assert_org(p_org_id);
    IF p_status IS NULL OR p_status NOT IN ('active', 'broken', 'needs_reconnect') THEN
        RAISE EXCEPTION 'status must be active, broken or needs_reconnect' USING ERRCODE = 'CX002';
    END IF;
    UPDATE crm.connection AS c
    SET status = p_status, status_reason = left(p_reason, 2000), status_at = now(), updated_at = now()
    WHERE c.org_id = p_org_id AND c.crm_source = p_source
        AND (c.status IS DISTINCT FROM p_status OR c.status_reason IS DISTINCT FROM left(p_reason, 2000));
    RETURN FOUND;
END
$$;

-- The CRM rejected the connection's token on a call (401/403): record why (status, category, code and
-- correlation id of its answer, never a raw body), so operators see it in `crmindex status`. The flag clears on
-- the next call the CRM accepts (crm.connection_clear_auth). Callable for the session's own org.
CREATE OR REPLACE FUNCTION crm.connection_flag_auth(p_org_id uuid, p_source text, p_error text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    UPDATE crm.connection AS c
    SET auth_error = left(coalesce(p_error, 'token rejected'), 2000),
        auth_failed_at = coalesce(c.auth_failed_at, now()), updated_at = now()
    WHERE c.org_id = p_org_id AND c.crm_source = p_source;
END
$$;

-- A call was accepted again: clear the flag (true when there was one). Callable for the session's own org.
CREATE OR REPLACE FUNCTION crm.connection_clear_auth(p_org_id uuid, p_source text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    UPDATE crm.connection AS c
    SET auth_error = NULL, auth_failed_at = NULL, updated_at = now()
    WHERE c.org_id = p_org_id AND c.crm_source = p_source AND c.auth_error IS NOT NULL;
    RETURN FOUND;
END
$$;

-- Merge Attio object id -> slug pairs (learned from fetched records) into the connection's
-- settings.attio_object_ids: Attio webhooks name objects by id only. True when something was added.
CREATE OR REPLACE FUNCTION crm.connection_remember_attio_object_ids(p_org_id uuid, p_object_ids jsonb)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_object_ids IS NULL OR jsonb_typeof(p_object_ids) <> 'object' OR length(p_object_ids::text) > 100000
        OR EXISTS (SELECT 1 FROM jsonb_each(p_object_ids) AS e (k, v) WHERE jsonb_typeof(e.v) <> 'string') THEN
        RAISE EXCEPTION 'object ids must be a JSON object of id -> slug strings' USING ERRCODE = 'CX002';
    END IF;
    UPDATE crm.connection AS c
    SET settings = jsonb_set(
        c.settings, '{attio_object_ids}', coalesce(c.settings -> 'attio_object_ids', '{}'::jsonb) || p_object_ids
    ),
    updated_at = now()
    WHERE c.org_id = p_org_id AND c.crm_source = 'attio'
        AND NOT coalesce(c.settings -> 'attio_object_ids', '{}'::jsonb) @> p_object_ids;
    RETURN FOUND;
END
$$;

-- Remove the org's connection to that CRM and every secret of it (the account is free to connect again);
-- the indexed records stay. True when there was one.
CREATE OR REPLACE FUNCTION crm.connection_disconnect(p_org_id uuid, p_source text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_operator();
    PERFORM crm.assert_org(p_org_id);
    DELETE FROM crm.connection AS c WHERE c.org_id = p_org_id AND c.crm_source = p_source;
    RETURN FOUND;
END
$$;

-- Start an OAuth authorization for the org: remember the state's SHA-256, the redirect URI and the sealed
-- PKCE verifier until p_ttl_s (60 s to 1 h) from now; expired states of every org are purged. The expiry.
CREATE OR REPLACE FUNCTION crm.oauth_state_create(
    p_org_id uuid,
    p_source text,
    p_state_hash bytea,
    p_redirect_uri text,
    p_key_id text DEFAULT NULL,
    p_verifier_ciphertext bytea DEFAULT NULL,
    p_ttl_s integer DEFAULT 600
) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_expires timestamptz := now() + make_interval(secs => least(greatest(coalesce(p_ttl_s, 600), 60), 3600));
BEGIN
    PERFORM crm.assert_operator();
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    IF p_state_hash IS NULL OR length(p_state_hash) <> 32 THEN
        RAISE EXCEPTION 'state hash must be 32 bytes (SHA-256)' USING ERRCODE = 'CX002';
    END IF;
    IF p_redirect_uri IS NULL OR length(p_redirect_uri) NOT BETWEEN 1 AND 2000
        OR p_redirect_uri !~ '^https?://[^[:space:]]+$' THEN
        RAISE EXCEPTION 'redirect URI must be an http(s) URL of at most 2000 characters' USING ERRCODE = 'CX002';
    END IF;
    DELETE FROM crm.oauth_state AS s WHERE s.expires_at < now();
    INSERT INTO crm.oauth_state (org_id, state_hash, crm_source, redirect_uri, key_id, verifier_ciphertext, expires_at)
    VALUES (p_org_id, p_state_hash, p_source, p_redirect_uri, p_key_id, p_verifier_ciphertext, v_expires);
    RETURN v_expires;
END
$$;

-- Finish an OAuth authorization: the state is used up whatever happens next (single use: deleted even when it
-- is refused, so no error is raised here; `problem` says why it cannot be used: unknown (or already used),
-- expired, or another CRM's; NULL when it can). The caller raises on a problem.
CREATE OR REPLACE FUNCTION crm.oauth_state_consume(p_source text, p_state_hash bytea)
RETURNS TABLE (org_id uuid, redirect_uri text, key_id text, verifier_ciphertext bytea, problem text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row crm.oauth_state;
BEGIN
    PERFORM crm.assert_operator();
    DELETE FROM crm.oauth_state AS s WHERE s.state_hash = p_state_hash RETURNING s.* INTO v_row;
    IF v_row.state_hash IS NULL THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::text, NULL::bytea, 'unknown'::text;
    ELSIF v_row.crm_source IS DISTINCT FROM p_source THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::text, NULL::bytea, 'wrong_source'::text;
    ELSIF v_row.expires_at < now() THEN
        RETURN QUERY SELECT v_row.org_id, NULL::text, NULL::text, NULL::bytea, 'expired'::text;
    ELSE
        RETURN QUERY SELECT v_row.org_id, v_row.redirect_uri, v_row.key_id, v_row.verifier_ciphertext, NULL::text;
    END IF;
END
$$;

-- For the webhook receiver (role crm_receiver, which can read no table): the org a delivery for this
-- portal / workspace belongs to, the connection's status and auth kind, and its sealed webhook secrets (one row
-- per secret; one row with NULL secret columns when it has none). No row: no such connection. The receiver
-- unseals them with the process's key ring (crmindex.platform.secrets.SecretBox, kind 'webhook_secret').
-- p_account_id NULL (and p_source NULL or given): every connection (of that CRM), for the receiver's snapshot of
-- all routes (crmindex.freshness.intake: an unknown account then costs no query); crm_source and account_id
-- say which connection a row belongs to.
CREATE OR REPLACE FUNCTION crm.webhook_route(p_source text, p_account_id text)
RETURNS TABLE (
    org_id uuid, status text, auth_kind text, secret_ref text, key_id text, ciphertext bytea,
    crm_source text, account_id text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role text := coalesce(nullif(current_setting('role', TRUE), 'none'), session_user);
BEGIN
    -- defense in depth (platform/grants.sql gives it to crm_receiver and crm_worker only)
    IF NOT crm.session_sees_every_org()
        AND NOT EXISTS (
            SELECT 1 FROM pg_roles AS r
            WHERE r.rolname = 'crm_receiver' AND pg_has_role(v_role, r.oid, 'USAGE')
        ) THEN
        RAISE EXCEPTION 'webhook routing is for the webhook receiver (role crm_receiver)' USING ERRCODE = 'CX003';
    END IF;
    IF (p_source IS NOT NULL AND NOT p_source = ANY(crm.crm_sources()))
        OR (p_source IS NULL AND p_account_id IS NOT NULL)
        OR length(p_account_id) NOT BETWEEN 1 AND 200 THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT c.org_id, c.status, c.auth_kind, s.ref, s.key_id, s.ciphertext, c.crm_source, c.account_id
    FROM crm.connection AS c
    LEFT JOIN crm.connection_secret AS s
        ON s.org_id = c.org_id AND s.crm_source = c.crm_source AND s.kind = 'webhook_secret'
    WHERE (p_source IS NULL OR c.crm_source = p_source) AND (p_account_id IS NULL OR c.account_id = p_account_id)
    ORDER BY c.crm_source, c.account_id, c.created_at, s.updated_at DESC NULLS LAST
    LIMIT CASE WHEN p_account_id IS NULL THEN NULL ELSE 20 END;
END
$$;
