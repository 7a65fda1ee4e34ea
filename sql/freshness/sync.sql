-- freshness/sync.sql: checkpoints of initial syncs and reconciles (table crm.sync_state).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- Record that a page was written (call in the transaction that wrote the page's rows).
CREATE OR REPLACE FUNCTION crm.sync_checkpoint(
    p_org_id uuid, p_source text, p_object_type text, p_cursor text, p_records integer,
    p_done boolean DEFAULT FALSE, p_total_estimate bigint DEFAULT NULL
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO crm.sync_state AS s (
        org_id, crm_source, object_type, status, cursor, pages, records, total_estimate, started_at, finished_at
    )
    VALUES (
        p_org_id, p_source, p_object_type, CASE WHEN p_done THEN 'completed' ELSE 'running' END, p_cursor, 1,
        p_records, p_total_estimate, now(), CASE WHEN p_done THEN now() END
    )
    ON CONFLICT (org_id, crm_source, object_type) DO UPDATE
        SET status = CASE WHEN p_done THEN 'completed' ELSE 'running' END,
            cursor = p_cursor,
            pages = s.pages + 1,
            records = s.records + p_records,
            total_estimate = coalesce(p_total_estimate, s.total_estimate),
            started_at = coalesce(s.started_at, now()),
            finished_at = CASE WHEN p_done THEN now() END,
            last_error = NULL,
            updated_at = now();
$$;

-- Start a sync of one org's CRM over from the first page: every step of (p_org_id, p_source) back to
-- 'pending' with no cursor and zeroed counters (the watermark stays: what was complete stays complete).
-- Returns how many steps were reset. Call before the first page of a fresh run.
CREATE OR REPLACE FUNCTION crm.sync_restart(p_org_id uuid, p_source text) RETURNS integer
LANGUAGE sql AS $$
    WITH reset AS (
        UPDATE crm.sync_state AS s
        SET status = 'pending', cursor = NULL, pages = 0, records = 0, started_at = now(), finished_at = NULL,
            last_error = NULL, updated_at = now()
        WHERE s.org_id = p_org_id AND s.crm_source = p_source
        RETURNING 1
    )

    SELECT count(*)::integer FROM reset;
$$;

-- A step stopped at the page after p_cursor: status 'failed' with the error (cut to 2,000 characters; the
-- caller passes no response body). The cursor of the last committed page is kept when the step has one, so
-- the next run resumes there; p_cursor is stored only for a step not seen before.
CREATE OR REPLACE FUNCTION crm.sync_fail(
    p_org_id uuid, p_source text, p_object_type text, p_cursor text, p_error text
) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO crm.sync_state AS s (org_id, crm_source, object_type, status, cursor, last_error)
    VALUES (p_org_id, p_source, p_object_type, 'failed', p_cursor, left(p_error, 2000))
    ON CONFLICT (org_id, crm_source, object_type) DO UPDATE
        SET status = 'failed', last_error = excluded.last_error, updated_at = now();
$$;

-- Everything of (p_org_id, p_source) the CRM changed up to p_at is in the index (a sync finished, or a reconcile
-- repaired up to its start): the watermark that reconcile repairs from. Never moves back (a later watermark
-- set meanwhile stays). Returns how many steps carry it.
CREATE OR REPLACE FUNCTION crm.sync_advance_watermark(p_org_id uuid, p_source text, p_at timestamptz)
RETURNS integer
LANGUAGE sql AS $$
    WITH moved AS (
        UPDATE crm.sync_state AS s
        SET watermark = greatest(s.watermark, p_at), updated_at = now()
        WHERE s.org_id = p_org_id AND s.crm_source = p_source
        RETURNING 1
    )

    SELECT count(*)::integer FROM moved;
$$;

-- The watermark reconcile repairs from: the earliest of the steps of (p_org_id, p_source), NULL before the
-- first finished sync.
CREATE OR REPLACE FUNCTION crm.sync_watermark(p_org_id uuid, p_source text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT min(s.watermark) FROM crm.sync_state AS s WHERE s.org_id = p_org_id AND s.crm_source = p_source;
$$;
