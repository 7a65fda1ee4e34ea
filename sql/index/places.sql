-- Places: what the location filter and the interpreter understand (issue 17). Current definitions, re-applied
-- after the migrations whenever this file changes (sql/README.md). Used by index/search.sql (the location filter)
-- and index/interpret.sql; the migrations index crm.company_index / crm.contact_index on the same expressions.

------------------------------------------------------------------------------------------------------------
-- Places: what a location filter and the interpreter understand
------------------------------------------------------------------------------------------------------------
-- Countries are compared as ISO 3166 codes (crm.country_code of the stored text, which CRMs hold as "United
-- Kingdom", "UK", "GB" or "England"); a region ("Nordics", "DACH", "Europe") is its countries; anything else is a
-- city, state or region name compared with the company's city and region (a US state or Canadian province also by
-- the code CRMs store: "california" matches "CA").

-- country names, usual aliases and ISO 3166 codes (lower case) -> code (columns)
CREATE OR REPLACE FUNCTION crm.place_country_names() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    '{"ad": "AD", "ae": "AE", "af": "AF", "afghanistan": "AF", "ag": "AG", "ai": "AI", "al": "AL", '
    '"aland islands": "AX", "albania": "AL", "algeria": "DZ", "am": "AM", "america": "US", "american samoa": "AS", '
    '"andorra": "AD", "angola": "AO", "anguilla": "AI", "antarctica": "AQ", "antigua": "AG", '
    '"antigua and barbuda": "AG", "ao": "AO", "aq": "AQ", "ar": "AR", "argentina": "AR", "armenia": "AM", '
    '"aruba": "AW", "as": "AS", "at": "AT", "au": "AU", "australia": "AU", "austria": "AT", "aw": "AW", "ax": "AX", '
    '"az": "AZ", "azerbaijan": "AZ", "ba": "BA", "bahamas": "BS", "bahrain": "BH", "bangladesh": "BD", '
    '"barbados": "BB", "bb": "BB", "bd": "BD", "be": "BE", "belarus": "BY", "belgium": "BE", "belize": "BZ", '
    '"benin": "BJ", "bermuda": "BM", "bf": "BF", "bg": "BG", "bh": "BH", "bhutan": "BT", "bi": "BI", "bj": "BJ", '
    '"bl": "BL", "bm": "BM", "bn": "BN", "bo": "BO", "bolivia": "BO", "bosnia": "BA", '
    '"bosnia and herzegovina": "BA", "botswana": "BW", "bouvet island": "BV", "bq": "BQ", "br": "BR", '
    '"brasil": "BR", "brazil": "BR", "britain": "GB", "britain uk": "GB", "british indian ocean territory": "IO", '
    '"brunei": "BN", "bs": "BS", "bt": "BT", "bulgaria": "BG", "burkina faso": "BF", "burma": "MM", "burundi": "BI", '
    '"bv": "BV", "bw": "BW", "by": "BY", "bz": "BZ", "ca": "CA", "cabo verde": "CV", "cambodia": "KH", '
    '"cameroon": "CM", "canada": "CA", "cape verde": "CV", "caribbean nl": "BQ", "cayman islands": "KY", "cc": "CC", '
    '"cd": "CD", "central african rep": "CF", "cf": "CF", "cg": "CG", "ch": "CH", "chad": "TD", "chile": "CL", '
    '"china": "CN", "christmas island": "CX", "ci": "CI", "ck": "CK", "cl": "CL", "cm": "CM", "cn": "CN", '
    '"co": "CO", "cocos keeling islands": "CC", "colombia": "CO", "comoros": "KM", "congo": "CG", '
    '"congo dem rep": "CD", "congo rep": "CG", "cook islands": "CK", "costa rica": "CR", "cote d ivoire": "CI", '
    '"cote d''ivoire": "CI", "cr": "CR", "croatia": "HR", "cu": "CU", "cuba": "CU", "curacao": "CW", "cv": "CV", '
    '"cw": "CW", "cx": "CX", "cy": "CY", "cyprus": "CY", "cz": "CZ", "czech republic": "CZ", "czechia": "CZ", '
    '"de": "DE", "democratic republic of the congo": "CD", "denmark": "DK", "deutschland": "DE", "dj": "DJ", '
    '"djibouti": "DJ", "dk": "DK", "dm": "DM", "do": "DO", "dominica": "DM", "dominican republic": "DO", '
    '"drc": "CD", "dubai": "AE", "dz": "DZ", "east timor": "TL", "ec": "EC", "ecuador": "EC", "ee": "EE", '
    '"eg": "EG", "egypt": "EG", "eh": "EH", "el salvador": "SV", "emirates": "AE", "england": "GB", '
    '"equatorial guinea": "GQ", "er": "ER", "eritrea": "ER", "es": "ES", "espana": "ES", "estonia": "EE", '
    '"eswatini": "SZ", "eswatini swaziland": "SZ", "et": "ET", "ethiopia": "ET", "falkland islands": "FK", '
    '"faroe islands": "FO", "fi": "FI", "fiji": "FJ", "finland": "FI", "fj": "FJ", "fk": "FK", "fm": "FM", '
    '"fo": "FO", "fr": "FR", "france": "FR", "french guiana": "GF", "french polynesia": "PF", "french s terr": "TF", '
    '"ga": "GA", "gabon": "GA", "gambia": "GM", "gb": "GB", "gd": "GD", "ge": "GE", "georgia": "GE", '
    '"germany": "DE", "gf": "GF", "gg": "GG", "gh": "GH", "ghana": "GH", "gi": "GI", "gibraltar": "GI", "gl": "GL", '
    '"gm": "GM", "gn": "GN", "gp": "GP", "gq": "GQ", "gr": "GR", "great britain": "GB", "greece": "GR", '
    '"greenland": "GL", "grenada": "GD", "gs": "GS", "gt": "GT", "gu": "GU", "guadeloupe": "GP", "guam": "GU", '
    '"guatemala": "GT", "guernsey": "GG", "guinea": "GN", "guinea bissau": "GW", "guyana": "GY", "gw": "GW", '
    '"gy": "GY", "haiti": "HT", "heard island and mcdonald islands": "HM", "hk": "HK", "hm": "HM", "hn": "HN", '
    '"holland": "NL", "honduras": "HN", "hong kong": "HK", "hr": "HR", "ht": "HT", "hu": "HU", "hungary": "HU", '
    '"iceland": "IS", "id": "ID", "ie": "IE", "il": "IL", "im": "IM", "in": "IN", "india": "IN", "indonesia": "ID", '
    '"io": "IO", "iq": "IQ", "ir": "IR", "iran": "IR", "iraq": "IQ", "ireland": "IE", "is": "IS", '
    '"isle of man": "IM", "israel": "IL", "it": "IT", "italy": "IT", "ivory coast": "CI", "jamaica": "JM", '
    '"japan": "JP", "je": "JE", "jersey": "JE", "jm": "JM", "jo": "JO", "jordan": "JO", "jp": "JP", '
    '"kazakhstan": "KZ", "ke": "KE", "kenya": "KE", "kg": "KG", "kh": "KH", "ki": "KI", "kiribati": "KI", '
    '"km": "KM", "kn": "KN", "korea": "KR", "korea north": "KP", "korea south": "KR", "kosovo": "XK", "kp": "KP", '
    '"kr": "KR", "kuwait": "KW", "kw": "KW", "ky": "KY", "kyrgyzstan": "KG", "kz": "KZ", "la": "LA", "laos": "LA", '
    '"latvia": "LV", "lb": "LB", "lc": "LC", "lebanon": "LB", "lesotho": "LS", "li": "LI", "liberia": "LR", '
    '"libya": "LY", "liechtenstein": "LI", "lithuania": "LT", "lk": "LK", "lr": "LR", "ls": "LS", "lt": "LT", '
    '"lu": "LU", "luxembourg": "LU", "lv": "LV", "ly": "LY", "ma": "MA", "macao": "MO", "macau": "MO", '
    '"macedonia": "MK", "madagascar": "MG", "malawi": "MW", "malaysia": "MY", "maldives": "MV", "mali": "ML", '
    '"malta": "MT", "marshall islands": "MH", "martinique": "MQ", "mauritania": "MR", "mauritius": "MU", '
    '"mayotte": "YT", "mc": "MC", "md": "MD", "me": "ME", "mexico": "MX", "mf": "MF", "mg": "MG", "mh": "MH", '
    '"micronesia": "FM", "mk": "MK", "ml": "ML", "mm": "MM", "mn": "MN", "mo": "MO", "moldova": "MD", '
    '"monaco": "MC", "mongolia": "MN", "montenegro": "ME", "montserrat": "MS", "morocco": "MA", "mozambique": "MZ", '
    '"mp": "MP", "mq": "MQ", "mr": "MR", "ms": "MS", "mt": "MT", "mu": "MU", "mv": "MV", "mw": "MW", "mx": "MX", '
    '"my": "MY", "myanmar": "MM", "myanmar burma": "MM", "mz": "MZ", "na": "NA", "namibia": "NA", "nauru": "NR", '
    '"nc": "NC", "ne": "NE", "nepal": "NP", "netherlands": "NL", "new caledonia": "NC", "new zealand": "NZ", '
    '"nf": "NF", "ng": "NG", "ni": "NI", "nicaragua": "NI", "niger": "NE", "nigeria": "NG", "niue": "NU", '
    '"nl": "NL", "no": "NO", "norfolk island": "NF", "north korea": "KP", "north macedonia": "MK", '
    '"northern ireland": "GB", "northern mariana islands": "MP", "norway": "NO", "np": "NP", "nr": "NR", "nu": "NU", '
    '"nz": "NZ", "om": "OM", "oman": "OM", "osterreich": "AT", "pa": "PA", "pakistan": "PK", "palau": "PW", '
    '"palestine": "PS", "panama": "PA", "papua new guinea": "PG", "paraguay": "PY", "pe": "PE", "peru": "PE", '
    '"pf": "PF", "pg": "PG", "ph": "PH", "philippines": "PH", "pitcairn": "PN", "pk": "PK", "pl": "PL", "pm": "PM", '
    '"pn": "PN", "poland": "PL", "portugal": "PT", "pr": "PR", "ps": "PS", "pt": "PT", "puerto rico": "PR", '
    '"pw": "PW", "py": "PY", "qa": "QA", "qatar": "QA", "re": "RE", "republic of ireland": "IE", '
    '"republic of korea": "KR", "reunion": "RE", "ro": "RO", "romania": "RO", "rs": "RS", "ru": "RU", '
    '"russia": "RU", "russian federation": "RU", "rw": "RW", "rwanda": "RW", "sa": "SA", '
    '"saint kitts and nevis": "KN", "saint lucia": "LC", "saint vincent": "VC", "samoa": "WS", '
    '"samoa american": "AS", "samoa western": "WS", "san marino": "SM", "sao tome and principe": "ST", '
    '"saudi arabia": "SA", "sb": "SB", "sc": "SC", "schweiz": "CH", "scotland": "GB", "sd": "SD", "se": "SE", '
    '"senegal": "SN", "serbia": "RS", "seychelles": "SC", "sg": "SG", "sh": "SH", "si": "SI", "sierra leone": "SL", '
    '"singapore": "SG", "sj": "SJ", "sk": "SK", "sl": "SL", "slovakia": "SK", "slovenia": "SI", "sm": "SM", '
    '"sn": "SN", "so": "SO", "solomon islands": "SB", "somalia": "SO", "south africa": "ZA", '
    '"south georgia and the south sandwich islands": "GS", "south korea": "KR", "south sudan": "SS", "spain": "ES", '
    '"sr": "SR", "sri lanka": "LK", "ss": "SS", "st": "ST", "st barthelemy": "BL", "st helena": "SH", '
    '"st kitts": "KN", "st kitts and nevis": "KN", "st lucia": "LC", "st maarten dutch": "SX", '
    '"st martin french": "MF", "st pierre and miquelon": "PM", "st vincent": "VC", "sudan": "SD", "suisse": "CH", '
    '"suriname": "SR", "sv": "SV", "svalbard and jan mayen": "SJ", "swaziland": "SZ", "sweden": "SE", '
    '"switzerland": "CH", "sx": "SX", "sy": "SY", "syria": "SY", "sz": "SZ", "taiwan": "TW", "tajikistan": "TJ", '
    '"tanzania": "TZ", "tc": "TC", "td": "TD", "tf": "TF", "tg": "TG", "th": "TH", "thailand": "TH", '
    '"the netherlands": "NL", "timor leste": "TL", "tj": "TJ", "tk": "TK", "tl": "TL", "tm": "TM", "tn": "TN", '
    '"to": "TO", "togo": "TG", "tokelau": "TK", "tonga": "TO", "tr": "TR", "trinidad": "TT", '
    '"trinidad and tobago": "TT", "tt": "TT", "tunisia": "TN", "turkey": "TR", "turkiye": "TR", '
    '"turkmenistan": "TM", "turks and caicos is": "TC", "tuvalu": "TV", "tv": "TV", "tw": "TW", "tz": "TZ", '
    '"u k": "GB", "u s": "US", "u s a": "US", "ua": "UA", "uae": "AE", "ug": "UG", "uganda": "UG", "uk": "GB", '
    '"ukraine": "UA", "um": "UM", "united arab emirates": "AE", "united kingdom": "GB", "united states": "US", '
    '"united states of america": "US", "uruguay": "UY", "us": "US", "us minor outlying islands": "UM", "usa": "US", '
    '"uy": "UY", "uz": "UZ", "uzbekistan": "UZ", "va": "VA", "vanuatu": "VU", "vatican": "VA", "vatican city": "VA", '
    '"vc": "VC", "ve": "VE", "venezuela": "VE", "vg": "VG", "vi": "VI", "viet nam": "VN", "vietnam": "VN", '
    '"virgin islands uk": "VG", "virgin islands us": "VI", "vn": "VN", "vu": "VU", "wales": "GB", '
    '"wallis and futuna": "WF", "western sahara": "EH", "western samoa": "WS", "wf": "WF", "ws": "WS", "ye": "YE", '
    '"yemen": "YE", "yt": "YT", "za": "ZA", "zambia": "ZM", "zimbabwe": "ZW", "zm": "ZM", "zw": "ZW"}'
)::jsonb;

-- what a person calls a country -> code (no two-letter codes but UK, US)
CREATE OR REPLACE FUNCTION crm.place_countries() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    '{"afghanistan": "AF", "aland islands": "AX", "albania": "AL", "algeria": "DZ", "america": "US", '
    '"american samoa": "AS", "andorra": "AD", "angola": "AO", "anguilla": "AI", "antarctica": "AQ", "antigua": "AG", '
    '"antigua and barbuda": "AG", "argentina": "AR", "armenia": "AM", "aruba": "AW", "australia": "AU", '
    '"austria": "AT", "azerbaijan": "AZ", "bahamas": "BS", "bahrain": "BH", "bangladesh": "BD", "barbados": "BB", '
    '"belarus": "BY", "belgium": "BE", "belize": "BZ", "benin": "BJ", "bermuda": "BM", "bhutan": "BT", '
    '"bolivia": "BO", "bosnia": "BA", "bosnia and herzegovina": "BA", "botswana": "BW", "bouvet island": "BV", '
    '"brasil": "BR", "brazil": "BR", "britain": "GB", "britain uk": "GB", "british indian ocean territory": "IO", '
    '"brunei": "BN", "bulgaria": "BG", "burkina faso": "BF", "burma": "MM", "burundi": "BI", "cabo verde": "CV", '
    '"cambodia": "KH", "cameroon": "CM", "canada": "CA", "cape verde": "CV", "caribbean nl": "BQ", '
    '"cayman islands": "KY", "central african rep": "CF", "chad": "TD", "chile": "CL", "china": "CN", '
    '"christmas island": "CX", "cocos keeling islands": "CC", "colombia": "CO", "comoros": "KM", "congo": "CG", '
    '"congo dem rep": "CD", "congo rep": "CG", "cook islands": "CK", "costa rica": "CR", "cote d ivoire": "CI", '
    '"cote d''ivoire": "CI", "croatia": "HR", "cuba": "CU", "curacao": "CW", "cyprus": "CY", "czech republic": "CZ", '
    '"czechia": "CZ", "democratic republic of the congo": "CD", "denmark": "DK", "deutschland": "DE", '
    '"djibouti": "DJ", "dominica": "DM", "dominican republic": "DO", "drc": "CD", "dubai": "AE", "east timor": "TL", '
    '"ecuador": "EC", "egypt": "EG", "el salvador": "SV", "emirates": "AE", "england": "GB", '
    '"equatorial guinea": "GQ", "eritrea": "ER", "espana": "ES", "estonia": "EE", "eswatini": "SZ", '
    '"eswatini swaziland": "SZ", "ethiopia": "ET", "falkland islands": "FK", "faroe islands": "FO", "fiji": "FJ", '
    '"finland": "FI", "france": "FR", "french guiana": "GF", "french polynesia": "PF", "french s terr": "TF", '
    '"gabon": "GA", "gambia": "GM", "georgia": "GE", "germany": "DE", "ghana": "GH", "gibraltar": "GI", '
    '"great britain": "GB", "greece": "GR", "greenland": "GL", "grenada": "GD", "guadeloupe": "GP", "guam": "GU", '
    '"guatemala": "GT", "guernsey": "GG", "guinea": "GN", "guinea bissau": "GW", "guyana": "GY", "haiti": "HT", '
    '"heard island and mcdonald islands": "HM", "holland": "NL", "honduras": "HN", "hong kong": "HK", '
    '"hungary": "HU", "iceland": "IS", "india": "IN", "indonesia": "ID", "iran": "IR", "iraq": "IQ", '
    '"ireland": "IE", "isle of man": "IM", "israel": "IL", "italy": "IT", "ivory coast": "CI", "jamaica": "JM", '
    '"japan": "JP", "jersey": "JE", "jordan": "JO", "kazakhstan": "KZ", "kenya": "KE", "kiribati": "KI", '
    '"korea": "KR", "korea north": "KP", "korea south": "KR", "kosovo": "XK", "kuwait": "KW", "kyrgyzstan": "KG", '
    '"laos": "LA", "latvia": "LV", "lebanon": "LB", "lesotho": "LS", "liberia": "LR", "libya": "LY", '
    '"liechtenstein": "LI", "lithuania": "LT", "luxembourg": "LU", "macao": "MO", "macau": "MO", "macedonia": "MK", '
    '"madagascar": "MG", "malawi": "MW", "malaysia": "MY", "maldives": "MV", "mali": "ML", "malta": "MT", '
    '"marshall islands": "MH", "martinique": "MQ", "mauritania": "MR", "mauritius": "MU", "mayotte": "YT", '
    '"mexico": "MX", "micronesia": "FM", "moldova": "MD", "monaco": "MC", "mongolia": "MN", "montenegro": "ME", '
    '"montserrat": "MS", "morocco": "MA", "mozambique": "MZ", "myanmar": "MM", "myanmar burma": "MM", '
    '"namibia": "NA", "nauru": "NR", "nepal": "NP", "netherlands": "NL", "new caledonia": "NC", "new zealand": "NZ", '
    '"nicaragua": "NI", "niger": "NE", "nigeria": "NG", "niue": "NU", "norfolk island": "NF", "north korea": "KP", '
    '"north macedonia": "MK", "northern ireland": "GB", "northern mariana islands": "MP", "norway": "NO", '
    '"oman": "OM", "osterreich": "AT", "pakistan": "PK", "palau": "PW", "palestine": "PS", "panama": "PA", '
    '"papua new guinea": "PG", "paraguay": "PY", "peru": "PE", "philippines": "PH", "pitcairn": "PN", '
    '"poland": "PL", "portugal": "PT", "puerto rico": "PR", "qatar": "QA", "republic of ireland": "IE", '
    '"republic of korea": "KR", "reunion": "RE", "romania": "RO", "russia": "RU", "russian federation": "RU", '
    '"rwanda": "RW", "saint kitts and nevis": "KN", "saint lucia": "LC", "saint vincent": "VC", "samoa": "WS", '
    '"samoa american": "AS", "samoa western": "WS", "san marino": "SM", "sao tome and principe": "ST", '
    '"saudi arabia": "SA", "schweiz": "CH", "scotland": "GB", "senegal": "SN", "serbia": "RS", "seychelles": "SC", '
    '"sierra leone": "SL", "singapore": "SG", "slovakia": "SK", "slovenia": "SI", "solomon islands": "SB", '
    '"somalia": "SO", "south africa": "ZA", "south georgia and the south sandwich islands": "GS", '
    '"south korea": "KR", "south sudan": "SS", "spain": "ES", "sri lanka": "LK", "st barthelemy": "BL", '
    '"st helena": "SH", "st kitts": "KN", "st kitts and nevis": "KN", "st lucia": "LC", "st maarten dutch": "SX", '
    '"st martin french": "MF", "st pierre and miquelon": "PM", "st vincent": "VC", "sudan": "SD", "suisse": "CH", '
    '"suriname": "SR", "svalbard and jan mayen": "SJ", "swaziland": "SZ", "sweden": "SE", "switzerland": "CH", '
    '"syria": "SY", "taiwan": "TW", "tajikistan": "TJ", "tanzania": "TZ", "thailand": "TH", "the netherlands": "NL", '
    '"timor leste": "TL", "togo": "TG", "tokelau": "TK", "tonga": "TO", "trinidad": "TT", '
    '"trinidad and tobago": "TT", "tunisia": "TN", "turkey": "TR", "turkiye": "TR", "turkmenistan": "TM", '
    '"turks and caicos is": "TC", "tuvalu": "TV", "u k": "GB", "u s": "US", "u s a": "US", "uae": "AE", '
    '"uganda": "UG", "uk": "GB", "ukraine": "UA", "united arab emirates": "AE", "united kingdom": "GB", '
    '"united states": "US", "united states of america": "US", "uruguay": "UY", "us": "US", '
    '"us minor outlying islands": "UM", "usa": "US", "uzbekistan": "UZ", "vanuatu": "VU", "vatican": "VA", '
    '"vatican city": "VA", "venezuela": "VE", "viet nam": "VN", "vietnam": "VN", "virgin islands uk": "VG", '
    '"virgin islands us": "VI", "wales": "GB", "wallis and futuna": "WF", "western sahara": "EH", '
    '"western samoa": "WS", "yemen": "YE", "zambia": "ZM", "zimbabwe": "ZW"}'
)::jsonb;

-- 'German companies', 'UK customers' -> code
CREATE OR REPLACE FUNCTION crm.place_demonyms() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    '{"american": "US", "argentine": "AR", "argentinian": "AR", "australian": "AU", "austrian": "AT", '
    '"belgian": "BE", "brazilian": "BR", "british": "GB", "canadian": "CA", "chilean": "CL", "chinese": "CN", '
    '"colombian": "CO", "czech": "CZ", "danish": "DK", "dutch": "NL", "egyptian": "EG", "emirati": "AE", '
    '"english": "GB", "estonian": "EE", "finnish": "FI", "french": "FR", "german": "DE", "greek": "GR", '
    '"hungarian": "HU", "icelandic": "IS", "indian": "IN", "irish": "IE", "israeli": "IL", "italian": "IT", '
    '"japanese": "JP", "kenyan": "KE", "korean": "KR", "latvian": "LV", "lithuanian": "LT", "luxembourgish": "LU", '
    '"mexican": "MX", "new zealand": "NZ", "nigerian": "NG", "norwegian": "NO", "polish": "PL", "portuguese": "PT", '
    '"romanian": "RO", "saudi": "SA", "scottish": "GB", "singaporean": "SG", "south african": "ZA", "spanish": "ES", '
    '"swedish": "SE", "swiss": "CH", "turkish": "TR", "ukrainian": "UA", "welsh": "GB"}'
)::jsonb;

-- regions -> their countries (the Middle East: Western Asia with Egypt and Turkey, without Cyprus, an EU member;
-- EMEA: Europe, the Middle East and Africa; APAC: East, South and Southeast Asia and Oceania)
CREATE OR REPLACE FUNCTION crm.place_regions() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    '{"africa": ["AO", "BF", "BI", "BJ", "BW", "CD", "CF", "CG", "CI", "CM", "CV", "DJ", "DZ", "EG", "ER", "ET", '
    '"GA", "GH", "GM", "GN", "GQ", "GW", "KE", "KM", "LR", "LS", "LY", "MA", "MG", "ML", "MR", "MU", "MW", "MZ", '
    '"NA", "NE", "NG", "RW", "SC", "SD", "SL", "SN", "SO", "SS", "ST", "SZ", "TD", "TG", "TN", "TZ", "UG", "ZA", '
    '"ZM", "ZW"], "anz": ["AU", "NZ"], "apac": ["AU", "BD", "BN", "CN", "FJ", "HK", "ID", "IN", "JP", "KH", '
    '"KR", "LA", "LK", "MM", "MN", "MO", "MY", "NP", "NZ", "PG", "PH", "PK", "SG", "TH", "TL", "TW", "VN"], '
    '"asean": ["BN", "ID", "KH", "LA", "MM", "MY", "PH", "SG", "TH", "TL", "VN"], "asia pacific": ["AU", "BD", '
    '"BN", "CN", "FJ", "HK", "ID", "IN", "JP", "KH", "KR", "LA", "LK", "MM", "MN", "MO", "MY", "NP", "NZ", "PG", '
    '"PH", "PK", "SG", "TH", "TL", "TW", "VN"], "asia-pacific": ["AU", "BD", "BN", "CN", "FJ", "HK", "ID", "IN", '
    '"JP", "KH", "KR", "LA", "LK", "MM", "MN", "MO", "MY", "NP", "NZ", "PG", "PH", "PK", "SG", "TH", "TL", "TW", '
    '"VN"], "baltics": ["EE", "LT", "LV"], "benelux": ["BE", "LU", "NL"], "central america": ["BZ", "CR", "GT", '
    '"HN", "NI", "PA", "SV"], "dach": ["AT", "CH", "DE"], "emea": ["AD", "AE", "AL", "AO", "AT", "BA", "BE", '
    '"BF", "BG", "BH", "BI", "BJ", "BW", "CD", "CF", "CG", "CH", "CI", "CM", "CV", "CY", "CZ", "DE", "DJ", "DK", '
    '"DZ", "EE", "EG", "ER", "ES", "ET", "FI", "FR", "GA", "GB", "GH", "GM", "GN", "GQ", "GR", "GW", "HR", "HU", '
    '"IE", "IL", "IQ", "IR", "IS", "IT", "JO", "KE", "KM", "KW", "LB", "LI", "LR", "LS", "LT", "LU", "LV", "LY", '
    '"MA", "MC", "MD", "ME", "MG", "MK", "ML", "MR", "MT", "MU", "MW", "MZ", "NA", "NE", "NG", "NL", "NO", "OM", '
    '"PL", "PS", "PT", "QA", "RO", "RS", "RW", "SA", "SC", "SD", "SE", "SI", "SK", "SL", "SM", "SN", "SO", "SS", '
    '"ST", "SY", "SZ", "TD", "TG", "TN", "TR", "TZ", "UA", "UG", "VA", "XK", "YE", "ZA", "ZM", "ZW"], '
    '"eu": ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", '
    '"LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"], "europe": ["AD", "AL", "AT", "BA", "BE", '
    '"BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR", "HU", "IE", "IS", "IT", "LI", '
    '"LT", "LU", "LV", "MC", "MD", "ME", "MK", "MT", "NL", "NO", "PL", "PT", "RO", "RS", "SE", "SI", "SK", "SM", '
    '"UA", "VA", "XK"], "european union": ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", '
    '"GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"], '
    '"gcc": ["AE", "BH", "KW", "OM", "QA", "SA"], "iberia": ["ES", "PT"], "latam": ["AR", "BO", "BR", "CL", '
    '"CO", "CR", "CU", "DO", "EC", "GT", "HN", "MX", "NI", "PA", "PE", "PY", "SV", "UY", "VE"], '
    '"latin america": ["AR", "BO", "BR", "CL", "CO", "CR", "CU", "DO", "EC", "GT", "HN", "MX", "NI", "PA", "PE", '
    '"PY", "SV", "UY", "VE"], "mena": ["AE", "BH", "DZ", "EG", "IL", "IQ", "IR", "JO", "KW", "LB", "LY", "MA", '
    '"OM", "PS", "QA", "SA", "SY", "TN", "TR", "YE"], "middle east": ["AE", "BH", "EG", "IL", "IQ", "IR", "JO", '
    '"KW", "LB", "OM", "PS", "QA", "SA", "SY", "TR", "YE"], "nordic": ["DK", "FI", "IS", "NO", "SE"], '
    '"nordic countries": ["DK", "FI", "IS", "NO", "SE"], "nordics": ["DK", "FI", "IS", "NO", "SE"], '
    '"north america": ["CA", "MX", "US"], "scandinavia": ["DK", "NO", "SE"], "south america": ["AR", "BO", "BR", '
    '"CL", "CO", "EC", "GY", "PE", "PY", "SR", "UY", "VE"], "south east asia": ["BN", "ID", "KH", "LA", "MM", '
    '"MY", "PH", "SG", "TH", "TL", "VN"], "south-east asia": ["BN", "ID", "KH", "LA", "MM", "MY", "PH", "SG", '
    '"TH", "TL", "VN"], "southeast asia": ["BN", "ID", "KH", "LA", "MM", "MY", "PH", "SG", "TH", "TL", "VN"]}'
)::jsonb;

-- US states, Canadian provinces, a few others -> the code CRMs store beside the name
CREATE OR REPLACE FUNCTION crm.place_subdivisions() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    '{"alabama": "al", "alaska": "ak", "alberta": "ab", "arizona": "az", "arkansas": "ar", '
    '"baden wurttemberg": "bw", "bavaria": "by", "bayern": "by", "british columbia": "bc", "california": "ca", '
    '"catalonia": "ct", "colorado": "co", "connecticut": "ct", "dc": "dc", "delaware": "de", '
    '"district of columbia": "dc", "florida": "fl", "georgia": "ga", "hawaii": "hi", "hesse": "he", "hessen": "he", '
    '"idaho": "id", '
    '"ile de france": "idf", "illinois": "il", "indiana": "in", "iowa": "ia", "kansas": "ks", "kentucky": "ky", '
    '"lombardy": "lombardy", "louisiana": "la", "maine": "me", "manitoba": "mb", "maryland": "md", '
    '"massachusetts": "ma", "michigan": "mi", "minnesota": "mn", "mississippi": "ms", "missouri": "mo", '
    '"montana": "mt", "nebraska": "ne", "nevada": "nv", "new brunswick": "nb", "new hampshire": "nh", '
    '"new jersey": "nj", "new mexico": "nm", "new south wales": "nsw", "new york": "ny", "newfoundland": "nl", '
    '"north carolina": "nc", "north dakota": "nd", "north rhine westphalia": "nw", "nova scotia": "ns", '
    '"ohio": "oh", "oklahoma": "ok", "ontario": "on", "oregon": "or", "pennsylvania": "pa", '
    '"prince edward island": "pe", "quebec": "qc", "queensland": "qld", "rhode island": "ri", "saskatchewan": "sk", '
    '"saxony": "sn", "south carolina": "sc", "south dakota": "sd", "tennessee": "tn", "texas": "tx", "utah": "ut", '
    '"vermont": "vt", "victoria": "vic", "virginia": "va", "washington": "wa", "washington dc": "dc", '
    '"west virginia": "wv", "wisconsin": "wi", "wyoming": "wy"}'
)::jsonb;

-- cities the interpreter knows without the org's data (the org's own company cities count too)
CREATE OR REPLACE FUNCTION crm.place_cities() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    '{"aarhus": "aarhus", "abu dhabi": "abu dhabi", "amsterdam": "amsterdam", "antwerp": "antwerp", '
    '"athens": "athens", "atlanta": "atlanta", "auckland": "auckland", "austin": "austin", "baltimore": "baltimore", '
    '"bangalore": "bangalore", "bangkok": "bangkok", "barcelona": "barcelona", "basel": "basel", '
    '"beijing": "beijing", "belfast": "belfast", "bengaluru": "bangalore", "berlin": "berlin", '
    '"birmingham": "birmingham", "bogota": "bogota", "boston": "boston", "boulder": "boulder", '
    '"brisbane": "brisbane", "bristol": "bristol", "brooklyn": "brooklyn", "brussels": "brussels", '
    '"bucharest": "bucharest", "budapest": "budapest", "buenos aires": "buenos aires", "cairo": "cairo", '
    '"calgary": "calgary", "cambridge": "cambridge", "cape town": "cape town", "cardiff": "cardiff", '
    '"charlotte": "charlotte", "chennai": "chennai", "chicago": "chicago", "cincinnati": "cincinnati", '
    '"cleveland": "cleveland", "cologne": "cologne", "columbus": "columbus", "copenhagen": "copenhagen", '
    '"cork": "cork", "dallas": "dallas", "delhi": "delhi", "denver": "denver", "detroit": "detroit", "doha": "doha", '
    '"dresden": "dresden", "dubai": "dubai", "dublin": "dublin", "dusseldorf": "dusseldorf", '
    '"edinburgh": "edinburgh", "eindhoven": "eindhoven", "espoo": "espoo", "frankfurt": "frankfurt", '
    '"frankfurt am main": "frankfurt", "galway": "galway", "geneva": "geneva", "glasgow": "glasgow", '
    '"gothenburg": "gothenburg", "hamburg": "hamburg", "helsinki": "helsinki", '
    '"ho chi minh city": "ho chi minh city", "hong kong": "hong kong", "houston": "houston", '
    '"hyderabad": "hyderabad", "irvine": "irvine", "istanbul": "istanbul", "jakarta": "jakarta", '
    '"jerusalem": "jerusalem", "johannesburg": "johannesburg", "kansas city": "kansas city", "kiev": "kyiv", '
    '"koln": "cologne", "krakow": "krakow", "kuala lumpur": "kuala lumpur", "kyiv": "kyiv", "lagos": "lagos", '
    '"las vegas": "las vegas", "lausanne": "lausanne", "leeds": "leeds", "leipzig": "leipzig", "lima": "lima", '
    '"lisboa": "lisbon", "lisbon": "lisbon", "london": "london", "los angeles": "los angeles", '
    '"luxembourg": "luxembourg", "lyon": "lyon", "madrid": "madrid", "malmo": "malmo", "manchester": "manchester", '
    '"manhattan": "new york", "manila": "manila", "marseille": "marseille", "melbourne": "melbourne", '
    '"menlo park": "menlo park", "mexico city": "mexico city", "miami": "miami", "milan": "milan", '
    '"milano": "milan", "minneapolis": "minneapolis", "montreal": "montreal", "mountain view": "mountain view", '
    '"mumbai": "mumbai", "munchen": "munich", "munich": "munich", "nairobi": "nairobi", "nashville": "nashville", '
    '"new delhi": "new delhi", "new york": "new york", "new york city": "new york", "nyc": "new york", '
    '"oakland": "oakland", "orlando": "orlando", "osaka": "osaka", "oslo": "oslo", "ottawa": "ottawa", '
    '"oxford": "oxford", "palo alto": "palo alto", "paris": "paris", "perth": "perth", '
    '"philadelphia": "philadelphia", "phoenix": "phoenix", "pittsburgh": "pittsburgh", "portland": "portland", '
    '"porto": "porto", "prague": "prague", "praha": "prague", "pune": "pune", "raleigh": "raleigh", '
    '"redwood city": "redwood city", "reykjavik": "reykjavik", "riga": "riga", "rio de janeiro": "rio de janeiro", '
    '"riyadh": "riyadh", "roma": "rome", "rome": "rome", "rotterdam": "rotterdam", "sacramento": "sacramento", '
    '"saint louis": "st louis", "salt lake city": "salt lake city", "san antonio": "san antonio", '
    '"san diego": "san diego", "san francisco": "san francisco", "san jose": "san jose", "san mateo": "san mateo", '
    '"santa monica": "santa monica", "santiago": "santiago", "sao paulo": "sao paulo", "seattle": "seattle", '
    '"seoul": "seoul", "sf": "san francisco", "shanghai": "shanghai", "shenzhen": "shenzhen", '
    '"singapore": "singapore", "sofia": "sofia", "springfield": "springfield", "st louis": "st louis", '
    '"st. louis": "st louis", "stockholm": "stockholm", "stuttgart": "stuttgart", "sunnyvale": "sunnyvale", '
    '"sydney": "sydney", "taipei": "taipei", "tallinn": "tallinn", "tampa": "tampa", "tel aviv": "tel aviv", '
    '"the hague": "the hague", "tokyo": "tokyo", "toronto": "toronto", "turin": "turin", "utrecht": "utrecht", '
    '"valencia": "valencia", "vancouver": "vancouver", "vienna": "vienna", "vilnius": "vilnius", "warsaw": "warsaw", '
    '"washington": "washington", "wellington": "wellington", "wien": "vienna", "zurich": "zurich"}'
)::jsonb;
-- The ISO 3166 code of a stored country ("United Kingdom", "uk", "GB", "England" -> GB); NULL when unknown.
-- Immutable (a constant map): usable in an index expression.
CREATE OR REPLACE FUNCTION crm.country_code(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN crm.place_country_names() ->> crm.norm_text(replace(replace(p, '.', ''), '&', ' and '));

-- A location filter value in normal form: the countries it names (a country, a region, an ISO code), else the
-- place name as crm.norm_text gives it ("New York City" -> "new york", "München" -> "munich").
CREATE OR REPLACE FUNCTION crm.location_values(p text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN crm.place_regions() ? crm.norm_text(p)
        THEN array(SELECT jsonb_array_elements_text(crm.place_regions() -> crm.norm_text(p)))
    WHEN crm.country_code(p) IS NOT NULL THEN ARRAY[crm.country_code(p)]
    WHEN crm.place_demonyms() ? crm.norm_text(p) THEN ARRAY[crm.place_demonyms() ->> crm.norm_text(p)]
    ELSE ARRAY[coalesce(crm.place_cities() ->> crm.norm_text(p), crm.norm_text(p))]
END;
