-- index/search_run.sql: running a search plan (crm.search_contact_plan, crm.search_company_plan,
-- crm.search_deal_plan): the candidate tiers and the ranking. Current definitions, re-applied after the migrations
-- whenever this file changes (sql/README.md). Applied after index/search.sql (sql/areas.txt), whose plans it runs.
--
-- A plan's statements are SQL text built per search (EXPLAIN-able, crm.search_contact_plan), planned on every call.
-- A plain name search (text words only, no filter: the copilot's "Jon Smiht") carries the values of its typo tiers
-- (name_score.static) beside their SQL, and runs them as static statements here, planned once per session
-- (crm.run_search_static_source): the soundex key ranges of tiers 1 and 3 (crm.search_soundex_keys), the two words
-- of tier 2 (names with typos) and the company tier's words. Tier 0 (the words' tsquery) stays dynamic: its GIN index
-- has no org, and a generic plan takes any org for a tenth of the table, ANDing the matches with a bitmap of all the
-- org's contacts (15 ms at 500K); planned with the org it costs 0.2 ms. A/B on the bench's 200 names with typos at
-- 500K contacts + 9 x 50K (2 CPUs, load 0.5): p50 / p95 2.52 / 5.65 -> 2.37 / 4.64 ms, the same rows and scores.

-- Run a search plan (crm.search_contact_plan / crm.search_company_plan): (id, score) best first.
CREATE OR REPLACE FUNCTION crm.run_search_plan(p_plan jsonb) RETURNS TABLE (id bigint, score double precision)
LANGUAGE plpgsql STABLE
ROWS 50
SET "pg_trgm.word_similarity_threshold" = '0.3'
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_ids bigint[] := '{}';
    v_more bigint[];
    v_n bigint;
    v_tier integer;
    v_src jsonb;
    v_workers text;
    v_words text[];
    v_sounds text[];
    v_phrase text;
    v_org uuid;
    v_after double precision;
    v_after_id bigint;
    v_limit bigint;
    v_static jsonb := CASE WHEN jsonb_typeof(p_plan #> '{name_score,static}') = 'object' THEN p_plan #> '{name_score,static}' END;
    v_cap integer := crm.search_candidate_cap();
BEGIN
    IF p_plan ->> 'mode' = 'filter' THEN
        IF p_plan ->> 'sample_sql' IS NOT NULL THEN
            EXECUTE p_plan ->> 'sample_sql' INTO v_n;
            IF v_n < 5 THEN
                RETURN QUERY EXECUTE p_plan ->> 'collect_sql';
                RETURN;
            END IF;
        END IF;
        RETURN QUERY EXECUTE p_plan ->> 'sql';
        RETURN;
    END IF;
    -- no parallel workers for a text plan's statements (H24B, issue 18 item 3): each reads a few hundred rows at most
    -- (the candidate cap, the ranked candidates), but the planner has no statistics for the soundex key (its index is
    -- partial: expression statistics of partial indexes are not used) and estimates 0.5% of the table per key. At 500K
    -- contacts beside 2 orgs of 50K it planned tier 1 of every name search as a Gather of 2 workers (beside 9 orgs, a
    -- plain index scan): launching them cost 10-35 ms on a busy 2-CPU machine, against 0.05 ms for the scan itself.
    -- Restored before returning (set_config's local value would otherwise outlive the function).
    v_workers := current_setting('max_parallel_workers_per_gather');
    PERFORM set_config('max_parallel_workers_per_gather', '0', true);
    FOR v_tier IN SELECT DISTINCT (e ->> 'tier')::integer FROM jsonb_array_elements(p_plan -> 'sources') AS e ORDER BY 1 LOOP
        FOR v_src IN SELECT e FROM jsonb_array_elements(p_plan -> 'sources') AS e WHERE (e ->> 'tier')::integer = v_tier LOOP
            IF v_static IS NOT NULL AND (
                v_src ->> 'name' IN ('soundex', 'soundex_initial')
                OR (v_src ->> 'name' = 'trigram' AND v_static ? 'trigram_words')
                OR (v_src ->> 'name' = 'company' AND v_static ? 'company_words')
            ) THEN
                v_more := crm.run_search_static_source(v_src ->> 'name', v_static, v_cap);
            ELSE
                EXECUTE format('SELECT array_agg(s.id) FROM (%s) AS s', v_src ->> 'sql') INTO v_more;
            END IF;
            v_ids := v_ids || coalesce(v_more, '{}');
        END LOOP;
        v_ids := ARRAY(SELECT DISTINCT x FROM unnest(v_ids) AS x);
        EXIT WHEN cardinality(v_ids) > 0;
    END LOOP;
    v_n := jsonb_array_length(p_plan #> '{name_score,words}');
    IF v_n BETWEEN 1 AND 4 THEN
        -- text words only, 1 to 4 (H24C, issue 18 item 3): score_sql's ranking as a static statement, planned once per
        -- session (score_sql is planned on every call: 1.4 ms, more than running it); the same terms added in the same
        -- order (a word past v_n adds 0, which leaves a double precision sum unchanged), so the same scores
        v_words := ARRAY(SELECT jsonb_array_elements_text(p_plan #> '{name_score,words}'));
        v_sounds := ARRAY(SELECT jsonb_array_elements_text(p_plan #> '{name_score,sounds}'));
        v_phrase := p_plan #>> '{name_score,phrase}';
        v_org := p_plan #>> '{name_score,org}';
        v_after := p_plan #>> '{name_score,after_score}';
        v_after_id := p_plan #>> '{name_score,after_id}';
        v_limit := p_plan #>> '{name_score,limit}';
        RETURN QUERY SELECT r.id, r.score FROM (
            SELECT c.id, round((
                -- score_sql's email and domain terms are 0 here (0 + x is x: the same double precision sum)
                (
                    greatest(crm.trgm_word_sim(v_words[1], x.nm), 0.8 * crm.trgm_word_sim(v_words[1], x.cn), 0.7 * crm.trgm_word_sim(v_words[1], x.tn), 0)
                    + CASE WHEN v_sounds[1] IN (x.sf, x.sl) THEN 0.3 ELSE 0 END
                    + CASE WHEN v_n >= 2 THEN greatest(crm.trgm_word_sim(v_words[2], x.nm), 0.8 * crm.trgm_word_sim(v_words[2], x.cn), 0.7 * crm.trgm_word_sim(v_words[2], x.tn), 0) ELSE 0 END
                    + CASE WHEN v_n >= 2 THEN CASE WHEN v_sounds[2] IN (x.sf, x.sl) THEN 0.3 ELSE 0 END ELSE 0 END
                    + CASE WHEN v_n >= 3 THEN greatest(crm.trgm_word_sim(v_words[3], x.nm), 0.8 * crm.trgm_word_sim(v_words[3], x.cn), 0.7 * crm.trgm_word_sim(v_words[3], x.tn), 0) ELSE 0 END
                    + CASE WHEN v_n >= 3 THEN CASE WHEN v_sounds[3] IN (x.sf, x.sl) THEN 0.3 ELSE 0 END ELSE 0 END
                    + CASE WHEN v_n >= 4 THEN greatest(crm.trgm_word_sim(v_words[4], x.nm), 0.8 * crm.trgm_word_sim(v_words[4], x.cn), 0.7 * crm.trgm_word_sim(v_words[4], x.tn), 0) ELSE 0 END
                    + CASE WHEN v_n >= 4 THEN CASE WHEN v_sounds[4] IN (x.sf, x.sl) THEN 0.3 ELSE 0 END ELSE 0 END
                ) / v_n
                + CASE WHEN v_phrase <> '' THEN 0.25 * crm.trgm_sim(v_phrase, x.nm) ELSE 0 END
            )::numeric, 4)::double precision AS score
            FROM unnest(v_ids) AS k (id)
            INNER JOIN crm.contact_index AS c ON c.org_id = v_org AND c.id = k.id
            CROSS JOIN LATERAL (
                SELECT crm.contact_name_norm(c.first_name, c.last_name) AS nm, lower(crm.unaccent_text(c.company_name)) AS cn,
                    lower(crm.unaccent_text(c.job_title)) AS tn, crm.name_soundex(c.first_name) AS sf,
                    crm.name_soundex(c.last_name) AS sl
                OFFSET 0
            ) AS x
        ) AS r
        WHERE v_after IS NULL OR r.score < v_after OR (r.score = v_after AND r.id > v_after_id)
        ORDER BY r.score DESC, r.id
        LIMIT v_limit;
    ELSE
        RETURN QUERY EXECUTE p_plan ->> 'score_sql' USING v_ids;
    END IF;
    PERFORM set_config('max_parallel_workers_per_gather', v_workers, true);
END
$$;

-- One candidate source of a plain name search as a static statement (crm.run_search_plan; the plan's
-- name_score.static: org, t1, t3, trigram_words, phrase, company_words): the ids of the org's live
-- contacts matching it, up to p_cap, like the plan's SQL for the same source (crm.search_plan_sources: a MATERIALIZED
-- CTE read up to the cap). Planned once per session (a generic plan: plan_cache_mode = force_generic_plan) instead of
-- on every search: 0.3-3.7 ms of planning per tier on the bench's names with typos, more than running the tier
-- (issue 18 item 3). The conditions are the plan's (crm.search_contact_plan): tiers 1 and 3, two ranges of
-- contact_index_name_soundex_idx keys (a NULL bound: no range); tier 2 for two words (crm.search_name_word_condition);
-- tier 4, the contacts of the 20 companies whose name is closest to the text (crm.search_company_name_condition's
-- trigram and phonetic tests, here for one or two words of 3 letters or more: the plan builder sends no other). Each
-- index read leads with org_id, or (tier 2) tests the org as a filter, so the generic plans read only the org's rows.
CREATE OR REPLACE FUNCTION crm.run_search_static_source(p_name text, p_static jsonb, p_cap integer) RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET "pg_trgm.word_similarity_threshold" = '0.3'
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_org uuid := p_static ->> 'org';
    v_k integer[];
    v_phrase text;
    v_w1 text;
    v_w2 text;
    v_keys text[];
    v_ids bigint[];
BEGIN
    IF p_name IN ('soundex', 'soundex_initial') THEN
        v_k := ARRAY(
            SELECT jsonb_array_elements_text(p_static -> CASE WHEN p_name = 'soundex' THEN 't1' ELSE 't3' END)
        )::integer[];
        WITH m AS MATERIALIZED (
            SELECT c.id FROM crm.contact_index AS c
            WHERE c.org_id = v_org AND c.deleted_at IS NULL
                AND (
                    crm.name_soundex_key(c.first_name, c.last_name) BETWEEN v_k[1] AND v_k[2]
                    OR crm.name_soundex_key(c.first_name, c.last_name) BETWEEN v_k[3] AND v_k[4]
                )
        )
        SELECT array_agg(s.id) INTO v_ids FROM (SELECT m.id FROM m LIMIT p_cap) AS s;
    ELSIF p_name = 'trigram' THEN
        -- crm.search_name_word_condition for two words: the org's name words closest to each (a scalar subquery per
        -- word, run once), the org tested `IS TRUE` (a filter: see there)
        v_w1 := p_static #>> '{trigram_words,0}';
        v_w2 := p_static #>> '{trigram_words,1}';
        WITH m AS MATERIALIZED (
            SELECT c.id FROM crm.contact_index AS c
            WHERE c.org_id = v_org AND c.deleted_at IS NULL AND c.id = ANY(ARRAY(
                SELECT c.id FROM crm.contact_index AS c
                WHERE (c.org_id = v_org) IS TRUE AND c.deleted_at IS NULL
                    AND crm.contact_search_doc(c.first_name, c.last_name, c.company_name, c.job_title)
                    @@ (SELECT crm.search_name_word_query(v_org, ARRAY[v_w1]))
                    AND crm.contact_search_doc(c.first_name, c.last_name, c.company_name, c.job_title)
                    @@ (SELECT crm.search_name_word_query(v_org, ARRAY[v_w2]))
                    AND crm.trgm_word_sim(v_w1, crm.contact_name_norm(c.first_name, c.last_name)) >= 0.3
                    AND crm.trgm_word_sim(v_w2, crm.contact_name_norm(c.first_name, c.last_name)) >= 0.3
                LIMIT p_cap
            ))
        )
        SELECT array_agg(s.id) INTO v_ids FROM (SELECT m.id FROM m LIMIT p_cap) AS s;
    ELSE
        v_phrase := p_static ->> 'phrase';
        v_w1 := p_static #>> '{company_words,0}';
        v_w2 := coalesce(p_static #>> '{company_words,1}', v_w1);
        -- the phonetic keys of the words, computed here: the company tier runs for few searches
        v_keys := ARRAY(
            SELECT coalesce(crm.word_phonetic_key(w), w) FROM jsonb_array_elements_text(p_static -> 'company_words') AS w
        );
        WITH m AS MATERIALIZED (
            SELECT c.id FROM crm.contact_index AS c
            WHERE c.org_id = v_org AND c.deleted_at IS NULL
                AND (c.crm_source, c.company_crm_id) IN (
                    SELECT co.crm_source, co.crm_record_id FROM crm.company_index AS co
                    WHERE co.org_id = v_org AND co.deleted_at IS NULL
                        AND (
                            (
                                crm.trgm_word_match(v_w1, crm.norm_text(co.name))
                                AND crm.trgm_word_sim(v_w1, crm.norm_text(co.name)) >= 0.5
                                AND crm.trgm_word_match(v_w2, crm.norm_text(co.name))
                                AND crm.trgm_word_sim(v_w2, crm.norm_text(co.name)) >= 0.5
                            )
                            OR crm.name_phonetic_keys(co.name) @> v_keys
                        )
                    ORDER BY crm.trgm_sim(v_phrase, crm.norm_text(co.name)) DESC, co.id + 0
                    LIMIT 20
                )
        )
        SELECT array_agg(s.id) INTO v_ids FROM (SELECT m.id FROM m LIMIT p_cap) AS s;
    END IF;
    RETURN v_ids;
END
$$;
