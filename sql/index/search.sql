-- index/search.sql: copilot search over the tier-1 index.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).
--
--   crm.search_contacts(p_org_id uuid, p_query text, p_filters jsonb DEFAULT '{}', p_limit int DEFAULT 50)
--   crm.search_companies(p_org_id uuid, p_query text, p_filters jsonb DEFAULT '{}', p_limit int DEFAULT 50)
--     (and crm.search_deals: in index/search_records.sql)
--   crm.interpret_query(p_org_id uuid, p_query text) -> jsonb   "VPs at fintech companies" -> filters + text
--   crm.search(p_org_id uuid, p_query text, p_limit int DEFAULT 50, p_after text DEFAULT NULL) -> jsonb
--   crm.resolve_contact(p_org_id uuid, p_text text, p_limit int DEFAULT 5)   "Stan from Acme" -> candidates
--   crm.normalize_search_filters(p_kind text, p_filters jsonb) -> jsonb      validation (CX002) + normal form
--
-- search_contacts / search_companies take p_query literally as free text (names, companies, titles, emails,
-- domains) and p_filters as structured filters; they never guess. crm.search is the copilot's entry point:
-- it runs crm.interpret_query on the phrase and searches with the filters and text it found, returning the
-- interpretation beside the results.
--
-- Results: the index row's columns, the company's industry and industry_groups, a score (higher is better)
-- and a cursor. Order is (score DESC, id ASC), deterministic. A query with no usable text ranks every match
-- equally (score 0; a text of only domains, "stripe.com": score 1) and returns them by id. Keyset
-- pagination: pass the last row's cursor as p_filters->>'after' (same query, same filters) to get the next
-- page; pages never overlap and together give the whole result.
--
-- How a text query runs (all index lookups; see crm.search_contact_plan, bench/search.py and
-- tests/test_search_plans.py):
--   * candidates come from sources in tiers, each an index scan bounded by crm.search_candidate_cap() rows;
--     tier 0 (exact): emails (btree), domains (email_domain btree, company domain btree -> company_crm_id
--     btree), every word as a whole word of name / company / title, the last also as a prefix (tsvector
--     GIN); tier 1: names by soundex (btree); tier 2: names with typos (per-token word_similarity `<%` at
--     a threshold of 0.3 set for the call: the org's name words closest to each typed word, from the vocabulary's
--     trigram GIN, then their contacts from the tsvector GIN; index/search_names.sql); tier 3: the last name by
--     soundex and the first name by its first letter (btree range); tier 4: the contacts of companies
--     whose name matches the text (company trigram / double-metaphone GINs). The search stops after the
--     first tier that found someone: typo tolerance costs nothing when the words match exactly;
--   * every candidate is scored by the same expression (per word: best of its word similarity to the name,
--     company and title, +0.3 when it sounds like the first or last name; plus whole-name similarity,
--     exact email / domain bonuses);
--   * words shorter than 2 characters never drive an index scan (no extractable trigrams), and the query
--     is cut to 512 characters / 8 words, so any input runs in bounded time;
--   * company-side filters: company and company_domain are resolved against crm.company_index first
--     (company: whole words, else trigram, else phonetic) and applied as company_crm_id lookups (up to 100
--     companies) or a semi-join; industry and industry_group are a semi-join;
--   * filter-only searches read matches in id order: by walking the primary key when matches are dense
--     (at least 0.25% of a 2,000-contact sample), else by collecting them with bitmap index scans.
--     One decision-maker level (c_suite, vp, head, director, manager) with company-side filters only ("VPs at fintech
--     companies") reads contact_index_senior_idx in id order, index only: each company probed by its key when the
--     group is common, else tested against a hashed set of the matching companies; no density sample;
--   * a text of exact emails alone, with no filter (a cursor at most), skips the plan: crm.search_contacts (and
--     crm.search_contact_ids) read them with one static statement (a generic plan kept for the session) giving the
--     rows and scores the plan would;
--   * a plain name search (text words only, no filter) runs its typo tiers (1 to 4) and its ranking as static
--     statements too, from the values its plan carries (name_score; index/search_run.sql), the same rows and scores.
--
-- Security: row-level security hides non-LEAKPROOF operators (trigram `<%`, `@@`, `&&`) from index scans
-- (they may only run after the policy's filter), which would turn every text search into a scan of the org.
-- So the candidate generation runs in SECURITY DEFINER helpers (crm.search_contact_ids,
-- crm.search_company_ids) that return ids and scores only, for the org the session is bound to. The public
-- functions (crm.search_contacts, crm.search_companies, crm.search, crm.interpret_query, crm.resolve_contact)
-- are the application role's API (sql/platform/grants.sql): SECURITY DEFINER too, with the search path
-- pinned, so crm_app needs no privilege on any helper; each calls crm.assert_org first (an application
-- session may only name the org it is bound to, and an unbound one none) and names the org in every query.
-- Text longer than crm.input_cap('query') (65,536 characters) is refused (CX002); the search reads the first
-- 512 characters anyway.
--
-- The helpers run with enable_seqscan = off: every search has an index path, and a probe with LIMIT
-- (EXISTS, a capped candidate source) otherwise tempts the planner into a sequential scan that "will
-- find a row soon" and reads the whole org when the match is rare.

------------------------------------------------------------------------------------------------------------
-- Expressions the search indexes are built on (SQL-standard bodies: bound by OID at creation, so they
-- resolve the same in any session and inside index expressions)
------------------------------------------------------------------------------------------------------------

-- Words of name, company and title (accent-folded, lower-case, split at anything but letters and
-- digits, the way crm.search_query_parts splits a query), for whole-word and prefix matching. Built with
-- array_to_tsvector: no text-search parser, no stemming, no stop words ("Will", "Don" stay names).
CREATE OR REPLACE FUNCTION crm.contact_search_doc(p_first text, p_last text, p_company text, p_title text)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_to_tsvector(array_remove(
    regexp_split_to_array(
        coalesce(crm.norm_text(concat_ws(' ', p_first, p_last, p_company, p_title)), ''), '[^[:alnum:]]+'
    ),
    ''
));

-- Soundex of a name (accent-folded); NULL when it has no letters.
CREATE OR REPLACE FUNCTION crm.name_soundex(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(soundex(crm.unaccent_text(p)), '');

-- A soundex code ([A-Z][0-9]{3}, crm.name_soundex) as an integer, losslessly: the letter's place (1..26) x 1000 + the
-- three digits, 1000..26999; 0 for NULL (a name without letters); NULL for any other text (soundex gives none in a
-- UTF-8 database: its first character is an ASCII letter, the rest digits).
CREATE OR REPLACE FUNCTION crm.soundex_int(p_code text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN p_code IS NULL THEN 0
    WHEN p_code ~ '^[A-Z][0-9]{3}$' THEN (ascii(p_code) - 64) * 1000 + substr(p_code, 2)::integer
END;

-- The key of contact_index_name_soundex_idx (tier 1 of a name search): the last name's and the first name's soundex
-- in one int4, last x 27000 + first (crm.soundex_int; at most 728,999,999). One 4-byte key instead of two 5-byte
-- texts: 8 bytes less per index entry (migration 0021 also defines it, for the index it builds). The codes of the
-- last name are one range of keys (crm.search_soundex_condition).
CREATE OR REPLACE FUNCTION crm.name_soundex_key(p_first text, p_last text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN crm.soundex_int(crm.name_soundex(p_last)) * 27000 + crm.soundex_int(crm.name_soundex(p_first));

-- The keys of contact_index_name_soundex_idx that tiers 1 and 3 of a name search read, as two ranges {lo1, hi1, lo2,
-- hi2} (NULL bounds: no range). Tier 1 (p_initial false): one word, the last name's code (its 27,000 keys); two or
-- three words, the first and the last word as first and last name, in either order (two keys). Tier 3 (p_initial
-- true, H18Y): the last word's code as the last name and the first word's first letter as the first name's (one
-- range of 1,000 keys). A word without a soundex code matches nothing (NULL bounds); NULL for other word counts.
-- The conditions below and crm.run_search_static_source (index/search_run.sql) read the same keys.
CREATE OR REPLACE FUNCTION crm.search_soundex_keys(p_words text[], p_initial boolean) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_code text;
    v_f integer;
    v_l integer;
BEGIN
    -- codes in variables: crm.soundex_int of a variable is inlined into the plans kept for the session; of a call it
    -- ran as an SQL function, planned on every search like this function's old SQL body (H20A)
    v_code := crm.name_soundex(p_words[1]);
    v_f := nullif(crm.soundex_int(v_code), 0);
    v_code := crm.name_soundex(p_words[cardinality(p_words)]);
    v_l := nullif(crm.soundex_int(v_code), 0);
    IF p_initial THEN
        RETURN ARRAY[v_l * 27000 + v_f / 1000 * 1000, v_l * 27000 + v_f / 1000 * 1000 + 999, NULL, NULL];
    ELSIF cardinality(p_words) = 1 THEN
        RETURN ARRAY[v_f * 27000, v_f * 27000 + 26999, NULL, NULL];
    ELSIF cardinality(p_words) BETWEEN 2 AND 3 THEN
        RETURN ARRAY[v_l * 27000 + v_f, v_l * 27000 + v_f, v_f * 27000 + v_l, v_f * 27000 + v_l];
    END IF;
    RETURN NULL;
END
$$;

-- Tier 1 of a name search (crm.search_contact_plan), on contact_index_name_soundex_idx: contacts whose names sound
-- like the query's alphabetic words (crm.search_soundex_keys); NULL (no tier 1) for other word counts than 1 to 3.
CREATE OR REPLACE FUNCTION crm.search_soundex_condition(p_words text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_k integer[] := crm.search_soundex_keys(p_words, false);
BEGIN
    RETURN CASE
        WHEN cardinality(p_words) = 1
            THEN format('crm.name_soundex_key(c.first_name, c.last_name) BETWEEN %L AND %L', v_k[1], v_k[2])
        WHEN cardinality(p_words) BETWEEN 2 AND 3
            THEN format('crm.name_soundex_key(c.first_name, c.last_name) IN (%L, %L)', v_k[1], v_k[3])
    END;
END
$$;

-- Tier 3 of a name search (H18Y, issue 18 item 3): when nobody sounds like both names (tier 1) and no name is
-- trigram-close to every word (tier 2: both words misspelt), contacts whose last name sounds like the last word and
-- whose first name starts with the first word's letter, before the company tier. That order only (in the reverse
-- order an intact first name read as a last name finds other people). On contact_index_name_soundex_idx: one range
-- of keys (crm.search_soundex_keys).
CREATE OR REPLACE FUNCTION crm.search_soundex_initial_condition(p_words text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_k integer[] := crm.search_soundex_keys(p_words, true);
BEGIN
    RETURN format('crm.name_soundex_key(c.first_name, c.last_name) BETWEEN %1$L AND %1$L::integer + 999', v_k[1]);
END
$$;

-- Double-metaphone codes of the words of a (company) name, sorted and distinct.
CREATE OR REPLACE FUNCTION crm.name_phonetic_keys(p text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(array_agg(DISTINCT k.code ORDER BY k.code), '{}')
    FROM (
        SELECT dmetaphone(w.word) AS code
        FROM regexp_split_to_table(coalesce(crm.norm_text(p), ''), '[^[:alnum:]]+') AS w (word)
        WHERE length(w.word) > 1
    ) AS k
    WHERE k.code <> '';
END;

-- Words of a company name, for whole-word and prefix matching (as crm.contact_search_doc).
CREATE OR REPLACE FUNCTION crm.company_search_doc(p_name text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_to_tsvector(array_remove(regexp_split_to_array(coalesce(crm.norm_text(p_name), ''), '[^[:alnum:]]+'), ''));

-- Double-metaphone code of one word.
CREATE OR REPLACE FUNCTION crm.word_phonetic_key(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(dmetaphone(coalesce(p, '')), '');

-- pg_trgm through OID-bound wrappers, so the SECURITY DEFINER helpers can run with
-- search_path = pg_catalog. trgm_word_match is inlined into its operator (index-usable); it reads
-- pg_trgm.word_similarity_threshold, which the helpers set for their own duration.
CREATE OR REPLACE FUNCTION crm.trgm_word_match(p_word text, p_doc text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN p_word <% p_doc;

-- The same test written the way the trigram indexes hold it (doc %> word, the commutator of word <% doc): a condition
-- in this form is the index condition itself, so a bitmap scan rechecks it once per candidate instead of rechecking
-- the index's form and then evaluating the word <% doc form again (two name normalizations and similarities fewer
-- per candidate row; issue 18, names with typos).
CREATE OR REPLACE FUNCTION crm.trgm_doc_has_word(p_doc text, p_word text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN p_doc %> p_word;

CREATE OR REPLACE FUNCTION crm.trgm_word_sim(p_word text, p_doc text) RETURNS real
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN word_similarity(p_word, p_doc);

CREATE OR REPLACE FUNCTION crm.trgm_sim(p_a text, p_b text) RETURNS real
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN similarity(p_a, p_b);

------------------------------------------------------------------------------------------------------------
-- Settings
------------------------------------------------------------------------------------------------------------

-- Rows each candidate source may contribute to one text search (bounds the cost of broad words).
CREATE OR REPLACE FUNCTION crm.search_candidate_cap() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 300;

-- How a CRM owner is shown: "First Last", else the email. Written with || (immutable), not concat_ws (stable): an
-- immutable SQL function whose body is not immutable is never inlined, and a SQL function that is not inlined is
-- planned again in every statement that calls it (0.04-0.13 ms per search call, issue 18 item 2). The same text:
-- both names trimmed and non-empty joined by a space, else the one there is, else the email.
CREATE OR REPLACE FUNCTION crm.owner_name(p_first text, p_last text, p_email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(
    nullif(btrim(p_first), '') || ' ' || nullif(btrim(p_last), ''), nullif(btrim(p_first), ''),
    nullif(btrim(p_last), ''), p_email
);

-- (The seniorities and departments a filter may name, crm.search_seniorities() and crm.search_departments(),
-- are defined with the classifiers that derive them: index/derive.sql.)

------------------------------------------------------------------------------------------------------------
-- Filters: validation and normal form
------------------------------------------------------------------------------------------------------------

-- The filters a search of p_kind ('contacts', 'companies', 'deals') takes and the type of each: the one list
-- (crmindex/index/search.py checks its models against it). Types: strings (as stored), lower (trimmed, lower
-- case: names, labels, ids), seniority, department, industry, industry_group, domain, email, location, bool,
-- count (an integer, 0 to 1e9), money (0 to 1e15), timestamp (ISO date or time; "since"/"after" bounds include,
-- "before" bounds exclude), date (ISO date, same), cursor.
CREATE OR REPLACE FUNCTION crm.search_filter_types(p_kind text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE p_kind
    WHEN 'contacts' THEN '{
        "seniority": "seniority", "department": "department", "lifecycle_stage": "strings",
        "lead_status": "strings", "deal_stage": "lower", "has_active_deal": "bool", "deal_value_min": "money",
        "deal_value_max": "money", "industry": "industry", "industry_group": "industry_group", "company": "strings",
        "company_domain": "domain", "email_domain": "domain", "domain": "domain", "email": "email",
        "location": "location", "employees_min": "count", "employees_max": "count", "revenue_min": "money",
        "revenue_max": "money", "owner": "lower", "last_contacted_after": "timestamp",
        "last_contacted_before": "timestamp", "never_contacted": "bool", "last_activity_after": "timestamp",
        "last_activity_before": "timestamp", "created_after": "timestamp", "created_before": "timestamp",
        "list": "lower", "list_stage": "lower", "is_materialized": "bool", "updated_since": "timestamp",
        "after": "cursor"
    }'::jsonb
    WHEN 'companies' THEN '{
        "industry": "industry", "industry_group": "industry_group", "company": "strings", "company_domain": "domain",
        "domain": "domain", "country": "strings", "location": "location", "employees_min": "count",
        "employees_max": "count", "revenue_min": "money", "revenue_max": "money", "owner": "lower",
        "has_active_deal": "bool", "created_after": "timestamp", "created_before": "timestamp", "list": "lower",
        "list_stage": "lower", "is_materialized": "bool", "updated_since": "timestamp", "after": "cursor"
    }'::jsonb
    WHEN 'deals' THEN '{
        "stage": "lower", "pipeline": "lower", "is_open": "bool", "won": "bool", "amount_min": "money",
        "amount_max": "money", "close_after": "date", "close_before": "date", "owner": "lower", "company": "strings",
        "company_domain": "domain", "industry": "industry", "industry_group": "industry_group", "location": "location",
        "employees_min": "count", "employees_max": "count", "revenue_min": "money", "revenue_max": "money",
        "created_after": "timestamp", "created_before": "timestamp", "list": "lower", "list_stage": "lower",
        "updated_since": "timestamp", "after": "cursor"
    }'::jsonb
END;

-- One filter value as a text array: a string or an array of 1..100 strings (each trimmed, non-empty,
-- at most 200 characters). Raises CX002 naming the key.
CREATE OR REPLACE FUNCTION crm.search_filter_strings(p_key text, p_value jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_out text[];
BEGIN
    IF jsonb_typeof(p_value) = 'string' THEN
        v_out := ARRAY[btrim(p_value #>> '{}')];
    ELSIF jsonb_typeof(p_value) = 'array' THEN
        IF jsonb_array_length(p_value) = 0 OR jsonb_array_length(p_value) > 100 THEN
            RAISE EXCEPTION 'filter % must have 1 to 100 values', p_key USING ERRCODE = 'CX002';
        END IF;
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(p_value) AS e (v) WHERE jsonb_typeof(e.v) <> 'string') THEN
            RAISE EXCEPTION 'filter % must be a string or an array of strings', p_key USING ERRCODE = 'CX002';
        END IF;
        SELECT array_agg(DISTINCT btrim(e.v)) INTO v_out FROM jsonb_array_elements_text(p_value) AS e (v);
    ELSE
        RAISE EXCEPTION 'filter % must be a string or an array of strings, not %', p_key, jsonb_typeof(p_value)
            USING ERRCODE = 'CX002';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(v_out) AS x (v) WHERE x.v = '' OR length(x.v) > 200) THEN
        RAISE EXCEPTION 'filter % has an empty or overlong value', p_key USING ERRCODE = 'CX002';
    END IF;
    RETURN v_out;
END
$$;

-- Validate p_filters for p_kind 'contacts', 'companies' or 'deals' (crm.search_filter_types) and return its normal
-- form: list filters as sorted arrays of normalized strings, booleans, numbers, timestamps as ISO timestamps, dates
-- as ISO dates, after as a cursor. A JSON null value means "no filter". Raises CX002 with a message naming the bad
-- key (an unknown key, a bad value, a minimum above its maximum).
CREATE OR REPLACE FUNCTION crm.normalize_search_filters(p_kind text, p_filters jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_types jsonb := crm.search_filter_types(p_kind);
    v_type text;
    v_out jsonb := '{}';
    v_key text;
    v_known text[];
    v_val jsonb;
    v_arr text[];
    v_bad text;
    v_ts timestamptz;
    v_date date;
    v_lo text;
    v_hi text;
BEGIN
    IF v_types IS NULL THEN
        RAISE EXCEPTION 'unknown search kind %', quote_nullable(left(p_kind, 40)) USING ERRCODE = 'CX002',
            HINT = 'contacts, companies or deals';
    END IF;
    IF p_filters IS NULL OR jsonb_typeof(p_filters) = 'null' THEN
        RETURN v_out;
    END IF;
    IF jsonb_typeof(p_filters) <> 'object' THEN
        RAISE EXCEPTION 'filters must be a JSON object, not %', jsonb_typeof(p_filters) USING ERRCODE = 'CX002';
    END IF;
    PERFORM crm.check_json_size('filters', p_filters, 'payload');
    FOR v_key, v_val IN SELECT e.key, e.value FROM jsonb_each(p_filters) AS e ORDER BY e.key LOOP
        v_type := v_types ->> v_key;
        IF v_type IS NULL THEN
            RAISE EXCEPTION 'unknown filter key %', quote_literal(left(v_key, 100)) USING ERRCODE = 'CX002',
                HINT = 'allowed keys: ' || (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(v_types) AS k);
        END IF;
        CONTINUE WHEN jsonb_typeof(v_val) = 'null';
        CASE v_type
            WHEN 'bool' THEN
                IF jsonb_typeof(v_val) <> 'boolean' THEN
                    RAISE EXCEPTION 'filter % must be true or false', v_key USING ERRCODE = 'CX002';
                END IF;
                v_out := v_out || jsonb_build_object(v_key, v_val);
            WHEN 'money' THEN
                IF jsonb_typeof(v_val) <> 'number' OR (v_val #>> '{}')::numeric < 0
                    OR (v_val #>> '{}')::numeric > 1e15 THEN
                    RAISE EXCEPTION 'filter % must be a number between 0 and 1e15', v_key USING ERRCODE = 'CX002';
                END IF;
                v_out := v_out || jsonb_build_object(v_key, v_val);
            WHEN 'count' THEN
                IF jsonb_typeof(v_val) <> 'number' OR (v_val #>> '{}')::numeric < 0
                    OR (v_val #>> '{}')::numeric > 1e9 OR (v_val #>> '{}')::numeric % 1 <> 0 THEN
                    RAISE EXCEPTION 'filter % must be a whole number between 0 and 1e9', v_key USING ERRCODE = 'CX002';
                END IF;
                v_out := v_out || jsonb_build_object(v_key, (v_val #>> '{}')::bigint);
            WHEN 'timestamp', 'date' THEN
                IF jsonb_typeof(v_val) <> 'string' OR (v_val #>> '{}') !~ '^\s*\d{4}-\d{2}-\d{2}([ tT][0-9:.+-]+(z|Z)?)?\s*$' THEN
                    RAISE EXCEPTION 'filter % must be an ISO date% string', v_key,
                        CASE v_type WHEN 'timestamp' THEN ' or timestamp' ELSE '' END USING ERRCODE = 'CX002';
                END IF;
                BEGIN
                    IF v_type = 'date' THEN
                        v_date := left(btrim(v_val #>> '{}'), 10)::date;
                        v_out := v_out || jsonb_build_object(v_key, v_date);
                    ELSE
                        v_ts := (v_val #>> '{}')::timestamptz;
                        v_out := v_out || jsonb_build_object(v_key, v_ts);
                    END IF;
                EXCEPTION WHEN data_exception THEN
                    RAISE EXCEPTION 'filter % is not a valid date: %', v_key, left(v_val #>> '{}', 40)
                        USING ERRCODE = 'CX002';
                END;
            WHEN 'cursor' THEN
                IF jsonb_typeof(v_val) <> 'string' OR (v_val #>> '{}') !~ '^-?[0-9]{1,6}(\.[0-9]{1,8})?:[0-9]{1,18}$' THEN
                    RAISE EXCEPTION 'filter after must be a cursor returned by a previous page' USING ERRCODE = 'CX002';
                END IF;
                v_out := v_out || jsonb_build_object(v_key, v_val);
            ELSE
                v_arr := crm.search_filter_strings(v_key, v_val);
                IF v_type IN ('seniority', 'department') THEN
                    v_known := CASE v_type WHEN 'seniority' THEN crm.search_seniorities() ELSE crm.search_departments() END;
                    v_arr := ARRAY(SELECT DISTINCT lower(x) FROM unnest(v_arr) AS x ORDER BY 1);
                    SELECT x INTO v_bad FROM unnest(v_arr) AS x WHERE NOT x = ANY(v_known) LIMIT 1;
                    IF FOUND THEN
                        RAISE EXCEPTION 'filter % has unknown value %', v_key, quote_literal(v_bad)
                            USING ERRCODE = 'CX002', HINT = 'one of ' || array_to_string(v_known, ', ');
                    END IF;
                ELSIF v_type = 'industry' THEN
                    v_arr := ARRAY(
                        SELECT DISTINCT upper(regexp_replace(btrim(x), '[^[:alnum:]]+', '_', 'g')) FROM unnest(v_arr) AS x
                        ORDER BY 1
                    );
                    SELECT x INTO v_bad FROM unnest(v_arr) AS x
                    WHERE NOT EXISTS (SELECT 1 FROM crm.hubspot_industry AS h WHERE h.value = x) LIMIT 1;
                    IF FOUND THEN
                        RAISE EXCEPTION 'filter industry has unknown value % (use a HubSpot industry, e.g. BANKING)',
                            quote_literal(v_bad) USING ERRCODE = 'CX002';
                    END IF;
                ELSIF v_type = 'industry_group' THEN
                    v_arr := ARRAY(
                        SELECT DISTINCT coalesce(g.group_name, crm.industry_term_group(x))
                        FROM unnest(v_arr) AS x
                        LEFT JOIN crm.industry_group AS g ON g.group_name = lower(btrim(x))
                        ORDER BY 1
                    );
                    IF array_position(v_arr, NULL) IS NOT NULL THEN
                        SELECT x INTO v_bad FROM unnest(crm.search_filter_strings(v_key, v_val)) AS x
                        WHERE crm.industry_term_group(x) IS NULL
                            AND NOT EXISTS (SELECT 1 FROM crm.industry_group AS g WHERE g.group_name = lower(btrim(x)))
                        LIMIT 1;
                        RAISE EXCEPTION 'filter industry_group has unknown value %', quote_literal(v_bad)
                            USING ERRCODE = 'CX002',
                            HINT = 'one of ' || (SELECT string_agg(g.group_name, ', ' ORDER BY g.group_name) FROM crm.industry_group AS g);
                    END IF;
                ELSIF v_type = 'domain' THEN
                    v_arr := ARRAY(SELECT DISTINCT crm.norm_domain(ltrim(btrim(x), '@')) FROM unnest(v_arr) AS x ORDER BY 1);
                    SELECT x INTO v_bad FROM unnest(v_arr) AS x
                    WHERE x IS NULL OR x !~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$' LIMIT 1;
                    IF FOUND THEN
                        RAISE EXCEPTION 'filter % has a value that is not a domain', v_key USING ERRCODE = 'CX002',
                            HINT = 'e.g. stripe.com';
                    END IF;
                ELSIF v_type = 'email' THEN
                    v_arr := ARRAY(SELECT DISTINCT lower(btrim(x)) FROM unnest(v_arr) AS x ORDER BY 1);
                    IF EXISTS (SELECT 1 FROM unnest(v_arr) AS x WHERE NOT crm.is_email(x)) THEN
                        RAISE EXCEPTION 'filter email has a value that is not an email address' USING ERRCODE = 'CX002';
                    END IF;
                ELSIF v_type = 'location' THEN
                    v_arr := ARRAY(SELECT DISTINCT y FROM unnest(v_arr) AS x CROSS JOIN unnest(crm.location_values(x)) AS y ORDER BY 1);
                    IF array_position(v_arr, NULL) IS NOT NULL OR array_position(v_arr, '') IS NOT NULL THEN
                        RAISE EXCEPTION 'filter location has a value that is not a place' USING ERRCODE = 'CX002';
                    END IF;
                ELSIF v_type = 'lower' THEN
                    v_arr := ARRAY(SELECT DISTINCT lower(crm.norm_text(x)) FROM unnest(v_arr) AS x ORDER BY 1);
                ELSE
                    -- lifecycle_stage, lead_status, company, country: as stored
                    v_arr := ARRAY(SELECT DISTINCT x FROM unnest(v_arr) AS x ORDER BY 1);
                END IF;
                v_out := v_out || jsonb_build_object(v_key, to_jsonb(v_arr));
        END CASE;
    END LOOP;
    FOREACH v_key IN ARRAY ARRAY['deal_value', 'employees', 'revenue', 'amount'] LOOP
        IF (v_out ->> (v_key || '_min'))::numeric > (v_out ->> (v_key || '_max'))::numeric THEN
            RAISE EXCEPTION 'filter %_min is greater than %_max', v_key, v_key USING ERRCODE = 'CX002';
        END IF;
    END LOOP;
    FOREACH v_key IN ARRAY ARRAY['last_contacted', 'last_activity', 'created', 'close'] LOOP
        v_lo := v_out ->> (v_key || '_after');
        v_hi := v_out ->> (v_key || '_before');
        IF v_lo IS NOT NULL AND v_hi IS NOT NULL AND v_lo::timestamptz > v_hi::timestamptz THEN
            RAISE EXCEPTION 'filter %_after is later than %_before', v_key, v_key USING ERRCODE = 'CX002';
        END IF;
    END LOOP;
    RETURN v_out;
END
$$;

------------------------------------------------------------------------------------------------------------
-- Query text: tokens
------------------------------------------------------------------------------------------------------------

-- The parts of a free-text query: exact emails, domains ("stripe.com", "@stripe.com") and words
-- (accent-folded, lower-case, letters and digits only, at most 8 of at most 40 characters).
-- phrase is the words joined by spaces. Never raises for any input.
CREATE OR REPLACE FUNCTION crm.search_query_parts(
    p_query text, OUT emails text[], OUT domains text[], OUT words text[], OUT phrase text
)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_q text := lower(left(coalesce(p_query, ''), 512));
BEGIN
    -- the email and domain patterns only when the text has an '@' / a '.' (a backend keeps 32 compiled regexes; the
    -- search and the interpreter use more, so a pattern run on every call is compiled again on every call)
    emails := '{}';
    IF strpos(v_q, '@') > 0 THEN
        emails := ARRAY(
            SELECT DISTINCT m[1]
            FROM regexp_matches(v_q, '([^[:space:]@<>(),;:"\[\]]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,})', 'g') AS m
            ORDER BY 1 LIMIT 4
        );
        v_q := regexp_replace(v_q, '[^[:space:]@<>(),;:"\[\]]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}', ' ', 'g');
    END IF;
    v_q := coalesce(crm.norm_text(v_q), '');
    domains := '{}';
    IF strpos(v_q, '.') > 0 THEN
        domains := ARRAY(
            SELECT DISTINCT m[2]
            FROM regexp_matches(v_q, '(^|[[:space:]])@?([a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*\.[a-z]{2,24})(?=[[:space:]]|$)', 'g') AS m
            ORDER BY 1 LIMIT 4
        );
        v_q := regexp_replace(v_q, '(^|[[:space:]])@?[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*\.[a-z]{2,24}(?=[[:space:]]|$)', ' ', 'g');
    END IF;
    words := ARRAY(
        SELECT left(t.w, 40)
        FROM regexp_split_to_table(v_q, '[^[:alnum:]]+') WITH ORDINALITY AS t (w, ord)
        WHERE t.w <> ''
        ORDER BY t.ord LIMIT 8
    );
    phrase := array_to_string(words, ' ');
END
$$;

------------------------------------------------------------------------------------------------------------
-- Company resolution (shared by both searches)
------------------------------------------------------------------------------------------------------------

-- SQL condition on crm.company_index AS co: the name matches one of p_names. Every word of a name must
-- match a word of the company name: p_mode 'words' as a whole word (the last one also as a prefix),
-- 'trigram' by trigram word similarity >= 0.5, 'phonetic' by the same double-metaphone code (for typos
-- trigrams miss, "stirpe" -> Stripe).
CREATE OR REPLACE FUNCTION crm.search_company_name_condition(p_names text[], p_mode text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_alt text[] := '{}';
    v_name text;
    v_words text[];
BEGIN
    FOREACH v_name IN ARRAY p_names LOOP
        v_words := ARRAY(SELECT w FROM unnest((crm.search_query_parts(v_name)).words) AS w WHERE length(w) >= 2);
        CONTINUE WHEN cardinality(v_words) = 0;
        IF p_mode = 'words' THEN
            v_alt := v_alt || format(
                'crm.company_search_doc(co.name) @@ %L::tsquery',
                (
                    SELECT string_agg(
                        quote_literal(t.w) || CASE WHEN t.ord = cardinality(v_words) AND length(t.w) >= 3 THEN ':*' ELSE '' END,
                        ' & ' ORDER BY t.ord
                    )
                    FROM unnest(v_words) WITH ORDINALITY AS t (w, ord)
                )
            );
        ELSIF p_mode = 'phonetic' THEN
            v_alt := v_alt || format(
                'crm.name_phonetic_keys(co.name) @> %L::text[]',
                ARRAY(SELECT coalesce(crm.word_phonetic_key(w), w) FROM unnest(v_words) AS w)
            );
        ELSE
            v_alt := v_alt || (
                SELECT '(' || string_agg(
                    CASE WHEN length(w) >= 3 THEN format(
                        'crm.trgm_word_match(%1$L, crm.norm_text(co.name)) AND crm.trgm_word_sim(%1$L, crm.norm_text(co.name)) >= 0.5',
                        w
                    ) ELSE format('crm.norm_text(co.name) ~ %L', '\m' || w || '\M') END,
                    ' AND '
                ) || ')'
                FROM unnest(v_words) AS w
            );
        END IF;
    END LOOP;
    IF cardinality(v_alt) = 0 THEN
        RETURN 'FALSE';
    END IF;
    RETURN '(' || array_to_string(v_alt, ' OR ') || ')';
END
$$;

-- SQL condition on crm.company_index AS co for the filters of p_f (normalized) that describe a company: company
-- name, domain, industry, industry group, size (employees) and revenue; NULL when there is none. A company filter
-- matches by whole words, else trigram, else phonetically (the first way that matches a company of the org).
CREATE OR REPLACE FUNCTION crm.search_company_condition(p_org_id uuid, p_f jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_parts text[] := '{}';
    v_cond text;
    v_any boolean;
    v_mode text;
BEGIN
    IF p_f ? 'company' THEN
        FOREACH v_mode IN ARRAY ARRAY['words', 'trigram', 'phonetic'] LOOP
            v_cond := crm.search_company_name_condition(ARRAY(SELECT jsonb_array_elements_text(p_f -> 'company')), v_mode);
            -- a MATERIALIZED CTE is planned for all its rows (no LIMIT 1 index-walk gamble), read lazily
            EXECUTE format(
                'WITH m AS MATERIALIZED (SELECT co.id FROM crm.company_index AS co'
                ' WHERE co.org_id = %L AND co.deleted_at IS NULL AND %s) SELECT EXISTS (SELECT 1 FROM m)',
                p_org_id, v_cond
            ) INTO v_any;
            EXIT WHEN v_any;
        END LOOP;
        v_parts := v_parts || v_cond;
    END IF;
    IF p_f ? 'company_domain' THEN
        v_parts := v_parts || format('co.domain = ANY(%L::text[])', ARRAY(SELECT jsonb_array_elements_text(p_f -> 'company_domain')));
    END IF;
    IF p_f ? 'industry' THEN
        v_parts := v_parts || format('co.industry = ANY(%L::text[])', ARRAY(SELECT jsonb_array_elements_text(p_f -> 'industry')));
    END IF;
    IF p_f ? 'industry_group' THEN
        v_parts := v_parts || format('co.industry_groups && %L::text[]', ARRAY(SELECT jsonb_array_elements_text(p_f -> 'industry_group')));
    END IF;
    IF p_f ? 'employees_min' THEN
        v_parts := v_parts || format('co.employee_count >= %s', (p_f ->> 'employees_min')::bigint);
    END IF;
    IF p_f ? 'employees_max' THEN
        v_parts := v_parts || format('co.employee_count <= %s', (p_f ->> 'employees_max')::bigint);
    END IF;
    IF p_f ? 'revenue_min' THEN
        v_parts := v_parts || format('co.annual_revenue >= %L::numeric', p_f ->> 'revenue_min');
    END IF;
    IF p_f ? 'revenue_max' THEN
        v_parts := v_parts || format('co.annual_revenue <= %L::numeric', p_f ->> 'revenue_max');
    END IF;
    IF cardinality(v_parts) = 0 THEN
        RETURN NULL;
    END IF;
    RETURN array_to_string(v_parts, ' AND ');
END
$$;

-- SQL condition: the place of p_alias is one of the location filter's values (normal form: country codes and place
-- names). For a company (co): its country, or its city or region by name (a US state also by the code CRMs store:
-- "california" -> CA). For a contact (c) or a deal (d): its own country (contacts) or its company's place,
-- through p_company (crm.search_contact_company_condition: an id list or a semi-join).
CREATE OR REPLACE FUNCTION crm.search_location_condition(p_org_id uuid, p_alias text, p_values text[]) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_codes text[] := ARRAY(SELECT v FROM unnest(p_values) AS v WHERE v ~ '^[A-Z]{2}$');
    v_names text[] := ARRAY(SELECT v FROM unnest(p_values) AS v WHERE v !~ '^[A-Z]{2}$');
    v_regions text[];
    v_co text[] := '{}';
    v_cond text;
    v_keys text[];
BEGIN
    v_regions := v_names || ARRAY(
        SELECT crm.place_subdivisions() ->> n FROM unnest(v_names) AS n WHERE crm.place_subdivisions() ? n
    );
    -- countries by the spellings crm.country_code knows for them (the indexed form: contact_index_country_idx)
    v_keys := ARRAY(SELECT e.key FROM jsonb_each_text(crm.place_country_names()) AS e WHERE e.value = ANY(v_codes));
    IF cardinality(v_codes) > 0 THEN
        v_co := v_co || format(
            'crm.norm_text(replace(replace(co.country, %L, %L), %L, %L)) = ANY(%L::text[])', '.', '', '&', ' and ', v_keys
        );
    END IF;
    IF cardinality(v_names) > 0 THEN
        v_co := v_co || format('crm.norm_text(co.city) = ANY(%L::text[])', v_names)
            || format('lower(btrim(co.region)) = ANY(%L::text[])', v_regions);
    END IF;
    IF cardinality(v_co) = 0 THEN
        RETURN 'FALSE';
    END IF;
    v_cond := '(' || array_to_string(v_co, ' OR ') || ')';
    IF p_alias = 'co' THEN
        RETURN v_cond;
    END IF;
    v_cond := crm.search_related_company_condition(p_org_id, p_alias, v_cond);
    IF p_alias = 'c' AND cardinality(v_codes) > 0 THEN
        RETURN format(
            '(crm.norm_text(replace(replace(c.country, %L, %L), %L, %L)) = ANY(%L::text[]) OR %s)',
            '.', '', '&', ' and ', v_keys, v_cond
        );
    END IF;
    RETURN v_cond;
END
$$;

-- Condition on p_alias (c: crm.contact_index, d: crm.deal_index): its company is one of the companies matching
-- p_company_cond (a condition on crm.company_index AS co). Up to 100 companies become literal id lists (exact
-- estimates for the planner, company_crm_id index lookups); more become a semi-join.
CREATE OR REPLACE FUNCTION crm.search_related_company_condition(p_org_id uuid, p_alias text, p_company_cond text)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_n integer;
    v_part text;
BEGIN
    EXECUTE format(
        'WITH m AS MATERIALIZED (SELECT 1 FROM crm.company_index AS co WHERE co.org_id = %L AND co.deleted_at IS NULL AND %s)'
        ' SELECT count(*) FROM (SELECT 1 FROM m LIMIT 101) AS x',
        p_org_id, p_company_cond
    ) INTO v_n;
    IF v_n = 0 THEN
        RETURN 'FALSE';
    END IF;
    IF v_n > 100 THEN
        RETURN format(
            'EXISTS (SELECT 1 FROM crm.company_index AS co WHERE co.org_id = %1$s.org_id AND co.crm_source = %1$s.crm_source'
            ' AND co.crm_record_id = %1$s.company_crm_id AND co.deleted_at IS NULL AND %2$s)',
            p_alias, p_company_cond
        );
    END IF;
    EXECUTE format(
        'SELECT sum(s.n), string_agg(format(%L, s.crm_source, s.ids), '' OR '' ORDER BY s.crm_source) FROM ('
        '  SELECT x.crm_source, count(*) AS n, array_agg(x.crm_record_id ORDER BY x.crm_record_id) AS ids FROM ('
        '    SELECT co.crm_source, co.crm_record_id FROM crm.company_index AS co'
        '    WHERE co.org_id = %L AND co.deleted_at IS NULL AND %s) AS x'
        '  GROUP BY x.crm_source) AS s',
        '(' || p_alias || '.crm_source = %L AND ' || p_alias || '.company_crm_id = ANY(%L::text[]))', p_org_id, p_company_cond
    ) INTO v_n, v_part;
    RETURN coalesce('(' || v_part || ')', 'FALSE');
END
$$;

-- The same for a contact (crm.contact_index AS c).
CREATE OR REPLACE FUNCTION crm.search_contact_company_condition(p_org_id uuid, p_company_cond text) RETURNS text
LANGUAGE sql STABLE
RETURN crm.search_related_company_condition(p_org_id, 'c', p_company_cond);

-- The contact condition of a company filter naming companies (p_names) and nothing else on the company side, when
-- some company has every word of a name (crm.search_company_name_condition's 'words' mode; the last word also as a
-- prefix): the condition crm.search_contact_company_condition gives for that mode, found with one static
-- statement (its generic plan kept for the session: a bitmap scan of company_index_search_doc_idx) instead of three
-- dynamic ones planned on every call (issue 18, "Stan from Acme"). NULL when no company has the words: the caller
-- then takes the general path (trigram, then phonetic names, crm.search_company_condition). Up to 1,000 companies
-- (the general path: 100) are literal id lists, the same companies as the semi-join: with the semi-join the planner
-- ANDs the contacts' word bitmap with every contact of the org (contact_index_name_trgm_idx read on its org key
-- alone, 500,000 entries: 130-220 ms at 500K, a sixth of the bench's phrases); with the lists it ANDs it with
-- contact_index_company_idx (measured at 500K: "Kathryn from Vivid", 222 companies: 220 ms -> 2-18 ms).
-- Literals, not one InitPlan value (`ANY((SELECT list)::text[])`, no planning id by id: 2.2 -> 0.2 ms for 585 ids):
-- the planner takes such a value for 10 ids and, for a common first name, reads the companies' contacts alone and
-- computes each one's search doc (206 ms for 585 companies at 500K; H24A, test_company_ids_stay_literal_...).
CREATE OR REPLACE FUNCTION crm.search_company_words_condition(p_org_id uuid, p_names text[]) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_q tsquery;
    v_name text;
    v_words text[];
    v_n bigint;
    v_part text;
    v_mode text;
BEGIN
    FOREACH v_name IN ARRAY coalesce(p_names, '{}') LOOP
        v_words := ARRAY(SELECT w FROM unnest((crm.search_query_parts(v_name)).words) AS w WHERE length(w) >= 2);
        CONTINUE WHEN cardinality(v_words) = 0;
        v_name := (
            SELECT string_agg(
                quote_literal(t.w) || CASE WHEN t.ord = cardinality(v_words) AND length(t.w) >= 3 THEN ':*' ELSE '' END,
                ' & ' ORDER BY t.ord
            )
            FROM unnest(v_words) WITH ORDINALITY AS t (w, ord)
        );
        -- doc @@ (a || b) is doc @@ a OR doc @@ b: the OR of the names' conditions
        v_q := CASE WHEN v_q IS NULL THEN v_name::tsquery ELSE v_q || v_name::tsquery END;
    END LOOP;
    IF v_q IS NULL THEN
        RETURN NULL;
    END IF;
    v_mode := current_setting('plan_cache_mode');
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    SELECT sum(s.n), string_agg(
        format('(c.crm_source = %L AND c.company_crm_id = ANY(%L::text[]))', s.crm_source, s.ids), ' OR '
        ORDER BY s.crm_source
    )
    INTO v_n, v_part
    FROM (
        SELECT x.crm_source, count(*) AS n, array_agg(x.crm_record_id ORDER BY x.crm_record_id) AS ids
        FROM (
            -- (the org test IS TRUE: not an index condition, else the generic plan ANDs the words bitmap with a
            -- bitmap of the whole org from company_index_industry_groups_idx)
            SELECT co.crm_source, co.crm_record_id FROM crm.company_index AS co
            WHERE (co.org_id = p_org_id) IS TRUE AND co.deleted_at IS NULL AND crm.company_search_doc(co.name) @@ v_q
            LIMIT 1001
        ) AS x
        GROUP BY x.crm_source
    ) AS s;
    PERFORM set_config('plan_cache_mode', v_mode, true);
    IF v_n IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_n > 1000 THEN
        RETURN format(
            'EXISTS (SELECT 1 FROM crm.company_index AS co WHERE co.org_id = c.org_id AND co.crm_source = c.crm_source'
            ' AND co.crm_record_id = c.company_crm_id AND co.deleted_at IS NULL AND %s)',
            crm.search_company_name_condition(p_names, 'words')
        );
    END IF;
    RETURN '(' || v_part || ')';
END
$$;

-- The owners a filter names (owner ids, emails, full, first or last names; lower case), as a condition on
-- p_alias.owner_crm_id; FALSE when the org has no such owner.
CREATE OR REPLACE FUNCTION crm.search_owner_condition(p_org_id uuid, p_alias text, p_values text[]) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        '(' || string_agg(format('(%1$s.crm_source = %2$L AND %1$s.owner_crm_id = ANY(%3$L::text[]))', p_alias, s.crm_source, s.ids), ' OR ') || ')',
        'FALSE'
    )
    FROM (
        SELECT o.crm_source, array_agg(o.owner_id ORDER BY o.owner_id) AS ids
        FROM crm.crm_owner AS o
        WHERE o.org_id = p_org_id AND (
            lower(o.owner_id) = ANY(p_values) OR lower(o.email) = ANY(p_values)
            OR lower(crm.norm_text(concat_ws(' ', o.first_name, o.last_name))) = ANY(p_values)
            OR lower(crm.norm_text(o.first_name)) = ANY(p_values) OR lower(crm.norm_text(o.last_name)) = ANY(p_values)
        )
        GROUP BY o.crm_source
    ) AS s;
$$;

-- Condition: p_alias (c, co, d) is an entry of one of the Attio lists p_lists names (list id, slug or name, with or
-- without a trailing "pipeline" / "list"), at one of the stages p_stages names (label or id) when given; a contact or
-- a deal also when its company is. Removed entries and archived lists do not count.
CREATE OR REPLACE FUNCTION crm.search_list_condition(
    p_org_id uuid, p_alias text, p_lists text[], p_stages text[]
) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_entry text := format(
        'EXISTS (SELECT 1 FROM crm.list_entry AS e INNER JOIN crm.crm_list AS l'
        ' ON l.org_id = e.org_id AND l.crm_source = e.crm_source AND l.list_id = e.list_id'
        ' WHERE e.org_id = %%1$s.org_id AND e.crm_source = %%1$s.crm_source AND e.parent_object = %%2$L'
        ' AND e.parent_record_id = %%3$s AND e.deleted_at IS NULL AND NOT l.archived AND %s AND %s)',
        CASE WHEN coalesce(cardinality(p_lists), 0) = 0 THEN 'TRUE' ELSE format(
            '(l.list_id = ANY(%1$L::text[]) OR l.api_slug = ANY(%1$L::text[]) OR lower(crm.norm_text(l.name)) = ANY(%1$L::text[])'
            ' OR regexp_replace(lower(crm.norm_text(l.name)), %2$L, '''') = ANY(%1$L::text[]))',
            p_lists, ' (pipeline|list)$'
        ) END,
        CASE WHEN coalesce(cardinality(p_stages), 0) = 0 THEN 'TRUE' ELSE format(
            '(e.stage_id = ANY(%1$L::text[]) OR lower(crm.norm_text(e.stage_label)) = ANY(%1$L::text[]))', p_stages
        ) END
    );
BEGIN
    RETURN CASE p_alias
        WHEN 'co' THEN format(v_entry, 'co', 'companies', 'co.crm_record_id')
        WHEN 'c' THEN '(' || format(v_entry, 'c', 'contacts', 'c.crm_record_id') || ' OR '
            || format(v_entry, 'c', 'companies', 'c.company_crm_id') || ')'
        ELSE '(' || format(v_entry, 'd', 'deals', 'd.crm_record_id') || ' OR '
            || format(v_entry, 'd', 'companies', 'd.company_crm_id') || ')'
    END;
END
$$;

------------------------------------------------------------------------------------------------------------
-- Plans: the parts both searches share
------------------------------------------------------------------------------------------------------------

-- The normal form of p_filters for a p_kind search ('contacts', 'companies', 'deals'), once the org
-- (crm.assert_org) and the page size (1 to 1,000, else CX002) are checked: the start of every plan.
CREATE OR REPLACE FUNCTION crm.search_plan_filters(p_org_id uuid, p_kind text, p_filters jsonb, p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = 'CX002';
    END IF;
    RETURN crm.normalize_search_filters(p_kind, p_filters);
END
$$;

-- SQL conditions on p_alias (c: crm.contact_index, co: crm.company_index, d: crm.deal_index) for the filters of p_f
-- (normalized) about the record itself, sorted by key: lists of values on columns of the same name (seniority,
-- lifecycle_stage, email...), booleans, value and date ranges, the owner, Attio lists, the location (a contact's
-- or deal's through its company too), and for contacts the stage of their deal, for deals the stage and pipeline by
-- label or id. Time bounds: "_after" includes, "_before" excludes.
CREATE OR REPLACE FUNCTION crm.search_record_conditions(p_org_id uuid, p_alias text, p_f jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_out text[] := '{}';
    v_key text;
    v_vals text[];
    v_ids text[];
    v_won text;
    v_col jsonb := CASE p_alias
        WHEN 'c' THEN '{"created": "crm_created_at", "last_contacted": "last_contacted_at", "last_activity": "last_activity_at"}'
        ELSE '{"created": "crm_created_at"}'
    END::jsonb;
BEGIN
    FOR v_key IN SELECT k FROM jsonb_object_keys(p_f) AS k ORDER BY k LOOP
        IF jsonb_typeof(p_f -> v_key) = 'array' THEN
            v_vals := ARRAY(SELECT jsonb_array_elements_text(p_f -> v_key));
        END IF;
        CASE
            WHEN v_key = 'seniority' AND p_alias = 'c' AND cardinality(v_vals) = 1 THEN
                -- one level: "=" (an index on (org_id, seniority, id) then gives id order; "= ANY" would not)
                v_out := v_out || format('c.seniority = %L', v_vals[1]);
            WHEN v_key IN ('seniority', 'department', 'lifecycle_stage', 'lead_status', 'email') AND p_alias = 'c' THEN
                v_out := v_out || format('c.%I = ANY(%L::text[])', v_key, v_vals);
            WHEN v_key = 'email_domain' AND p_alias = 'c' THEN
                v_out := v_out || format('crm.email_domain(c.email) = ANY(%L::text[])', v_vals);
            WHEN v_key IN ('country', 'domain') AND p_alias = 'co' THEN
                v_out := v_out || format('co.%I = ANY(%L::text[])', v_key, v_vals);
            WHEN v_key = 'is_materialized' AND p_alias IN ('c', 'co') THEN
                v_out := v_out || (CASE WHEN (p_f ->> v_key)::boolean THEN '' ELSE 'NOT ' END || p_alias || '.is_materialized');
            WHEN v_key = 'has_active_deal' AND p_alias = 'c' THEN
                v_out := v_out || (CASE WHEN (p_f ->> v_key)::boolean THEN '' ELSE 'NOT ' END || 'c.has_active_deal');
            WHEN v_key = 'has_active_deal' AND p_alias = 'co' THEN
                v_out := v_out || (CASE WHEN (p_f ->> v_key)::boolean THEN '' ELSE 'NOT ' END
                    || 'EXISTS (SELECT 1 FROM crm.deal_index AS d WHERE d.org_id = co.org_id AND d.crm_source = co.crm_source'
                    || ' AND d.company_crm_id = co.crm_record_id AND d.is_active)');
            WHEN v_key = 'deal_value_min' AND p_alias = 'c' THEN
                v_out := v_out || format('c.has_active_deal AND c.deal_value >= %L::numeric', p_f ->> v_key);
            WHEN v_key = 'deal_value_max' AND p_alias = 'c' THEN
                v_out := v_out || format('c.has_active_deal AND c.deal_value <= %L::numeric', p_f ->> v_key);
            WHEN v_key = 'deal_stage' AND p_alias = 'c' THEN
                -- the label (what the index holds once stages are known) or the stage id of that label
                v_ids := ARRAY(
                    SELECT s.stage_id FROM crm.crm_pipeline_stage AS s
                    WHERE s.org_id = p_org_id AND s.object_type = 'deals' AND lower(crm.norm_text(s.stage_label)) = ANY(v_vals)
                );
                v_out := v_out || format('(lower(crm.norm_text(c.deal_stage)) = ANY(%L::text[]) OR c.deal_stage = ANY(%L::text[]))', v_vals, v_ids);
            WHEN v_key = 'stage' AND p_alias = 'd' THEN
                -- the label as derived, the id, or the ids of the org's stages with that label
                v_ids := ARRAY(
                    SELECT s.stage_id FROM crm.crm_pipeline_stage AS s
                    WHERE s.org_id = p_org_id AND s.object_type = 'deals' AND lower(crm.norm_text(s.stage_label)) = ANY(v_vals)
                );
                v_out := v_out || format(
                    '(lower(crm.norm_text(d.stage_label)) = ANY(%1$L::text[]) OR lower(d.stage) = ANY(%1$L::text[])'
                    ' OR d.stage = ANY(%2$L::text[]))',
                    v_vals, v_ids
                );
            WHEN v_key = 'pipeline' AND p_alias = 'd' THEN
                v_out := v_out || format('(lower(crm.norm_text(d.pipeline_label)) = ANY(%1$L::text[]) OR lower(d.pipeline) = ANY(%1$L::text[]))', v_vals);
            WHEN v_key = 'is_open' AND p_alias = 'd' THEN
                v_out := v_out || (CASE WHEN (p_f ->> v_key)::boolean THEN '' ELSE 'NOT ' END || 'd.is_active');
            WHEN v_key = 'won' AND p_alias = 'd' THEN
                SELECT coalesce(string_agg(format('(d.crm_source = %L AND d.stage = ANY(%L::text[]))', w.crm_source, w.ids), ' OR '), 'FALSE')
                INTO v_won
                FROM (
                    SELECT s.crm_source, array_agg(s.stage_id) AS ids FROM crm.crm_pipeline_stage AS s
                    WHERE s.org_id = p_org_id AND s.object_type = 'deals' AND s.is_won GROUP BY s.crm_source
                ) AS w;
                v_won := format('(lower(d.stage) = %L OR %s)', 'closedwon', v_won);
                -- won: false is closed lost (crmindex/index/search.py), not "every deal but the won ones"
                v_out := v_out || CASE WHEN (p_f ->> v_key)::boolean THEN v_won ELSE format('(NOT d.is_active AND NOT %s)', v_won) END;
            WHEN v_key = 'amount_min' AND p_alias = 'd' THEN
                v_out := v_out || format('d.amount >= %L::numeric', p_f ->> v_key);
            WHEN v_key = 'amount_max' AND p_alias = 'd' THEN
                v_out := v_out || format('d.amount <= %L::numeric', p_f ->> v_key);
            WHEN v_key = 'close_after' AND p_alias = 'd' THEN
                v_out := v_out || format('d.close_date >= %L::date', p_f ->> v_key);
            WHEN v_key = 'close_before' AND p_alias = 'd' THEN
                v_out := v_out || format('d.close_date < %L::date', p_f ->> v_key);
            WHEN v_key = 'never_contacted' AND p_alias = 'c' THEN
                v_out := v_out || ('c.last_contacted_at IS ' || CASE WHEN (p_f ->> v_key)::boolean THEN '' ELSE 'NOT ' END || 'NULL');
            WHEN v_key = 'updated_since' THEN
                v_out := v_out || format('%s.crm_updated_at >= %L::timestamptz', p_alias, p_f ->> v_key);
            WHEN v_key ~ '_(after|before)$' AND v_col ? regexp_replace(v_key, '_(after|before)$', '') THEN
                v_out := v_out || format(
                    '%s.%I %s %L::timestamptz', p_alias, v_col ->> regexp_replace(v_key, '_(after|before)$', ''),
                    CASE WHEN v_key LIKE '%\_after' THEN '>=' ELSE '<' END, p_f ->> v_key
                );
            WHEN v_key = 'owner' THEN
                v_out := v_out || crm.search_owner_condition(p_org_id, p_alias, v_vals);
            WHEN v_key = 'list' OR (v_key = 'list_stage' AND NOT p_f ? 'list') THEN
                v_out := v_out || crm.search_list_condition(
                    p_org_id, p_alias, ARRAY(SELECT jsonb_array_elements_text(p_f -> 'list')),
                    ARRAY(SELECT jsonb_array_elements_text(p_f -> 'list_stage'))
                );
            WHEN v_key = 'location' THEN
                v_out := v_out || crm.search_location_condition(p_org_id, p_alias, v_vals);
            ELSE
                NULL;  -- company-side filters (crm.search_company_condition), the cursor, list_stage with list
        END CASE;
    END LOOP;
    RETURN v_out;
END
$$;

-- Condition: every word of p_words is (by trigram word similarity) a word of p_doc, an SQL expression.
CREATE OR REPLACE FUNCTION crm.search_trigram_condition(p_words text[], p_doc text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(format('crm.trgm_doc_has_word(%s, %L)', p_doc, w), ' AND ') FROM unnest(p_words) AS w;
$$;

-- The candidate sources of a text plan as statements: each {"tier", "name", "cond"} of p_sources becomes
-- {"tier", "name", "sql"}, the ids of p_table AS p_alias matching p_base and cond, read up to p_cap rows (a
-- MATERIALIZED CTE: planned for all its rows with bitmap index scans, never as an index walk betting on an early
-- LIMIT).
CREATE OR REPLACE FUNCTION crm.search_plan_sources(
    p_table text, p_alias text, p_base text, p_sources jsonb, p_cap integer
) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
        'tier', s.e -> 'tier', 'name', s.e -> 'name',
        'sql', format(
            'WITH m AS MATERIALIZED (SELECT %1$s.id FROM %2$s AS %1$s WHERE %3$s AND %4$s) SELECT m.id FROM m LIMIT %5$s',
            p_alias, p_table, p_base, s.e ->> 'cond', p_cap
        )
    ) ORDER BY s.ord), '[]')
    FROM jsonb_array_elements(p_sources) WITH ORDINALITY AS s (e, ord);
$$;

-- The statement of a text plan that ranks the candidates ($1, bigint[]) of p_table AS p_alias in org p_org_id:
-- p_score per row, reading the values p_lateral computes once per row (a select list, as x); after the keyset
-- cursor p_f->>'after' ("score:id" of the last row of the previous page); best first (score, then id); p_limit.
CREATE OR REPLACE FUNCTION crm.search_plan_score_sql(
    p_table text, p_alias text, p_org uuid, p_score text, p_lateral text, p_f jsonb, p_limit integer
) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format(
        $q$SELECT r.id, r.score FROM (
            SELECT %2$s.id, %3$s AS score
            FROM unnest($1::bigint[]) AS k (id)
            INNER JOIN %1$s AS %2$s ON %2$s.org_id = %4$L AND %2$s.id = k.id
            CROSS JOIN LATERAL (SELECT %5$s OFFSET 0) AS x
        ) AS r
        WHERE %6$s
        ORDER BY r.score DESC, r.id
        LIMIT %7$s$q$,
        p_table, p_alias, p_score, p_org, p_lateral,
        CASE WHEN p_f ? 'after' THEN format(
            '(r.score < %1$L::double precision OR (r.score = %1$L::double precision AND r.id > %2$s))',
            split_part(p_f ->> 'after', ':', 1)::double precision, split_part(p_f ->> 'after', ':', 2)::bigint
        ) ELSE 'TRUE' END,
        p_limit
    );
$$;

-- The share of crm.company_index rows (all orgs) whose industry_groups hold one of p_groups, from the planner's
-- statistics (the most common elements ANALYZE keeps; a group not among them counts 0); NULL without statistics or
-- the privilege to read them. Only chooses between two plans that give the same rows (crm.search_contact_plan).
CREATE OR REPLACE FUNCTION crm.search_company_group_share(p_groups text[]) RETURNS double precision
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT least(1.0, sum(e.f)) FROM pg_catalog.pg_statistic AS s
        CROSS JOIN LATERAL (VALUES
            (s.stakind1, s.stavalues1, s.stanumbers1), (s.stakind2, s.stavalues2, s.stanumbers2),
            (s.stakind3, s.stavalues3, s.stanumbers3), (s.stakind4, s.stavalues4, s.stanumbers4),
            (s.stakind5, s.stavalues5, s.stanumbers5)
        ) AS k (kind, vals, nums)
        CROSS JOIN LATERAL unnest(k.vals::text::text[], k.nums) AS e (elem, f)
        WHERE
            s.starelid = 'crm.company_index'::regclass AND NOT s.stainherit
            AND s.staattnum = (
                SELECT a.attnum FROM pg_catalog.pg_attribute AS a
                WHERE a.attrelid = 'crm.company_index'::regclass AND a.attname = 'industry_groups'
            )
            AND k.kind = 4  -- STATISTIC_KIND_MCELEM
            AND e.elem = ANY(p_groups)
    );
EXCEPTION WHEN insufficient_privilege THEN
    RETURN NULL;
END
$$;

------------------------------------------------------------------------------------------------------------
-- Contacts
------------------------------------------------------------------------------------------------------------

-- How a contact search runs, as SQL statements (SECURITY DEFINER, see the header: only for the org the
-- session may use, crm.assert_org). Exposed so that plans can be inspected (EXPLAIN). Returns
--   {"mode": "filter", "sql": <statement returning (id, score)>}                        no usable text
--   {"mode": "text", "sources": [{"tier", "name", "sql"}...], "score_sql": <statement>}   text
-- A text search runs the candidate sources tier by tier, each bounded by crm.search_candidate_cap() rows,
-- and stops after the first tier that found candidates (typo-tolerant tiers only run when the exact words
-- match nobody; they are the expensive ones). A source is a MATERIALIZED CTE read up to the cap: planned
-- for all its rows (bitmap index scans), never as an index walk betting on an early LIMIT:
--   tier 0 (exact): emails, domains, every word as a word prefix of the name / company / title;
--   tier 1: names by soundex (first and last name, either order);
--   tier 2: names by trigram word similarity, every word (threshold 0.3, set for the call), among the contacts having
--           one of the org's 8 name words closest to each typed word (crm.search_name_word_condition);
--   tier 3: the last word's soundex as the last name, the first word's first letter as the first name's;
--   tier 4: contacts of the 20 companies whose name best matches the text (trigram, else phonetic).
-- The stop depends on the data only, so every page of a query sees the same candidates. score_sql ranks
-- the candidates ($1, bigint[]) and applies the keyset cursor and the limit.
CREATE OR REPLACE FUNCTION crm.search_contact_plan(p_org_id uuid, p_query text, p_filters jsonb, p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET "pg_trgm.word_similarity_threshold" = '0.3'
SET enable_seqscan = off
AS $$
DECLARE
    v_f jsonb;
    v_q record;
    v_where text[];
    v_base text;
    v_cond text;
    v_sources jsonb := '[]';
    v_score text;
    v_name text := 'crm.contact_name_norm(c.first_name, c.last_name)';
    v_doc text := 'crm.contact_search_doc(c.first_name, c.last_name, c.company_name, c.job_title)';
    v_w2 text[];
    v_w3 text[];
    v_alpha text[];
    v_after_id bigint;
    v_domain_cos text := 'FALSE';
    v_senior boolean;
    v_company text;
BEGIN
    v_f := crm.search_plan_filters(p_org_id, 'contacts', p_filters, p_limit);
    v_q := crm.search_query_parts(p_query);
    -- no text, one level of contact_index_senior_idx (its predicate: migration 0021) and otherwise only filters on
    -- the contact's company that name no company (industry, group, size, revenue): see the company condition
    v_senior := jsonb_array_length(coalesce(v_f -> 'seniority', '[]')) = 1
        AND (v_f -> 'seniority' ->> 0) = ANY(ARRAY['c_suite', 'vp', 'head', 'director', 'manager'])
        AND (v_f - ARRAY['seniority', 'after', 'industry', 'industry_group', 'employees_min', 'employees_max',
            'revenue_min', 'revenue_max']) = '{}'
        AND cardinality(v_q.emails) = 0 AND cardinality(v_q.domains) = 0
        AND NOT EXISTS (SELECT 1 FROM unnest(v_q.words) AS w WHERE length(w) >= 2);

    -- filters
    v_where := ARRAY[format('c.org_id = %L', p_org_id), 'c.deleted_at IS NULL']
        || crm.search_record_conditions(p_org_id, 'c', v_f);
    -- companies named and nothing else on the company side ("Stan from Acme"): one static statement when some company
    -- has the words (crm.search_company_words_condition), else the general path
    IF v_f ? 'company' AND NOT v_f ?| ARRAY[
        'company_domain', 'industry', 'industry_group', 'employees_min', 'employees_max', 'revenue_min', 'revenue_max'
    ] THEN
        v_company := crm.search_company_words_condition(p_org_id, ARRAY(SELECT jsonb_array_elements_text(v_f -> 'company')));
    END IF;
    v_cond := CASE WHEN v_company IS NULL THEN crm.search_company_condition(p_org_id, v_f) END;
    IF v_company IS NOT NULL THEN
        v_where := v_where || v_company;
    ELSIF v_cond IS NOT NULL AND (v_f ? 'company' OR v_f ? 'company_domain') THEN
        v_where := v_where || crm.search_contact_company_condition(p_org_id, v_cond);
    ELSIF v_cond IS NOT NULL AND v_senior AND (v_f - ARRAY['seniority', 'after', 'industry_group']) = '{}'
        AND crm.search_company_group_share(ARRAY(SELECT jsonb_array_elements_text(v_f -> 'industry_group'))) >= 0.07 THEN
        -- one decision-maker level at companies of common industry groups (7% of the companies or more: "VPs at
        -- fintech companies"): the level's entries of contact_index_senior_idx in id order, index only, each
        -- company probed by its key until a page is full (about p_limit / share probes; OFFSET 0 keeps the EXISTS a
        -- per-row subplan: no hashed set of the thousands of matching companies is built). Below 7% the hashed set
        -- is cheaper (measured at 500K contacts / 50K companies: 5% of the companies, 1,000 probes vs a set of 2,500)
        v_where := v_where || format(
            'EXISTS (SELECT 1 FROM crm.company_index AS co WHERE co.org_id = c.org_id AND co.crm_source = c.crm_source'
            ' AND co.crm_record_id = c.company_crm_id AND co.deleted_at IS NULL AND %s OFFSET 0)',
            v_cond
        );
    ELSIF v_cond IS NOT NULL AND v_senior THEN
        -- one decision-maker level and rarer groups, industries, sizes, revenues: the level's entries in id order,
        -- index only, each company tested against a hashed set of the matching companies (the "IS TRUE" keeps the IN
        -- a hashed subplan, not a semi-join probing crm.company_index per row); bounded by the level's entries, so
        -- no density sample is needed
        v_where := v_where || format(
            '((c.crm_source, c.company_crm_id) IN (SELECT co.crm_source, co.crm_record_id FROM crm.company_index AS co'
            ' WHERE co.org_id = %L AND co.deleted_at IS NULL AND %s)) IS TRUE',
            p_org_id, v_cond
        );
    ELSIF v_cond IS NOT NULL THEN
        -- industries, sizes and revenues name many companies: a semi-join, no id list
        v_where := v_where || format(
            'EXISTS (SELECT 1 FROM crm.company_index AS co WHERE co.org_id = c.org_id AND co.crm_source = c.crm_source'
            ' AND co.crm_record_id = c.company_crm_id AND co.deleted_at IS NULL AND %s)',
            v_cond
        );
    END IF;
    IF v_f ? 'domain' THEN
        v_where := v_where || format(
            '(crm.email_domain(c.email) = ANY(%L::text[]) OR %s)',
            ARRAY(SELECT jsonb_array_elements_text(v_f -> 'domain')),
            crm.search_contact_company_condition(
                p_org_id, format('co.domain = ANY(%L::text[])', ARRAY(SELECT jsonb_array_elements_text(v_f -> 'domain')))
            )
        );
    END IF;
    v_base := array_to_string(v_where, ' AND ');
    v_after_id := split_part(v_f ->> 'after', ':', 2)::bigint;  -- NULL without a cursor

    v_w2 := ARRAY(SELECT w FROM unnest(v_q.words) AS w WHERE length(w) >= 2);
    v_w3 := ARRAY(SELECT w FROM unnest(v_q.words) AS w WHERE length(w) >= 3);
    v_alpha := ARRAY(SELECT w FROM unnest(v_w2) AS w WHERE w !~ '[0-9]');

    -- no usable text: every match ranks equally, in id order (an index scan in id order stops after
    -- p_limit rows when matches are dense; selective filters use their own indexes)
    -- only domains ("stripe.com"): everyone there ranks equally (score 1), in id order
    IF cardinality(v_q.emails) = 0 AND cardinality(v_w2) = 0 AND cardinality(v_q.domains) > 0 THEN
        v_base := v_base || format(
            ' AND (crm.email_domain(c.email) = ANY(%L::text[]) OR %s)', v_q.domains,
            crm.search_contact_company_condition(p_org_id, format('co.domain = ANY(%L::text[])', v_q.domains))
        );
        v_score := '1';
    END IF;
    IF cardinality(v_q.emails) = 0 AND cardinality(v_w2) = 0 THEN
        -- filter only: every match ranks equally, in id order. How to read them depends on how dense they
        -- are, which the planner misjudges for company-side filters (a rare combination walks the whole org
        -- in id order). sample_sql counts matches among the org's first 2,000 contacts: 5 or more (0.25%),
        -- sql walks the primary key in id order and stops after a page; fewer, collect_sql gathers every
        -- match with bitmap index scans (a MATERIALIZED CTE is planned for all its rows) and sorts them.
        -- One decision-maker level and company-side filters (v_senior): sql reads that level's index entries in id
        -- order, index only, and stops after a page (at worst it reads the level's entries): no sample.
        RETURN jsonb_strip_nulls(jsonb_build_object(
            'mode', 'filter',
            'sample_sql', CASE WHEN NOT (v_senior AND v_cond IS NOT NULL) THEN format(
                'SELECT count(*) FROM (SELECT c.* FROM crm.contact_index AS c WHERE c.org_id = %L AND c.deleted_at IS NULL'
                ' ORDER BY c.id LIMIT 2000) AS c WHERE %s',
                p_org_id, v_base
            ) END,
            'collect_sql', format(
                'WITH m AS MATERIALIZED (SELECT c.id FROM crm.contact_index AS c WHERE %s AND c.id > %s)'
                ' SELECT m.id, %s::double precision AS score FROM m ORDER BY m.id LIMIT %s',
                v_base, coalesce(v_after_id, 0), coalesce(v_score, '0'), p_limit
            ),
            'sql', format(
                'SELECT c.id, %s::double precision AS score FROM crm.contact_index AS c WHERE %s AND c.id > %s ORDER BY c.id LIMIT %s',
                coalesce(v_score, '0'), v_base, coalesce(v_after_id, 0), p_limit
            )
        ));
    END IF;

    -- tier 0: exact
    IF cardinality(v_q.emails) > 0 THEN
        v_sources := v_sources || jsonb_build_object('tier', 0, 'name', 'email', 'cond', format('c.email = ANY(%L::text[])', v_q.emails));
    END IF;
    IF cardinality(v_q.domains) > 0 THEN
        v_sources := v_sources || jsonb_build_object(
            'tier', 0, 'name', 'email_domain',
            'cond', format('crm.email_domain(c.email) = ANY(%L::text[])', v_q.domains)
        );
        v_domain_cos := crm.search_contact_company_condition(p_org_id, format('co.domain = ANY(%L::text[])', v_q.domains));
        IF v_domain_cos <> 'FALSE' THEN
            v_sources := v_sources || jsonb_build_object('tier', 0, 'name', 'company_domain', 'cond', v_domain_cos);
        END IF;
    END IF;
    IF cardinality(v_w2) > 0 THEN
        -- whole words; the last one also as a prefix (type-ahead) when it has 3 or more characters
        v_sources := v_sources || jsonb_build_object('tier', 0, 'name', 'words', 'cond', format(
            '%s @@ %L::tsquery', v_doc,
            (
                SELECT string_agg(
                    quote_literal(t.w) || CASE WHEN t.ord = cardinality(v_w2) AND length(t.w) >= 3 THEN ':*' ELSE '' END,
                    ' & ' ORDER BY t.ord
                )
                FROM unnest(v_w2) WITH ORDINALITY AS t (w, ord)
            )::tsquery
        ));
    END IF;
    -- tier 1: soundex names
    IF cardinality(v_alpha) BETWEEN 1 AND 3 THEN
        v_sources := v_sources || jsonb_build_object(
            'tier', 1, 'name', 'soundex', 'cond', crm.search_soundex_condition(v_alpha)
        );
    END IF;
    -- tier 2: trigram names
    IF cardinality(v_w3) BETWEEN 1 AND 4 AND cardinality(v_w3) = cardinality(v_w2) THEN
        v_sources := v_sources || jsonb_build_object(
            'tier', 2, 'name', 'trigram', 'cond', crm.search_name_word_condition(p_org_id, v_w3, v_doc, v_name)
        );
    END IF;
    -- tier 3 (H18Y): nobody's name is that close: the last name sounds like the last word and the first name starts
    -- with the first word's letter (both words misspelt beyond trigram reach), before companies
    IF cardinality(v_alpha) BETWEEN 2 AND 3 THEN
        v_sources := v_sources || jsonb_build_object(
            'tier', 3, 'name', 'soundex_initial', 'cond', crm.search_soundex_initial_condition(v_alpha)
        );
    END IF;
    -- tier 4: the text names a company (typos allowed): the contacts of the 20 closest such companies
    IF cardinality(v_w2) BETWEEN 1 AND 4 THEN
        v_sources := v_sources || jsonb_build_object('tier', 4, 'name', 'company', 'cond', format(
            '(c.crm_source, c.company_crm_id) IN (SELECT co.crm_source, co.crm_record_id FROM crm.company_index AS co'
            ' WHERE co.org_id = %L AND co.deleted_at IS NULL AND (%s OR %s)'
            ' ORDER BY crm.trgm_sim(%L, crm.norm_text(co.name)) DESC, co.id + 0 LIMIT 20)',
            p_org_id, crm.search_company_name_condition(ARRAY[v_q.phrase], 'trigram'),
            crm.search_company_name_condition(ARRAY[v_q.phrase], 'phonetic'), v_q.phrase
        ));
    END IF;

    -- the score, the same for every candidate: per word, the best of its word similarity to the name,
    -- company (x0.8) and title (x0.7), +0.3 when it sounds like the first or last name; averaged; plus
    -- 0.25 x similarity of the whole text to the name, 2 for an exact email, 1 for a domain match
    v_score := format(
        $s$round((
            CASE WHEN c.email = ANY(%1$L::text[]) THEN 2.0 ELSE 0 END
            + CASE WHEN crm.email_domain(c.email) = ANY(%2$L::text[]) OR %3$s THEN 1.0 ELSE 0 END
            + %4$s
            + CASE WHEN %5$L <> '' THEN 0.25 * crm.trgm_sim(%5$L, x.nm) ELSE 0 END
        )::numeric, 4)::double precision$s$,
        v_q.emails, v_q.domains, v_domain_cos,
        coalesce((
            SELECT '(' || string_agg(format(
                'greatest(crm.trgm_word_sim(%1$L, x.nm), 0.8 * crm.trgm_word_sim(%1$L, x.cn), 0.7 * crm.trgm_word_sim(%1$L, x.tn), 0)'
                ' + CASE WHEN %2$L IN (x.sf, x.sl) THEN 0.3 ELSE 0 END',
                w, coalesce(crm.name_soundex(w), '-')
            ), ' + ') || format(') / %s', cardinality(v_q.words))
            FROM unnest(v_q.words) AS w
        ), '0'),
        v_q.phrase
    );

    RETURN jsonb_build_object(
        'mode', 'text',
        'sources', crm.search_plan_sources('crm.contact_index', 'c', v_base, v_sources, crm.search_candidate_cap()),
        'score_sql', crm.search_plan_score_sql(
            'crm.contact_index', 'c', p_org_id, v_score,
            v_name || ' AS nm, lower(crm.unaccent_text(c.company_name)) AS cn, '
            'lower(crm.unaccent_text(c.job_title)) AS tn, '
            'crm.name_soundex(c.first_name) AS sf, crm.name_soundex(c.last_name) AS sl',
            v_f, p_limit
        )
    ) || CASE WHEN cardinality(v_q.emails) = 0 AND cardinality(v_q.domains) = 0 THEN jsonb_build_object(
        -- text words only (H24C): the email and domain terms are 0, so crm.run_search_plan ranks with its static
        -- statement (the same score as score_sql, a plan kept for the session) from these values
        'name_score', jsonb_strip_nulls(jsonb_build_object(
            'org', p_org_id, 'words', v_q.words, 'phrase', v_q.phrase, 'limit', p_limit,
            'sounds', ARRAY(SELECT coalesce(crm.name_soundex(w), '-') FROM unnest(v_q.words) WITH ORDINALITY AS t (w, o) ORDER BY o),
            'after_score', split_part(v_f ->> 'after', ':', 1), 'after_id', v_after_id,
            -- and no filter (a cursor at most): the tiers' values, for crm.run_search_plan's static statements
            -- (crm.run_search_static_source: the same conditions as the sources' SQL, planned once per session)
            'static', CASE WHEN (v_f - 'after') = '{}' THEN jsonb_build_object(
                'org', p_org_id,
                't1', crm.search_soundex_keys(v_alpha, false), 't3', crm.search_soundex_keys(v_alpha, true),
                -- tier 2's words (crm.search_name_word_condition): two, each of 3 or more letters
                'trigram_words', CASE WHEN cardinality(v_w3) = 2 AND cardinality(v_w2) = 2 THEN to_jsonb(v_w3) END,
                'phrase', v_q.phrase,
                -- the company tier's words (crm.search_company_name_condition of the phrase): up to two, each of 3 or
                -- more letters; other texts run the source's SQL
                'company_words', CASE WHEN cardinality(v_w2) BETWEEN 1 AND 2 AND cardinality(v_w3) = cardinality(v_w2)
                    THEN to_jsonb(v_w2) END
            ) END
        ))
    ) ELSE '{}' END;
END
$$;

-- Candidate ids and scores, best first: ids and scores only, never row data (SECURITY DEFINER).
-- An unbound application session gets nothing (row-level security would show it nothing).
-- Exact emails and nothing else (no other text, no filter but a cursor) take a fast path: the plan would be one
-- tier-0 source (c.email = ANY(emails), up to the candidate cap) scoring 2 for every row; this static statement
-- gives the same rows and scores with a plan kept for the session, none built per call (issue 18, item 2).
CREATE OR REPLACE FUNCTION crm.search_contact_ids(p_org_id uuid, p_query text, p_filters jsonb, p_limit integer)
RETURNS TABLE (id bigint, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 50
SET search_path = pg_catalog, pg_temp
SET "pg_trgm.word_similarity_threshold" = '0.3'
SET enable_seqscan = off
AS $$
DECLARE
    v_q record;
    v_f jsonb;
    v_after_score double precision;
    v_after_id bigint;
BEGIN
    IF p_org_id IS NOT NULL AND crm.current_org_id() IS NULL AND NOT crm.session_sees_every_org() THEN
        RETURN;
    END IF;
    IF strpos(p_query, '@') > 0 THEN
        v_q := crm.search_query_parts(p_query);
        IF cardinality(v_q.emails) > 0 AND cardinality(v_q.words) = 0 AND cardinality(v_q.domains) = 0 THEN
            v_f := crm.search_plan_filters(p_org_id, 'contacts', p_filters, p_limit);
            IF (v_f - 'after') = '{}' THEN
                v_after_score := split_part(v_f ->> 'after', ':', 1)::double precision;  -- NULL without a cursor
                v_after_id := split_part(v_f ->> 'after', ':', 2)::bigint;
                RETURN QUERY
                SELECT m.id, 2.0::double precision
                FROM (
                    SELECT c.id FROM crm.contact_index AS c
                    WHERE c.org_id = p_org_id AND c.deleted_at IS NULL AND c.email = ANY(v_q.emails)
                    LIMIT crm.search_candidate_cap()
                ) AS m
                WHERE v_after_score IS NULL OR 2.0 < v_after_score OR (2.0 = v_after_score AND m.id > v_after_id)
                ORDER BY m.id
                LIMIT p_limit;
                RETURN;
            END IF;
        END IF;
    END IF;
    -- "<level> at <group> companies": static statements (crm.search_senior_group_ids, index/search_phrases.sql)
    IF p_query = '' AND p_filters ? 'seniority' AND p_filters ? 'industry_group' THEN
        v_f := crm.search_plan_filters(p_org_id, 'contacts', p_filters, p_limit);
        IF jsonb_array_length(coalesce(v_f -> 'seniority', '[]')) = 1
            AND (v_f -> 'seniority' ->> 0) = ANY(ARRAY['c_suite', 'vp', 'head', 'director', 'manager'])
            AND jsonb_array_length(coalesce(v_f -> 'industry_group', '[]')) > 0
            AND (v_f - ARRAY['seniority', 'after', 'industry_group']) = '{}'
        THEN
            RETURN QUERY SELECT r.id, r.score FROM crm.search_senior_group_ids(p_org_id, v_f, p_limit) AS r;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT r.id, r.score FROM crm.run_search_plan(crm.search_contact_plan(p_org_id, p_query, p_filters, p_limit)) AS r;
END
$$;

-- Contacts matching p_query (free text, taken literally) and p_filters, best first. See the header.
CREATE OR REPLACE FUNCTION crm.search_contacts(
    p_org_id uuid, p_query text, p_filters jsonb DEFAULT '{}', p_limit integer DEFAULT 50
)
RETURNS TABLE (
    id bigint,
    crm_source text,
    crm_record_id text,
    first_name text,
    last_name text,
    email text,
    email_domain text,
    phone text,
    company_name text,
    company_crm_id text,
    job_title text,
    seniority text,
    department text,
    lifecycle_stage text,
    lead_status text,
    has_active_deal boolean,
    deal_stage text,
    deal_value numeric,
    is_materialized boolean,
    materialized_contact_id uuid,
    crm_updated_at timestamptz,
    company_id bigint,
    company_domain text,
    industry text,
    industry_groups text[],
    owner_crm_id text,
    owner_name text,
    country text,
    company_city text,
    company_country text,
    employee_count integer,
    last_contacted_at timestamptz,
    last_activity_at timestamptz,
    crm_created_at timestamptz,
    score double precision,
    cursor text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_q record;
    v_f jsonb;
    v_after_score double precision;
    v_after_id bigint;
    v_plan_mode text;
    v_emails text[];
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_text_size('query', p_query, crm.input_cap('query'));
    -- exact emails and nothing else (no other text, no filter but a cursor): crm.search_contact_ids' fast path, taken
    -- here with the same statement, validation and guard, without the helper's call and settings (issue 18, item 2)
    IF strpos(p_query, '@') > 0 AND (crm.current_org_id() IS NOT NULL OR crm.session_sees_every_org()) THEN
        -- the whole text one email (crm.search_query_parts' email pattern, spaces around): its parts are that email
        -- and nothing else, read with one match instead of the parser (issue 18 item 2); else the parser
        IF length(p_query) <= 512 THEN
            v_emails := regexp_match(
                lower(p_query), '^[[:space:]]*([^[:space:]@<>(),;:"\[\]]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,})[[:space:]]*$'
            );
        END IF;
        IF v_emails IS NOT NULL THEN
            v_emails := v_emails[1:1];
        ELSE
            v_q := crm.search_query_parts(p_query);
            IF cardinality(v_q.emails) > 0 AND cardinality(v_q.words) = 0 AND cardinality(v_q.domains) = 0 THEN
                v_emails := v_q.emails;
            END IF;
        END IF;
        IF v_emails IS NOT NULL THEN
            -- no filters: their normal form is {} (crm.search_plan_filters' checks: the org, done above, and the limit)
            IF p_filters = '{}' THEN
                IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1000 THEN
                    RAISE EXCEPTION 'limit must be between 1 and 1000' USING ERRCODE = 'CX002';
                END IF;
                v_f := '{}';
            ELSE
                v_f := crm.search_plan_filters(p_org_id, 'contacts', p_filters, p_limit);
            END IF;
            IF (v_f - 'after') = '{}' THEN
                v_after_score := split_part(v_f ->> 'after', ':', 1)::double precision;  -- NULL without a cursor
                v_after_id := split_part(v_f ->> 'after', ':', 2)::bigint;
                -- its generic plan (kept for the session) for this one statement: the planner would otherwise plan it
                -- again on every call (~5 index lookups planned, 3 ms under load vs 0.3 ms for the whole call)
                v_plan_mode := current_setting('plan_cache_mode');
                PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
                RETURN QUERY
                SELECT
                    c.id, c.crm_source, c.crm_record_id, c.first_name, c.last_name, c.email, crm.email_domain(c.email),
                    c.phone, c.company_name, c.company_crm_id, c.job_title, c.seniority, c.department, c.lifecycle_stage,
                    c.lead_status, c.has_active_deal, c.deal_stage, c.deal_value, c.is_materialized,
                    c.materialized_contact_id, c.crm_updated_at, co.id, co.domain, co.industry, co.industry_groups,
                    c.owner_crm_id, crm.owner_name(o.first_name, o.last_name, o.email), c.country, co.city, co.country,
                    co.employee_count, c.last_contacted_at, c.last_activity_at, c.crm_created_at,
                    2.0::double precision, (2.0::double precision)::text || ':' || c.id::text
                FROM (
                    SELECT m.id FROM (
                        SELECT c1.id FROM crm.contact_index AS c1
                        WHERE c1.org_id = p_org_id AND c1.deleted_at IS NULL AND c1.email = ANY(v_emails)
                        LIMIT crm.search_candidate_cap()
                    ) AS m
                    WHERE v_after_score IS NULL OR 2.0 < v_after_score OR (2.0 = v_after_score AND m.id > v_after_id)
                    ORDER BY m.id
                    LIMIT p_limit
                ) AS r
                INNER JOIN crm.contact_index AS c ON c.org_id = p_org_id AND c.id = r.id AND c.deleted_at IS NULL
                LEFT JOIN crm.company_index AS co
                    ON
                        co.org_id = c.org_id AND co.crm_source = c.crm_source AND co.crm_record_id = c.company_crm_id
                        AND co.deleted_at IS NULL
                LEFT JOIN crm.crm_owner AS o
                    ON o.org_id = c.org_id AND o.crm_source = c.crm_source AND o.owner_id = c.owner_crm_id
                ORDER BY c.id;
                PERFORM set_config('plan_cache_mode', v_plan_mode, true);
                RETURN;
            END IF;
        END IF;
    END IF;
    RETURN QUERY
    SELECT
        c.id, c.crm_source, c.crm_record_id, c.first_name, c.last_name, c.email, crm.email_domain(c.email),
        c.phone, c.company_name, c.company_crm_id, c.job_title, c.seniority, c.department, c.lifecycle_stage,
        c.lead_status, c.has_active_deal, c.deal_stage, c.deal_value, c.is_materialized,
        c.materialized_contact_id, c.crm_updated_at, co.id, co.domain, co.industry, co.industry_groups,
        c.owner_crm_id, crm.owner_name(o.first_name, o.last_name, o.email), c.country, co.city, co.country,
        co.employee_count, c.last_contacted_at, c.last_activity_at, c.crm_created_at,
        r.score, r.score::text || ':' || c.id::text
    FROM crm.search_contact_ids(p_org_id, p_query, p_filters, p_limit) WITH ORDINALITY AS r (id, score, ord)
    INNER JOIN crm.contact_index AS c ON c.org_id = p_org_id AND c.id = r.id AND c.deleted_at IS NULL
    LEFT JOIN crm.company_index AS co
        ON
            co.org_id = c.org_id AND co.crm_source = c.crm_source AND co.crm_record_id = c.company_crm_id
            AND co.deleted_at IS NULL
    LEFT JOIN crm.crm_owner AS o ON o.org_id = c.org_id AND o.crm_source = c.crm_source AND o.owner_id = c.owner_crm_id
    ORDER BY r.ord;
END
$$;

------------------------------------------------------------------------------------------------------------
-- The copilot's entry point (companies and deals: index/search_records.sql)
------------------------------------------------------------------------------------------------------------

-- The copilot's search: interpret p_query, search its subject (contacts, companies or deals) with the filters and
-- text it found. Returns {"interpretation": <crm.interpret_query>, "subject", "results": [<search_contacts /
-- search_companies / search_deals rows>], "next_cursor"}; the words not understood are in the interpretation.
-- p_after: the previous page's next_cursor. (crm.search_contacts never interprets its text; in psql use
-- crm.interpret_query + crm.search_contacts to see rows as a table.)
CREATE OR REPLACE FUNCTION crm.search(
    p_org_id uuid, p_query text, p_limit integer DEFAULT 50, p_after text DEFAULT NULL
)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_i jsonb := crm.interpret_query(p_org_id, p_query);
    v_filters jsonb := v_i -> 'filters';
    v_rows json;
    v_next text;
BEGIN
    IF p_after IS NOT NULL THEN
        v_filters := v_filters || jsonb_build_object('after', p_after);
    END IF;
    -- the rows as json, in the order the search function returns them (an aggregate over one function scan), and
    -- the whole answer made jsonb once: building jsonb row by row (to_jsonb, jsonb_agg, then jsonb_build_object
    -- copying the rows again) cost 0.4-0.6 ms more at 50 rows (issue 18 item 1); the same jsonb
    -- (tests/test_search.py). The next cursor: the last row's, when the page is full.
    IF v_i ->> 'subject' = 'companies' THEN
        SELECT json_agg(r), (array_agg(r.cursor))[p_limit] INTO v_rows, v_next
        FROM crm.search_companies(p_org_id, v_i ->> 'text', v_filters, p_limit) AS r;
    ELSIF v_i ->> 'subject' = 'deals' THEN
        SELECT json_agg(r), (array_agg(r.cursor))[p_limit] INTO v_rows, v_next
        FROM crm.search_deals(p_org_id, v_i ->> 'text', v_filters, p_limit) AS r;
    ELSE
        SELECT json_agg(r), (array_agg(r.cursor))[p_limit] INTO v_rows, v_next
        FROM crm.search_contacts(p_org_id, v_i ->> 'text', v_filters, p_limit) AS r;
    END IF;
    RETURN json_build_object(
        'interpretation', v_i,
        'subject', v_i ->> 'subject',
        'results', coalesce(v_rows, '[]'),
        'next_cursor', v_next
    )::jsonb;
END
$$;

------------------------------------------------------------------------------------------------------------
-- Entity resolution
------------------------------------------------------------------------------------------------------------

-- Who is "Stan from Acme" / "jane@acme.com" / "Jane Doe"? Candidates best first, with a score in 0..1 and a
-- reason. The text is interpreted (crm.interpret_query) for a company / domain; materialized contacts
-- (already engaged) rank higher (+0.1), then contacts with an open deal (+0.03).
CREATE OR REPLACE FUNCTION crm.resolve_contact(p_org_id uuid, p_text text, p_limit integer DEFAULT 5)
RETURNS TABLE (
    id bigint,
    crm_source text,
    crm_record_id text,
    first_name text,
    last_name text,
    email text,
    company_name text,
    job_title text,
    is_materialized boolean,
    materialized_contact_id uuid,
    has_active_deal boolean,
    score double precision,
    reason text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_i jsonb;
    v_filters jsonb;
    v_text text;
    v_emails text[] := '{}';
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_text_size('query', p_text, crm.input_cap('query'));
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 100 THEN
        RAISE EXCEPTION 'limit must be between 1 and 100' USING ERRCODE = 'CX002';
    END IF;
    -- the text's emails (none without an '@': no parser call then; issue 18)
    IF strpos(p_text, '@') > 0 THEN
        v_emails := (crm.search_query_parts(p_text)).emails;
    END IF;
    IF cardinality(v_emails) > 0 THEN
        v_text := array_to_string(v_emails, ' ');
        v_filters := '{}';
    ELSE
        v_i := crm.interpret_query(p_org_id, p_text);
        v_text := v_i ->> 'text';
        -- only what identifies a person: company and domain
        v_filters := (
            SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') FROM jsonb_each(v_i -> 'filters') AS e
            WHERE e.key IN ('company', 'domain', 'company_domain', 'email_domain')
        );
        IF v_text = '' THEN
            v_text := coalesce(p_text, '');
            v_filters := '{}';
        END IF;
    END IF;
    RETURN QUERY
    WITH named AS MATERIALIZED (
        SELECT s.*, 1 AS pass FROM crm.search_contacts(p_org_id, v_text, v_filters, least(p_limit * 4, 200)) AS s
    ),

    hits AS (
        SELECT n.* FROM named AS n
        UNION ALL
        -- the company / domain matched nobody: resolve on the name alone (this search runs only then: the
        -- condition is a one-time filter; the first search is not run again to find out, issue 18)
        SELECT s.*, 2 FROM crm.search_contacts(p_org_id, v_text, '{}', least(p_limit * 4, 200)) AS s
        WHERE v_filters <> '{}' AND NOT EXISTS (SELECT 1 FROM named)
    )
    SELECT
        h.id, h.crm_source, h.crm_record_id, h.first_name, h.last_name, h.email, h.company_name, h.job_title,
        h.is_materialized, h.materialized_contact_id, h.has_active_deal,
        round(least(1.0, h.score / CASE WHEN h.score >= 2 THEN 3.2 ELSE 1.6 END
            + CASE WHEN h.is_materialized THEN 0.1 ELSE 0 END
            + CASE WHEN h.has_active_deal THEN 0.03 ELSE 0 END)::numeric, 4)::double precision AS score,
        concat_ws(
            '; ',
            CASE WHEN h.email = ANY(v_emails) THEN 'exact email' END,
            CASE WHEN v_text <> '' AND h.email <> ALL(v_emails) THEN
                format('%s matches %s', quote_literal(concat_ws(' ', h.first_name, h.last_name)), quote_literal(v_text)) END,
            CASE WHEN h.pass = 1 AND v_filters ? 'company' THEN
                format('company %s matches %s', quote_literal(coalesce(h.company_name, '')),
                    (SELECT string_agg(quote_literal(x), ' or ') FROM jsonb_array_elements_text(v_filters -> 'company') AS x)) END,
            CASE WHEN h.pass = 1 AND v_filters ? 'domain' THEN format('domain %s', coalesce(h.email_domain, h.company_domain)) END,
            CASE WHEN h.pass = 2 THEN 'no contact at the company named; matched on the name only' END,
            CASE WHEN h.is_materialized THEN 'materialized' END,
            CASE WHEN h.has_active_deal THEN 'open deal' END
        )
    FROM hits AS h
    ORDER BY 12 DESC, h.id
    LIMIT p_limit;
END
$$;
