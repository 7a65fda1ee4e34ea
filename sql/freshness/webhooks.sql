-- freshness/webhooks.sql: the webhook inbox and the order-independent appliers of webhook events.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- Recompute the deal summaries of the contacts linked to the deals named in p_items (any array of
-- objects with "crm_record_id"): a deal's stage, amount or deletion changes its contacts' has_active_deal.
CREATE OR REPLACE FUNCTION crm.refresh_deal_contacts(p_org_id uuid, p_source text, p_items jsonb)
RETURNS integer
LANGUAGE sql AS $$
    SELECT crm.refresh_contact_deals(p_org_id, p_source, ARRAY(
        SELECT DISTINCT dc.contact_crm_id FROM crm.deal_contact AS dc
        WHERE dc.org_id = p_org_id AND dc.crm_source = p_source
            AND dc.deal_crm_id IN (SELECT x.elem ->> 'crm_record_id' FROM jsonb_array_elements(p_items) AS x (elem))
    ));
$$;

-- The last statement of every applier below: after CTEs "latest" (one row per record, rid) and "applied" (the
-- crm_record_id of every row of p_table it changed), the events not applied, as (crm_record_id, outcome): 'stale'
-- when the record is indexed (what is stored is newer), 'missing' when it is not. $1 org, $2 CRM source.
CREATE OR REPLACE FUNCTION crm.applier_outcomes_sql(p_table regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format(
        $f$SELECT l.rid, CASE WHEN EXISTS (
                SELECT 1 FROM %1$s AS t WHERE t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = l.rid
            ) THEN 'stale' ELSE 'missing' END
        FROM latest AS l
        WHERE NOT EXISTS (SELECT 1 FROM applied AS a WHERE a.crm_record_id = l.rid)$f$,
        p_table
    );
$$;

-- p_changes: [{"crm_record_id": "...", "column": "job_title", "value": "CTO" | null,
--              "occurred_at": "...", "expect": optional current value required for the change}]
-- Returns (crm_record_id, outcome) for every change not applied: 'missing' (record not indexed),
-- 'stale' (older than what is stored) or 'unknown_column'.
CREATE OR REPLACE FUNCTION crm.apply_field_changes(p_org_id uuid, p_source text, p_table regclass, p_changes jsonb)
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
            %5$s
            $f$,
            v_column, v_type, p_table, v_column, crm.applier_outcomes_sql(p_table)
        ) USING p_org_id, p_source, v_group;
    END LOOP;
    IF p_table = 'crm.deal_index'::regclass THEN
        PERFORM crm.refresh_deal_contacts(p_org_id, p_source, p_changes);
    END IF;
END
$$;

-- p_events: [{"crm_record_id": "...", "occurred_at": "...", "privacy": bool, "merged_into": "..."}]
-- Deletions are ordered by time; a merge is permanent (a merged-away id never comes back), so a deleted record
-- without a primary takes it from any merge event, whatever its time, and records of the batch follow merge
-- chains to the current primary (a record merged into a since-deleted primary, tests/test_faults_process.py).
CREATE OR REPLACE FUNCTION crm.apply_deletions(p_org_id uuid, p_source text, p_table regclass, p_events jsonb)
RETURNS TABLE (crm_record_id text, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    v_erase text := '';
    v_hops integer;
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
        %3$s
        $f$,
        p_table, v_erase, crm.applier_outcomes_sql(p_table)
    ) USING p_org_id, p_source, p_events;
    IF p_table = 'crm.deal_index'::regclass THEN
        PERFORM crm.refresh_deal_contacts(p_org_id, p_source, p_events);
    END IF;
    -- a deleted record without its primary takes it from a merge event of any time
    EXECUTE format(
        $f$
        UPDATE %1$s AS t SET merged_into = x.elem ->> 'merged_into', updated_at = now()
        FROM jsonb_array_elements($3) AS x (elem)
        WHERE t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = x.elem ->> 'crm_record_id'
            AND t.deleted_at IS NOT NULL AND t.merged_into IS NULL
            AND coalesce(x.elem ->> 'merged_into', '') NOT IN ('', t.crm_record_id)
        $f$,
        p_table
    ) USING p_org_id, p_source, p_events;
    -- records of this batch merged into a record merged away since point at its primary (whole chains)
    FOR i IN 1..20 LOOP
        EXECUTE format(
            $f$
            UPDATE %1$s AS t SET merged_into = p.merged_into, updated_at = now()
            FROM %1$s AS p
            WHERE t.org_id = $1 AND t.crm_source = $2
                AND t.crm_record_id IN (SELECT x.elem ->> 'crm_record_id' FROM jsonb_array_elements($3) AS x (elem))
                AND p.org_id = $1 AND p.crm_source = $2 AND p.crm_record_id = t.merged_into
                AND p.merged_into IS NOT NULL AND p.merged_into <> t.crm_record_id
            $f$,
            p_table
        ) USING p_org_id, p_source, p_events;
        GET DIAGNOSTICS v_hops = ROW_COUNT;
        EXIT WHEN v_hops = 0;
    END LOOP;
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
CREATE OR REPLACE FUNCTION crm.apply_restores(p_org_id uuid, p_source text, p_table regclass, p_events jsonb)
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
        %2$s
        $f$,
        p_table, crm.applier_outcomes_sql(p_table)
    ) USING p_org_id, p_source, p_events;
    IF p_table = 'crm.deal_index'::regclass THEN
        PERFORM crm.refresh_deal_contacts(p_org_id, p_source, p_events);
    END IF;
END
$$;

-- p_changes: [{"deal_crm_id": "...", "contact_crm_id": "...", "removed": bool, "occurred_at": "..."}]
-- Returns the number of contacts whose deal summary changed.
CREATE OR REPLACE FUNCTION crm.apply_deal_associations(p_org_id uuid, p_source text, p_changes jsonb)
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

-- Queue 'hydrate' jobs (crm.job, worker crmindex.freshness.hydrate): fetch these records of p_object_type
-- ('contacts', 'companies', 'deals') from the CRM and write them to the index (and to tier 2 when materialized).
-- The one way anything asks for a record to be refetched: webhook events that only name a record, records
-- missing from the index, merges, deals whose contacts merged, creates the write-back drainer made
-- (crm.writeback_after_create). Coalesced: one open job per record (dedupe key <object_type>:<id>), so a burst
-- of events about one record is one fetch. Returns how many ids were taken (NULL and empty ids are skipped).
CREATE OR REPLACE FUNCTION crm.enqueue_hydration(
    p_org_id uuid, p_source text, p_object_type text, p_crm_record_ids text[]
) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    -- list_entries: Attio list entries, ids '<list id>/<entry id>' (crmindex/freshness/hydrate.py)
    IF p_object_type IS NULL OR p_object_type NOT IN ('contacts', 'companies', 'deals', 'list_entries') THEN
        RAISE EXCEPTION 'unknown object type %', coalesce(quote_literal(left(p_object_type, 40)), 'NULL')
            USING ERRCODE = 'CX002', HINT = 'use contacts, companies, deals or list_entries';
    END IF;
    RETURN crm.enqueue_jobs(
        p_org_id, 'hydrate', p_source,
        coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                'dedupe_key', p_object_type || ':' || r.id,
                'payload', jsonb_build_object('object_type', p_object_type, 'crm_record_id', r.id)
            ) ORDER BY r.ord)
            FROM unnest(p_crm_record_ids) WITH ORDINALITY AS r (id, ord)
            WHERE nullif(r.id, '') IS NOT NULL
        ), '[]'::jsonb)
    );
END
$$;

-- Store one verified webhook request (the receiver, role crm_receiver, calls this, then answers 2xx).
-- Replays are stored once (crm.webhook_event_key; the keys are hex sha256 digests the receiver computes, see
-- crmindex/freshness/intake.py):
--   p_event_keys: one key per event, kept for p_key_ttl; the delivery is stored only when at least one of them
--     is new, else it is a replay: NULL is returned and nothing is stored. A key is new when never seen, expired,
--     or (Attio) when the delivery that carried it is no longer waiting in the inbox: Attio events carry no time
--     nor value, so the same event later is a new change that must be refetched, while a copy arriving before
--     the first one was processed changes nothing (that processing refetches the record after it);
--   p_delivery_key: optionally, a key of the whole message (Attio: webhook id + Idempotency-Key header), kept
--     for p_delivery_ttl and checked after the event keys: a message seen before is a replay too.
-- TTLs are clamped to 1 second .. 7 days. NULL keys store the delivery unconditionally (tools, tests).
-- SECURITY DEFINER: the receiver has no privilege on any table.
CREATE OR REPLACE FUNCTION crm.webhook_accept(
    p_org_id uuid,
    p_source text,
    p_account_id text,
    p_body text,
    p_headers jsonb,
    p_events integer,
    p_event_keys text[] DEFAULT NULL,
    p_key_ttl interval DEFAULT NULL,
    p_delivery_key text DEFAULT NULL,
    p_delivery_ttl interval DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key_ttl interval := least(greatest(coalesce(p_key_ttl, '3 days'), '1 second'), '7 days');
    v_delivery_ttl interval := least(greatest(coalesce(p_delivery_ttl, '4 days'), '1 second'), '7 days');
    v_coalesce boolean := p_source = 'attio';
    v_new integer := 0;
    v_recorded bytea[];
    v_id bigint;
BEGIN
    IF p_org_id IS NULL OR p_source IS NULL OR p_account_id IS NULL OR p_body IS NULL THEN
        RAISE EXCEPTION 'webhook_accept: org, source, account and body are required' USING ERRCODE = '22023';
    END IF;
    IF octet_length(p_body) > 1000000 OR octet_length(coalesce(p_headers, '{}'::jsonb)::text) > 8192
        OR coalesce(p_events, 0) NOT BETWEEN 0 AND 1000 THEN
        RAISE EXCEPTION 'webhook_accept: delivery too large' USING ERRCODE = '22023';
    END IF;
    IF (p_event_keys IS NOT NULL AND (
        cardinality(p_event_keys) NOT BETWEEN 1 AND 1000
        OR EXISTS (SELECT 1 FROM unnest(p_event_keys) AS k (key) WHERE k.key IS NULL OR k.key !~ '^[0-9a-f]{64}$')
    )) OR p_delivery_key !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'webhook_accept: keys must be hex sha256 digests (1 to 1000 event keys)'
            USING ERRCODE = '22023';
    END IF;
    -- the id the delivery gets if it is stored (the keys point at it)
    v_id := nextval(pg_get_serial_sequence('crm.webhook_inbox', 'id'));
    IF p_event_keys IS NOT NULL THEN
        -- a concurrent copy of the same delivery waits here for the first to commit, then finds its keys
        WITH recorded AS (
            INSERT INTO crm.webhook_event_key AS k (org_id, crm_source, event_key, inbox_id, seen_at, expires_at)
            SELECT DISTINCT p_org_id, p_source, decode(u.key, 'hex'), v_id, now(), now() + v_key_ttl
            FROM unnest(p_event_keys) AS u (key)
            ON CONFLICT (org_id, crm_source, event_key) DO UPDATE
                SET inbox_id = excluded.inbox_id, seen_at = excluded.seen_at, expires_at = excluded.expires_at
                WHERE k.expires_at <= now() OR (v_coalesce AND NOT EXISTS (
                    SELECT 1 FROM crm.webhook_inbox AS w
                    WHERE w.org_id = k.org_id AND w.id = k.inbox_id AND w.status IN ('pending', 'processing', 'failed')
                ))
            RETURNING k.event_key
        )
        SELECT array_agg(r.event_key) INTO v_recorded FROM recorded AS r;
        IF v_recorded IS NULL THEN
            RETURN NULL;  -- every event was seen before: a replay
        END IF;
    END IF;
    IF p_delivery_key IS NOT NULL THEN
        INSERT INTO crm.webhook_event_key AS k (org_id, crm_source, event_key, inbox_id, seen_at, expires_at)
        VALUES (p_org_id, p_source, decode(p_delivery_key, 'hex'), v_id, now(), now() + v_delivery_ttl)
        ON CONFLICT (org_id, crm_source, event_key) DO UPDATE
            SET inbox_id = excluded.inbox_id, seen_at = excluded.seen_at, expires_at = excluded.expires_at
            WHERE k.expires_at <= now();
        GET DIAGNOSTICS v_new = ROW_COUNT;
        IF v_new = 0 THEN
            -- this message was delivered before: a replay. Its event keys (recorded above: new or expired) are
            -- left expired, as they were.
            UPDATE crm.webhook_event_key AS k SET expires_at = now()
            WHERE k.org_id = p_org_id AND k.crm_source = p_source AND k.event_key = ANY(v_recorded);
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO crm.webhook_inbox (org_id, id, crm_source, account_id, body, headers, events)
    OVERRIDING SYSTEM VALUE
    VALUES (p_org_id, v_id, p_source, p_account_id, p_body, coalesce(p_headers, '{}'::jsonb), coalesce(p_events, 0));
    RETURN v_id;
END
$$;
