"""crmindex: a Postgres-native index of whole CRMs (HubSpot, Attio) for an AI sales copilot.

The public surface is what ``__all__`` lists; everything else is internal and may change. The package is laid
out by the flows of the design (imports run down this list):

* ``crmindex.app``        the composition root and background workers
* ``crmindex.freshness``  initial sync, reconcile, webhooks (intake, processing, hydration)
* ``crmindex.records``    tier 2: materialization on activation
* ``crmindex.writeback``  the write-back queue and its drainer
* ``crmindex.index``      tier 1: bulk writes, search, reference resolution
* ``crmindex.crm``        CRM protocols, connections, clients (``hubspot/``, ``attio/``), errors, limits
* ``crmindex.platform``   database, migrator, secrets, the queue core, the shared rate limiter
* ``crmindex.testing``    fake HubSpot and Attio servers and the synthetic data generator

Each flow's SQL is the area file of the same name under ``sql/`` (``sql/index/search.sql`` beside
``crmindex/index/search.py``).
"""

from crmindex.app import CrmIndex, Workers
from crmindex.errors import (
    CrmIndexError,
    InvalidInputError,
    InvalidRowError,
    MigrationError,
    NotFoundError,
    OrgMismatchError,
)
from crmindex.index.search import (
    CompanyHit,
    CompanySearchResult,
    ContactHit,
    Interpretation,
    ResolveCandidate,
    SearchFilters,
    SearchResult,
    interpret,
    resolve_contact,
    search,
    search_companies,
    search_contacts,
)
from crmindex.index.writes import (
    CompanyRow,
    ContactRow,
    DealRow,
    UpsertResult,
    ensure_org,
    upsert_companies,
    upsert_contacts,
    upsert_deals,
)
from crmindex.platform.db import bind_org, connect, make_pool
from crmindex.platform.migrate import migrate
from crmindex.records.materialize import (
    ContactRecord,
    Materialized,
    QueuedMaterialization,
    activate_by_email,
    get_contact_record,
    materialize_contact,
    materialize_many,
    record_enrichment,
    request_materialization,
)
from crmindex.status import OrgStatus, org_status
from crmindex.writeback.enqueue import QueuedWrite, create_contact, update_contact

__version__ = "0.1.0"

__all__ = [
    "CompanyHit",
    "CompanyRow",
    "CompanySearchResult",
    "ContactHit",
    "ContactRecord",
    "ContactRow",
    "CrmIndex",
    "CrmIndexError",
    "DealRow",
    "Interpretation",
    "InvalidInputError",
    "InvalidRowError",
    "Materialized",
    "MigrationError",
    "NotFoundError",
    "OrgMismatchError",
    "OrgStatus",
    "QueuedMaterialization",
    "QueuedWrite",
    "ResolveCandidate",
    "SearchFilters",
    "SearchResult",
    "UpsertResult",
    "Workers",
    "__version__",
    "activate_by_email",
    "bind_org",
    "connect",
    "create_contact",
    "ensure_org",
    "get_contact_record",
    "interpret",
    "make_pool",
    "materialize_contact",
    "materialize_many",
    "migrate",
    "org_status",
    "record_enrichment",
    "request_materialization",
    "resolve_contact",
    "search",
    "search_companies",
    "search_contacts",
    "update_contact",
    "upsert_companies",
    "upsert_contacts",
    "upsert_deals",
]
