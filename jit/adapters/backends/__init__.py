"""The backends access can live in. Each module of this package that defines `KIND` is one: its name, which
directory names it serves ("entra", "entra-pim", "ad:<site>"), and how to build it for a tenant. The provider finds
them here, so adding a backend is adding its module (and its settings and tests), nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jit.services.access_backend import AccessBackend


@dataclass(frozen=True)
class BackendKind:
    name: str
    serves: Callable[[str], bool]  # whether it serves a directory name
    build: Callable[[Any, str, str], AccessBackend]  # (context, tenant id, directory name) -> backend
    description: str = ""


def kinds() -> list[BackendKind]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        kind = getattr(loaded, "KIND", None)
        if isinstance(kind, BackendKind):
            found.append(kind)
    return found


class Backends:
    """The `BackendProvider`: the backend serving a tenant's directory, built once and kept."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._kinds = kinds()
        self._lock = threading.Lock()
        self._built: dict[tuple[str, str], AccessBackend] = {}

    def serves(self, directory: str) -> bool:
        return any(k.serves(directory) for k in self._kinds)

    def backend(self, tenant_id: str, directory: str) -> AccessBackend:
        directory = directory or "entra"
        with self._lock:
            found = self._built.get((tenant_id, directory))
            if found is None:
                kind = next((k for k in self._kinds if k.serves(directory)), None)
                if kind is None:
                    raise LookupError(f"no backend serves directory {directory!r}")
                found = kind.build(self._context, tenant_id, directory)
                self._built[(tenant_id, directory)] = found
            return found
