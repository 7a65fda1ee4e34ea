-- 0014_secrets: connecting a CRM for real (issue 13). Tokens and webhook secrets are stored encrypted per org
-- (AES-GCM in the process, crmindex.platform.secrets; the database only ever holds ciphertexts), the account id
-- of a connection comes from the CRM's own token info, and a connection carries a status an operator can read.
-- The functions over these tables live in crm/connections.sql; the grants in platform/grants.sql.

-- section: connection status
-- auth_kind: how the tokens were obtained (an OAuth install, or a private-app / API token given by the operator).
-- status: active (tokens stored and accepted), broken (the CRM refused a refresh or a token: reconnect), or
-- needs_reconnect (no usable token stored). status_reason says why, in words an operator can act on.
ALTER TABLE crm.connection
ADD COLUMN auth_kind text CHECK (auth_kind IN ('oauth', 'private_app')),
ADD COLUMN status text NOT NULL DEFAULT 'needs_reconnect'
CHECK (status IN ('active', 'broken', 'needs_reconnect')),
ADD COLUMN status_reason text CHECK (length(status_reason) <= 2000),
ADD COLUMN status_at timestamptz NOT NULL DEFAULT now(),
ADD COLUMN scopes text[] NOT NULL DEFAULT '{}' CHECK (cardinality(scopes) <= 200),
ADD COLUMN connected_at timestamptz;

-- Environment-variable references are no longer followed (a tenant that could set token_ref could make a worker
-- send any variable of its environment, e.g. another org's token or DATABASE_URL, to any host). A connection
-- that only had references must be connected again; its reason names what it used (names, never values).
UPDATE crm.connection
SET status_reason = CASE
    WHEN token_ref IS NOT NULL OR webhook_secret_ref IS NOT NULL
        THEN left(
            'secrets named by environment variable ('
            || concat_ws('; ', 'token ' || token_ref, 'webhook secret ' || webhook_secret_ref)
            || ') are no longer read: connect again with `crmindex connect` (OAuth, or --token-env once), '
            || 'which stores them encrypted',
            2000
        )
    ELSE 'no token stored: connect with `crmindex connect`'
END;

ALTER TABLE crm.connection DROP COLUMN token_ref, DROP COLUMN webhook_secret_ref;

-- section: encrypted secrets
-- One row per secret of a connection. ciphertext = 12-byte nonce || AES-256-GCM ciphertext and tag, with
-- associated data binding it to (org, CRM, kind): a ciphertext copied to another org's row does not decrypt.
-- key_id names the key of the process's key ring that sealed it (rotation re-encrypts row by row).
-- ref tells apart several secrets of one kind (Attio: one webhook secret per registered webhook id).
-- Row-level security is on with a worker policy only: the application (crm_app) and the webhook receiver
-- (crm_receiver) have no access to this table; the receiver gets webhook secrets through crm.webhook_route.
CREATE TABLE crm.connection_secret (
    org_id uuid NOT NULL,
    crm_source text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('access_token', 'refresh_token', 'private_app_token', 'webhook_secret')),
    ref text NOT NULL DEFAULT '' CHECK (length(ref) <= 200),
    key_id text NOT NULL CHECK (key_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    ciphertext bytea NOT NULL CHECK (length(ciphertext) BETWEEN 29 AND 16384),
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, crm_source, kind, ref),
    FOREIGN KEY (org_id, crm_source) REFERENCES crm.connection (org_id, crm_source) ON DELETE CASCADE
);

ALTER TABLE crm.connection_secret ENABLE ROW LEVEL SECURITY;
CREATE POLICY connection_secret_worker ON crm.connection_secret TO crm_worker USING (TRUE) WITH CHECK (TRUE);

-- section: OAuth state
-- One row per authorization started: single use (consumed by deleting it), bound to the org, the CRM and the
-- redirect URI, expiring. Only a SHA-256 of the state is stored (the state itself travels in the user's browser);
-- the PKCE code verifier, when used, is sealed like any other secret.
CREATE TABLE crm.oauth_state (
    org_id uuid NOT NULL,
    state_hash bytea NOT NULL CHECK (length(state_hash) = 32),
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    redirect_uri text NOT NULL CHECK (length(redirect_uri) BETWEEN 1 AND 2000),
    key_id text CHECK (key_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    verifier_ciphertext bytea CHECK (length(verifier_ciphertext) <= 1024),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, state_hash)
);
-- the redirect carries the state only: it is looked up by its hash
CREATE INDEX oauth_state_hash_idx ON crm.oauth_state (state_hash);

ALTER TABLE crm.oauth_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY oauth_state_worker ON crm.oauth_state TO crm_worker USING (TRUE) WITH CHECK (TRUE);
