-- index/search_phrases.sql: static statements for the copilot's common phrases (issue 18 item 1), beside the
-- general contact search (crm.search_contact_plan in index/search.sql, which builds SQL text and plans it on every
-- call). Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- "<level> at <group> companies" ("VPs at fintech companies"): the contacts crm.search_contact_plan's v_senior plan
-- returns for p_f (normalized filters: one decision-maker level, industry groups, perhaps a cursor; no text), with the
-- same rows, order and score (0), as two static statements whose plans are kept for the session: building that
-- plan and planning its statement cost ~1 ms of such a phrase. The level's entries of contact_index_senior_idx
-- (migration 0021; its predicate is repeated so that the generic plan can use the partial index) in id order, each
-- company probed by its key when the groups are common (7% of the companies or more,
-- crm.search_company_group_share), else tested against a hashed set of the matching companies. The caller
-- (crm.search_contact_ids, SECURITY DEFINER) checks the org and the filters' shape.
CREATE OR REPLACE FUNCTION crm.search_senior_group_ids(p_org_id uuid, p_f jsonb, p_limit integer)
RETURNS TABLE (id bigint, score double precision)
LANGUAGE plpgsql STABLE
ROWS 50
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_level text := p_f -> 'seniority' ->> 0;
    v_groups text[] := ARRAY(SELECT jsonb_array_elements_text(p_f -> 'industry_group'));
    v_after_id bigint := coalesce(split_part(p_f ->> 'after', ':', 2)::bigint, 0);
BEGIN
    IF coalesce(crm.search_company_group_share(v_groups) >= 0.07, FALSE) THEN
        RETURN QUERY
        SELECT c.id, 0::double precision FROM crm.contact_index AS c
        WHERE
            c.org_id = p_org_id AND c.deleted_at IS NULL
            AND c.seniority IN ('c_suite', 'vp', 'head', 'director', 'manager') AND c.seniority = v_level
            AND EXISTS (
                SELECT 1 FROM crm.company_index AS co
                WHERE
                    co.org_id = c.org_id AND co.crm_source = c.crm_source AND co.crm_record_id = c.company_crm_id
                    AND co.deleted_at IS NULL AND co.industry_groups && v_groups
                OFFSET 0
            )
            AND c.id > v_after_id
        ORDER BY c.id
        LIMIT p_limit;
    ELSE
        RETURN QUERY
        SELECT c.id, 0::double precision FROM crm.contact_index AS c
        WHERE
            c.org_id = p_org_id AND c.deleted_at IS NULL
            AND c.seniority IN ('c_suite', 'vp', 'head', 'director', 'manager') AND c.seniority = v_level
            AND ((c.crm_source, c.company_crm_id) IN (
                SELECT co.crm_source, co.crm_record_id FROM crm.company_index AS co
                WHERE co.org_id = p_org_id AND co.deleted_at IS NULL AND co.industry_groups && v_groups
            )) IS TRUE
            AND c.id > v_after_id
        ORDER BY c.id
        LIMIT p_limit;
    END IF;
END
$$;
