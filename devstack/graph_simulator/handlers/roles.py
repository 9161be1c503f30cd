"""/roleManagement/directory: role definitions (read-only) and role assignments."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

from ..errors import MSG_CONFLICTING_OBJECT, bad_request, invalid_property_message, not_found, required_property_message
from ..messages import SimRequest, SimResponse
from ..odata import apply_filter, parse_select, project
from ..routing import Router
from ..state import Tenant, is_guid
from .common import collection, entity_context, list_context, user_view

DEFINITIONS = "roleManagement/directory/roleDefinitions"
ASSIGNMENTS = "roleManagement/directory/roleAssignments"


def assignment_id(role_definition_id: str, principal_id: str, scope: str) -> str:
    """Graph-shaped id: base64url(roleDefinitionId + principalId GUID bytes) + "-1".

    Deterministic like Graph's, so re-creating an assignment yields the same id.
    Non-tenant scopes get a scope hash mixed in to keep ids unique.
    """
    raw = uuid.UUID(role_definition_id).bytes_le + uuid.UUID(principal_id).bytes_le
    if scope != "/":
        raw += hashlib.sha256(scope.lower().encode()).digest()[:8]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "-1"


def _definition(tenant: Tenant, role_id: str) -> dict[str, Any]:
    definition = tenant.role_definitions.get(role_id.lower())
    if definition is None:
        raise not_found(role_id)
    return definition


def list_definitions(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    select = parse_select(req.query.get("$select"))
    items = apply_filter(list(tenant.role_definitions.values()), req.query.get("$filter"))
    values = [project(d, select) for d in items]
    return SimResponse(200, collection(req, list_context(DEFINITIONS, select), values, default_page=1000))


def get_definition(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    select = parse_select(req.query.get("$select"))
    definition = project(_definition(tenant, params["id"]), select)
    return SimResponse(200, {"@odata.context": entity_context(DEFINITIONS, select), **definition})


def _assignment_view(tenant: Tenant, ra: dict[str, Any], expand: set[str]) -> dict[str, Any]:
    view = dict(ra)
    if "principal" in expand:
        resolved = tenant.directory_object(ra["principalId"])
        if resolved is not None:
            kind, props = resolved
            principal = user_view(props, None) if kind == "user" else dict(props)
            view["principal"] = {"@odata.type": f"#microsoft.graph.{kind}", **principal}
    if "roledefinition" in expand:
        view["roleDefinition"] = tenant.role_definitions.get(ra["roleDefinitionId"])
    return view


def _expand(req: SimRequest) -> set[str]:
    raw = req.query.get("$expand") or ""
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def list_assignments(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    select = parse_select(req.query.get("$select"))
    items = apply_filter(tenant.role_assignments_now(), req.query.get("$filter"))
    expand = _expand(req)
    values = [project(_assignment_view(tenant, dict(ra), expand), select) for ra in items]
    return SimResponse(200, collection(req, list_context(ASSIGNMENTS, select), values))


def _assignment(tenant: Tenant, assignment: str) -> dict[str, Any]:
    ra = next((a for a in tenant.role_assignments_now() if a["id"] == assignment), None)
    if ra is None:
        raise not_found(assignment)
    return ra


def get_assignment(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    ra = _assignment(tenant, params["id"])
    select = parse_select(req.query.get("$select"))
    view = project(_assignment_view(tenant, ra, _expand(req)), select)
    return SimResponse(200, {"@odata.context": entity_context(ASSIGNMENTS, select), **view})


def create_assignment(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    body = req.json_object()
    role_id = body.get("roleDefinitionId")
    principal_id = body.get("principalId")
    scope = body.get("directoryScopeId")
    app_scope = body.get("appScopeId")
    if not isinstance(role_id, str) or not role_id:
        raise bad_request(required_property_message("roleDefinitionId", "UnifiedRoleAssignment"))
    if not isinstance(principal_id, str) or not principal_id:
        raise bad_request(required_property_message("principalId", "UnifiedRoleAssignment"))
    if not scope and not app_scope:
        raise bad_request(required_property_message("directoryScopeId", "UnifiedRoleAssignment"))
    if is_guid(principal_id) and tenant.lagging(principal_id):
        # Replication lag: a principal created moments ago surfaces as 404 or 400 (tenant.lag_status).
        if tenant.lag_error_status() == 400:
            raise bad_request(invalid_property_message("principalId", "UnifiedRoleAssignment"))
        raise not_found(principal_id)
    resolved = tenant.directory_object(principal_id) if is_guid(principal_id) else None
    if resolved is None:
        raise not_found(principal_id)
    if resolved[0] == "group" and not resolved[1].get("isAssignableToRole"):
        # Only role-assignable groups can hold roles (recorded: Microsoft365DSC issue #879).
        raise bad_request("Groups without IsAssignableToRole property set cannot be assigned to roles.")
    if not is_guid(role_id):
        raise not_found(role_id)
    definition = _definition(tenant, role_id)
    scope_key = str(scope or app_scope)
    ra_id = assignment_id(definition["id"], principal_id, scope_key)
    if any(a["id"] == ra_id for a in tenant.role_assignments_now()):
        raise bad_request(MSG_CONFLICTING_OBJECT)
    ra = {
        "id": ra_id,
        "principalId": principal_id.lower(),
        "roleDefinitionId": definition["id"],
        "directoryScopeId": scope,
        "appScopeId": app_scope,
        "condition": None,
    }
    tenant.role_assignment_records[ra_id] = ra
    return SimResponse(201, {"@odata.context": entity_context(ASSIGNMENTS, None), **ra})


def delete_assignment(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    ra = tenant.role_assignment_records.get(params["id"])
    if ra is None:
        raise not_found(params["id"])  # incl. assignments a PIM schedule makes: those end with their schedule
    if not tenant.accept_deletes_without_effect:
        del tenant.role_assignment_records[ra["id"]]
    return SimResponse(204)


def register(router: Router) -> None:
    router.add("GET", "/roleManagement/directory/roleDefinitions", list_definitions)
    router.add("GET", "/roleManagement/directory/roleDefinitions/{id}", get_definition)
    router.add("GET", "/roleManagement/directory/roleAssignments", list_assignments)
    router.add("POST", "/roleManagement/directory/roleAssignments", create_assignment)
    router.add("GET", "/roleManagement/directory/roleAssignments/{id}", get_assignment)
    router.add("DELETE", "/roleManagement/directory/roleAssignments/{id}", delete_assignment)
