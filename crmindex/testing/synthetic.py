"""Deterministic synthetic CRM data: companies, contacts and deals with ground-truth labels.

Used by the tests, the benchmarks, the fake CRM servers and the demo::

    crm = SyntheticCRM(seed=7, contacts=50_000)          # 5,000 companies, 1,000 deals by default
    crm.contact(123)                                     # random access, no need to generate 0..122
    for rows in crm.batches("contacts", 1000): ...       # index_row() dicts, ready for crm.upsert_*

Determinism: every record draws from its own stream of pseudo-random bits, the BLAKE2b digest of
``(seed, kind, index)`` (extended by re-hashing with a counter when used up). Only hashing and integer
arithmetic are involved (no ``random`` module, no ``hash()``, no floats in the draws), so the same
``(seed, sizes, source)`` gives identical data on any machine and Python >= 3.11, and record ``i`` does not
depend on records ``0..i-1``. "Now" is the fixed instant ``SYNTH_NOW`` (overridable with ``as_of``); the
timestamps spread over the three years before it.

Ground truth carried beside the CRM fields (never in ``index_row()``): ``SynthContact.seniority`` /
``department`` (the labels the database's ``crm.title_seniority`` / ``crm.title_department`` should give)
and ``SynthCompany.is_fintech`` (finance-type industry, or a software/internet/IT company whose name has a
pay/fin/bank/ledger/card/lend/capital/credit/wallet/crypto word; reference §4.3). Every company also has a
``description`` that agrees with that label as a person would put it (a fintech company describes its payments,
banking, lending, investing or insurance business; any other its own industry, without a finance word), so the
index's industry groups, which read descriptions before names, find exactly the labelled fintech companies.

Structure that makes random access cheap:

* company ``c``'s domain comes from a bijection of ``c`` onto (prefix, root) pairs, so domains are unique
  within an org without any lookup;
* contact ``j < n_companies`` works at company ``j`` (every company has a contact when there are enough
  contacts); other contacts mostly work at ``j % n_companies``, some at a few large companies, ~3% at none;
* a deal at company ``c`` names contact ``c`` and, when possible, other contacts ``c + k * n_companies``
  that work there too.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import struct
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from hashlib import blake2b
from importlib import resources
from typing import Literal, TypeVar

__all__ = [
    "DEAL_STAGES",
    "DEPARTMENTS",
    "FINTECH_INDUSTRIES",
    "HUBSPOT_INDUSTRIES",
    "LEAD_STATUSES",
    "LIFECYCLE_STAGES",
    "SENIORITIES",
    "SYNTH_NOW",
    "TITLE_TRAPS",
    "SynthCompany",
    "SynthContact",
    "SynthDeal",
    "SyntheticCRM",
]

_T = TypeVar("_T")
Kind = Literal["contacts", "companies", "deals"]
Source = Literal["hubspot", "attio"]

SYNTH_NOW = datetime(2026, 11, 1, tzinfo=UTC)
_SPAN_SECONDS = 3 * 365 * 86400

SENIORITIES = (
    "owner", "founder", "c_suite", "partner", "vp", "head", "director", "manager", "senior", "entry", "intern",
)  # fmt: skip
DEPARTMENTS = (
    "engineering", "sales", "marketing", "finance", "hr", "operations", "product", "design", "legal",
    "customer_success", "it", "data", "executive", "other",
)  # fmt: skip
LIFECYCLE_STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "evangelist", "other")
LEAD_STATUSES = (
    "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING",
)  # fmt: skip
DEAL_STAGES = (
    "appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin", "contractsent",
    "closedwon", "closedlost",
)  # fmt: skip

# HubSpot company `industry` internal values (reference §4.1, 148 values).
_HUBSPOT_INDUSTRIES_TEXT = """
ACCOUNTING AIRLINES_AVIATION ALTERNATIVE_DISPUTE_RESOLUTION ALTERNATIVE_MEDICINE ANIMATION APPAREL_FASHION
ARCHITECTURE_PLANNING ARTS_AND_CRAFTS AUTOMOTIVE AVIATION_AEROSPACE BANKING BIOTECHNOLOGY BROADCAST_MEDIA
BUILDING_MATERIALS BUSINESS_SUPPLIES_AND_EQUIPMENT CAPITAL_MARKETS CHEMICALS CIVIC_SOCIAL_ORGANIZATION
CIVIL_ENGINEERING COMMERCIAL_REAL_ESTATE COMPUTER_NETWORK_SECURITY COMPUTER_GAMES COMPUTER_HARDWARE
COMPUTER_NETWORKING COMPUTER_SOFTWARE INTERNET CONSTRUCTION CONSUMER_ELECTRONICS CONSUMER_GOODS CONSUMER_SERVICES
COSMETICS DAIRY DEFENSE_SPACE DESIGN EDUCATION_MANAGEMENT E_LEARNING ELECTRICAL_ELECTRONIC_MANUFACTURING
ENTERTAINMENT ENVIRONMENTAL_SERVICES EVENTS_SERVICES EXECUTIVE_OFFICE FACILITIES_SERVICES FARMING
FINANCIAL_SERVICES FINE_ART FISHERY FOOD_BEVERAGES FOOD_PRODUCTION FUND_RAISING FURNITURE GAMBLING_CASINOS
GLASS_CERAMICS_CONCRETE GOVERNMENT_ADMINISTRATION GOVERNMENT_RELATIONS GRAPHIC_DESIGN
HEALTH_WELLNESS_AND_FITNESS HIGHER_EDUCATION HOSPITAL_HEALTH_CARE HOSPITALITY HUMAN_RESOURCES IMPORT_AND_EXPORT
INDIVIDUAL_FAMILY_SERVICES INDUSTRIAL_AUTOMATION INFORMATION_SERVICES INFORMATION_TECHNOLOGY_AND_SERVICES
INSURANCE INTERNATIONAL_AFFAIRS INTERNATIONAL_TRADE_AND_DEVELOPMENT INVESTMENT_BANKING INVESTMENT_MANAGEMENT
JUDICIARY LAW_ENFORCEMENT LAW_PRACTICE LEGAL_SERVICES LEGISLATIVE_OFFICE LEISURE_TRAVEL_TOURISM LIBRARIES
LOGISTICS_AND_SUPPLY_CHAIN LUXURY_GOODS_JEWELRY MACHINERY MANAGEMENT_CONSULTING MARITIME MARKET_RESEARCH
MARKETING_AND_ADVERTISING MECHANICAL_OR_INDUSTRIAL_ENGINEERING MEDIA_PRODUCTION MEDICAL_DEVICES
MEDICAL_PRACTICE MENTAL_HEALTH_CARE MILITARY MINING_METALS MOTION_PICTURES_AND_FILM MUSEUMS_AND_INSTITUTIONS
MUSIC NANOTECHNOLOGY NEWSPAPERS NON_PROFIT_ORGANIZATION_MANAGEMENT OIL_ENERGY ONLINE_MEDIA
OUTSOURCING_OFFSHORING PACKAGE_FREIGHT_DELIVERY PACKAGING_AND_CONTAINERS PAPER_FOREST_PRODUCTS PERFORMING_ARTS
PHARMACEUTICALS PHILANTHROPY PHOTOGRAPHY PLASTICS POLITICAL_ORGANIZATION PRIMARY_SECONDARY_EDUCATION PRINTING
PROFESSIONAL_TRAINING_COACHING PROGRAM_DEVELOPMENT PUBLIC_POLICY PUBLIC_RELATIONS_AND_COMMUNICATIONS
PUBLIC_SAFETY PUBLISHING RAILROAD_MANUFACTURE RANCHING REAL_ESTATE RECREATIONAL_FACILITIES_AND_SERVICES
RELIGIOUS_INSTITUTIONS RENEWABLES_ENVIRONMENT RESEARCH RESTAURANTS RETAIL SECURITY_AND_INVESTIGATIONS
SEMICONDUCTORS SHIPBUILDING SPORTING_GOODS SPORTS STAFFING_AND_RECRUITING SUPERMARKETS TELECOMMUNICATIONS
TEXTILES THINK_TANKS TOBACCO TRANSLATION_AND_LOCALIZATION TRANSPORTATION_TRUCKING_RAILROAD UTILITIES
VENTURE_CAPITAL_PRIVATE_EQUITY VETERINARY WAREHOUSING WHOLESALE WINE_AND_SPIRITS WIRELESS WRITING_AND_EDITING
MOBILE_GAMES
"""
HUBSPOT_INDUSTRIES: tuple[str, ...] = tuple(_HUBSPOT_INDUSTRIES_TEXT.split())
# Reference §4.3: finance-type industries are fintech; these tech industries are when the name says so.
FINTECH_INDUSTRIES = frozenset(
    {
        "FINANCIAL_SERVICES", "BANKING", "CAPITAL_MARKETS", "INVESTMENT_BANKING", "INVESTMENT_MANAGEMENT",
        "INSURANCE", "VENTURE_CAPITAL_PRIVATE_EQUITY",
    }
)  # fmt: skip
TECH_INDUSTRIES = frozenset({"COMPUTER_SOFTWARE", "INTERNET", "INFORMATION_TECHNOLOGY_AND_SERVICES"})
# A word of a company's name or domain that makes a tech company fintech.
FINTECH_WORD_RE = re.compile(
    r"(?<![a-z0-9])(pay|fin|bank|ledger|lend|card|capital|credit|wallet|crypto)", re.IGNORECASE
)


# ----------------------------------------------------------------------------------------------------------
# The bit stream
# ----------------------------------------------------------------------------------------------------------

_WORDS = struct.Struct("<16I")

# A draw: the next pseudo-random 32-bit word of a record's stream.
Draw = Callable[[], int]


def _more_words(key: bytes) -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield from _WORDS.unpack(blake2b(key + n.to_bytes(4, "little"), digest_size=64).digest())


def _stream(key: bytes) -> Draw:
    """The words of BLAKE2b-512(key), then of BLAKE2b-512(key || counter) for as long as needed."""
    return itertools.chain(_WORDS.unpack(blake2b(key, digest_size=64).digest()), _more_words(key)).__next__


_LITTLE_ENDIAN = sys.byteorder == "little"
_HALVES = struct.Struct("<64H")


def _stream16(key: bytes) -> Draw:
    """64 16-bit words for the hot path (contacts): BLAKE2b-512(key), then the same bytes rotated by one
    (a contact uses at most ~31 draws; the second half is only a safety margin). Little-endian words."""
    d = blake2b(key, digest_size=64).digest()
    d += d[1:] + d[:1]
    if _LITTLE_ENDIAN:
        return iter(memoryview(d).cast("H")).__next__  # native order = little-endian, and lazy
    return iter(_HALVES.unpack(d)).__next__


def _below(nx: Draw, n: int) -> int:
    """A uniform integer in [0, n) for any n < 2**40 (draws below 2**16 can just use nx() % n)."""
    return ((nx() << 32) | nx()) % n


def _weighted(pairs: Sequence[tuple[_T, int]]) -> tuple[_T, ...]:
    """An expanded table: drawing uniformly from it draws each value with its integer weight."""
    out: list[_T] = []
    for value, weight in pairs:
        out.extend([value] * weight)
    return tuple(out)


# ----------------------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------------------


def _load_names(filename: str) -> tuple[str, ...]:
    text = resources.files("crmindex.testing").joinpath("data", filename).read_text(encoding="utf-8")
    seen: dict[str, None] = {}
    for line in text.splitlines():
        name = line.strip()
        if name and not name.startswith("#"):
            seen[name] = None
    return tuple(seen)


FIRST_NAMES = _load_names("first_names.txt")
LAST_NAMES = _load_names("last_names.txt")
# The first ~180 first names are the common (mostly English) ones; they are drawn more often.
_COMMON_FIRST = FIRST_NAMES[:180]
_COMMON_LAST = LAST_NAMES[:400]

_ASCII_FOLD = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "AE", "đ": "d", "Đ": "D", "ð": "d",
     "Ð": "D", "þ": "th", "Þ": "Th", "\u0131": "i", "œ": "oe", "Œ": "OE"}
)  # fmt: skip


def ascii_slug(name: str) -> str:
    """Lower-case ASCII letters and digits only: "Łukasz" -> "lukasz", "O'Neil" -> "oneil"."""
    folded = unicodedata.normalize("NFKD", name.translate(_ASCII_FOLD)).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


# Drawing from these tables gives the common names ~3x the weight of the rest.
_FIRST_TABLE = FIRST_NAMES + _COMMON_FIRST * 2
_LAST_TABLE = LAST_NAMES + _COMMON_LAST * 2
_N_FIRST = len(_FIRST_TABLE)
_N_LAST = len(_LAST_TABLE)
_SLUG: dict[str, str] = {n: ascii_slug(n) for n in (*FIRST_NAMES, *LAST_NAMES)}

# ----------------------------------------------------------------------------------------------------------
# Companies
# ----------------------------------------------------------------------------------------------------------

_FINTECH_PREFIXES = (
    "Pay", "Fin", "Ledger", "Bank", "Card", "Lend", "Capital", "Credit", "Wallet", "Crypto", "Payable", "Finance",
)  # fmt: skip
_GENERAL_PREFIXES_RAW = """
Blue Bright North South East West Silver Iron Red Clear Swift Cloud Quantum Summit Pine Harbor Apex Nova
Vertex Stellar Crimson Granite Amber Aspen Atlas Aurora Beacon Birch Bold Cedar Cobalt Copper Coral Crystal
Cyan Delta Echo Ember Emerald Evergreen Falcon Fern Firefly Frost Galaxy Garnet Glacier Gold Golden Green
Grey Hawk Hazel Helix Horizon Indigo Ivory Jade Juniper Kestrel Lark Lemon Lime Linden Lunar Lynx Maple
Marble Meadow Mesa Meridian Metro Misty Navy Nimbus Noble Nord Ocean Olive Onyx Opal Orchid Pacific Pearl
Pebble Pioneer Pixel Polar Prime Prism Quartz Radiant Rapid Raven Redwood Ruby Rust Sage Sapphire Scarlet
Sequoia Shadow Sierra Slate Solar Sonic Spruce Steel Storm Sunny Terra Thunder Tidal Timber Titan True Twin
Ultra Union Unity Urban Vector Velvet Verde Vivid Wild Willow Winter Wolf Zen Zenith Zephyr Alpine Arctic
Azure Basalt Bear Blaze Canyon Cascade Chrome Citrus Comet Cosmic Cotton Crane Dawn Desert Drift Eagle Elm
Everest Flint Forest Fusion Gemini Grand Gravity Harvest Heron High Hollow Hyper Icon Infinite Keystone
Kinetic Lantern Laser Legacy Liberty Lotus Magnet Majestic Mercury Micro Midnight Mighty Monarch Neon Nexus
Nitro Oasis Omni Optic Orion Osprey Paragon Phoenix Planet Plaza Rain Ranger Regal Rocket Royal Saffron
Scout Snow Stride Sugar Tango Teal Tiger Topaz Trail Tribe Tundra Vista Wren Zinc Acme
"""
_ROOTS_RAW = """
wave stack ridge field works labs point path bridge forge line scale loop grid hub leaf stone craft shift
spring gate port view mark base core flow bit byte cast cloud dash deck dock edge fly frame glow grove hive
kit lab land light link logic mind nest net node peak pilot quest rise river root route scope sense set ship
side sight sky spark sphere spot star stream sync tide tree trail vault verse vine ware way well wind wing
wise wood yard zone arc bay beam bloom bolt box brook burst camp chain circle cliff coast crest den drop dune
fall fire fox gear glade hall harbor haven hill horn jet key lake lane loft mill moon motion mount oak orbit
pad park pass pond pulse quill reach reef ring rock sail sand shore signal smith sound source span spire
sprout square step stride summit table tail thread tower track trust valley vision volt ward watch water
wright ly io ify ora ica era ium ix ex able ster gen hq mo
"""


def _clean_words(raw: str) -> tuple[str, ...]:
    words = tuple(dict.fromkeys(raw.split()))
    return tuple(w for w in words if not FINTECH_WORD_RE.match(w))


_GENERAL_PREFIXES = _clean_words(_GENERAL_PREFIXES_RAW)
_PREFIXES = _FINTECH_PREFIXES + _GENERAL_PREFIXES
_ROOTS = _clean_words(_ROOTS_RAW)
_WORD_ROOTS = frozenset(r for r in _ROOTS if len(r) > 3 and r not in {"able", "ster"})
# Blocks after the first P*R companies get a distinguishing domain suffix (hyphenated: never ambiguous).
_OVERFLOW = ("group", "labs", "global", "systems", "tech", "digital", "works", "cloud", "co", "hq")

# Industry mix (weights per 10,000; every one of the 148 values has weight >= 10).
_INDUSTRY_WEIGHTS: dict[str, int] = dict.fromkeys(HUBSPOT_INDUSTRIES, 10)
_INDUSTRY_WEIGHTS.update(
    {
        "COMPUTER_SOFTWARE": 1300, "INFORMATION_TECHNOLOGY_AND_SERVICES": 800, "INTERNET": 450,
        "FINANCIAL_SERVICES": 330, "BANKING": 100, "INSURANCE": 110, "INVESTMENT_MANAGEMENT": 70,
        "CAPITAL_MARKETS": 30, "VENTURE_CAPITAL_PRIVATE_EQUITY": 45, "INVESTMENT_BANKING": 25,
        "HOSPITAL_HEALTH_CARE": 400, "MARKETING_AND_ADVERTISING": 350, "MANAGEMENT_CONSULTING": 300,
        "RETAIL": 300, "REAL_ESTATE": 250, "CONSTRUCTION": 220, "EDUCATION_MANAGEMENT": 180,
        "HIGHER_EDUCATION": 150, "LOGISTICS_AND_SUPPLY_CHAIN": 180, "STAFFING_AND_RECRUITING": 160,
        "TELECOMMUNICATIONS": 120, "COMPUTER_NETWORK_SECURITY": 150, "MEDICAL_DEVICES": 120,
        "PHARMACEUTICALS": 100, "BIOTECHNOLOGY": 100, "AUTOMOTIVE": 110, "FOOD_BEVERAGES": 140,
        "RESTAURANTS": 110, "HOSPITALITY": 110, "LAW_PRACTICE": 120, "LEGAL_SERVICES": 60, "ACCOUNTING": 110,
        "NON_PROFIT_ORGANIZATION_MANAGEMENT": 130, "HUMAN_RESOURCES": 80, "ONLINE_MEDIA": 70,
        "CONSUMER_GOODS": 90, "CONSUMER_SERVICES": 80, "E_LEARNING": 70, "MECHANICAL_OR_INDUSTRIAL_ENGINEERING": 80,
        "ELECTRICAL_ELECTRONIC_MANUFACTURING": 70, "OIL_ENERGY": 70, "RENEWABLES_ENVIRONMENT": 70,
        "ENTERTAINMENT": 60, "COMPUTER_HARDWARE": 50, "COMMERCIAL_REAL_ESTATE": 50, "MACHINERY": 50,
        "HEALTH_WELLNESS_AND_FITNESS": 80, "MEDICAL_PRACTICE": 60, "WHOLESALE": 50, "GOVERNMENT_ADMINISTRATION": 40,
        "PROFESSIONAL_TRAINING_COACHING": 50, "DESIGN": 40, "ARCHITECTURE_PLANNING": 40, "APPAREL_FASHION": 40,
        "MOBILE_GAMES": 20, "COMPUTER_GAMES": 30,
    }
)  # fmt: skip
_INDUSTRIES_NONFIN = _weighted([(k, v) for k, v in _INDUSTRY_WEIGHTS.items() if k not in FINTECH_INDUSTRIES])
_INDUSTRIES_ALL = _weighted(list(_INDUSTRY_WEIGHTS.items()))
# Companies with a fintech brand are payment/lending software or a finance company.
_INDUSTRIES_FINTECH_BRAND = _weighted(
    [("COMPUTER_SOFTWARE", 45), ("INTERNET", 12), ("INFORMATION_TECHNOLOGY_AND_SERVICES", 8),
     ("FINANCIAL_SERVICES", 25), ("BANKING", 5), ("INSURANCE", 3), ("CAPITAL_MARKETS", 2)]
)  # fmt: skip

# fmt: off
_NOUNS_TECH = ("Software", "Technologies", "Labs", "Systems", "AI", "Digital", "Data", "Cloud", "Tech")
_NOUNS_FIN = ("Capital", "Financial", "Partners", "Wealth", "Asset Management", "Finance")
_NOUNS_GENERIC = ("Group", "Co.", "Solutions", "Industries", "Holdings", "Services", "International", "Company")
# fmt: on
_INDUSTRY_NOUNS: dict[str, tuple[str, ...]] = {
    "BANKING": ("Bank", "Bancorp", "Savings Bank", "Financial"),
    "INSURANCE": ("Insurance", "Assurance", "Mutual"),
    "VENTURE_CAPITAL_PRIVATE_EQUITY": ("Ventures", "Capital", "Partners", "Equity"),
    "HOSPITAL_HEALTH_CARE": ("Health", "Medical Center", "Care", "Health System"),
    "MEDICAL_PRACTICE": ("Medical", "Clinic", "Family Practice"),
    "MEDICAL_DEVICES": ("Medical", "Devices", "Surgical"),
    "PHARMACEUTICALS": ("Pharma", "Therapeutics", "Pharmaceuticals"),
    "BIOTECHNOLOGY": ("Bio", "Biosciences", "Therapeutics", "Genomics"),
    "MARKETING_AND_ADVERTISING": ("Media", "Agency", "Marketing", "Creative"),
    "MANAGEMENT_CONSULTING": ("Consulting", "Advisors", "Partners", "Strategy"),
    "RETAIL": ("Store", "Goods", "Outfitters", "Market"),
    "REAL_ESTATE": ("Realty", "Properties", "Homes"),
    "COMMERCIAL_REAL_ESTATE": ("Properties", "Realty Partners"),
    "CONSTRUCTION": ("Construction", "Builders", "Contracting"),
    "LOGISTICS_AND_SUPPLY_CHAIN": ("Logistics", "Freight", "Supply"),
    "STAFFING_AND_RECRUITING": ("Staffing", "Talent", "Recruiting"),
    "LAW_PRACTICE": ("Law", "Legal", "Law Group"),
    "LEGAL_SERVICES": ("Legal", "Legal Services"),
    "ACCOUNTING": ("Accounting", "CPAs", "Tax & Advisory"),
    "RESTAURANTS": ("Kitchen", "Bistro", "Grill", "Eatery"),
    "HOSPITALITY": ("Hotels", "Hospitality", "Resorts"),
    "EDUCATION_MANAGEMENT": ("Academy", "Learning", "Education"),
    "HIGHER_EDUCATION": ("College", "Institute"),
    "E_LEARNING": ("Learning", "Academy", "Edu"),
    "TELECOMMUNICATIONS": ("Telecom", "Communications", "Networks"),
    "COMPUTER_NETWORK_SECURITY": ("Security", "Cyber", "Defense"),
    "FOOD_BEVERAGES": ("Foods", "Brewing", "Beverages"),
    "OIL_ENERGY": ("Energy", "Petroleum", "Resources"),
    "RENEWABLES_ENVIRONMENT": ("Energy", "Solar", "Renewables"),
    "AUTOMOTIVE": ("Motors", "Automotive", "Auto Group"),
    "NON_PROFIT_ORGANIZATION_MANAGEMENT": ("Foundation", "Alliance", "Initiative"),
    "HUMAN_RESOURCES": ("HR", "People Solutions", "Workforce"),
}
# What a company says about itself (its description), as a person would put it for its label: the fintech companies
# describe their money business (payments, banking, lending, investing, insurance software or services), the others
# their own industry in words that say nothing about finance. The index's classifier reads descriptions before names
# (crm.company_industry_groups: whole words and phrases), so "VPs at fintech" on this data is judged by what the
# companies do, not by a brand prefix ("Cardview", "Fincore": the label comes from the same choice as the text).
# A fintech-branded software company: its line of business by its brand's prefix.
_FINTECH_SOFTWARE_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "Pay": (
        "Payment processing and online payments for merchants.",
        "A payment platform that lets online stores accept payments.",
    ),
    "Payable": ("Accounts payable automation and payment processing for finance teams.",),
    "Fin": (
        "Accounting software and cash management for growing companies.",
        "Spend management and expense management software.",
    ),
    "Finance": (
        "Accounting software for small businesses: invoicing, bookkeeping and reports.",
        "Financial planning and analysis software for finance teams.",
    ),
    "Ledger": (
        "Accounting software and a general ledger for finance teams.",
        "Accounting automation for companies that close their books every month.",
    ),
    "Bank": (
        "Digital banking for small businesses: business accounts, cards and transfers.",
        "Cloud banking software for community banks and credit unions.",
    ),
    "Card": (
        "Card issuing platform for companies that launch their own payment cards.",
        "Corporate cards and expense management for teams.",
    ),
    "Lend": ("A lending platform for small business loans.", "Lending software for banks and credit unions."),
    "Credit": (
        "Credit score monitoring and personal loans in one app.",
        "Lending platform offering lines of credit to small businesses.",
    ),
    "Capital": (
        "Automated investing and wealth management app.",
        "An online broker for commission free trading.",
    ),
    "Wallet": (
        "A digital wallet and money transfer app.",
        "Mobile wallet for sending money to friends and family.",
    ),
    "Crypto": (
        "A crypto exchange for buying and trading digital assets.",
        "Stablecoin payment infrastructure for businesses.",
    ),
}
# A company of a finance-type industry (fintech by its industry; the words agree).
_FINANCE_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "FINANCIAL_SERVICES": (
        "Financial planning and wealth management for families.",
        "Consumer loans and financial planning services.",
        "A lender offering personal loans and mortgages.",
    ),
    "BANKING": (
        "Community bank offering checking accounts, savings accounts and business loans.",
        "A retail bank with branches across the region.",
        "Commercial bank serving local businesses.",
    ),
    "INSURANCE": (
        "Insurance company offering home insurance, car insurance and life insurance.",
        "An insurance agency for property and casualty coverage.",
    ),
    "CAPITAL_MARKETS": (
        "Brokerage and trading platform for securities.",
        "Market maker and trading firm on the major stock exchanges.",
    ),
    "INVESTMENT_BANKING": ("Investment bank advising companies on mergers and capital raising.",),
    "INVESTMENT_MANAGEMENT": (
        "Asset management firm managing portfolios for institutions.",
        "Wealth management for families and foundations.",
    ),
    "VENTURE_CAPITAL_PRIVATE_EQUITY": (
        "Venture capital firm investing in early-stage startups.",
        "Private equity firm that buys and grows mid-size companies.",
    ),
}
# Every other company: its own industry, no finance word (no money, pay, bank, loan, invest, insurance, trading ...).
_INDUSTRY_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "COMPUTER_SOFTWARE": (
        "Project management software for teams.",
        "Customer support software for growing companies.",
        "A cloud platform for developers to build and ship apps.",
        "Analytics dashboards for marketing teams.",
        "Scheduling software for clinics and salons.",
    ),
    "INTERNET": (
        "An online community for travelers.",
        "A review site for local restaurants and shops.",
        "An online platform for booking fitness classes.",
    ),
    "INFORMATION_TECHNOLOGY_AND_SERVICES": (
        "IT consulting and managed services for mid-size companies.",
        "Cloud migration and IT support for schools and hospitals.",
    ),
    "HOSPITAL_HEALTH_CARE": ("A regional hospital and network of clinics.", "Home health care for seniors."),
    "MEDICAL_PRACTICE": (
        "A family medicine clinic.",
        "Dental practice offering general and cosmetic dentistry.",
    ),
    "MEDICAL_DEVICES": ("Maker of surgical instruments and medical devices.",),
    "PHARMACEUTICALS": ("Develops and manufactures generic medicines.",),
    "BIOTECHNOLOGY": (
        "Biotechnology company developing cell therapies.",
        "Genomics research and drug discovery.",
    ),
    "MARKETING_AND_ADVERTISING": (
        "A creative agency for brand campaigns and social media.",
        "Digital marketing agency for local businesses.",
    ),
    "MANAGEMENT_CONSULTING": (
        "Management consulting for manufacturers and retailers.",
        "Strategy and operations consulting.",
    ),
    "RETAIL": ("A chain of outdoor clothing stores.", "Home goods store with locations across the region."),
    "REAL_ESTATE": ("Residential real estate agency.", "Property management for apartment buildings."),
    "COMMERCIAL_REAL_ESTATE": ("Owns and leases office and warehouse space.",),
    "CONSTRUCTION": ("General contractor for commercial buildings.", "Homebuilder of single-family houses."),
    "LOGISTICS_AND_SUPPLY_CHAIN": (
        "Freight forwarding and warehousing.",
        "Trucking and last-mile delivery for retailers.",
    ),
    "STAFFING_AND_RECRUITING": (
        "Staffing agency for nurses and healthcare workers.",
        "Recruiting firm for engineers.",
    ),
    "LAW_PRACTICE": ("A law firm for business and employment law.",),
    "LEGAL_SERVICES": ("Legal document preparation and notary services.",),
    "ACCOUNTING": (
        "An accounting firm offering audit and tax preparation.",
        "CPA firm for small businesses.",
    ),
    "RESTAURANTS": ("A family-owned restaurant group.", "Neighborhood bistro and catering."),
    "HOSPITALITY": ("Boutique hotels and resorts.", "Hotel group with properties in city centers."),
    "EDUCATION_MANAGEMENT": ("Runs private schools and tutoring centers.",),
    "HIGHER_EDUCATION": ("A private college offering degrees in engineering and the arts.",),
    "E_LEARNING": ("Online courses for software developers.", "A language learning app."),
    "TELECOMMUNICATIONS": ("Regional internet and phone provider.", "Fiber network operator."),
    "COMPUTER_NETWORK_SECURITY": (
        "Cybersecurity software that protects company laptops and servers.",
        "Security monitoring for cloud infrastructure.",
    ),
    "FOOD_BEVERAGES": ("Craft brewery and taproom.", "Maker of snacks and frozen foods."),
    "OIL_ENERGY": ("Oil and gas exploration and production.",),
    "RENEWABLES_ENVIRONMENT": ("Solar panel installer for homes and businesses.", "Wind farm developer."),
    "AUTOMOTIVE": ("Car dealership group.", "Maker of auto parts for electric vehicles."),
    "NON_PROFIT_ORGANIZATION_MANAGEMENT": (
        "A nonprofit that runs youth sports programs.",
        "Charity providing meals to families in need.",
    ),
    "HUMAN_RESOURCES": ("HR consulting and employee training.",),
    "ONLINE_MEDIA": ("Online magazine about food and travel.",),
    "CONSUMER_GOODS": ("Maker of household cleaning products.",),
    "CONSUMER_SERVICES": ("Home cleaning and repair services.",),
    "MECHANICAL_OR_INDUSTRIAL_ENGINEERING": ("Engineering firm designing industrial machines.",),
    "ELECTRICAL_ELECTRONIC_MANUFACTURING": ("Manufacturer of circuit boards and cables.",),
    "ENTERTAINMENT": ("Live events and concert promotion.",),
    "COMPUTER_HARDWARE": ("Maker of rugged laptops and tablets.",),
    "MACHINERY": ("Manufacturer of packaging machinery.",),
    "HEALTH_WELLNESS_AND_FITNESS": ("A chain of gyms and yoga studios.",),
    "WHOLESALE": ("Wholesale distributor of kitchen supplies.",),
    "GOVERNMENT_ADMINISTRATION": ("A city department of public works.",),
    "PROFESSIONAL_TRAINING_COACHING": ("Leadership training and executive coaching.",),
    "DESIGN": ("Interior design studio.",),
    "ARCHITECTURE_PLANNING": ("Architecture firm for schools and libraries.",),
    "APPAREL_FASHION": ("Fashion label for women's clothing.",),
    "MOBILE_GAMES": ("Studio making puzzle games for phones.",),
    "COMPUTER_GAMES": ("Independent video game studio.",),
}
_NO_INDUSTRY_DESCRIPTIONS = (
    "A family-owned business serving local customers.",
    "Small business founded by two friends.",
)


def _industry_phrase(industry: str) -> str:
    """An industry's words, e.g. "hospital health care" of HOSPITAL_HEALTH_CARE."""
    return industry.replace("_AND_", " and ").replace("_", " ").lower()


_LEGAL_SUFFIXES = _weighted(
    [("", 60), (" Inc.", 14), (" Inc", 4), (" LLC", 8), (" Ltd", 4), (" Ltd.", 2), (" GmbH", 3), (" Corp.", 3),
     (" Corporation", 1), (" S.A.", 1)]
)  # fmt: skip
_TLDS = _weighted(
    [(".com", 62), (".io", 10), (".co", 6), (".ai", 4), (".net", 4), (".org", 2), (".co.uk", 3), (".de", 3),
     (".fr", 1), (".com.au", 1), (".ca", 1), (".nl", 1), ("app.com", 1)]
)  # fmt: skip
_DOMAIN_FORMS = _weighted([("{}", 85), ("get{}", 5), ("try{}", 2), ("{}hq", 3), ("use{}", 2), ("{}app", 3)])

# (city, country, phone country code, weight)
_PLACES: tuple[tuple[str, str, str], ...] = _weighted(
    [
        (("New York", "United States", "1"), 90), (("San Francisco", "United States", "1"), 70),
        (("Austin", "United States", "1"), 35), (("Boston", "United States", "1"), 35),
        (("Chicago", "United States", "1"), 35), (("Seattle", "United States", "1"), 30),
        (("Los Angeles", "United States", "1"), 35), (("Denver", "United States", "1"), 20),
        (("Atlanta", "United States", "1"), 20), (("Miami", "United States", "1"), 15),
        (("Dallas", "United States", "1"), 20), (("Raleigh", "United States", "1"), 10),
        (("Salt Lake City", "United States", "1"), 8), (("Minneapolis", "United States", "1"), 10),
        (("Toronto", "Canada", "1"), 20), (("Vancouver", "Canada", "1"), 10), (("Montréal", "Canada", "1"), 8),
        (("London", "United Kingdom", "44"), 50), (("Manchester", "United Kingdom", "44"), 10),
        (("Edinburgh", "United Kingdom", "44"), 6), (("Dublin", "Ireland", "353"), 12),
        (("Berlin", "Germany", "49"), 20), (("München", "Germany", "49"), 12), (("Hamburg", "Germany", "49"), 8),
        (("Paris", "France", "33"), 20), (("Lyon", "France", "33"), 5), (("Amsterdam", "Netherlands", "31"), 12),
        (("Stockholm", "Sweden", "46"), 8), (("Copenhagen", "Denmark", "45"), 6), (("Oslo", "Norway", "47"), 4),
        (("Helsinki", "Finland", "358"), 4), (("Zürich", "Switzerland", "41"), 6),
        (("Madrid", "Spain", "34"), 8), (("Barcelona", "Spain", "34"), 8), (("Lisbon", "Portugal", "351"), 6),
        (("Milan", "Italy", "39"), 6), (("Warsaw", "Poland", "48"), 6), (("Kraków", "Poland", "48"), 3),
        (("Prague", "Czech Republic", "420"), 3), (("Tel Aviv", "Israel", "972"), 8),
        (("São Paulo", "Brazil", "55"), 10), (("Mexico City", "Mexico", "52"), 6),
        (("Bogotá", "Colombia", "57"), 3), (("Buenos Aires", "Argentina", "54"), 3),
        (("Bangalore", "India", "91"), 15), (("Mumbai", "India", "91"), 8), (("Singapore", "Singapore", "65"), 10),
        (("Sydney", "Australia", "61"), 12), (("Melbourne", "Australia", "61"), 8),
        (("Tokyo", "Japan", "81"), 6), (("Seoul", "South Korea", "82"), 4), (("Dubai", "United Arab Emirates", "971"), 5),
        (("Lagos", "Nigeria", "234"), 4), (("Nairobi", "Kenya", "254"), 3), (("Cape Town", "South Africa", "27"), 3),
        (("Istanbul", "Turkey", "90"), 3), (("Auckland", "New Zealand", "64"), 3),
    ]
)  # fmt: skip
_EMPLOYEE_BANDS = _weighted(
    [((1, 10), 24), ((11, 50), 30), ((51, 200), 22), ((201, 1000), 13), ((1001, 5000), 6), ((5001, 50000), 3)]
)

# ----------------------------------------------------------------------------------------------------------
# Job titles (labels agree with crm.title_seniority / crm.title_department, migrations/0002_derive.sql)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Dept:
    areas: tuple[str, ...]  # "VP of {area}", "Director, {area}", "{area} Manager"
    roles: tuple[str, ...]  # individual-contributor titles
    managers: tuple[str, ...]  # extra manager titles
    chiefs: tuple[str, ...]  # c-level titles of this function


# fmt: off
_DEPTS: dict[str, _Dept] = {
    "engineering": _Dept(
        ("Engineering", "Software Engineering", "Platform Engineering", "Infrastructure Engineering", "R&D",
         "Technology"),
        ("Software Engineer", "Backend Engineer", "Frontend Engineer", "Full Stack Developer", "DevOps Engineer",
         "Site Reliability Engineer", "QA Engineer", "Mobile Developer", "iOS Engineer", "Android Developer",
         "Software Developer", "Firmware Engineer", "Cloud Engineer", "Test Engineer"),
        ("Engineering Manager", "Software Engineering Manager", "QA Manager", "Team Lead, Engineering",
         "Development Manager"),
        ("CTO", "Chief Technology Officer"),
    ),
    "sales": _Dept(
        ("Sales", "Business Development", "Revenue", "Partnerships", "Sales Operations", "Enterprise Sales"),
        ("Account Executive", "Sales Development Representative", "Business Development Representative",
         "Inside Sales Representative", "Sales Representative", "Sales Engineer", "Enterprise Account Executive",
         "Sales Associate", "Solutions Consultant"),
        ("Account Manager", "Sales Manager", "Regional Sales Manager", "Key Account Manager",
         "Business Development Manager", "Partner Manager"),
        ("CRO", "Chief Revenue Officer", "Chief Sales Officer", "Chief Commercial Officer"),
    ),
    "marketing": _Dept(
        ("Marketing", "Growth", "Demand Generation", "Brand", "Communications", "Product Marketing", "Content"),
        ("Marketing Specialist", "Content Writer", "Marketing Coordinator", "SEO Specialist", "Growth Marketer",
         "Social Media Specialist", "Marketing Associate", "Copywriter", "Email Marketing Specialist"),
        ("Marketing Manager", "Product Marketing Manager", "Content Marketing Manager", "Brand Manager",
         "Demand Generation Manager", "Events Manager"),
        ("CMO", "Chief Marketing Officer", "Chief Growth Officer"),
    ),
    "finance": _Dept(
        ("Finance", "Accounting", "FP&A", "Treasury", "Tax", "Risk"),
        ("Accountant", "Financial Analyst", "Staff Accountant", "Accounts Payable Specialist", "Payroll Specialist",
         "Billing Specialist", "Credit Analyst", "Tax Accountant", "Auditor"),
        ("Finance Manager", "Accounting Manager", "Payroll Manager", "Treasury Manager"),
        ("CFO", "Chief Financial Officer"),
    ),
    "hr": _Dept(
        ("People", "Human Resources", "HR", "Talent Acquisition", "People Operations", "Total Rewards"),
        ("Recruiter", "HR Generalist", "Talent Acquisition Specialist", "HR Business Partner",
         "People Operations Specialist", "Technical Recruiter", "HR Coordinator", "Sourcer"),
        ("HR Manager", "Recruiting Manager", "People Manager", "Talent Acquisition Manager"),
        ("CHRO", "Chief People Officer", "Chief Human Resources Officer"),
    ),
    "operations": _Dept(
        ("Operations", "Supply Chain", "Procurement", "Facilities", "Logistics", "Business Operations"),
        ("Operations Analyst", "Project Coordinator", "Office Administrator", "Executive Assistant",
         "Logistics Coordinator", "Buyer", "Operations Associate", "Procurement Specialist"),
        ("Operations Manager", "Project Manager", "Office Manager", "Program Manager", "Warehouse Manager"),
        ("COO", "Chief Operating Officer"),
    ),
    "product": _Dept(
        ("Product", "Product Management"),
        ("Product Analyst", "Product Specialist", "Technical Product Analyst"),
        ("Product Manager", "Associate Product Manager", "Product Owner", "Technical Product Manager",
         "Group Product Manager"),
        ("CPO", "Chief Product Officer"),
    ),
    "design": _Dept(
        ("Design", "UX", "Product Design", "Creative", "User Experience"),
        ("Product Designer", "UX Designer", "Graphic Designer", "UI Designer", "Visual Designer", "UX Researcher"),
        ("Design Manager", "UX Manager", "Creative Manager"),
        ("Chief Design Officer", "Chief Creative Officer"),
    ),
    "legal": _Dept(
        ("Legal", "Compliance", "Legal Affairs"),
        ("Paralegal", "Legal Counsel", "Corporate Counsel", "Compliance Analyst", "Contracts Specialist",
         "Attorney"),
        ("Legal Operations Manager", "Compliance Manager", "Contracts Manager"),
        ("Chief Legal Officer", "CLO", "Chief Compliance Officer"),
    ),
    "customer_success": _Dept(
        ("Customer Success", "Customer Support", "Customer Experience", "Client Services", "Support",
         "Implementation"),
        ("Customer Support Specialist", "Support Engineer", "Implementation Specialist",
         "Customer Service Representative", "Onboarding Specialist", "Customer Success Associate"),
        ("Customer Success Manager", "Technical Account Manager", "Support Manager", "Customer Service Manager"),
        ("Chief Customer Officer", "Chief Experience Officer"),
    ),
    "it": _Dept(
        ("IT", "Information Technology", "Information Security", "IT Operations", "Security"),
        ("IT Support Specialist", "Systems Administrator", "Network Engineer", "Security Analyst",
         "Help Desk Technician", "IT Specialist", "Network Administrator"),
        ("IT Manager", "Security Manager", "IT Operations Manager"),
        ("CIO", "CISO", "Chief Information Officer", "Chief Information Security Officer"),
    ),
    "data": _Dept(
        ("Data", "Analytics", "Data Science", "Business Intelligence", "Data Engineering", "Machine Learning"),
        ("Data Analyst", "Data Scientist", "Data Engineer", "Machine Learning Engineer", "BI Analyst",
         "Analytics Engineer"),
        ("Data Science Manager", "Analytics Manager", "Data Engineering Manager"),
        ("Chief Data Officer", "CDO", "Chief Analytics Officer"),
    ),
    "other": _Dept(
        ("Strategy", "Research"),
        ("Consultant", "Advisor", "Teacher", "Registered Nurse", "Pharmacist", "Librarian", "Editor", "Writer",
         "Researcher", "Translator", "Photographer", "Physician"),
        (),
        (),
    ),
}
_FUNCTION_WEIGHTS = _weighted(
    [("engineering", 18), ("sales", 20), ("marketing", 10), ("finance", 8), ("hr", 5), ("operations", 10),
     ("product", 5), ("design", 3), ("legal", 2), ("customer_success", 7), ("it", 5), ("data", 4), ("other", 3)]
)  # fmt: skip
_CSUITE_WEIGHTS = _weighted(
    [("executive", 35), ("engineering", 12), ("finance", 12), ("operations", 10), ("marketing", 8), ("sales", 7),
     ("it", 5), ("hr", 4), ("product", 3), ("data", 2), ("legal", 1), ("customer_success", 1)]
)  # fmt: skip
# Per 1,000 contacts that have a title.
_SENIORITY_WEIGHTS = _weighted(
    [("owner", 6), ("founder", 12), ("c_suite", 27), ("partner", 7), ("vp", 42), ("head", 22), ("director", 75),
     ("manager", 180), ("senior", 210), ("entry", 390), ("intern", 29)]
)  # fmt: skip

_VP_FORMS = _weighted(
    [("VP of {a}", 20), ("VP, {a}", 12), ("VP {a}", 10), ("Vice President, {a}", 12), ("Vice President of {a}", 10),
     ("SVP {a}", 5), ("SVP, {a}", 4), ("Senior Vice President, {a}", 4), ("EVP, {a}", 3),
     ("Executive Vice President of {a}", 2), ("AVP, {a}", 3), ("Sr. VP, {a}", 2), ("V.P. {a}", 2),
     ("Vice-President {a}", 2), ("Regional VP, {a}", 2), ("VP - {a}", 2)]
)  # fmt: skip
_DIRECTOR_FORMS = _weighted(
    [("Director of {a}", 30), ("Director, {a}", 20), ("{a} Director", 15), ("Sr. Director, {a}", 8),
     ("Senior Director of {a}", 8), ("Associate Director, {a}", 6), ("Dir. of {a}", 3),
     ("Executive Director, {a}", 2), ("Global Director, {a}", 2), ("Director - {a}", 3)]
)  # fmt: skip
_HEAD_FORMS = _weighted([("Head of {a}", 70), ("Head - {a}", 8), ("Global Head of {a}", 12), ("{a} Head", 5),
                         ("Head of {a} & Strategy", 5)])  # fmt: skip
_MANAGER_FORMS = _weighted(
    [("{m}", 45), ("{a} Manager", 22), ("Manager, {a}", 10), ("Senior {a} Manager", 8), ("Sr. {m}", 5),
     ("{a} Team Lead", 5), ("Mgr, {a}", 2), ("{a} Supervisor", 3)]
)  # fmt: skip
_SENIOR_FORMS = _weighted(
    [("Senior {r}", 45), ("Sr. {r}", 18), ("Lead {r}", 10), ("Principal {r}", 7), ("{r} III", 8), ("Snr {r}", 2),
     ("Staff {r}", 10)]
)  # fmt: skip
_ENTRY_FORMS = _weighted(
    [("{r}", 64), ("Junior {r}", 6), ("Jr. {r}", 3), ("{r} I", 4), ("{r} II", 9), ("Associate {r}", 4),
     ("{a} Coordinator", 4), ("{a} Specialist", 4), ("{a} Analyst", 2)]
)  # fmt: skip
_INTERN_FORMS = _weighted(
    [("{a} Intern", 40), ("Intern - {a}", 15), ("{r} Intern", 20), ("Summer Intern, {a}", 8), ("{a} Trainee", 7),
     ("{a} Apprentice", 4), ("Intern", 6)]
)  # fmt: skip
# fmt: on
# "Staff" only where it is unambiguous (and the database's rules agree: "Staff Accountant" is entry).
_STAFF_RE = re.compile(
    r"^(Software|Data|Backend|Frontend|Machine Learning|Platform|Security) (Engineer|Scientist|Developer)$"
)
# Roles that read as entry-level words; "<role> Intern" with them is ambiguous, so interns get "<area> Intern".
_NOT_INTERN_ROLE_RE = re.compile(r"Associate|Assistant|Coordinator|Representative")

_OWNER_TITLES = _weighted(
    [(("Owner", "executive"), 50), (("Co-Owner", "executive"), 12), (("Owner/Operator", "executive"), 8),
     (("Business Owner", "executive"), 10), (("Owner & Principal", "executive"), 5), (("Proprietor", "executive"), 5),
     (("Franchise Owner", "executive"), 5), (("Owner, Managing Director", "executive"), 5)]
)  # fmt: skip
_FOUNDER_TITLES = _weighted(
    [(("Founder", "executive"), 25), (("Co-Founder", "executive"), 20), (("Founder & CEO", "executive"), 20),
     (("Co-Founder & CEO", "executive"), 10), (("Co-Founder & CTO", "engineering"), 10),
     (("Cofounder", "executive"), 5), (("Founder and President", "executive"), 4),
     (("Co-Founder & COO", "operations"), 3), (("Founder & CFO", "finance"), 2), (("Co-founder, CMO", "marketing"), 1)]
)  # fmt: skip
_PARTNER_TITLES = _weighted(
    [(("Partner", "executive"), 40), (("Managing Partner", "executive"), 20), (("Senior Partner", "executive"), 10),
     (("General Partner", "executive"), 10), (("Equity Partner", "executive"), 5), (("Venture Partner", "executive"), 5),
     (("Principal", "executive"), 5), (("Associate Partner", "executive"), 5)]
)  # fmt: skip
_EXEC_CSUITE = _weighted(
    [(("CEO", "executive"), 30), (("Chief Executive Officer", "executive"), 25), (("President", "executive"), 12),
     (("President & CEO", "executive"), 10), (("Managing Director", "executive"), 12), (("Chairman", "executive"), 3),
     (("Board Member", "executive"), 3), (("C.E.O.", "executive"), 2), (("Geschäftsführer", "executive"), 3)]
)  # fmt: skip
_PLACEHOLDER_TITLES = ("N/A", "-", "none", "Unknown", "tbd")

# Titles a naive classifier gets wrong: (title, seniority, department).
TITLE_TRAPS: tuple[tuple[str, str | None, str | None], ...] = (
    ("VP of Sales", "vp", "sales"),
    ("Vice President, Marketing", "vp", "marketing"),
    ("SVP Engineering", "vp", "engineering"),
    ("Executive Vice President of Operations", "vp", "operations"),
    ("Vice-President Operations", "vp", "operations"),
    ("V.P. Sales", "vp", "sales"),
    ("EVP & CFO", "c_suite", "finance"),
    ("CTO & EVP of Product Development", "c_suite", "engineering"),
    ("AVP, Risk", "vp", "finance"),
    ("Chief of Staff", "director", "executive"),
    ("Chief of Staff to the CEO", "director", "executive"),
    ("HR Business Partner", "entry", "hr"),
    ("Senior HR Business Partner", "senior", "hr"),
    ("Client Partner Manager", "manager", "sales"),
    ("MVP Program Manager", "manager", "operations"),
    ("VPN Engineer", "entry", "it"),
    ("Head of Growth", "head", "marketing"),
    ("Sr. Director, Product", "director", "product"),
    ("Dir. of Eng", "director", "engineering"),
    ("Founder & CEO", "founder", "executive"),
    ("Co-Founder & CTO", "founder", "engineering"),
    ("Managing Partner", "partner", "executive"),
    ("Owner", "owner", "executive"),
    ("Product Owner", "manager", "product"),
    ("Software Engineer II", "entry", "engineering"),
    ("Software Engineer III", "senior", "engineering"),
    ("Intern - Marketing", "intern", "marketing"),
    ("Account Executive", "entry", "sales"),
    ("Executive Assistant to the CEO", "entry", "operations"),
    ("Program Manager, Office of the CTO", "manager", "operations"),
    ("Principal Engineer", "senior", "engineering"),
    ("Staff Accountant", "entry", "finance"),
    ("Chief Architect", "senior", "engineering"),
    ("Managing Director", "c_suite", "executive"),
    ("General Manager", "director", "executive"),
    ("President", "c_suite", "executive"),
    ("Senior Manager, Marketing", "manager", "marketing"),
    ("Technical Account Manager", "manager", "customer_success"),
    ("Sales Engineer", "entry", "sales"),
    ("Data Engineer", "entry", "data"),
    ("Product Marketing Manager", "manager", "marketing"),
    ("Team Lead, Customer Support", "manager", "customer_success"),
    ("Head Chef", "head", "other"),
    ("N/A", None, None),
)
_TRAPS_BY_TITLE = {t[0]: t for t in TITLE_TRAPS}


def _title(nx: Draw) -> tuple[str | None, str | None, str | None]:
    """A job title and its (seniority, department) labels."""
    w = nx() % 1000
    if w < 93:
        if w < 50:
            return None, None, None
        if w < 90:
            return TITLE_TRAPS[nx() % len(TITLE_TRAPS)]
        return _PLACEHOLDER_TITLES[nx() % len(_PLACEHOLDER_TITLES)], None, None
    level = _SENIORITY_WEIGHTS[nx() % len(_SENIORITY_WEIGHTS)]
    if level == "owner":
        title, dept = _OWNER_TITLES[nx() % len(_OWNER_TITLES)]
        return title, level, dept
    if level == "founder":
        title, dept = _FOUNDER_TITLES[nx() % len(_FOUNDER_TITLES)]
        return title, level, dept
    if level == "partner":
        title, dept = _PARTNER_TITLES[nx() % len(_PARTNER_TITLES)]
        return title, level, dept
    if level == "c_suite":
        dept = _CSUITE_WEIGHTS[nx() % len(_CSUITE_WEIGHTS)]
        if dept == "executive":
            title, dept = _EXEC_CSUITE[nx() % len(_EXEC_CSUITE)]
            return title, level, dept
        return _DEPTS[dept].chiefs[nx() % len(_DEPTS[dept].chiefs)], level, dept
    dept = _FUNCTION_WEIGHTS[nx() % len(_FUNCTION_WEIGHTS)]
    d = _DEPTS[dept]
    area = d.areas[nx() % len(d.areas)]
    if level == "vp":
        title = _VP_FORMS[nx() % len(_VP_FORMS)].format(a=area)
    elif level == "head":
        title = _HEAD_FORMS[nx() % len(_HEAD_FORMS)].format(a=area)
    elif level == "director":
        form = _DIRECTOR_FORMS[nx() % len(_DIRECTOR_FORMS)]
        if dept == "other" and form.startswith("Executive"):  # a general-rank title: reads as executive
            form = "Director of {a}"
        title = form.format(a=area)
    elif level == "manager":
        form = _MANAGER_FORMS[nx() % len(_MANAGER_FORMS)]
        if "{m}" in form and not d.managers:
            form = "{a} Manager"
        title = form.format(a=area, m=d.managers[nx() % len(d.managers)] if d.managers else "")
    else:
        role = d.roles[nx() % len(d.roles)]
        if level == "senior":
            form = _SENIOR_FORMS[nx() % len(_SENIOR_FORMS)]
            if form == "Staff {r}" and not _STAFF_RE.match(role):
                form = "Senior {r}"
        elif level == "entry":
            form = _ENTRY_FORMS[nx() % len(_ENTRY_FORMS)]
            if dept == "other" and "{a}" in form:
                form = "{r}"
        else:
            form = _INTERN_FORMS[nx() % len(_INTERN_FORMS)]
            if form == "Intern":
                dept = "other"
            elif form == "{r} Intern" and _NOT_INTERN_ROLE_RE.search(role):
                form = "{a} Intern"
        title = form.format(a=area, r=role)
    return title, level, dept


# ----------------------------------------------------------------------------------------------------------
# Contacts, deals
# ----------------------------------------------------------------------------------------------------------

_LIFECYCLE = _weighted(
    [("subscriber", 14), ("lead", 34), ("mql", 12), ("sql", 7), ("opportunity", 8), ("customer", 16),
     ("evangelist", 2), ("other", 4), (None, 3)]
)  # fmt: skip
_LEAD_STATUS = _weighted(
    [(None, 33), ("NEW", 15), ("OPEN", 12), ("IN_PROGRESS", 10), ("OPEN_DEAL", 5), ("UNQUALIFIED", 8),
     ("ATTEMPTED_TO_CONTACT", 9), ("CONNECTED", 6), ("BAD_TIMING", 2)]
)  # fmt: skip
_PERSONAL_DOMAINS = _weighted(
    [("gmail.com", 55), ("outlook.com", 12), ("yahoo.com", 10), ("hotmail.com", 8), ("icloud.com", 7),
     ("proton.me", 3), ("aol.com", 2), ("gmx.de", 2), ("web.de", 1)]
)  # fmt: skip
# Work-email local parts: f=first, l=last, i=first initial
_WORK_PATTERNS = _weighted(
    [("{f}.{l}", 45), ("{i}{l}", 16), ("{f}", 9), ("{f}{l}", 7), ("{f}_{l}", 4), ("{i}.{l}", 6), ("{l}.{f}", 3),
     ("{l}", 3), ("{f}.{l}2", 1), ("{f}-{l}", 2)]
)  # fmt: skip
_PLUS_TAGS = ("crm", "news", "work", "sales", "hubspot", "test")
_DEAL_STAGES = _weighted(
    [("appointmentscheduled", 15), ("qualifiedtobuy", 15), ("presentationscheduled", 12),
     ("decisionmakerboughtin", 10), ("contractsent", 8), ("closedwon", 22), ("closedlost", 18)]
)  # fmt: skip
_DEAL_PRODUCTS = (
    "Enterprise Plan", "Pro Plan", "Starter Plan", "Annual Renewal", "Expansion", "Platform License",
    "Implementation", "Pilot", "Professional Services", "Add-on Seats", "Multi-year Agreement", "Upsell",
)  # fmt: skip
_AMOUNT_BANDS = _weighted(
    [
        ((500, 10_000), 33),
        ((10_000, 50_000), 40),
        ((50_000, 250_000), 19),
        ((250_000, 1_500_000), 4),
        (None, 4),
    ]
)

_N_PERSONAL = len(_PERSONAL_DOMAINS)
_N_WORK = len(_WORK_PATTERNS)
_N_LIFECYCLE = len(_LIFECYCLE)
_N_LEAD_STATUS = len(_LEAD_STATUS)

_CONTACT_BASE = 100_000_001
_COMPANY_BASE = 5_000_000_001
_DEAL_BASE = 9_000_000_001
_OWNER_BASE = 80_000_001


def _iso(dt: datetime) -> str:
    return dt.isoformat()


# ----------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SynthCompany:
    crm_record_id: str
    name: str
    domain: str
    industry: str | None
    employee_count: int | None
    annual_revenue: int | None
    city: str | None
    country: str | None
    crm_created_at: datetime
    crm_updated_at: datetime
    is_fintech: bool  # ground truth
    description: str | None = None  # what it does, in words that agree with ``is_fintech``

    def index_row(self) -> dict[str, object]:
        return {
            "crm_record_id": self.crm_record_id,
            "name": self.name,
            "domain": self.domain,
            "industry": self.industry,
            "description": self.description,
            "employee_count": self.employee_count,
            "annual_revenue": self.annual_revenue,
            "city": self.city,
            "country": self.country,
            "crm_created_at": self.crm_created_at.isoformat(),
            "crm_updated_at": self.crm_updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class SynthContact:
    crm_record_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    job_title: str | None
    seniority: str | None  # ground truth
    department: str | None  # ground truth
    lifecycle_stage: str | None
    lead_status: str | None
    company_crm_id: str | None
    company_name: str | None
    crm_created_at: datetime
    crm_updated_at: datetime

    def index_row(self) -> dict[str, object]:
        return {
            "crm_record_id": self.crm_record_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone": self.phone,
            "company_name": self.company_name,
            "company_crm_id": self.company_crm_id,
            "job_title": self.job_title,
            "lifecycle_stage": self.lifecycle_stage,
            "lead_status": self.lead_status,
            "crm_created_at": self.crm_created_at.isoformat(),
            "crm_updated_at": self.crm_updated_at.isoformat(),
        }


class _ContactDraft:
    """A mutable twin of SynthContact (same slots, same order): filled attribute by attribute, then turned
    into a SynthContact by a class swap. A frozen dataclass's __init__ stores each field through
    object.__setattr__, which made construction ~20% of the time to generate a contact."""

    __slots__ = tuple(f.name for f in fields(SynthContact))
    crm_record_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    job_title: str | None
    seniority: str | None
    department: str | None
    lifecycle_stage: str | None
    lead_status: str | None
    company_crm_id: str | None
    company_name: str | None
    crm_created_at: datetime
    crm_updated_at: datetime

    def freeze(self) -> SynthContact:
        if _CLASS_SWAP:
            self.__class__ = SynthContact  # type: ignore[assignment]
            return self  # type: ignore[return-value]
        return SynthContact(*(getattr(self, name) for name in self.__slots__))


def _class_swap_works() -> bool:
    try:
        d = _ContactDraft()
        d.__class__ = SynthContact  # type: ignore[assignment]
    except TypeError:  # not CPython-compatible layouts: fall back to the constructor
        return False
    return True


_CLASS_SWAP = _class_swap_works()
_new_contact = _ContactDraft


@dataclass(frozen=True, slots=True)
class SynthDeal:
    crm_record_id: str
    name: str
    stage: str
    amount: int | None
    close_date: date | None
    contact_crm_ids: tuple[str, ...]
    company_crm_id: str | None
    owner_crm_id: str | None
    crm_created_at: datetime
    crm_updated_at: datetime

    def index_row(self) -> dict[str, object]:
        return {
            "crm_record_id": self.crm_record_id,
            "name": self.name,
            "stage": self.stage,
            "amount": self.amount,
            "close_date": self.close_date.isoformat() if self.close_date is not None else None,
            "company_crm_id": self.company_crm_id,
            "owner_crm_id": self.owner_crm_id,
            "contact_crm_ids": list(self.contact_crm_ids),
            "crm_created_at": self.crm_created_at.isoformat(),
            "crm_updated_at": self.crm_updated_at.isoformat(),
        }


# (crm id, name, domain, phone country code) of a company, what a contact needs of it.
_CompanyRef = tuple[str, str, str, str]


def _coprime_multiplier(n: int, start: int) -> int:
    a = start % n if n > 1 else 1
    a = max(a, 1)
    while math.gcd(a, n) != 1:
        a += 1
    return a


class SyntheticCRM:
    """A deterministic synthetic CRM of ``contacts`` contacts, ``companies`` companies and ``deals`` deals.

    ``source`` picks the record-id style: HubSpot numeric strings (contacts, companies, deals and owners in
    distinct ranges) or Attio UUIDs derived from the seed. ``as_of`` is "now" (default ``SYNTH_NOW``).
    """

    def __init__(
        self,
        seed: int,
        contacts: int,
        companies: int | None = None,
        deals: int | None = None,
        source: Literal["hubspot", "attio"] = "hubspot",
        *,
        as_of: datetime = SYNTH_NOW,
    ) -> None:
        if contacts < 0:
            raise ValueError("contacts must be >= 0")
        if source not in ("hubspot", "attio"):
            raise ValueError(f"unknown source {source!r}")
        self.seed = seed
        self.source: Source = source
        self.n_contacts = contacts
        self.n_companies = max(1, contacts // 10) if companies is None else companies
        self.n_deals = max(0, contacts // 50) if deals is None else deals
        if self.n_companies < 0 or self.n_deals < 0:
            raise ValueError("companies and deals must be >= 0")
        if self.n_companies == 0 and (contacts or self.n_deals):
            raise ValueError("contacts and deals need at least one company")
        self.as_of = as_of
        self._now_ts = int(as_of.timestamp())
        self._seed_bytes = str(seed).encode()
        self._key_contact = self._seed_bytes + b"\x00contact\x00"
        self._attio = source == "attio"
        # company c -> (prefix, root) through an affine bijection of [0, P*R)
        self._pr = len(_PREFIXES) * len(_ROOTS)
        nx = self._bits("layout", 0)
        self._brand_mul = _coprime_multiplier(self._pr, 7919 + nx() % (1 << 30))
        self._brand_off = nx() % (self._pr)
        nc = max(1, self.n_companies)
        self._big_mul = _coprime_multiplier(nc, 104_729 + nx() % (1 << 30))
        self._big_off = nx() % (nc)
        self._n_owners = max(3, min(60, contacts // 2000 + 3))
        self._company_ref: Callable[[int], _CompanyRef] = functools.lru_cache(maxsize=1 << 15)(
            self._company_ref_uncached
        )

    def __repr__(self) -> str:
        return (
            f"SyntheticCRM(seed={self.seed}, contacts={self.n_contacts}, companies={self.n_companies}, "
            f"deals={self.n_deals}, source={self.source!r})"
        )

    # -- ids -------------------------------------------------------------------------------------------------

    def _bits(self, kind: str, i: int) -> Draw:
        return _stream(self._seed_bytes + b"\x00" + kind.encode() + b"\x00" + str(i).encode())

    def _uuid(self, kind: str, i: int) -> str:
        h = blake2b(
            self._seed_bytes + b"\x00uuid-" + kind.encode() + b"\x00" + str(i).encode(), digest_size=16
        )
        x = h.hexdigest()
        return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-{'89ab'[int(x[16], 16) & 3]}{x[17:20]}-{x[20:32]}"

    def contact_id(self, i: int) -> str:
        return str(_CONTACT_BASE + i) if self.source == "hubspot" else self._uuid("contact", i)

    def company_id(self, i: int) -> str:
        return str(_COMPANY_BASE + i) if self.source == "hubspot" else self._uuid("company", i)

    def deal_id(self, i: int) -> str:
        return str(_DEAL_BASE + i) if self.source == "hubspot" else self._uuid("deal", i)

    def owner_id(self, k: int) -> str:
        return str(_OWNER_BASE + k) if self.source == "hubspot" else self._uuid("owner", k)

    def _timestamps(self, nx: Draw) -> tuple[datetime, datetime]:
        age = _below(nx, _SPAN_SECONDS)
        created_ts = self._now_ts - age
        created = datetime.fromtimestamp(created_ts, UTC)
        # most records were touched again since; a quarter never were
        if nx() % 1000 < 250:
            return created, created
        return created, datetime.fromtimestamp(created_ts + _below(nx, age + 1), UTC)

    # -- companies -------------------------------------------------------------------------------------------

    def _company_head(self, i: int) -> tuple[Draw, str, str, str | None, bool, tuple[str, str, str] | None]:
        """The draws everything else depends on: name, domain, industry, fintech flag, place."""
        nx = self._bits("company", i)
        block, j = divmod(i, self._pr)
        j = (j * self._brand_mul + self._brand_off) % self._pr
        p_idx, r_idx = divmod(j, len(_ROOTS))
        prefix, root = _PREFIXES[p_idx], _ROOTS[r_idx]
        fintech_brand = p_idx < len(_FINTECH_PREFIXES)
        if fintech_brand:
            industry: str | None = _INDUSTRIES_FINTECH_BRAND[nx() % len(_INDUSTRIES_FINTECH_BRAND)]
        else:
            industry = _INDUSTRIES_ALL[nx() % len(_INDUSTRIES_ALL)] if not nx() % 1000 < 40 else None
        # brand: "Paystack", "Blue Wave", "Acme Forge"
        if prefix == "Acme" and root in _WORD_ROOTS:
            brand = f"Acme {root.capitalize()}"
        elif root in _WORD_ROOTS and nx() % 1000 < 250:
            brand = f"{prefix} {root.capitalize()}"
        else:
            brand = prefix + root
        base = (prefix + root).lower()
        if block:
            extra = _OVERFLOW[block - 1] if block <= len(_OVERFLOW) else str(block)
            base = f"{base}-{extra}"
            if block <= len(_OVERFLOW):
                brand = f"{brand} {extra.capitalize() if extra not in ('hq', 'co') else extra.upper()}"
            else:
                brand = f"{brand} {block}"
        domain = _DOMAIN_FORMS[nx() % len(_DOMAIN_FORMS)].format(base) + _TLDS[nx() % len(_TLDS)]
        r = nx() % 100
        if r < 40:
            name = brand + _LEGAL_SUFFIXES[nx() % len(_LEGAL_SUFFIXES)]
        else:
            if industry in _INDUSTRY_NOUNS and nx() % 1000 < 700:
                noun = _INDUSTRY_NOUNS[industry][nx() % len(_INDUSTRY_NOUNS[industry])]
            elif industry in TECH_INDUSTRIES:
                noun = _NOUNS_TECH[nx() % len(_NOUNS_TECH)]
            elif industry in FINTECH_INDUSTRIES:
                noun = _NOUNS_FIN[nx() % len(_NOUNS_FIN)]
            else:
                noun = _NOUNS_GENERIC[nx() % len(_NOUNS_GENERIC)]
            name = f"{brand} {noun}"
            if r >= 90:
                name += _LEGAL_SUFFIXES[nx() % len(_LEGAL_SUFFIXES)]
        if industry in FINTECH_INDUSTRIES:
            is_fintech = True
        elif industry in TECH_INDUSTRIES:
            is_fintech = (
                FINTECH_WORD_RE.search(name) is not None or FINTECH_WORD_RE.search(domain) is not None
            )
        else:
            is_fintech = False
        place = _PLACES[nx() % len(_PLACES)] if not nx() % 1000 < 50 else None
        return nx, name, domain, industry, is_fintech, place

    def _company_description(self, i: int, industry: str | None, is_fintech: bool, draw: int) -> str:
        """What company ``i`` says it does (module tables above): its money business when it is fintech, its own
        industry otherwise. Drawn last, so every other field is what it was before descriptions existed."""
        if is_fintech and industry not in FINTECH_INDUSTRIES:  # a fintech-branded software company
            prefix = _PREFIXES[(i % self._pr * self._brand_mul + self._brand_off) % self._pr // len(_ROOTS)]
            options = _FINTECH_SOFTWARE_DESCRIPTIONS.get(prefix, _FINTECH_SOFTWARE_DESCRIPTIONS["Fin"])
        elif industry is None:
            options = _NO_INDUSTRY_DESCRIPTIONS
        elif is_fintech:
            options = _FINANCE_DESCRIPTIONS[industry]
        else:
            options = _INDUSTRY_DESCRIPTIONS.get(industry) or (f"A {_industry_phrase(industry)} company.",)
        return options[draw % len(options)]

    def _company_ref_uncached(self, i: int) -> _CompanyRef:
        _, name, domain, _, _, place = self._company_head(i)
        return self.company_id(i), name, domain, place[2] if place else "1"

    def company(self, i: int) -> SynthCompany:
        if not 0 <= i < self.n_companies:
            raise IndexError(f"company {i} out of range(0, {self.n_companies})")
        nx, name, domain, industry, is_fintech, place = self._company_head(i)
        if nx() % 1000 < 30:
            employees: int | None = None
        else:
            lo, hi = _EMPLOYEE_BANDS[nx() % len(_EMPLOYEE_BANDS)]
            employees = lo + nx() % (hi - lo + 1)
        revenue: int | None = None
        if employees is not None and not nx() % 1000 < 250:
            per_head = 60_000 + nx() % 240_000
            revenue = (employees * per_head) // 1000 * 1000
        created, updated = self._timestamps(nx)
        return SynthCompany(
            crm_record_id=self.company_id(i),
            name=name,
            domain=domain,
            industry=industry,
            description=self._company_description(i, industry, is_fintech, nx()),
            employee_count=employees,
            annual_revenue=revenue,
            city=place[0] if place else None,
            country=place[1] if place else None,
            crm_created_at=created,
            crm_updated_at=updated,
            is_fintech=is_fintech,
        )

    # -- contacts --------------------------------------------------------------------------------------------

    def _contact_company(self, j: int, nx: Draw) -> int | None:
        """Which company contact j works at (the first draws of its stream)."""
        nc = self.n_companies
        if j < nc:
            return j
        r = nx() % 100
        if r < 3:
            return None
        if r < 72:
            return j % nc
        # a few large companies: skewed rank, scattered over the company range
        u = nx()
        rank = (nc * u * u * u) >> 48
        return (rank * self._big_mul + self._big_off) % nc

    def company_of_contact(self, j: int) -> int | None:
        """The company index of contact j (None: no company), without generating the contact."""
        return self._contact_company(j, _stream16(self._key_contact + str(j).encode()))

    def contact(self, i: int) -> SynthContact:
        if not 0 <= i < self.n_contacts:
            raise IndexError(f"contact {i} out of range(0, {self.n_contacts})")
        # 16-bit draws (at most ~31 on any path)
        nx = _stream16(self._key_contact + str(i).encode())
        c = self._contact_company(i, nx)  # <= 2
        first_name = _FIRST_TABLE[nx() % _N_FIRST]
        last_name = _LAST_TABLE[nx() % _N_LAST]
        title, seniority, department = _title(nx)  # <= 6
        if c is None:
            company_id = company_name = domain = None
            cc = "1"
        else:
            company_id, company_name, domain, cc = self._company_ref(c)
        # email (<= 7)
        email: str | None = None
        e = nx() % 1000
        f = _SLUG[first_name]
        ln = _SLUG[last_name]
        first: str | None = first_name
        last: str | None = last_name
        if e >= 35:
            if domain is None or e >= 890:
                local = f"{f}.{ln}" if nx() % 1000 < 600 else f"{f}{ln}"
                w = nx() % 1000
                if w < 350:
                    local += str(nx() % 100)
                elif w < 500:
                    local += str(1950 + nx() % 56)
                email = f"{local}@{_PERSONAL_DOMAINS[nx() % _N_PERSONAL]}"
            else:
                local = _WORK_PATTERNS[nx() % _N_WORK].format(f=f, l=ln, i=f[0])
                w = nx() % 1000
                if w < 25:
                    local += "+" + _PLUS_TAGS[w % 6]
                email = f"{local}@{domain}"
            w = nx() % 1000
            if w < 25:
                email = email.upper() if w < 8 else email.capitalize()
        elif e < 4:
            first = None  # an email-less, first-name-less lead
        w = nx() % 1000
        if w < 12:
            last = None
        # phone (<= 5)
        phone: str | None = None
        if nx() % 1000 < 650:
            a, b, d = nx() % 900 + 100, nx() % 1000, nx() % 10000
            form = nx() % 4
            if cc == "1":
                if form == 0:
                    phone = f"+1 {a}-{b:03d}-{d:04d}"
                elif form == 1:
                    phone = f"({a}) {b:03d}-{d:04d}"
                elif form == 2:
                    phone = f"{a}.{b:03d}.{d:04d}"
                else:
                    phone = f"+1{a}{b:03d}{d:04d}"
            else:
                phone = f"+{cc} {a} {b:03d} {d:04d}" if form else f"+{cc}{a}{b:03d}{d:04d}"
        lifecycle = _LIFECYCLE[nx() % _N_LIFECYCLE]
        lead_status = _LEAD_STATUS[nx() % _N_LEAD_STATUS]
        w = nx() % 1000
        if w < 15 and title is not None:  # stray casing, as typed into a form
            title = title.lower() if w < 10 else title.upper()
        # timestamps (3): created within 3 years, a quarter never updated since
        age = ((nx() << 16) | nx()) % _SPAN_SECONDS
        created_ts = self._now_ts - age
        created = datetime.fromtimestamp(created_ts, UTC)
        w = nx()
        updated = (
            created if w < 16384 else datetime.fromtimestamp(created_ts + age * (w - 16384) // 49152, UTC)
        )
        rec = _new_contact()
        rec.crm_record_id = self.contact_id(i) if self._attio else str(_CONTACT_BASE + i)
        rec.first_name = first
        rec.last_name = last
        rec.email = email
        rec.phone = phone
        rec.job_title = title
        rec.seniority = seniority
        rec.department = department
        rec.lifecycle_stage = lifecycle
        rec.lead_status = lead_status
        rec.company_crm_id = company_id
        rec.company_name = company_name
        rec.crm_created_at = created
        rec.crm_updated_at = updated
        return rec.freeze()

    # -- deals -----------------------------------------------------------------------------------------------

    def deal(self, i: int) -> SynthDeal:
        if not 0 <= i < self.n_deals:
            raise IndexError(f"deal {i} out of range(0, {self.n_deals})")
        nx = self._bits("deal", i)
        nc, nk = self.n_companies, self.n_contacts
        contact_ids: list[str] = []
        if nk:
            c = nx() % (min(nc, nk))  # contact c works at company c
            contact_ids.append(self.contact_id(c))
            want = 1 + (nx() % 100 >= 55) + (nx() % 100 >= 80)
            span = (nk - 1 - c) // nc  # contacts c + k*nc, k in 1..span
            tried: set[int] = set()
            for _ in range(6):
                if len(contact_ids) >= want or span <= 0:
                    break
                k = 1 + nx() % span
                if k in tried:
                    continue
                tried.add(k)
                j = c + k * nc
                if self.company_of_contact(j) == c:
                    contact_ids.append(self.contact_id(j))
        else:
            c = nx() % nc
        company_id, company_name, _, _ = self._company_ref(c)
        stage = _DEAL_STAGES[nx() % len(_DEAL_STAGES)]
        band = _AMOUNT_BANDS[nx() % len(_AMOUNT_BANDS)]
        amount = None if band is None else (band[0] + nx() % (band[1] - band[0])) // 100 * 100
        created, updated = self._timestamps(nx)
        closed = stage in ("closedwon", "closedlost")
        close_date: date | None
        if closed:
            span_s = int((updated - created).total_seconds())
            close_date = (created + timedelta(seconds=_below(nx, span_s + 1))).date()
        elif nx() % 1000 < 60:
            close_date = None
        else:
            close_date = (self.as_of + timedelta(days=nx() % 200 - 20)).date()
        name = f"{company_name} - {_DEAL_PRODUCTS[nx() % len(_DEAL_PRODUCTS)]}"
        owner = None if nx() % 1000 < 30 else self.owner_id(nx() % self._n_owners)
        return SynthDeal(
            crm_record_id=self.deal_id(i),
            name=name,
            stage=stage,
            amount=amount,
            close_date=close_date,
            contact_crm_ids=tuple(contact_ids),
            company_crm_id=company_id,
            owner_crm_id=owner,
            crm_created_at=created,
            crm_updated_at=updated,
        )

    # -- streaming -------------------------------------------------------------------------------------------

    def companies(self) -> Iterator[SynthCompany]:
        for i in range(self.n_companies):
            yield self.company(i)

    def contacts(self) -> Iterator[SynthContact]:
        for i in range(self.n_contacts):
            yield self.contact(i)

    def deals(self) -> Iterator[SynthDeal]:
        for i in range(self.n_deals):
            yield self.deal(i)

    def owner_ids(self) -> list[str]:
        """The deal owners' CRM ids (a small pool per org)."""
        return [self.owner_id(k) for k in range(self._n_owners)]

    def batches(self, kind: Kind, size: int) -> Iterator[list[dict[str, object]]]:
        """``index_row()`` dicts of every record of ``kind``, ``size`` at a time."""
        if size <= 0:
            raise ValueError("size must be > 0")
        make: Callable[[int], SynthCompany | SynthContact | SynthDeal]
        if kind == "contacts":
            make, total = self.contact, self.n_contacts
        elif kind == "companies":
            make, total = self.company, self.n_companies
        elif kind == "deals":
            make, total = self.deal, self.n_deals
        else:
            raise ValueError(f"unknown kind {kind!r}")
        for start in range(0, total, size):
            yield [make(i).index_row() for i in range(start, min(start + size, total))]
