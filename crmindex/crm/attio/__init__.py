"""Attio: the REST v2 client, its models, attribute values and the adapters behind crmindex's protocols
(fetcher, writer, lister, webhook event planner, OAuth); its entry in :mod:`crmindex.crm.registry`."""

# docs.attio.com: the REST API at https://api.attio.com, OAuth (authorize, token) at https://app.attio.com
API_BASE = "https://api.attio.com"
OAUTH_BASE = "https://app.attio.com"
REAL_HOSTS = frozenset({"api.attio.com", "app.attio.com"})
