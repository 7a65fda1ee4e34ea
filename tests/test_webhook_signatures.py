"""Webhook signatures: the official HubSpot test vectors, tampering, staleness, rotation, Attio HMAC."""

from __future__ import annotations

import hashlib
import hmac

from crmindex.freshness.signatures import (
    attio_signature,
    hubspot_v1,
    hubspot_v2,
    hubspot_v3,
    verify_attio,
    verify_hubspot,
)
from crmindex.platform.secrets import Secret

# From HubSpot's official Python SDK tests (tests/spec/utils/test_signature.py), as quoted in the reference.
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
BODY = b"{'example_field':'example_value'}"
URI = "https://www.example.com/webhook_uri"
TS = "15000000"
DOCS_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
    b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
)


def test_official_hubspot_vectors() -> None:
    assert hubspot_v1(SECRET, BODY) == "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
    assert (
        hubspot_v2(SECRET, "POST", URI, BODY)
        == "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
    )
    assert (
        hubspot_v2(SECRET, "GET", URI, b"")
        == "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    )
    assert hubspot_v3(SECRET, "POST", URI, BODY, TS) == "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
    assert hubspot_v1(SECRET, DOCS_BODY) == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"


def _v3_headers(secret: str, body: bytes, ts_ms: int, uri: str = URI) -> dict[str, str]:
    return {
        "X-HubSpot-Signature-v3": hubspot_v3(secret, "POST", uri, body, str(ts_ms)),
        "X-HubSpot-Request-Timestamp": str(ts_ms),
    }


def test_v3_accepts_fresh_and_rejects_stale_future_tampered_and_wrong_secret() -> None:
    now = 1_700_000_000.0
    ts = int(now * 1000)
    good = _v3_headers(SECRET, BODY, ts)
    assert verify_hubspot("POST", URI, good, BODY, [Secret(SECRET)], now=now).ok
    stale = verify_hubspot(
        "POST", URI, _v3_headers(SECRET, BODY, ts - 301_000), BODY, [Secret(SECRET)], now=now
    )
    assert (stale.ok, stale.reason) == (False, "stale timestamp (older than 5 minutes)")
    future = verify_hubspot(
        "POST", URI, _v3_headers(SECRET, BODY, ts + 301_000), BODY, [Secret(SECRET)], now=now
    )
    assert (future.ok, future.reason) == (False, "timestamp in the future")
    assert not verify_hubspot("POST", URI, good, BODY + b" ", [Secret(SECRET)], now=now).ok
    assert not verify_hubspot("POST", URI + "?x=1", good, BODY, [Secret(SECRET)], now=now).ok
    assert not verify_hubspot("POST", URI, good, BODY, [Secret("other-secret")], now=now).ok
    # a replayed request is only valid inside the 5-minute window
    assert not verify_hubspot("POST", URI, good, BODY, [Secret(SECRET)], now=now + 400).ok


def test_rotated_secrets_are_all_valid() -> None:
    now = 1_700_000_000.0
    headers = _v3_headers("new-secret", BODY, int(now * 1000))
    assert verify_hubspot(
        "POST", URI, headers, BODY, [Secret("old-secret"), Secret("new-secret")], now=now
    ).ok
    assert not verify_hubspot("POST", URI, headers, BODY, [Secret("old-secret")], now=now).ok


def test_v3_uri_escapes_are_decoded_before_hashing() -> None:
    now = 1_700_000_000.0
    signed_uri = "https://hooks.example.com/hubspot?org=a:b"
    headers = _v3_headers(SECRET, BODY, int(now * 1000), uri=signed_uri)
    assert verify_hubspot(
        "POST", "https://hooks.example.com/hubspot?org=a%3Ab", headers, BODY, [Secret(SECRET)], now=now
    ).ok


def test_v1_and_v2_legacy_signatures_only_when_allowed() -> None:
    v1 = {"X-HubSpot-Signature": hubspot_v1(SECRET, DOCS_BODY), "X-HubSpot-Signature-Version": "v1"}
    # no timestamp is signed: a captured request stripped of its v3 headers would replay forever
    refused = verify_hubspot("POST", URI, v1, DOCS_BODY, [Secret(SECRET)])
    assert not refused.ok and "v1/v2 signatures can be replayed" in refused.reason
    legacy = {"allow_legacy": True}
    assert verify_hubspot("POST", URI, v1, DOCS_BODY, [Secret(SECRET)], **legacy).version == "v1"
    v2 = {
        "X-HubSpot-Signature": hubspot_v2(SECRET, "POST", URI, DOCS_BODY),
        "X-HubSpot-Signature-Version": "v2",
    }
    assert verify_hubspot("POST", URI, v2, DOCS_BODY, [Secret(SECRET)], **legacy).ok
    assert not verify_hubspot("POST", URI, v2, DOCS_BODY, [Secret(SECRET)]).ok
    assert not verify_hubspot(
        "POST", URI, v2, DOCS_BODY.replace(b"123", b"124"), [Secret(SECRET)], **legacy
    ).ok
    assert verify_hubspot("POST", URI, {}, DOCS_BODY, [Secret(SECRET)]).reason == "missing signature headers"


def test_attio_hex_hmac_of_the_raw_body() -> None:
    body = b'{"webhook_id":"w","events":[{"event_type":"record.updated","id":{"workspace_id":"ws"}}]}'
    independent = hmac.new(b"attio-secret", body, hashlib.sha256).hexdigest()
    assert attio_signature("attio-secret", body) == independent
    assert verify_attio({"Attio-Signature": independent}, body, [Secret("attio-secret")]).ok
    assert verify_attio({"X-Attio-Signature": independent}, body, [Secret("attio-secret")]).ok
    assert not verify_attio({"Attio-Signature": independent}, body + b"\n", [Secret("attio-secret")]).ok
    assert not verify_attio({"Attio-Signature": independent}, body, [Secret("wrong")]).ok
    assert not verify_attio({}, body, [Secret("attio-secret")]).ok


def test_secrets_do_not_print_themselves() -> None:
    s = Secret("super-secret-value")
    assert (
        "super-secret-value" not in repr(s) and "super-secret-value" not in str(s) and "super" not in f"{s}"
    )
