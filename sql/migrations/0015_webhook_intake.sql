-- 0015_webhook_intake: placeholder, replaced by the work of issue 13.
DO $$ BEGIN END $$;
