-- 0012: hardening fixes found by the issue-9 suites (fuzzing, tenancy, faults)

-- The schema had no comment before (obj_description is NULL at 0.1.0); describe it.
COMMENT ON SCHEMA crm IS
'crmindex: slim index of connected CRMs (tier 1), materialized records (tier 2) and the write-back queue';

-- section: connection auth state (CRM-side fault matrix)
-- A connection whose token the CRM rejects (401/403, e.g. revoked mid-run) is flagged with the CRM's message:
-- the workers stop calling for it, its jobs wait (released, no attempt spent) and the flag clears on the next
-- call the CRM accepts. Nothing secret is stored here (messages are built from the CRM's error body).
ALTER TABLE crm.connection
ADD COLUMN auth_error text,
ADD COLUMN auth_failed_at timestamptz;

-- section: fuzzing (upsert input validation)
-- crm.upsert_deals cast associations_read_at without checking it, so a malformed value raised a raw 22007
-- instead of CX001 naming the row (tests/test_fuzz_upsert.py). Same function, plus that check.
CREATE OR REPLACE FUNCTION crm.upsert_deals(p_org_id uuid, p_source text, p_rows jsonb)
RETURNS TABLE (inserted integer, updated integer, unchanged integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_applied text[];
    v_ins integer;
    v_upd integer;
    v_bad record;
    v_contacts text[];
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_index_rows('crm.deal_index', p_source, p_rows, ARRAY['contact_crm_ids', 'associations_read_at']);
    SELECT e.ord, e.elem ->> 'crm_record_id' AS rid INTO v_bad
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord)
    WHERE e.elem ? 'contact_crm_ids' AND (
        jsonb_typeof(e.elem -> 'contact_crm_ids') <> 'array'
        OR EXISTS (
            SELECT 1 FROM jsonb_array_elements(e.elem -> 'contact_crm_ids') AS x (v)
            WHERE jsonb_typeof(x.v) NOT IN ('string', 'number') OR btrim(x.v #>> '{}') = ''
        )
    )
    ORDER BY e.ord LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'row % (crm_record_id %) has contact_crm_ids that is not an array of ids', v_bad.ord, v_bad.rid
            USING ERRCODE = 'CX001', DETAIL = format('row=%s crm_record_id=%s', v_bad.ord, v_bad.rid);
    END IF;
    -- associations_read_at is cast below: a bad value is a bad row (CX001), like any other
    FOR v_bad IN
        SELECT e.ord, e.elem ->> 'crm_record_id' AS rid, e.elem ->> 'associations_read_at' AS val
        FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord)
        WHERE e.elem ? 'associations_read_at'
        ORDER BY e.ord
    LOOP
        BEGIN
            PERFORM v_bad.val::timestamptz;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'row % (crm_record_id %) has a bad value: %', v_bad.ord, v_bad.rid, SQLERRM
                USING ERRCODE = 'CX001', DETAIL = format('row=%s crm_record_id=%s', v_bad.ord, v_bad.rid);
        END;
    END LOOP;

    SELECT
        coalesce(array_agg(w.crm_record_id), '{}'),
        count(*) FILTER (WHERE w.inserted), count(*) FILTER (WHERE NOT w.inserted)
    INTO v_applied, v_ins, v_upd
    FROM crm.write_index_rows(p_org_id, 'crm.deal_index', p_source, p_rows) AS w;
    -- association lists also apply to deals whose row did not change but is not older than the stored one
    SELECT v_applied || coalesce(array_agg(DISTINCT d.crm_record_id), '{}') INTO v_applied
    FROM jsonb_array_elements(p_rows) AS e (elem)
    INNER JOIN crm.deal_index AS d
        ON d.org_id = p_org_id AND d.crm_source = p_source AND d.crm_record_id = btrim(e.elem ->> 'crm_record_id')
    WHERE e.elem ? 'contact_crm_ids' AND NOT d.crm_record_id = ANY(v_applied)
        AND (d.crm_updated_at IS NULL OR (e.elem ->> 'crm_updated_at')::timestamptz >= d.crm_updated_at);

    IF cardinality(v_applied) > 0 THEN
        -- contacts whose summary may change: associated before or after this batch
        SELECT coalesce(array_agg(DISTINCT dc.contact_crm_id), '{}') INTO v_contacts
        FROM crm.deal_contact AS dc
        WHERE dc.org_id = p_org_id AND dc.crm_source = p_source AND dc.deal_crm_id = ANY(v_applied);

        WITH latest AS (
            SELECT DISTINCT ON (btrim(e.elem ->> 'crm_record_id'))
                btrim(e.elem ->> 'crm_record_id') AS deal_id,
                e.elem -> 'contact_crm_ids' AS ids,
                greatest(
                    coalesce((e.elem ->> 'crm_updated_at')::timestamptz, '-infinity'),
                    coalesce((e.elem ->> 'associations_read_at')::timestamptz, '-infinity')
                ) AS version
            FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord)
            WHERE e.elem ? 'contact_crm_ids' AND btrim(e.elem ->> 'crm_record_id') = ANY(v_applied)
            ORDER BY btrim(e.elem ->> 'crm_record_id'), (e.elem ->> 'crm_updated_at')::timestamptz DESC NULLS LAST,
                e.ord DESC
        ),
        wanted AS (
            SELECT DISTINCT l.deal_id, btrim(x.v #>> '{}') AS contact_id, l.version
            FROM latest AS l CROSS JOIN LATERAL jsonb_array_elements(l.ids) AS x (v)
        ),
        removed AS (
            UPDATE crm.deal_contact AS dc
            SET removed = TRUE, version = l.version
            FROM latest AS l
            WHERE dc.org_id = p_org_id AND dc.crm_source = p_source AND dc.deal_crm_id = l.deal_id
                AND NOT dc.removed AND coalesce(dc.version, '-infinity') <= l.version
                AND NOT EXISTS (
                    SELECT 1 FROM wanted AS w WHERE w.deal_id = dc.deal_crm_id AND w.contact_id = dc.contact_crm_id
                )
            RETURNING dc.contact_crm_id
        ),
        added AS (
            INSERT INTO crm.deal_contact AS dc (org_id, crm_source, deal_crm_id, contact_crm_id, removed, version)
            SELECT p_org_id, p_source, w.deal_id, w.contact_id, FALSE, w.version FROM wanted AS w
            ON CONFLICT (org_id, crm_source, deal_crm_id, contact_crm_id) DO UPDATE
                SET removed = FALSE, version = excluded.version
                WHERE coalesce(dc.version, '-infinity') <= excluded.version
            RETURNING dc.contact_crm_id
        )
        SELECT v_contacts || coalesce(array_agg(DISTINCT a.contact_crm_id), '{}') INTO v_contacts
        FROM (SELECT removed.contact_crm_id FROM removed UNION SELECT added.contact_crm_id FROM added) AS a;

        PERFORM crm.refresh_contact_deals(p_org_id, p_source, v_contacts);
    END IF;
    RETURN QUERY SELECT v_ins, v_upd, jsonb_array_length(p_rows) - v_ins - v_upd;
END
$$;

-- section: local edits survive CRM snapshots until their write-back lands (mixed-load bench)
-- A contact edited locally (crmindex.writeback.update_contact) has its new value in the index and a write-back
-- queued. A CRM snapshot read before that write lands (materialization, hydration, reconcile, a resumed sync)
-- carries the record's last-modified time, which other changes (e.g. a job title edited in the CRM UI) can move
-- past the local edit: the old value of the edited field then overwrote the local one, and the index disagreed
-- with the CRM once the write landed (bench/mixed_load.py found 2-7 such contacts per run). A field whose version
-- is not older than the record's oldest open write-back now keeps its value against snapshots, like a field a
-- newer webhook set. Webhooks (per-field event times) still win over local edits, as before.
CREATE INDEX writeback_queue_open_record_idx ON crm.writeback_queue (org_id, crm_source, entity_type, crm_record_id)
WHERE status IN ('pending', 'processing', 'failed');

-- When the oldest write-back of a record that has not landed yet was queued (NULL: none open).
CREATE FUNCTION crm.writeback_open_since(p_org_id uuid, p_source text, p_entity_type text, p_crm_record_id text)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT min(w.created_at)
    FROM crm.writeback_queue AS w
    WHERE w.org_id = p_org_id AND w.crm_source = p_source AND w.entity_type = p_entity_type
        AND w.crm_record_id = p_crm_record_id AND w.status IN ('pending', 'processing', 'failed')
$$;

-- The shared writer behind the three upserts (0003), with the rule above.
CREATE OR REPLACE FUNCTION crm.write_index_rows(p_org_id uuid, p_table regclass, p_source text, p_rows jsonb)
RETURNS TABLE (crm_record_id text, inserted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_keys text[];
    v_group jsonb;
    v_cols text[];
    v_select text;
    v_set text;
    v_cmp_old text;
    v_cmp_new text;
    v_sql text;
    v_entity text := CASE p_table
        WHEN 'crm.contact_index'::regclass THEN 'contact'
        WHEN 'crm.company_index'::regclass THEN 'company'
        WHEN 'crm.deal_index'::regclass THEN 'deal'
    END;
    v_pending text := format(
        'crm.writeback_open_since(t.org_id, t.crm_source, %L, t.crm_record_id)', v_entity
    );
BEGIN
    FOR v_keys, v_group IN
        SELECT g.keys, jsonb_agg(g.elem ORDER BY g.ord)
        FROM (
            SELECT e.elem, e.ord,
                ARRAY(
                    SELECT k FROM jsonb_object_keys(e.elem) AS k
                    WHERE k NOT IN ('crm_record_id', 'crm_source', 'deleted_at', 'contact_crm_ids', 'associations_read_at')
                    ORDER BY k
                ) AS keys
            FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord)
        ) AS g
        GROUP BY g.keys
    LOOP
        v_cols := v_keys || ARRAY['deleted_at'];
        SELECT
            string_agg(
                CASE WHEN a.atttypid = 'text'::regtype THEN format('nullif(btrim(r.%1$I), %2$L)', a.attname, '')
                    ELSE format('r.%I', a.attname) END, ', ' ORDER BY a.attname
            ),
            -- a field a webhook changed after the incoming snapshot keeps its newer value, and so does a field
            -- changed locally whose write-back has not landed yet (the snapshot predates it)
            string_agg(
                format(
                    '%1$I = CASE WHEN t.field_versions IS NULL OR NOT t.field_versions ? %2$L THEN excluded.%1$I '
                    'WHEN (t.field_versions ->> %2$L)::timestamptz > excluded.crm_updated_at '
                    'OR (t.field_versions ->> %2$L)::timestamptz >= %3$s THEN t.%1$I ELSE excluded.%1$I END',
                    a.attname, a.attname, v_pending
                ),
                ', ' ORDER BY a.attname
            ),
            string_agg(format('t.%I', a.attname), ', ' ORDER BY a.attname),
            string_agg(format('excluded.%I', a.attname), ', ' ORDER BY a.attname)
        INTO v_select, v_set, v_cmp_old, v_cmp_new
        FROM pg_attribute AS a
        WHERE a.attrelid = p_table AND a.attname = ANY(v_cols) AND a.attnum > 0 AND NOT a.attisdropped;

        v_sql := format(
            $f$
            INSERT INTO %1$s AS t (org_id, crm_source, crm_record_id, %2$s)
            SELECT $1, $2, btrim(r.crm_record_id), %3$s
            FROM (
                SELECT DISTINCT ON (btrim(x.crm_record_id)) x.*
                FROM ROWS FROM (jsonb_populate_recordset(NULL::%1$s, $3)) WITH ORDINALITY AS x
                ORDER BY btrim(x.crm_record_id), x.crm_updated_at DESC NULLS LAST, x.ordinality DESC
            ) AS r
            ON CONFLICT (org_id, crm_source, crm_record_id) DO UPDATE SET %4$s, updated_at = now(),
                field_versions = CASE WHEN t.field_versions IS NOT NULL THEN (
                    SELECT jsonb_object_agg(f.key, f.value) FROM jsonb_each(t.field_versions) AS f
                    WHERE (f.value #>> '{}')::timestamptz > excluded.crm_updated_at
                        OR (f.value #>> '{}')::timestamptz >= %7$s
                ) END
            WHERE (excluded.crm_updated_at >= t.crm_updated_at OR t.crm_updated_at IS NULL)
                AND (%5$s) IS DISTINCT FROM (%6$s)
            RETURNING t.crm_record_id, (t.xmax = 0)
            $f$,
            p_table,
            (SELECT string_agg(format('%I', c), ', ' ORDER BY c) FROM unnest(v_cols) AS c),
            v_select, v_set,
            v_cmp_old || ', t.crm_updated_at', v_cmp_new || ', excluded.crm_updated_at',
            v_pending
        );
        BEGIN
            RETURN QUERY EXECUTE v_sql USING p_org_id, p_source, v_group;
        EXCEPTION WHEN data_exception OR check_violation OR not_null_violation THEN
            PERFORM crm.diagnose_index_rows(p_table, p_rows);
            RAISE EXCEPTION 'invalid rows: %', SQLERRM USING ERRCODE = 'CX001';
        END;
    END LOOP;
END
$$;

-- section: merges delivered late (process fault matrix, tests/test_faults_process.py)
-- A record merged into a primary that was deleted since is "not found" when hydration reads it, so it was
-- soft-deleted without its primary, stamped with the read time; the merge event, older than that stamp,
-- then changed nothing and merged_into stayed NULL for good. A merge is permanent (a merged-away id never
-- comes back), so a deleted record without a primary now takes it from any merge event, whatever its
-- time, and records of the batch follow merge chains to the current primary. Otherwise as in 0008.
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

-- section: tenancy (adversarial RLS suite, tests/test_tenancy_adversarial.py)
-- The SECURITY DEFINER search helpers run as their owner, who bypasses row-level security, and
-- crm.assert_org lets an unbound session name any org (workers serve every org). So an application
-- session (crm_app) with no org bound (or crm.org_id = '') got the ids and scores of any org's contacts
-- and companies from crm.search_contact_ids / crm.search_company_ids, and their plans (SQL naming that
-- org's matching company CRM ids) from crm.search_contact_plan / crm.search_company_plan. Now, inside a
-- SECURITY DEFINER function, an unbound session may name an org only when its own role sees every org
-- anyway (superuser, BYPASSRLS, member of the tables' owner or of crm_worker): the *_ids helpers return
-- nothing (what row-level security shows an unbound crm_app session) and the plans raise CX003.

-- Does the session's own role (SET ROLE, else the login; never the owner of a SECURITY DEFINER function
-- being run) see the rows of every org?
CREATE FUNCTION crm.session_sees_every_org() RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_role text := coalesce(nullif(current_setting('role', TRUE), 'none'), session_user);
BEGIN
    RETURN EXISTS (SELECT 1 FROM pg_roles AS r WHERE r.rolname = v_role AND (r.rolsuper OR r.rolbypassrls))
        OR pg_has_role(v_role, 'crm_worker', 'USAGE')
        OR pg_has_role(
            v_role, (SELECT c.relowner FROM pg_class AS c WHERE c.oid = 'crm.contact_index'::regclass), 'USAGE'
        );
END
$$;

-- As in 0001, plus: inside a SECURITY DEFINER function (current_user is not the session's role) an
-- unbound session must see every org to name one.
CREATE OR REPLACE FUNCTION crm.assert_org(p_org_id uuid) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_bound uuid := crm.current_org_id();
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'org id must not be null' USING ERRCODE = 'CX002';
    END IF;
    IF v_bound IS NOT NULL AND v_bound <> p_org_id THEN
        RAISE EXCEPTION 'this session is bound to org %, not %', v_bound, p_org_id USING ERRCODE = 'CX003';
    END IF;
    IF v_bound IS NULL
        AND current_user <> coalesce(nullif(current_setting('role', TRUE), 'none'), session_user)
        AND NOT crm.session_sees_every_org() THEN
        RAISE EXCEPTION 'this session is not bound to an org (set crm.org_id)' USING ERRCODE = 'CX003';
    END IF;
END
$$;

-- As in 0006; an unbound application session gets nothing (row-level security would show it nothing).
CREATE OR REPLACE FUNCTION crm.search_contact_ids(p_org_id uuid, p_query text, p_filters jsonb, p_limit integer)
RETURNS TABLE (id bigint, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 50
SET search_path = pg_catalog, pg_temp
SET "pg_trgm.word_similarity_threshold" = '0.3'
SET enable_seqscan = off
AS $$
BEGIN
    IF p_org_id IS NOT NULL AND crm.current_org_id() IS NULL AND NOT crm.session_sees_every_org() THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT r.id, r.score FROM crm.run_search_plan(crm.search_contact_plan(p_org_id, p_query, p_filters, p_limit)) AS r;
END
$$;

CREATE OR REPLACE FUNCTION crm.search_company_ids(p_org_id uuid, p_query text, p_filters jsonb, p_limit integer)
RETURNS TABLE (id bigint, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 50
SET search_path = pg_catalog, pg_temp
SET "pg_trgm.word_similarity_threshold" = '0.3'
SET enable_seqscan = off
AS $$
BEGIN
    IF p_org_id IS NOT NULL AND crm.current_org_id() IS NULL AND NOT crm.session_sees_every_org() THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT r.id, r.score FROM crm.run_search_plan(crm.search_company_plan(p_org_id, p_query, p_filters, p_limit)) AS r;
END
$$;

-- section: one CRM account belongs to one org (adversarial tenancy suite)
-- Webhooks are routed by portal / workspace id. save_connection checked "already connected to another org"
-- under row-level security, so an application session bound to org A could not see org B's connection and
-- could register B's portal for A (squatting B's webhooks if A came first). The check now runs as the table
-- owner, whoever inserts. (A unique index on (crm_source, account_id) would not start with org_id, which
-- distributed (Citus) tables require; the advisory lock serializes concurrent claims of one account. AFTER the
-- row: a row refused by row-level security is refused as such first.)
CREATE FUNCTION crm.connection_account_unique() RETURNS trigger
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

CREATE TRIGGER connection_account_unique
AFTER INSERT OR UPDATE OF crm_source, account_id ON crm.connection
FOR EACH ROW EXECUTE FUNCTION crm.connection_account_unique();

-- section: wrong JSON types for text columns (fuzzing)
-- jsonb_populate_recordset stores an object, array or boolean given for a text column as its JSON text
-- ('{"a": 1}' as a name): the batch is now rejected naming the row, like any other wrong type.
CREATE OR REPLACE FUNCTION crm.check_index_rows(p_table regclass, p_source text, p_rows jsonb, p_extra text[])
RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_cols text[];
    v_text text[];
    v_protected text[] := crm.index_protected_columns(p_table);
    v_bad record;
BEGIN
    IF p_source IS NULL OR p_source NOT IN ('hubspot', 'attio') THEN
        RAISE EXCEPTION 'unknown CRM source %', coalesce(quote_literal(p_source), 'NULL')
            USING ERRCODE = 'CX002', HINT = 'use hubspot or attio';
    END IF;
    IF p_rows IS NULL OR jsonb_typeof(p_rows) <> 'array' THEN
        RAISE EXCEPTION 'rows must be a JSON array of objects' USING ERRCODE = 'CX001';
    END IF;
    SELECT array_agg(a.attname::text), array_agg(a.attname::text) FILTER (WHERE a.atttypid = 'text'::regtype)
    INTO v_cols, v_text
    FROM pg_attribute AS a
    WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;

    SELECT e.ord, e.elem, r.problem INTO v_bad
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord)
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN jsonb_typeof(e.elem) <> 'object' THEN 'is not a JSON object'
            WHEN NOT e.elem ? 'crm_record_id' OR jsonb_typeof(e.elem -> 'crm_record_id') NOT IN ('string', 'number')
                OR btrim(e.elem ->> 'crm_record_id') = '' THEN 'has no crm_record_id'
            WHEN e.elem ? 'crm_source' AND e.elem ->> 'crm_source' IS DISTINCT FROM p_source
                THEN format('has crm_source %s but the batch is for %s', e.elem -> 'crm_source', p_source)
            WHEN e.elem ? 'email' AND jsonb_typeof(e.elem -> 'email') = 'string'
                AND btrim(e.elem ->> 'email') <> ''
                AND btrim(e.elem ->> 'email') !~ '^[^@\s]+@[^@\s]+\.[^@\s.]+$'
                THEN format('has a malformed email %s', e.elem -> 'email')
            ELSE coalesce((
                SELECT format('has %s key %s', CASE WHEN k = ANY(v_protected) THEN 'derived/managed' ELSE 'unknown' END,
                    quote_literal(k))
                FROM jsonb_object_keys(e.elem) AS k
                WHERE (k = ANY(v_protected) OR NOT k = ANY(v_cols)) AND NOT k = ANY(p_extra)
                ORDER BY k
                LIMIT 1
            ), (
                -- a number is taken as its text (ids, phone numbers); an object, array or boolean is a mistake
                SELECT format('has a JSON %s for the text column %s', jsonb_typeof(e.elem -> k), quote_literal(k))
                FROM jsonb_object_keys(e.elem) AS k
                WHERE k = ANY(v_text) AND jsonb_typeof(e.elem -> k) IN ('object', 'array', 'boolean')
                ORDER BY k
                LIMIT 1
            ))
        END AS problem
    ) AS r
    WHERE r.problem IS NOT NULL
    ORDER BY e.ord
    LIMIT 1;

    IF FOUND THEN
        RAISE EXCEPTION 'row % (crm_record_id %) %', v_bad.ord,
            coalesce(v_bad.elem ->> 'crm_record_id', '?'), v_bad.problem
            USING ERRCODE = 'CX001',
            DETAIL = format('row=%s crm_record_id=%s', v_bad.ord, coalesce(v_bad.elem ->> 'crm_record_id', ''));
    END IF;
END
$$;
