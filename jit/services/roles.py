"""Each tenant's role definitions, for rules that must compare roles by their canonical id before any directory is
read (intake, approval): the last definitions a survey or the onboarding read, kept in the tenant's registration and
in memory. Provisioning reads the live definitions again and checks once more.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from jit.domain.roles import RoleDefinition, RoleIndex


class DefinitionsStore(Protocol):
    def role_definitions(self, tenant_id: str) -> tuple[RoleDefinition, ...] | None: ...

    def save_role_definitions(self, tenant_id: str, definitions: tuple[RoleDefinition, ...]) -> None: ...


class RoleCatalog:
    def __init__(self, store: DefinitionsStore | None = None, ttl_seconds: float = 600) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, tuple[RoleDefinition, ...]]] = {}

    def index(self, tenant_id: str) -> RoleIndex:
        return RoleIndex(list(self.definitions(tenant_id)))

    def definitions(self, tenant_id: str) -> tuple[RoleDefinition, ...]:
        with self._lock:
            cached = self._cache.get(tenant_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        stored = self._store.role_definitions(tenant_id) if self._store is not None else None
        definitions = stored if stored is not None else (cached[1] if cached else ())
        with self._lock:
            self._cache[tenant_id] = (time.monotonic(), definitions)
        return definitions

    def remember(self, tenant_id: str, definitions: tuple[RoleDefinition, ...]) -> None:
        """Definitions just read from the directory: kept, and stored when they differ from what was stored."""
        if not definitions:
            return
        with self._lock:
            cached = self._cache.get(tenant_id)
            self._cache[tenant_id] = (time.monotonic(), definitions)
        if self._store is not None and (cached is None or set(cached[1]) != set(definitions)):
            stored = self._store.role_definitions(tenant_id)
            if stored is None or set(stored) != set(definitions):
                self._store.save_role_definitions(tenant_id, definitions)
