"""The app settings for accepting Entra ID bearer tokens, read with every problem reported at once.

`read_identity_settings(env, problems)` appends a message per bad setting to `problems` (so jit/settings.py can merge
them into its own list); `load_identity_settings(env)` raises `IdentityConfigurationError` naming them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

CLIENT_ID = "JIT_AUTH_CLIENT_ID"
AUDIENCES = "JIT_AUTH_AUDIENCES"
TENANT_IDS = "JIT_AUTH_TENANT_IDS"
AUTHORITY = "JIT_AUTH_AUTHORITY"

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"

# Entra ID's sign-in hosts, global and national clouds
# (https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud). Any other host needs a
# loopback http authority (the local issuer, devstack/oidc_issuer.py).
ENTRA_AUTHORITY_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
    "login.chinacloudapi.cn",
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Tenant-independent aliases: accepting them would accept every Entra tenant (or personal accounts).
_TENANT_ALIASES = ("common", "organizations", "consumers")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class IdentityConfigurationError(ValueError):
    """One or more JIT_AUTH_* settings are missing or invalid."""


@dataclass(frozen=True)
class IdentitySettings:
    """Who may present bearer tokens. `client_id` None means bearer tokens are not accepted at all."""

    client_id: str | None
    # Every accepted `aud`: the client id first, then JIT_AUTH_AUDIENCES (e.g. the Application ID URI).
    audiences: tuple[str, ...]
    tenant_ids: tuple[str, ...]
    authority: str = DEFAULT_AUTHORITY

    @property
    def enabled(self) -> bool:
        return self.client_id is not None

    @property
    def authority_host(self) -> str:
        return urlparse(self.authority).hostname or ""

    @property
    def is_loopback(self) -> bool:
        return self.authority_host in LOOPBACK_HOSTS


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def read_identity_settings(env: Mapping[str, str], problems: list[str]) -> IdentitySettings:
    """Read the JIT_AUTH_* settings; append one message per bad setting to `problems`."""

    def text(name: str) -> str:
        return env.get(name, "").strip()

    def listed(name: str) -> tuple[str, ...]:
        # Order kept, duplicates dropped: the first audience is the one named in errors and docs.
        return tuple(dict.fromkeys(v.strip() for v in text(name).split(",") if v.strip()))

    client_id = text(CLIENT_ID) or None
    if client_id is not None and not is_guid(client_id):
        problems.append(f"{CLIENT_ID}={client_id!r} must be the API app registration's application (client) id, a GUID")
    client_id = client_id.lower() if client_id else None

    extra_audiences = listed(AUDIENCES)
    for audience in extra_audiences:
        if not (is_guid(audience) or _is_uri(audience)):
            problems.append(f"{AUDIENCES} has {audience!r}: each audience must be a GUID or a URI such as api://jit-admin")

    tenant_ids = listed(TENANT_IDS)
    aliases = [t for t in tenant_ids if t.lower() in _TENANT_ALIASES]
    if aliases:
        problems.append(f"{TENANT_IDS} has {aliases}: list tenant GUIDs; common/organizations/consumers would accept any tenant")
    malformed = [t for t in tenant_ids if t.lower() not in _TENANT_ALIASES and not is_guid(t)]
    if malformed:
        problems.append(f"{TENANT_IDS} has {malformed}: each must be a tenant id (GUID)")
    tenant_ids = tuple(dict.fromkeys(t.lower() for t in tenant_ids if is_guid(t)))

    authority = (text(AUTHORITY) or DEFAULT_AUTHORITY).rstrip("/")
    problem = _authority_problem(authority)
    if problem:
        problems.append(f"{AUTHORITY}={authority!r} {problem}")

    if client_id is None:
        others = [name for name in (AUDIENCES, TENANT_IDS, AUTHORITY) if text(name)]
        if others:
            problems.append(f"{', '.join(others)} set without {CLIENT_ID}: set it to accept bearer tokens, or remove them")
    elif not tenant_ids and not aliases and not malformed:
        problems.append(f"{CLIENT_ID} is set but {TENANT_IDS} is empty: list the tenant ids whose people may call the API")

    audiences = tuple(dict.fromkeys((client_id, *extra_audiences))) if client_id else ()
    return IdentitySettings(client_id=client_id, audiences=audiences, tenant_ids=tenant_ids, authority=authority)


def load_identity_settings(env: Mapping[str, str]) -> IdentitySettings:
    problems: list[str] = []
    settings = read_identity_settings(env, problems)
    if problems:
        raise IdentityConfigurationError("invalid app settings: " + "; ".join(problems))
    return settings


def _is_uri(value: str) -> bool:
    parsed = urlparse(value)
    return bool(parsed.scheme) and bool(parsed.netloc or parsed.path) and " " not in value


def _authority_problem(authority: str) -> str | None:
    parsed = urlparse(authority)
    if parsed.path or parsed.query or parsed.fragment or parsed.username or parsed.password:
        return f"must be a scheme and host only, such as {DEFAULT_AUTHORITY} (tenants go in {TENANT_IDS})"
    host = parsed.hostname or ""
    if parsed.scheme == "http" and host in LOOPBACK_HOSTS:
        return None  # the local issuer
    if parsed.scheme != "https":
        return "must be an https URL (plain http only on loopback, for the local issuer)"
    if host not in ENTRA_AUTHORITY_HOSTS or parsed.port is not None:
        return f"must be an Entra ID sign-in host ({', '.join(ENTRA_AUTHORITY_HOSTS)})"
    return None
