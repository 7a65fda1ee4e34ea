"""Tier 1, the index: monotonic bulk writes of slim rows (``writes``), search and entity resolution
(``search``), and resolving a contact reference to its index row (``refs``).

Internal: the modules of this package may change between releases. Import the public surface from ``crmindex``
(``crmindex.__all__``), the fakes from ``crmindex.testing``.
"""

__all__: list[str] = []
