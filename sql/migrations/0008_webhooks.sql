-- 0008_webhooks: the durable webhook inbox and the order-independent appliers of webhook events.
--
-- A verified request body is stored raw in crm.webhook_inbox in the transaction that answers 2xx, then
-- processed through the queue core (it is a queue table). Events are hints that must converge:
--   * crm.apply_field_changes: one field per change, applied only when the event is newer than both the
--     record's last full snapshot (crm_updated_at) and that field's own version (field_versions);
--   * crm.apply_deletions: soft delete (privacy deletions also erase personal fields), merges point the
--     merged record at its primary; never undoes a newer state;
--   * crm.apply_restores: clear deleted_at when the restore is newer than the deletion;
--   * crm.apply_deal_associations: add/remove deal<->contact pairs by version (tombstones), then
--     recompute the contacts' deal summaries.
-- Each returns the records it could not find in the index, so the caller fetches them from the CRM.

CREATE TABLE crm.webhook_inbox (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    id bigint GENERATED ALWAYS AS IDENTITY,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    account_id text NOT NULL,
    body text NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    events integer NOT NULL DEFAULT 0,
    received_at timestamptz NOT NULL DEFAULT now(),
    -- queue columns (see 0005_queue.sql)
    status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'dead_letter')),
    priority smallint NOT NULL DEFAULT 5,
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 6 CHECK (max_attempts > 0),
    next_retry_at timestamptz NOT NULL DEFAULT now(),
    lease_token uuid,
    leased_until timestamptz,
    locked_by text,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (org_id, id)
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02);

CREATE INDEX webhook_inbox_claim_idx ON crm.webhook_inbox (priority, next_retry_at, id)
WHERE status IN ('pending', 'failed');
CREATE INDEX webhook_inbox_lease_idx ON crm.webhook_inbox (leased_until) WHERE status = 'processing';
CREATE INDEX webhook_inbox_received_idx ON crm.webhook_inbox (org_id, crm_source, received_at);

ALTER TABLE crm.webhook_inbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY webhook_inbox_app ON crm.webhook_inbox TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY webhook_inbox_worker ON crm.webhook_inbox TO crm_worker USING (TRUE) WITH CHECK (TRUE);
GRANT SELECT, INSERT, UPDATE, DELETE ON crm.webhook_inbox TO crm_app, crm_worker;

CREATE TRIGGER webhook_inbox_notify AFTER INSERT ON crm.webhook_inbox
FOR EACH STATEMENT EXECUTE FUNCTION crm.queue_notify();

-- Recompute the deal summaries of the contacts linked to the deals named in p_items (any array of
-- objects with "crm_record_id"): a deal's stage, amount or deletion changes its contacts' has_active_deal.
CREATE FUNCTION crm.refresh_deal_contacts(p_org_id uuid, p_source text, p_items jsonb)
RETURNS integer
LANGUAGE sql AS $$
    SELECT crm.refresh_contact_deals(p_org_id, p_source, ARRAY(
        SELECT DISTINCT dc.contact_crm_id FROM crm.deal_contact AS dc
        WHERE dc.org_id = p_org_id AND dc.crm_source = p_source
            AND dc.deal_crm_id IN (SELECT x.elem ->> 'crm_record_id' FROM jsonb_array_elements(p_items) AS x (elem))
    ));
$$;

-- p_changes: [{"crm_record_id": "...", "column": "job_title", "value": "CTO" | null,
--              "occurred_at": "...", "expect": optional current value required for the change}]
-- Returns (crm_record_id, outcome) for every change not applied: 'missing' (record not indexed),
-- 'stale' (older than what is stored) or 'unknown_column'.
CREATE FUNCTION crm.apply_field_changes(p_org_id uuid, p_source text, p_table regclass, p_changes jsonb)
RETURNS TABLE (crm_record_id text, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    v_column text;
    v_type text;
    v_group jsonb;
    v_protected text[] := crm.index_protected_columns(p_table) || ARRAY['crm_record_id', 'crm_source', 'deleted_at'];
BEGIN
    PERFORM crm.assert_org(p_org_id);
    FOR v_column, v_group IN
        SELECT c.elem ->> 'column', jsonb_agg(c.elem)
        FROM jsonb_array_elements(p_changes) AS c (elem)
        GROUP BY c.elem ->> 'column'
    LOOP
        SELECT format_type(a.atttypid, a.atttypmod) INTO v_type
        FROM pg_attribute AS a
        WHERE a.attrelid = p_table AND a.attname = v_column AND a.attnum > 0 AND NOT a.attisdropped;
        IF v_type IS NULL OR v_column = ANY(v_protected) THEN
            RETURN QUERY SELECT x.elem ->> 'crm_record_id', 'unknown_column'::text
            FROM jsonb_array_elements(v_group) AS x (elem);
            CONTINUE;
        END IF;
        RETURN QUERY EXECUTE format(
            $f$
            WITH latest AS (
                SELECT DISTINCT ON (x.elem ->> 'crm_record_id')
                    x.elem ->> 'crm_record_id' AS rid,
                    nullif(x.elem ->> 'value', '')::%2$s AS value,
                    (x.elem ->> 'occurred_at')::timestamptz AS occurred_at,
                    x.elem ? 'expect' AS has_expect,
                    nullif(x.elem ->> 'expect', '')::%2$s AS expect
                FROM jsonb_array_elements($3) AS x (elem)
                ORDER BY x.elem ->> 'crm_record_id', (x.elem ->> 'occurred_at')::timestamptz DESC
            ),
            applied AS (
                UPDATE %3$s AS t
                SET %1$I = l.value,
                    field_versions = coalesce(t.field_versions, '{}'::jsonb)
                        || jsonb_build_object(%4$L, l.occurred_at),
                    last_webhook_at = now(),
                    updated_at = now()
                FROM latest AS l
                WHERE t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = l.rid
                    AND l.occurred_at > coalesce(t.crm_updated_at, '-infinity')
                    AND l.occurred_at > coalesce((t.field_versions ->> %4$L)::timestamptz, '-infinity')
                    AND (NOT l.has_expect OR t.%1$I IS NOT DISTINCT FROM l.expect)
                RETURNING t.crm_record_id
            )
            SELECT l.rid, CASE WHEN EXISTS (
                    SELECT 1 FROM %3$s AS t WHERE t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = l.rid
                ) THEN 'stale' ELSE 'missing' END
            FROM latest AS l
            WHERE NOT EXISTS (SELECT 1 FROM applied AS a WHERE a.crm_record_id = l.rid)
            $f$,
            v_column, v_type, p_table, v_column
        ) USING p_org_id, p_source, v_group;
    END LOOP;
    IF p_table = 'crm.deal_index'::regclass THEN
        PERFORM crm.refresh_deal_contacts(p_org_id, p_source, p_changes);
    END IF;
END
$$;

-- p_events: [{"crm_record_id": "...", "occurred_at": "...", "privacy": bool, "merged_into": "..."}]
CREATE FUNCTION crm.apply_deletions(p_org_id uuid, p_source text, p_table regclass, p_events jsonb)
RETURNS TABLE (crm_record_id text, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    v_erase text := '';
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_table = 'crm.contact_index'::regclass THEN
        v_erase := ', first_name = CASE WHEN l.privacy THEN NULL ELSE t.first_name END'
            || ', last_name = CASE WHEN l.privacy THEN NULL ELSE t.last_name END'
            || ', email = CASE WHEN l.privacy THEN NULL ELSE t.email END'
            || ', phone = CASE WHEN l.privacy THEN NULL ELSE t.phone END'
            || ', job_title = CASE WHEN l.privacy THEN NULL ELSE t.job_title END';
    END IF;
    RETURN QUERY EXECUTE format(
        $f$
        WITH latest AS (
            SELECT DISTINCT ON (x.elem ->> 'crm_record_id')
                x.elem ->> 'crm_record_id' AS rid,
                (x.elem ->> 'occurred_at')::timestamptz AS occurred_at,
                coalesce((x.elem ->> 'privacy')::boolean, FALSE) AS privacy,
                x.elem ->> 'merged_into' AS merged_into
            FROM jsonb_array_elements($3) AS x (elem)
            ORDER BY x.elem ->> 'crm_record_id', (x.elem ->> 'occurred_at')::timestamptz DESC
        ),
        applied AS (
            UPDATE %1$s AS t
            SET deleted_at = l.occurred_at,
                crm_updated_at = greatest(t.crm_updated_at, l.occurred_at),
                merged_into = coalesce(l.merged_into, t.merged_into),
                field_versions = NULL,
                last_webhook_at = now(),
                updated_at = now() %2$s
            FROM latest AS l
            WHERE t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = l.rid
                AND l.occurred_at >= coalesce(t.crm_updated_at, '-infinity')
                AND (t.deleted_at IS NULL OR l.privacy OR l.merged_into IS NOT NULL)
            RETURNING t.crm_record_id
        )
        SELECT l.rid, CASE WHEN EXISTS (
                SELECT 1 FROM %1$s AS t WHERE t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = l.rid
            ) THEN 'stale' ELSE 'missing' END
        FROM latest AS l
        WHERE NOT EXISTS (SELECT 1 FROM applied AS a WHERE a.crm_record_id = l.rid)
        $f$,
        p_table, v_erase
    ) USING p_org_id, p_source, p_events;
    IF p_table = 'crm.deal_index'::regclass THEN
        PERFORM crm.refresh_deal_contacts(p_org_id, p_source, p_events);
    END IF;
    -- records merged into a record that is now merged away point at the new primary
    EXECUTE format(
        $f$
        UPDATE %1$s AS t SET merged_into = x.elem ->> 'merged_into'
        FROM jsonb_array_elements($3) AS x (elem)
        WHERE t.org_id = $1 AND t.crm_source = $2 AND t.merged_into = x.elem ->> 'crm_record_id'
            AND coalesce(x.elem ->> 'merged_into', '') NOT IN ('', t.crm_record_id)
        $f$,
        p_table
    ) USING p_org_id, p_source, p_events;
END
$$;

-- p_events: [{"crm_record_id": "...", "occurred_at": "..."}]: undelete when the restore is newer.
CREATE FUNCTION crm.apply_restores(p_org_id uuid, p_source text, p_table regclass, p_events jsonb)
RETURNS TABLE (crm_record_id text, outcome text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    RETURN QUERY EXECUTE format(
        $f$
        WITH latest AS (
            SELECT DISTINCT ON (x.elem ->> 'crm_record_id')
                x.elem ->> 'crm_record_id' AS rid, (x.elem ->> 'occurred_at')::timestamptz AS occurred_at
            FROM jsonb_array_elements($3) AS x (elem)
            ORDER BY x.elem ->> 'crm_record_id', (x.elem ->> 'occurred_at')::timestamptz DESC
        ),
        applied AS (
            UPDATE %1$s AS t
            SET deleted_at = NULL, merged_into = NULL, crm_updated_at = greatest(t.crm_updated_at, l.occurred_at),
                last_webhook_at = now(), updated_at = now()
            FROM latest AS l
            WHERE t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = l.rid
                AND t.deleted_at IS NOT NULL AND l.occurred_at > t.deleted_at
            RETURNING t.crm_record_id
        )
        SELECT l.rid, CASE WHEN EXISTS (
                SELECT 1 FROM %1$s AS t WHERE t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = l.rid
            ) THEN 'stale' ELSE 'missing' END
        FROM latest AS l
        WHERE NOT EXISTS (SELECT 1 FROM applied AS a WHERE a.crm_record_id = l.rid)
        $f$,
        p_table
    ) USING p_org_id, p_source, p_events;
    IF p_table = 'crm.deal_index'::regclass THEN
        PERFORM crm.refresh_deal_contacts(p_org_id, p_source, p_events);
    END IF;
END
$$;

-- p_changes: [{"deal_crm_id": "...", "contact_crm_id": "...", "removed": bool, "occurred_at": "..."}]
-- Returns the number of contacts whose deal summary changed.
CREATE FUNCTION crm.apply_deal_associations(p_org_id uuid, p_source text, p_changes jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_contacts text[];
BEGIN
    PERFORM crm.assert_org(p_org_id);
    WITH resolved AS (
        -- a contact merged away: its associations are its primary's (the CRM moved them)
        SELECT
            x.elem ->> 'deal_crm_id' AS deal_id,
            coalesce(c.merged_into, x.elem ->> 'contact_crm_id') AS contact_id,
            coalesce((x.elem ->> 'removed')::boolean, FALSE) AS removed,
            (x.elem ->> 'occurred_at')::timestamptz AS version
        FROM jsonb_array_elements(p_changes) AS x (elem)
        LEFT JOIN crm.contact_index AS c
            ON c.org_id = p_org_id AND c.crm_source = p_source AND c.crm_record_id = x.elem ->> 'contact_crm_id'
                AND c.deleted_at IS NOT NULL AND c.merged_into IS NOT NULL
    ),
    latest AS (
        SELECT DISTINCT ON (r.deal_id, r.contact_id) r.deal_id, r.contact_id, r.removed, r.version
        FROM resolved AS r
        ORDER BY r.deal_id, r.contact_id, r.version DESC
    ),
    changed AS (
        INSERT INTO crm.deal_contact AS dc (org_id, crm_source, deal_crm_id, contact_crm_id, removed, version)
        SELECT p_org_id, p_source, l.deal_id, l.contact_id, l.removed, l.version FROM latest AS l
        ON CONFLICT (org_id, crm_source, deal_crm_id, contact_crm_id) DO UPDATE
            SET removed = excluded.removed, version = excluded.version
            WHERE coalesce(dc.version, '-infinity') < excluded.version
        RETURNING dc.contact_crm_id
    )
    SELECT coalesce(array_agg(DISTINCT c.contact_crm_id), '{}') INTO v_contacts FROM changed AS c;
    RETURN crm.refresh_contact_deals(p_org_id, p_source, v_contacts);
END
$$;

-- Store one verified webhook request (the receiver calls this, then answers 2xx).
CREATE FUNCTION crm.webhook_accept(
    p_org_id uuid, p_source text, p_account_id text, p_body text, p_headers jsonb, p_events integer
) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO crm.webhook_inbox (org_id, crm_source, account_id, body, headers, events)
    VALUES (p_org_id, p_source, p_account_id, p_body, coalesce(p_headers, '{}'::jsonb), p_events)
    RETURNING id;
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA crm TO crm_app, crm_worker;
