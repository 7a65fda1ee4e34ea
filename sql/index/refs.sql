-- index/refs.sql: which indexed contacts a caller's references name (index ids, CRM record ids, emails): the one
-- rule behind crmindex/index/refs.py and every API function that takes a contact reference (write-backs,
-- activities, materialization).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- Which indexed contacts do these references name? p_refs: index ids ('#123'), CRM record ids, or emails
-- (crmindex/index/refs.py and the API functions that take a contact reference use this one rule):
--   * '#<digits>': the contact with that index id (any CRM);
--   * text with an '@': the contact with that email (lower-cased), limited to p_source when given;
--   * anything else: the contact with that CRM record id (limited to p_source); a bare string of digits that
--     matches no CRM id falls back to the index id (HubSpot ids are numeric).
-- Among several matches a live record comes before a deleted one, then the most recently updated. One row per
-- reference, in order (ord from 1); id and the rest are NULL where nothing matches. A reference that is empty,
-- longer than 320 characters or a malformed '#' id is CX002; more than crm.input_cap('refs') references too.
-- Runs as the caller: under row-level security for crm_app (which may execute it), every org for workers.
CREATE OR REPLACE FUNCTION crm.resolve_contact_refs(p_org_id uuid, p_refs text[], p_source text DEFAULT NULL)
RETURNS TABLE (
    ord integer,
    ref text,
    id bigint,
    crm_source text,
    crm_record_id text,
    email text,
    is_materialized boolean,
    deleted boolean
)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_kinds text[] := '{}';
    v_values text[] := '{}';
    v_text text;
BEGIN
    PERFORM crm.assert_org(p_org_id);
    IF coalesce(cardinality(p_refs), 0) > crm.input_cap('refs') THEN
        RAISE EXCEPTION 'at most % references at once (got %)', crm.input_cap('refs'), cardinality(p_refs)
            USING ERRCODE = 'CX002';
    END IF;
    FOR i IN 1..coalesce(cardinality(p_refs), 0) LOOP
        v_text := btrim(p_refs[i]);
        IF v_text IS NULL OR v_text = '' OR length(v_text) > 320 THEN
            RAISE EXCEPTION 'a contact reference is an index id, a CRM record id or an email' USING ERRCODE = 'CX002';
        ELSIF left(v_text, 1) = '#' THEN
            IF ltrim(v_text, '#') !~ '^[0-9]{1,18}$' THEN
                RAISE EXCEPTION 'not an index id: %', quote_literal(left(v_text, 40)) USING ERRCODE = 'CX002';
            END IF;
            v_kinds := v_kinds || 'id'::text;
            v_values := v_values || ltrim(v_text, '#');
        ELSIF strpos(v_text, '@') > 0 THEN
            v_kinds := v_kinds || 'email'::text;
            v_values := v_values || lower(v_text);
        ELSE
            v_kinds := v_kinds || 'crm'::text;
            v_values := v_values || v_text;
        END IF;
    END LOOP;
    RETURN QUERY
    WITH wanted AS (
        SELECT w.n::integer AS n, w.kind, w.val,
            CASE WHEN w.kind = 'id' OR (w.kind = 'crm' AND w.val ~ '^[0-9]{1,18}$') THEN w.val::bigint END AS as_id
        FROM unnest(v_kinds, v_values) WITH ORDINALITY AS w (kind, val, n)
    ),
    -- MATERIALIZED: read once. Inlined (a CTE named once is), the LATERAL below ran this whole statement, its
    -- window included, again for every reference: 1,000 references took 80 s at 20K contacts (bench.materialize).
    found AS MATERIALIZED (
        SELECT c.id, c.crm_source, c.crm_record_id, c.email, c.is_materialized, c.deleted_at IS NOT NULL AS deleted,
            (p_source IS NULL OR c.crm_source = p_source) AS in_source,
            row_number() OVER (ORDER BY c.deleted_at IS NOT NULL, c.crm_updated_at DESC NULLS LAST, c.crm_source) AS rank
        FROM crm.contact_index AS c
        WHERE c.org_id = p_org_id AND (
            c.id = ANY(ARRAY(SELECT x.as_id FROM wanted AS x WHERE x.as_id IS NOT NULL))
            OR (
                (
                    c.email = ANY(ARRAY(SELECT x.val FROM wanted AS x WHERE x.kind = 'email'))
                    -- every CRM named: the unique key (org_id, crm_source, crm_record_id) is then read at the record
                    -- ids, not along the org's whole range filtering them (130 ms per call at 200K contacts: every
                    -- copilot write-back by CRM id, crm.update_contact, under bench.mixed_load). The list is
                    -- crm.crm_sources()'s, written out: this runs as the caller, and crm_app may not call that one.
                    OR (
                        c.crm_source = ANY(CASE WHEN p_source IS NULL THEN ARRAY['hubspot', 'attio'] ELSE ARRAY[p_source] END)
                        AND c.crm_record_id = ANY(ARRAY(SELECT x.val FROM wanted AS x WHERE x.kind = 'crm'))
                    )
                )
                AND (p_source IS NULL OR c.crm_source = p_source)
            )
        )
    )
    SELECT w.n, p_refs[w.n], m.id, m.crm_source, m.crm_record_id, m.email, m.is_materialized, m.deleted
    FROM wanted AS w
    LEFT JOIN LATERAL (
        SELECT f.* FROM found AS f
        WHERE CASE w.kind
            WHEN 'id' THEN f.id = w.as_id
            WHEN 'email' THEN f.in_source AND f.email = w.val
            ELSE (f.in_source AND f.crm_record_id = w.val) OR f.id = w.as_id
        END
        -- a CRM id before the index-id fallback of a numeric reference
        ORDER BY w.kind = 'crm' AND NOT (f.in_source AND f.crm_record_id = w.val), f.rank
        LIMIT 1
    ) AS m ON TRUE
    ORDER BY w.n;
END
$$;
