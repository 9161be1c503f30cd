"""/groups: create and delete security groups, list/search, read, members (incl. PIM for Groups memberships), and
membership changes via members/$ref."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import (
    MSG_MEMBER_EXISTS,
    MSG_MEMBER_NOT_PRESENT,
    MSG_SEARCH_NEEDS_EVENTUAL,
    GraphError,
    bad_request,
    invalid_property_message,
    not_found,
    required_property_message,
    unsupported_query,
)
from ..messages import SimRequest, SimResponse
from ..odata import apply_filter
from ..routing import Router
from ..state import GroupRecord, Tenant, is_guid
from ..validation import not_modelled
from .common import advanced_query, checked_select, collection, entity_context, list_context, user_view
from .filters import GROUP_FILTERS

# Group properties the simulator tracks (others read back absent, as if never set).
GROUP_PROPERTIES = (
    "id",
    "createdDateTime",
    "deletedDateTime",
    "description",
    "displayName",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "securityIdentifier",
    "visibility",
)
ROLE_MANAGEMENT = "RoleManagement.ReadWrite.Directory"
# group-post-groups.md, "Request body": the properties a create must carry.
REQUIRED_ON_CREATE = ("displayName", "mailEnabled", "mailNickname", "securityEnabled")
# group-post-groups.md: mailNickname is ASCII 0-127 except @ () \ [] " ; : . <> , SPACE; at most 64 characters.
_MAIL_NICKNAME = re.compile(r'^[\x00-\x7f]{1,64}$')
_MAIL_NICKNAME_FORBIDDEN = set('@()\\[]";:.<>, ')

# "@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}" (any host/version).
_ODATA_ID_RE = re.compile(
    r"/(?:directoryObjects|users|groups|servicePrincipals|devices|contacts)/"
    r"(?P<id>[0-9a-fA-F-]{36})(?:/[A-Za-z.]*)?/?$"
)


def _group(tenant: Tenant, group_id: str) -> GroupRecord:
    group = tenant.group_records.get(group_id.lower())
    if group is None:
        raise not_found(group_id)
    return group


def group_view(props: Mapping[str, Any], select: list[str] | None) -> dict[str, Any]:
    view = {k: props.get(k) for k in GROUP_PROPERTIES}
    if select:
        wanted = {s.lower() for s in select}
        view = {k: v for k, v in view.items() if k.lower() in wanted}
    return view


def _member_view(kind: str, props: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if kind == "user":
        return {"@odata.type": "#microsoft.graph.user", **user_view(props, select)}
    if kind == "group":
        return {"@odata.type": "#microsoft.graph.group", **group_view(props, select)}
    return {"@odata.type": f"#microsoft.graph.{kind}", **props}


def get_group(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    select = checked_select(req, GROUP_PROPERTIES, "group")
    return SimResponse(200, {"@odata.context": entity_context("groups", select), **group_view(group.props, select)})


def _search_matches(props: Mapping[str, Any], search: str) -> bool:
    # $search="displayName:jit" (tokenised prefix search in Graph; substring here).
    clauses = [c.strip().strip('"') for c in re.split(r"\s+(?:OR|AND)\s+", search.strip().strip('"'))]
    for clause in clauses:
        prop, _, term = clause.partition(":")
        value = props.get(prop.strip())
        if isinstance(value, str) and term.strip().lower() in value.lower():
            return True
    return False


def list_groups(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    select = checked_select(req, GROUP_PROPERTIES, "group")
    groups: list[Mapping[str, Any]] = [g.props for g in tenant.group_records.values()]
    search = req.query.get("$search")
    if search is not None:
        if not req.eventual:  # concepts/aad-advanced-queries.md: $search needs ConsistencyLevel: eventual
            raise unsupported_query(MSG_SEARCH_NEEDS_EVENTUAL)
        groups = [g for g in groups if _search_matches(g, search)]
    groups = apply_filter(groups, req.query.get("$filter"), GROUP_FILTERS.checker(req))
    if req.query.get("$orderby") and req.query.get("$filter") is not None and not advanced_query(req):
        raise unsupported_query("Sorting not supported for current query.")
    items = [group_view(g, select) for g in groups]
    return SimResponse(200, collection(req, list_context("groups", select), items))


def list_members(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    select = checked_select(req, None, "directoryObject")
    items = []
    for member_id in tenant.members_of(group.id):
        resolved = tenant.directory_object(member_id)
        if resolved is not None:  # soft-deleted or not-yet-replicated members are hidden
            items.append(_member_view(resolved[0], resolved[1], select))
    return SimResponse(200, collection(req, list_context("directoryObjects", select), items))


def list_member_refs(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    refs = [
        {"@odata.id": f"https://graph.microsoft.com/v2/{tenant.id}/directoryObjects/{m}"}
        for m in tenant.members_of(group.id)
        if tenant.directory_object(m) is not None
    ]
    return SimResponse(200, collection(req, list_context("directoryObjects", None), refs))


def _lagging_reference(tenant: Tenant, object_id: str) -> GraphError:
    """A write that references an object replicas haven't seen: 404 or 400 (tenant.lag_status)."""
    if tenant.lag_error_status() == 400:
        return bad_request(f"Invalid object identifier '{object_id}'.")
    return not_found(object_id)


def _require_role_management(req: SimRequest, group: GroupRecord) -> None:
    # group-post-members.md / group-delete-members.md: for a role-assignable group "the app must also be assigned
    # the RoleManagement.ReadWrite.Directory permission".
    if group.role_assignable:
        req.auth.require_permission(ROLE_MANAGEMENT)


def add_member(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    _require_role_management(req, group)
    body = req.json_object()
    odata_id = body.get("@odata.id")
    match = _ODATA_ID_RE.search(odata_id) if isinstance(odata_id, str) else None
    if match is None:
        raise bad_request(f"Invalid object identifier '{odata_id}'.")
    member_id = match.group("id").lower()
    if tenant.lagging(member_id):
        raise _lagging_reference(tenant, member_id)
    if tenant.directory_object(member_id) is None:
        raise not_found(member_id)
    if member_id in tenant.members_of(group.id):
        raise bad_request(MSG_MEMBER_EXISTS)
    group.members.append(member_id)
    return SimResponse(204)


def remove_member(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    _require_role_management(req, group)
    member_id = params["memberId"].lower()
    if not is_guid(member_id):
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            "Unsupported referenced-object resource identifier for link property 'members'.",
        )
    if tenant.lagging(member_id):
        raise _lagging_reference(tenant, member_id)
    if tenant.directory_object(member_id) is None:
        raise not_found(member_id)
    if member_id not in group.members:
        # Observed Graph behaviour: an existing object that isn't a member is a 400.
        raise bad_request(MSG_MEMBER_NOT_PRESENT)
    group.members.remove(member_id)
    return SimResponse(204)


def _valid_nickname(value: object) -> bool:
    return isinstance(value, str) and bool(_MAIL_NICKNAME.match(value)) and not set(value) & _MAIL_NICKNAME_FORBIDDEN


def create_group(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    """POST /groups for a security group (group-post-groups.md); Microsoft 365, mail-enabled and dynamic groups, and
    owners/members bound at creation, are not modelled (501)."""
    body = req.json_object()
    present = {k.lower(): k for k in body}
    for prop in REQUIRED_ON_CREATE:
        if prop.lower() not in present or body[present[prop.lower()]] is None:
            raise bad_request(required_property_message(prop, "Group"))
    value = {prop: body[present[prop.lower()]] for prop in REQUIRED_ON_CREATE}
    group_types = body.get(present.get("grouptypes", "groupTypes")) or []
    if value["mailEnabled"] is not False or value["securityEnabled"] is not True or group_types:
        raise not_modelled("POST /groups other than a security group (mailEnabled false, securityEnabled true, no groupTypes)")
    if any("@odata.bind" in k for k in body):
        raise not_modelled("POST /groups with owners or members bound at creation")
    name = value["displayName"]
    if not isinstance(name, str) or not name or len(name) > 256:  # "Maximum length: 256 characters."
        raise bad_request(invalid_property_message("displayName", "Group"))
    if not _valid_nickname(value["mailNickname"]):
        raise bad_request(invalid_property_message("mailNickname", "Group"))
    role_assignable = body.get(present.get("isassignabletorole", "isAssignableToRole")) is True
    if role_assignable:
        # group-post-groups.md, example 3: RoleManagement.ReadWrite.Directory is needed "to set the
        # isAssignableToRole property".
        req.auth.require_permission(ROLE_MANAGEMENT)
    description = body.get(present.get("description", "description"))
    group_id = tenant.add_group(
        name,
        str(uuid.uuid4()),
        description=description if isinstance(description, str) else None,
        is_assignable_to_role=role_assignable,
    )
    record = tenant.group_records[group_id]
    record.props["mailNickname"] = value["mailNickname"]
    return SimResponse(201, {"@odata.context": entity_context("groups", None), **group_view(record.props, None)})


def delete_group(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    """DELETE /groups/{id} → 204; a security group is "permanently deleted immediately" (group-delete.md)."""
    group = _group(tenant, params["id"])
    tenant.remove_group(group.id)
    return SimResponse(204)


def register(router: Router) -> None:
    router.add("POST", "/groups", create_group)
    router.add("DELETE", "/groups/{id}", delete_group)
    router.add("GET", "/groups", list_groups)
    router.add("GET", "/groups/{id}", get_group)
    router.add("GET", "/groups/{id}/members", list_members)
    router.add("GET", "/groups/{id}/members/$ref", list_member_refs)
    router.add("POST", "/groups/{id}/members/$ref", add_member)
    router.add("DELETE", "/groups/{id}/members/{memberId}/$ref", remove_member)
