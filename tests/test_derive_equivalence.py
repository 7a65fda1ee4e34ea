"""crm.company_industry_groups computes its two passes on arrays for speed (issue 18, sql/index/derive.sql); the
definition is crm.industry_evidence / crm.industry_groups_of, composed as below. This test holds the two to the same
groups on every row of tests/eval/companies.csv (its input columns only), with variants that reach the other paths:
another row's industry (applies_to_groups keywords, exclusions), no description (name and domain), no industry, tags,
and long run-together descriptions (the 4,000-character cut, many keywords of one group containing one another).
It fails when the logic of one place changes without the other (a rule added to crm.industry_groups_of only, say).
"""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg

Conn = psycopg.Connection[tuple[object, ...]]

COMPANIES = Path(__file__).parent / "eval" / "companies.csv"

# The two-pass composition crm.company_industry_groups computed before it ran on arrays (migration 0021, issue 18).
REFERENCE = r"""
CREATE FUNCTION pg_temp.reference_groups(
    p_industry text, p_name text, p_domain text, p_description text, p_tags text[]
) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_industry text := nullif(btrim(upper(regexp_replace(p_industry, '[^A-Za-z0-9]+', '_', 'g')), '_'), '');
    v_pattern text := crm.industry_name_pattern(p_name);
    v_desc text := crm.norm_text(left(p_description, 4000));
    v_text text[];
    v_name text[] := '{}';
    v_first text[];
    v_out text[];
BEGIN
    IF v_pattern IS NOT NULL AND v_desc IS NOT NULL THEN
        v_desc := regexp_replace(v_desc, v_pattern, ' . ', 'g');
    END IF;
    v_text := crm.industry_text_terms(concat_ws(' . ', v_desc, array_to_string(p_tags, ' . ')));
    IF cardinality(v_text) = 0 THEN
        v_name := crm.industry_text_terms(concat_ws(' . ', p_name, translate(crm.norm_domain(p_domain), '.-', '  ')));
    END IF;
    v_first := crm.industry_groups_of(crm.industry_evidence(v_industry, v_text, v_name, NULL));
    v_out := crm.industry_groups_of(crm.industry_evidence(v_industry, v_text, v_name, v_first));
    IF cardinality(v_out) = 0 AND cardinality(v_name) = 0 THEN
        -- the description gave no group: read it with the name and domain
        v_name := crm.industry_text_terms(concat_ws(' . ', p_name, translate(crm.norm_domain(p_domain), '.-', '  ')));
        v_first := crm.industry_groups_of(crm.industry_evidence(v_industry, v_text, v_name, NULL));
        v_out := crm.industry_groups_of(crm.industry_evidence(v_industry, v_text, v_name, v_first));
    END IF;
    RETURN v_out;
END
$$;
"""

# crm.industry_text_terms as the SQL query it was (0019): words, folded, and every run of 2 or 3 of them.
TERMS = r"""
CREATE FUNCTION pg_temp.reference_terms(p text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    WITH w AS (
        SELECT t.w, t.n
        FROM unnest(string_to_array(
            crm.industry_fold(btrim(regexp_replace(coalesce(crm.norm_text(p), ''), '[^[:alnum:]]+', ' ', 'g'))), ' '
        )) WITH ORDINALITY AS t (w, n)
        WHERE t.w <> ''
    )
    SELECT coalesce(array_agg(DISTINCT x.term ORDER BY x.term), '{}')
    FROM (
        SELECT w.w AS term FROM w
        UNION ALL
        SELECT a.w || ' ' || b.w FROM w AS a INNER JOIN w AS b ON b.n = a.n + 1
        UNION ALL
        SELECT a.w || ' ' || b.w || ' ' || c.w
        FROM w AS a INNER JOIN w AS b ON b.n = a.n + 1 INNER JOIN w AS c ON c.n = a.n + 2
    ) AS x
$$;
"""

Row = tuple[str | None, str | None, str | None, str | None, list[str] | None]


def _rows() -> list[Row]:
    with COMPANIES.open(newline="") as f:
        ev = list(csv.DictReader(f))
    n = len(ev)
    inds = [r["industry"] or None for r in ev]
    descs = [r["description"] or "" for r in ev]
    rows: list[Row] = []
    for i, r in enumerate(ev):
        name, domain, desc = r["name"], r["domain"] or None, r["description"] or None
        tags = [t.strip() for t in r["tags"].split(";")] if r["tags"] else None
        rows.append((inds[i], name, domain, desc, None))
        rows.append((inds[(i * 7 + 3) % n], name, domain, desc, tags if i % 4 == 0 else None))
        if i % 2 == 0:
            rows.append((inds[i], name, domain, None, None))
        if i % 3 == 0:
            rows.append((None, name, domain, desc, None))
        if i % 25 == 0:
            rows.append((inds[i], name, None, " ".join(descs[(i + j) % n] for j in range(40)), None))
    rows += [
        (None, None, None, None, None),
        ("", "", "", "", []),
        ("Computer Software", "Acme", "acme.ai", "   ", None),
        (" banking ", "-Lead Bank-", None, "-Lead Bank- is a bank.", ["", "Fintech"]),
        (None, "Ünïcode Payments", "ünï.de", "Zahlungsverkehr für Händler: payments & café software", None),
    ]
    return rows


def test_company_industry_groups_equals_its_definition(db: Conn) -> None:
    db.execute(REFERENCE)
    db.execute(TERMS)
    db.execute("CREATE TEMP TABLE q (industry text, name text, domain text, description text, tags text[])")
    rows = _rows()
    with db.cursor() as cur, cur.copy("COPY q FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)
    db.execute(
        "CREATE TEMP TABLE d AS SELECT q.*,"
        " crm.company_industry_groups(industry, name, domain, description, tags) AS g,"
        " pg_temp.reference_groups(industry, name, domain, description, tags) AS r FROM q"
    )
    diffs = db.execute(
        "SELECT industry, name, left(description, 60), g, r FROM d WHERE g IS DISTINCT FROM r"
    ).fetchall()
    assert diffs == [], f"{len(diffs)} of {len(rows)} differ, e.g. {diffs[:5]}"
    grouped = db.execute("SELECT count(*) FROM d WHERE g <> '{}'").fetchone()
    # the rows say something (a classifier that returned '{}' for everything would pass the comparison)
    assert grouped is not None and isinstance(grouped[0], int) and grouped[0] > len(rows) // 2
    terms = db.execute(
        "SELECT count(*) FROM q WHERE crm.industry_text_terms(description) IS DISTINCT FROM pg_temp.reference_terms(description)"
        " OR crm.industry_text_terms(name) IS DISTINCT FROM pg_temp.reference_terms(name)"
    ).fetchone()
    assert terms == (0,)
