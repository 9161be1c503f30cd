"""Access tokens: issued by the simulator's token endpoint (sts.py), verified on every Graph request.

Entra signs Graph tokens with its own keys (RS256); the simulator signs with a secret of its own (HS256, standard
library only). What matters is the same: a token a client minted itself carries no valid signature, and Graph
refuses it with 401 InvalidAuthenticationToken. Claims follow Entra's app-only v1.0 access tokens for Graph
(MicrosoftDocs/entra-docs docs/identity-platform/access-token-claims-reference.md): aud, iss, iat, nbf, exp,
appid, idtyp "app", oid/sub (the service principal), roles (granted application permissions), tid, ver, wids.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import MSG_TOKEN_EMPTY, MSG_TOKEN_EXPIRED, MSG_TOKEN_MALFORMED, GraphError, unauthorized

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MSG_SIGNATURE_INVALID = "Signature is invalid."
MSG_INVALID_AUDIENCE = "Access token validation failure. Invalid audience."


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(data: Mapping[str, Any]) -> str:
    return _b64url_encode(json.dumps(data, separators=(",", ":")).encode())


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: str
    app_id: str
    roles: frozenset[str]
    raw: Mapping[str, Any]


class TokenIssuer:
    """Signs and verifies the simulator's access tokens. The secret never leaves the process."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.key_id = hashlib.sha256(self._secret).hexdigest()[:16]

    def issue(
        self,
        tenant_id: str,
        app_id: str,
        service_principal_id: str,
        roles: Iterable[str],
        *,
        lifetime_s: int = 3599,
        app_display_name: str = "",
        directory_roles: Iterable[str] = (),
        now: float | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "aud": GRAPH_AUDIENCE,
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime_s,
            "app_displayname": app_display_name,
            "appid": app_id,
            "appidacr": "1",
            "idp": f"https://sts.windows.net/{tenant_id}/",
            "idtyp": "app",
            "oid": service_principal_id,
            "sub": service_principal_id,
            "tid": tenant_id,
            "uti": uuid.uuid4().hex[:22],
            "ver": "1.0",
        }
        granted = sorted(set(roles))
        if granted:  # Entra omits the claim when the app holds no application permission in the tenant.
            claims["roles"] = granted
        wids = sorted(set(directory_roles))
        if wids:
            claims["wids"] = wids
        header = {"typ": "JWT", "alg": "HS256", "kid": self.key_id}
        signing_input = f"{_segment(header)}.{_segment(claims)}"
        return f"{signing_input}.{self._sign(signing_input)}"

    def _sign(self, signing_input: str) -> str:
        return _b64url_encode(hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest())

    def verify(self, authorization: str | None, now: float | None = None) -> TokenClaims:
        """Claims of a valid `Authorization: Bearer` header; 401 GraphError as Graph answers otherwise."""
        if not authorization or not authorization.strip():
            raise unauthorized(MSG_TOKEN_EMPTY)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized(MSG_TOKEN_EMPTY)
        parts = token.split(".")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise unauthorized(MSG_TOKEN_MALFORMED)
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise unauthorized(MSG_TOKEN_MALFORMED) from exc
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise unauthorized(MSG_TOKEN_MALFORMED)
        expected = self._sign(f"{parts[0]}.{parts[1]}")
        if header.get("alg") != "HS256" or not hmac.compare_digest(expected, parts[2]):
            raise unauthorized(MSG_SIGNATURE_INVALID)
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= (time.time() if now is None else now):
            raise unauthorized(MSG_TOKEN_EXPIRED)
        if claims.get("aud") not in (GRAPH_AUDIENCE, GRAPH_AUDIENCE + "/", GRAPH_APP_ID):
            raise unauthorized(MSG_INVALID_AUDIENCE)
        roles = claims.get("roles") or []
        if not isinstance(roles, list):
            raise unauthorized(MSG_TOKEN_MALFORMED)
        return TokenClaims(str(claims.get("tid", "")).lower(), str(claims.get("appid", "")), frozenset(map(str, roles)), claims)


def decode_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWT, unverified (for tests and logs)."""
    payload = json.loads(_b64url_decode(token.split(".")[1]))
    if not isinstance(payload, dict):
        raise GraphError(401, "InvalidAuthenticationToken", MSG_TOKEN_MALFORMED)
    return payload


def forge_unsigned_token(tenant_id: str, roles: Iterable[str] = (), lifetime_s: int = 3600) -> str:
    """A token as a client would mint it for itself (alg none). Graph, and the simulator, refuse it."""
    now = int(time.time())
    claims = {"aud": GRAPH_AUDIENCE, "tid": tenant_id, "iat": now, "nbf": now, "exp": now + lifetime_s, "roles": list(roles)}
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."
