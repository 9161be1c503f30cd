"""Which application permissions authorize a Graph call, from Microsoft's permission map.

Two data files:

* permissions.json - generated from microsoft-graph-devx-content's permissions/new/permissions.json: per path
  and method, the least-privileged application permission(s) ("least") and every other permission the map says
  grants the call ("other"), plus "alsoRequires" pairs.
* permissions-docs.json - hand-kept entries for calls the map omits, each copied from the Graph API page it cites
  (same shape, plus "source"), and the property-scoped permissions of PATCH /users/{id}.

Microsoft's guidance, printed on every Graph API page: "Choose the permission or permissions marked as least
privileged for this API. Use a higher privileged permission or permissions only if your app requires it." Both
columns authorize the call, so a token holding any permission in least + other is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MAP_FILE = HERE / "permissions.json"
DOCS_FILE = HERE / "permissions-docs.json"


@dataclass(frozen=True)
class PermissionRule:
    least: tuple[str, ...]
    other: tuple[str, ...]
    also_requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "permissions.json"

    @property
    def accepted(self) -> tuple[str, ...]:
        return self.least + self.other

    def granting(self, roles: Collection[str]) -> str | None:
        """The permission in `roles` that authorizes the call (least-privileged first), or None.

        "AlsoRequires=A,B" in the map: the permission counts only together with one of A or B.
        """
        for permission in self.accepted:
            needed = self.also_requires.get(permission, ())
            if permission in roles and (not needed or any(n in roles for n in needed)):
                return permission
        return None


class PermissionMap:
    def __init__(self, generated: Mapping[str, Any], docs: Mapping[str, Any]) -> None:
        self.source = dict(generated["source"])
        self._rules: dict[tuple[str, str], PermissionRule] = {}
        for path, methods in generated["paths"].items():
            for method, entry in methods.items():
                self._rules[(path, method)] = _rule(entry, "permissions.json")
        for entry in docs["entries"]:
            # A docs entry fills a gap in the map (or corrects it where the page says otherwise).
            self._rules[(entry["path"].lower(), entry["method"].upper())] = _rule(entry, entry["source"])
        self.property_scopes: dict[str, dict[str, tuple[str, ...]]] = {
            path.lower(): {perm: tuple(props) for perm, props in scopes["permissions"].items()}
            for path, scopes in docs.get("propertyScopes", {}).items()
        }
        self.property_scope_sources: dict[str, str] = {
            path.lower(): scopes["source"] for path, scopes in docs.get("propertyScopes", {}).items()
        }

    @classmethod
    def load(cls, map_file: Path = MAP_FILE, docs_file: Path = DOCS_FILE) -> PermissionMap:
        return cls(json.loads(map_file.read_text(encoding="utf-8")), json.loads(docs_file.read_text(encoding="utf-8")))

    def rule(self, method: str, permission_path: str) -> PermissionRule | None:
        method = method.upper()
        path = permission_path.lower()
        found = self._rules.get((path, method))
        if found is None and path.endswith("/$count") and method == "GET":
            # `/users/$count` is documented on the list page with the list's permissions (user-list.md,
            # "Get only a count of users"); the map lists the collection only.
            found = self._rules.get((path.removesuffix("/$count"), "GET"))
        return found

    def paths(self) -> Iterable[tuple[str, str]]:
        return self._rules.keys()

    def methods_for(self, permission_path: str) -> set[str]:
        path = permission_path.lower()
        return {method for (p, method) in self._rules if p == path}

    def scoped_patch(self, permission_path: str, properties: Iterable[str], roles: Collection[str]) -> str | None:
        """For PATCH with property-scoped permissions: the '+'-joined permissions covering every property."""
        scopes = self.property_scopes.get(permission_path.lower())
        if not scopes:
            return None
        used: list[str] = []
        for prop in properties:
            covering = [p for p, props in scopes.items() if prop.lower() in {x.lower() for x in props} and p in roles]
            if not covering:
                return None
            if covering[0] not in used:
                used.append(covering[0])
        return "+".join(used) if used else None

    def least_scoped(self, permission_path: str, properties: Iterable[str]) -> tuple[str, ...]:
        scopes = self.property_scopes.get(permission_path.lower(), {})
        needed: list[str] = []
        for prop in properties:
            covering = [p for p, props in scopes.items() if prop.lower() in {x.lower() for x in props}]
            if not covering:
                return ()
            if covering[0] not in needed:
                needed.append(covering[0])
        return tuple(needed)


def _rule(entry: Mapping[str, Any], source: str) -> PermissionRule:
    return PermissionRule(
        least=tuple(entry.get("least", ())),
        other=tuple(entry.get("other", ())),
        also_requires={k: tuple(v) for k, v in entry.get("alsoRequires", {}).items()},
        source=source,
    )
