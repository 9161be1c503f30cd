"""Authorization: the token's application permissions (`roles`), and the Entra roles of the app's service principal.

1. Every call needs one of the application permissions Microsoft's permission map lists for it (least or
   higher: "Use a higher privileged permission or permissions only if your app requires it", printed on every
   Graph API page). PATCH /users/{id} also accepts property-scoped permissions covering every property sent.
2. Some calls need more, decided by handlers: RoleManagement.ReadWrite.Directory for role-assignable group
   membership (group-post-members.md, group-delete-members.md), and an Entra role for sensitive actions on
   privileged users (sensitive.py).
Refusals are Graph's 403 Authorization_RequestDenied "Insufficient privileges to complete the operation."
(microsoft-graph-docs-contrib concepts/json-batching.md, response example 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import sensitive
from .contract import PermissionMap, Resolved
from .errors import GraphError
from .state import ServicePrincipalRecord, Tenant
from .tokens import TokenClaims

MSG_INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."


def forbidden() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", MSG_INSUFFICIENT_PRIVILEGES)


@dataclass
class AuthContext:
    tenant: Tenant
    claims: TokenClaims
    granted: list[str] = field(default_factory=list)

    @property
    def roles(self) -> frozenset[str]:
        return self.claims.roles

    @property
    def service_principal(self) -> ServicePrincipalRecord | None:
        return self.tenant.service_principals.get(self.claims.app_id.lower())

    def directory_roles(self) -> set[str]:
        """Entra roles held by the calling app's service principal (caller holds the tenant lock)."""
        sp = self.service_principal
        return self.tenant.roles_of(sp.id, include_groups=False) if sp else set()

    def require_permission(self, permission: str) -> None:
        """A call-specific extra permission (e.g. role-assignable groups need RoleManagement.ReadWrite.Directory)."""
        if permission not in self.roles:
            raise forbidden()
        if permission not in self.granted:
            self.granted.append(permission)

    def require_sensitive(
        self, target_user_id: str, table: Mapping[str, frozenset[str]], *, always_needs_role: bool = False
    ) -> None:
        """App-only sensitive action on a user: the app's Entra role must be ticked for every row the target is in."""
        rows = sensitive.target_rows(
            self.tenant.roles_of(target_user_id), self.tenant.in_role_assignable_group(target_user_id)
        )
        if not always_needs_role and not sensitive.is_privileged_target(rows):
            return  # non-admin target: the Graph permission alone suffices
        if not sensitive.allowed(dict(table), self.directory_roles(), rows):
            raise forbidden()


def authorize(
    permissions: PermissionMap, method: str, resolved: Resolved, body: Mapping[str, Any] | None, roles: frozenset[str]
) -> str:
    """The permission (or '+'-joined scoped permissions) that authorizes the call; 403/405/501 otherwise."""
    path = resolved.permission_path
    rule = permissions.rule(method, path)
    if rule is None:
        if permissions.methods_for(path):
            # The map lists this path for other methods only: Graph has no such operation.
            raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
        raise GraphError(501, "NotImplemented", f"The Graph simulator has no permission entry for {method} {path}.")
    scopes = permissions.property_scopes.get(path) if method.upper() == "PATCH" else None
    if scopes:
        # The narrowest grant first: property-scoped permissions covering the body, then an unscoped one.
        properties = [k for k in (body or {}) if not k.startswith("@")]
        scoped = permissions.scoped_patch(path, properties, roles) if properties else None
        if scoped:
            return scoped
        unscoped = [p for p in rule.accepted if p not in scopes]
        granting = next((p for p in unscoped if p in roles), None)
        if granting:
            return granting
        raise forbidden()
    granting = rule.granting(roles)
    if granting is None:
        raise forbidden()
    return granting


def body_properties(body: Any) -> Iterable[str]:
    return [k for k in body if not k.startswith("@")] if isinstance(body, Mapping) else []
