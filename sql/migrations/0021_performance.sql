-- 0021_performance: placeholder for issue 18 (performance).
DO $$ BEGIN END $$;
