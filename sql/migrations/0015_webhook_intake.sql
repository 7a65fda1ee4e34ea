-- 0015_webhook_intake: replays of a webhook delivery or event are stored once (issue 13, item 5).
--
-- crm.webhook_event_key holds a key per event the receiver accepted (sha256 of the event's content without
-- what a retry changes: HubSpot's attemptNumber; Attio's webhook id and event) and, for Attio, per message
-- (webhook id + Idempotency-Key header). crm.webhook_accept (freshness/webhooks.sql) records the keys of a
-- delivery and stores it in the inbox only when it holds something new (for Attio, whose events carry no time,
-- an event whose earlier delivery was processed already is new again); a pure replay stores nothing. Keys
-- expire after the window the receiver asked for (clamped by webhook_accept); crm.maintenance() deletes them.
--
-- The new arguments of crm.webhook_accept (keys and their lifetimes) cannot be added by CREATE OR REPLACE:
-- the old signature is dropped here and the area file creates the new one.

CREATE TABLE crm.webhook_event_key (
    org_id uuid NOT NULL REFERENCES crm.org (org_id) ON DELETE CASCADE,
    crm_source text NOT NULL CHECK (crm_source IN ('hubspot', 'attio')),
    event_key bytea NOT NULL CHECK (octet_length(event_key) = 32),
    -- the delivery that recorded the key last (no foreign key: completed deliveries are purged)
    inbox_id bigint,
    seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, crm_source, event_key)
) WITH (fillfactor = 90);

CREATE INDEX webhook_event_key_expires_idx ON crm.webhook_event_key (expires_at);

-- Written by crm.webhook_accept (SECURITY DEFINER) and purged by crm.maintenance(). Row-level security on: its
-- policy (webhook_event_key_worker, crm_worker only) and grants are in platform/tenancy.sql and grants.sql.
ALTER TABLE crm.webhook_event_key ENABLE ROW LEVEL SECURITY;

DROP FUNCTION IF EXISTS crm.webhook_accept(uuid, text, text, text, jsonb, integer);
