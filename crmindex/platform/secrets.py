"""Secrets (CRM tokens, webhook secrets): kept in memory as :class:`Secret`, stored only sealed.

The database holds ciphertexts (``crm.connection_secret``); the keys stay with the processes that need them:

* :class:`SecretBox` seals and unseals with AES-256-GCM (the ``cryptography`` package). The associated data binds
  every ciphertext to its org, CRM and kind, so a ciphertext copied into another org's row (or used as another
  kind of secret) does not unseal. The id of the key that sealed a secret is stored beside it.
* Keys come from ``CRMINDEX_SECRET_KEYS`` = ``kid:base64url-32-bytes[,kid2:...]`` (the first is the current key,
  the others still unseal during a rotation: :func:`crmindex.crm.tokens.rotate_secrets` re-seals), or from a
  host-provided :class:`KeyProvider` (a KMS, a vault): ``SecretBox(provider)``.
* A new key: ``python -m crmindex.platform.secrets new-key [KID]`` prints ``KID:...`` (or :func:`new_key_spec`).

There is no way to name a secret by environment variable any more: a reference that a tenant could set would
let it make a worker send any variable of its environment (another org's token, the database password).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets as _random
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crmindex.errors import CrmIndexError

KEYS_ENV = "CRMINDEX_SECRET_KEYS"
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
NONCE_BYTES = 12
MAX_SECRET_BYTES = 8192  # HubSpot tokens: "allow up to 300 characters"; webhook secrets are shorter
SECRET_KINDS = frozenset(
    {"access_token", "refresh_token", "private_app_token", "webhook_secret", "pkce_verifier"}
)


class SecretError(CrmIndexError):
    """No key ring, a malformed key, or a ciphertext that does not unseal (the message never holds a secret)."""


class Secret:
    """A string that does not print itself (repr, str, format, logging, tracebacks show ``***``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and _random.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:  # never pickled into a log or a queue by accident
        raise TypeError("a Secret cannot be pickled")


@runtime_checkable
class KeyProvider(Protocol):
    """Where a :class:`SecretBox` gets its keys: the current key's id, and any key by id (``None``: unknown).

    Keys are 32 bytes (AES-256). Implement this over a KMS or vault to keep keys out of the environment."""

    def current_key_id(self) -> str: ...

    def key(self, key_id: str) -> bytes | None: ...


class StaticKeys:
    """A :class:`KeyProvider` over keys given in memory, the current one first."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise SecretError("a key ring needs at least one key")
        seen: dict[str, bytes] = {}
        for kid, key in keys:
            if not KEY_ID_RE.match(kid):
                raise SecretError(f"key id {kid[:70]!r} must be 1 to 64 characters [A-Za-z0-9_.-]")
            if len(key) != 32:
                raise SecretError(f"key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
            if kid in seen:
                raise SecretError(f"key id {kid!r} is given twice")
            seen[kid] = bytes(key)
        self._keys = seen
        self._current = keys[0][0]

    def current_key_id(self) -> str:
        return self._current

    def key(self, key_id: str) -> bytes | None:
        return self._keys.get(key_id)

    def key_ids(self) -> list[str]:
        return list(self._keys)

    def __repr__(self) -> str:
        return f"StaticKeys(ids={self.key_ids()!r})"


def parse_key_spec(spec: str) -> StaticKeys:
    """``kid:base64url-32-bytes[,kid2:...]`` (padding optional) as keys, the first current."""
    keys: list[tuple[str, bytes]] = []
    for n, part in enumerate(p.strip() for p in spec.split(",")):
        if not part:
            continue
        kid, sep, encoded = part.partition(":")
        if not sep or not kid:
            raise SecretError(f"{KEYS_ENV}: entry {n + 1} is not kid:base64url-key")
        try:
            text = encoded.strip()
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise SecretError(f"{KEYS_ENV}: key {kid[:64]!r} is not base64url") from None
        keys.append((kid.strip(), raw))
    if not keys:
        raise SecretError(f"{KEYS_ENV} names no key")
    return StaticKeys(keys)


def new_key_spec(kid: str = "k1") -> str:
    """A fresh random key as ``kid:base64url`` (for ``CRMINDEX_SECRET_KEYS``; keep it secret)."""
    if not KEY_ID_RE.match(kid):
        raise SecretError("key id must be 1 to 64 characters [A-Za-z0-9_.-]")
    return f"{kid}:" + base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode().rstrip("=")


@dataclass(frozen=True)
class Sealed:
    """A sealed secret as stored: the key id and ``nonce || ciphertext+tag``."""

    key_id: str
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, {len(self.ciphertext)} bytes)"


def associated_data(org_id: uuid.UUID | str, source: str, kind: str) -> bytes:
    """What a ciphertext is bound to: it unseals only for the same org, CRM and kind."""
    return f"crmindex/v1|{uuid.UUID(str(org_id))}|{source}|{kind}".encode()


class SecretBox:
    """Seals and unseals secrets with the keys of a :class:`KeyProvider` (AES-256-GCM, random 96-bit nonces)."""

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SecretBox:
        """The box of ``CRMINDEX_SECRET_KEYS``; a clear :class:`SecretError` when it is unset or malformed."""
        spec = (os.environ if environ is None else environ).get(KEYS_ENV, "").strip()
        if not spec:
            raise SecretError(
                f"{KEYS_ENV} is not set: the key ring that seals CRM tokens (kid:base64url-32-bytes; "
                "`python -m crmindex.platform.secrets new-key` makes one)"
            )
        return cls(parse_key_spec(spec))

    @classmethod
    def from_keys(cls, *keys: tuple[str, bytes]) -> SecretBox:
        return cls(StaticKeys(list(keys)))

    def __repr__(self) -> str:
        return f"SecretBox(current={self.current_key_id!r})"

    @property
    def current_key_id(self) -> str:
        return self.provider.current_key_id()

    def _aead(self, key_id: str) -> AESGCM:
        key = self.provider.key(key_id)
        if key is None:
            raise SecretError(
                f"key {key_id!r} is not in the key ring ({KEYS_ENV}); a secret sealed with it cannot be read"
            )
        if len(key) != 32:
            raise SecretError(f"key {key_id!r} must be 32 bytes (AES-256)")
        return AESGCM(key)

    def seal(self, secret: Secret | str, *, org_id: uuid.UUID | str, source: str, kind: str) -> Sealed:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if not isinstance(value, str) or not value:
            raise SecretError(f"an empty {kind} cannot be stored")
        if kind not in SECRET_KINDS:
            raise SecretError(f"unknown secret kind {kind!r}")
        raw = value.encode()
        if len(raw) > MAX_SECRET_BYTES:
            raise SecretError(f"a {kind} of {len(raw)} bytes is too long (at most {MAX_SECRET_BYTES})")
        key_id = self.current_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead(key_id).encrypt(nonce, raw, associated_data(org_id, source, kind))
        return Sealed(key_id, nonce + sealed)

    def unseal(
        self, key_id: str, ciphertext: bytes, *, org_id: uuid.UUID | str, source: str, kind: str
    ) -> Secret:
        """The secret, or :class:`SecretError` (unknown key, tampered ciphertext, another org's, CRM's or
        kind's ciphertext)."""
        data = bytes(ciphertext)
        if len(data) <= NONCE_BYTES + 16:
            raise SecretError(f"the stored {kind} is not a sealed secret")
        try:
            raw = self._aead(key_id).decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], associated_data(org_id, source, kind)
            )
        except InvalidTag:
            raise SecretError(
                f"the stored {kind} of org {org_id} ({source}) does not unseal with key {key_id!r}: "
                "it was altered, or sealed for another org, CRM or kind"
            ) from None
        return Secret(raw.decode())

    def needs_reseal(self, key_id: str) -> bool:
        return key_id != self.current_key_id


def _main(argv: Sequence[str]) -> int:
    if len(argv) >= 1 and argv[0] == "new-key" and len(argv) <= 2:
        print(new_key_spec(argv[1] if len(argv) == 2 else "k1"))
        return 0
    print("usage: python -m crmindex.platform.secrets new-key [KEY_ID]", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
