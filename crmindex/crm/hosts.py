"""Where a request carrying a CRM token may go.

A token is sent only to the CRM's real hosts (HubSpot ``api.hubapi.com``; Attio ``api.attio.com`` for the API and
``app.attio.com`` for OAuth), over HTTPS, or to a base URL the **operator** allowed on the worker side: the
``CRMINDEX_ALLOWED_BASE_URLS`` environment variable (comma-separated) or the composition root's argument. The
allow-list is empty by default. A stored ``base_url`` is data (an operator typed it, a tenant might have changed
it in an older version): it never widens where tokens go by itself.

Allow-list entries are base URLs: ``scheme://host[:port][/path]``. A request's base URL matches an entry with the
same scheme, host and port whose path is a prefix of its own (at a ``/`` boundary). ``:*`` as the port matches any
port of that host (local fakes on ephemeral ports: ``http://127.0.0.1:*``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from crmindex.crm.errors import AuthError

ALLOWED_ENV = "CRMINDEX_ALLOWED_BASE_URLS"


def real_hosts(source: str) -> frozenset[str]:
    """The CRM's own hosts (its entry in :mod:`crmindex.crm.registry`; none for an unknown source)."""
    from crmindex.crm.registry import CRMS  # the registry builds every CRM's adapters, which use this module

    entry = CRMS.get(source)
    return frozenset() if entry is None else entry.real_hosts


class HostNotAllowedError(AuthError):
    """A token was about to go to a host that is neither the CRM's nor on the operator's allow-list: nothing
    was sent. (An :class:`AuthError`: workers hold the connection's jobs instead of dead-lettering them.)"""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message, source=source, status=None, category="HOST_NOT_ALLOWED")


@dataclass(frozen=True)
class _Base:
    scheme: str
    host: str
    port: int | None  # None: the scheme's default; -1: any (allow-list wildcard)
    path: str

    def covers(self, other: _Base) -> bool:
        if self.scheme != other.scheme or self.host != other.host:
            return False
        if self.port != -1 and self.port != other.port:
            return False
        return other.path == self.path or other.path.startswith(self.path + "/") or self.path == ""


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _parse(url: str, *, allow_wildcard: bool = False) -> _Base:
    text = url.strip()
    wildcard = False
    if allow_wildcard and ":*" in text:
        head, _, tail = text.partition(":*")
        if head.count(":") != 1:  # only scheme://host:*[/path]
            raise ValueError("a wildcard port is written scheme://host:*")
        text, wildcard = head + tail, True
    try:
        parts: SplitResult = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError("not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("the scheme must be http or https")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("a base URL must not carry credentials")
    if parts.query or parts.fragment:
        raise ValueError("a base URL has no query or fragment")
    if port == _DEFAULT_PORTS[parts.scheme]:
        port = None
    return _Base(parts.scheme, parts.hostname.lower(), -1 if wildcard else port, parts.path.rstrip("/"))


def _describe(url: str) -> str:
    """A base URL as it may appear in an error (no credentials, no query; bounded)."""
    try:
        b = _parse(url)
    except ValueError:
        return repr(url.split("?")[0].split("@")[-1][:80])
    port = "" if b.port is None else f":{b.port}"
    return f"{b.scheme}://{b.host}{port}{b.path}"[:120]


class HostPolicy:
    """The worker-side rule for where a CRM token may be sent."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        entries: list[_Base] = []
        for raw in allowed:
            if not raw or not raw.strip():
                continue
            try:
                entries.append(_parse(raw, allow_wildcard=True))
            except ValueError as exc:
                raise ValueError(f"allow-list entry {_describe(raw)}: {exc}") from None
        self._allowed = tuple(entries)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HostPolicy:
        """The allow-list of ``CRMINDEX_ALLOWED_BASE_URLS`` (empty: only the CRMs' real hosts)."""
        value = (os.environ if environ is None else environ).get(ALLOWED_ENV, "")
        return cls(v for v in value.split(",") if v.strip())

    @classmethod
    def resolve(cls, policy: HostPolicy | Iterable[str] | None) -> HostPolicy:
        """``None``: from the environment; an iterable of URLs: exactly those (``()``: none)."""
        if policy is None:
            return cls.from_env()
        if isinstance(policy, HostPolicy):
            return policy
        return cls(policy)

    def __repr__(self) -> str:
        return f"HostPolicy(allowed={len(self._allowed)})"

    def is_allowed(self, source: str, base_url: str) -> bool:
        try:
            base = _parse(base_url)
        except ValueError:
            return False
        if base.scheme == "https" and base.port is None and base.host in real_hosts(source):
            return True
        return any(entry.covers(base) for entry in self._allowed)

    def check(self, source: str, base_url: str) -> str:
        """``base_url`` without a trailing slash when a token may go there, else :class:`HostNotAllowedError`."""
        if not self.is_allowed(source, base_url):
            hosts = ", ".join(sorted(real_hosts(source)))
            raise HostNotAllowedError(
                f"{source} base URL {_describe(base_url)} is not allowed: tokens go only to {hosts} (https) or "
                f"to a base URL the operator allows ({ALLOWED_ENV}); nothing was sent",
                source=source,
            )
        return base_url.strip().rstrip("/")
