"""Test doubles for users' own integration tests: fake HubSpot and Attio servers on 127.0.0.1.

``FakeHubSpot`` and ``FakeAttio`` are real HTTP servers (context managers, ``base_url``) with the CRMs'
request/response shapes, rate limits, error bodies, fault injection and signed webhook emission.
"""

from __future__ import annotations

from typing import Literal

from crmindex.testing._faults import Faults
from crmindex.testing._server import Delivery, LoggedRequest
from crmindex.testing.attio import FakeAttio
from crmindex.testing.hubspot import FakeHubSpot

__all__ = ["Delivery", "FakeAttio", "FakeHubSpot", "Faults", "LoggedRequest", "serve"]


def serve(
    kind: Literal["hubspot", "attio"],
    contacts: int = 1_000,
    port: int = 0,
    *,
    seed: int = 7,
    token: str = "test-token",  # noqa: S107 - the fake's own test token
    limits: bool = True,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> None:
    """Serve a seeded fake CRM in the foreground until interrupted (``crmindex fake-crm``)."""
    from crmindex.testing.synthetic import SyntheticCRM

    fake: FakeHubSpot | FakeAttio
    if kind == "hubspot":
        fake = FakeHubSpot(port=port, tokens=[token], limits=limits, webhook_url=webhook_url,
                           client_secret=webhook_secret)  # fmt: skip
    elif kind == "attio":
        fake = FakeAttio(port=port, tokens=[token], limits=limits, webhook_url=webhook_url,
                         webhook_secret=webhook_secret)  # fmt: skip
    else:
        raise ValueError(f"unknown fake CRM {kind!r}: hubspot or attio")
    fake.seed_from(SyntheticCRM(seed=seed, contacts=contacts, source=kind))
    fake.start()
    print(f"fake {kind} with {contacts} contacts at {fake.base_url} (token: the one you passed)", flush=True)
    fake.serve_forever()
