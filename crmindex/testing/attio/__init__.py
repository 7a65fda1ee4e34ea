"""``FakeAttio``: a local Attio REST v2 workspace (records of people, companies and deals).

Values are arrays of historic values (``active_from``/``active_until``, ``created_by_actor``,
``attribute_type`` and the type's fields); responses carry the active values (``include_historic=True``
adds the superseded ones). One concern a module, each readable on its own:

* ``schema``    the workspace's ids, objects and attributes (type, multiselect, unique)
* ``values``    one value of each attribute type as stored and returned, with its history fields
* ``store``     the records: value histories, creation order, lazy seeds, deletes, merges (a new record; maybe
                still in progress: 404 ``merge_in_progress``), uniqueness, the sorted order
* ``seed``      filling a workspace from a ``SyntheticCRM`` (deal owners are members, deal stages statuses)
* ``routes``    the HTTP API: records query (filter, sorts), get, create, update (PATCH prepends to multiselects,
                PUT overwrites them), assert, delete
* ``lists``     lists and their entries, workspace members, attributes, statuses and select options
* ``query``     the records query's filter grammar
* ``webhooks``  signed webhook deliveries, one event each, with an ``Idempotency-Key``
* ``errors``    Attio's error bodies (400, 401, 404, 409, 429 with an HTTP-date ``Retry-After``, 5xx)
* ``server``    ``FakeAttio``: the wiring, the rate limits and the UI-like mutation helpers

The HTTP server, fault injection and webhook delivery are shared with the HubSpot fake
(``crmindex.testing._server``, ``_faults``, ``_http``, ``_ratelimit``).
"""

from crmindex.testing.attio.server import FakeAttio

__all__ = ["FakeAttio"]
