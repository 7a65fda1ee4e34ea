-- index/writes.sql: derived columns, bulk upserts and deal summaries for the tier-1 index.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).
--
--   crm.upsert_contacts(p_org_id, p_source, p_rows jsonb)
--   crm.upsert_companies(p_org_id, p_source, p_rows jsonb)
--   crm.upsert_deals(p_org_id, p_source, p_rows jsonb)
--
-- p_rows is a JSON array of objects keyed by the index table's own column names. Semantics:
--   * one statement per distinct key set, so a batch of 1,000 rows is one round trip and a few statements;
--   * a key that is present is written (null clears it); an absent key keeps the stored value;
--   * monotonic: a row whose crm_updated_at is older than the stored one changes nothing; a row without
--     crm_updated_at only applies to a record that has none either; a row may say when it was read (observed_at):
--     read after the stored version and different, it applies (crm.observed_versions: Attio clears);
--   * deleted_at is always written (absent = NULL): a newer row of a soft-deleted record restores it;
--   * derived columns (seniority, deal summary, industry groups...) are computed here and may not be supplied;
--     neither may email_domain (computed where it is read: crm.email_domain(email));
--   * any bad row (not an object, missing id, unknown or derived key, wrong source, malformed email,
--     a value of the wrong type) raises SQLSTATE CX001 naming the row, and the whole batch changes nothing.
-- They return one row: (inserted, updated, unchanged) counts.

-- Normalized email domain of a company website/domain: no scheme, no www., no path or port, lower case.
CREATE OR REPLACE FUNCTION crm.norm_domain(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(
    regexp_replace(
        regexp_replace(lower(btrim(p)), '^[a-z][a-z0-9+.-]*://', ''),
        '^www\.|[:/?#].*$', '', 'g'
    ),
    ''
);

-- A contact's name as the name searches compare it (first and last name joined by a space, normalized). The names
-- joined with || as concat_ws(' ', first, last) joins them (a NULL skipped, '' for none), not with concat_ws
-- (stable): an immutable SQL function whose body is not immutable is never inlined, and this one then ran as an SQL
-- function once per candidate row of every name search's ranking and tier 2 (~50 us a row; H20A).
CREATE OR REPLACE FUNCTION crm.contact_name_norm(p_first text, p_last text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(crm.norm_text(
    CASE
        WHEN p_first IS NULL THEN coalesce(p_last, '')
        WHEN p_last IS NULL THEN p_first
        ELSE p_first || ' ' || p_last
    END
), '');

-- The domain of a contact's email (the part after '@'; the email is stored lower-cased and trimmed): computed where it
-- is read, never stored (migration 0021); contact_index_email_domain_idx is built on (org_id, crm.email_domain(email)).
CREATE OR REPLACE FUNCTION crm.email_domain(p_email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(split_part(p_email, '@', 2), '');

-- The title is tokenized once for both classifiers (crm.title_seniority / crm.title_department of the same title).
CREATE OR REPLACE FUNCTION crm.contact_index_derive() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_tokens text[];
BEGIN
    NEW.email := nullif(lower(btrim(NEW.email)), '');
    IF TG_OP = 'INSERT' OR NEW.job_title IS DISTINCT FROM OLD.job_title THEN
        v_tokens := crm.title_tokens(NEW.job_title);
        NEW.seniority := crm.title_tokens_seniority(v_tokens);
        NEW.department := crm.title_tokens_department(v_tokens);
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION crm.company_index_derive() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.domain := crm.norm_domain(NEW.domain);
    IF TG_OP = 'INSERT'
        OR NEW.industry IS DISTINCT FROM OLD.industry
        OR NEW.name IS DISTINCT FROM OLD.name
        OR NEW.domain IS DISTINCT FROM OLD.domain
        OR NEW.description IS DISTINCT FROM OLD.description
        OR NEW.tags IS DISTINCT FROM OLD.tags THEN
        -- from the industry, the description and tags (index/derive.sql; issue 17)
        NEW.industry_groups := crm.company_industry_groups(
            NEW.industry, NEW.name, NEW.domain, NEW.description, NEW.tags
        );
    END IF;
    RETURN NEW;
END
$$;

-- The labels of a deal's stage and pipeline, and whether the stage closes the deal, from the org's CRM vocabulary
-- (crm.crm_pipeline_stage: HubSpot deal pipelines, refreshed by freshness/metadata.sql): the stage of the deal's
-- pipeline; else, when the pipeline is not known, the stage id alone (HubSpot stage ids of pipelines other than
-- the default one are numeric and unique; any source writing stages with object_type 'deals' gets labels).
-- NULLs when the stage is not known (yet).
CREATE OR REPLACE FUNCTION crm.deal_stage_labels(
    p_org_id uuid, p_source text, p_pipeline text, p_stage text,
    OUT stage_label text, OUT pipeline_label text, OUT is_closed boolean, OUT is_won boolean
)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_stage IS NULL THEN
        SELECT s.pipeline_label INTO pipeline_label FROM crm.crm_pipeline_stage AS s
        WHERE s.org_id = p_org_id AND s.crm_source = p_source AND s.object_type = 'deals' AND s.pipeline_id = p_pipeline
        LIMIT 1;
        RETURN;
    END IF;
    SELECT s.stage_label, s.pipeline_label, s.is_closed, s.is_won
    INTO stage_label, pipeline_label, is_closed, is_won
    FROM crm.crm_pipeline_stage AS s
    WHERE s.org_id = p_org_id AND s.crm_source = p_source AND s.object_type = 'deals'
        AND s.pipeline_id = p_pipeline AND s.stage_id = p_stage;
    IF NOT FOUND THEN
        SELECT s.stage_label, s.pipeline_label, s.is_closed, s.is_won
        INTO stage_label, pipeline_label, is_closed, is_won
        FROM crm.crm_pipeline_stage AS s
        WHERE s.org_id = p_org_id AND s.crm_source = p_source AND s.object_type = 'deals' AND s.stage_id = p_stage
        ORDER BY s.archived, s.pipeline_id = 'default' DESC, s.pipeline_id
        LIMIT 1;
    END IF;
END
$$;

-- stage_label / pipeline_label are derived here on every write (protected: an upsert never supplies them); a stage
-- the vocabulary says is closed closes the deal when the row does not say (HubSpot's hs_is_closed).
CREATE OR REPLACE FUNCTION crm.deal_index_derive() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_l record;
BEGIN
    v_l := crm.deal_stage_labels(NEW.org_id, NEW.crm_source, NEW.pipeline, NEW.stage);
    NEW.stage_label := v_l.stage_label;
    NEW.pipeline_label := v_l.pipeline_label;
    NEW.is_active := NEW.deleted_at IS NULL
        AND NOT coalesce(NEW.is_closed, v_l.is_closed, lower(NEW.stage) IN ('closedwon', 'closedlost'), FALSE);
    RETURN NEW;
END
$$;

-- Columns an upsert may not supply, per index table.
CREATE OR REPLACE FUNCTION crm.index_protected_columns(p_table regclass) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE p_table
    WHEN 'crm.contact_index'::regclass
        THEN
            ARRAY[
                'org_id', 'id', 'updated_at', 'email_domain', 'seniority', 'department',
                'has_active_deal', 'deal_stage', 'deal_value',
                'materialized_contact_id', 'is_materialized', 'materialized_at', 'field_versions', 'merged_into'
            ]
    WHEN 'crm.company_index'::regclass
        THEN
            ARRAY[
                'org_id', 'id', 'created_at', 'updated_at', 'industry_groups',
                'materialized_company_id', 'is_materialized', 'materialized_at', 'field_versions', 'merged_into'
            ]
    WHEN 'crm.deal_index'::regclass
        THEN
            ARRAY[
                'org_id', 'id', 'created_at', 'updated_at', 'is_active', 'field_versions', 'merged_into',
                'stage_label', 'pipeline_label'
            ]
END;

-- Validate a batch; raise CX001 naming the first bad row. p_extra: keys allowed besides the columns.
-- An object, array or boolean given for a text column is a wrong type (jsonb_populate_recordset would store
-- its JSON text as the value). Bounded input (platform/bounds.sql): at most crm.input_cap('rows') rows and
-- crm.input_cap('rows_bytes') bytes of JSON text per batch, and every string or number value within
-- crm.text_cap of its key (a 5 MB first_name is refused naming the row and first_name).
CREATE OR REPLACE FUNCTION crm.check_index_rows(p_table regclass, p_source text, p_rows jsonb, p_extra text[])
RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_cols text[];
    v_text text[];
    v_protected text[] := crm.index_protected_columns(p_table);
    v_caps jsonb;
    v_text_set jsonb;
    v_allowed text[];
    v_max integer;
    v_small text[];
    v_bad record;
BEGIN
    PERFORM crm.check_source(p_source);
    p_extra := p_extra || ARRAY['observed_at'];  -- when a row was read (crm.observed_versions)
    IF p_rows IS NULL OR jsonb_typeof(p_rows) <> 'array' THEN
        RAISE EXCEPTION 'rows must be a JSON array of objects' USING ERRCODE = 'CX001';
    END IF;
    IF jsonb_array_length(p_rows) > crm.input_cap('rows') THEN
        RAISE EXCEPTION 'a batch holds at most % rows (got %)', crm.input_cap('rows'), jsonb_array_length(p_rows)
            USING ERRCODE = 'CX001';
    END IF;
    IF octet_length(p_rows::text) > crm.input_cap('rows_bytes') THEN
        RAISE EXCEPTION 'a batch holds at most % bytes of JSON (got %)', crm.input_cap('rows_bytes'),
            octet_length(p_rows::text) USING ERRCODE = 'CX001';
    END IF;
    SELECT array_agg(a.attname::text), array_agg(a.attname::text) FILTER (WHERE a.atttypid = 'text'::regtype)
    INTO v_cols, v_text
    FROM pg_attribute AS a
    WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;

    -- the common case first (issue 18: a bulk upsert's fixed cost): one pass over every key of every row, each key
    -- looked up in a JSON object of the allowed keys and their caps (a binary search) instead of compared with
    -- the column arrays; only a batch with a problem takes the precise pass below, which names the first one
    SELECT jsonb_object_agg(k, crm.text_cap(k)) INTO v_caps
    FROM unnest(p_extra || ARRAY(SELECT c FROM unnest(v_cols) AS c WHERE c <> ALL(v_protected))) AS k;
    SELECT coalesce(jsonb_object_agg(t, TRUE), '{}') INTO v_text_set FROM unnest(v_text) AS t;
    -- per row, without going through its keys one by one (issue 18 item 5: that loop was ~8% of a contact upsert):
    -- an unknown key is what remains after removing the allowed keys; a key whose cap is below the largest is
    -- measured; any other value is no longer than the row's JSON text, and an object, array or boolean value shows
    -- in that text as '": {', '": [', '": true', '": false' (jsonb's text form). Only a row longer than the largest
    -- cap or showing such a marker goes through its keys. A row flagged here that has no problem is cleared by the
    -- precise pass below, which finds nothing.
    SELECT array_agg(c.key), max(c.value::integer) INTO v_allowed, v_max FROM jsonb_each_text(v_caps) AS c;
    v_small := ARRAY(SELECT c.key FROM jsonb_each_text(v_caps) AS c WHERE c.value::integer < v_max);
    IF NOT EXISTS (
        SELECT 1
        FROM jsonb_array_elements(p_rows) AS e (elem)
        CROSS JOIN LATERAL (  -- OFFSET 0: the row's text is made once, not once per use
            SELECT j.o, j.o::text AS t FROM (SELECT CASE WHEN jsonb_typeof(e.elem) = 'object' THEN e.elem ELSE '{}' END) AS j (o)
            OFFSET 0
        ) AS r
        WHERE jsonb_typeof(e.elem) <> 'object'
            OR NOT e.elem ? 'crm_record_id' OR jsonb_typeof(e.elem -> 'crm_record_id') NOT IN ('string', 'number')
            OR btrim(e.elem ->> 'crm_record_id') = ''
            OR (e.elem ? 'crm_source' AND e.elem ->> 'crm_source' IS DISTINCT FROM p_source)
            OR (
                e.elem ? 'email' AND jsonb_typeof(e.elem -> 'email') = 'string'
                AND btrim(e.elem ->> 'email') <> '' AND NOT crm.is_email(btrim(e.elem ->> 'email'))
            )
            OR (r.o - v_allowed) <> '{}'::jsonb
            OR EXISTS (
                SELECT 1 FROM unnest(v_small) AS s (k) WHERE length(r.o ->> s.k) > (v_caps ->> s.k)::integer
            )
            OR (
                (
                    octet_length(r.t) > v_max OR strpos(r.t, '": {') > 0 OR strpos(r.t, '": [') > 0
                    OR strpos(r.t, '": true') > 0 OR strpos(r.t, '": false') > 0
                )
                AND EXISTS (
                    SELECT 1 FROM jsonb_each(r.o) AS x (k, v)
                    WHERE NOT v_caps ? x.k
                        OR (v_text_set ? x.k AND jsonb_typeof(x.v) IN ('object', 'array', 'boolean'))
                        OR (
                            jsonb_typeof(x.v) IN ('string', 'number')
                            AND length(x.v #>> '{}') > (v_caps ->> x.k)::integer
                        )
                )
            )
    ) THEN
        RETURN;
    END IF;

    SELECT e.ord, e.elem, r.problem INTO v_bad
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord)
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN jsonb_typeof(e.elem) <> 'object' THEN 'is not a JSON object'
            WHEN NOT e.elem ? 'crm_record_id' OR jsonb_typeof(e.elem -> 'crm_record_id') NOT IN ('string', 'number')
                OR btrim(e.elem ->> 'crm_record_id') = '' THEN 'has no crm_record_id'
            WHEN e.elem ? 'crm_source' AND e.elem ->> 'crm_source' IS DISTINCT FROM p_source
                THEN format('has crm_source %s but the batch is for %s', left((e.elem -> 'crm_source')::text, 40), p_source)
            WHEN e.elem ? 'email' AND jsonb_typeof(e.elem -> 'email') = 'string'
                AND btrim(e.elem ->> 'email') <> ''
                AND NOT crm.is_email(btrim(e.elem ->> 'email'))
                THEN format('has a malformed email %s', left((e.elem -> 'email')::text, 100))
            ELSE (
                -- one pass over the keys: an unknown or derived key first; then a JSON object, array or boolean
                -- for a text column (a number is taken as its text: ids, phone numbers); then a string or number
                -- longer than the cap of its key
                SELECT CASE
                    WHEN (x.k = ANY(v_protected) OR NOT x.k = ANY(v_cols)) AND NOT x.k = ANY(p_extra)
                        THEN format('has %s key %s', CASE WHEN x.k = ANY(v_protected) THEN 'derived/managed'
                            ELSE 'unknown' END, quote_literal(x.k))
                    WHEN jsonb_typeof(x.v) IN ('object', 'array', 'boolean')
                        THEN format('has a JSON %s for the text column %s', jsonb_typeof(x.v), quote_literal(x.k))
                    ELSE format('has %s longer than %s characters', x.k, crm.text_cap(x.k))
                END
                FROM jsonb_each(e.elem) AS x (k, v)
                WHERE ((x.k = ANY(v_protected) OR NOT x.k = ANY(v_cols)) AND NOT x.k = ANY(p_extra))
                    OR (x.k = ANY(v_text) AND jsonb_typeof(x.v) IN ('object', 'array', 'boolean'))
                    OR (jsonb_typeof(x.v) IN ('string', 'number') AND length(x.v #>> '{}') > crm.text_cap(x.k))
                ORDER BY ((x.k = ANY(v_protected) OR NOT x.k = ANY(v_cols)) AND NOT x.k = ANY(p_extra)) DESC, x.k
                LIMIT 1
            )
        END AS problem
    ) AS r
    WHERE r.problem IS NOT NULL
    ORDER BY e.ord
    LIMIT 1;

    IF FOUND THEN
        RAISE EXCEPTION 'row % (crm_record_id %) %', v_bad.ord,
            left(coalesce(v_bad.elem ->> 'crm_record_id', '?'), crm.text_cap('crm_record_id')), v_bad.problem
            USING ERRCODE = 'CX001',
            DETAIL = format(
                'row=%s crm_record_id=%s', v_bad.ord,
                left(coalesce(v_bad.elem ->> 'crm_record_id', ''), crm.text_cap('crm_record_id'))
            );
    END IF;
END
$$;

-- After a data error in the set-based write: find the row whose values do not fit the column types.
CREATE OR REPLACE FUNCTION crm.diagnose_index_rows(p_table regclass, p_rows jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_elem jsonb;
    v_ord bigint;
BEGIN
    FOR v_elem, v_ord IN SELECT e.elem, e.ord FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord) LOOP
        BEGIN
            EXECUTE format('SELECT jsonb_populate_record(NULL::%s, $1)', p_table) USING v_elem;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'row % (crm_record_id %) has a bad value: %', v_ord,
                coalesce(v_elem ->> 'crm_record_id', '?'), SQLERRM
                USING ERRCODE = 'CX001',
                DETAIL = format('row=%s crm_record_id=%s', v_ord, coalesce(v_elem ->> 'crm_record_id', ''));
        END;
    END LOOP;
END
$$;

-- A value of an index row as the comparison of crm.observed_versions sees it: text trimmed (empty = NULL), emails
-- lower-cased and domains normalized as the derive triggers store them, JSON null = NULL.
CREATE OR REPLACE FUNCTION crm.observed_norm(p_key text, p_value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN NULL
    WHEN jsonb_typeof(p_value) <> 'string' THEN p_value
    ELSE to_jsonb(nullif(btrim(CASE p_key
        WHEN 'email' THEN lower(p_value #>> '{}')
        WHEN 'domain' THEN crm.norm_domain(p_value #>> '{}')
        ELSE p_value #>> '{}'
    END), ''))
END;

-- Rows read from a CRM may carry observed_at: when they were read. A snapshot read at T reflects every change
-- before T, so it may supersede a stored row whose version is newer than the snapshot's own crm_updated_at but
-- older than T: that happens when the CRM cannot show what changed (Attio has no updated_at and a GET shows only
-- active values, so clearing a field moves its newest active_from back). Such a row is applied with crm_updated_at
-- = observed_at when its content differs from the stored row's (or the stored row is deleted); otherwise the row
-- keeps its version (an identical snapshot changes nothing, and a stale one read before the stored version is still
-- refused). Returns the rows without observed_at. A malformed observed_at is a bad row (CX001).
CREATE OR REPLACE FUNCTION crm.observed_versions(p_org_id uuid, p_source text, p_table regclass, p_rows jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_out jsonb;
    v_bad record;
BEGIN
    IF p_rows IS NULL OR jsonb_typeof(p_rows) <> 'array' OR NOT jsonb_path_exists(p_rows, '$[*].observed_at') THEN
        RETURN p_rows;
    END IF;
    FOR v_bad IN
        SELECT e.ord, e.elem ->> 'crm_record_id' AS rid, e.elem ->> 'observed_at' AS val
        FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord)
        WHERE jsonb_typeof(e.elem) = 'object' AND e.elem ? 'observed_at'
        ORDER BY e.ord
    LOOP
        BEGIN
            PERFORM v_bad.val::timestamptz;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'row % (crm_record_id %) has a bad value: %', v_bad.ord, v_bad.rid, SQLERRM
                USING ERRCODE = 'CX001', DETAIL = format('row=%s crm_record_id=%s', v_bad.ord, v_bad.rid);
        END;
    END LOOP;
    BEGIN
        EXECUTE format(
            $f$
            SELECT coalesce(jsonb_agg(
                CASE
                    WHEN t.crm_updated_at IS NOT NULL
                        AND (e.elem ->> 'crm_updated_at')::timestamptz < t.crm_updated_at
                        AND (e.elem ->> 'observed_at')::timestamptz > t.crm_updated_at
                        AND (t.deleted_at IS NOT NULL OR EXISTS (
                            SELECT 1 FROM jsonb_object_keys(e.elem) AS k (key)
                            WHERE k.key NOT IN (
                                'crm_record_id', 'crm_source', 'crm_created_at', 'crm_updated_at', 'observed_at',
                                'deleted_at', 'last_webhook_at', 'contact_crm_ids', 'associations_read_at'
                            )
                                AND n.j ? k.key
                                AND crm.observed_norm(k.key, n.j -> k.key)
                                IS DISTINCT FROM crm.observed_norm(k.key, to_jsonb(t) -> k.key)
                        ))
                        THEN (e.elem - 'observed_at') || jsonb_build_object('crm_updated_at', e.elem -> 'observed_at')
                    ELSE e.elem - 'observed_at'
                END ORDER BY e.ord
            ), '[]'::jsonb)
            FROM jsonb_array_elements($3) WITH ORDINALITY AS e (elem, ord)
            CROSS JOIN LATERAL (SELECT to_jsonb(jsonb_populate_record(NULL::%1$s, e.elem - 'observed_at')) AS j) AS n
            LEFT JOIN %1$s AS t
                ON t.org_id = $1 AND t.crm_source = $2 AND t.crm_record_id = btrim(e.elem ->> 'crm_record_id')
            $f$,
            p_table
        ) INTO v_out USING p_org_id, p_source, p_rows;
    EXCEPTION WHEN data_exception THEN  -- a value that fits no column: the write names its row
        SELECT jsonb_agg(e.elem - 'observed_at' ORDER BY e.ord) INTO v_out
        FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord);
    END;
    RETURN v_out;
END
$$;

-- The shared writer behind the three upserts. Returns the records it inserted or changed.
-- A field a webhook changed after the incoming snapshot keeps its newer value, and so does a field changed
-- locally whose write-back has not landed yet (crm.writeback_open_since: the snapshot predates the write).
CREATE OR REPLACE FUNCTION crm.write_index_rows(p_org_id uuid, p_table regclass, p_source text, p_rows jsonb)
RETURNS TABLE (crm_record_id text, inserted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_keys text[];
    v_group jsonb;
    v_all text[];
    v_uniform boolean;
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
    p_rows := crm.observed_versions(p_org_id, p_source, p_table, p_rows);  -- rows read at observed_at
    -- rows are written in groups of the same keys (a key a row lacks keeps its stored value). The common case, a
    -- sync's batch whose rows all have the same keys, is one group: the batch as given, without taking it apart and
    -- aggregating it again (issue 18 item 5: that regrouping cost ~10% of a 1,000-row contact upsert)
    v_all := ARRAY(
        SELECT DISTINCT k FROM jsonb_array_elements(p_rows) AS e (elem) CROSS JOIN LATERAL jsonb_object_keys(e.elem) AS k
        ORDER BY k
    );
    v_uniform := jsonb_array_length(p_rows) > 0
        AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_rows) AS e (elem) WHERE NOT e.elem ?& v_all);
    FOR v_keys, v_group IN
        SELECT
            ARRAY(
                SELECT k FROM unnest(v_all) AS k
                WHERE k NOT IN ('crm_record_id', 'crm_source', 'deleted_at', 'contact_crm_ids', 'associations_read_at')
                ORDER BY k
            ),
            p_rows
        WHERE v_uniform
        UNION ALL
        SELECT g.keys, jsonb_agg(g.elem ORDER BY g.ord)
        FROM (
            SELECT e.elem, e.ord,
                ARRAY(
                    SELECT k FROM jsonb_object_keys(e.elem) AS k
                    WHERE k NOT IN ('crm_record_id', 'crm_source', 'deleted_at', 'contact_crm_ids', 'associations_read_at')
                    ORDER BY k
                ) AS keys
            FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord)
            WHERE NOT v_uniform
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

-- Recompute has_active_deal / deal_stage / deal_value of the given contacts from their deals:
-- deal_stage and the headline value come from the largest open deal; deal_value sums open deals. deal_stage is the
-- stage's label when the org's vocabulary knows it ("Contract Sent"), else the CRM's stage id.
CREATE OR REPLACE FUNCTION crm.refresh_contact_deals(p_org_id uuid, p_source text, p_contact_ids text[])
RETURNS integer
LANGUAGE sql AS $$
    WITH summary AS (
        SELECT
            c.id,
            coalesce(s.has_active, FALSE) AS has_active,
            s.stage,
            s.value
        FROM crm.contact_index AS c
        LEFT JOIN LATERAL (
            SELECT
                bool_or(d.is_active) AS has_active,
                (array_agg(
                    coalesce(d.stage_label, d.stage)
                    ORDER BY d.is_active DESC, d.amount DESC NULLS LAST, d.crm_updated_at DESC
                ))[1] AS stage,
                sum(d.amount) FILTER (WHERE d.is_active) AS value
            FROM crm.deal_contact AS dc
            INNER JOIN crm.deal_index AS d
                ON d.org_id = dc.org_id AND d.crm_source = dc.crm_source AND d.crm_record_id = dc.deal_crm_id
            WHERE dc.org_id = c.org_id AND dc.crm_source = c.crm_source AND dc.contact_crm_id = c.crm_record_id
                AND NOT dc.removed AND d.deleted_at IS NULL
        ) AS s ON TRUE
        WHERE c.org_id = p_org_id AND c.crm_source = p_source AND c.crm_record_id = ANY(p_contact_ids)
    ),
    changed AS (
        UPDATE crm.contact_index AS c
        SET has_active_deal = s.has_active, deal_stage = s.stage, deal_value = s.value
        FROM summary AS s
        WHERE c.org_id = p_org_id AND c.id = s.id
            AND (c.has_active_deal, c.deal_stage, c.deal_value) IS DISTINCT FROM (s.has_active, s.stage, s.value)
        RETURNING 1
    )
    SELECT count(*)::integer FROM changed;
$$;

CREATE OR REPLACE FUNCTION crm.upsert_contacts(p_org_id uuid, p_source text, p_rows jsonb)
RETURNS TABLE (inserted integer, updated integer, unchanged integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_new text[];
    v_changed integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_index_rows('crm.contact_index', p_source, p_rows, ARRAY[]::text[]);
    SELECT
        coalesce(array_agg(w.crm_record_id) FILTER (WHERE w.inserted), '{}'),
        count(*) FILTER (WHERE NOT w.inserted)
    INTO v_new, v_changed
    FROM crm.write_index_rows(p_org_id, 'crm.contact_index', p_source, p_rows) AS w;
    -- an owner the org's vocabulary does not know: ask for a refresh (freshness/metadata.sql)
    PERFORM crm.metadata_note_rows(p_org_id, p_source, p_rows);
    -- contacts that arrive after their deals pick up the deal summary now
    IF cardinality(v_new) > 0 AND EXISTS (
        SELECT 1 FROM crm.deal_contact AS dc
        WHERE dc.org_id = p_org_id AND dc.crm_source = p_source AND dc.contact_crm_id = ANY(v_new)
    ) THEN
        PERFORM crm.refresh_contact_deals(p_org_id, p_source, v_new);
    END IF;
    RETURN QUERY SELECT cardinality(v_new), v_changed,
        jsonb_array_length(p_rows) - cardinality(v_new) - v_changed;
END
$$;

CREATE OR REPLACE FUNCTION crm.upsert_companies(p_org_id uuid, p_source text, p_rows jsonb)
RETURNS TABLE (inserted integer, updated integer, unchanged integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_ins integer;
    v_upd integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_index_rows('crm.company_index', p_source, p_rows, ARRAY[]::text[]);
    SELECT count(*) FILTER (WHERE w.inserted), count(*) FILTER (WHERE NOT w.inserted)
    INTO v_ins, v_upd
    FROM crm.write_index_rows(p_org_id, 'crm.company_index', p_source, p_rows) AS w;
    PERFORM crm.metadata_note_rows(p_org_id, p_source, p_rows);
    RETURN QUERY SELECT v_ins, v_upd, jsonb_array_length(p_rows) - v_ins - v_upd;
END
$$;

-- Deals accept two keys besides the columns: contact_crm_ids (array of contact CRM ids), which replaces
-- the deal's contact associations when the row is applied, and associations_read_at (when that list was
-- read from the CRM). The list's version is the later of crm_updated_at and associations_read_at: an
-- association change does not always move a record's last-modified date, but a list read at T reflects
-- every change that occurred before T.
-- A malformed associations_read_at is a bad row (CX001), like any other.
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
                OR length(x.v #>> '{}') > crm.text_cap('contact_crm_id')
        )
    )
    ORDER BY e.ord LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'row % (crm_record_id %) has contact_crm_ids that is not an array of ids (of at most % characters)',
            v_bad.ord, v_bad.rid, crm.text_cap('contact_crm_id')
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
    -- an owner or a stage the org's vocabulary does not know: ask for a refresh (freshness/metadata.sql)
    PERFORM crm.metadata_note_rows(p_org_id, p_source, p_rows, v_applied);
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

-- Create the org row when missing (idempotent). The operator's and workers' path (connect, sync, tests): the
-- application role cannot create orgs.
CREATE OR REPLACE FUNCTION crm.ensure_org(p_org_id uuid, p_name text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_text_size('name', p_name, crm.input_cap('name'));
    INSERT INTO crm.org (org_id, name) VALUES (p_org_id, coalesce(p_name, '')) ON CONFLICT (org_id) DO NOTHING;
END
$$;
