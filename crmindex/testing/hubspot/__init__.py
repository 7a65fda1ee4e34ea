"""``FakeHubSpot``: a local HubSpot CRM v3/v4 server with HubSpot's shapes, limits, errors and webhooks.

One concern a module, each readable on its own:

* ``model``         object types, properties, association type ids, HubSpot's timestamps
* ``store``         the records of one object type: written ones plus a lazily generated seed range
* ``associations``  the association graph (seeded contacts' companies made explicit when touched)
* ``portal``        the three stores and their associations, and the changes (update, merge, restore, ...)
* ``seed``          filling a portal from a ``SyntheticCRM``
* ``routes``        the HTTP API: objects, batch, merge and v4 associations, request/response shapes
* ``search``        the search endpoint: limits, the filter compiler, sorting, paging
* ``metadata``      the portal's vocabulary: deal pipelines and stages, owners (no webhooks for them)
* ``webhooks``      signed webhook event arrays (v1 and v3 signatures), batching
* ``errors``        HubSpot's error bodies (400, 401, 404, 409, 429, 5xx)
* ``server``        ``FakeHubSpot``: the wiring, the rate limits and the UI-like mutation helpers

The HTTP server, fault injection and webhook delivery are shared with the Attio fake
(``crmindex.testing._server``, ``_faults``, ``_http``, ``_ratelimit``).
"""

from crmindex.testing.hubspot.server import FakeHubSpot

__all__ = ["FakeHubSpot"]
