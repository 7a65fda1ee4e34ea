-- 0017_hubspot_fidelity: placeholder, replaced by the work of the issue.
DO $$ BEGIN END $$;
