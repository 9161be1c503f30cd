"""Microsoft's published description of Graph v1.0, vendored as compact extracts.

`contract()` returns the loaded description: the CSDL extract (paths, types, operations) and the application
permission map. `least_privileged(method, path)` answers which application permission(s) Microsoft marks least
privileged for a call. Regenerate the extracts with `scripts/graph-contract` (see generate.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import unquote

from .permissions import PermissionMap, PermissionRule
from .resolve import ContractError, MethodNotAllowed, NotModelled, Resolved, SegmentNotFound, resolve, split_segments
from .schema import Schema, StructuredType, TypeRef


class GraphContract:
    def __init__(self, schema: Schema, permissions: PermissionMap) -> None:
        self.schema = schema
        self.permissions = permissions

    def resolve(self, path: str) -> Resolved:
        """`/users/{id}/memberOf` or a concrete, percent-encoded path below /v1.0."""
        return resolve(self.schema, [unquote(s) for s in split_segments(path.split("?", 1)[0])])

    def rule(self, method: str, path: str) -> PermissionRule | None:
        return self.permissions.rule(method, self.resolve(path).permission_path)

    def least_privileged(self, method: str, path: str, body_properties: Iterable[str] | None = None) -> tuple[str, ...]:
        """The least-privileged application permission(s) for a call, per Microsoft's map (and the pages it omits).

        For PATCH /users/{id}, pass the body's property names to get the property-scoped permissions (e.g.
        accountEnabled -> User.EnableDisableAccount.All) when every property has one.
        """
        resolved = self.resolve(path)
        if body_properties is not None:
            scoped = self.permissions.least_scoped(resolved.permission_path, list(body_properties))
            if scoped:
                return scoped
        found = self.permissions.rule(method, resolved.permission_path)
        return found.least if found else ()


@lru_cache(maxsize=1)
def contract() -> GraphContract:
    return GraphContract(Schema.load(), PermissionMap.load())


def least_privileged(method: str, path: str, body_properties: Iterable[str] | None = None) -> tuple[str, ...]:
    return contract().least_privileged(method, path, body_properties)


__all__ = [
    "ContractError",
    "GraphContract",
    "MethodNotAllowed",
    "NotModelled",
    "PermissionMap",
    "PermissionRule",
    "Resolved",
    "Schema",
    "SegmentNotFound",
    "StructuredType",
    "TypeRef",
    "contract",
    "least_privileged",
]
