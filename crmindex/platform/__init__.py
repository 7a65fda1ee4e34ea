"""The platform under every flow: database access and org binding, the migrator, secrets, the one queue core
and the shared rate limiter.

Internal: the modules of this package may change between releases. Import the public surface from ``crmindex``
(``crmindex.__all__``), the fakes from ``crmindex.testing``.
"""

__all__: list[str] = []
