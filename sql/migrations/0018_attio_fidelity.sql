-- 0018_attio_fidelity: Attio lists in the index (issue 15, item 13). Pipelines are often Attio lists: a list of
-- companies (or people, or deals) whose entries carry a status attribute, the stage. The index keeps every list
-- and every entry (its list, its parent record, its stage), so "companies in the Enterprise pipeline at stage
-- Negotiation" is a join. A list's statuses are rows of crm.crm_pipeline_stage (object_type 'list:<list id>').
--
-- Written by the SQL functions of crm/lists.sql (sync, rescan, list-entry webhooks through hydration); crm_app
-- reads its org's rows (platform/tenancy.sql, platform/grants.sql).

-- One row per list (Attio: GET /v2/lists: id.list_id, api_slug, name, parent_object, created_at).
CREATE TABLE crm.crm_list (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    list_id text NOT NULL CHECK (list_id <> ''),
    api_slug text,
    name text,
    -- what the entries are: an index object type ('contacts', 'companies', 'deals'), or the CRM's own slug of an
    -- object the index does not hold
    parent_object text,
    -- the list's status attribute taken as the stage of its entries (NULL: the list has none)
    stage_attribute text,
    archived boolean NOT NULL DEFAULT FALSE,
    crm_created_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, crm_source, list_id)
);

-- One row per entry (Attio: POST /v2/lists/{list}/entries/query: id.entry_id, parent_record_id, parent_object,
-- created_at, entry_values). A record may be in many lists, and in one list more than once.
CREATE TABLE crm.list_entry (
    org_id uuid NOT NULL,
    crm_source text NOT NULL,
    list_id text NOT NULL,
    entry_id text NOT NULL CHECK (entry_id <> ''),
    parent_object text NOT NULL,
    parent_record_id text NOT NULL CHECK (parent_record_id <> ''),
    stage_id text,
    stage_label text,
    crm_created_at timestamptz,
    -- the version: when the entry was read (Attio entries carry no modified time)
    crm_updated_at timestamptz,
    deleted_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, crm_source, list_id, entry_id),
    FOREIGN KEY (org_id, crm_source, list_id) REFERENCES crm.crm_list (org_id, crm_source, list_id)
    ON DELETE CASCADE
);
CREATE INDEX list_entry_parent_idx ON crm.list_entry (org_id, crm_source, parent_object, parent_record_id);
CREATE INDEX list_entry_stage_idx ON crm.list_entry (org_id, crm_source, list_id, stage_id);

ALTER TABLE crm.crm_list ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.list_entry ENABLE ROW LEVEL SECURITY;
