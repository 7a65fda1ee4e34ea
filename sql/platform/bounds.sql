-- platform/bounds.sql: how big an input the API accepts (issue 13, "bounded input").
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).
--
-- Every text column and JSON payload an API function takes has a size limit; a bigger value is refused with
-- an error naming the field (CX001 for a row of an upsert batch, with the row; CX002 otherwise) and changes
-- nothing. The limits (crmindex/platform/bounds.py mirrors them so Python callers get the same error early;
-- tests/test_trust_app_role.py checks that both agree):
--
--   characters of a text value (crm.text_cap): CRM ids 200, email 320 (RFC 5321 path), anything else 1,000
--     (names, titles, companies, stages, domains, numbers and timestamps given as text)
--   crm.input_cap(...):
--     rows          10,000 rows in one upsert batch        rows_bytes   32 MB of JSON text in one upsert batch
--     payload       64 KB of JSON text: a write-back payload, the fields of update_contact / create_contact,
--                   search filters
--     enrichment    256 KB of JSON text per provider payload; 1 MB for all providers of one record
--     properties    1 MB of JSON text: the CRM properties of one materialized record
--     query         65,536 characters of search / interpret / resolve text (the search reads the first 512)
--     refs          1,000 references in one request_materialization call
--     name          1,000 characters: actor names, activation names, providers are shorter (40)

-- What an email address looks like to crmindex (one place for SQL and Python: crmindex/platform/bounds.py reads
-- this definition from this file): something without '@' or white space, '@', a domain with a dot whose last label
-- has no dot. Deliberately loose (CRMs hold odd but deliverable addresses); it refuses what cannot be one. White
-- space is spelled out (ASCII) rather than \s, whose meaning depends on the database's LC_CTYPE and differs from
-- Python's: both languages read this pattern the same way in every database.
CREATE OR REPLACE FUNCTION crm.email_pattern() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '^[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+\.[^@ \t\n\r\f\v.]+$';

-- p (already trimmed) looks like an email address (crm.email_pattern). Inlined where it is used.
CREATE OR REPLACE FUNCTION crm.is_email(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p ~ crm.email_pattern();

-- The CRMs crmindex speaks to (crmindex/crm/registry.py has one entry each; the tables' CHECK constraints
-- name the same list).
CREATE OR REPLACE FUNCTION crm.crm_sources() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['hubspot', 'attio'];

-- p_source, or CX002 when it names no CRM of crm.crm_sources() (NULL too).
CREATE OR REPLACE FUNCTION crm.check_source(p_source text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_source IS NULL OR NOT p_source = ANY(crm.crm_sources()) THEN
        RAISE EXCEPTION 'unknown CRM source %', coalesce(quote_literal(left(p_source, 40)), 'NULL')
            USING ERRCODE = 'CX002', HINT = 'use ' || array_to_string(crm.crm_sources(), ' or ');
    END IF;
    RETURN p_source;
END
$$;

-- The longest text, in characters, a column (or JSON key) of the API accepts.
CREATE OR REPLACE FUNCTION crm.text_cap(p_column text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN p_column IN (
        'crm_record_id', 'company_crm_id', 'owner_crm_id', 'deal_crm_id', 'contact_crm_id', 'contact_crm_ids',
        'merged_into', 'dedupe_key'
    ) THEN 200
    WHEN p_column IN ('email', 'match_key') THEN 320
    ELSE 1000
END;

-- The other limits (see the header); NULL for a name it does not know.
CREATE OR REPLACE FUNCTION crm.input_cap(p_what text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE p_what
    WHEN 'rows' THEN 10000
    WHEN 'rows_bytes' THEN 33554432
    WHEN 'payload' THEN 65536
    WHEN 'enrichment' THEN 262144
    WHEN 'enrichment_total' THEN 1048576
    WHEN 'properties' THEN 1048576
    WHEN 'query' THEN 65536
    WHEN 'refs' THEN 1000
    WHEN 'name' THEN 1000
END;

-- p_value, or CX002 naming p_field when it is longer than p_cap characters (default: crm.text_cap(p_field)).
CREATE OR REPLACE FUNCTION crm.check_text_size(p_field text, p_value text, p_cap integer DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_cap integer := coalesce(p_cap, crm.text_cap(p_field));
BEGIN
    IF length(p_value) > v_cap THEN
        RAISE EXCEPTION '% is longer than % characters (%)', left(p_field, 100), v_cap, length(p_value)
            USING ERRCODE = 'CX002', DETAIL = format('field=%s', left(p_field, 100));
    END IF;
    RETURN p_value;
END
$$;

-- p_value, or CX002 naming p_field when its JSON text is longer than crm.input_cap(p_cap) bytes.
CREATE OR REPLACE FUNCTION crm.check_json_size(p_field text, p_value jsonb, p_cap text DEFAULT 'payload')
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_cap integer := crm.input_cap(p_cap);
    v_size integer := octet_length(p_value::text);
BEGIN
    IF v_size > v_cap THEN
        RAISE EXCEPTION '% is larger than % bytes of JSON (%)', left(p_field, 100), v_cap, v_size
            USING ERRCODE = 'CX002', DETAIL = format('field=%s', left(p_field, 100));
    END IF;
    RETURN p_value;
END
$$;

-- p_row (a JSON object of column -> value), or CX002 naming the first key whose string or number value is
-- longer than crm.text_cap(key) characters. p_what names the object in the message ('fields', 'row').
CREATE OR REPLACE FUNCTION crm.check_text_fields(p_what text, p_row jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_key text;
BEGIN
    IF jsonb_typeof(p_row) = 'object' THEN
        SELECT e.key INTO v_key FROM jsonb_each(p_row) AS e
        WHERE jsonb_typeof(e.value) IN ('string', 'number') AND length(e.value #>> '{}') > crm.text_cap(e.key)
        ORDER BY e.key LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION '% % is longer than % characters', p_what, left(v_key, 100), crm.text_cap(v_key)
                USING ERRCODE = 'CX002', DETAIL = format('field=%s', left(v_key, 100));
        END IF;
    END IF;
    RETURN p_row;
END
$$;
