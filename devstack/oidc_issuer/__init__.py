"""A local OpenID Connect issuer shaped like Entra ID's v2 endpoints, for tests and the local run.

    python -m devstack.oidc_issuer [--port 7081]

Endpoints (`{tenant}` is a tenant GUID the issuer knows):
  GET  /{tenant}/v2.0/.well-known/openid-configuration   discovery document
  GET  /{tenant}/discovery/v2.0/keys                      JWKS (RSA 2048, `kid` = RFC 7638 thumbprint)
  GET  /{tenant}/oauth2/v2.0/authorize                    "Sign in as" page: authorization code flow, PKCE S256
  POST /{tenant}/oauth2/v2.0/authorize                    the person chosen: 302 to redirect_uri with code and state
  POST /{tenant}/oauth2/v2.0/token                        authorization_code (PKCE) and client_credentials grants
  GET  /{tenant}/oauth2/v2.0/logout                       back to a registered origin

It is not a bypass: its tokens pass jit.identity.BearerValidator only because the validator is configured with this
issuer as its authority (plain http is accepted only on loopback) and fetches its discovery document and keys over
HTTP exactly as it fetches Entra's. Every error it returns is Entra's `error` code and, where Microsoft documents one,
its AADSTS code (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).

Deliberate differences from Entra: only loopback redirect URIs, only PKCE S256 (required), no refresh tokens, no
consent screen, and the people are a configured list rather than a directory with passwords.
"""

from __future__ import annotations

from .issuer import OidcIssuer
from .model import (
    API_SCOPE,
    DEFAULT_API_APP_ID_URI,
    DEFAULT_API_CLIENT_ID,
    DEFAULT_SPA_CLIENT_ID,
    DEFAULT_SPA_REDIRECT_URIS,
    DEFAULT_TENANT_ID,
    App,
    OAuthError,
    Person,
    demo_people,
)

__all__ = [
    "API_SCOPE",
    "DEFAULT_API_APP_ID_URI",
    "DEFAULT_API_CLIENT_ID",
    "DEFAULT_SPA_CLIENT_ID",
    "DEFAULT_SPA_REDIRECT_URIS",
    "DEFAULT_TENANT_ID",
    "App",
    "OAuthError",
    "OidcIssuer",
    "Person",
    "demo_people",
]
