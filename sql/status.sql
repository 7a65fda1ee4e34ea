-- status.sql: an org's health in one row, and the brief's "All CRM Contacts" view.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- The brief's "247,000 contacts indexed, 3,200 active" and the rest of an org's health, as one row.
-- An API function of crm_app (counts only, of the org it is bound to): SECURITY DEFINER, since the
-- application role cannot read the webhook inbox it counts.
CREATE OR REPLACE FUNCTION crm.org_stats(p_org_id uuid)
RETURNS TABLE (
    contacts_indexed bigint, contacts_materialized bigint, contacts_deleted bigint,
    companies_indexed bigint, companies_materialized bigint, deals_indexed bigint,
    writebacks_pending bigint, writebacks_dead bigint, inbox_pending bigint, inbox_dead bigint,
    last_webhook_at timestamptz, sync_state jsonb
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    RETURN QUERY SELECT
        (SELECT count(*) FROM crm.contact_index AS c WHERE c.org_id = p_org_id AND c.deleted_at IS NULL),
        (SELECT count(*) FROM crm.contact_index AS c WHERE c.org_id = p_org_id AND c.is_materialized
            AND c.deleted_at IS NULL),
        (SELECT count(*) FROM crm.contact_index AS c WHERE c.org_id = p_org_id AND c.deleted_at IS NOT NULL),
        (SELECT count(*) FROM crm.company_index AS c WHERE c.org_id = p_org_id AND c.deleted_at IS NULL),
        (SELECT count(*) FROM crm.company_index AS c WHERE c.org_id = p_org_id AND c.is_materialized
            AND c.deleted_at IS NULL),
        (SELECT count(*) FROM crm.deal_index AS d WHERE d.org_id = p_org_id AND d.deleted_at IS NULL),
        crm.writeback_count(p_org_id, ARRAY['pending', 'processing', 'failed']),
        crm.writeback_count(p_org_id, ARRAY['dead_letter']),
        (SELECT count(*) FROM crm.webhook_inbox AS w WHERE w.org_id = p_org_id
            AND w.status IN ('pending', 'processing', 'failed')),
        (SELECT count(*) FROM crm.webhook_inbox AS w WHERE w.org_id = p_org_id AND w.status = 'dead_letter'),
        (SELECT max(w.received_at) FROM crm.webhook_inbox AS w WHERE w.org_id = p_org_id),
        (
            SELECT coalesce(jsonb_object_agg(s.crm_source || ':' || s.object_type, jsonb_build_object(
                'status', s.status, 'records', s.records, 'pages', s.pages, 'watermark', s.watermark,
                'finished_at', s.finished_at, 'last_error', s.last_error
            )), '{}'::jsonb)
            FROM crm.sync_state AS s WHERE s.org_id = p_org_id
        );
END
$$;
