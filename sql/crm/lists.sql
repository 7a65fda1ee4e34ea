-- crm/lists.sql: CRM lists (Attio lists: pipelines of companies, people or deals) and their entries in the index.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md). Tables:
-- migration 0018 (crm.crm_list, crm.list_entry). Python beside it: crmindex/crm/attio/lister.py (what is read),
-- crmindex/index/lists.py (the calls), crmindex/freshness/hydrate.py (list-entry webhooks).
--
--   crm.lists_sync(p_org_id, p_source, p_rows, p_complete)      the lists of an account
--   crm.list_entries_upsert(p_org_id, p_source, p_rows)          entries as read from the CRM (monotonic)
--   crm.list_entries_delete(p_org_id, p_source, p_rows)          entries the CRM no longer has
--   crm.list_entries_sweep(p_org_id, p_source, p_list_id, p_seen, p_before)   after a full listing of a list
--   crm.list_entries_relabel(p_org_id, p_source, p_list_id)      stage labels from crm.crm_pipeline_stage
--
-- Worker functions (crm_worker; a session bound to an org may only touch its own: crm.assert_org). Bad input
-- (not an array of objects, a row without its ids, too many rows) raises CX001 and changes nothing.

-- Raise CX001 unless p_rows is a JSON array of at most crm.input_cap('rows') objects, each with a non-empty
-- string in every key of p_keys (at most crm.text_cap('crm_record_id') characters).
CREATE OR REPLACE FUNCTION crm.check_list_rows(p_rows jsonb, p_keys text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_bad record;
BEGIN
    IF p_rows IS NULL OR jsonb_typeof(p_rows) <> 'array' THEN
        RAISE EXCEPTION 'rows must be a JSON array of objects' USING ERRCODE = 'CX001';
    END IF;
    IF jsonb_array_length(p_rows) > crm.input_cap('rows') THEN
        RAISE EXCEPTION 'a batch holds at most % rows (got %)', crm.input_cap('rows'), jsonb_array_length(p_rows)
            USING ERRCODE = 'CX001';
    END IF;
    SELECT e.ord, k.key INTO v_bad
    FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e (elem, ord)
    CROSS JOIN LATERAL unnest(p_keys) AS k (key)
    WHERE jsonb_typeof(e.elem) <> 'object'
        OR jsonb_typeof(e.elem -> k.key) IS DISTINCT FROM 'string'
        OR btrim(e.elem ->> k.key) = ''
        OR length(e.elem ->> k.key) > crm.text_cap('crm_record_id')
    ORDER BY e.ord
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'row % has no valid %', v_bad.ord, v_bad.key
            USING ERRCODE = 'CX001', DETAIL = format('row=%s key=%s', v_bad.ord, v_bad.key);
    END IF;
END
$$;

-- p_rows: [{"list_id", "api_slug", "name", "parent_object", "stage_attribute", "crm_created_at"}]. Upserts the
-- lists (a list seen again is no longer archived); p_complete: every list of the account was given, so the others
-- are archived (their entries stay, so old references still resolve). Returns the lists inserted or changed.
CREATE OR REPLACE FUNCTION crm.lists_sync(p_org_id uuid, p_source text, p_rows jsonb, p_complete boolean DEFAULT FALSE)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_changed integer;
    v_archived integer := 0;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    PERFORM crm.check_list_rows(p_rows, ARRAY['list_id']);
    WITH src AS (
        SELECT DISTINCT ON (btrim(x.elem ->> 'list_id'))
            btrim(x.elem ->> 'list_id') AS list_id,
            left(x.elem ->> 'api_slug', crm.text_cap('api_slug')) AS api_slug,
            left(x.elem ->> 'name', crm.text_cap('name')) AS name,
            left(x.elem ->> 'parent_object', crm.text_cap('parent_object')) AS parent_object,
            left(x.elem ->> 'stage_attribute', crm.text_cap('stage_attribute')) AS stage_attribute,
            (x.elem ->> 'crm_created_at')::timestamptz AS crm_created_at
        FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS x (elem, ord)
        ORDER BY btrim(x.elem ->> 'list_id'), x.ord DESC
    ),
    changed AS (
        INSERT INTO crm.crm_list AS l (
            org_id, crm_source, list_id, api_slug, name, parent_object, stage_attribute, crm_created_at
        )
        SELECT p_org_id, p_source, s.list_id, s.api_slug, s.name, s.parent_object, s.stage_attribute, s.crm_created_at
        FROM src AS s
        ON CONFLICT (org_id, crm_source, list_id) DO UPDATE
            SET api_slug = excluded.api_slug, name = excluded.name, parent_object = excluded.parent_object,
                stage_attribute = excluded.stage_attribute,
                crm_created_at = coalesce(excluded.crm_created_at, l.crm_created_at), archived = FALSE,
                updated_at = now()
            WHERE (l.api_slug, l.name, l.parent_object, l.stage_attribute, l.archived)
                IS DISTINCT FROM (excluded.api_slug, excluded.name, excluded.parent_object, excluded.stage_attribute,
                    FALSE)
        RETURNING 1
    )
    SELECT count(*)::integer INTO v_changed FROM changed;
    IF p_complete THEN
        UPDATE crm.crm_list AS l SET archived = TRUE, updated_at = now()
        WHERE l.org_id = p_org_id AND l.crm_source = p_source AND NOT l.archived
            AND NOT EXISTS (
                SELECT 1 FROM jsonb_array_elements(p_rows) AS x (elem)
                WHERE btrim(x.elem ->> 'list_id') = l.list_id
            );
        GET DIAGNOSTICS v_archived = ROW_COUNT;
    END IF;
    RETURN v_changed + v_archived;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
    RAISE EXCEPTION 'invalid lists: %', SQLERRM USING ERRCODE = 'CX001';
END
$$;

-- p_rows: [{"list_id", "entry_id", "parent_object", "parent_record_id", "stage_id", "stage_label",
-- "crm_created_at", "crm_updated_at"}], crm_updated_at being the version of the row (when it was read: Attio
-- entries carry no modified time, and a read at T reflects every change before T). Monotonic: a row older than the
-- stored one changes nothing; a newer one undeletes the entry. The stage label is the list's stage's label in
-- crm.crm_pipeline_stage (object_type 'list:<list id>') when known, else the one given. An entry of a list not
-- known yet (a webhook before the sync) makes a stub list row, filled by the next sync. Returns the entries
-- inserted or changed.
CREATE OR REPLACE FUNCTION crm.list_entries_upsert(p_org_id uuid, p_source text, p_rows jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_changed integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    PERFORM crm.check_list_rows(p_rows, ARRAY['list_id', 'entry_id', 'parent_object', 'parent_record_id']);
    INSERT INTO crm.crm_list (org_id, crm_source, list_id, parent_object)
    SELECT DISTINCT ON (btrim(x.elem ->> 'list_id'))
        p_org_id, p_source, btrim(x.elem ->> 'list_id'), left(x.elem ->> 'parent_object', crm.text_cap('parent_object'))
    FROM jsonb_array_elements(p_rows) AS x (elem)
    ON CONFLICT (org_id, crm_source, list_id) DO NOTHING;
    WITH src AS (
        SELECT DISTINCT ON (btrim(x.elem ->> 'list_id'), btrim(x.elem ->> 'entry_id'))
            btrim(x.elem ->> 'list_id') AS list_id,
            btrim(x.elem ->> 'entry_id') AS entry_id,
            left(x.elem ->> 'parent_object', crm.text_cap('parent_object')) AS parent_object,
            btrim(x.elem ->> 'parent_record_id') AS parent_record_id,
            nullif(left(x.elem ->> 'stage_id', crm.text_cap('stage_id')), '') AS stage_id,
            nullif(left(x.elem ->> 'stage_label', crm.text_cap('stage_label')), '') AS stage_label,
            (x.elem ->> 'crm_created_at')::timestamptz AS crm_created_at,
            (x.elem ->> 'crm_updated_at')::timestamptz AS crm_updated_at
        FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS x (elem, ord)
        ORDER BY btrim(x.elem ->> 'list_id'), btrim(x.elem ->> 'entry_id'),
            (x.elem ->> 'crm_updated_at')::timestamptz DESC NULLS LAST, x.ord DESC
    ),
    labelled AS (
        SELECT
            s.list_id, s.entry_id, s.parent_object, s.parent_record_id, s.stage_id,
            CASE WHEN s.stage_id IS NULL THEN NULL ELSE coalesce(st.stage_label, s.stage_label) END AS stage_label,
            s.crm_created_at, s.crm_updated_at
        FROM src AS s
        LEFT JOIN crm.crm_list AS l
            ON l.org_id = p_org_id AND l.crm_source = p_source AND l.list_id = s.list_id
        LEFT JOIN crm.crm_pipeline_stage AS st
            ON st.org_id = p_org_id AND st.crm_source = p_source AND st.object_type = 'list:' || s.list_id
                AND st.pipeline_id = l.stage_attribute AND st.stage_id = s.stage_id
    ),
    changed AS (
        INSERT INTO crm.list_entry AS e (
            org_id, crm_source, list_id, entry_id, parent_object, parent_record_id, stage_id, stage_label,
            crm_created_at, crm_updated_at
        )
        SELECT p_org_id, p_source, s.list_id, s.entry_id, s.parent_object, s.parent_record_id, s.stage_id,
            s.stage_label, s.crm_created_at, s.crm_updated_at
        FROM labelled AS s
        ON CONFLICT (org_id, crm_source, list_id, entry_id) DO UPDATE
            SET parent_object = excluded.parent_object, parent_record_id = excluded.parent_record_id,
                stage_id = excluded.stage_id, stage_label = excluded.stage_label,
                crm_created_at = coalesce(excluded.crm_created_at, e.crm_created_at),
                crm_updated_at = excluded.crm_updated_at, deleted_at = NULL, updated_at = now()
            WHERE (excluded.crm_updated_at >= e.crm_updated_at OR e.crm_updated_at IS NULL)
                AND (e.parent_object, e.parent_record_id, e.stage_id, e.stage_label, e.deleted_at IS NULL)
                IS DISTINCT FROM (excluded.parent_object, excluded.parent_record_id, excluded.stage_id,
                    excluded.stage_label, TRUE)
        RETURNING 1
    )
    SELECT count(*)::integer INTO v_changed FROM changed;
    RETURN v_changed;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
    RAISE EXCEPTION 'invalid list entries: %', SQLERRM USING ERRCODE = 'CX001';
END
$$;

-- p_rows: [{"list_id", "entry_id", "occurred_at"}]: soft-delete these entries unless read since (an entry read
-- after occurred_at exists). Returns the entries deleted.
CREATE OR REPLACE FUNCTION crm.list_entries_delete(p_org_id uuid, p_source text, p_rows jsonb)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    PERFORM crm.check_list_rows(p_rows, ARRAY['list_id', 'entry_id', 'occurred_at']);
    UPDATE crm.list_entry AS e
    SET deleted_at = x.occurred_at, crm_updated_at = greatest(e.crm_updated_at, x.occurred_at), updated_at = now()
    FROM (
        SELECT btrim(r.elem ->> 'list_id') AS list_id, btrim(r.elem ->> 'entry_id') AS entry_id,
            max((r.elem ->> 'occurred_at')::timestamptz) AS occurred_at
        FROM jsonb_array_elements(p_rows) AS r (elem)
        GROUP BY 1, 2
    ) AS x
    WHERE e.org_id = p_org_id AND e.crm_source = p_source AND e.list_id = x.list_id AND e.entry_id = x.entry_id
        AND e.deleted_at IS NULL AND x.occurred_at >= coalesce(e.crm_updated_at, '-infinity');
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
    RAISE EXCEPTION 'invalid list entries: %', SQLERRM USING ERRCODE = 'CX001';
END
$$;

-- After every entry of p_list_id was listed (the listing began at p_before): the live entries it did not see
-- and not read since are gone from the CRM. Returns how many were soft-deleted.
CREATE OR REPLACE FUNCTION crm.list_entries_sweep(
    p_org_id uuid, p_source text, p_list_id text, p_seen text[], p_before timestamptz
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    IF p_list_id IS NULL OR p_before IS NULL THEN
        RAISE EXCEPTION 'a sweep needs the list and the time its listing began' USING ERRCODE = 'CX001';
    END IF;
    UPDATE crm.list_entry AS e
    SET deleted_at = p_before, crm_updated_at = greatest(e.crm_updated_at, p_before), updated_at = now()
    WHERE e.org_id = p_org_id AND e.crm_source = p_source AND e.list_id = p_list_id AND e.deleted_at IS NULL
        AND NOT e.entry_id = ANY(coalesce(p_seen, '{}'))
        AND coalesce(e.crm_updated_at, '-infinity') < p_before;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- The stage labels of a list's entries (every list of the account when p_list_id is NULL) from the list's stages
-- in crm.crm_pipeline_stage (a status renamed in the CRM): call after the stages were written. Returns the
-- entries relabelled.
CREATE OR REPLACE FUNCTION crm.list_entries_relabel(p_org_id uuid, p_source text, p_list_id text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_n integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    UPDATE crm.list_entry AS e
    SET stage_label = st.stage_label, updated_at = now()
    FROM crm.crm_list AS l, crm.crm_pipeline_stage AS st
    WHERE e.org_id = p_org_id AND e.crm_source = p_source AND (p_list_id IS NULL OR e.list_id = p_list_id)
        AND l.org_id = e.org_id AND l.crm_source = e.crm_source AND l.list_id = e.list_id
        AND st.org_id = e.org_id AND st.crm_source = e.crm_source AND st.object_type = 'list:' || e.list_id
        AND st.pipeline_id = l.stage_attribute AND st.stage_id = e.stage_id
        AND st.stage_label IS NOT NULL AND e.stage_label IS DISTINCT FROM st.stage_label;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;
