"""Entra roles by name or template id, resolved against the tenant's live role definitions.

No static list: a role Microsoft adds works the day it appears in the tenant. Definitions are cached per tenant
for a few minutes, since every grant needs them and they change rarely.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from jit.services.directory import Directory, RoleDefinition

GLOBAL_ADMINISTRATOR_TEMPLATE = "62e90394-69f5-4237-9190-012177145e10"
# The names Graph (and older PowerShell modules) use for roles whose display name differs.
ALIASES = {"company administrator": GLOBAL_ADMINISTRATOR_TEMPLATE}


@dataclass(frozen=True)
class Resolution:
    found: dict[str, RoleDefinition]  # requested text -> definition
    unknown: list[str]


class RoleCatalog:
    def __init__(self, ttl_seconds: float = 600) -> None:
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, list[RoleDefinition]]] = {}

    async def definitions(self, tenant: str, directory: Directory) -> list[RoleDefinition]:
        cached = self._cache.get(tenant)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        definitions = await directory.role_definitions()
        self._cache[tenant] = (time.monotonic(), definitions)
        return definitions

    async def resolve(self, tenant: str, directory: Directory, requested: tuple[str, ...]) -> Resolution:
        definitions = await self.definitions(tenant, directory)
        by_key: dict[str, RoleDefinition] = {}
        for definition in definitions:
            by_key[definition.display_name.casefold()] = definition
            by_key[definition.template_id.lower()] = definition
            by_key[definition.id.lower()] = definition
        found: dict[str, RoleDefinition] = {}
        unknown: list[str] = []
        for text in requested:
            key = text.strip().casefold()
            match = by_key.get(ALIASES.get(key, key))
            if match is None:
                unknown.append(text)
            else:
                found[text] = match
        return Resolution(found, unknown)
