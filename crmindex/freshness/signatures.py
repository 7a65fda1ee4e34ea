"""Webhook signature checks on the raw bytes, constant-time, with several valid secrets (rotation).

HubSpot (developers.hubspot.com validating-requests; the official Python SDK's ``utils/signature.py``):
  v1: hex(sha256(secret + body)); v2: hex(sha256(secret + method + uri + body));
  v3: base64(HMAC-SHA256(secret, method + uri + body + timestamp)), timestamp in ms, and the request is
  rejected when the timestamp is more than 5 minutes old **or in the future**.
Attio: hex(HMAC-SHA256(secret, raw body)) in ``Attio-Signature`` (or ``X-Attio-Signature``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from crmindex.platform.secrets import Secret

MAX_SKEW_S = 300.0

# The escapes HubSpot decodes in the request URI before signing (v3).
_V3_DECODE = ("%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29", "%2A", "%2C", "%3B")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    version: str | None = None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def hubspot_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def hubspot_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    msg = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def decode_v3_uri(uri: str) -> str:
    out = uri
    for esc in _V3_DECODE:
        out = out.replace(esc, unquote(esc)).replace(esc.lower(), unquote(esc))
    return out


def attio_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _any_equal(expected: Sequence[str], given: str) -> bool:
    ok = False
    for exp in expected:  # no early exit: every candidate is compared
        ok |= hmac.compare_digest(exp.encode(), given.encode())
    return ok


def verify_hubspot(
    method: str,
    uri: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[Secret],
    *,
    now: float | None = None,
    allow_legacy: bool = False,
) -> Verdict:
    """Check a HubSpot request: v3 when its headers are present, else (only with ``allow_legacy``) v2/v1 per
    X-HubSpot-Signature-Version. v1/v2 sign no timestamp: a captured request stripped of its v3 headers could be
    replayed forever, so they are refused unless an app that HubSpot still signs that way opts in."""
    if not secrets:
        return Verdict(False, "no webhook secret is configured for this account")
    h = _lower(headers)
    v3 = h.get("x-hubspot-signature-v3")
    if v3:
        ts = h.get("x-hubspot-request-timestamp", "")
        if not ts.isdigit():
            return Verdict(False, "missing or malformed X-HubSpot-Request-Timestamp")
        skew = (time.time() if now is None else now) - int(ts) / 1000.0
        if skew > MAX_SKEW_S:
            return Verdict(False, "stale timestamp (older than 5 minutes)")
        if skew < -MAX_SKEW_S:
            return Verdict(False, "timestamp in the future")
        uri_signed = decode_v3_uri(uri)
        expected = [hubspot_v3(s.reveal(), method.upper(), uri_signed, body, ts) for s in secrets]
        if uri_signed != uri:
            expected += [hubspot_v3(s.reveal(), method.upper(), uri, body, ts) for s in secrets]
        return Verdict(True, "ok", "v3") if _any_equal(expected, v3) else Verdict(False, "bad signature (v3)")
    sig = h.get("x-hubspot-signature")
    if not sig:
        return Verdict(False, "missing signature headers")
    if not allow_legacy:
        return Verdict(False, "no X-HubSpot-Signature-v3 (v1/v2 signatures can be replayed; not accepted)")
    version = h.get("x-hubspot-signature-version", "v1").lower()
    if version == "v1":
        expected = [hubspot_v1(s.reveal(), body) for s in secrets]
    elif version == "v2":
        expected = [hubspot_v2(s.reveal(), method.upper(), uri, body) for s in secrets]
    else:
        return Verdict(False, f"unsupported signature version {version[:10]!r}")
    return (
        Verdict(True, "ok", version)
        if _any_equal(expected, sig.lower())
        else Verdict(False, f"bad signature ({version})")
    )


def verify_attio(headers: Mapping[str, str], body: bytes, secrets: Sequence[Secret]) -> Verdict:
    if not secrets:
        return Verdict(False, "no webhook secret is configured for this workspace")
    h = _lower(headers)
    sig = h.get("attio-signature") or h.get("x-attio-signature")
    if not sig:
        return Verdict(False, "missing Attio-Signature header")
    expected = [attio_signature(s.reveal(), body) for s in secrets]
    return (
        Verdict(True, "ok", "attio")
        if _any_equal(expected, sig.strip().lower())
        else Verdict(False, "bad signature")
    )
