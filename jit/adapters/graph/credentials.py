"""Graph credentials per customer tenant, built from configuration.

Real Entra tokens carry the tenant in their `tid` claim; so do the development tokens minted here for the Graph
simulator (unsigned, and only ever sent to a loopback Graph: settings refuse anything else).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential

from jit.settings import GraphAuth, GraphSettings

# The audience a managed identity asks for when it stands in as a federated credential of an app registration.
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"  # noqa: S105 - a scope name, not a secret


class DevelopmentCredential(AsyncTokenCredential):
    """Mints unsigned JWTs with `tid`, `oid` and `roles`, as Entra's app-only tokens carry them."""

    def __init__(self, tenant: str, app_id: str = "00000000-0000-0000-0000-00000000d0e5") -> None:
        self.tenant = tenant
        self.app_id = app_id

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        expires = int(time.time()) + 3600
        claims = {
            "aud": "https://graph.microsoft.com",
            "iss": f"https://sts.windows.net/{self.tenant}/",
            "tid": self.tenant,
            "oid": self.app_id,
            "appid": self.app_id,
            "idtyp": "app",
            "roles": [
                "User.ReadWrite.All",
                "RoleManagement.ReadWrite.Directory",
                "GroupMember.ReadWrite.All",
                "UserAuthenticationMethod.ReadWrite.All",
                "Policy.Read.All",
                "Directory.Read.All",
            ],
            "iat": expires - 3600,
            "exp": expires,
            "uti": uuid.uuid4().hex,
        }
        header = {"alg": "none", "typ": "JWT"}
        token = f"{_b64(header)}.{_b64(claims)}."
        return AccessToken(token, expires)

    async def close(self) -> None:
        return None

    async def __aexit__(self, *args: object) -> None:
        return None


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part, separators=(",", ":")).encode()).decode().rstrip("=")


def credential_for(tenant: str, settings: GraphSettings) -> AsyncTokenCredential:
    """The credential that gets Graph tokens for `tenant` (a GUID or an initial domain: Entra accepts both)."""
    authority = settings.authority_host
    if settings.auth is GraphAuth.DEVELOPMENT:
        if not settings.is_loopback:  # settings refuse this too; a second lock on a door to every tenant
            raise ValueError("development credentials are only for a loopback Graph")
        return DevelopmentCredential(tenant)
    from azure.identity.aio import (
        CertificateCredential,
        ClientAssertionCredential,
        ClientSecretCredential,
        ManagedIdentityCredential,
    )

    if settings.auth is GraphAuth.MANAGED_IDENTITY:
        return ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    assert settings.client_id is not None
    if settings.auth is GraphAuth.CLIENT_SECRET:
        assert settings.client_secret is not None
        return ClientSecretCredential(tenant, settings.client_id, settings.client_secret, authority=authority)
    if settings.auth is GraphAuth.CLIENT_CERTIFICATE:
        return CertificateCredential(tenant, settings.client_id, settings.certificate_path, authority=authority)
    # Workload identity federation: the managed identity's token is the app's client assertion.
    from azure.identity import ManagedIdentityCredential as SyncManagedIdentityCredential

    identity = SyncManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    return ClientAssertionCredential(
        tenant, settings.client_id, lambda: identity.get_token(TOKEN_EXCHANGE_SCOPE).token, authority=authority
    )
