"""What the simulator served: (method, route template, permission that authorized it), and what it refused.

A test can list every Graph call the product made and compare the permissions with docs/permissions.md.
"""

from __future__ import annotations

import threading
from typing import NamedTuple


class Served(NamedTuple):
    method: str
    template: str
    permission: str  # "User.Read.All", or "A+B" when several were needed (scoped PATCH, role-assignable groups)


class Authorized(NamedTuple):
    """One authorized call in the shape a permission check needs: the map's path, the body's property names, and
    every permission that was required (the map's, "A+B" when property-scoped ones covered a PATCH together; then any a
    handler asked for)."""

    method: str
    permission_path: str
    properties: tuple[str, ...]
    granted: tuple[str, ...]


class Denied(NamedTuple):
    method: str
    template: str
    reason: str


class ServedLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._served: set[Served] = set()
        self._authorized: set[Authorized] = set()
        self._denied: set[Denied] = set()

    def record(
        self,
        method: str,
        template: str,
        granted: list[str],
        *,
        permission_path: str = "",
        properties: tuple[str, ...] = (),
    ) -> None:
        """`granted`: the map's permission for the call ("A+B" when property-scoped ones covered a PATCH together),
        then any a handler required on top."""
        with self._lock:
            self._served.add(Served(method.upper(), template, "+".join(granted)))
            self._authorized.add(Authorized(method.upper(), permission_path or template, properties, tuple(granted)))

    def deny(self, method: str, template: str, reason: str) -> None:
        with self._lock:
            self._denied.add(Denied(method.upper(), template, reason))

    @property
    def served(self) -> frozenset[Served]:
        with self._lock:
            return frozenset(self._served)

    @property
    def authorized(self) -> frozenset[Authorized]:
        with self._lock:
            return frozenset(self._authorized)

    @property
    def denied(self) -> frozenset[Denied]:
        with self._lock:
            return frozenset(self._denied)

    def reset(self) -> None:
        with self._lock:
            self._served.clear()
            self._authorized.clear()
            self._denied.clear()
