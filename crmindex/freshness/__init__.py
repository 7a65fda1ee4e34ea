"""Keeping the index fresh: the initial sync (``sync``), on-demand repair (``reconcile``) and webhooks
(``intake`` verifies and stores, ``webhooks`` applies, ``hydrate`` fetches records events only name, ``wsgi``
serves the receiver).

Internal: the modules of this package may change between releases. Import the public surface from ``crmindex``
(``crmindex.__all__``), the fakes from ``crmindex.testing``.
"""

__all__: list[str] = []
