"""HubSpot: the CRM v3/v4 client, its models, the property table and the adapters behind crmindex's protocols
(fetcher, writer, lister, webhook event planner, OAuth); its entry in :mod:`crmindex.crm.registry`."""

# developers.hubspot.com API reference: servers https://api.hubapi.com, which also serves the OAuth token
# endpoints (the user-facing authorize page is app.hubspot.com, which never receives a token)
API_BASE = "https://api.hubapi.com"
OAUTH_BASE = API_BASE
REAL_HOSTS = frozenset({"api.hubapi.com"})
