-- 0021_performance: issue 18 (performance).

------------------------------------------------------------------------------------------------------------
-- H18T: storage
-- Bytes per contact of crm.contact_index (issue 18 item 4: <= 600, heap and every index, bench/ingest.py and
-- bench/search.py's storage block at 500K + 9 x 50K contacts). Every index of the table is listed here with the
-- query that needs it; this migration changes the ones that were wider than their queries need. Plain CREATE
-- INDEX (not CONCURRENTLY: a migration runs in a transaction), so an upgrade holds a lock on crm.contact_index
-- while the four rebuilt indexes build (3.8 s for the whole migration at 380K contacts).
-- DROP/CREATE ... IF [NOT] EXISTS: safe to run again.
--
-- Kept as they are (bytes per contact at 950K, bench/results/search.json before this migration):
--   contact_index_pkey (org_id, id), 57.8: every search's rows by id (crm.search_contacts joins its ranked ids
--     back: c.org_id = $1 AND c.id = r.id), the keyset cursor walk of filter-only plans (lifecycle filter,
--     "VPs at fintech": c.org_id = $1 AND c.id > cursor ORDER BY c.id LIMIT n).
--   contact_index_org_id_crm_source_crm_record_id_key (org_id, crm_source, crm_record_id), 84.0: the upserts'
--     ON CONFLICT target (crm.write_index_rows), webhooks, write-back and materialization by CRM id,
--     crm.resolve_contact_refs by record id.
--   contact_index_name_trgm_idx gin (org_id, crm.contact_name_norm(first, last)), 60.6: tier 2 of a name search,
--     "name with typos" (crm.search_contact_plan: contact_name_norm(...) %> / <% word similarity).
--   contact_index_name_soundex_idx (org_id, soundex(last), soundex(first)) WHERE deleted_at IS NULL, 43.8: tier
--     1 of a name search, "name with typos", "Stan from Acme" (both names in either order; one name: last only).
--   contact_index_search_doc_idx gin (crm.contact_search_doc(...)) WHERE deleted_at IS NULL, 37.1: "name",
--     "free text", "Stan from Acme" (words of the name, company and title).
--   contact_index_company_idx (org_id, crm_source, company_crm_id), 20.0: "company + title", "VPs at fintech"
--     (c.company_crm_id = ANY(ids of the matching companies)), the contacts of a company.
--   contact_index_email_domain_idx (org_id, email_domain), 16.8: "email domain" (c.email_domain = ANY(...)).
--   contact_index_seniority_idx (org_id, seniority, department), 9.3: "company + title", "VPs at fintech".
--   contact_index_lifecycle_idx (org_id, lifecycle_stage, lead_status), 9.2: "lifecycle filter".
--   contact_index_department_idx (org_id, department) WHERE deleted_at IS NULL, 7.9: a department without a
--     seniority ("engineers at ...": the seniority index cannot skip its first column).
--   contact_index_active_deal_idx (org_id, id) INCLUDE (deal_value, deal_stage) WHERE has_active_deal AND
--     deleted_at IS NULL, 1.8: "deal filter" (index-only, in id order).
--   contact_index_materialized_idx (org_id, id) WHERE is_materialized AND deleted_at IS NULL, 0.0: the
--     is_materialized filter, crm.org_stats.
------------------------------------------------------------------------------------------------------------

-- "email exact" (crm.search_contact_ids' exact-email path and the email source: c.email = ANY(emails), then the
-- org and deleted_at on the row; crm.resolve_contact_refs by email): equality only, so a hash index on the email alone
-- (a 4-byte hash code per entry, NULL emails not stored) instead of a btree on (org_id, email) holding the org
-- uuid and the whole address: 84.9 -> ~34 bytes per contact. An email is almost always one contact in one org,
-- so the org condition applied to the few rows found costs nothing.
DROP INDEX IF EXISTS crm.contact_index_email_idx;
CREATE INDEX IF NOT EXISTS contact_index_email_idx ON crm.contact_index USING hash (email);

-- "created after/before" (crm.search_record_conditions: c.crm_created_at >= / < a time; tests/test_search_plans.py):
-- a range of creation times, whose rows are then checked for the org. Creation times are distinct per contact,
-- so a btree on (org_id, crm_created_at) deduplicates nothing and, filled in random time order, stays ~70% full:
-- 52.7 bytes per contact. Without the org uuid: ~27.
DROP INDEX IF EXISTS crm.contact_index_created_idx;
CREATE INDEX IF NOT EXISTS contact_index_created_idx ON crm.contact_index (crm_created_at);

-- Filters on fields many contacts do not have (issue 17): every condition the searches put on the owner and the
-- last activity implies a value (= ANY(...), a time range), so their indexes hold only the contacts that have one.
-- Kept whole (tests/test_search_plans.py): contact_index_last_contacted_idx, because "never contacted"
-- (last_contacted_at IS NULL) collects its matches through it; contact_index_country_idx, because the location
-- filter ORs the contact's country with its company's place, and the plan of that OR then no longer takes the
-- partial index. (Both deduplicate their NULLs: 7 bytes per contact where nobody has a value.)
-- owner: crm.search_owner_condition (c.owner_crm_id = ANY(ids)).
DROP INDEX IF EXISTS crm.contact_index_owner_idx;
CREATE INDEX IF NOT EXISTS contact_index_owner_idx ON crm.contact_index (org_id, owner_crm_id)
WHERE owner_crm_id IS NOT NULL;
-- last activity before/after: c.last_activity_at < / >= a time.
DROP INDEX IF EXISTS crm.contact_index_last_activity_idx;
CREATE INDEX IF NOT EXISTS contact_index_last_activity_idx ON crm.contact_index (org_id, last_activity_at)
WHERE last_activity_at IS NOT NULL;

-- The GIN indexes' pending lists (fastupdate): inserts gather in a list merged into the index once it exceeds
-- gin_pending_list_limit (default 4 MB); the list's pages stay in the index file afterwards. 1 MB: ~3 MB less
-- per index (7 bytes per contact each at 380K), insert time unchanged (380K rows: 24.7 s vs 23.2 s). fastupdate = off
-- would save a few bytes more but makes every insert ~3.6x slower (84 s). Pending entries are flushed as before.
ALTER INDEX crm.contact_index_name_trgm_idx SET (gin_pending_list_limit = 1024);
ALTER INDEX crm.contact_index_search_doc_idx SET (gin_pending_list_limit = 1024);

-- H18S: speed
-- "<seniority> at <group> companies" (bench/search.py, issue 18 item 1): the decision-maker levels a copilot asks for,
-- each in id order with the company key beside it, so a filter-only search on one of these levels plus a company-side
-- filter (industry group, industry, size, revenue) reads matches in id order from the index alone (an index-only
-- scan; each entry's company probed by its key for a common group, else tested against a hashed set of the matching
-- companies) and stops after a page, instead of reading heap rows (walking the org's rows by primary key, or every row
-- of the level or of the matching companies): 5-40 ms -> 1-2 ms per page at 150K contacts. Partial: live contacts at
-- these five levels (~34% of contacts in the synthetic data, ~27 bytes per contact). The predicate is
-- crm.search_contact_plan's list of levels (v_senior).
CREATE INDEX IF NOT EXISTS contact_index_senior_idx ON crm.contact_index (org_id, seniority, id)
INCLUDE (crm_source, company_crm_id)
WHERE deleted_at IS NULL AND seniority IN ('c_suite', 'vp', 'head', 'director', 'manager');
