"""/groups/{id}, its members, and membership changes through members/$ref."""

from __future__ import annotations

import re
from typing import Any

from ..errors import (
    MSG_MEMBER_EXISTS,
    MSG_MEMBER_NOT_PRESENT,
    GraphError,
    bad_request,
    not_found,
)
from ..messages import SimRequest, SimResponse
from ..routing import Router
from ..state import GroupRecord, Tenant, is_guid
from .common import checked_select, collection, entity_context, list_context, user_view

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


def _member_view(kind: str, props: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if kind == "user":
        return {"@odata.type": "#microsoft.graph.user", **user_view(props, select)}
    view = {k: props.get(k) for k in GROUP_PROPERTIES}
    if select:
        view = {k: v for k, v in view.items() if k.lower() in {s.lower() for s in select}}
    return {"@odata.type": "#microsoft.graph.group", **view}


def get_group(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    select = checked_select(req, GROUP_PROPERTIES, "group")
    view = {k: group.props.get(k) for k in (select or GROUP_PROPERTIES)}
    return SimResponse(200, {"@odata.context": entity_context("groups", select), **view})


def list_members(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    select = checked_select(req, None, "directoryObject")
    items = []
    for member_id in group.members:
        resolved = tenant.directory_object(member_id)
        if resolved is not None:  # soft-deleted or not-yet-replicated members are hidden
            items.append(_member_view(resolved[0], resolved[1], select))
    return SimResponse(200, collection(req, list_context("directoryObjects", select), items))


def list_member_refs(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    refs = [
        {"@odata.id": f"https://graph.microsoft.com/v2/{tenant.id}/directoryObjects/{m}"}
        for m in group.members
        if tenant.directory_object(m) is not None
    ]
    return SimResponse(200, collection(req, list_context("directoryObjects", None), refs))


def add_member(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    body = req.json_object()
    odata_id = body.get("@odata.id")
    match = _ODATA_ID_RE.search(odata_id) if isinstance(odata_id, str) else None
    if match is None:
        raise bad_request(f"Invalid object identifier '{odata_id}'.")
    member_id = match.group("id").lower()
    if tenant.directory_object(member_id) is None:
        raise not_found(member_id)
    if member_id in group.members:
        raise bad_request(MSG_MEMBER_EXISTS)
    group.members.append(member_id)
    return SimResponse(204)


def remove_member(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    group = _group(tenant, params["id"])
    member_id = params["memberId"].lower()
    if not is_guid(member_id):
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            "Unsupported referenced-object resource identifier for link property 'members'.",
        )
    if tenant.directory_object(member_id) is None:
        raise not_found(member_id)
    if member_id not in group.members:
        # Observed Graph behaviour: an existing object that isn't a member is a 400.
        raise bad_request(MSG_MEMBER_NOT_PRESENT)
    group.members.remove(member_id)
    return SimResponse(204)


def register(router: Router) -> None:
    router.add("GET", "/groups/{id}", get_group)
    router.add("GET", "/groups/{id}/members", list_members)
    router.add("GET", "/groups/{id}/members/$ref", list_member_refs)
    router.add("POST", "/groups/{id}/members/$ref", add_member)
    router.add("DELETE", "/groups/{id}/members/{memberId}/$ref", remove_member)
