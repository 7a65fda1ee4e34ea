-- The interpreter's vocabulary (issue 17): the words and phrases crm.interpret_query (index/interpret.sql) knows,
-- the words it skips or says it cannot act on, and its small helpers (places, amounts, periods, counts). Current
-- definitions, re-applied after the migrations whenever this file changes (sql/README.md); applied before
-- index/interpret.sql, after index/places.sql (crm.interpret_place reads the place maps).

-- Words and phrases the interpreter knows: (phrase, filter key, values). Phrases are normalized text
-- (crm.norm_text); longer phrases win. Industry words come from crm.industry_term_group (0002).
CREATE OR REPLACE FUNCTION crm.interpret_vocabulary() RETURNS TABLE (phrase text, key text, vals text[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT
        v.phrase,
        v.key,
        v.vals
    FROM (
        VALUES
        ('vp', 'seniority', ARRAY['vp']), ('vps', 'seniority', ARRAY['vp']),
        ('svp', 'seniority', ARRAY['vp']), ('svps', 'seniority', ARRAY['vp']),
        ('evp', 'seniority', ARRAY['vp']), ('evps', 'seniority', ARRAY['vp']),
        ('avp', 'seniority', ARRAY['vp']), ('avps', 'seniority', ARRAY['vp']),
        ('vice president', 'seniority', ARRAY['vp']), ('vice presidents', 'seniority', ARRAY['vp']),
        ('vice-president', 'seniority', ARRAY['vp']), ('vice-presidents', 'seniority', ARRAY['vp']),
        ('c suite', 'seniority', ARRAY['c_suite']), ('c-suite', 'seniority', ARRAY['c_suite']),
        ('c level', 'seniority', ARRAY['c_suite']), ('c-level', 'seniority', ARRAY['c_suite']),
        ('cxo', 'seniority', ARRAY['c_suite']), ('cxos', 'seniority', ARRAY['c_suite']),
        ('chief', 'seniority', ARRAY['c_suite']), ('chiefs', 'seniority', ARRAY['c_suite']),
        ('founder', 'seniority', ARRAY['founder']), ('founders', 'seniority', ARRAY['founder']),
        ('co-founder', 'seniority', ARRAY['founder']), ('co-founders', 'seniority', ARRAY['founder']),
        ('cofounder', 'seniority', ARRAY['founder']), ('cofounders', 'seniority', ARRAY['founder']),
        ('co founder', 'seniority', ARRAY['founder']), ('co founders', 'seniority', ARRAY['founder']),
        ('owner', 'seniority', ARRAY['owner']), ('owners', 'seniority', ARRAY['owner']),
        ('business owner', 'seniority', ARRAY['owner']), ('business owners', 'seniority', ARRAY['owner']),
        ('company owner', 'seniority', ARRAY['owner']), ('company owners', 'seniority', ARRAY['owner']),
        ('proprietor', 'seniority', ARRAY['owner']), ('proprietors', 'seniority', ARRAY['owner']),
        ('partner', 'seniority', ARRAY['partner']), ('partners', 'seniority', ARRAY['partner']),
        ('head', 'seniority', ARRAY['head']), ('heads', 'seniority', ARRAY['head']),
        ('director', 'seniority', ARRAY['director']), ('directors', 'seniority', ARRAY['director']),
        ('manager', 'seniority', ARRAY['manager']), ('managers', 'seniority', ARRAY['manager']),
        ('senior', 'seniority', ARRAY['senior']), ('seniors', 'seniority', ARRAY['senior']),
        ('junior', 'seniority', ARRAY['entry']), ('juniors', 'seniority', ARRAY['entry']),
        ('entry level', 'seniority', ARRAY['entry']), ('entry-level', 'seniority', ARRAY['entry']),
        ('intern', 'seniority', ARRAY['intern']), ('interns', 'seniority', ARRAY['intern']),
        ('executives', 'seniority', ARRAY['owner', 'founder', 'c_suite', 'vp']),
        ('execs', 'seniority', ARRAY['owner', 'founder', 'c_suite', 'vp']),
        ('leadership', 'seniority', ARRAY['owner', 'founder', 'c_suite', 'partner', 'vp', 'head']),
        ('decision makers', 'seniority', ARRAY['owner', 'founder', 'c_suite', 'partner', 'vp', 'head', 'director']),
        ('decision-makers', 'seniority', ARRAY['owner', 'founder', 'c_suite', 'partner', 'vp', 'head', 'director']),
        ('leaders', 'seniority', ARRAY['owner', 'founder', 'c_suite', 'partner', 'vp', 'head', 'director']),
        ('leader', 'seniority', ARRAY['owner', 'founder', 'c_suite', 'partner', 'vp', 'head', 'director']),
        ('engineering', 'department', ARRAY['engineering']), ('engineers', 'department', ARRAY['engineering']),
        ('engineer', 'department', ARRAY['engineering']), ('developers', 'department', ARRAY['engineering']),
        ('developer', 'department', ARRAY['engineering']), ('software', 'department', ARRAY['engineering']),
        ('r d', 'department', ARRAY['engineering']), ('tech', 'department', ARRAY['engineering']),
        ('technology', 'department', ARRAY['engineering']),
        ('sales', 'department', ARRAY['sales']), ('salespeople', 'department', ARRAY['sales']),
        ('sales reps', 'department', ARRAY['sales']), ('sales rep', 'department', ARRAY['sales']),
        ('sales representatives', 'department', ARRAY['sales']), ('sdr', 'department', ARRAY['sales']),
        ('sdrs', 'department', ARRAY['sales']), ('bdr', 'department', ARRAY['sales']),
        ('bdrs', 'department', ARRAY['sales']), ('salesmen', 'department', ARRAY['sales']),
        ('sellers', 'department', ARRAY['sales']), ('account executives', 'department', ARRAY['sales']),
        ('business development', 'department', ARRAY['sales']), ('revenue', 'department', ARRAY['sales']),
        ('marketing', 'department', ARRAY['marketing']), ('marketers', 'department', ARRAY['marketing']),
        ('growth', 'department', ARRAY['marketing']),
        ('finance', 'department', ARRAY['finance']), ('accounting', 'department', ARRAY['finance']),
        ('accountants', 'department', ARRAY['finance']),
        ('hr', 'department', ARRAY['hr']), ('human resources', 'department', ARRAY['hr']),
        ('people ops', 'department', ARRAY['hr']), ('recruiting', 'department', ARRAY['hr']),
        ('recruiters', 'department', ARRAY['hr']), ('talent', 'department', ARRAY['hr']),
        ('operations', 'department', ARRAY['operations']), ('ops', 'department', ARRAY['operations']),
        ('product', 'department', ARRAY['product']), ('design', 'department', ARRAY['design']),
        ('designers', 'department', ARRAY['design']), ('legal', 'department', ARRAY['legal']),
        ('lawyers', 'department', ARRAY['legal']), ('counsel', 'department', ARRAY['legal']),
        ('customer success', 'department', ARRAY['customer_success']),
        ('support', 'department', ARRAY['customer_success']),
        ('data', 'department', ARRAY['data']), ('analytics', 'department', ARRAY['data']),
        ('data science', 'department', ARRAY['data']), ('data scientists', 'department', ARRAY['data']),
        ('customers', 'lifecycle_stage', ARRAY['customer']), ('customer', 'lifecycle_stage', ARRAY['customer']),
        ('clients', 'lifecycle_stage', ARRAY['customer']),
        ('leads', 'lifecycle_stage', ARRAY['lead']),
        ('subscribers', 'lifecycle_stage', ARRAY['subscriber']),
        -- HubSpot's internal names and the short forms (both are seen in the index)
        ('mql', 'lifecycle_stage', ARRAY['marketingqualifiedlead', 'mql']),
        ('mqls', 'lifecycle_stage', ARRAY['marketingqualifiedlead', 'mql']),
        ('marketing qualified leads', 'lifecycle_stage', ARRAY['marketingqualifiedlead', 'mql']),
        ('sql', 'lifecycle_stage', ARRAY['salesqualifiedlead', 'sql']),
        ('sqls', 'lifecycle_stage', ARRAY['salesqualifiedlead', 'sql']),
        ('sales qualified leads', 'lifecycle_stage', ARRAY['salesqualifiedlead', 'sql']),
        ('opportunities', 'lifecycle_stage', ARRAY['opportunity']),
        ('evangelists', 'lifecycle_stage', ARRAY['evangelist']),
        ('materialized', 'is_materialized', ARRAY['true']),
        ('enriched', 'is_materialized', ARRAY['true'])
    ) AS v (phrase, key, vals);
END;

-- Words that carry no search meaning in a copilot request.
CREATE OR REPLACE FUNCTION crm.interpret_stop_words() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[
    'find', 'show', 'list', 'get', 'give', 'me', 'all', 'any', 'every', 'the', 'a', 'an', 'our', 'your',
    'in', 'at', 'of', 'from', 'for', 'with', 'who', 'whom', 'that', 'which', 'are', 'is', 'was', 'were', 'be',
    'work', 'works', 'working', 'worked', 'employed', 'people', 'persons', 'person', 'contacts', 'contact',
    'folks', 'everyone', 'anyone', 'someone', 'crm', 'please', 'and', 'or', 'to', 'on', 'companies', 'company',
    'firms', 'firm', 'there', 'those', 'these', 'them', 'can', 'you', 'i', 'we', 'us', 'what', 'where',
    'search', 'look', 'lookup', 'up', 'named', 'called', 'by', 'also', 'having', 'has', 'have', 'some',
    'startups', 'businesses', 'organizations', 'orgs', 'sector', 'industry', 'space', 'it', 'based', 'whose',
    'about', 'like', 'do', 'does', 'know', 'who''s', 'whos', 'any', 'into', 'accounts', 'account', 'startup',
    'business', 'agencies', 'cos', 'located', 'headquartered', 'individuals', 'do', 'did', 'currently', 'right',
    'now', 'just', 'only', 'ones', 'one', 'we''ve', 'weve', 'we''re', 'they', 'their', 'its', 'region', 'regions',
    -- request verbs and fillers ("pull up Stan Lee", "what's closing", "accounts sitting in negotiation")
    'pull', 'bring', 'fetch', 'display', 'view', 'see', 'tell', 'check', 'locate', 'want', 'need', 'let', 'lets',
    'let''s', 'could', 'would', 'should', 'what''s', 'whats', 'sitting', 'marked', 'tagged', 'flagged', 'anything',
    'anybody', 'somebody', 'everybody', 'records', 'record', 'hq', 'hqd', 'hq''d', 'out', 'sorry', 'thanks', 'details',
    'info', 'information', 'employing', 'employ', 'employs', 'employees', 'employee', 'officer', 'officers', 'live',
    'lives', 'living', 'reside', 'resides', 'residing', 'title', 'titles', 'titled', 'job', 'contains', 'containing',
    'includes', 'including', 'role', 'roles'
];

-- Words naming what the index does not hold (size adjectives, rankings, temperature, funding, technologies used,
-- "my"): the interpreter returns them as "not understood" instead of searching for them as text. 'hiring' and
-- 'using' take the words after them along ("hiring engineers"), 'series' and 'fortune' the next one ("series b").
CREATE OR REPLACE FUNCTION crm.interpret_unsupported_words() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[
    'small', 'smaller', 'smallest', 'large', 'larger', 'big', 'bigger', 'biggest', 'largest', 'huge', 'tiny',
    'best', 'top', 'worst', 'good', 'great', 'hot', 'warm', 'cold', 'stale', 'stalled', 'stuck', 'dormant', 'vip',
    'vips', 'important', 'strategic', 'fast-growing', 'growing', 'high-growth', 'funded', 'recently', 'hiring',
    'using', 'uses', 'use', 'fortune', 'linkedin', 'profile', 'profiles', 'twitter', 'webinar', 'how', 'many',
    'much', 'my', 'mine', 'territory', 'series', 'seed', 'unicorn', 'unicorns', 'public', 'private', 'interested',
    'promising', 'likely', 'happy', 'unhappy', 'churned', 'churning', 'at-risk', 'risky'
];

-- Is p (normalized words) a place the location filter knows: a region, a country (a two-letter code only for the UK
-- and the US: "in" and "it" are words), a known city or state, or a city or region of one of the org's companies?
CREATE OR REPLACE FUNCTION crm.interpret_place(p_org_id uuid, p text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- plpgsql, not sql: its plan (with the place maps folded in) is kept for the session; a sql function called
    -- from crm.interpret_query would be planned again in every transaction (issue 18)
    RETURN p IS NOT NULL AND p <> '' AND (p = 'us' OR NOT p = any(crm.interpret_stop_words())) AND (
        crm.place_regions() ? p
        OR (crm.country_code(p) IS NOT NULL AND (length(p) > 3 OR p IN ('uk', 'us', 'usa', 'uae', 'u s', 'u k')))
        OR crm.place_cities() ? p
        OR crm.place_subdivisions() ? p
        OR EXISTS (
            SELECT 1 FROM crm.company_index AS co
            WHERE co.org_id = p_org_id AND crm.norm_text(co.city) = p AND co.deleted_at IS NULL
        )
        OR EXISTS (
            SELECT 1 FROM crm.company_index AS co
            WHERE co.org_id = p_org_id AND lower(btrim(co.region)) = p AND co.deleted_at IS NULL
        )
    );
END
$$;

-- A number as written ("10,000", "1.5" with "m", "5" with "k"); NULL when p_num is NULL.
CREATE OR REPLACE FUNCTION crm.interpret_amount(p_num text, p_unit text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(replace(p_num, ',', ''), '')::numeric * CASE p_unit
    WHEN 'k' THEN 1e3 WHEN 'thousand' THEN 1e3 WHEN 'm' THEN 1e6 WHEN 'mm' THEN 1e6 WHEN 'mn' THEN 1e6
    WHEN 'million' THEN 1e6 WHEN 'bn' THEN 1e9 WHEN 'b' THEN 1e9 WHEN 'billion' THEN 1e9 ELSE 1
END;

-- The first day of the p_unit (week: Monday; month; quarter; year) that holds p_day.
CREATE OR REPLACE FUNCTION crm.interpret_period_start(p_unit text, p_day date) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE p_unit
    WHEN 'day' THEN p_day
    WHEN 'week' THEN p_day - (extract(ISODOW FROM p_day)::integer - 1)
    ELSE date_trunc(p_unit, p_day::timestamp)::date
END;

-- p_day moved by p_n units (day, week, month, quarter, year; months clamp to the month's last day).
CREATE OR REPLACE FUNCTION crm.interpret_shift(p_day date, p_n integer, p_unit text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (p_day + CASE p_unit
    WHEN 'quarter' THEN make_interval(months => 3 * p_n)
    WHEN 'year' THEN make_interval(years => p_n)
    WHEN 'month' THEN make_interval(months => p_n)
    WHEN 'week' THEN make_interval(days => 7 * p_n)
    ELSE make_interval(days => p_n)
END)::date;

-- "30" / "a" / "one" / "two" ... -> an integer (NULL when not a count).
CREATE OR REPLACE FUNCTION crm.interpret_count(p text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN btrim(p) ~ '^[0-9]{1,5}$' THEN btrim(p)::integer
    WHEN btrim(p) IN ('a', 'an', 'one') THEN 1
    WHEN btrim(p) = 'two' THEN 2
    WHEN btrim(p) = 'three' THEN 3
    WHEN btrim(p) = 'six' THEN 6
    WHEN btrim(p) = 'twelve' THEN 12
END;
