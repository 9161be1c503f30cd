"""HTTP for the local issuer: routes Entra's v2 paths to OidcIssuer, writes JSON, pages and redirects, and CORS."""

from __future__ import annotations

import contextlib
import html
import json
import re
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .model import OAuthError, redirect_url
from .pages import html_page, sign_in_form

if TYPE_CHECKING:
    from .issuer import OidcIssuer

_PATH = re.compile(r"^/(?P<tenant>[^/]+)(?P<rest>/.*)$")
_MAX_BODY = 65_536


class IssuerHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], issuer: OidcIssuer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.issuer = issuer


class _Handler(BaseHTTPRequestHandler):
    server: IssuerHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests carry codes and secrets in their bodies and queries: nothing is logged

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_OPTIONS(self) -> None:
        self._route("OPTIONS")

    def _route(self, method: str) -> None:
        issuer = self.server.issuer
        url = urlsplit(self.path)
        match = _PATH.match(url.path)
        query = dict(parse_qsl(url.query))
        try:
            if match is None:
                raise OAuthError("invalid_request", 90023, "The authentication service request is not valid.", status=404)
            tenant, rest = match["tenant"].lower(), match["rest"]
            if not issuer.knows_tenant(tenant):
                raise OAuthError("invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
            if rest == "/v2.0/.well-known/openid-configuration" and method == "GET":
                issuer.count("discovery")
                self._json(200, issuer.discovery(tenant), cors="*")
            elif rest == "/discovery/v2.0/keys" and method == "GET":
                issuer.count("keys")
                self._json(200, issuer.jwks(tenant), cors="*")
            elif rest == "/oauth2/v2.0/authorize" and method in ("GET", "POST"):
                issuer.count("authorize")
                self._authorize(tenant, query if method == "GET" else self._form())
            elif rest == "/oauth2/v2.0/token":
                self._token(tenant, method)
            elif rest == "/oauth2/v2.0/logout" and method == "GET":
                issuer.count("logout")
                target = issuer.logout_target(query)
                if target:
                    self._send(302, b"", "text/plain", {"Location": target})
                else:
                    self._page(200, "Signed out", "<p>You are signed out of the local issuer.</p>")
            else:
                raise OAuthError("invalid_request", 90056, f"{method} {rest} is not an endpoint of this issuer.", status=404)
        except OAuthError as error:
            self._json(error.status, error_body(error))

    def _authorize(self, tenant: str, params: Mapping[str, str]) -> None:
        issuer = self.server.issuer
        try:
            client, redirect_uri = issuer.check_authorization(params)
        except OAuthError as error:
            # A wrong client or redirect URI is never redirected to (RFC 6749 4.1.2.1): shown to the person instead.
            self._page(400, "Sign-in request refused", f"<p role='alert'>{html.escape(error.description)}</p>")
            return
        try:
            issuer.check_authorization_request(params)
            if self.command == "GET":
                self._page(200, "Sign in as", sign_in_form(issuer, tenant, client.name, params))
                return
            if params.get("cancel"):
                raise OAuthError("access_denied", 65004, "User declined to consent to access the app.")
            location = issuer.authorize(tenant, params, params.get("person", ""))
        except OAuthError as error:
            location = redirect_url(redirect_uri, params, {"error": error.error, "error_description": error.description})
        self._send(302, b"", "text/plain", {"Location": location})

    def _token(self, tenant: str, method: str) -> None:
        issuer = self.server.issuer
        cors = issuer.cors_origin(self.headers.get("Origin"))
        if method == "OPTIONS":
            headers = {
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "600",
            }
            self._send(204, b"", "text/plain", headers, cors=cors)
            return
        if method != "POST":
            raise OAuthError(
                "invalid_request", 900561, f"The endpoint only accepts POST requests. Received a {method} request.", status=405
            )
        issuer.count("token")
        try:
            body = issuer.token(tenant, self._form())
        except OAuthError as error:
            self._json(error.status, error_body(error), cors=cors)
            return
        self._json(200, body, cors=cors, extra={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise OAuthError("invalid_request", 90004, "The request is not properly formatted: the body is too large.")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        body = self.rfile.read(length) if length else b""
        if body and content_type != "application/x-www-form-urlencoded":
            raise OAuthError(
                "invalid_request", 90004, "The request is not properly formatted: send application/x-www-form-urlencoded."
            )
        return dict(parse_qsl(body.decode("utf-8", "replace")))

    def _json(
        self, status: int, body: Mapping[str, Any], *, cors: str | None = None, extra: Mapping[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", extra or {}, cors=cors)

    def _page(self, status: int, title: str, content: str) -> None:
        headers = {
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
        }
        self._send(status, html_page(title, content).encode(), "text/html; charset=utf-8", headers)

    def _send(
        self, status: int, payload: bytes, content_type: str, headers: Mapping[str, str], *, cors: str | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        if cors:
            self.send_header("Access-Control-Allow-Origin", cors)
            if cors != "*":
                self.send_header("Vary", "Origin")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.write(payload)


def error_body(error: OAuthError) -> dict[str, Any]:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": error.error,
        "error_description": f"{error.description}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}",
        "error_codes": [error.code] if error.code else [],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
    }
