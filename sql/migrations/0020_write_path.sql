-- 0020_write_path (issue 16): the copilot's whole write path.
-- A write-back that dead-letters is logged in crm.activation_log (the org's activity log) as well, for any entity:
-- the log takes deal and activity entries and the reason 'writeback'.
ALTER TABLE crm.activation_log DROP CONSTRAINT activation_log_entity_type_check;
ALTER TABLE crm.activation_log ADD CONSTRAINT activation_log_entity_type_check
CHECK (entity_type IN ('contact', 'company', 'deal', 'activity'));
ALTER TABLE crm.activation_log DROP CONSTRAINT activation_log_reason_check;
ALTER TABLE crm.activation_log ADD CONSTRAINT activation_log_reason_check
CHECK (reason IN ('copilot', 'meeting_booked', 'enrichment', 'ops_table', 'webhook', 'manual', 'bulk', 'writeback'));
