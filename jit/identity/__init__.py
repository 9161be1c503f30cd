"""Who is calling: Entra ID bearer tokens validated in the app itself, on any hosting plan.

No Azure Functions imports here; PyJWT is imported only when the first token is validated.
"""

from __future__ import annotations

from jit.identity.settings import IdentityConfigurationError, IdentitySettings, load_identity_settings, read_identity_settings
from jit.identity.tokens import (
    BearerValidator,
    Principal,
    PrincipalKind,
    Reason,
    TokenRejected,
    bearer_token,
    shared_validator,
)

__all__ = [
    "BearerValidator",
    "IdentityConfigurationError",
    "IdentitySettings",
    "Principal",
    "PrincipalKind",
    "Reason",
    "TokenRejected",
    "bearer_token",
    "load_identity_settings",
    "read_identity_settings",
    "shared_validator",
]
