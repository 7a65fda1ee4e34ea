-- 0020_write_path: placeholder for issue 16 (activities, associations, deals, companies).
DO $$ BEGIN END $$;
