"""Keeping the index fresh: the initial sync (``sync``), on-demand repair (``reconcile``) and webhooks
(``intake`` verifies and stores, ``webhooks`` applies, ``hydrate`` fetches records events only name, ``wsgi``
serves the receiver)."""
