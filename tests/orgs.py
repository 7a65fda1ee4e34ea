"""The orgs the tests act for, in one place.

* ``ORG_A``: the tenant a test works in (``ORG`` for tests that need a single org).
* ``ORG_B``: the other tenant, whose rows must never show to A (tenancy tests) or that a test keeps apart.

``ORG_A < ORG_B`` (tests that list orgs expect A first). Each test database is fresh (``db`` in
``tests/conftest.py``), so every file can use the same ids; the fixtures ``org_a``, ``org_b`` and ``both_orgs``
create them there, ``app_session`` opens a session as the application role bound to one of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from crmindex.platform.db import bind_org

ORG_A = uuid.UUID("0000000a-0000-4000-8000-00000000000a")
ORG_B = uuid.UUID("0000000b-0000-4000-8000-00000000000b")
ORG = ORG_A

NAMES = {ORG_A: "Org A", ORG_B: "Org B"}


@contextmanager
def app_session(dsn: str, org: uuid.UUID | None = ORG_A) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit session as the application role (``SET ROLE crm_app``) bound to ``org`` the way the
    application binds (``crmindex.platform.db.bind_org``: ``set_config('crm.org_id', ..., false)``); ``None``
    leaves it unbound."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE crm_app")
        if org is not None:
            bind_org(conn, org)
        yield conn
