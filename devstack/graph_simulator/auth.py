"""Dev access tokens: minting (for tests) and tenant extraction (for the server).

The simulator never verifies signatures: it only needs to know which tenant a
request is for, and dev tokens are unsigned (alg "none", empty signature).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .errors import (
    MSG_TOKEN_EMPTY,
    MSG_TOKEN_EXPIRED,
    MSG_TOKEN_INVALID,
    MSG_TOKEN_MALFORMED,
    GraphError,
    unauthorized,
)

GRAPH_AUDIENCE = "https://graph.microsoft.com"


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_dev_token(
    tenant_id: str,
    lifetime_s: int = 3600,
    *,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Return an unsigned JWT ("alg": "none") carrying `tid` for the simulator."""
    now = int(time.time())
    header = {"alg": "none", "typ": "JWT"}
    payload: dict[str, Any] = {
        "aud": GRAPH_AUDIENCE,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "tid": tenant_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_s,
        "oid": str(uuid.uuid4()),
        "idtyp": "app",
        "app_displayname": "jit-admin-dev",
    }
    if extra_claims:
        payload.update(extra_claims)
    parts = [
        _b64url_encode(json.dumps(header, separators=(",", ":")).encode()),
        _b64url_encode(json.dumps(payload, separators=(",", ":")).encode()),
        "",  # empty signature: dev tokens are unsigned
    ]
    return ".".join(parts)


def decode_claims(token: str) -> dict[str, Any]:
    """Decode the payload of a compact JWT; raise 401 GraphError when malformed."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise unauthorized(MSG_TOKEN_MALFORMED)
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise unauthorized(MSG_TOKEN_MALFORMED) from exc
    if not isinstance(claims, dict):
        raise unauthorized(MSG_TOKEN_MALFORMED)
    return claims


def tenant_from_authorization(header: str | None, now: float | None = None) -> str:
    """Return the `tid` of a valid bearer header; raise a 401 GraphError otherwise.

    Whether the tenant exists is the caller's business (it owns the registry).
    """
    if not header or not header.strip():
        raise unauthorized(MSG_TOKEN_EMPTY)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(MSG_TOKEN_EMPTY)
    claims = decode_claims(token.strip())
    exp = claims.get("exp")
    if exp is not None:
        if not isinstance(exp, (int, float)):
            raise unauthorized(MSG_TOKEN_MALFORMED)
        if exp <= (time.time() if now is None else now):
            raise unauthorized(MSG_TOKEN_EXPIRED)
    tid = claims.get("tid")
    if not isinstance(tid, str) or not tid:
        raise unauthorized(MSG_TOKEN_INVALID)
    return tid.lower()


__all__ = [
    "GraphError",
    "decode_claims",
    "make_dev_token",
    "tenant_from_authorization",
]
