"""Tier 1, the index: monotonic bulk writes of slim rows (``writes``), search and entity resolution
(``search``), and resolving a contact reference to its index row (``refs``)."""
