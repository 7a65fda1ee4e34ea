"""Tier 2, materialized records: full CRM records fetched on demand when a contact becomes active.

Internal: the modules of this package may change between releases. Import the public surface from ``crmindex``
(``crmindex.__all__``), the fakes from ``crmindex.testing``.
"""

__all__: list[str] = []
