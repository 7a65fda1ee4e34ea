-- 0016_drainer: placeholder, replaced by the work of issue 13.
DO $$ BEGIN END $$;
