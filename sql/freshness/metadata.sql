-- freshness/metadata.sql: each org's CRM vocabulary (owners; pipelines and their stages) and keeping it fresh.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).
--
-- The index keeps the ids a CRM gives (a deal's stage "12345678", an owner "80000001"); crm.crm_owner and
-- crm.crm_pipeline_stage (0016) hold their labels, and deal_index.stage_label / pipeline_label are derived from them
-- at write time (crm.deal_stage_labels, index/writes.sql). HubSpot sends no webhooks for pipelines or owners, so
-- the vocabulary is refreshed (crmindex/freshness/metadata.py):
--   * by the sync, before its pages (deals are written with their labels);
--   * on demand (CrmIndex.refresh_metadata);
--   * by a 'metadata' job (crm.job) queued when an index write names an owner or stage the tables do not know
--     (crm.metadata_note_rows / crm.metadata_note_ids), at most once per account every METADATA_REQUEST_EVERY.
--
--   SELECT * FROM crm.crm_metadata_put('<org>', 'hubspot', '<owners json>', '<stages json>');  -- a fetched set
--   SELECT crm.metadata_request('<org>', 'hubspot', TRUE);                                    -- ask for one now

-- How often an account may be asked for its vocabulary because of ids it does not know (a stage deleted in the
-- CRM stays unknown: it must not cost a refresh per write).
CREATE OR REPLACE FUNCTION crm.metadata_request_every() RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '10 minutes';

-- Store a complete fetch of an account's vocabulary and relabel what it changed. p_owners: [{owner_id,
-- first_name, last_name, email, archived, crm_updated_at}], every owner the CRM lists (active and archived);
-- p_stages: [{object_type, pipeline_id, pipeline_label, stage_id, stage_label, display_order, is_closed, is_won}],
-- every live stage of every live pipeline of p_object_types. A NULL list leaves that part as it is. Owners and
-- stages the fetch no longer lists are kept, archived (old deals still carry their ids). Deals whose labels changed
-- are relabelled, and their contacts' deal summaries recomputed (contact_index.deal_stage carries the label).
-- Returns what changed.
CREATE OR REPLACE FUNCTION crm.crm_metadata_put(
    p_org_id uuid, p_source text, p_owners jsonb, p_stages jsonb, p_object_types text[] DEFAULT ARRAY['deals']
) RETURNS TABLE (owners_changed integer, stages_changed integer, deals_relabelled integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_owners integer := 0;
    v_stages integer := 0;
    v_deals text[] := '{}';
    v_contacts text[];
    v_n integer;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_source(p_source);
    IF p_owners IS NOT NULL AND jsonb_typeof(p_owners) <> 'array'
        OR p_stages IS NOT NULL AND jsonb_typeof(p_stages) <> 'array' THEN
        RAISE EXCEPTION 'owners and stages must be JSON arrays' USING ERRCODE = 'CX002';
    END IF;
    IF p_owners IS NOT NULL THEN
        WITH incoming AS (
            SELECT DISTINCT ON (btrim(o.owner_id))
                btrim(o.owner_id) AS owner_id,
                left(o.first_name, crm.text_cap('first_name')) AS first_name,
                left(o.last_name, crm.text_cap('last_name')) AS last_name,
                left(o.email, crm.text_cap('email')) AS email,
                coalesce(o.archived, FALSE) AS archived,
                o.crm_updated_at
            FROM jsonb_to_recordset(p_owners) AS o (
                owner_id text, first_name text, last_name text, email text, archived boolean,
                crm_updated_at timestamptz
            )
            WHERE nullif(btrim(o.owner_id), '') IS NOT NULL
            ORDER BY btrim(o.owner_id), coalesce(o.archived, FALSE)
        ),
        upserted AS (
            INSERT INTO crm.crm_owner AS t (
                org_id, crm_source, owner_id, first_name, last_name, email, archived, crm_updated_at
            )
            SELECT p_org_id, p_source, i.owner_id, i.first_name, i.last_name, i.email, i.archived, i.crm_updated_at
            FROM incoming AS i
            ON CONFLICT (org_id, crm_source, owner_id) DO UPDATE
                SET first_name = excluded.first_name, last_name = excluded.last_name, email = excluded.email,
                    archived = excluded.archived, crm_updated_at = excluded.crm_updated_at, updated_at = now()
                WHERE (t.first_name, t.last_name, t.email, t.archived)
                    IS DISTINCT FROM (excluded.first_name, excluded.last_name, excluded.email, excluded.archived)
            RETURNING 1
        ),
        gone AS (
            UPDATE crm.crm_owner AS t SET archived = TRUE, updated_at = now()
            WHERE t.org_id = p_org_id AND t.crm_source = p_source AND NOT t.archived
                AND NOT EXISTS (SELECT 1 FROM incoming AS i WHERE i.owner_id = t.owner_id)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM gone) INTO v_owners;
    END IF;
    IF p_stages IS NOT NULL THEN
        WITH incoming AS (
            SELECT DISTINCT ON (s.object_type, btrim(s.pipeline_id), btrim(s.stage_id))
                s.object_type, btrim(s.pipeline_id) AS pipeline_id,
                left(s.pipeline_label, crm.text_cap('pipeline_label')) AS pipeline_label,
                btrim(s.stage_id) AS stage_id, left(s.stage_label, crm.text_cap('stage_label')) AS stage_label,
                s.display_order, s.is_closed, s.is_won
            FROM jsonb_to_recordset(p_stages) AS s (
                object_type text, pipeline_id text, pipeline_label text, stage_id text, stage_label text,
                display_order integer, is_closed boolean, is_won boolean
            )
            WHERE s.object_type = any(p_object_types) AND nullif(btrim(s.pipeline_id), '') IS NOT NULL
                AND nullif(btrim(s.stage_id), '') IS NOT NULL
            ORDER BY s.object_type, btrim(s.pipeline_id), btrim(s.stage_id)
        ),
        upserted AS (
            INSERT INTO crm.crm_pipeline_stage AS t (
                org_id, crm_source, object_type, pipeline_id, pipeline_label, stage_id, stage_label, display_order,
                is_closed, is_won, archived
            )
            SELECT p_org_id, p_source, i.object_type, i.pipeline_id, i.pipeline_label, i.stage_id, i.stage_label,
                i.display_order, i.is_closed, i.is_won, FALSE
            FROM incoming AS i
            ON CONFLICT (org_id, crm_source, object_type, pipeline_id, stage_id) DO UPDATE
                SET pipeline_label = excluded.pipeline_label, stage_label = excluded.stage_label,
                    display_order = excluded.display_order, is_closed = excluded.is_closed,
                    is_won = excluded.is_won, archived = FALSE, updated_at = now()
                WHERE (t.pipeline_label, t.stage_label, t.display_order, t.is_closed, t.is_won, t.archived)
                    IS DISTINCT FROM (
                        excluded.pipeline_label, excluded.stage_label, excluded.display_order, excluded.is_closed,
                        excluded.is_won, FALSE
                    )
            RETURNING 1
        ),
        gone AS (
            UPDATE crm.crm_pipeline_stage AS t SET archived = TRUE, updated_at = now()
            WHERE t.org_id = p_org_id AND t.crm_source = p_source AND t.object_type = any(p_object_types)
                AND NOT t.archived
                AND NOT EXISTS (
                    SELECT 1 FROM incoming AS i
                    WHERE i.object_type = t.object_type AND i.pipeline_id = t.pipeline_id AND i.stage_id = t.stage_id
                )
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM gone) INTO v_stages;
        IF v_stages > 0 THEN
            -- relabel: the derive trigger (index/writes.sql) recomputes the labels on update
            WITH relabelled AS (
                UPDATE crm.deal_index AS d
                SET stage_label = l.stage_label
                FROM crm.deal_index AS x
                CROSS JOIN LATERAL crm.deal_stage_labels(x.org_id, x.crm_source, x.pipeline, x.stage) AS l
                WHERE x.org_id = p_org_id AND x.crm_source = p_source AND d.org_id = x.org_id AND d.id = x.id
                    AND (x.stage_label, x.pipeline_label, x.is_active)
                    IS DISTINCT FROM (
                        l.stage_label, l.pipeline_label,
                        x.deleted_at IS NULL AND NOT coalesce(
                            x.is_closed, l.is_closed, lower(x.stage) IN ('closedwon', 'closedlost'), FALSE
                        )
                    )
                RETURNING d.crm_record_id
            )
            SELECT coalesce(array_agg(r.crm_record_id), '{}') INTO v_deals FROM relabelled AS r;
            IF cardinality(v_deals) > 0 THEN
                SELECT coalesce(array_agg(DISTINCT dc.contact_crm_id), '{}') INTO v_contacts
                FROM crm.deal_contact AS dc
                WHERE dc.org_id = p_org_id AND dc.crm_source = p_source AND dc.deal_crm_id = any(v_deals)
                    AND NOT dc.removed;
                v_n := crm.refresh_contact_deals(p_org_id, p_source, v_contacts);
            END IF;
        END IF;
    END IF;
    INSERT INTO crm.crm_metadata_state AS m (org_id, crm_source, supported, refreshed_at, owners, stages, last_error)
    VALUES (
        p_org_id, p_source, TRUE, now(),
        (SELECT count(*) FROM crm.crm_owner AS o WHERE o.org_id = p_org_id AND o.crm_source = p_source),
        (SELECT count(*) FROM crm.crm_pipeline_stage AS s WHERE s.org_id = p_org_id AND s.crm_source = p_source),
        NULL
    )
    ON CONFLICT (org_id, crm_source) DO UPDATE
        SET supported = TRUE, refreshed_at = now(), owners = excluded.owners, stages = excluded.stages,
            last_error = NULL, updated_at = now();
    RETURN QUERY SELECT v_owners, v_stages, cardinality(v_deals);
END
$$;

-- A refresh that could not be made: p_error (status, category, code and correlation id of the CRM's answer, never
-- a body) or, with p_supported FALSE, a CRM whose vocabulary crmindex does not fetch (no further requests).
CREATE OR REPLACE FUNCTION crm.crm_metadata_failed(
    p_org_id uuid, p_source text, p_error text, p_supported boolean DEFAULT TRUE
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    INSERT INTO crm.crm_metadata_state AS m (org_id, crm_source, supported, last_error)
    VALUES (p_org_id, p_source, coalesce(p_supported, TRUE), left(p_error, 1000))
    ON CONFLICT (org_id, crm_source) DO UPDATE
        SET supported = excluded.supported, last_error = excluded.last_error, updated_at = now();
END
$$;

-- Ask for a refresh of the account's vocabulary: a 'metadata' job (one open per account), unless the CRM's
-- vocabulary is not fetched, the org has no active connection to it, or (p_force FALSE) one was asked for within
-- crm.metadata_request_every(). Returns whether a job was queued. Index writes call it inside their transactions:
-- it never waits for a row another transaction holds (a concurrent request wins; SKIP LOCKED), so it cannot
-- deadlock a sync page against a hydration.
CREATE OR REPLACE FUNCTION crm.metadata_request(p_org_id uuid, p_source text, p_force boolean DEFAULT FALSE)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_state crm.crm_metadata_state;
    v_force boolean := coalesce(p_force, FALSE);
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF NOT EXISTS (
        SELECT 1 FROM crm.connection AS c
        WHERE c.org_id = p_org_id AND c.crm_source = p_source AND c.status = 'active'
    ) THEN
        RETURN FALSE;
    END IF;
    SELECT m.* INTO v_state FROM crm.crm_metadata_state AS m WHERE m.org_id = p_org_id AND m.crm_source = p_source;
    IF FOUND THEN
        IF NOT v_force AND (NOT v_state.supported OR v_state.requested_at > now() - crm.metadata_request_every()) THEN
            RETURN FALSE;
        END IF;
        UPDATE crm.crm_metadata_state AS m SET requested_at = now(), updated_at = now()
        WHERE m.org_id = p_org_id AND m.crm_source = p_source
            AND m.ctid = (
                SELECT x.ctid FROM crm.crm_metadata_state AS x
                WHERE x.org_id = p_org_id AND x.crm_source = p_source
                FOR UPDATE SKIP LOCKED
            )
            AND (v_force OR m.requested_at IS NULL OR m.requested_at <= now() - crm.metadata_request_every());
    ELSE
        INSERT INTO crm.crm_metadata_state (org_id, crm_source, requested_at)
        VALUES (p_org_id, p_source, now())
        ON CONFLICT (org_id, crm_source) DO NOTHING;
    END IF;
    IF NOT FOUND THEN
        RETURN FALSE;  -- another transaction is asking (or just asked) for it
    END IF;
    PERFORM crm.enqueue_jobs(
        p_org_id, 'metadata', p_source, jsonb_build_array(jsonb_build_object('dedupe_key', 'metadata'))
    );
    RETURN TRUE;
END
$$;

-- Ids an index write named: owners (p_owner_ids) and deal stages (p_stages: [{pipeline, stage}]) that the org's
-- vocabulary does not know ask for a refresh (crm.metadata_request, rate limited). Returns whether one was asked.
CREATE OR REPLACE FUNCTION crm.metadata_note_ids(
    p_org_id uuid, p_source text, p_owner_ids text[], p_stages jsonb DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM unnest(p_owner_ids) AS o (id)
        WHERE nullif(btrim(o.id), '') IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM crm.crm_owner AS w
            WHERE w.org_id = p_org_id AND w.crm_source = p_source AND w.owner_id = btrim(o.id)
        )
    ) OR EXISTS (
        SELECT 1 FROM jsonb_to_recordset(coalesce(p_stages, '[]')) AS s (pipeline text, stage text)
        WHERE nullif(btrim(s.stage), '') IS NOT NULL
            AND (crm.deal_stage_labels(p_org_id, p_source, s.pipeline, btrim(s.stage))).stage_label IS NULL
    ) THEN
        RETURN crm.metadata_request(p_org_id, p_source);
    END IF;
    RETURN FALSE;
END
$$;

-- The same for the rows of an index upsert (index/writes.sql calls it): their owner_crm_id values and, for deals,
-- the deals p_deal_ids that were written without a stage label.
CREATE OR REPLACE FUNCTION crm.metadata_note_rows(
    p_org_id uuid, p_source text, p_rows jsonb, p_deal_ids text[] DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_owners text[];
BEGIN
    SELECT array_agg(DISTINCT e.elem ->> 'owner_crm_id') INTO v_owners
    FROM jsonb_array_elements(p_rows) AS e (elem)
    WHERE jsonb_typeof(e.elem -> 'owner_crm_id') IN ('string', 'number');
    IF cardinality(v_owners) > 0 AND crm.metadata_note_ids(p_org_id, p_source, v_owners) THEN
        RETURN TRUE;
    END IF;
    IF cardinality(p_deal_ids) > 0 AND EXISTS (
        SELECT 1 FROM crm.deal_index AS d
        WHERE d.org_id = p_org_id AND d.crm_source = p_source AND d.crm_record_id = any(p_deal_ids)
            AND d.stage IS NOT NULL AND d.stage_label IS NULL
    ) THEN
        RETURN crm.metadata_request(p_org_id, p_source);
    END IF;
    RETURN FALSE;
END
$$;
