-- 0016_crm_metadata: what a CRM knows about its own vocabulary, per org, so the index can show and search labels
-- instead of raw ids: owners (HubSpot owners, Attio workspace members) and pipelines with their stages (HubSpot
-- deal pipelines, Attio status attributes and lists). Plus the index columns the copilot's filters need.
--
-- Both tables are refreshed by the sync, by their own webhooks where the CRM sends them, and on demand; the
-- index rows keep the ids the CRM gives (a stage id, an owner id) and the labels derived from these tables.

CREATE TABLE crm.crm_owner (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    owner_id text NOT NULL CHECK (owner_id <> ''),
    first_name text,
    last_name text,
    email text,
    archived boolean NOT NULL DEFAULT FALSE,
    crm_updated_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, crm_source, owner_id)
);

-- object_type: 'deals' for HubSpot deal pipelines; for Attio, the object or list whose status attribute holds
-- the stages ('deals', or 'list:<list id>'). A stage id is unique within its pipeline.
CREATE TABLE crm.crm_pipeline_stage (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    object_type text NOT NULL,
    pipeline_id text NOT NULL,
    pipeline_label text,
    stage_id text NOT NULL,
    stage_label text,
    display_order integer,
    is_closed boolean,
    is_won boolean,
    archived boolean NOT NULL DEFAULT FALSE,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, crm_source, object_type, pipeline_id, stage_id)
);
CREATE INDEX crm_pipeline_stage_label_idx ON crm.crm_pipeline_stage (org_id, crm_source, lower(stage_label));

ALTER TABLE crm.crm_owner ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.crm_pipeline_stage ENABLE ROW LEVEL SECURITY;

-- The filters a copilot asks for (issue 17): owner, contact country, last contacted / last activity (HubSpot
-- notes_last_contacted, hs_last_sales_activity_timestamp; Attio's interaction attributes); company region; deal
-- stage and pipeline labels beside their ids (derived from crm.crm_pipeline_stage when rows are written).
ALTER TABLE crm.contact_index
ADD COLUMN owner_crm_id text,
ADD COLUMN country text,
ADD COLUMN last_contacted_at timestamptz,
ADD COLUMN last_activity_at timestamptz;
ALTER TABLE crm.company_index
ADD COLUMN owner_crm_id text,
ADD COLUMN region text;
ALTER TABLE crm.deal_index
ADD COLUMN stage_label text,
ADD COLUMN pipeline_label text;
