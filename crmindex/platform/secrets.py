"""Secrets (CRM tokens, webhook secrets) are never stored: the database holds a *reference*.

A reference is ``env:NAME`` (read the environment variable NAME when needed); several references may be
listed comma-separated for rotation (``env:HUBSPOT_SECRET,env:HUBSPOT_SECRET_OLD``). Applications can pass
their own resolver (a vault, a KMS...) anywhere a :class:`SecretResolver` is accepted.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from crmindex.errors import CrmIndexError

SecretResolver = Callable[[str], str | None]


class SecretError(CrmIndexError):
    """A secret reference is malformed or names nothing (the message never contains a secret)."""


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def env_resolver(ref: str) -> str | None:
    """Resolve ``env:NAME``; None when the variable is unset or empty."""
    kind, _, name = ref.partition(":")
    if kind != "env" or not name:
        raise SecretError(f"unsupported secret reference {ref.split(':', 1)[0]!r}: use env:NAME")
    value = os.environ.get(name)
    return value or None


def resolve_all(refs: str | None, resolver: SecretResolver = env_resolver) -> list[Secret]:
    """Every secret a comma-separated reference list resolves to (missing ones are skipped)."""
    if not refs:
        return []
    out: list[Secret] = []
    for ref in (r.strip() for r in refs.split(",")):
        if ref:
            value = resolver(ref)
            if value:
                out.append(Secret(value))
    return out


def token_provider(ref: str, resolver: SecretResolver = env_resolver) -> Callable[[], str]:
    """A callable for the CRM clients: resolves the token at each call (so rotation and refresh work)."""

    def provide() -> str:
        secrets = resolve_all(ref, resolver)
        if not secrets:
            raise SecretError(f"no CRM token found for reference {ref!r}")
        return secrets[0].reveal()

    return provide
