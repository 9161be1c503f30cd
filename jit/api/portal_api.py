"""The portal's files, served by the function app itself (so `azd up` deploys it, with no other hosting): the pages
and scripts in `portal/`, and the one library it uses, copied into `build/portal/vendor/` by scripts/build-portal.
Nothing is loaded from a CDN; a Content-Security-Policy says so to the browser too."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import azure.functions as func

from jit.api.http import Call

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "portal", ROOT / "build" / "portal")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}


def security_headers(authority: str) -> dict[str, str]:
    """The browser may talk to this app and to the one sign-in authority the service trusts (its token endpoint and
    metadata), nothing else."""
    parts = urlsplit(authority)
    sign_in = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("https", "http") and parts.netloc else ""
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {sign_in}".rstrip() + "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def index(call: Call) -> func.HttpResponse:
    return _file("index.html", _headers(call))


def files(call: Call) -> func.HttpResponse:
    return _file(call.req.route_params.get("path") or "index.html", _headers(call))


def _headers(call: Call) -> dict[str, str]:
    return security_headers(call.services.settings.identity.authority)


def _file(relative: str, security: dict[str, str]) -> func.HttpResponse:
    for source in SOURCES:
        target = (source / relative).resolve()
        # Only files inside the portal's folders, of the kinds it has.
        if target.is_relative_to(source.resolve()) and target.is_file() and target.suffix in TYPES:
            headers = {**security, "Cache-Control": "no-cache"}
            return func.HttpResponse(
                target.read_bytes(),
                status_code=200,
                mimetype=TYPES[target.suffix].split(";")[0],
                headers={**headers, "Content-Type": TYPES[target.suffix]},
            )
    if "." not in relative.rsplit("/", 1)[-1]:
        return _file("index.html", security)  # the portal's own routes (#/grants, ...) all load its one page
    return func.HttpResponse("not found", status_code=404, mimetype="text/plain")
