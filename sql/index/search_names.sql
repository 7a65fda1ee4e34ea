-- index/search_names.sql: the vocabulary of contact names behind tier 2 of a contact name search ("name with
-- typos", crm.search_contact_plan in index/search.sql; issue 18 item 3).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).
--
-- crm.contact_name_word (migration 0021 H19A) holds the distinct words of each org's contact names, kept by statement
-- triggers on crm.contact_index. Tier 2 matches the typed words against these words (a few thousand rows per org, its
-- own trigram index) and reads the contacts having the closest ones from contact_index_search_doc_idx.

-- Tier 2 of a contact name search ("name with typos", issue 18 item 3) reads the org's vocabulary of name words,
-- crm.contact_name_word (migration 0021 H19A), instead of a trigram scan of every contact's name.
-- The words of a contact's name (first and last), split as crm.contact_search_doc splits them: its rows. Also in
-- migration 0021 (the trigger and the backfill there need it).
CREATE OR REPLACE FUNCTION crm.contact_name_words(p_first text, p_last text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_remove(regexp_split_to_array(crm.contact_name_norm(p_first, p_last), '[^[:alnum:]]+'), '');

-- Statement trigger of crm.contact_index (insert, update; migration 0021): the names' words into
-- crm.contact_name_word, one set-based insert per statement. Insert-only: a word nobody has any more stays.
CREATE OR REPLACE FUNCTION crm.contact_name_word_add() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO crm.contact_name_word (org_id, word)
    SELECT DISTINCT n.org_id, w.word
    FROM new_rows AS n
    CROSS JOIN LATERAL unnest(crm.contact_name_words(n.first_name, n.last_name)) AS w (word)
    -- One order for every writer: two statements adding the same new words in different orders would each wait
    -- on a key the other inserted and not yet committed (a deadlock).
    ORDER BY n.org_id, w.word
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- Edit distance of two words (fuzzystrmatch, bound by OID like the pg_trgm wrappers).
CREATE OR REPLACE FUNCTION crm.word_edit_distance(p_a text, p_b text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN levenshtein(p_a, p_b);

-- For each of p_words, the org's name words like it (word similarity >= pg_trgm.word_similarity_threshold, 0.3 in
-- the search helpers; on contact_name_word_trgm_idx), the 8 closest (fewest edits, then trigram similarity, then
-- the word), as a tsquery on crm.contact_search_doc: (closest to word 1) & (closest to word 2) ...; NULL when a
-- word is like none. Closest 8 only: a short typed word is like hundreds of names ("macro": every "ma..." name), the
-- contacts of all of them were an arbitrary 300 of tens of thousands, and a GIN AND of two OR-groups of ~100 common
-- names costs 300-800 ms at 500K contacts (16: ~2x the scan time of 8 for common first names). Hit rates (H19A, 400
-- per typo kind): 8 loses none on the synthetic data; with 100K more surnames in the vocabulary 8 lost 1-2 of 400
-- "drop-last" typos, 16 none.
-- plpgsql: its statement keeps its plan for the session. PARALLEL UNSAFE: the statement reading it is never planned
-- parallel (its row estimate is a default). No plain index scans: for a small vocabulary the planner otherwise walks
-- the org's whole primary key range testing every word (2,400 similarities, 11 ms) instead of the trigram index
-- (0.5 ms; the trigram operator's cost is not known to it).
CREATE OR REPLACE FUNCTION crm.search_name_word_query(p_org_id uuid, p_words text[]) RETURNS tsquery
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET enable_indexscan = off
SET enable_indexonlyscan = off
AS $$
BEGIN
    RETURN (
        SELECT CASE WHEN bool_and(t.q IS NOT NULL) THEN string_agg('(' || t.q || ')', ' & ')::tsquery END
        FROM unnest(p_words) AS w (word)
        CROSS JOIN LATERAL (
            SELECT string_agg(quote_literal(k.word), ' | ') AS q
            FROM (
                SELECT v.word FROM crm.contact_name_word AS v
                WHERE v.org_id = p_org_id AND crm.trgm_doc_has_word(v.word, w.word)
                ORDER BY crm.word_edit_distance(w.word, v.word), crm.trgm_sim(w.word, v.word) DESC, v.word
                LIMIT 8
            ) AS k
        ) AS t
    );
END
$$;

-- Tier 2 of a contact name search, an SQL condition on crm.contact_index AS c: c is one of the contacts whose search
-- document p_doc has, for every word of p_words, one of the name words closest to it (crm.search_name_word_query,
-- a scalar subquery per word: run once when the statement runs, i.e. only when the earlier tiers found nobody, never
-- while planning; one `@@` per word: GIN ANDs the two scan keys skipping through the larger OR-group's lists, 3-4x
-- faster than one tsquery (a & b) at 500K), and whose name p_name is like every word (word similarity >= 0.3, as a
-- plain comparison), up to the candidate cap (the source's own cap; common names match thousands). The ids are
-- gathered first with the org test written `IS TRUE`: as an index condition the org made the planner BitmapAnd the
-- few document matches with all the org's 500K entries of an org-leading index (80-180 ms).
CREATE OR REPLACE FUNCTION crm.search_name_word_condition(
    p_org_id uuid, p_words text[], p_doc text, p_name text
) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- plpgsql: its statement's plan is kept for the session (as an SQL function it was parsed and planned again on
    -- every name search; H20A)
    RETURN (
        SELECT format(
            'c.id = ANY(ARRAY(SELECT c.id FROM crm.contact_index AS c WHERE (c.org_id = %L) IS TRUE'
            ' AND c.deleted_at IS NULL AND %s AND %s LIMIT %s))',
            p_org_id,
            string_agg(format('%s @@ (SELECT crm.search_name_word_query(%L, ARRAY[%L]))', p_doc, p_org_id, w), ' AND '),
            string_agg(format('crm.trgm_word_sim(%L, %s) >= 0.3', w, p_name), ' AND '),
            crm.search_candidate_cap()
        )
        FROM unnest(p_words) AS w
    );
END
$$;
