-- 0019_search_quality: company groups from what the CRM knows, and the filters a copilot asks for (issue 17).
--
-- * Companies keep their description (HubSpot `description`, Attio `description`, an enrichment provider's) and
--   their enrichment tags (Attio `categories`, a provider's keywords): the classifier reads them, and re-derives
--   from them when the taxonomy changes (a stored description is what makes that possible without a re-sync).
-- * The taxonomy becomes weighted evidence a customer can extend from psql (docs/psql-cookbook.md):
--     crm.industry_group        + definition (what a person means), parents (groups it implies: payments -> fintech)
--     crm.industry_group_member + weight (how much a HubSpot industry says about a group)
--     crm.industry_keyword      whole words or phrases (1-3 words, plurals folded) of the description, tags, or
--                               (for companies with neither) name and domain; weight (negative: evidence against);
--                               field; the prefix/substring kinds are gone (they fired on Finch, Cardboard...)
--   A company is in a group when the evidence reaches 1 (crm.company_industry_groups, index/derive.sql).
-- * Rows are re-derived when the taxonomy changes: crm.refresh_company_industry_groups() at once, or in batches by
--   crm.maintenance() (each org remembers the taxonomy fingerprint it was derived with).
-- * The org's time zone (relative dates in questions: "this month", "in the last 90 days").

-- The search functions return more columns (owner, location, activity dates): index/search.sql defines them again.
DROP FUNCTION crm.search_contacts(uuid, text, jsonb, integer);
DROP FUNCTION crm.search_companies(uuid, text, jsonb, integer);

-- Orgs: time zone; the taxonomy their companies' groups were derived with, and where a re-derivation stands.
ALTER TABLE crm.org
ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC',
ADD COLUMN industry_taxonomy text,
ADD COLUMN industry_refresh jsonb;

-- Companies: what they say about themselves.
ALTER TABLE crm.company_index
ADD COLUMN description text,
ADD COLUMN tags text[];

DROP TRIGGER company_index_derive ON crm.company_index;
CREATE TRIGGER company_index_derive BEFORE INSERT OR UPDATE OF domain, industry, name, description, tags
ON crm.company_index
FOR EACH ROW EXECUTE FUNCTION crm.company_index_derive();

-- The classifier's signature changes (description, tags): the area file index/derive.sql defines the new ones.
DROP FUNCTION crm.refresh_company_industry_groups(uuid);
DROP FUNCTION crm.company_industry_groups(text, text, text);

-- Plural folding of a term (also defined in index/derive.sql, where the classifier folds the words it reads):
-- "payments" -> "payment", "agencies" -> "agency"; not "analytics", "business", "news", "status".
CREATE FUNCTION crm.industry_fold(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(
    regexp_replace(
        regexp_replace(p, '\m([a-z0-9]{2,})ies\M', '\1y', 'g'),
        '\m([a-z0-9]+(ss|x|ch|sh|z))es\M', '\1', 'g'
    ),
    '\m([a-z0-9]{2,}[a-z0-9])(?<![sui])(?<!ic)(?<!new)s\M', '\1', 'g'
);

ALTER TABLE crm.industry_group
ADD COLUMN definition text,
ADD COLUMN parents text[] NOT NULL DEFAULT '{}',
ADD COLUMN excluded_by text[] NOT NULL DEFAULT '{}';

ALTER TABLE crm.industry_group_member
ADD COLUMN weight real NOT NULL DEFAULT 1 CHECK (weight BETWEEN -10 AND 10);

DELETE FROM crm.industry_keyword;
ALTER TABLE crm.industry_keyword
DROP COLUMN match_kind,
ADD COLUMN weight real NOT NULL DEFAULT 1 CHECK (weight BETWEEN -10 AND 10),
ADD COLUMN field text NOT NULL DEFAULT 'any' CHECK (field IN ('any', 'description', 'name')),
ADD COLUMN term text GENERATED ALWAYS AS (crm.industry_fold(keyword)) STORED,
ADD CONSTRAINT industry_keyword_words CHECK (cardinality(string_to_array(keyword, ' ')) <= 3),
DROP CONSTRAINT industry_keyword_pkey,
ADD PRIMARY KEY (group_name, keyword, field);
-- one weight per folded term, group and field ("bank" and "banks" are the same keyword)
CREATE UNIQUE INDEX industry_keyword_term_idx ON crm.industry_keyword (term, group_name, field);

------------------------------------------------------------------------------------------------------------
-- The taxonomy's data (what each group means: tests/eval/README.md)
------------------------------------------------------------------------------------------------------------

UPDATE crm.industry_group AS g
SET definition = d.definition, parents = d.parents::text[], excluded_by = d.excluded_by::text[]
FROM (
    VALUES
    (
        'financial_services',
        '{}',
        'Finance of every kind: banks, lenders, payments, insurance, investing, crypto exchanges, money software, '
        'accounting and tax firms',
        '{}'
    ),
    (
        'fintech',
        '{financial_services}',
        'Fintech and financial services: banks, insurers, lenders, investing, payments, '
        'crypto exchanges and B2B money software (not accounting firms, payroll or health insurers)',
        '{}'
    ),
    (
        'banking',
        '{fintech}',
        'Banks, credit unions, investment banks, neobanks and business-banking fintechs, banking software',
        '{}'
    ),
    ('insurance', '{fintech}', 'Insurers, reinsurers, brokers and insurtechs (health insurers too)', '{}'),
    (
        'investment',
        '{fintech}',
        'Asset and wealth managers, VC and PE, hedge funds, brokerages and trading apps, investment banks, exchanges',
        '{}'
    ),
    (
        'payments',
        '{fintech}',
        'Payment processing, cards and card issuing, wallets, money transfer, now pay later, AP/AR payments',
        '{}'
    ),
    ('crypto', '{}', 'Crypto exchanges and wallets, blockchains, web3, NFTs, blockchain analytics', '{}'),
    (
        'saas',
        '{software}',
        'Software sold to businesses as a cloud service, APIs and B2B platforms included',
        '{manufacturing}'
    ),
    (
        'software',
        '{tech}',
        'Companies whose main product is software (applications, platforms, APIs, developer tools, games)',
        '{manufacturing}'
    ),
    (
        'tech',
        '{}',
        'Technology companies: software, internet platforms, online retailers, hardware, semiconductors, '
        'IT services, telecom networks, robotics, AI',
        '{}'
    ),
    (
        'it_services',
        '{tech}',
        'IT consulting, managed services, outsourcing, systems integrators, development agencies',
        '{}'
    ),
    (
        'cybersecurity',
        '{security,saas}',
        'Security software and services for computers, networks, clouds, identities and data',
        '{}'
    ),
    ('security', '{}', 'Cybersecurity and physical security (guards, alarms, surveillance, investigations)', '{}'),
    (
        'ai',
        '{tech}',
        'Companies whose product is AI: models, ML platforms, AI data, AI assistants and AI-first applications',
        '{}'
    ),
    (
        'healthcare',
        '{}',
        'Care delivery, pharma and biotech, medical devices, health insurers, medical distributors, health technology',
        '{}'
    ),
    (
        'healthcare_providers',
        '{healthcare}',
        'Hospitals, clinics, physician, dental and mental-health practices, telehealth providers',
        '{saas}'
    ),
    ('healthtech', '{healthcare,tech}', 'Software, internet and data companies for health and care', '{manufacturing}'),
    (
        'biotech',
        '{healthcare}',
        'Biotechnology, pharmaceuticals, life-science tools, genomics, drug discovery, CROs',
        '{}'
    ),
    (
        'ecommerce',
        '{}',
        'Selling goods online (online retailers, DTC brands, marketplaces) and e-commerce platforms',
        '{payments}'
    ),
    (
        'retail',
        '{}',
        'Selling goods to consumers: stores, chains, supermarkets, online retailers, fashion and beauty brands',
        '{payments}'
    ),
    (
        'consumer_goods',
        '{}',
        'Makers of consumer products: food and drink, household and personal care, apparel, electronics, toys',
        '{}'
    ),
    (
        'manufacturing',
        '{}',
        'Industrial companies that make physical products or equipment, vehicles, aircraft, chips and robots',
        '{healthcare,saas}'
    ),
    (
        'automotive',
        '{}',
        'Vehicle makers, auto parts, EVs, dealers, car marketplaces, autonomous driving',
        '{insurance}'
    ),
    (
        'aerospace_defense',
        '{}',
        'Aircraft, spacecraft, satellites, launch, drones, defense contractors, the military',
        '{}'
    ),
    ('education', '{}', 'Schools, universities, training and tutoring, and edtech', '{healthcare_providers,fintech}'),
    (
        'edtech',
        '{education,tech}',
        'Technology for learning: online courses, learning apps, learning-management systems',
        '{}'
    ),
    ('media', '{}', 'Publishers, news, TV and radio, film, music, podcasts, digital media, streaming', '{gaming}'),
    ('gaming', '{}', 'Video game studios and publishers, game engines and platforms, esports', '{}'),
    ('marketing', '{}', 'Marketing, advertising and PR agencies, adtech, martech, market research', '{}'),
    ('real_estate', '{}', 'Brokers, developers, REITs, property managers, coworking, proptech', '{insurance}'),
    (
        'construction',
        '{}',
        'Contractors, homebuilders, building materials, civil engineering, architecture firms',
        '{software}'
    ),
    (
        'logistics',
        '{}',
        'Moving goods and people: freight, shipping, parcel, trucking, rail, warehousing, airlines',
        '{saas,automotive}'
    ),
    ('energy', '{}', 'Oil and gas, utilities, renewables, storage, EV charging, energy software', '{construction}'),
    ('government', '{}', 'Government agencies and public bodies, the military, govtech', '{}'),
    ('nonprofit', '{}', 'Charities, foundations, NGOs, religious organisations, museums, think tanks', '{}'),
    ('legal', '{}', 'Law firms, legal services, legal tech', '{}'),
    ('consulting', '{professional_services}', 'Management and strategy consulting firms', '{saas}'),
    (
        'professional_services',
        '{}',
        'Consulting, accounting, law, staffing, marketing agencies, architecture and engineering, IT services',
        '{saas}'
    ),
    (
        'hr_services',
        '{}',
        'Staffing and recruiting, HR outsourcing and PEOs, HR, payroll and recruiting software',
        '{}'
    ),
    (
        'hospitality',
        '{}',
        'Hotels, restaurants, travel, airlines, cruises, events and venues, casinos',
        '{payments,saas}'
    ),
    ('telecom', '{tech}', 'Carriers, mobile operators, ISPs, cable, satellite communications, network equipment', '{}')
) AS d (group_name, parents, definition, excluded_by)
WHERE g.group_name = d.group_name;

-- industry -> group, with how much the industry says (HubSpot files many companies under generic industries)
DELETE FROM crm.industry_group_member;
INSERT INTO crm.industry_group_member (group_name, industry, weight)
SELECT
    m.group_name,
    unnest(string_to_array(m.members, ' ')) AS industry,
    m.weight
FROM (
    VALUES
    ('fintech', 1, 'FINANCIAL_SERVICES'),
    ('banking', 1, 'BANKING INVESTMENT_BANKING'),
    ('investment', 1, 'INVESTMENT_BANKING INVESTMENT_MANAGEMENT CAPITAL_MARKETS VENTURE_CAPITAL_PRIVATE_EQUITY'),
    ('insurance', 1, 'INSURANCE'),
    ('financial_services', 1, 'ACCOUNTING'),
    ('software', 1, 'COMPUTER_SOFTWARE COMPUTER_GAMES MOBILE_GAMES'),
    ('saas', 1, 'COMPUTER_SOFTWARE'),
    ('saas', 0.3, 'INTERNET INFORMATION_TECHNOLOGY_AND_SERVICES'),
    ('saas', 0.5, 'COMPUTER_NETWORK_SECURITY'),
    ('software', 0.5, 'COMPUTER_NETWORK_SECURITY'),
    ('consulting', 0.5, 'ACCOUNTING'),
    ('tech', 1, 'INTERNET COMPUTER_HARDWARE COMPUTER_NETWORKING SEMICONDUCTORS NANOTECHNOLOGY CONSUMER_ELECTRONICS'),
    ('tech', 0.7, 'INFORMATION_TECHNOLOGY_AND_SERVICES INFORMATION_SERVICES'),
    ('it_services', 0.5, 'INFORMATION_TECHNOLOGY_AND_SERVICES OUTSOURCING_OFFSHORING'),
    ('cybersecurity', 1, 'COMPUTER_NETWORK_SECURITY'),
    ('security', 1, 'SECURITY_AND_INVESTIGATIONS'),
    ('healthcare', 1, 'HOSPITAL_HEALTH_CARE MEDICAL_DEVICES ALTERNATIVE_MEDICINE'),
    ('healthcare_providers', 1, 'MEDICAL_PRACTICE MENTAL_HEALTH_CARE'),
    ('healthcare_providers', 0.5, 'HOSPITAL_HEALTH_CARE'),
    ('biotech', 1, 'BIOTECHNOLOGY PHARMACEUTICALS'),
    ('retail', 1, 'RETAIL SUPERMARKETS APPAREL_FASHION LUXURY_GOODS_JEWELRY SPORTING_GOODS COSMETICS'),
    ('consumer_goods', 0.5, 'FARMING'),
    (
        'consumer_goods', 1,
        'CONSUMER_GOODS FOOD_BEVERAGES FOOD_PRODUCTION COSMETICS APPAREL_FASHION SPORTING_GOODS LUXURY_GOODS_JEWELRY '
        'WINE_AND_SPIRITS TOBACCO DAIRY FURNITURE CONSUMER_ELECTRONICS'
    ),
    (
        'manufacturing', 1,
        'MACHINERY INDUSTRIAL_AUTOMATION ELECTRICAL_ELECTRONIC_MANUFACTURING MECHANICAL_OR_INDUSTRIAL_ENGINEERING '
        'CHEMICALS PLASTICS TEXTILES PAPER_FOREST_PRODUCTS GLASS_CERAMICS_CONCRETE BUILDING_MATERIALS '
        'PACKAGING_AND_CONTAINERS RAILROAD_MANUFACTURE SHIPBUILDING SEMICONDUCTORS MINING_METALS'
    ),
    ('manufacturing', 0.5, 'AUTOMOTIVE AVIATION_AEROSPACE DEFENSE_SPACE'),
    ('automotive', 1, 'AUTOMOTIVE'),
    ('aerospace_defense', 1, 'AVIATION_AEROSPACE DEFENSE_SPACE MILITARY'),
    (
        'education',
        1,
        'EDUCATION_MANAGEMENT HIGHER_EDUCATION PRIMARY_SECONDARY_EDUCATION PROFESSIONAL_TRAINING_COACHING'
    ),
    ('edtech', 1, 'E_LEARNING'),
    (
        'media', 1,
        'BROADCAST_MEDIA MEDIA_PRODUCTION ONLINE_MEDIA NEWSPAPERS PUBLISHING MOTION_PICTURES_AND_FILM ENTERTAINMENT '
        'MUSIC ANIMATION WRITING_AND_EDITING PHOTOGRAPHY'
    ),
    ('gaming', 1, 'COMPUTER_GAMES MOBILE_GAMES'),
    ('marketing', 1, 'MARKETING_AND_ADVERTISING PUBLIC_RELATIONS_AND_COMMUNICATIONS MARKET_RESEARCH'),
    ('real_estate', 1, 'REAL_ESTATE COMMERCIAL_REAL_ESTATE'),
    ('construction', 1, 'CONSTRUCTION BUILDING_MATERIALS CIVIL_ENGINEERING ARCHITECTURE_PLANNING'),
    (
        'logistics', 1,
        'LOGISTICS_AND_SUPPLY_CHAIN PACKAGE_FREIGHT_DELIVERY TRANSPORTATION_TRUCKING_RAILROAD WAREHOUSING MARITIME '
        'IMPORT_AND_EXPORT AIRLINES_AVIATION'
    ),
    ('energy', 1, 'OIL_ENERGY RENEWABLES_ENVIRONMENT UTILITIES'),
    (
        'government', 1,
        'GOVERNMENT_ADMINISTRATION GOVERNMENT_RELATIONS LEGISLATIVE_OFFICE JUDICIARY LAW_ENFORCEMENT PUBLIC_SAFETY '
        'MILITARY INTERNATIONAL_AFFAIRS EXECUTIVE_OFFICE'
    ),
    ('government', 0.5, 'PUBLIC_POLICY'),
    (
        'nonprofit', 1,
        'NON_PROFIT_ORGANIZATION_MANAGEMENT PHILANTHROPY FUND_RAISING CIVIC_SOCIAL_ORGANIZATION RELIGIOUS_INSTITUTIONS '
        'THINK_TANKS MUSEUMS_AND_INSTITUTIONS'
    ),
    ('legal', 1, 'LAW_PRACTICE LEGAL_SERVICES ALTERNATIVE_DISPUTE_RESOLUTION'),
    ('consulting', 1, 'MANAGEMENT_CONSULTING'),
    (
        'professional_services', 1,
        'ACCOUNTING LAW_PRACTICE ALTERNATIVE_DISPUTE_RESOLUTION STAFFING_AND_RECRUITING '
        'PUBLIC_RELATIONS_AND_COMMUNICATIONS '
        'MARKET_RESEARCH OUTSOURCING_OFFSHORING TRANSLATION_AND_LOCALIZATION ARCHITECTURE_PLANNING CIVIL_ENGINEERING'
    ),
    ('professional_services', 0.5, 'MARKETING_AND_ADVERTISING LEGAL_SERVICES'),
    ('hr_services', 1, 'STAFFING_AND_RECRUITING HUMAN_RESOURCES'),
    (
        'hospitality', 1,
        'HOSPITALITY RESTAURANTS LEISURE_TRAVEL_TOURISM RECREATIONAL_FACILITIES_AND_SERVICES EVENTS_SERVICES '
        'GAMBLING_CASINOS AIRLINES_AVIATION'
    ),
    ('telecom', 1, 'TELECOMMUNICATIONS WIRELESS COMPUTER_NETWORKING')
) AS m (group_name, weight, members);

-- words and phrases of descriptions, tags, and (companies without either) names and domains; applies_to_groups:
-- the keyword counts only for a company the other evidence puts in one of those groups
INSERT INTO crm.industry_keyword (group_name, keyword, weight, field, applies_to_groups)
SELECT
    k.group_name,
    btrim(unnest(string_to_array(k.keywords, ','))) AS keyword,
    k.weight,
    k.field,
    k.applies_to::text[]
FROM (
    VALUES
    -- finance
    ('financial_services', 1, 'any', NULL, 'cpa, cpa firm, accounting firm, tax preparation'),
    ('financial_services', 0.6, 'description', NULL, 'audit, assurance, tax service'),
    (
        'fintech', 1, 'any', NULL,
        'fintech, financial technology, neobank, lender, lending, spend management, expense management, expense report,'
        'cash management, accounting software, cap table, financial infrastructure, financial operation, open banking,'
        'stablecoin, cryptocurrency exchange, crypto exchange, personal finance company, credit score, finance app,'
        'financial app, bookkeeping software, accounting automation, digital bank, mobile banking, fintech company,'
        'financial planning and, accounting platform, buy now'
    ),
    (
        'fintech', 0.6, 'description', NULL,
        'financial service, financial product, loan, accounting, financial planning, cash flow, treasury, invoicing,'
        'financial data, personal finance, bank account, credit card, mortgage, finance team, financial management,'
        'cryptocurrency, wealth, digital asset'
    ),
    ('fintech', 0.5, 'description', NULL, 'buying selling, money, financial firm'),
    (
        'fintech', -3, 'description', NULL,
        'health insurance, health plan, personal finance site, personal finance website, cpa firm, tax preparation,'
        'accounting firm, rate table, talent solution'
    ),
    (
        'banking', 1, 'any', NULL,
        'neobank, digital bank, mobile bank, mobile banking, digital banking, challenger bank, licensed bank,'
        'retail bank, commercial bank, private bank, savings bank, building society, banking service,'
        'current account, business account, investment bank, universal bank, community bank, bank holding,'
        'cloud banking, banking, broker and bank'
    ),
    ('banking', 1, 'name', NULL, 'bank'),
    ('banking', 0.6, 'description', NULL, 'credit union, savings account, checking account, bank'),
    (
        'banking', -0.6, 'description', NULL,
        'bank account, partner bank, partnering with bank, bank reconciliation, open banking, business banking'
    ),
    (
        'insurance', 1, 'any', NULL,
        'health insurance, insurance company, insurance provider, insurer, insurtech, reinsurance, insurance broking,'
        'insurance broker, health plan, insurance agency'
    ),
    ('insurance', 0.5, 'description', NULL, 'insurance, underwriting, policyholder, claim, coverage, annuity'),
    (
        'insurance',
        1,
        'description',
        NULL,
        'life insurance, car insurance, home insurance, property and casualty, auto insurance'
    ),
    (
        'investment', 1, 'any', NULL,
        'investment manager, asset manager, asset management, investment banking, investment bank, venture capital,'
        'private equity, hedge fund, commission free trading, robo advisor, automated investing, mutual fund,'
        'stock exchange, alternative asset, investment company, investment adviser, investment advisor,'
        'broker and bank, online broker, wealth manager, investment management, invest, capital firm'
    ),
    (
        'investment',
        0.7,
        'description',
        NULL,
        'wealth management, brokerage, investing, capital market, etf, securities, investment firm,'
        'fund manager, trading platform, financial advisor, private market'
    ),
    ('investment', 0.4, 'description', NULL, 'investment, portfolio, trading, stock, investor, retirement, wealth'),
    ('investment', -2, 'description', NULL, 'law firm, freight broker, insurance broker, insurance broking'),
    (
        'payments', 1, 'any', NULL,
        'payment processing, payment processor, payment platform, payment infrastructure, payment service,'
        'payment method, accept payment, online payment, digital payment, card issuing, issuing platform, payment card,'
        'now pay later, pay later, bnpl, money transfer, send money, remittance, cross border payment, payout,'
        'acquiring, payment gateway, card network, payments company, payment technology, payment operation,'
        'payments network, money movement, account to account, payment solution, get paid, move money, pay in,'
        'payments industry, payment, payment provider, merchant service, card payment, contactless, payment terminal,'
        'digital wallet, mobile wallet, peer to peer, payment app'
    ),
    ('payments', 1, 'name', NULL, 'pay'),
    (
        'payments', 0.6, 'description', NULL,
        'point of sale, bill pay, instalment, accounts payable, accounts receivable, checkout, wallet, reimbursement,'
        'corporate card, charge card'
    ),
    (
        'payments',
        -1,
        'description',
        NULL,
        'tax, customs, commerce platform, banking and payment, management and payment'
    ),
    (
        'crypto', 1, 'any', NULL,
        'cryptocurrency, blockchain, web3, nft, bitcoin, ethereum, stablecoin, digital asset, defi, usdc, crypto asset,'
        'crypto collectible, crypto exchange, crypto company'
    ),
    ('crypto', 0.5, 'any', NULL, 'crypto'),
    -- technology
    (
        'software', 1, 'any', NULL,
        'software, saas, application, api, apis, software company, developer platform, game studio,'
        'game developer, video game, cloud platform, software platform, cloud storage, language model,'
        'ai system, game engine, answer engine, security platform, cybersecurity company,'
        'spend management, expense management, financial operation, payment operation, card issuing,'
        'issuing platform, payment platform, open banking platform, payment infrastructure, financial infrastructure,'
        'study app, learning app, language learning app'
    ),
    (
        'software',
        0.5,
        'description',
        NULL,
        'platform, workflow, cloud, tool, automation, platform for, solution, self service,'
        'analytics, dashboard, code, open source, product, suite, editor, monitoring, template'
    ),
    (
        'software', 1, 'description', NULL,
        'crm, erp, database, whiteboard, no code, low code, design tool, cms, management platform,'
        'management software, automation platform, observability, workspace, productivity, collaboration tool,'
        'work management, password manager, headless, sdk, open source software'
    ),
    ('software', 0.5, 'description', '{ai}', 'business, model, assistant'),
    ('software', -1, 'description', NULL, 'software engineer, software engineering, hardware and software'),
    ('software', 0.6, 'description', NULL, 'app'),
    (
        'software', -1.5, 'description', NULL,
        'marketplace, online retailer, streaming, robot, telehealth, online learning platform, learning marketplace,'
        'job site, ride hailing, online travel, digital travel, travel booking, digital bank, mobile bank,'
        'mobile banking, licensed bank, bank holding, exchange, freight forwarder, fulfillment, brokerage,'
        'homework help, publish, record label, buy now, credit score, device, hardware wallet, iphone,'
        'technology service, services company, consulting, managed service, it service, digital service, chip,'
        'processor, gpu, network equipment, personal finance, delivery, online grocery, network of,'
        'lending marketplace, crowdfunding, equipment, trading, investing, managed cloud, banking built'
    ),
    (
        'saas', 1, 'any', NULL,
        'saas, cloud software, software as a, cloud platform, cloud based, api, apis, developer platform,'
        'enterprise software, business software'
    ),
    (
        'saas', 0.5, 'description', '{software,cybersecurity}',
        'platform, for business, business, for team, team, workflow, organization, enterprise, company, automate,'
        'automation, cloud, self service, developer, customer, security, provider, brand, partner, government,'
        'professional, teacher, hospital, law firm, bank, b2b, collaborate, collaboration, collaborative,'
        'startup, smb, small business, sme, merchant, seller, employee, sales team, marketing team, finance team,'
        'hr team, engineering team, it team, subscription, client, workforce, operation, agency, retailer'
    ),
    (
        'saas', -1.5, 'description', NULL,
        'game studio, video game, marketplace, online retailer, streaming, robot, telehealth, online learning,'
        'language learning, learning app, study app, answer engine, job site, ride hailing, online travel, publish,'
        'record label, network of communities, composer, shopping assistant, managed cloud, banking built,'
        'digital bank, mobile banking, licensed bank, neobank'
    ),
    (
        'tech', 1, 'any', NULL,
        'technology company, tech company, internet company, online platform, online marketplace, robot,'
        'semiconductor, chip, online retailer, online destination, telecommunications, artificial intelligence,'
        'data platform, api, digital bank, neobank, mobile bank, fintech, financial technology, digital banking,'
        'technology driven, streaming service, streaming entertainment, online travel, travel booking, digital travel,'
        'telehealth, through its app, digital platform, online learning, finance app, automated investing,'
        'digital financial, commission free, now pay later, pay later, fulfillment platform, mobile app,'
        'ecommerce platform, e commerce platform, web platform, web app, saas, cloud platform, marketplace app,'
        'online service, digital service'
    ),
    ('tech', 0.6, 'description', NULL, 'app, cloud, software, technology platform'),
    ('tech', -1, 'description', NULL, 'software engineer, software engineering'),
    ('tech', 0.5, 'description', NULL, 'platform, digital, online, website, technology, internet'),
    (
        'tech', -1.5, 'description', NULL,
        'medical device, medical technology, personal finance website, university, research university'
    ),
    (
        'it_services', 1, 'any', NULL,
        'it service, managed service, technology service, digital service, digital transformation, systems integrator,'
        'it consulting, technology consultancy, outsourcing, software development company, product engineering,'
        'professional service company, help desk, managed cloud, technology services company, consulting company'
    ),
    ('it_services', -1, 'description', NULL, 'robot, talent solution, staffing'),
    (
        'cybersecurity', 1, 'any', NULL,
        'cybersecurity, cyber security, security platform, cloud security, identity, password, zero trust,'
        'vulnerability, ddos, cyber threat, security and compliance, access management, email threat, data loss,'
        'developer security'
    ),
    ('cybersecurity', 0.5, 'description', NULL, 'secure, security, threat'),
    ('cybersecurity', 0.4, 'description', NULL, 'firewall'),
    (
        'cybersecurity', -2, 'description', NULL,
        'security guard, alarm, guarding, video security, building security, managed service, observability,'
        'crypto asset, digital asset'
    ),
    (
        'security', 1, 'any', NULL,
        'security guard, alarm, guarding, video security, building security, surveillance, investigation, patrol,'
        'home security'
    ),
    ('security', 0.6, 'description', NULL, 'security system'
    ),
    ('security', -2, 'description', NULL, 'blockchain'),
    (
        'ai', 1, 'any', NULL,
        'ai company, ai research, artificial general intelligence, machine learning, large language model,'
        'language model, ai lending, ai community, generative ai, ai platform, ai system, enterprise ai, language ai,'
        'ai audio, ai marketing, domain specific ai, data and ai, accelerated computing, autonomous driving,'
        'medicine through ai, biology with ai, powered answer engine, ai application, ai safety, computer vision'
    ),
    ('ai', 0.3, 'description', NULL, 'ai'),
    -- health
    (
        'healthcare', 1, 'any', NULL,
        'healthcare company, health care organization, pharmaceutical, biotech, biotechnology, medical device,'
        'diagnostics, therapeutic, vaccine, physician, doctor, dental, dentist, therapist, health system,'
        'health insurance, health plan, telehealth, mental health, care delivery, precision medicine, oncology,'
        'surgical, life science, pharmacy, health record, virtual care, primary care, medical center,'
        'provides health care, medical humanitarian, healthcare service, healthcare technology, medical technology,'
        'medicine, biopharmaceutical, genomic, dna, patient, clinic, healthcare'
    ),
    ('healthcare', 0.6, 'description', NULL, 'health care, medical, hospital, health'),
    (
        'healthcare', -3, 'description', NULL,
        'veterinary, fitness, gym, pet, medically reviewed, wellness information, protein bar, mobility and healthcare'
    ),
    (
        'healthcare_providers', 1, 'any', NULL,
        'medical center, health system, dental practice, primary care, care practice, virtual care, therapy company,'
        'online therapy, physical therapy, patient care, sites of care, medical group, health care organization,'
        'licensed provider, medical humanitarian, direct to patient, provides health care, operates hospital,'
        'runs hospital, clinic, licensed therapist'
    ),
    ('healthcare_providers', 1, 'name', NULL, 'dental, dentist, clinic, medical center, hospital'),
    ('healthcare_providers', 0.6, 'description', NULL, 'hospital, telehealth'),
    (
        'healthcare_providers', -2, 'description', NULL,
        'veterinary, pet, distributing, distributes, record software, used by hospital, to hospital, for hospital,'
        'professional network, building offices'
    ),
    (
        'healthtech', 1, 'any', NULL,
        'healthtech, health tech, digital health, healthcare technology company, telehealth, virtual care,'
        'health record, online therapy, appointment booking, digital health insurance'
    ),
    (
        'healthtech', 1, 'description', '{tech,software}',
        'physician, doctor, patient, clinical, oncology, life science, healthcare, clinician, therapist'
    ),
    ('healthtech', 0.6, 'description', '{tech,software}', 'health, medical, medicine'),
    ('healthtech', -2, 'description', NULL, 'medical device, device, implant, biotechnology company'),
    (
        'biotech', 1, 'any', NULL,
        'biotech, biotechnology, biopharmaceutical, pharmaceutical, pharma, drug discovery, medicines company,'
        'genomic, dna sequencing, genetic, mrna, therapeutic, clinical research, medicine'
    ),
    ('biotech', -2, 'description', NULL, 'distributing, distributes, cloud software, prescription, generic medicine'),
    -- consumer
    (
        'ecommerce', 1, 'any', NULL,
        'ecommerce, e commerce, online retailer, online marketplace, online store, commerce platform,'
        'online grocery platform, direct to consumer, dtc, marketplace for, online destination, platform for fashion,'
        'sold online, selling online, online retail, online shopping platform'
    ),
    ('ecommerce', 0.6, 'description', NULL, 'in its store, online grocery, beauty brand, marketplace'),
    (
        'ecommerce', -2, 'description', NULL,
        'agency, for ecommerce, for e commerce, stay, travel, nft, doctor, point of sale, job site'
    ),
    (
        'retail', 1, 'any', NULL,
        'retailer, supermarket, online retailer, online marketplace, marketplace for, online grocery, '
        'convenience store,'
        'online destination, platform for fashion, beauty brand, fashion, retail chain, dealership, footwear, apparel,'
        'shoe, clothing'
    ),
    ('retail', 0.5, 'description', NULL, 'retail, shop, store'),
    (
        'retail', -2, 'description', NULL,
        'retail agent, nft, doctor, stay, now pay later, instalment, payment, one stop shop, retail customer,'
        'retail fuel, game store, app store, restaurants and store, packs and ship, wine, chain of fitness, tire'
    ),
    (
        'consumer_goods', 1, 'any', NULL,
        'consumer brand, beverage, brewer, brewery, beer, snack, cosmetics, toy, consumer electronics,'
        'vacuum, food and beverage, beverage company, personal care, protein bar, speaker, makes food, rug,'
        'carpet, mattress, treadmill, jewelry, handbag, perfume, fragrance, candle, cookware, detergent, diaper,'
        'shampoo, razor, household'
    ),
    (
        'consumer_goods', 0.6, 'description', NULL,
        'food, skincare, makeup, apparel, clothing, shoe, footwear, furniture, eyewear, fresh green, outdoor clothing,'
        'peripheral, home appliance, appliance, consumer product, bike, bicycle'
    ),
    (
        'consumer_goods',
        -2,
        'description',
        NULL,
        'retailer of, retailer selling, restaurant, coffeehouse, food delivery'
    ),
    (
        'hospitality', 1, 'any', NULL,
        'hotel, restaurant chain, travel company, travel booking, online travel, digital travel, travel guidance,'
        'cruise ship, airline, casino, resort, bakery, cafe, coffeehouse, fast food, hospitality company, hospitality,'
        'live entertainment, travel guidebook, vacation, tour, fast casual restaurant, travel destination'
    ),
    ('hospitality', 0.6, 'description', NULL, 'travel, restaurant, event, concert, stay, guest, rent'),
    (
        'hospitality', -2, 'description', NULL,
        'restaurant management, event marketing, ticketing platform, reservation service, for restaurant,'
        'with local restaurant, travel and, hotel brand'
    ),
    -- industry
    (
        'manufacturing', 1, 'any', NULL,
        'manufacturer, manufactures, chemical, machinery, industrial, robot, semiconductor, processor, chip,'
        'jet engine, automaker, builds electric, build cars, cement, materials science, electrical equipment,'
        'caterpillar dealer, heavy equipment, designs and builds, microinverter, rocket, drone, jetliner,'
        'designs and manufactures'
    ),
    ('manufacturing', 0.6, 'description', NULL, 'manufacturing, robotic, aircraft'),
    ('manufacturing', 0.5, 'description', '{automotive,aerospace_defense}', 'car, spacecraft, tire, helicopter'),
    (
        'manufacturing', -2, 'description', NULL,
        'robotic process automation, dealership, retailer, marketplace, surgical'
    ),
    (
        'automotive', 1, 'any', NULL,
        'automotive, automaker, electric vehicle, auto part, autonomous driving, used car, car maker, vehicle'
    ),
    ('automotive', 0.6, 'description', NULL, 'car, truck, motorcycle, tire, dealership'),
    (
        'automotive', -2, 'description', NULL,
        'motor vehicle, charging, fleet, car rental, auto insurance, car insurance, auto loan'
    ),
    (
        'aerospace_defense', 1, 'any', NULL,
        'aerospace, defense, defence, spacecraft, rocket, missile, jet engine, fighter jet, defense contractor,'
        'space company, space program, land service, armed force, air taxi'
    ),
    ('aerospace_defense', 0.6, 'description', NULL, 'aircraft, satellite, military, drone, space'),
    (
        'aerospace_defense', -2, 'description', NULL,
        'satellite communication, satellite internet, credit union, veteran, airline, connecting europe'
    ),
    (
        'construction', 1, 'any', NULL,
        'construction company, general contractor, homebuilder, civil engineering, roofing, architecture firm,'
        'construction and project, engineering construction'
    ),
    ('construction', 0.6, 'description', NULL, 'construction, contractor, cement, building material, architecture'),
    (
        'construction', -2, 'description', NULL,
        'construction management software, for construction, mining and construction, for architecture, software'
    ),
    (
        'logistics', 1, 'any', NULL,
        'parcel, package delivery, courier, trucking, truckload, railroad, warehousing, third party logistics,'
        'freight forwarder, freight broker, airline, container shipping, supply chain service, logistics company,'
        'on demand delivery, freight train, freight carrier, logistics provider'
    ),
    ('logistics', 1, 'name', NULL, 'logistics, freight, shipping, transport'),
    ('logistics', 0.6, 'description', NULL, 'logistics, freight, shipping, fulfillment, ride hailing, delivery'),
    (
        'logistics',
        -2,
        'description',
        NULL,
        'logistics facilities, supply chain visibility, for fleet, tracking shipment'
    ),
    (
        'energy', 1, 'any', NULL,
        'energy company, energy supplier, natural gas, renewable energy, wind farm, ev charging, charging station,'
        'energy storage, oil and gas, energy data, electric and natural, renewable electricity, electric utility,'
        'gas utility, power plant'
    ),
    ('energy', 0.6, 'description', NULL, 'energy, oil, solar, electricity, battery, fuel, renewable, utility'),
    ('energy', -2, 'description', NULL, 'energy management, building technology'),
    (
        'telecom', 1, 'any', NULL,
        'telecom, telecommunications, wireless carrier, mobile network, broadband, fiber internet, 5g,'
        'isp, satellite communication, satellite internet, network equipment, communications company,'
        'mobile operator, telecom operator'
    ),
    ('telecom', 0.6, 'description', NULL, 'carrier, wireless, networking, network'),
    ('telecom', -2, 'description', NULL, 'freight, truckload, wireless chip, card network'),
    (
        'real_estate', 1, 'any', NULL,
        'real estate, realty, homebuilder, coworking, flexible workspace, office space, self storage, reit,'
        'investment trust'
    ),
    ('real_estate', 0.5, 'description', NULL, 'property, home'),
    (
        'real_estate', -2, 'description', NULL,
        'home improvement, home decor, home security, home solar, home sound, property and casualty'
    ),
    -- media, education, public, services
    (
        'media', 1, 'any', NULL,
        'media company, media organization, publisher, broadcaster, radio station, record label, music entertainment,'
        'streaming service, magazine, book publisher, audio company, horror entertainment, free knowledge,'
        'personal finance site, personal finance website, travel guidebook, newspaper, news, podcast,'
        'network of communities, subscription network, streaming entertainment, live entertainment'
    ),
    (
        'media',
        0.6,
        'description',
        NULL,
        'media, publish, tv, streaming, entertainment company, writer, radio, podcaster'
    ),
    ('media', 0.4, 'description', NULL, 'film, music'),
    (
        'media',
        -2,
        'description',
        NULL,
        'notation, game developer, social media, media measurement, media and, broadband'
    ),
    (
        'gaming', 1, 'any', NULL,
        'game studio, video game, game developer, esport, puzzle game, mobile game, game engine,'
        'interactive entertainment, blockchain game, 3d game'
    ),
    ('gaming', 0.6, 'description', NULL, 'game company'),
    (
        'marketing', 1, 'any', NULL,
        'email marketing, marketing agency, advertising agency, software for marketing, content marketing, '
        'public relation, pr agency, market research, martech, adtech,'
        'ad campaign, media measurement, creative transformation, seo, buyer of advertising, ai marketing'
    ),
    ('marketing', 0.5, 'description', NULL, 'marketing, advertising'),
    ('marketing', 0.6, 'description', NULL, 'marketing platform, marketing software'),
    (
        'education', 1, 'any', NULL,
        'university, college, tutoring, training provider, language training, bootcamp, business school,'
        'graduate school, school district, public school, learning platform, online learning, edtech, education'
    ),
    ('education', 0.6, 'description', NULL, 'learning, student, school, course'),
    (
        'education',
        -2,
        'description',
        NULL,
        'machine learning, self learning, student loan, and education, care education'
    ),
    (
        'edtech', 1, 'any', NULL,
        'edtech, learning platform, online learning, learning management, learning app, online course, study tool,'
        'homework help, learning community, study app, k 12, language learning'
    ),
    ('edtech', 1, 'description', '{tech,software}', 'student, learning, classroom, course'),
    ('edtech', 0.4, 'description', '{tech,software}', 'teacher'),
    ('edtech', -2, 'description', NULL, 'machine learning, self learning, student loan, career training'),
    (
        'government', 1, 'any', NULL,
        'government agency, federal agency, department of, city of, municipal service, ministry, executive branch,'
        'land service, govtech, local government, tax authority, customs authority, public service, government digital'
    ),
    ('government', 0.5, 'description', NULL, 'government, public sector, authority'),
    ('government', -2, 'description', NULL, 'credit union, public service broadcaster'),
    (
        'nonprofit', 1, 'any', NULL,
        'nonprofit, non profit, charity, ngo, humanitarian, church, museum, think tank, public policy organization'
    ),
    ('nonprofit', 0.6, 'description', NULL, 'foundation, conservation, donation'),
    ('nonprofit', -2, 'description', NULL, 'academic medical center, medical center, foundation trust'),
    (
        'legal', 1, 'any', NULL,
        'law firm, legal, lawyer, attorney, law practice, litigation, e discovery, legal tech, contract lifecycle'
    ),
    ('legal', -1, 'description', NULL, 'legal team'),
    ('consulting', 1, 'any', NULL, 'consulting, consultancy, management consulting, consulting firm, consultant'),
    ('consulting', 0.5, 'description', NULL, 'advisory'),
    (
        'consulting',
        -2,
        'description',
        NULL,
        'business consulting firm, cultural consulting, financial advisory service'
    ),
    (
        'professional_services', 1, 'any', NULL,
        'professional service, law firm, consulting firm, accounting firm, cpa firm, recruitment, staffing,'
        'recruiting agency, marketing agency, advertising agency, public relations firm, market research,'
        'architecture firm, engineering and design, technology service, managed service, it service, law practice,'
        'consultancy'
    ),
    ('professional_services', 0.5, 'description', NULL, 'agency, advertising'),
    (
        'hr_services', 1, 'any', NULL,
        'staffing, recruiting, recruitment, peo, people platform, people management, human capital, job site,'
        'hr software, hiring software, workforce management, talent company, talent solution, hr platform'
    ),
    ('hr_services', 0.6, 'description', NULL, 'hr, human resource, payroll, hiring, talent, compensation, workforce')
) AS k (group_name, weight, field, applies_to, keywords);

-- what users type -> group
INSERT INTO crm.industry_term (term, group_name)
SELECT
    btrim(unnest(string_to_array(t.terms, ','))) AS term,
    t.group_name
FROM (
    VALUES
    ('banking', 'lenders, credit unions'),
    ('payments', 'payment companies, payments companies, fintech payments'),
    ('hr_services', 'staffing agencies, recruiting agencies, hr tech, hr software, payroll'),
    ('government', 'government agencies, public agencies, agencies of the government'),
    ('marketing', 'ad tech, mar tech, advertising agencies, pr firms'),
    ('legal', 'legal tech, law practices'),
    ('hospitality', 'hotel, travel companies, airlines, cruise lines, casinos'),
    ('gaming', 'game companies, gaming companies, video game companies, game developers'),
    ('healthcare_providers', 'health systems, medical practices'),
    ('logistics', 'shipping companies, freight companies, carriers'),
    ('automotive', 'automotive suppliers, carmakers, auto makers'),
    ('aerospace_defense', 'defense contractors'),
    ('retail', 'retail chains, stores'),
    ('insurance', 'insurance companies, insurtechs'),
    ('crypto', 'crypto companies, blockchain companies'),
    ('real_estate', 'real estate companies, brokerages, property managers'),
    ('ai', 'ai companies, ai startups'),
    ('edtech', 'edtech companies, edtechs'),
    ('cybersecurity', 'security software companies'),
    ('it_services', 'it services companies, it service providers'),
    ('consulting', 'consulting firms'),
    ('professional_services', 'professional services firms'),
    ('energy', 'energy companies, utilities companies')
) AS t (group_name, terms)
ON CONFLICT (term) DO NOTHING;

------------------------------------------------------------------------------------------------------------
-- Indexes of the new filters (tests/test_search_plans.py: no sequential scan of the index tables at 500K)
------------------------------------------------------------------------------------------------------------

-- a country as stored ("United Kingdom", "U.K.", "GB") in the form crm.country_code looks up (index/search.sql)
CREATE INDEX contact_index_country_idx ON crm.contact_index
(org_id, crm.norm_text(replace(replace(country, '.', ''), '&', ' and ')));
CREATE INDEX contact_index_owner_idx ON crm.contact_index (org_id, owner_crm_id);
CREATE INDEX contact_index_last_contacted_idx ON crm.contact_index (org_id, last_contacted_at);
CREATE INDEX contact_index_last_activity_idx ON crm.contact_index (org_id, last_activity_at);
CREATE INDEX contact_index_created_idx ON crm.contact_index (org_id, crm_created_at);

CREATE INDEX company_index_country_idx ON crm.company_index
(org_id, crm.norm_text(replace(replace(country, '.', ''), '&', ' and ')));
CREATE INDEX company_index_city_idx ON crm.company_index (org_id, crm.norm_text(city));
CREATE INDEX company_index_region_idx ON crm.company_index (org_id, lower(btrim(region)));
CREATE INDEX company_index_employees_idx ON crm.company_index (org_id, employee_count);
CREATE INDEX company_index_revenue_idx ON crm.company_index (org_id, annual_revenue);
CREATE INDEX company_index_owner_idx ON crm.company_index (org_id, owner_crm_id);
CREATE INDEX company_index_created_idx ON crm.company_index (org_id, crm_created_at);

CREATE INDEX deal_index_close_date_idx ON crm.deal_index (org_id, close_date);
CREATE INDEX deal_index_amount_idx ON crm.deal_index (org_id, amount);
CREATE INDEX deal_index_owner_idx ON crm.deal_index (org_id, owner_crm_id);
CREATE INDEX deal_index_created_idx ON crm.deal_index (org_id, crm_created_at);
