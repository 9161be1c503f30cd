"""Privileged Identity Management: Entra role assignment schedules and PIM for Groups memberships.

Requests (DC rbacapplication-post-roleassignmentschedulerequests.md, privilegedaccessgroup-post-
assignmentschedulerequests.md): adminAssign / adminExtend / adminRemove with scheduleInfo {startDateTime,
expiration {type: noExpiration | afterDateTime (endDateTime) | afterDuration (duration)}}. A schedule is active
from its start until its end **on the directory clock**: while active, a role schedule shows in
/roleManagement/directory/roleAssignments and its instances, a group schedule makes the principal a member (or
owner); after the end it is gone with no further request. Every PIM call needs Entra ID P2 in the tenant.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..contract import contract
from ..errors import GraphError, not_found
from ..licences import PIM_PLANS
from ..messages import SimRequest, SimResponse
from ..odata import apply_filter, parse_select, project
from ..routing import Router
from ..state import Schedule, Tenant, is_guid, iso
from .common import collection, entity_context, list_context

ROLE_BASE = "roleManagement/directory"
GROUP_BASE = "identityGovernance/privilegedAccess/group"
SUPPORTED_ACTIONS = ("adminAssign", "adminExtend", "adminRemove")
# PIM keeps an active role assignment at least five minutes: removing it sooner is refused (ED
# pim-how-to-activate-role: "you can't deactivate a role assignment within five minutes after activation";
# Omnicit/Omnicit.EntraRBAC Remove-OERActiveDirectoryRoleAssignment.ps1, measured live for adminRemove).
MINIMUM_ACTIVE_SECONDS = 5 * 60
_DURATION = re.compile(r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


# ---------------------------------------------------------------- errors


def pim_error(code: str, message: str) -> GraphError:
    return GraphError(400, code, message)


def invalid_request(detail: str) -> GraphError:
    # PIM's code for a malformed request (recorded: hashicorp/terraform-provider-azuread #1464); detail is ours.
    return GraphError(400, "InvalidRoleAssignmentRequest", f"The role assignment request is invalid. {detail}".strip())


def require_licence(tenant: Tenant) -> None:
    """PIM needs Microsoft Entra ID P2 (or Governance): 400 AadPremiumLicenseRequired otherwise."""
    if not tenant.has_licence_plan(*PIM_PLANS):
        raise pim_error("AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license.")


# ---------------------------------------------------------------- schedules


def parse_time(value: Any, field: str) -> float:
    if not isinstance(value, str):
        raise invalid_request(f"'{field}' must be a date and time.")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid_request(f"'{field}' is not a valid date and time.") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def parse_duration(value: Any) -> float:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or value in ("P", "PT"):
        raise invalid_request("'expiration.duration' must be an ISO 8601 duration such as PT8H.")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return timedelta(weeks=parts["w"], days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"]).total_seconds()


def schedule_window(
    tenant: Tenant, info: Any, *, default_start: float | None = None
) -> tuple[float, float | None, str]:
    """(start, end or None, expiration type) from a requestSchedule."""
    if not isinstance(info, Mapping):
        raise invalid_request("'scheduleInfo' is required.")
    if info.get("recurrence") is not None:
        raise invalid_request("Recurring schedules are not supported.")  # the group page: "currently unsupported"
    start_raw = info.get("startDateTime")
    start = parse_time(start_raw, "scheduleInfo.startDateTime") if start_raw is not None else (default_start or tenant.now())
    expiration = info.get("expiration") or {"type": "noExpiration"}
    if not isinstance(expiration, Mapping):
        raise invalid_request("'expiration' must be an object.")
    kinds = {k.lower(): k for k in contract().schema.enums["microsoft.graph.expirationPatternType"]}
    kind = kinds.get(str(expiration.get("type") or "noExpiration").lower())
    if kind in (None, "notSpecified"):
        raise invalid_request(f"'expiration.type' {expiration.get('type')!r} is not supported.")
    if kind == "noExpiration":
        return start, None, kind
    if kind == "afterDateTime":
        end = parse_time(expiration.get("endDateTime"), "expiration.endDateTime")
    else:
        end = start + parse_duration(expiration.get("duration"))
    if end <= start:
        raise invalid_request("The schedule ends before it starts.")
    return start, end, kind


def _schedule_info(schedule: Schedule, kind: str | None = None) -> dict[str, Any]:
    end = iso(datetime.fromtimestamp(schedule.end, UTC), precise=True) if schedule.end is not None else None
    return {
        "startDateTime": iso(datetime.fromtimestamp(schedule.start, UTC), precise=True),
        "recurrence": None,
        "expiration": {
            "type": kind or ("noExpiration" if end is None else "afterDateTime"),
            "endDateTime": end,
            "duration": None,
        },
    }


def _times(schedule: Schedule) -> tuple[str, str | None]:
    start = iso(datetime.fromtimestamp(schedule.start, UTC), precise=True)
    end = iso(datetime.fromtimestamp(schedule.end, UTC), precise=True) if schedule.end is not None else None
    return start, end


def _action(body: Mapping[str, Any]) -> str:
    actions = {a.lower(): a for a in contract().schema.enums["microsoft.graph.unifiedRoleScheduleRequestActions"]}
    action = actions.get(str(body.get("action") or "").lower())
    if action is None:
        raise invalid_request(f"'action' {body.get('action')!r} is not a known action.")
    if action not in SUPPORTED_ACTIONS:
        raise GraphError(501, "NotImplemented", f"The Graph simulator does not model the PIM action '{action}'.")
    return action


def _principal(tenant: Tenant, principal_id: Any) -> tuple[str, str]:
    """(kind, id) of a principal the PIM service can see; lagging ones per tenant.lag_status."""
    if not isinstance(principal_id, str) or not principal_id:
        raise invalid_request("'principalId' is required.")
    if is_guid(principal_id) and tenant.lagging(principal_id):
        if tenant.lag_error_status() == 400:
            raise pim_error("SubjectNotFound", "The subject is not found.")
        raise not_found(principal_id)
    resolved = tenant.directory_object(principal_id) if is_guid(principal_id) else None
    if resolved is None:
        raise pim_error("SubjectNotFound", "The subject is not found.")
    return resolved[0], principal_id.lower()


def _request_view(request: dict[str, Any]) -> dict[str, Any]:
    return dict(request)


def _created_by(req: SimRequest) -> dict[str, Any]:
    sp = req.auth.service_principal if req.auth else None
    return {"application": {"id": sp.app_id, "displayName": sp.display_name} if sp else None, "device": None, "user": None}


# ---------------------------------------------------------------- Entra roles


def _role_schedule(tenant: Tenant, principal_id: str, role_id: str, scope: str) -> Schedule | None:
    now = tenant.now()
    for schedule in tenant.schedules.values():
        if (
            schedule.kind == "role"
            and schedule.principal_id == principal_id
            and schedule.role_definition_id == role_id
            and schedule.directory_scope_id == scope
            and (schedule.end is None or schedule.end > now)
        ):
            return schedule
    return None


def create_role_request(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    require_licence(tenant)
    body = req.json_object()
    action = _action(body)
    role_id = body.get("roleDefinitionId")
    if not isinstance(role_id, str) or not role_id:
        raise invalid_request("'roleDefinitionId' is required.")
    scope = body.get("directoryScopeId")
    if not body.get("directoryScopeId") and not body.get("appScopeId"):
        raise invalid_request("Either 'directoryScopeId' or 'appScopeId' is required.")
    scope = str(scope or "/")
    kind, principal_id = _principal(tenant, body.get("principalId"))
    definition = tenant.role_definitions.get(role_id.lower())
    if definition is None:
        raise not_found(role_id)
    role_id = definition["id"]
    if kind == "group" and not tenant.group_records[principal_id].role_assignable:
        raise GraphError(400, "Request_BadRequest", "Groups without IsAssignableToRole property set cannot be assigned to roles.")
    from .roles import assignment_id

    existing = _role_schedule(tenant, principal_id, role_id, scope)
    direct_id = assignment_id(role_id, principal_id, scope)
    request_id = str(uuid.uuid4())
    now = tenant.now()
    if action == "adminAssign":
        if existing is not None or direct_id in tenant.role_assignment_records:
            raise pim_error("RoleAssignmentExists", "The Role assignment already exists.")
        start, end, exp_kind = schedule_window(tenant, body.get("scheduleInfo"))
        schedule = Schedule(
            request_id,
            "role",
            principal_id,
            start,
            end,
            request_id,
            role_definition_id=role_id,
            directory_scope_id=scope,
            assigned_at=now,
        )
        tenant.schedules[schedule.id] = schedule
        status, target = "Provisioned", schedule.id
    elif action == "adminExtend":
        if existing is None:
            raise pim_error("RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
        start, end, exp_kind = schedule_window(tenant, body.get("scheduleInfo"), default_start=existing.start)
        existing.end = end
        status, target = "Provisioned", existing.id
    else:  # adminRemove
        if existing is not None:
            if existing.active(now) and now - max(existing.start, existing.assigned_at) < MINIMUM_ACTIVE_SECONDS:
                raise pim_error("ActiveDurationTooShort", "The Active duration is too short. Miniumum Required is 5 minutes.")
            del tenant.schedules[existing.id]
            target = existing.id
        elif direct_id in tenant.role_assignment_records:
            del tenant.role_assignment_records[direct_id]
            target = direct_id
        else:
            raise pim_error("RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
        status, exp_kind = "Revoked", None
    stamp = iso(datetime.fromtimestamp(now, UTC), precise=True)
    request = {
        "id": request_id,
        "status": status,
        "createdDateTime": stamp,
        "completedDateTime": stamp,
        "approvalId": None,
        "customData": body.get("customData"),
        "action": action,
        "principalId": principal_id,
        "roleDefinitionId": role_id,
        "directoryScopeId": scope,
        "appScopeId": body.get("appScopeId"),
        "isValidationOnly": False,
        "targetScheduleId": target,
        "justification": body.get("justification"),
        "createdBy": _created_by(req),
        "scheduleInfo": body.get("scheduleInfo") if exp_kind else None,
        "ticketInfo": body.get("ticketInfo") or {"ticketNumber": None, "ticketSystem": None},
    }
    tenant.schedule_requests[request_id] = {"kind": "role", **request}
    return SimResponse(201, {"@odata.context": entity_context(f"{ROLE_BASE}/roleAssignmentScheduleRequests", None), **request})


def _role_schedule_view(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "principalId": schedule.principal_id,
        "roleDefinitionId": schedule.role_definition_id,
        "directoryScopeId": schedule.directory_scope_id,
        "appScopeId": None,
        "createdUsing": schedule.request_id,
        "createdDateTime": _times(schedule)[0],
        "modifiedDateTime": None,
        "status": "Provisioned",
        "assignmentType": "Assigned",
        "memberType": "Direct",
        "scheduleInfo": _schedule_info(schedule),
    }


def _role_instance_views(tenant: Tenant) -> list[dict[str, Any]]:
    """Active assignments: PIM schedules in their window, and direct (permanent) assignments."""
    from .roles import assignment_id

    views = []
    for schedule in tenant.active_schedules("role"):
        start, end = _times(schedule)
        origin = assignment_id(schedule.role_definition_id, schedule.principal_id, schedule.directory_scope_id)
        views.append(
            {
                "id": origin,
                "principalId": schedule.principal_id,
                "roleDefinitionId": schedule.role_definition_id,
                "directoryScopeId": schedule.directory_scope_id,
                "appScopeId": None,
                "startDateTime": start,
                "endDateTime": end,
                "assignmentType": "Assigned",
                "memberType": "Direct",
                "roleAssignmentOriginId": origin,
                "roleAssignmentScheduleId": schedule.id,
            }
        )
    for ra in tenant.role_assignment_records.values():
        views.append(
            {
                "id": ra["id"],
                "principalId": ra["principalId"],
                "roleDefinitionId": ra["roleDefinitionId"],
                "directoryScopeId": ra["directoryScopeId"],
                "appScopeId": ra["appScopeId"],
                "startDateTime": None,
                "endDateTime": None,
                "assignmentType": "Assigned",
                "memberType": "Direct",
                "roleAssignmentOriginId": ra["id"],
                "roleAssignmentScheduleId": ra["id"],
            }
        )
    return views


def _listing(req: SimRequest, context: str, items: list[dict[str, Any]]) -> SimResponse:
    select = parse_select(req.query.get("$select"))
    filtered = apply_filter(items, req.query.get("$filter"))
    return SimResponse(200, collection(req, list_context(context, select), [project(i, select) for i in filtered]))


def list_role_requests(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    require_licence(tenant)
    items = [{k: v for k, v in r.items() if k != "kind"} for r in tenant.schedule_requests.values() if r["kind"] == "role"]
    return _listing(req, f"{ROLE_BASE}/roleAssignmentScheduleRequests", items)


def list_role_schedules(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    require_licence(tenant)
    now = tenant.now()
    items = [
        _role_schedule_view(s) for s in tenant.schedules.values() if s.kind == "role" and (s.end is None or s.end > now)
    ]
    return _listing(req, f"{ROLE_BASE}/roleAssignmentSchedules", items)


def list_role_instances(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    require_licence(tenant)
    return _listing(req, f"{ROLE_BASE}/roleAssignmentScheduleInstances", _role_instance_views(tenant))


# ---------------------------------------------------------------- PIM for Groups


def _pim_group(tenant: Tenant, group_id: Any) -> str:
    if not isinstance(group_id, str) or not group_id:
        raise invalid_request("'groupId' is required.")
    group = tenant.group_records.get(group_id.lower())
    if group is None:
        raise not_found(group_id)
    props = group.props
    types = [t.lower() for t in props.get("groupTypes") or []]
    # "you need a Microsoft Entra Security group or Microsoft 365 group ... Dynamic groups and groups synchronized
    # from on-premises environment can't be managed in PIM for Groups" (ED groups-discover-groups.md).
    eligible = (props.get("securityEnabled") or "unified" in types) and "dynamicmembership" not in types
    if not eligible or props.get("onPremisesSyncEnabled"):
        raise invalid_request("The group can't be managed in PIM for Groups.")
    return group.id


def _group_schedule(tenant: Tenant, group_id: str, principal_id: str, access: str) -> Schedule | None:
    now = tenant.now()
    for schedule in tenant.schedules.values():
        if (
            schedule.kind == "group"
            and schedule.group_id == group_id
            and schedule.principal_id == principal_id
            and schedule.access_id == access
            and (schedule.end is None or schedule.end > now)
        ):
            return schedule
    return None


def create_group_request(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    require_licence(tenant)
    body = req.json_object()
    action = _action(body)
    access = str(body.get("accessId") or "")
    if access not in ("member", "owner"):
        raise invalid_request("'accessId' must be 'member' or 'owner'.")
    group_id = _pim_group(tenant, body.get("groupId"))
    _, principal_id = _principal(tenant, body.get("principalId"))
    existing = _group_schedule(tenant, group_id, principal_id, access)
    request_id = str(uuid.uuid4())
    target = f"{group_id}_{access}_{request_id}"  # the shape of targetScheduleId in the page's examples
    if action == "adminAssign":
        group = tenant.group_records[group_id]
        already = principal_id in (group.members if access == "member" else group.owners)
        if existing is not None or already:
            raise pim_error("RoleAssignmentExists", "The Role assignment already exists.")
        start, end, exp_kind = schedule_window(tenant, body.get("scheduleInfo"))
        tenant.schedules[target] = Schedule(
            target, "group", principal_id, start, end, request_id, group_id=group_id, access_id=access
        )
        status = "Provisioned"
    elif action == "adminExtend":
        if existing is None:
            raise pim_error("RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
        _, existing.end, exp_kind = schedule_window(tenant, body.get("scheduleInfo"), default_start=existing.start)
        status, target = "Provisioned", existing.id
    else:
        if existing is None:
            raise pim_error("RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
        del tenant.schedules[existing.id]
        status, target, exp_kind = "Revoked", existing.id, None
    stamp = iso(tenant.clock.now(), precise=True)
    request = {
        "id": request_id,
        "status": status,
        "completedDateTime": stamp,
        "createdDateTime": stamp,
        "approvalId": None,
        "customData": body.get("customData"),
        "createdBy": _created_by(req),
        "action": action,
        "isValidationOnly": False,
        "justification": body.get("justification"),
        "scheduleInfo": body.get("scheduleInfo") if exp_kind else None,
        "ticketInfo": body.get("ticketInfo") or {"ticketNumber": None, "ticketSystem": None},
        "accessId": access,
        "principalId": principal_id,
        "groupId": group_id,
        "targetScheduleId": target,
    }
    tenant.schedule_requests[request_id] = {"kind": "group", **request}
    return SimResponse(201, {"@odata.context": entity_context(f"{GROUP_BASE}/assignmentScheduleRequests", None), **request})


def _group_views(tenant: Tenant, active_only: bool) -> list[dict[str, Any]]:
    now = tenant.now()
    views = []
    for schedule in tenant.schedules.values():
        current = schedule.active(now) if active_only else (schedule.end is None or schedule.end > now)
        if schedule.kind != "group" or not current:
            continue
        start, end = _times(schedule)
        view: dict[str, Any] = {
            "id": schedule.id,
            "accessId": schedule.access_id,
            "groupId": schedule.group_id,
            "principalId": schedule.principal_id,
            "memberType": "direct",
            "assignmentType": "assigned",
        }
        if active_only:
            view |= {"startDateTime": start, "endDateTime": end, "assignmentScheduleId": schedule.id}
        else:
            view |= {"createdUsing": schedule.request_id, "createdDateTime": start, "status": "Provisioned"}
            view["scheduleInfo"] = _schedule_info(schedule)
        views.append(view)
    return views


def list_group_requests(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    require_licence(tenant)
    items = [{k: v for k, v in r.items() if k != "kind"} for r in tenant.schedule_requests.values() if r["kind"] == "group"]
    return _listing(req, f"{GROUP_BASE}/assignmentScheduleRequests", items)


def list_group_instances(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    require_licence(tenant)
    return _listing(req, f"{GROUP_BASE}/assignmentScheduleInstances", _group_views(tenant, active_only=True))


def list_group_schedules(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    require_licence(tenant)
    return _listing(req, f"{GROUP_BASE}/assignmentSchedules", _group_views(tenant, active_only=False))


def register(router: Router) -> None:
    routes: list[tuple[str, str, Callable[[Tenant, SimRequest, dict[str, str]], SimResponse]]] = [
        ("POST", f"/{ROLE_BASE}/roleAssignmentScheduleRequests", create_role_request),
        ("GET", f"/{ROLE_BASE}/roleAssignmentScheduleRequests", list_role_requests),
        ("GET", f"/{ROLE_BASE}/roleAssignmentSchedules", list_role_schedules),
        ("GET", f"/{ROLE_BASE}/roleAssignmentScheduleInstances", list_role_instances),
        ("POST", f"/{GROUP_BASE}/assignmentScheduleRequests", create_group_request),
        ("GET", f"/{GROUP_BASE}/assignmentScheduleRequests", list_group_requests),
        ("GET", f"/{GROUP_BASE}/assignmentScheduleInstances", list_group_instances),
        ("GET", f"/{GROUP_BASE}/assignmentSchedules", list_group_schedules),
    ]
    for method, template, handler in routes:
        router.add(method, template, handler)
