"""The agent's configuration: a TOML or JSON file, then JIT_AGENT_* environment variables over it.

Every key is documented in docs/onprem-agent.md. A file key `a.b` is overridden by JIT_AGENT_A_B (for example
`ldap.url` by JIT_AGENT_LDAP_URL); list values in the environment are JSON arrays.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from agent.protocol import validate_site

ENV_PREFIX = "JIT_AGENT_"
CREDENTIAL_CERTIFICATE = "certificate"
CREDENTIAL_MANAGED_IDENTITY = "managed_identity"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StorageConfig:
    connection_string: str = field(default="", repr=False)
    queue_endpoint: str = ""
    table_endpoint: str = ""
    credential: str = ""
    tenant_id: str = ""
    client_id: str = ""
    certificate_file: str = ""
    managed_identity_client_id: str = ""


@dataclass(frozen=True)
class LdapConfig:
    url: str
    ca_file: str
    bind_dn: str
    password: str = field(repr=False)
    ou: str
    allowed_groups: tuple[str, ...] = ("Domain Admins",)
    tls_server_name: str = ""
    timeout: float = 10.0


@dataclass(frozen=True)
class AgentConfig:
    site: str
    storage: StorageConfig
    ldap: LdapConfig
    private_key_file: str
    table_prefix: str = "Jit"
    tenant_id: str = ""
    poll_interval: float = 5.0
    heartbeat_interval: float = 60.0
    visibility_timeout: int = 60
    log_level: str = "INFO"


# key -> (type, default); None as default means required.
_SCHEMA: dict[str, tuple[type, Any]] = {
    "site": (str, None),
    "table_prefix": (str, "Jit"),
    "tenant_id": (str, ""),
    "poll_interval": (float, 5.0),
    "heartbeat_interval": (float, 60.0),
    "visibility_timeout": (int, 60),
    "private_key_file": (str, None),
    "log_level": (str, "INFO"),
    "storage.connection_string": (str, ""),
    "storage.queue_endpoint": (str, ""),
    "storage.table_endpoint": (str, ""),
    "storage.credential": (str, ""),
    "storage.tenant_id": (str, ""),
    "storage.client_id": (str, ""),
    "storage.certificate_file": (str, ""),
    "storage.managed_identity_client_id": (str, ""),
    "ldap.url": (str, None),
    "ldap.ca_file": (str, None),
    "ldap.tls_server_name": (str, ""),
    "ldap.bind_dn": (str, None),
    "ldap.password_file": (str, ""),
    "ldap.password": (str, ""),  # environment only (JIT_AGENT_LDAP_PASSWORD); refused in the file
    "ldap.ou": (str, None),
    "ldap.allowed_groups": (list, ["Domain Admins"]),
    "ldap.timeout": (float, 10.0),
}


def env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "_").upper()


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def read_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table/object")
    return _flatten(data)


def _coerce(key: str, kind: type, value: Any, from_env: bool) -> Any:
    try:
        if kind is list:
            if from_env:
                value = json.loads(value) if value.strip().startswith("[") else [value]
            if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
                raise ValueError("must be a list of non-empty strings")
            return value
        if kind is str:
            if not isinstance(value, str):
                raise ValueError("must be a string")
            return value
        if isinstance(value, bool):
            raise ValueError("must be a number")
        return kind(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{key} ({env_name(key)}): {error}") from None


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> AgentConfig:
    env = os.environ if environ is None else environ
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    raw = read_file(path) if path else {}
    unknown = sorted(set(raw) - set(_SCHEMA))
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
    if raw.get("ldap.password"):
        raise ConfigError("ldap.password may not be in the file: use ldap.password_file or JIT_AGENT_LDAP_PASSWORD")
    values: dict[str, Any] = {}
    for key, (kind, default) in _SCHEMA.items():
        if env_name(key) in env:
            values[key] = _coerce(key, kind, env[env_name(key)], from_env=True)
        elif key in raw:
            values[key] = _coerce(key, kind, raw[key], from_env=False)
        elif default is None:
            raise ConfigError(f"{key} is required (file key {key!r} or {env_name(key)})")
        else:
            values[key] = default
    return _build(values, base=path.parent if path else Path.cwd())


def _build(values: dict[str, Any], base: Path) -> AgentConfig:
    def resolve(file: str) -> str:
        return str((base / file).resolve()) if file else ""

    try:
        validate_site(values["site"])
    except ValueError as error:
        raise ConfigError(str(error)) from None
    password = values["ldap.password"]
    if values["ldap.password_file"]:
        password = Path(resolve(values["ldap.password_file"])).read_text(encoding="utf-8").rstrip("\r\n")
    if not password:
        raise ConfigError("the LDAP bind password is required: ldap.password_file or JIT_AGENT_LDAP_PASSWORD")
    url = urlparse(values["ldap.url"])
    if url.scheme != "ldaps" or not url.hostname:
        raise ConfigError("ldap.url must be an ldaps://host[:port] URL (LDAP over TLS)")
    storage = StorageConfig(
        connection_string=values["storage.connection_string"],
        queue_endpoint=values["storage.queue_endpoint"],
        table_endpoint=values["storage.table_endpoint"],
        credential=values["storage.credential"],
        tenant_id=values["storage.tenant_id"],
        client_id=values["storage.client_id"],
        certificate_file=resolve(values["storage.certificate_file"]),
        managed_identity_client_id=values["storage.managed_identity_client_id"],
    )
    _check_storage(storage)
    return AgentConfig(
        site=values["site"],
        storage=storage,
        ldap=LdapConfig(
            url=values["ldap.url"],
            ca_file=resolve(values["ldap.ca_file"]),
            bind_dn=values["ldap.bind_dn"],
            password=password,
            ou=values["ldap.ou"],
            allowed_groups=tuple(values["ldap.allowed_groups"]),
            tls_server_name=values["ldap.tls_server_name"],
            timeout=values["ldap.timeout"],
        ),
        private_key_file=resolve(values["private_key_file"]),
        table_prefix=values["table_prefix"],
        tenant_id=values["tenant_id"],
        poll_interval=values["poll_interval"],
        heartbeat_interval=values["heartbeat_interval"],
        visibility_timeout=values["visibility_timeout"],
        log_level=values["log_level"],
    )


def _check_storage(storage: StorageConfig) -> None:
    if storage.connection_string:
        # A connection string carries an account key; only the local emulator's well-known one is acceptable.
        parts = dict(part.split("=", 1) for part in storage.connection_string.split(";") if "=" in part)
        endpoints = [value for key, value in parts.items() if key.endswith("Endpoint")]
        dev = parts.get("UseDevelopmentStorage", "").lower() == "true"
        if not dev and (not endpoints or any(urlparse(e).hostname not in _LOOPBACK_HOSTS for e in endpoints)):
            raise ConfigError("storage.connection_string is for Azurite only; use endpoints and a credential")
        return
    if not storage.queue_endpoint or not storage.table_endpoint:
        raise ConfigError("storage.queue_endpoint and storage.table_endpoint are required (or a development connection string)")
    for endpoint in (storage.queue_endpoint, storage.table_endpoint):
        if urlparse(endpoint).scheme != "https":
            raise ConfigError(f"storage endpoint {endpoint!r} must be https")
    if storage.credential == CREDENTIAL_CERTIFICATE:
        if not (storage.tenant_id and storage.client_id and storage.certificate_file):
            raise ConfigError("storage.credential = certificate needs storage.tenant_id, client_id and certificate_file")
    elif storage.credential != CREDENTIAL_MANAGED_IDENTITY:
        raise ConfigError("storage.credential must be 'certificate' or 'managed_identity'")
