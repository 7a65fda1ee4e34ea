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
