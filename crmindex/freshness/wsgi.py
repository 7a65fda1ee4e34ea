"""A small WSGI app around the webhook receiver, for any WSGI server and for the demo.

Routes: ``POST /webhooks/hubspot`` and ``POST /webhooks/attio``; ``GET /healthz``.
The full request URL HubSpot signed is rebuilt from the WSGI environ (honouring ``X-Forwarded-Proto`` /
``X-Forwarded-Host`` when ``trust_proxy`` is set), or given explicitly as ``public_url``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from crmindex.freshness.intake import WebhookReceiver, WebhookResponse

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    out = {k[5:].replace("_", "-").title(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        out["Content-Type"] = str(environ["CONTENT_TYPE"])
    return out


def _url(environ: dict[str, Any], trust_proxy: bool, public_url: str | None) -> str:
    path = str(environ.get("PATH_INFO", ""))
    query = str(environ.get("QUERY_STRING", ""))
    if public_url:
        base = public_url.rstrip("/")
    else:
        scheme = str(environ.get("wsgi.url_scheme", "http"))
        host = str(environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}")
        if trust_proxy:
            scheme = str(environ.get("HTTP_X_FORWARDED_PROTO", scheme)).split(",")[0].strip()
            host = str(environ.get("HTTP_X_FORWARDED_HOST", host)).split(",")[0].strip()
        base = f"{scheme}://{host}"
    return f"{base}{path}" + (f"?{query}" if query else "")


def make_wsgi_app(
    receiver: WebhookReceiver, *, trust_proxy: bool = False, public_url: str | None = None
) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if path == "/healthz":
            res = WebhookResponse(200, "ok")
        elif path not in ("/webhooks/hubspot", "/webhooks/attio"):
            res = WebhookResponse(404, "not found")
        elif method != "POST":
            res = WebhookResponse(405, "POST only")
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if length < 0:
                res = WebhookResponse(411, "bad Content-Length")
            elif length > receiver.max_body_bytes:
                res = WebhookResponse(413, "body too large")
            else:
                body = environ["wsgi.input"].read(length) if length else b""
                headers = _headers(environ)
                if path.endswith("hubspot"):
                    res = receiver.handle_hubspot(
                        method, _url(environ, trust_proxy, public_url), headers, body
                    )
                else:
                    res = receiver.handle_attio(headers, body)
        payload = json.dumps({"status": res.status, "reason": res.reason, "events": res.events}).encode()
        start_response(
            f"{res.status} {_REASONS.get(res.status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return app
