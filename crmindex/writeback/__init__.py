"""Write-back: local changes queued in Postgres (``enqueue``) and sent to the CRMs by the drainer (``drainer``).

Internal: the modules of this package may change between releases. Import the public surface from ``crmindex``
(``crmindex.__all__``), the fakes from ``crmindex.testing``.
"""

__all__: list[str] = []
