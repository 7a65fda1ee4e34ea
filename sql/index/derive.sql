-- index/derive.sql: write-time derivations used by the index triggers and the search functions.
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- unaccent() is STABLE; an IMMUTABLE wrapper with the dictionary named by schema is safe to use in
-- indexes and generated values. Built dynamically because the extension may live in public or in
-- another schema (Supabase: extensions).
DO $wrap$
DECLARE
    v_schema text;
BEGIN
    SELECT n.nspname INTO v_schema
    FROM pg_extension AS e INNER JOIN pg_namespace AS n ON e.extnamespace = n.oid
    WHERE e.extname = 'unaccent';
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION crm.unaccent_text(p text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT '
        'RETURN %I.unaccent(%L::regdictionary, p)',
        v_schema, v_schema || '.unaccent'
    );
END
$wrap$;

--
--   crm.norm_text(p text) -> text                     accent-folded, lower-cased, punctuation-free text
--   crm.title_tokens(p text) -> text[]                the words the title classifiers read
--   crm.title_seniority(p_title text) -> text         owner .. intern (Apollo's buckets); NULL when blank
--   crm.title_department(p_title text) -> text        engineering .. executive, other; NULL when blank
--   crm.title_tokens_seniority / crm.title_tokens_department(tokens text[]): the same of crm.title_tokens(p_title)
--   crm.phonetic_key(p text) -> text                  double-metaphone code of each word
--   crm.company_industry_groups(p_industry, p_name, p_domain, p_description, p_tags) -> text[]  {banking,fintech,...}
--   crm.industry_term_group(p_term text) -> text      "fin-tech", "banks", "health care" -> a group name
--   crm.industry_group_industries(p_group_name text) -> text[]      the HubSpot industries of a group
--   crm.refresh_company_industry_groups(p_org_id uuid) -> bigint   recompute after the taxonomy changes
--   tables crm.hubspot_industry, crm.industry_group, crm.industry_group_member, crm.industry_keyword,
--          crm.industry_term (global reference data: no org_id, no RLS, readable by crm_app / crm_worker)
--
-- The SQL functions have SQL-standard bodies (RETURN / BEGIN ATOMIC): parsed once, at CREATE time, with the
-- migrator's search_path (crm, public, extensions), their references bound by OID. So they resolve the same
-- from any session and inside index expressions, and pg_depend records what they use. The two PL/pgSQL
-- classifiers (title_seniority, title_department) call only schema-qualified crm functions and built-ins.
--
-- Speed: the title classifiers run for every contact written (~1M rows at ingest). PostgreSQL regular
-- expressions cost 3-30 us per test on a short title, so a CASE over a dozen regexes costs ~100 us a row.
-- The classifiers therefore use a single regex split: the title is folded to words (unaccent, lower,
-- regexp_split_to_array on [^a-z0-9]+), and each word and each pair of neighbouring words is looked up in
-- a constant jsonb map (a binary search). Word pairs carry the context that single words cannot:
-- "vice president" (vp, not president), "business partner" / "partner manager" (not partner), "product
-- owner" (manager, not owner), "chief of staff" (not C-level), "staff engineer" (senior; "staff
-- accountant" is not).

------------------------------------------------------------------------------------------------------------
-- Text normalization
------------------------------------------------------------------------------------------------------------

-- Accent-folded and lower-cased; typographic apostrophes become '; ASCII punctuation other than '@', '.',
-- '-' and the apostrophe, white space and common typographic punctuation become spaces; runs of them
-- collapse to one space; trimmed. NULL stays NULL. Letters of any script are kept (the character class
-- names the punctuation, so the result does not depend on the database collation).
-- Not STRICT, so that the planner can inline it (NULL still gives NULL).
CREATE OR REPLACE FUNCTION crm.norm_text(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN btrim(
    regexp_replace(
        translate(lower(CASE WHEN octet_length(p) = length(p) THEN p ELSE crm.unaccent_text(p) END), '‘`´', ''''''''),
        '[][:space:]!"#$%&()*+,/:;<=>?[\\^_{|}~¡¿«»·•…–—‐‑‒―“”„‚′″§°©®™¦¬]+',
        ' ', 'g'
    )
);

-- The words of a job title, as the classifiers read them: accent-folded, lower-cased, cut before " to " /
-- " office of " (so that "Executive Assistant to the CEO" or "Program Manager, Office of the CTO" are not
-- read as C-level), split on anything that is not a-z or 0-9 ("V.P." -> v, p; "Sr.Manager" -> sr,
-- manager; "C.E.O." -> ceo). Not STRICT, so that it is inlined into the classifiers.
CREATE OR REPLACE FUNCTION crm.title_tokens(p text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_remove(
    regexp_split_to_array(
        split_part(
            split_part(
                replace(
                    replace(
                        replace(
                            replace(
                                -- unaccent only when there is something to fold (saves ~1.5 us on ASCII titles)
                                lower(CASE WHEN octet_length(p) = length(p) THEN p ELSE crm.unaccent_text(p) END),
                                'c.e.o', 'ceo'
                            ),
                            'c.f.o', 'cfo'
                        ),
                        'c.o.o', 'coo'
                    ),
                    'c.t.o', 'cto'
                ),
                ' to ', 1
            ),
            ' office of ', 1
        ),
        '[^a-z0-9]+'
    ),
    ''
);

------------------------------------------------------------------------------------------------------------
-- Job title -> seniority
------------------------------------------------------------------------------------------------------------
-- Buckets (Apollo's person_seniorities). A title naming several roles gets the highest one:
--     owner > founder > c_suite > partner > vp > head > director > manager > senior > entry > intern
-- ("Founder & CEO" -> founder, "CTO & EVP" -> c_suite, "VP-Head of IT" -> vp, "Senior Manager" -> manager).
-- Decisions a sales team would otherwise trip over:
--   * c_suite: CxO abbreviations, "Chief <X> Officer", "Chief Executive", President (not Vice President),
--     board roles (Chairman, Board Member, Non-Executive Director, Vice Chair), Managing Director (the
--     head of a company in Europe and the rank just below partner in banks), Directeur Général,
--     Geschäftsführer, Director General. Not "Chief of Staff" (director), "Chief Architect" (senior).
--   * partner: Partner, Managing / Senior / General / Equity / Associate / Venture Partner, Socio, Associé,
--     a bare "Principal". Not the job nouns "HR Business Partner", "Client Partner", "Partner Manager",
--     "Channel Partner Lead", "Partner Marketing Manager" (those get their own level).
--   * vp: VP, V.P., Vice President, Vice-President, SVP, EVP, AVP (assistant VP: vp, although banks rank it
--     below director), GVP, RVP. Whole words only: "MVP Program Manager", "VPN Engineer" are not vp.
--   * head: Head of X, Head - X, Global Head, Head Chef, Leiter, Jefe ("Head Office ..." is not).
--   * director: Director, Dir., Associate / Executive / Art Director, Director of Photography; General
--     Manager / GM (runs a P&L); Chief of Staff.
--   * manager: Manager, Mgr, Supervisor, Team Lead(er), Product Owner, Gerente, Responsable.
--   * senior: Senior, Sr., Snr, Staff <engineer/scientist/designer/...> (not Staff Accountant), Principal
--     <X>, Lead <X> (an individual contributor; "Team Lead" is a manager), levels III / IV, a Chief who is
--     not an officer, Founding Engineer.
--   * intern: Intern, Internship, Trainee, Apprentice, Working Student, Werkstudent, Praktikant, Stagiaire,
--     Student, Summer Associate / Analyst.
--   * entry: every other title (Engineer, Account Executive, Associate, Assistant, Jr., levels I / II,
--     "Assistant to the VP", "Executive Assistant to the CEO").
--   * NULL: NULL, blank, or a placeholder (n/a, none, unknown, tbd).

-- The buckets, highest first (a bucket's rank below is 12 minus its position: owner 11 .. intern 1). The one list
-- of seniorities: the classifier names its result from it, crm.normalize_search_filters checks filters against it,
-- and crmindex/index/search.py reads this definition from this file (filter model, LLM tool schema).
CREATE OR REPLACE FUNCTION crm.search_seniorities() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[
    'owner', 'founder', 'c_suite', 'partner', 'vp', 'head', 'director', 'manager', 'senior', 'entry', 'intern'
];

-- A title the classifiers give NULL: no word, or a placeholder (n/a, none, unknown, tbd...). p_tokens as
-- crm.title_tokens returns them. Inlined into the classifiers.
CREATE OR REPLACE FUNCTION crm.title_is_blank(p_tokens text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN cardinality(p_tokens) = 0
OR array_to_string(p_tokens, ' ') IN ('n a', 'na', 'none', 'null', 'unknown', 'tbd', 'nil', 'not provided');

-- term (one word or two neighbouring words) -> rank: 11 owner, 10 founder, 9 c_suite, 8 partner, 7 vp,
-- 6 head, 5 director, 4 manager, 3 senior, 2 entry, 1 intern, 0 = this word pair ranks nothing. A word's
-- rank comes from the word pairs it is part of when there are any, else from the word alone; '^word' is a
-- word that ranks only as the first word of the title ("Partner, Litigation", not "Measurement Partner").
CREATE OR REPLACE FUNCTION crm.title_seniority_terms() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '{
        "owner": 11, "owners": 11, "coowner": 11, "co owner": 11, "proprietor": 11, "proprietress": 11,
        "inhaber": 11, "inhaberin": 11, "proprietaire": 11, "propietario": 11, "propietaria": 11, "dueno": 11,
        "duena": 11, "franchisee": 11, "managing member": 11,
        "founder": 10, "founders": 10, "cofounder": 10, "cofounders": 10, "co founder": 10, "co founders": 10,
        "founding partner": 10, "fundador": 10, "fundadora": 10, "cofundador": 10, "cofundadora": 10,
        "co fundador": 10, "fondateur": 10, "fondatrice": 10, "cofondateur": 10, "cofondatrice": 10,
        "co fondateur": 10, "grunder": 10, "grunderin": 10, "mitgrunder": 10, "mitgrunderin": 10, "gruender": 10,
        "ceo": 9, "cfo": 9, "coo": 9, "cto": 9, "cio": 9, "cmo": 9, "cro": 9, "cpo": 9, "cso": 9, "cco": 9,
        "cdo": 9, "cao": 9, "clo": 9, "cgo": 9, "cxo": 9, "ciso": 9, "chro": 9, "cpto": 9, "caio": 9, "cdao": 9,
        "cno": 9, "cbo": 9, "president": 9, "presidente": 9, "presidenta": 9, "chairman": 9, "chairwoman": 9,
        "chairperson": 9, "chairmen": 9, "pdg": 9, "geschaftsfuhrer": 9, "geschaftsfuhrerin": 9,
        "geschaeftsfuehrer": 9, "vorstand": 9, "vorstandsvorsitzender": 9, "prasident": 9, "prasidentin": 9,
        "chief executive": 9, "executive chair": 9, "executive chairman": 9, "vice chair": 9, "vice chairman": 9,
        "vice chairwoman": 9, "managing director": 9, "director general": 9, "directora general": 9,
        "directeur general": 9, "directrice generale": 9, "diretor geral": 9, "diretora geral": 9,
        "board member": 9, "board members": 9, "the board": 9, "board of": 9, "board director": 9,
        "non executive": 9, "nonexecutive": 9, "non exec": 9, "independent director": 9, "independent board": 9,
        "^partner": 8, "^partners": 8, "^socio": 8, "^socia": 8, "^associe": 8, "^associee": 8,
        "^gesellschafter": 8, "^gesellschafterin": 8, "managing principal": 8, "managing partner": 8,
        "managing partners": 8, "senior partner": 8, "general partner": 8, "general partners": 8,
        "equity partner": 8, "associate partner": 8, "name partner": 8, "junior partner": 8,
        "salaried partner": 8, "venture partner": 8, "operating partner": 8, "limited partner": 8,
        "executive partner": 8, "tax partner": 8, "audit partner": 8, "advisory partner": 8, "deal partner": 8,
        "investment partner": 8, "practice partner": 8, "and partner": 8, "sr partner": 8, "lead partner": 8,
        "office managing": 8, "partner in": 8,
        "vp": 7, "vps": 7, "svp": 7, "evp": 7, "avp": 7, "gvp": 7, "rvp": 7, "cvp": 7, "srvp": 7, "v p": 7,
        "vicepresident": 7, "vicepresidente": 7, "vicepresidenta": 7, "vizeprasident": 7, "vizeprasidentin": 7,
        "vice president": 7, "vice presidents": 7, "vice presidente": 7, "vice presidenta": 7, "vice pres": 7,
        "head": 6, "heads": 6, "leiter": 6, "leiterin": 6, "abteilungsleiter": 6, "abteilungsleiterin": 6,
        "bereichsleiter": 6, "bereichsleiterin": 6, "jefe": 6, "jefa": 6,
        "director": 5, "directors": 5, "dir": 5, "directeur": 5, "directrice": 5, "directora": 5, "diretor": 5,
        "diretora": 5, "direktor": 5, "direktorin": 5, "chief of": 5, "of staff": 5, "general manager": 5,
        "gm": 5, "gerente general": 5,
        "partner manager": 4, "partner managers": 4, "manager": 4, "managers": 4, "mgr": 4, "mngr": 4,
        "gerente": 4, "gerant": 4, "gerante": 4, "responsable": 4, "supervisor": 4, "superintendent": 4,
        "foreman": 4, "forewoman": 4, "teamleiter": 4, "teamleiterin": 4, "teamlead": 4, "teamleader": 4,
        "team lead": 4, "team leader": 4, "group lead": 4, "squad lead": 4, "shift lead": 4, "product owner": 4,
        "managing editor": 4, "chef de": 4,
        "partner lead": 3, "senior": 3, "sr": 3, "snr": 3, "principal": 3, "lead": 3, "leader": 3, "iii": 3,
        "iv": 3, "chief": 3, "distinguished": 3, "founding": 3, "staff engineer": 3, "staff software": 3,
        "staff data": 3, "staff scientist": 3, "staff designer": 3, "staff product": 3, "staff machine": 3,
        "staff ml": 3, "staff research": 3, "staff researcher": 3, "staff developer": 3, "staff architect": 3,
        "staff security": 3, "staff backend": 3, "staff frontend": 3, "staff site": 3, "staff infrastructure": 3,
        "staff platform": 3,
        "junior": 2, "jr": 2, "associate": 2, "assistant": 2, "coordinator": 2,
        "intern": 1, "interns": 1, "internship": 1, "trainee": 1, "trainees": 1, "apprentice": 1,
        "apprenticeship": 1, "werkstudent": 1, "werkstudentin": 1, "praktikant": 1, "praktikantin": 1,
        "stagiaire": 1, "becario": 1, "becaria": 1, "estagiario": 1, "estagiaria": 1, "pasante": 1, "student": 1,
        "students": 1, "coop": 1, "working student": 1, "summer associate": 1, "summer analyst": 1, "co op": 1,
        "graduate trainee": 1,
        "process owner": 0, "service owner": 0, "data owner": 0, "system owner": 0, "account owner": 0,
        "control owner": 0, "risk owner": 0, "feature owner": 0, "application owner": 0, "budget owner": 0,
        "content owner": 0, "platform owner": 0, "technical owner": 0, "solution owner": 0, "case owner": 0,
        "ticket owner": 0, "asset owner": 0, "project owner": 0, "founder s": 0, "founders associate": 0,
        "founder associate": 0, "founders office": 0, "business partner": 0, "channel partner": 0,
        "client partner": 0, "strategic partner": 0, "technology partner": 0, "alliance partner": 0,
        "alliances partner": 0, "solutions partner": 0, "solution partner": 0, "learning partner": 0,
        "talent partner": 0, "people partner": 0, "finance partner": 0, "hr partner": 0, "delivery partner": 0,
        "success partner": 0, "customer partner": 0, "implementation partner": 0, "marketing partner": 0,
        "growth partner": 0, "account partner": 0, "referral partner": 0, "reseller partner": 0,
        "integration partner": 0, "training partner": 0, "partner marketing": 0, "partner success": 0,
        "partner sales": 0, "partner development": 0, "partner account": 0, "partner accounts": 0,
        "partner program": 0, "partner programs": 0, "partner enablement": 0, "partner operations": 0,
        "partner ops": 0, "partner solutions": 0, "partner engineer": 0, "partner engineering": 0,
        "partner relations": 0, "partner relationship": 0, "partner ecosystem": 0, "partner support": 0,
        "partner onboarding": 0, "partner experience": 0, "partner integrations": 0, "partner specialist": 0,
        "partner coordinator": 0, "partner executive": 0, "partner channel": 0, "partner network": 0,
        "head office": 0, "head quarters": 0, "head count": 0, "head hunter": 0
    }'::jsonb;

-- PL/pgSQL rather than SQL: a SQL function can only look at each word through a correlated subquery,
-- which PostgreSQL re-initialises on every call (~50 us); this loop costs a few microseconds.
-- Everything it calls is schema-qualified (the body is parsed with the caller's search_path).
CREATE OR REPLACE FUNCTION crm.title_seniority(p_title text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
BEGIN
    RETURN crm.title_tokens_seniority(crm.title_tokens(p_title));
END
$$;

-- The seniority of a title's tokens (crm.title_tokens): the contact derive trigger tokenizes a title once for its
-- seniority and its department (issue 18 item 5: the tokenizer is ~40% of either classifier).
CREATE OR REPLACE FUNCTION crm.title_tokens_seniority(tk text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
DECLARE
    best int := 0;
BEGIN
    IF crm.title_is_blank(tk) THEN
        RETURN NULL;
    END IF;
    FOR i IN 1 .. cardinality(tk) LOOP
        -- the word pairs this word is part of decide its rank when they are known, else the word alone
        best := greatest(best, coalesce(
            greatest(
                (crm.title_seniority_terms() -> (tk[i - 1] || ' ' || tk[i]))::int,
                (crm.title_seniority_terms() -> (tk[i] || ' ' || tk[i + 1]))::int
            ),
            (crm.title_seniority_terms() -> tk[i])::int,
            CASE WHEN i = 1 THEN (crm.title_seniority_terms() -> ('^' || tk[i]))::int END
        ));
    END LOOP;
    IF best < 9 AND tk @> '{chief,officer}' AND NOT tk @> '{chief,of}' THEN
        best := 9;   -- Chief <anything> Officer, but not Chief of Staff
    ELSIF tk = '{principal}' THEN
        best := 8;   -- a bare "Principal" is the partner rank of consulting, VC and architecture firms
    END IF;
    RETURN (crm.search_seniorities())[12 - CASE WHEN best = 0 THEN 2 ELSE best END];   -- no term: entry
END
$$;

------------------------------------------------------------------------------------------------------------
-- Job title -> department
------------------------------------------------------------------------------------------------------------
-- One of crm.search_departments() (NULL when blank). The term with the smallest priority wins:
--   01 a functional C-level role: CTO / Chief Technology Officer -> engineering, CFO -> finance, CIO /
--      CISO -> it, CHRO / Chief People Officer -> hr, CRO -> sales, ...; CEO -> executive
--      ("Co-Founder & CTO" -> engineering, "Founder & CEO" -> executive);
--   02 general management -> executive: President, Founder, Owner, Chairman / board, Chief of Staff;
--   03-14 the functional families, more specific first: hr, legal, sales, it, customer_success,
--      marketing, design, product, data, engineering, finance, operations ("HR Business Partner" -> hr,
--      "Sales Engineer" -> sales, "Technical Account Manager" -> customer_success, "Product Marketing" ->
--      marketing, "Product Designer" -> design, "Data Engineer" -> data, "Sales Operations" -> sales);
--   15 a general rank alone -> executive: Managing Director, General Manager, Executive Director,
--      Partner ("Managing Director, Investment Banking" -> finance);
--   otherwise other ("Consultant", "Director", "Head Chef", "Teacher").

-- The departments: the one list (crm.normalize_search_filters checks filters against it, crmindex/index/search.py
-- reads this definition from this file; tests/test_derive.py checks that every department the term table below
-- and crm.title_department name is in it).
CREATE OR REPLACE FUNCTION crm.search_departments() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[
    'engineering', 'sales', 'marketing', 'finance', 'hr', 'operations', 'product', 'design', 'legal',
    'customer_success', 'it', 'data', 'executive', 'other'
];

-- term (one word or two neighbouring words) -> priority (two digits) then department; 99 = this word pair names
-- nothing.
CREATE OR REPLACE FUNCTION crm.title_department_terms() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '{
        "chief customer": "01customer_success", "chief client": "01customer_success",
        "chief experience": "01customer_success", "chief success": "01customer_success",
        "cdo": "01data", "cdao": "01data", "caio": "01data", "chief data": "01data", "chief analytics": "01data",
        "chief ai": "01data", "chief science": "01data", "chief scientific": "01data",
        "chief design": "01design", "chief creative": "01design",
        "cto": "01engineering", "chief technology": "01engineering", "chief technical": "01engineering",
        "chief engineering": "01engineering", "chief software": "01engineering",
        "ceo": "01executive", "chief executive": "01executive",
        "cfo": "01finance", "chief financial": "01finance", "chief finance": "01finance",
        "chief accounting": "01finance", "chief investment": "01finance", "chief risk": "01finance",
        "chro": "01hr", "chief people": "01hr", "chief human": "01hr", "chief talent": "01hr",
        "chief hr": "01hr", "chief culture": "01hr",
        "cio": "01it", "ciso": "01it", "chief information": "01it", "chief security": "01it",
        "chief cybersecurity": "01it", "chief digital": "01it", "chief it": "01it",
        "clo": "01legal", "chief legal": "01legal", "chief compliance": "01legal", "chief privacy": "01legal",
        "chief ethics": "01legal",
        "cmo": "01marketing", "cgo": "01marketing", "chief marketing": "01marketing",
        "chief growth": "01marketing", "chief brand": "01marketing", "chief communications": "01marketing",
        "chief content": "01marketing",
        "coo": "01operations", "chief operating": "01operations", "chief operations": "01operations",
        "chief supply": "01operations", "chief procurement": "01operations",
        "cpo": "01product", "chief product": "01product",
        "cro": "01sales", "chief revenue": "01sales", "chief sales": "01sales", "chief commercial": "01sales",
        "chief business": "01sales",
        "president": "02executive", "presidente": "02executive", "presidenta": "02executive",
        "founder": "02executive", "founders": "02executive", "cofounder": "02executive",
        "cofounders": "02executive", "co founder": "02executive", "founding partner": "02executive",
        "fundador": "02executive", "fundadora": "02executive", "fondateur": "02executive",
        "fondatrice": "02executive", "grunder": "02executive", "grunderin": "02executive",
        "gruender": "02executive", "owner": "02executive", "owners": "02executive", "coowner": "02executive",
        "co owner": "02executive", "proprietor": "02executive", "inhaber": "02executive",
        "inhaberin": "02executive", "franchisee": "02executive", "managing member": "02executive",
        "chairman": "02executive", "chairwoman": "02executive", "chairperson": "02executive",
        "board": "02executive", "pdg": "02executive", "geschaftsfuhrer": "02executive",
        "geschaftsfuhrerin": "02executive", "vorstand": "02executive", "directeur general": "02executive",
        "directrice generale": "02executive", "non executive": "02executive", "nonexecutive": "02executive",
        "independent director": "02executive", "chief of": "02executive", "of staff": "02executive",
        "managing partner": "02executive",
        "hr": "03hr", "hrbp": "03hr", "people": "03hr", "talent": "03hr", "recruiter": "03hr",
        "recruiters": "03hr", "recruiting": "03hr", "recruitment": "03hr", "sourcer": "03hr",
        "compensation": "03hr", "benefits": "03hr", "diversity": "03hr", "dei": "03hr", "workforce": "03hr",
        "rrhh": "03hr", "personnel": "03hr", "human resources": "03hr", "human resource": "03hr",
        "total rewards": "03hr", "learning development": "03hr", "l d": "03hr", "employee experience": "03hr",
        "employee relations": "03hr",
        "technical account": "04customer_success",
        "legal": "04legal", "counsel": "04legal", "attorney": "04legal", "attorneys": "04legal",
        "lawyer": "04legal", "lawyers": "04legal", "paralegal": "04legal", "solicitor": "04legal",
        "barrister": "04legal", "litigation": "04legal", "litigator": "04legal", "compliance": "04legal",
        "privacy": "04legal", "contract": "04legal", "contracts": "04legal", "avocat": "04legal",
        "abogado": "04legal", "abogada": "04legal", "advogado": "04legal", "advogada": "04legal",
        "rechtsanwalt": "04legal", "rechtsanwaltin": "04legal", "jurist": "04legal", "juriste": "04legal",
        "notary": "04legal", "law": "04legal", "juridique": "04legal", "juridico": "04legal",
        "sales": "05sales", "sdr": "05sales", "bdr": "05sales", "ae": "05sales", "bd": "05sales",
        "channel": "05sales", "alliances": "05sales", "alliance": "05sales", "partnerships": "05sales",
        "partnership": "05sales", "revenue": "05sales", "commercial": "05sales", "comercial": "05sales",
        "ventas": "05sales", "ventes": "05sales", "vertrieb": "05sales", "vendas": "05sales",
        "vendedor": "05sales", "vendedora": "05sales", "presales": "05sales", "account executive": "05sales",
        "business development": "05sales", "account manager": "05sales", "account managers": "05sales",
        "account management": "05sales", "key account": "05sales", "account director": "05sales",
        "partner manager": "05sales", "partner sales": "05sales", "partner development": "05sales",
        "partner success": "05sales", "partner account": "05sales", "client partner": "05sales",
        "pre sales": "05sales", "solutions engineer": "05sales", "solution engineer": "05sales",
        "solutions consultant": "05sales", "solution consultant": "05sales", "inside sales": "05sales",
        "it": "06it", "sysadmin": "06it", "network": "06it", "networking": "06it", "vpn": "06it",
        "helpdesk": "06it", "security": "06it", "cybersecurity": "06it", "cyber": "06it", "infosec": "06it",
        "itsm": "06it", "erp": "06it", "sap": "06it", "servicenow": "06it", "informatique": "06it",
        "information technology": "06it", "systems administrator": "06it", "system administrator": "06it",
        "help desk": "06it", "desktop support": "06it", "service desk": "06it", "information security": "06it",
        "it support": "06it",
        "support": "07customer_success", "cx": "07customer_success", "implementation": "07customer_success",
        "onboarding": "07customer_success", "tam": "07customer_success",
        "customer success": "07customer_success", "customer support": "07customer_success",
        "customer service": "07customer_success", "customer services": "07customer_success",
        "customer care": "07customer_success", "customer experience": "07customer_success",
        "customer happiness": "07customer_success", "customer relations": "07customer_success",
        "customer onboarding": "07customer_success", "client success": "07customer_success",
        "client services": "07customer_success", "client service": "07customer_success",
        "client support": "07customer_success", "client relations": "07customer_success",
        "member services": "07customer_success", "guest services": "07customer_success",
        "marketing": "08marketing", "marketer": "08marketing", "growth": "08marketing", "brand": "08marketing",
        "branding": "08marketing", "content": "08marketing", "seo": "08marketing", "sem": "08marketing",
        "ppc": "08marketing", "communications": "08marketing", "communication": "08marketing",
        "comms": "08marketing", "pr": "08marketing", "advertising": "08marketing", "campaign": "08marketing",
        "campaigns": "08marketing", "copywriter": "08marketing", "community": "08marketing",
        "events": "08marketing", "event": "08marketing", "mercadotecnia": "08marketing",
        "demand gen": "08marketing", "demand generation": "08marketing", "public relations": "08marketing",
        "social media": "08marketing",
        "design": "09design", "designer": "09design", "designers": "09design", "ux": "09design",
        "ui": "09design", "graphic": "09design", "creative": "09design", "illustrator": "09design",
        "visual": "09design", "animator": "09design", "interaction": "09design", "art director": "09design",
        "user experience": "09design", "user research": "09design",
        "product": "10product", "products": "10product", "product owner": "10product",
        "product management": "10product",
        "data": "11data", "analytics": "11data", "bi": "11data", "ml": "11data", "ai": "11data",
        "scientist": "11data", "scientists": "11data", "statistician": "11data", "statistics": "11data",
        "quantitative": "11data", "quant": "11data", "insights": "11data", "mlops": "11data",
        "machine learning": "11data", "business intelligence": "11data", "artificial intelligence": "11data",
        "engineer": "12engineering", "engineers": "12engineering", "engineering": "12engineering",
        "developer": "12engineering", "developers": "12engineering", "development": "12engineering",
        "dev": "12engineering", "devops": "12engineering", "sre": "12engineering", "software": "12engineering",
        "programmer": "12engineering", "architect": "12engineering", "architecture": "12engineering",
        "firmware": "12engineering", "hardware": "12engineering", "frontend": "12engineering",
        "backend": "12engineering", "fullstack": "12engineering", "mobile": "12engineering",
        "ios": "12engineering", "android": "12engineering", "qa": "12engineering", "tester": "12engineering",
        "technology": "12engineering", "technologie": "12engineering", "tecnologia": "12engineering",
        "technical": "12engineering", "tech": "12engineering", "ingenieur": "12engineering",
        "ingeniero": "12engineering", "ingeniera": "12engineering", "engenheiro": "12engineering",
        "entwickler": "12engineering", "informatik": "12engineering", "front end": "12engineering",
        "back end": "12engineering", "full stack": "12engineering", "quality assurance": "12engineering",
        "r d": "12engineering",
        "finance": "13finance", "financial": "13finance", "accounting": "13finance", "accountant": "13finance",
        "accountants": "13finance", "accounts": "13finance", "controller": "13finance",
        "comptroller": "13finance", "treasury": "13finance", "treasurer": "13finance", "audit": "13finance",
        "auditor": "13finance", "tax": "13finance", "payroll": "13finance", "bookkeeper": "13finance",
        "bookkeeping": "13finance", "billing": "13finance", "credit": "13finance", "underwriter": "13finance",
        "underwriting": "13finance", "actuary": "13finance", "actuarial": "13finance", "investment": "13finance",
        "investments": "13finance", "banking": "13finance", "banker": "13finance", "risk": "13finance",
        "finanzas": "13finance", "finances": "13finance", "finanzen": "13finance", "comptable": "13finance",
        "contador": "13finance", "contadora": "13finance", "fp a": "13finance",
        "investor relations": "13finance",
        "operations": "14operations", "ops": "14operations", "operating": "14operations",
        "logistics": "14operations", "procurement": "14operations", "purchasing": "14operations",
        "buyer": "14operations", "facilities": "14operations", "facility": "14operations",
        "office": "14operations", "administrative": "14operations", "admin": "14operations",
        "receptionist": "14operations", "project": "14operations", "projects": "14operations",
        "program": "14operations", "programme": "14operations", "pmo": "14operations",
        "warehouse": "14operations", "manufacturing": "14operations", "production": "14operations",
        "plant": "14operations", "quality": "14operations", "fulfillment": "14operations",
        "inventory": "14operations", "fleet": "14operations", "dispatch": "14operations",
        "operaciones": "14operations", "supply chain": "14operations", "executive assistant": "14operations",
        "personal assistant": "14operations", "office assistant": "14operations",
        "administrative assistant": "14operations",
        "partner": "15executive", "partners": "15executive", "socio": "15executive", "socia": "15executive",
        "associe": "15executive", "associee": "15executive", "gm": "15executive",
        "managing director": "15executive", "general manager": "15executive", "gerente general": "15executive",
        "director general": "15executive", "executive director": "15executive",
        "managing principal": "15executive",
        "vice president": "99other", "vice presidents": "99other", "vice presidente": "99other",
        "vice presidenta": "99other", "business partner": "99other", "head office": "99other"
    }'::jsonb;

-- PL/pgSQL for the same reason as title_seniority.
CREATE OR REPLACE FUNCTION crm.title_department(p_title text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
BEGIN
    RETURN crm.title_tokens_department(crm.title_tokens(p_title));
END
$$;

-- The department of a title's tokens (crm.title_tokens); see crm.title_tokens_seniority.
CREATE OR REPLACE FUNCTION crm.title_tokens_department(tk text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
DECLARE
    best text := '99';
BEGIN
    IF crm.title_is_blank(tk) THEN
        RETURN NULL;
    END IF;
    FOR i IN 1 .. cardinality(tk) LOOP
        best := least(best, coalesce(
            least(
                crm.title_department_terms() ->> (tk[i - 1] || ' ' || tk[i]),
                crm.title_department_terms() ->> (tk[i] || ' ' || tk[i + 1])
            ),
            crm.title_department_terms() ->> tk[i]
        ));
    END LOOP;
    IF best < '99' THEN
        RETURN substr(best, 3);
    ELSIF tk = '{assistant}' THEN
        RETURN 'operations';
    ELSIF tk = '{principal}' THEN
        RETURN 'executive';
    END IF;
    RETURN 'other';
END
$$;

------------------------------------------------------------------------------------------------------------
-- Phonetic key
------------------------------------------------------------------------------------------------------------
-- Space-separated double-metaphone codes of the words of norm_text(p) (apostrophes dropped, '.', '-' and
-- '@' split words): 'Catherine O''Neil-Smith' -> 'K0RN ANL SM0'. Words without a code (digits) are skipped.
-- The SQL-standard body binds fuzzystrmatch's dmetaphone() by OID when this migration runs, wherever the
-- extension lives (public, or extensions on Supabase), so callers need no search_path.
CREATE OR REPLACE FUNCTION crm.phonetic_key(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
BEGIN ATOMIC
    SELECT string_agg(nullif(dmetaphone(w.word), ''), ' ' ORDER BY w.n)
    FROM
        unnest(
            string_to_array(translate(replace(crm.norm_text(p), '''', ''), '.-@', '   '), ' ')
        ) WITH ORDINALITY AS w (word, n)
    WHERE w.word <> '';
END;

------------------------------------------------------------------------------------------------------------
-- Industry groups (the taxonomy tables: migrations 0002 and 0019; extend them from psql, docs/psql-cookbook.md)
------------------------------------------------------------------------------------------------------------
-- A group is a word a user means ("fintech", "saas", "hospitals"), defined by weighted evidence:
--   * the company's HubSpot industry (crm.industry_group_member.weight: BANKING says banking, 1; COMPUTER_SOFTWARE
--     says saas only half: a game studio is filed there too);
--   * whole words and phrases (1 to 3 words, plurals folded) of what the company says about itself: its
--     description and enrichment tags (crm.industry_keyword, field 'description' or 'any'); the description's own
--     mention of the company's name is not read ("Health Warrior makes protein bars" says nothing about health);
--     for a company with neither, its name and domain (field 'name' or 'any'): "Blue River Dental", "acme.ai";
--     a keyword with applies_to_groups counts only for a company whose industry is in one of those groups;
--     negative weights are evidence against ("health insurance" is not fintech);
--   * the groups it implies (crm.industry_group.parents: payments -> fintech -> financial_services): each member
--     child adds 1 to its parents.
-- A company is in every group whose evidence reaches 1. No prefix or substring matching: "Finch", "Finland",
-- "Cardboard", "Ledger Lines" and "Jaipur" match no fintech or AI keyword (tests/eval/companies.csv measures it).

-- Plural folding of the words of a term (also in migration 0019: the generated column industry_keyword.term):
-- "payments" -> "payment", "agencies" -> "agency"; "analytics", "business", "news", "status" stay.
CREATE OR REPLACE FUNCTION crm.industry_fold(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(
    regexp_replace(
        regexp_replace(p, '\m([a-z0-9]{2,})ies\M', '\1y', 'g'),
        '\m([a-z0-9]+(ss|x|ch|sh|z))es\M', '\1', 'g'
    ),
    '\m([a-z0-9]{2,}[a-z0-9])(?<![sui])(?<!ic)(?<!new)s\M', '\1', 'g'
);

-- The terms keywords are matched against: the words of p (accent-folded, lower-case, split at anything but letters
-- and digits, plurals folded) and every run of 2 or 3 neighbouring words. Sorted, distinct. (PL/pgSQL on arrays:
-- the same as a SQL query over the words, without planning that query again for every company written.)
CREATE OR REPLACE FUNCTION crm.industry_text_terms(p text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_w text[] := string_to_array(btrim(regexp_replace(coalesce(crm.norm_text(p), ''), '[^[:alnum:]]+', ' ', 'g')), ' ');
    v_n integer := coalesce(cardinality(v_w), 0);
BEGIN
    -- plurals folded word by word (crm.industry_fold only changes a word ending in s; its regular expressions over a
    -- whole 4,000-character description cost milliseconds)
    v_w := ARRAY(
        SELECT CASE WHEN right(u.w, 1) = 's' THEN crm.industry_fold(u.w) ELSE u.w END
        FROM unnest(v_w) WITH ORDINALITY AS u (w, n)
        ORDER BY u.n
    );
    RETURN ARRAY(
        SELECT DISTINCT x.term
        FROM (
            SELECT u.a AS term FROM unnest(v_w) AS u (a)
            WHERE u.a <> ''
            UNION ALL
            SELECT u.a || ' ' || u.b FROM unnest(v_w[1:v_n - 1], v_w[2:v_n]) AS u (a, b)
            WHERE u.a <> '' AND u.b <> ''
            UNION ALL
            SELECT u.a || ' ' || u.b || ' ' || u.c FROM unnest(v_w[1:v_n - 2], v_w[2:v_n - 1], v_w[3:v_n]) AS u (a, b, c)
            WHERE u.a <> '' AND u.b <> '' AND u.c <> ''
        ) AS x
        ORDER BY x.term
    );
END
$$;

-- A regular expression matching the company's name in its own description, whole or by its leading words (at
-- least two: "Cloud Nine" of "Cloud Nine Bakery", not "Blockchain" of "Blockchain Capital"), on crm.norm_text;
-- NULL when the name has no word.
CREATE OR REPLACE FUNCTION crm.industry_name_pattern(p_name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    v_w text[] := regexp_split_to_array(btrim(coalesce(crm.norm_text(p_name), '')), '[^[:alnum:]]+');
    v_last integer;
    v_prefix text;
    v_parts text[] := '{}';
BEGIN
    FOR i IN REVERSE cardinality(v_w)..1 LOOP
        IF v_w[i] <> '' THEN
            v_last := i;
            EXIT;
        END IF;
    END LOOP;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    FOR i IN 1..v_last LOOP
        CONTINUE WHEN v_w[i] = '';
        v_prefix := CASE WHEN v_prefix IS NULL THEN v_w[i] ELSE v_prefix || '[^[:alnum:]]+' || v_w[i] END;
        IF i >= 2 OR i = v_last THEN
            v_parts := v_prefix || v_parts;
        END IF;
    END LOOP;
    RETURN '\m(' || array_to_string(v_parts, '|') || ')\M';
END
$$;

-- Evidence per group (group -> summed weight) from an industry and the terms of a text and of a name (see
-- crm.company_industry_groups); p_in: the groups a first pass found (NULL: the first pass, which reads only the
-- keywords without applies_to_groups). Of the keywords of a group that match, one that is part of a longer one that
-- matches does not count: the most specific phrase carries its own weight ("open banking" is not "banking").
-- (The definition; crm.company_industry_groups computes the same on arrays.)
CREATE OR REPLACE FUNCTION crm.industry_evidence(p_industry text, p_text text[], p_name text[], p_in text[])
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH k AS (
        SELECT
            k.group_name,
            k.term,
            k.weight
        FROM crm.industry_keyword AS k
        WHERE
            ((k.field <> 'name' AND k.term = any(p_text)) OR (k.field <> 'description' AND k.term = any(p_name)))
            AND CASE
                WHEN p_in IS NULL THEN k.applies_to_groups IS NULL ELSE
                    k.applies_to_groups IS NULL OR k.applies_to_groups && p_in
            END
    )

    SELECT coalesce(jsonb_object_agg(s.group_name, s.score), '{}')
    FROM (
        SELECT
            e.group_name,
            sum(e.weight) AS score
        FROM (
            SELECT
                m.group_name,
                m.weight
            FROM crm.industry_group_member AS m
            WHERE m.industry = p_industry
            UNION ALL
            SELECT
                w.group_name,
                CASE WHEN sum(w.weight) >= 0.999 THEN 1 ELSE 0 END AS weight
            FROM crm.industry_learned_word AS w
            WHERE w.word = any(p_text) OR w.word = any(p_name)
            GROUP BY w.group_name
            UNION ALL
            SELECT
                k.group_name,
                k.weight
            FROM k
            WHERE NOT EXISTS (
                SELECT 1 FROM k AS l
                WHERE
                    l.group_name = k.group_name AND l.term <> k.term
                    AND strpos(' ' || l.term || ' ', ' ' || k.term || ' ') > 0
            )
        ) AS e
        GROUP BY e.group_name
    ) AS s;
END;

-- The groups whose evidence reaches 1, closed over crm.industry_group.parents (each member group adds 1 to each of
-- its parents, once: payments -> fintech -> financial_services) and without the groups a member group excludes
-- (crm.industry_group.excluded_by: a SaaS company is not a professional-services firm), unless the excluded group's own
-- evidence reaches 3 (three times what a group needs: the company says so outright, as a game-streaming platform is
-- media as well as gaming or a conglomerate names each business; tests/eval/README.md, "Readings decided"). Sorted.
CREATE OR REPLACE FUNCTION crm.industry_groups_of(p_score jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_score jsonb := p_score;
    v_in text[];
    v_credited text[] := '{}';
    v_more jsonb;
BEGIN
    FOR i IN 1..6 LOOP
        v_in := ARRAY(SELECT e.key FROM jsonb_each_text(v_score) AS e WHERE e.value::real >= 0.999);
        SELECT coalesce(jsonb_object_agg(x.parent, x.n), '{}') INTO v_more
        FROM (
            SELECT p.parent, count(*) AS n
            FROM crm.industry_group AS g CROSS JOIN unnest(g.parents) AS p (parent)
            WHERE g.group_name = ANY(v_in) AND NOT g.group_name = ANY(v_credited)
            GROUP BY p.parent
        ) AS x;
        EXIT WHEN v_more = '{}';
        v_credited := v_credited || v_in;
        SELECT jsonb_object_agg(k.k, coalesce((v_score ->> k.k)::real, 0) + coalesce((v_more ->> k.k)::real, 0))
        INTO v_score
        FROM (SELECT jsonb_object_keys(v_score) UNION SELECT jsonb_object_keys(v_more)) AS k (k);
    END LOOP;
    v_in := ARRAY(SELECT e.key FROM jsonb_each_text(v_score) AS e WHERE e.value::real >= 0.999);
    RETURN ARRAY(
        SELECT g.group_name FROM crm.industry_group AS g
        WHERE g.group_name = ANY(v_in) AND (NOT g.excluded_by && v_in OR (v_score ->> g.group_name)::real >= 2.999)
        ORDER BY g.group_name
    );
END
$$;

-- The groups of a company, sorted ('{}' when none). p_industry may be HubSpot's internal value or its label
-- ("Computer Software", "Hospital & Health Care"); p_tags are enrichment tags (Attio categories). Two passes: the
-- industry and the unconditional keywords, then also the keywords whose applies_to_groups meet what the first
-- pass found ("patients" says healthtech of a software company, not of a hospital). The name and domain are read
-- when there is no description, and again with the description when it gives no group: a description that names
-- nothing the taxonomy knows ("check-ups, hygiene and whitening in Galway") leaves the name to say what the company
-- is (Nexus Dental Care Studio; the description's negative keywords still count). The learned words of a group
-- (crm.industry_learned_word, bench/learned_weights.py) add 1 to its evidence when those the text has reach 1 together,
-- nothing otherwise. Runs for every company
-- written (the index trigger) and when the taxonomy changes (crm.refresh_company_industry_groups).
-- Computes exactly crm.industry_groups_of(crm.industry_evidence(...)) of each pass (those two are the definition;
-- tests/test_derive.py compares them on every row of tests/eval/companies.csv), but fast (issue 18: the two
-- functions cost 1-50 ms a company, ~80% of writing companies): one query fetches the industry's members, the
-- matching keywords (an index lookup of the terms), whether a longer matching keyword contains each (with or without
-- applies_to_groups) and the group table; both passes and the closure over parents then run on those arrays, and the
-- second pass runs only when a keyword with applies_to_groups meeting the first pass's groups matches (else it reads
-- the same keywords). A change of the logic goes into both places.
CREATE OR REPLACE FUNCTION crm.company_industry_groups(
    p_industry text, p_name text, p_domain text, p_description text DEFAULT NULL, p_tags text[] DEFAULT NULL
) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v_industry text := nullif(btrim(upper(regexp_replace(p_industry, '[^A-Za-z0-9]+', '_', 'g')), '_'), '');
    v_desc text := crm.norm_text(left(p_description, 4000));
    v_pattern text;
    v_text text[];       -- the terms of the description and tags
    v_name text[] := '{}';  -- the terms of the name and domain: read without a description, or when it said nothing
    v_grp text[];        -- evidence rows: the industry's members, then the matching keywords
    v_weight real[];
    v_keyword boolean[];
    v_for text[];        -- a keyword's applies_to_groups (text[] as text), NULL for any company
    v_sup boolean[];     -- a longer matching keyword without applies_to_groups contains it
    v_sup_for text[];    -- the applies_to_groups of the longer matching keywords with them that contain it
    v_gname text[];      -- crm.industry_group, sorted by name
    v_parents text[];
    v_excl text[];
    v_sg text[];         -- evidence per group
    v_ss real[];
    v_in text[];
    v_credited text[];
    v_mp text[];
    v_mn integer[];
    v_at integer;
    v_at2 integer;
    v_g text;
    v_p text;
    v_first text[];
    v_out text[];
BEGIN
    -- every alternative of the name's pattern starts with its first word: no pattern to build (and compile) without it
    IF strpos(v_desc, (regexp_match(crm.norm_text(p_name), '[[:alnum:]]+'))[1]) > 0 THEN
        v_pattern := crm.industry_name_pattern(p_name);
        IF v_pattern IS NOT NULL THEN
            v_desc := regexp_replace(v_desc, v_pattern, ' . ', 'g');
        END IF;
    END IF;
    v_text := crm.industry_text_terms(concat_ws(' . ', v_desc, array_to_string(p_tags, ' . ')));
    IF cardinality(v_text) = 0 THEN
        v_name := crm.industry_text_terms(concat_ws(' . ', p_name, translate(crm.norm_domain(p_domain), '.-', '  ')));
    END IF;
    -- a second reading when the description names nothing the taxonomy knows: its terms and the name's
    FOR v_reading IN 1..2 LOOP
        WITH k AS MATERIALIZED (
            SELECT k.group_name, k.keyword, k.field, k.term, k.weight, k.applies_to_groups
            FROM crm.industry_keyword AS k
            WHERE
                k.term = ANY(v_text || v_name)  -- the term index; then which terms a keyword's field reads
                AND ((k.term = ANY(v_text) AND k.field <> 'name') OR (k.term = ANY(v_name) AND k.field <> 'description'))
        ),
        e AS (
            SELECT m.group_name, m.weight, false AS keyword, NULL::text AS for_groups, false AS sup, NULL::text AS sup_for, 0 AS o
            FROM crm.industry_group_member AS m
            WHERE m.industry = v_industry
            UNION ALL
            -- learned words (bench/learned_weights.py): 1 when those of a group reach 1 together, else nothing
            SELECT w.group_name, CASE WHEN sum(w.weight) >= 0.999 THEN 1 ELSE 0 END, false, NULL, false, NULL, 0
            FROM crm.industry_learned_word AS w
            WHERE w.word = ANY(v_text || v_name)
            GROUP BY w.group_name
            UNION ALL
            SELECT
                k.group_name, k.weight, true, k.applies_to_groups::text,
                coalesce(bool_or(l.term IS NOT NULL AND l.applies_to_groups IS NULL), false),
                (array_agg(DISTINCT a.g) FILTER (WHERE a.g IS NOT NULL))::text,
                1
            FROM k
            LEFT JOIN k AS l
                ON l.group_name = k.group_name AND l.term <> k.term
                AND strpos(' ' || l.term || ' ', ' ' || k.term || ' ') > 0
            LEFT JOIN LATERAL unnest(l.applies_to_groups) AS a (g) ON true
            GROUP BY k.group_name, k.keyword, k.field, k.weight, k.applies_to_groups
        )
        SELECT
            array_agg(e.group_name ORDER BY e.o), array_agg(e.weight ORDER BY e.o), array_agg(e.keyword ORDER BY e.o),
            array_agg(e.for_groups ORDER BY e.o), array_agg(e.sup ORDER BY e.o), array_agg(e.sup_for ORDER BY e.o),
            (SELECT array_agg(g.group_name ORDER BY g.group_name) FROM crm.industry_group AS g),
            (SELECT array_agg(g.parents::text ORDER BY g.group_name) FROM crm.industry_group AS g),
            (SELECT array_agg(g.excluded_by::text ORDER BY g.group_name) FROM crm.industry_group AS g)
        INTO v_grp, v_weight, v_keyword, v_for, v_sup, v_sup_for, v_gname, v_parents, v_excl
        FROM e;
        FOR v_pass IN 1..2 LOOP
            -- evidence
            v_sg := '{}';
            v_ss := '{}';
            FOR i IN 1..coalesce(cardinality(v_grp), 0) LOOP
                IF v_keyword[i] THEN
                    CONTINUE WHEN v_for[i] IS NOT NULL AND (v_pass = 1 OR NOT v_for[i]::text[] && v_first);
                    CONTINUE WHEN v_sup[i] OR (v_pass = 2 AND v_sup_for[i] IS NOT NULL AND v_sup_for[i]::text[] && v_first);
                END IF;
                v_at := array_position(v_sg, v_grp[i]);
                IF v_at IS NULL THEN
                    v_sg := v_sg || v_grp[i];
                    v_ss := v_ss || v_weight[i];
                ELSE
                    v_ss[v_at] := v_ss[v_at] + v_weight[i];
                END IF;
            END LOOP;
            -- closure over parents
            v_credited := '{}';
            FOR v_it IN 1..7 LOOP
                v_in := '{}';
                FOR j IN 1..cardinality(v_sg) LOOP
                    IF v_ss[j] >= 0.999 THEN
                        v_in := v_in || v_sg[j];
                    END IF;
                END LOOP;
                EXIT WHEN v_it = 7;
                v_mp := '{}';
                v_mn := '{}';
                FOREACH v_g IN ARRAY v_in LOOP
                    CONTINUE WHEN v_g = ANY(v_credited);
                    v_at := array_position(v_gname, v_g);
                    CONTINUE WHEN v_at IS NULL;
                    FOREACH v_p IN ARRAY v_parents[v_at]::text[] LOOP
                        v_at2 := array_position(v_mp, v_p);
                        IF v_at2 IS NULL THEN
                            v_mp := v_mp || v_p;
                            v_mn := v_mn || 1;
                        ELSE
                            v_mn[v_at2] := v_mn[v_at2] + 1;
                        END IF;
                    END LOOP;
                END LOOP;
                EXIT WHEN cardinality(v_mp) = 0;
                v_credited := v_credited || v_in;
                FOR j IN 1..cardinality(v_mp) LOOP
                    v_at := array_position(v_sg, v_mp[j]);
                    IF v_at IS NULL THEN
                        v_sg := v_sg || v_mp[j];
                        v_ss := v_ss || v_mn[j]::real;
                    ELSE
                        v_ss[v_at] := v_ss[v_at] + v_mn[j]::real;
                    END IF;
                END LOOP;
            END LOOP;
            -- exclusions
            v_out := '{}';
            FOR j IN 1..coalesce(cardinality(v_gname), 0) LOOP
                CONTINUE WHEN NOT v_gname[j] = ANY(v_in);
                IF NOT v_excl[j]::text[] && v_in OR v_ss[array_position(v_sg, v_gname[j])] >= 2.999 THEN
                    v_out := v_out || v_gname[j];
                END IF;
            END LOOP;
            EXIT WHEN v_pass = 2;
            v_first := v_out;
            -- a second pass differs only when a keyword with applies_to_groups meeting the first pass's groups matches
            v_at := NULL;
            FOR i IN 1..coalesce(cardinality(v_grp), 0) LOOP
                IF v_for[i] IS NOT NULL AND v_for[i]::text[] && v_first THEN
                    v_at := i;
                    EXIT;
                END IF;
            END LOOP;
            EXIT WHEN v_at IS NULL;
        END LOOP;
        EXIT WHEN cardinality(v_out) > 0 OR cardinality(v_name) > 0;
        v_name := crm.industry_text_terms(concat_ws(' . ', p_name, translate(crm.norm_domain(p_domain), '.-', '  ')));
    END LOOP;
    RETURN v_out;
END
$$;

-- The group a user's word stands for: "fintech", "Fin-Tech", "banks", "health care", "web3" -> group name; also
-- accepts a group name itself ("financial_services") and a plain plural of a known term. NULL when unknown.
-- (Migration 0002's definition, unchanged but for the language: plpgsql keeps its plan for the session, where a
-- sql function called from crm.interpret_query was planned again in every transaction, ~1 ms a phrase; issue 18.)
CREATE OR REPLACE FUNCTION crm.industry_term_group(p_term text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        SELECT x.group_name
        FROM (
            SELECT
                t.group_name,
                1 AS pref
            FROM crm.industry_term AS t
            WHERE t.term = crm.norm_text(p_term)
            UNION ALL
            SELECT
                g.group_name,
                2 AS pref
            FROM crm.industry_group AS g
            WHERE g.group_name = translate(crm.norm_text(p_term), ' -', '__')
            UNION ALL
            SELECT
                t.group_name,
                3 AS pref
            FROM crm.industry_term AS t
            WHERE t.term = replace(crm.norm_text(p_term), '-', ' ')
            UNION ALL
            SELECT
                t.group_name,
                4 AS pref
            FROM crm.industry_term AS t
            WHERE crm.norm_text(p_term) LIKE '%s' AND t.term = left(crm.norm_text(p_term), -1)
        ) AS x
        ORDER BY x.pref
        LIMIT 1
    );
END
$$;

-- The HubSpot industries that put a company in a group, sorted: the group's own members and those of the groups
-- that imply it (crm.industry_group.parents: BANKING is a fintech industry because banking -> fintech). Empty for
-- keyword-only groups such as payments or ai.
-- (plpgsql, not sql: its plan is kept for the session; as a sql function it was planned again on every call from
-- crm.interpret_query's explanation: 0.22 -> 0.12 ms a call; issue 18)
CREATE OR REPLACE FUNCTION crm.industry_group_industries(p_group_name text) RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
        WITH RECURSIVE below (group_name) AS (
            SELECT p_group_name
            UNION
            SELECT g.group_name FROM crm.industry_group AS g INNER JOIN below AS b ON b.group_name = any(g.parents)
        )

        SELECT coalesce(array_agg(DISTINCT m.industry ORDER BY m.industry), '{}')
        FROM crm.industry_group_member AS m
        WHERE m.group_name IN (SELECT b.group_name FROM below AS b) AND m.weight >= 1
    );
END
$$;

-- What the companies' groups depend on, as a digest: the taxonomy tables, the learned words (and this classifier's
-- version, 'v3'; bump it when a change of crm.company_industry_groups changes results). An org whose
-- crm.org.industry_taxonomy differs is re-derived by crm.refresh_industry_groups_step (crm.maintenance).
CREATE OR REPLACE FUNCTION crm.industry_taxonomy_fingerprint() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT md5(concat_ws(
        '|', 'v3',
        (
            SELECT
                string_agg(
                    concat_ws(',', g.group_name, g.parents::text, g.excluded_by::text), ';' ORDER BY g.group_name
                )
            FROM crm.industry_group AS g
        ),
        (
            SELECT string_agg(concat_ws(',', m.group_name, m.industry, m.weight), ';' ORDER BY m.group_name, m.industry)
            FROM crm.industry_group_member AS m
        ),
        (
            SELECT
                string_agg(
                    concat_ws(',', k.group_name, k.keyword, k.weight, k.field, k.applies_to_groups::text), ';'
                    ORDER BY k.group_name, k.keyword
                )
            FROM crm.industry_keyword AS k
        ),
        (
            SELECT string_agg(concat_ws(',', w.group_name, w.word, w.weight), ';' ORDER BY w.group_name, w.word)
            FROM crm.industry_learned_word AS w
        )
    ));
END;

-- Recompute crm.company_index.industry_groups now, for one org (or every org when p_org_id is NULL), after the
-- taxonomy tables changed; returns the number of companies whose groups changed, and records the orgs as derived
-- with the current taxonomy. (crm.maintenance does the same in batches: crm.refresh_industry_groups_step.)
CREATE OR REPLACE FUNCTION crm.refresh_company_industry_groups(p_org_id uuid DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_fp text := crm.industry_taxonomy_fingerprint();
    v_n bigint;
BEGIN
    WITH derived AS (
        SELECT
            ci.org_id, ci.id,
            crm.company_industry_groups(ci.industry, ci.name, ci.domain, ci.description, ci.tags) AS groups
        FROM crm.company_index AS ci
        WHERE p_org_id IS NULL OR ci.org_id = p_org_id
    ),
    changed AS (
        UPDATE crm.company_index AS ci
        SET industry_groups = d.groups
        FROM derived AS d
        WHERE ci.org_id = d.org_id AND ci.id = d.id AND ci.industry_groups IS DISTINCT FROM d.groups
        RETURNING 1
    )
    SELECT count(*) INTO v_n FROM changed;
    UPDATE crm.org AS o SET industry_taxonomy = v_fp, industry_refresh = NULL
    WHERE p_org_id IS NULL OR o.org_id = p_org_id;
    RETURN v_n;
END
$$;

-- One step of re-deriving groups after the taxonomy changed (called by crm.maintenance): up to p_batch companies of
-- one org not yet derived with the current taxonomy, in id order, resuming where the previous step stopped (a
-- taxonomy change meanwhile starts the org over). Returns the number of companies looked at (0: all current).
CREATE OR REPLACE FUNCTION crm.refresh_industry_groups_step(p_batch integer DEFAULT 5000) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_fp text := crm.industry_taxonomy_fingerprint();
    v_org uuid;
    v_after bigint;
    v_last bigint;
    v_n integer;
BEGIN
    SELECT o.org_id, CASE WHEN o.industry_refresh ->> 'fp' = v_fp THEN (o.industry_refresh ->> 'after')::bigint ELSE 0 END
    INTO v_org, v_after
    FROM crm.org AS o
    WHERE o.industry_taxonomy IS DISTINCT FROM v_fp
    ORDER BY o.org_id
    LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    WITH batch AS MATERIALIZED (
        SELECT
            ci.id,
            crm.company_industry_groups(ci.industry, ci.name, ci.domain, ci.description, ci.tags) AS groups
        FROM crm.company_index AS ci
        WHERE ci.org_id = v_org AND ci.id > v_after
        ORDER BY ci.id
        LIMIT p_batch
    ),
    changed AS (
        UPDATE crm.company_index AS ci
        SET industry_groups = b.groups
        FROM batch AS b
        WHERE ci.org_id = v_org AND ci.id = b.id AND ci.industry_groups IS DISTINCT FROM b.groups
        RETURNING 1
    )
    SELECT count(*), max(b.id) INTO v_n, v_last FROM batch AS b;
    IF v_n < p_batch THEN
        UPDATE crm.org SET industry_taxonomy = v_fp, industry_refresh = NULL WHERE org_id = v_org;
    ELSE
        UPDATE crm.org SET industry_refresh = jsonb_build_object('fp', v_fp, 'after', v_last) WHERE org_id = v_org;
    END IF;
    RETURN v_n;
END
$$;
