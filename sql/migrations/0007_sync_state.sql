-- 0007_sync_state: checkpoints of initial syncs and reconciles, per org, CRM source and object type.
--
-- A sync commits each page's rows and its cursor in the same transaction (crm.sync_checkpoint), so a
-- crash or Ctrl-C resumes from the last committed page: no gap, no duplicate. `watermark` is the CRM
-- time up to which the index is known complete (the sync's start time once it finishes, then advanced
-- by webhooks and reconciles); reconcile repairs the window after it.

CREATE TABLE crm.sync_state (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    object_type text NOT NULL CHECK (object_type IN (
        'contacts', 'companies', 'deals', 'archived_contacts',
        'archived_companies', 'archived_deals', 'associations'
    )),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    cursor text,
    pages integer NOT NULL DEFAULT 0,
    records bigint NOT NULL DEFAULT 0,
    total_estimate bigint,
    started_at timestamptz,
    finished_at timestamptz,
    watermark timestamptz,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, crm_source, object_type)
);

ALTER TABLE crm.sync_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY sync_state_app ON crm.sync_state TO crm_app
USING (org_id = crm.current_org_id()) WITH CHECK (org_id = crm.current_org_id());
CREATE POLICY sync_state_worker ON crm.sync_state TO crm_worker USING (TRUE) WITH CHECK (TRUE);
GRANT SELECT, INSERT, UPDATE, DELETE ON crm.sync_state TO crm_app, crm_worker;

-- Record that a page was written (call in the transaction that wrote the page's rows).
CREATE FUNCTION crm.sync_checkpoint(
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

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA crm TO crm_app, crm_worker;
