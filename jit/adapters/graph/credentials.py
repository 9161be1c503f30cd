"""Graph credentials per customer tenant, built from configuration.

In development the Graph simulator is also the token issuer: DevelopmentCredential asks the simulator's stand-in
for Entra's v2 token endpoint (client credentials), so tokens carry the roles the simulated tenant consented to,
are signed by the issuer, and a tenant given by domain comes back with its GUID in `tid` - as Entra does.
Settings refuse development credentials for anything but a loopback Graph.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError

from jit.settings import GraphAuth, GraphSettings

# The audience a managed identity asks for when it stands in as a federated credential of an app registration.
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"  # noqa: S105 - a scope name, not a secret
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
# The simulator's development app (devstack/graph_simulator/apps.py DEV_APP_ID).
DEVELOPMENT_APP_ID = "00000000-0000-0000-0000-00000000d0e5"
# Entra requires a client credential in the request; the simulator accepts any. Not a secret.
DEVELOPMENT_CLIENT_CREDENTIAL = "simulator-development-client"
# Ask for a new token this long before the cached one expires.
REFRESH_MARGIN_S = 300


def token_origin(base_url: str) -> str:
    """http://127.0.0.1:1234/v1.0 -> http://127.0.0.1:1234 (the simulator serves its token endpoint there)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


class DevelopmentCredential(AsyncTokenCredential):
    """App-only tokens from the Graph simulator's token endpoint: POST {origin}/{tenant}/oauth2/v2.0/token."""

    def __init__(self, tenant: str, origin: str, app_id: str = DEVELOPMENT_APP_ID) -> None:
        self.tenant = tenant
        self.origin = origin.rstrip("/")
        self.app_id = app_id
        self._cached: dict[str, AccessToken] = {}

    @property
    def token_url(self) -> str:
        return f"{self.origin}/{self.tenant}/oauth2/v2.0/token"

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        scope = scopes[0] if scopes else GRAPH_DEFAULT_SCOPE
        cached = self._cached.get(scope)
        if cached is not None and cached.expires_on - REFRESH_MARGIN_S > time.time():
            return cached
        form = {
            "grant_type": "client_credentials",
            "client_id": self.app_id,
            "client_secret": DEVELOPMENT_CLIENT_CREDENTIAL,
            "scope": scope,
        }
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
            response = await http.post(self.token_url, data=form)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or "access_token" not in body:
            # Entra's error_description ("AADSTS90002: Tenant ... not found ..."), as azure-identity surfaces it.
            detail = body.get("error_description") or f"token endpoint answered {response.status_code}"
            raise ClientAuthenticationError(message=str(detail))
        token = AccessToken(str(body["access_token"]), int(time.time()) + int(body["expires_in"]))
        self._cached[scope] = token
        return token

    async def close(self) -> None:
        return None

    async def __aexit__(self, *args: object) -> None:
        return None


def credential_for(tenant: str, settings: GraphSettings) -> AsyncTokenCredential:
    """The credential that gets Graph tokens for `tenant` (a GUID or an initial domain: Entra accepts both)."""
    authority = settings.authority_host
    if settings.auth is GraphAuth.DEVELOPMENT:
        if not settings.is_loopback:  # settings refuse this too; a second lock on a door to every tenant
            raise ValueError("development credentials are only for a loopback Graph")
        return DevelopmentCredential(tenant, token_origin(settings.base_url))
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
