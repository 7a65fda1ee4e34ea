-- 0019_search_quality: placeholder, replaced by the work of the issue.
DO $$ BEGIN END $$;
