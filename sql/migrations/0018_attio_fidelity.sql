-- 0018_attio_fidelity: placeholder, replaced by the work of the issue.
DO $$ BEGIN END $$;
