"""The local issuer's vocabulary: its people and apps, registered clients, keys, grants and errors."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_TENANT_ID = "5e0c1a2b-3d4f-4a6b-8c7d-9e0f1a2b3c4d"
DEFAULT_API_CLIENT_ID = "6c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5"
DEFAULT_API_APP_ID_URI = "api://jit-admin"
DEFAULT_SPA_CLIENT_ID = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
DEFAULT_SPA_REDIRECT_URIS = ("http://localhost:7071/", "http://127.0.0.1:7071/")
API_SCOPE = "access_as_user"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 section 4.1
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
CLAIMS_SUPPORTED = ("sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "name", "preferred_username", "oid", "tid", "ver")


@dataclass(frozen=True)
class Person:
    """A demo person: a user of the MSP's tenant with app roles on the API."""

    object_id: str
    name: str
    preferred_username: str
    roles: tuple[str, ...]
    tenant_id: str


@dataclass(frozen=True)
class App:
    """A confidential client for the client credentials grant (a daemon, a flow, a test)."""

    client_id: str
    object_id: str  # its service principal's object id: `oid` and `sub` of its tokens
    name: str
    roles: tuple[str, ...]
    tenant_id: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class PublicClient:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]

    @property
    def origins(self) -> set[str]:
        return {origin_of(uri) for uri in self.redirect_uris}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self, issuer: str) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "issuer": issuer,
        }


@dataclass(frozen=True)
class Grant:
    """What an authorization code stands for until it is redeemed (once)."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    person: Person
    scopes: tuple[str, ...]
    nonce: str | None
    expires_at: float


class OAuthError(Exception):
    """An OAuth error response: `error` (RFC 6749) and Entra's AADSTS code and message."""

    def __init__(self, error: str, code: int | None, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.code = code
        self.message = message
        self.status = status

    @property
    def description(self) -> str:
        return f"AADSTS{self.code}: {self.message}" if self.code else self.message


def demo_people(tenant_id: str = DEFAULT_TENANT_ID) -> tuple[Person, ...]:
    """The default three: one per app role, with stable object ids so local data survives restarts."""
    return (
        Person(
            "3f2c9a4e-8b1d-4e6f-9a2b-5c7d1e0f4a01",
            "Tess Technician",
            "tess.technician@msp.example.com",
            ("Jit.Requester",),
            tenant_id,
        ),
        Person(
            "3f2c9a4e-8b1d-4e6f-9a2b-5c7d1e0f4a02",
            "Avery Approver",
            "avery.approver@msp.example.com",
            ("Jit.Approver",),
            tenant_id,
        ),
        Person("3f2c9a4e-8b1d-4e6f-9a2b-5c7d1e0f4a03", "Ada Admin", "ada.admin@msp.example.com", ("Jit.Admin",), tenant_id),
    )


def redirect_url(redirect_uri: str, params: Mapping[str, str], values: Mapping[str, str]) -> str:
    out = dict(values)
    if params.get("state"):
        out["state"] = params["state"]
    if params.get("response_mode") == "fragment":
        return f"{redirect_uri}#{urlencode(out)}"
    return f"{redirect_uri}{'&' if urlsplit(redirect_uri).query else '?'}{urlencode(out)}"


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def guid(value: str) -> str:
    value = value.lower()
    if not _GUID.match(value):
        raise ValueError(f"expected a GUID, got {value!r}")
    return value


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()  # codes are kept only as hashes


def pairwise_sub(object_id: str, client_id: str) -> str:
    # Entra's `sub` is pairwise: the same person has a different sub per application.
    return b64url(hashlib.sha256(f"{object_id}:{client_id}".encode()).digest())


def thumbprint(private: rsa.RSAPrivateKey) -> str:
    """RFC 7638 JWK thumbprint of the public key."""
    numbers = private.public_key().public_numbers()
    members = {
        "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        "kty": "RSA",
        "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
    }
    return b64url(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())
