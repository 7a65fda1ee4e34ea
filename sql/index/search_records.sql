-- index/search_records.sql: company and deal search over the tier-1 index.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).
--
--   crm.search_companies(p_org_id uuid, p_query text, p_filters jsonb DEFAULT '{}', p_limit int DEFAULT 50)
--   crm.search_deals(p_org_id uuid, p_query text, p_filters jsonb DEFAULT '{}', p_limit int DEFAULT 50)
--
-- Split from index/search.sql (contacts, the shared filter and plan helpers, crm.search, entity resolution),
-- whose header describes how searches run, their results, pagination and security; everything there applies
-- here. The plan builders below use its helpers (crm.search_query_parts, crm.search_plan_filters,
-- crm.search_record_conditions, crm.run_search_plan), so this file is applied after it (sql/areas.txt).

------------------------------------------------------------------------------------------------------------
-- Companies
------------------------------------------------------------------------------------------------------------

-- How a company search runs (see crm.search_contact_plan). Tiers: 0 domains (also of emails in the text)
-- and names having every word (the last also as a prefix); 1 names matching every word by trigram word
-- similarity >= 0.3; 2 names matching every word by double metaphone ("stirpe" -> Stripe).
CREATE OR REPLACE FUNCTION crm.search_company_plan(p_org_id uuid, p_query text, p_filters jsonb, p_limit integer)
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
    v_name text := 'crm.norm_text(co.name)';
    v_w2 text[];
    v_w3 text[];
    v_after_id bigint;
BEGIN
    v_f := crm.search_plan_filters(p_org_id, 'companies', p_filters, p_limit);
    v_q := crm.search_query_parts(p_query);

    v_where := ARRAY[format('co.org_id = %L', p_org_id), 'co.deleted_at IS NULL'];
    v_cond := crm.search_company_condition(p_org_id, v_f);
    IF v_cond IS NOT NULL THEN
        v_where := v_where || v_cond;
    END IF;
    v_where := v_where || crm.search_record_conditions(p_org_id, 'co', v_f);
    v_base := array_to_string(v_where, ' AND ');
    v_after_id := split_part(v_f ->> 'after', ':', 2)::bigint;  -- NULL without a cursor

    -- an email in the text means its domain
    v_q.domains := ARRAY(SELECT DISTINCT d FROM unnest(v_q.domains || ARRAY(SELECT split_part(e, '@', 2) FROM unnest(v_q.emails) AS e)) AS d);
    v_w2 := ARRAY(SELECT w FROM unnest(v_q.words) AS w WHERE length(w) >= 2);
    v_w3 := ARRAY(SELECT w FROM unnest(v_q.words) AS w WHERE length(w) >= 3);

    IF cardinality(v_q.domains) = 0 AND cardinality(v_w2) = 0 THEN
        RETURN jsonb_build_object('mode', 'filter', 'sql', format(
            'SELECT co.id, 0::double precision AS score FROM crm.company_index AS co WHERE %s AND co.id > %s ORDER BY co.id LIMIT %s',
            v_base, coalesce(v_after_id, 0), p_limit
        ));
    END IF;

    IF cardinality(v_q.domains) > 0 THEN
        v_sources := v_sources || jsonb_build_object('tier', 0, 'name', 'domain', 'cond', format('co.domain = ANY(%L::text[])', v_q.domains));
    END IF;
    IF cardinality(v_w2) > 0 THEN
        v_sources := v_sources || jsonb_build_object('tier', 0, 'name', 'words',
            'cond', crm.search_company_name_condition(ARRAY[v_q.phrase], 'words'));
    END IF;
    IF cardinality(v_w3) BETWEEN 1 AND 4 AND cardinality(v_w3) = cardinality(v_w2) THEN
        v_sources := v_sources || jsonb_build_object(
            'tier', 1, 'name', 'trigram', 'cond', crm.search_trigram_condition(v_w3, v_name)
        );
    END IF;
    IF cardinality(v_w2) BETWEEN 1 AND 4 THEN
        v_sources := v_sources || jsonb_build_object('tier', 2, 'name', 'phonetic',
            'cond', crm.search_company_name_condition(ARRAY[v_q.phrase], 'phonetic'));
    END IF;

    -- per word: the best of its word similarity to the name and (x0.5) the domain, +0.3 when it sounds
    -- like a word of the name; averaged; plus 0.25 x similarity of the whole text to the name, 2 for a
    -- domain match
    v_score := format(
        $s$round((
            CASE WHEN co.domain = ANY(%1$L::text[]) THEN 2.0 ELSE 0 END
            + %2$s
            + CASE WHEN %3$L <> '' THEN 0.25 * crm.trgm_sim(%3$L, x.nm) ELSE 0 END
        )::numeric, 4)::double precision$s$,
        v_q.domains,
        coalesce((
            SELECT '(' || string_agg(format(
                'greatest(crm.trgm_word_sim(%1$L, x.nm), 0.5 * crm.trgm_word_sim(%1$L, co.domain), 0)'
                ' + CASE WHEN x.pk @> ARRAY[%2$L] THEN 0.3 ELSE 0 END',
                w, coalesce(crm.word_phonetic_key(w), '-')
            ), ' + ') || format(') / %s', cardinality(v_q.words))
            FROM unnest(v_q.words) AS w
        ), '0'),
        v_q.phrase
    );
    RETURN jsonb_build_object(
        'mode', 'text',
        'sources', crm.search_plan_sources('crm.company_index', 'co', v_base, v_sources, crm.search_candidate_cap()),
        'score_sql', crm.search_plan_score_sql(
            'crm.company_index', 'co', p_org_id, v_score, v_name || ' AS nm, crm.name_phonetic_keys(co.name) AS pk',
            v_f, p_limit
        )
    );
END
$$;

-- Candidate ids and scores, best first: ids and scores only, never row data (SECURITY DEFINER).
CREATE OR REPLACE FUNCTION crm.search_company_ids(p_org_id uuid, p_query text, p_filters jsonb, p_limit integer)
RETURNS TABLE (id bigint, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 50
SET search_path = pg_catalog, pg_temp
SET "pg_trgm.word_similarity_threshold" = '0.3'
SET enable_seqscan = off
AS $$
BEGIN
    IF p_org_id IS NOT NULL AND crm.current_org_id() IS NULL AND NOT crm.session_sees_every_org() THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT r.id, r.score FROM crm.run_search_plan(crm.search_company_plan(p_org_id, p_query, p_filters, p_limit)) AS r;
END
$$;

-- Companies matching p_query (name words with typos, domain) and p_filters, best first.
CREATE OR REPLACE FUNCTION crm.search_companies(
    p_org_id uuid, p_query text, p_filters jsonb DEFAULT '{}', p_limit integer DEFAULT 50
)
RETURNS TABLE (
    id bigint,
    crm_source text,
    crm_record_id text,
    name text,
    domain text,
    industry text,
    industry_groups text[],
    employee_count integer,
    annual_revenue numeric,
    city text,
    country text,
    is_materialized boolean,
    materialized_company_id uuid,
    crm_updated_at timestamptz,
    region text,
    description text,
    tags text[],
    owner_crm_id text,
    owner_name text,
    crm_created_at timestamptz,
    score double precision,
    cursor text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_text_size('query', p_query, crm.input_cap('query'));
    RETURN QUERY
    SELECT
        co.id, co.crm_source, co.crm_record_id, co.name, co.domain, co.industry, co.industry_groups,
        co.employee_count, co.annual_revenue, co.city, co.country, co.is_materialized,
        co.materialized_company_id, co.crm_updated_at, co.region, co.description, co.tags, co.owner_crm_id,
        crm.owner_name(o.first_name, o.last_name, o.email), co.crm_created_at,
        r.score, r.score::text || ':' || co.id::text
    FROM crm.search_company_ids(p_org_id, p_query, p_filters, p_limit) WITH ORDINALITY AS r (id, score, ord)
    INNER JOIN crm.company_index AS co ON co.org_id = p_org_id AND co.id = r.id AND co.deleted_at IS NULL
    LEFT JOIN crm.crm_owner AS o ON o.org_id = co.org_id AND o.crm_source = co.crm_source AND o.owner_id = co.owner_crm_id
    ORDER BY r.ord;
END
$$;

------------------------------------------------------------------------------------------------------------
-- Deals
------------------------------------------------------------------------------------------------------------

-- How a deal search runs (see crm.search_contact_plan): filters on the deal (stage and pipeline by label or id,
-- open / won, amount, close date, owner, created, lists) and on its company (name, domain, industry group, place,
-- size, revenue: an id list or a semi-join); text matches every word of the deal's name (whole words, the last as a
-- prefix; deals are few next to contacts, so no index), ranked by similarity to the name.
CREATE OR REPLACE FUNCTION crm.search_deal_plan(p_org_id uuid, p_query text, p_filters jsonb, p_limit integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    v_f jsonb;
    v_q record;
    v_where text[];
    v_base text;
    v_cond text;
    v_w2 text[];
    v_after_id bigint;
BEGIN
    v_f := crm.search_plan_filters(p_org_id, 'deals', p_filters, p_limit);
    v_q := crm.search_query_parts(p_query);
    -- a domain or an email in the text names the deal's company (its domain)
    IF cardinality(v_q.domains) + cardinality(v_q.emails) > 0 THEN
        v_f := v_f || jsonb_build_object('company_domain', (
            SELECT jsonb_agg(DISTINCT x ORDER BY x) FROM (
                SELECT jsonb_array_elements_text(coalesce(v_f -> 'company_domain', '[]')) AS x
                UNION SELECT unnest(v_q.domains)
                UNION SELECT split_part(e, '@', 2) FROM unnest(v_q.emails) AS e
            ) AS u
        ));
    END IF;
    v_where := ARRAY[format('d.org_id = %L', p_org_id), 'd.deleted_at IS NULL']
        || crm.search_record_conditions(p_org_id, 'd', v_f);
    v_cond := crm.search_company_condition(p_org_id, v_f);
    IF v_cond IS NOT NULL AND (v_f ? 'company' OR v_f ? 'company_domain') THEN
        v_where := v_where || crm.search_related_company_condition(p_org_id, 'd', v_cond);
    ELSIF v_cond IS NOT NULL THEN
        v_where := v_where || format(
            'EXISTS (SELECT 1 FROM crm.company_index AS co WHERE co.org_id = d.org_id AND co.crm_source = d.crm_source'
            ' AND co.crm_record_id = d.company_crm_id AND co.deleted_at IS NULL AND %s)',
            v_cond
        );
    END IF;
    v_base := array_to_string(v_where, ' AND ');
    v_after_id := split_part(v_f ->> 'after', ':', 2)::bigint;
    v_w2 := ARRAY(SELECT w FROM unnest(v_q.words) AS w WHERE length(w) >= 2);
    IF cardinality(v_w2) = 0 THEN
        RETURN jsonb_build_object('mode', 'filter', 'sql', format(
            'SELECT d.id, 0::double precision AS score FROM crm.deal_index AS d WHERE %s AND d.id > %s ORDER BY d.id LIMIT %s',
            v_base, coalesce(v_after_id, 0), p_limit
        ));
    END IF;
    RETURN jsonb_build_object(
        'mode', 'text',
        'sources', crm.search_plan_sources('crm.deal_index', 'd', v_base, jsonb_build_array(jsonb_build_object(
            'tier', 0, 'name', 'words', 'cond', (
                SELECT string_agg(format('crm.norm_text(d.name) ~ %L', '\m' || w || CASE WHEN t.ord < cardinality(v_w2) THEN '\M' ELSE '' END), ' AND ')
                FROM unnest(v_w2) WITH ORDINALITY AS t (w, ord)
            )
        )), crm.search_candidate_cap()),
        'score_sql', crm.search_plan_score_sql(
            'crm.deal_index', 'd', p_org_id,
            format('round(crm.trgm_sim(%L, x.nm)::numeric, 4)::double precision', v_q.phrase),
            'crm.norm_text(d.name) AS nm', v_f, p_limit
        )
    );
END
$$;

-- Candidate ids and scores, best first: ids and scores only, never row data (SECURITY DEFINER).
CREATE OR REPLACE FUNCTION crm.search_deal_ids(p_org_id uuid, p_query text, p_filters jsonb, p_limit integer)
RETURNS TABLE (id bigint, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
ROWS 50
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
BEGIN
    IF p_org_id IS NOT NULL AND crm.current_org_id() IS NULL AND NOT crm.session_sees_every_org() THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT r.id, r.score FROM crm.run_search_plan(crm.search_deal_plan(p_org_id, p_query, p_filters, p_limit)) AS r;
END
$$;

-- Deals matching p_query (words of the deal name) and p_filters (crm.search_filter_types('deals')), best first, with
-- their stage and pipeline labels, owner name and company. Cursor pagination as for contacts.
CREATE OR REPLACE FUNCTION crm.search_deals(
    p_org_id uuid, p_query text, p_filters jsonb DEFAULT '{}', p_limit integer DEFAULT 50
)
RETURNS TABLE (
    id bigint,
    crm_source text,
    crm_record_id text,
    name text,
    stage text,
    stage_label text,
    pipeline text,
    pipeline_label text,
    amount numeric,
    close_date date,
    is_open boolean,
    is_closed boolean,
    owner_crm_id text,
    owner_name text,
    company_crm_id text,
    company_id bigint,
    company_name text,
    company_domain text,
    crm_created_at timestamptz,
    crm_updated_at timestamptz,
    score double precision,
    cursor text
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM crm.assert_org(p_org_id);
    PERFORM crm.check_text_size('query', p_query, crm.input_cap('query'));
    RETURN QUERY
    SELECT
        d.id, d.crm_source, d.crm_record_id, d.name, d.stage, d.stage_label, d.pipeline, d.pipeline_label, d.amount,
        d.close_date, d.is_active, d.is_closed, d.owner_crm_id, crm.owner_name(o.first_name, o.last_name, o.email),
        d.company_crm_id, co.id, co.name, co.domain, d.crm_created_at, d.crm_updated_at, r.score,
        r.score::text || ':' || d.id::text
    FROM crm.search_deal_ids(p_org_id, p_query, p_filters, p_limit) WITH ORDINALITY AS r (id, score, ord)
    INNER JOIN crm.deal_index AS d ON d.org_id = p_org_id AND d.id = r.id AND d.deleted_at IS NULL
    LEFT JOIN crm.company_index AS co
        ON
            co.org_id = d.org_id AND co.crm_source = d.crm_source AND co.crm_record_id = d.company_crm_id
            AND co.deleted_at IS NULL
    LEFT JOIN crm.crm_owner AS o ON o.org_id = d.org_id AND o.crm_source = d.crm_source AND o.owner_id = d.owner_crm_id
    ORDER BY r.ord;
END
$$;
