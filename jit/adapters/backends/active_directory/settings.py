"""The on-premises Active Directory backend's app settings (`JIT_AD_*`), read when its first backend is built.

- `JIT_AD_SITES`: a JSON object naming every site the function app may send commands to, each bound to the one
  tenant it serves and pinned to its agent's key:
  `{"hq": {"tenantId": "<tenant GUID>", "agentKeyId": "<sha256 of the agent's public key, hex>",
  "upnSuffix": "corp.example"}}` (`upnSuffix` optional: by default the domain's DNS name, read from its DN).
- `JIT_AD_HEARTBEAT_STALE_AFTER` (ISO 8601, default PT3M): an agent whose last heartbeat is older is offline; its
  site's grants wait (and say so) instead of sending it commands.
- `JIT_AD_COMMAND_TIMEOUT` (ISO 8601, default PT1M, at most PT3M): how long a command may wait in the site's queue
  (its time-to-live). A command the agent has not taken by then is gone and never runs; the backend waits that long
  plus a grace for the answer, and then leaves the step to the saga's retries. It must stay well below the sagas'
  5-minute lease, so a worker that takes over a grant never overlaps a command still in flight.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agent.protocol import validate_site
from jit.settings import ConfigurationError

_DURATION = TypeAdapter(timedelta)
_KEY_ID = re.compile(r"^[0-9a-f]{64}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
MAX_COMMAND_TIMEOUT = timedelta(minutes=3)


@dataclass(frozen=True)
class SiteSettings:
    name: str
    tenant_id: str  # the tenant's GUID (lower case): commands for any other tenant never go to this site
    agent_key_id: str  # the agent's public key, pinned: a heartbeat publishing another key is not trusted
    upn_suffix: str = ""


@dataclass(frozen=True)
class AdSettings:
    sites: dict[str, SiteSettings]
    heartbeat_stale_after: timedelta = timedelta(minutes=3)
    command_timeout: timedelta = timedelta(minutes=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AdSettings:
        problems: list[str] = []
        sites = _sites(env.get("JIT_AD_SITES", "").strip(), problems)
        stale = _duration(env, "JIT_AD_HEARTBEAT_STALE_AFTER", "PT3M", problems)
        timeout = _duration(env, "JIT_AD_COMMAND_TIMEOUT", "PT1M", problems)
        if timeout > MAX_COMMAND_TIMEOUT:
            problems.append("JIT_AD_COMMAND_TIMEOUT must be at most PT3M (commands must settle within a saga's lease)")
        if problems:
            raise ConfigurationError("invalid on-premises AD settings: " + "; ".join(problems))
        return cls(sites, stale, timeout)


def _duration(env: Mapping[str, str], name: str, default: str, problems: list[str]) -> timedelta:
    text = env.get(name, "").strip() or default
    try:
        value = _DURATION.validate_python(text)
    except ValidationError:
        problems.append(f"{name}={text!r} must be an ISO 8601 duration such as {default}")
        return _DURATION.validate_python(default)
    if value < timedelta(seconds=1):
        problems.append(f"{name}={text!r} must be at least a second")
    return value


def _sites(text: str, problems: list[str]) -> dict[str, SiteSettings]:
    if not text:
        return {}
    try:
        raw: Any = json.loads(text)
    except ValueError:
        problems.append("JIT_AD_SITES must be a JSON object: {\"<site>\": {\"tenantId\": ..., \"agentKeyId\": ...}}")
        return {}
    if not isinstance(raw, dict):
        problems.append("JIT_AD_SITES must be a JSON object keyed by site name")
        return {}
    sites: dict[str, SiteSettings] = {}
    for name, value in raw.items():
        where = f"JIT_AD_SITES[{name!r}]"
        try:
            validate_site(name)
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        if not isinstance(value, dict) or set(value) - {"tenantId", "agentKeyId", "upnSuffix"}:
            problems.append(f"{where} must be an object with tenantId, agentKeyId and optionally upnSuffix")
            continue
        tenant = str(value.get("tenantId") or "").strip().lower()
        key_id = str(value.get("agentKeyId") or "").strip().lower()
        suffix = str(value.get("upnSuffix") or "").strip().lower()
        try:
            tenant = str(uuid.UUID(tenant))
        except ValueError:
            problems.append(f"{where}.tenantId must be the tenant's GUID")
            continue
        if not _KEY_ID.match(key_id):
            problems.append(f"{where}.agentKeyId must be the SHA-256 of the agent's public key: 64 hex digits")
            continue
        if suffix and not _DOMAIN.match(suffix):
            problems.append(f"{where}.upnSuffix must be a DNS domain name")
            continue
        sites[name] = SiteSettings(name, tenant, key_id, suffix)
    return sites
