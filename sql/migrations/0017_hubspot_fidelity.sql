-- 0017_hubspot_fidelity: what the HubSpot side of issue 15 needs to keep (functions: freshness/metadata.sql,
-- platform/limiter.sql, index/writes.sql).
--
-- 1. The shared rate limiter learns each account's limits from HubSpot's X-HubSpot-RateLimit-* headers instead of
--    only a configured number (developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines):
--    * origin: where permits/per_seconds come from: 'default' (crm.rate_limit_default), 'configured' (an operator's
--      crm.rate_limit_configure: headers never change it) or 'observed' (the account's headers: its tier);
--    * the daily budget the account reports (X-HubSpot-RateLimit-Daily, -Daily-Remaining) and when;
--    * held_until / held_reason: nobody of the account calls this class before then ('DAILY': the daily budget is
--      spent, until the account's midnight), a clear status instead of a stream of 429s.
ALTER TABLE crm.rate_limit
ADD COLUMN origin text NOT NULL DEFAULT 'default' CHECK (origin IN ('default', 'configured', 'observed')),
ADD COLUMN daily_limit integer CHECK (daily_limit >= 0),
ADD COLUMN daily_remaining integer,
ADD COLUMN daily_observed_at timestamptz,
ADD COLUMN held_until timestamptz,
ADD COLUMN held_reason text CHECK (held_reason ~ '^[A-Za-z0-9_]{1,40}$');
-- rows an operator configured before this release keep their numbers
UPDATE crm.rate_limit AS r
SET origin = 'configured'
WHERE NOT EXISTS (
    SELECT 1 FROM (
        VALUES
        ('hubspot', 'general', 100, 10.0), ('hubspot', 'search', 5, 1.0), ('attio', 'read', 100, 1.0),
        ('attio', 'write', 25, 1.0), ('hubspot', 'materialize', 100, 60.0), ('attio', 'materialize', 100, 60.0)
    ) AS d (crm_source, limit_class, permits, per_seconds)
    WHERE
        d.crm_source = r.crm_source AND d.limit_class = r.limit_class AND d.permits = r.permits
        AND d.per_seconds = r.per_seconds
);

-- 2. When each org's CRM vocabulary (owners, pipelines and stages: crm.crm_owner, crm.crm_pipeline_stage) was
--    last fetched and last asked for. HubSpot sends no webhooks for either, so they are refreshed by the sync, on
--    demand, and by a 'metadata' job queued when an index write names an owner or stage the tables do not know
--    (at most one request per account every few minutes: requested_at).
CREATE TABLE crm.crm_metadata_state (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    supported boolean NOT NULL DEFAULT TRUE,
    refreshed_at timestamptz,
    requested_at timestamptz,
    owners integer NOT NULL DEFAULT 0,
    stages integer NOT NULL DEFAULT 0,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, crm_source)
);
ALTER TABLE crm.crm_metadata_state ENABLE ROW LEVEL SECURITY;

-- stage ids are unique within a pipeline; a deal whose pipeline is unknown is labelled by its stage id alone
CREATE INDEX crm_pipeline_stage_stage_idx ON crm.crm_pipeline_stage (org_id, crm_source, object_type, stage_id);
