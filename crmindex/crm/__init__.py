"""CRM API clients (HubSpot v3, Attio v2), their shared error model and rate-limit protocol, the protocols crmindex
needs from a CRM (``protocols``) and the registry that tells the CRMs apart (``registry``).

Internal: the modules of this package may change between releases. Import the public surface from ``crmindex``
(``crmindex.__all__``), the fakes from ``crmindex.testing``.
"""

__all__: list[str] = []
