"""Validate Entra ID access tokens for the API and say who presented them.

A token is accepted only when all of this holds (Microsoft's rules for web APIs,
https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-tokens and
https://learn.microsoft.com/entra/identity-platform/claims-validation):
- `alg` is RS256 (never `none`, never HS*: an HMAC "signed" with the public key is the classic confusion attack) and
  the signature verifies against a key published at the `jwks_uri` of the tenant's OpenID discovery document
  (`{authority}/{tenant}/v2.0/.well-known/openid-configuration`);
- `aud` is one of the configured audiences (v2 tokens carry the client id, v1 tokens the Application ID URI);
- `exp`, `nbf` and `iat` hold, with a small leeway for clock skew;
- `tid` is an allowed tenant, and `iss` is that tenant's issuer: the discovery document's (v2,
  `https://login.microsoftonline.com/{tid}/v2.0`) or the cloud's v1 issuer (`https://sts.windows.net/{tid}/`);
- `oid` (a GUID) and `sub` are present. Identity is always the object id: names are mutable and only displayed.

PyJWT (and through it `cryptography`) is imported on first use, not at import, to keep the app's cold start short.
Keys are cached per tenant; a token signed with an unknown `kid` refreshes the key set once, at most once per
`refresh_cooldown` seconds (PyJWKClient's cooldown), so a stream of forged kids cannot make us hammer Entra.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from jit.identity.settings import ENTRA_AUTHORITY_HOSTS, LOOPBACK_HOSTS, IdentitySettings, is_guid

if TYPE_CHECKING:
    from jwt import PyJWKClient

log = logging.getLogger("jit.identity")

ALGORITHM = "RS256"
# Larger than any Entra access token (a few KB even with many groups); anything bigger is refused unparsed.
MAX_TOKEN_CHARS = 16_384
_MAX_DOCUMENT_BYTES = 1_048_576
# After a failed discovery fetch, requests fail fast for this long instead of each waiting on a timeout.
_DISCOVERY_RETRY_SECONDS = 5.0

# The v1 issuer host of each cloud, by sign-in host (v1 and v2 issuers, per Microsoft:
# https://learn.microsoft.com/answers/questions/1190472/what-are-the-token-issuers-for-the-sovereign-cloud).
# The v2 issuer is not listed: it is the `issuer` of the tenant's v2 discovery document.
V1_ISSUER_HOSTS = {
    "login.microsoftonline.com": "sts.windows.net",
    "login.microsoftonline.us": "sts.windows.net",
    "login.partner.microsoftonline.cn": "sts.chinacloudapi.cn",
    "login.chinacloudapi.cn": "sts.chinacloudapi.cn",
}

# Display name, first present wins: v2 tokens carry preferred_username, v1 tokens upn (members) or unique_name (also
# guests); name is the person's display name; app_displayname (optional claim) names an application. Failing all, the
# object id. Display only, never for decisions (https://learn.microsoft.com/entra/identity-platform/claims-validation).
DISPLAY_CLAIMS = ("preferred_username", "upn", "unique_name", "name", "app_displayname")
REQUIRED_CLAIMS = ("exp", "nbf", "iat", "iss", "aud", "tid", "oid", "sub")


class Reason:
    """The short, safe reasons a token is refused (never any of the token's content)."""

    MALFORMED = "malformed"
    ALGORITHM = "algorithm not allowed"
    EXPIRED = "token expired"
    NOT_YET_VALID = "token not yet valid"
    AUDIENCE = "wrong audience"
    ISSUER = "issuer not allowed"
    TENANT = "tenant not allowed"
    SIGNATURE = "signature invalid"
    UNKNOWN_KEY = "unknown signing key"
    KEYS_UNAVAILABLE = "signing keys unavailable"  # discovery or JWKS could not be fetched: a 503, not a 401

    @staticmethod
    def missing(claim: str) -> str:
        return f"missing claim {claim}"


class TokenRejected(Exception):
    """The bearer token is not acceptable; `reason` is one of `Reason`'s and safe to log or return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PrincipalKind(StrEnum):
    PERSON = "person"
    APPLICATION = "application"


@dataclass(frozen=True)
class Principal:
    """Who presented a valid token."""

    object_id: str  # `oid`: the user's or service principal's object id, lower-case GUID
    tenant_id: str  # `tid`, lower-case GUID
    display: str  # see DISPLAY_CLAIMS
    roles: tuple[str, ...]  # `roles` as issued, unknown ones included: the caller maps them to app roles
    kind: PrincipalKind
    scopes: tuple[str, ...] = ()  # `scp`: delegated permissions; empty for applications
    client_id: str | None = None  # `azp` (v2) or `appid` (v1): the application that obtained the token

    @property
    def is_person(self) -> bool:
        return self.kind is PrincipalKind.PERSON


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def principal_kind(claims: Mapping[str, Any]) -> PrincipalKind:
    """App-only (client credentials) or a person.

    `idtyp` is "the most accurate way for an API to determine if a token is an app token or an app+user token"
    (https://learn.microsoft.com/entra/identity-platform/optional-claims-reference), but it is an optional claim, by
    default only in app-only tokens. Without it, an app-only token has no `scp` and its `oid` equals its `sub`
    (https://learn.microsoft.com/entra/identity-platform/scenario-protected-web-api-verification-scope-app-roles,
    "Accepting app-only tokens").
    """
    idtyp = claims.get("idtyp")
    if idtyp == "app":
        return PrincipalKind.APPLICATION
    if idtyp == "user":
        return PrincipalKind.PERSON
    if not claims.get("scp") and claims.get("oid") == claims.get("sub"):
        return PrincipalKind.APPLICATION
    return PrincipalKind.PERSON


@dataclass(frozen=True)
class _TenantKeys:
    issuers: frozenset[str]
    client: PyJWKClient


class BearerValidator:
    """Validates access tokens for one API registration. Thread-safe; keep one per process (`shared_validator`).

    `validate` may block on the network: on a tenant's first token (discovery and key set), when the key set's cache
    expires, and when a token names an unknown key. Call `warm()` at start-up to take the first fetch off the request
    path.
    """

    def __init__(
        self,
        settings: IdentitySettings,
        *,
        leeway_seconds: float = 60.0,
        key_cache_seconds: float = 3600.0,
        refresh_cooldown_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        if not settings.client_id or not settings.tenant_ids:
            raise ValueError("bearer tokens need JIT_AUTH_CLIENT_ID and JIT_AUTH_TENANT_IDS")
        self.settings = settings
        self._audiences = list(settings.audiences)
        self._tenants = settings.tenant_ids
        self._leeway = leeway_seconds
        self._key_cache = key_cache_seconds
        self._cooldown = refresh_cooldown_seconds
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._keys: dict[str, _TenantKeys] = {}
        self._failed_at: dict[str, float] = {}

    def validate(self, token: str) -> Principal:
        import jwt  # lazily: PyJWT pulls in cryptography

        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise TokenRejected(Reason.MALFORMED)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise TokenRejected(Reason.MALFORMED) from None
        # Before any key lookup: an `alg` other than RS256 is refused outright, whatever key it names.
        if header.get("alg") != ALGORITHM:
            raise TokenRejected(Reason.ALGORITHM)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected(Reason.MALFORMED)

        # The (unverified) tenant only picks which tenant's keys to try; it is checked after the signature.
        claimed_tenant = unverified.get("tid")
        tenant = claimed_tenant.lower() if isinstance(claimed_tenant, str) else ""
        keys = self._tenant_keys(tenant if tenant in self._tenants else self._tenants[0])
        try:
            signing_key = keys.client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            raise TokenRejected(Reason.KEYS_UNAVAILABLE) from None
        except (jwt.PyJWKClientError, jwt.PyJWKSetError):
            raise TokenRejected(Reason.UNKNOWN_KEY) from None
        if signing_key.key_type != "RSA":
            raise TokenRejected(Reason.UNKNOWN_KEY)

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=[ALGORITHM],
                audience=self._audiences,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidSignatureError:
            raise TokenRejected(Reason.SIGNATURE) from None
        except jwt.ExpiredSignatureError:
            raise TokenRejected(Reason.EXPIRED) from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected(Reason.NOT_YET_VALID) from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(Reason.AUDIENCE) from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenRejected(Reason.missing(error.claim)) from None
        except jwt.InvalidTokenError:
            raise TokenRejected(Reason.MALFORMED) from None

        tenant = str(claims["tid"]).lower()
        if tenant not in self._tenants:
            raise TokenRejected(Reason.TENANT)
        if claims["iss"] not in self._tenant_keys(tenant).issuers:
            raise TokenRejected(Reason.ISSUER)
        return _principal(claims, tenant)

    def warm(self) -> bool:
        """Fetch every allowed tenant's discovery document and keys now; True when all were fetched."""
        import jwt

        ok = True
        for tenant in self._tenants:
            try:
                self._tenant_keys(tenant).client.get_signing_keys()
            except (TokenRejected, jwt.PyJWKClientError, jwt.PyJWKSetError):
                ok = False
        return ok

    def _tenant_keys(self, tenant: str) -> _TenantKeys:
        with self._lock:
            keys = self._keys.get(tenant)
            if keys is not None:
                return keys
            failed_at = self._failed_at.get(tenant)
            if failed_at is not None and time.monotonic() - failed_at < _DISCOVERY_RETRY_SECONDS:
                raise TokenRejected(Reason.KEYS_UNAVAILABLE)
            try:
                keys = self._discover(tenant)
            except TokenRejected:
                self._failed_at[tenant] = time.monotonic()
                raise
            self._keys[tenant] = keys
            self._failed_at.pop(tenant, None)
            return keys

    def _discover(self, tenant: str) -> _TenantKeys:
        from jwt import PyJWKClient

        authority = self.settings.authority
        url = f"{authority}/{tenant}/v2.0/.well-known/openid-configuration"
        try:
            document = _fetch_json(url, self._timeout)
        except (OSError, ValueError) as error:
            log.warning("OpenID discovery failed for tenant %s at %s: %s", tenant, authority, error)
            raise TokenRejected(Reason.KEYS_UNAVAILABLE) from None
        issuer = str(document.get("issuer") or "").replace("{tenantid}", tenant)
        jwks_uri = str(document.get("jwks_uri") or "")
        problem = _discovery_problem(issuer, jwks_uri, tenant, self.settings)
        if problem:
            log.error("OpenID discovery document for tenant %s at %s refused: %s", tenant, authority, problem)
            raise TokenRejected(Reason.KEYS_UNAVAILABLE)
        issuers = {issuer}
        v1_host = V1_ISSUER_HOSTS.get(self.settings.authority_host)
        if v1_host:
            issuers.add(f"https://{v1_host}/{tenant}/")
        client = PyJWKClient(
            jwks_uri,
            cache_jwk_set=True,
            lifespan=self._key_cache,
            timeout=self._timeout,
            cooldown_duration=self._cooldown,
        )
        return _TenantKeys(issuers=frozenset(issuers), client=client)


@functools.lru_cache(maxsize=8)
def shared_validator(settings: IdentitySettings) -> BearerValidator:
    """The process's validator for these settings (its key cache lives as long as the process)."""
    return BearerValidator(settings)


def _principal(claims: Mapping[str, Any], tenant: str) -> Principal:
    object_id = claims["oid"]
    if not isinstance(object_id, str) or not is_guid(object_id):
        raise TokenRejected(Reason.MALFORMED)
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise TokenRejected(Reason.MALFORMED)
    scp = claims.get("scp", "")
    if not isinstance(scp, str):
        raise TokenRejected(Reason.MALFORMED)
    display = next((v.strip() for c in DISPLAY_CLAIMS if isinstance(v := claims.get(c), str) and v.strip()), object_id)
    client_id = claims.get("azp") or claims.get("appid")
    return Principal(
        object_id=object_id.lower(),
        tenant_id=tenant,
        display=display[:256],
        roles=tuple(dict.fromkeys(roles)),
        kind=principal_kind(claims),
        scopes=tuple(scp.split()),
        client_id=client_id if isinstance(client_id, str) else None,
    )


def _discovery_problem(issuer: str, jwks_uri: str, tenant: str, settings: IdentitySettings) -> str | None:
    # The document must be about this tenant (Microsoft's recap: the issuer's first path segment is the tid).
    parsed_issuer = urlparse(issuer)
    if parsed_issuer.path.strip("/").split("/")[:1] != [tenant]:
        return "its issuer is not the tenant's"
    parsed_keys = urlparse(jwks_uri)
    host = parsed_keys.hostname or ""
    if settings.is_loopback:
        if parsed_keys.scheme not in ("http", "https") or host not in LOOPBACK_HOSTS:
            return "a loopback authority must publish its keys on loopback"
    elif parsed_keys.scheme != "https" or host not in ENTRA_AUTHORITY_HOSTS:
        return "jwks_uri must be https on an Entra ID sign-in host"
    return None


def _fetch_json(url: str, timeout: float) -> dict[str, Any]:
    import urllib.request  # lazily: it pulls in http.client, email and ssl, needed only for the first fetch

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # a discovery document is served in place; a redirect could lead anywhere

    # The URL's scheme and host come from validated settings (https, or http on loopback).
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.build_opener(NoRedirect()).open(request, timeout=timeout) as response:
        body = response.read(_MAX_DOCUMENT_BYTES + 1)
    if len(body) > _MAX_DOCUMENT_BYTES:
        raise ValueError("discovery document too large")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("discovery document is not a JSON object")
    return document


__all__ = [
    "BearerValidator",
    "Principal",
    "PrincipalKind",
    "Reason",
    "TokenRejected",
    "bearer_token",
    "principal_kind",
    "shared_validator",
]
