"""/users: create, read, list/filter, update, delete, revokeSignInSessions, sendMail, memberOf."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from ..contract import contract
from ..errors import (
    MSG_COUNT_UNSUPPORTED,
    MSG_DUPLICATE_UPN,
    MSG_PASSWORD_COMPLEXITY,
    MSG_SEARCH_NEEDS_EVENTUAL,
    MSG_UPN_DOMAIN,
    MSG_UPN_INVALID,
    GraphError,
    bad_request,
    invalid_property_message,
    required_property_message,
    unsupported_query,
)
from ..messages import SimRequest, SimResponse
from ..odata import apply_filter, parse_select
from ..routing import Router
from ..sensitive import RESET_PASSWORDS, SENSITIVE_ACTIONS, SENSITIVE_PROPERTIES
from ..state import EXTENSION_ATTRIBUTE_KEYS, GroupRecord, SentMessage, Tenant, UserRecord, default_user_props, iso_now
from .common import (
    USER_PROPERTIES,
    advanced_query,
    checked_select,
    collection,
    entity_context,
    find_user,
    list_context,
    user_view,
)
from .filters import USER_FILTERS

REQUIRED_ON_CREATE = (
    "accountEnabled",
    "displayName",
    "mailNickname",
    "passwordProfile",
    "userPrincipalName",
)

# Canonical spelling of every declared user property (the contract already refused undeclared ones).
_DECLARED = {name.lower(): name for name in USER_PROPERTIES}
USER_PROPERTY_TYPES = {
    name: str(ref) for t in contract().schema.ancestry("microsoft.graph.user") for name, ref in t.props.items()
}

_UPN_LOCAL_RE = re.compile(r"^[A-Za-z0-9'.\-_!#^~]+$")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_NICKNAME_BAD = re.compile(r"[@()\\\[\]\";:<>,\s]")
_PASSWORD_SYMBOLS = set("@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ")


def password_complex_enough(password: str) -> bool:
    """Entra cloud password policy: 8-256 chars, no Unicode, 3 of 4 character classes."""
    if not 8 <= len(password) <= 256:
        return False
    if any(not (c.isascii() and (c.isalnum() or c in _PASSWORD_SYMBOLS)) for c in password):
        return False
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(c in _PASSWORD_SYMBOLS for c in password),
    ]
    return sum(classes) >= 3


def upn_is_valid(upn: str) -> bool:
    """UPN policy: allowed characters, one '@', no '.' right before it, length limits."""
    if upn.count("@") != 1 or len(upn) > 113:
        return False
    local, domain = upn.split("@")
    return (
        0 < len(local) <= 64
        and 0 < len(domain) <= 48
        and bool(_UPN_LOCAL_RE.match(local))
        and not local.endswith(".")
        and bool(_DOMAIN_RE.match(domain))
    )


def _upn_error(message: str) -> GraphError:
    return bad_request(
        message,
        details=[{"code": "InvalidValue", "message": message, "target": "userPrincipalName"}],
    )


def _apply(tenant: Tenant, props: dict[str, Any], body: Mapping[str, Any]) -> str | None:
    """Validate and copy writable properties; returns a new password if one was given."""
    password: str | None = None
    for raw_key, value in body.items():
        if "@odata." in raw_key:
            continue
        if raw_key.startswith("extension_"):
            props[raw_key] = value
            continue
        key = _DECLARED.get(raw_key.lower())
        if key is None:
            continue  # a navigation binding (manager@odata.bind, ...): not modelled
        if key == "accountEnabled":
            if not isinstance(value, bool):
                raise bad_request(invalid_property_message(key))
            props[key] = value
        elif key == "displayName":
            if not isinstance(value, str) or not value.strip() or len(value) > 256:
                raise bad_request(invalid_property_message(key))
            props[key] = value
        elif key == "mailNickname":
            if not isinstance(value, str) or not value or len(value) > 64 or _NICKNAME_BAD.search(value):
                raise bad_request(invalid_property_message(key))
            props[key] = value
        elif key == "passwordProfile":
            if not isinstance(value, Mapping) or not isinstance(value.get("password"), str):
                raise bad_request(required_property_message(key))
            if not password_complex_enough(value["password"]):
                raise bad_request(MSG_PASSWORD_COMPLEXITY)
            password = value["password"]
        elif key == "userPrincipalName":
            if not isinstance(value, str) or not upn_is_valid(value):
                raise _upn_error(MSG_UPN_INVALID)
            if not tenant.verified_domain(value.split("@", 1)[1]):
                raise _upn_error(MSG_UPN_DOMAIN)
            props[key] = value
        elif key == "usageLocation":
            if value is not None and not (isinstance(value, str) and re.fullmatch(r"[A-Za-z]{2}", value)):
                raise bad_request(invalid_property_message(key))
            props[key] = value.upper() if isinstance(value, str) else None
        elif key == "onPremisesExtensionAttributes":
            props[key] = _merged_extension_attributes(props.get(key), value)
        elif key in ("businessPhones", "otherMails", "identities"):
            if not isinstance(value, list):
                raise bad_request(invalid_property_message(key))
            props[key] = value
        else:
            expected = USER_PROPERTY_TYPES.get(key)
            if expected == "Edm.String" and value is not None and not isinstance(value, str):
                raise bad_request(invalid_property_message(key))
            if key == "employeeType" and isinstance(value, str) and len(value) > 64:
                raise bad_request(invalid_property_message(key))
            props[key] = value
    return password


def _merged_extension_attributes(current: Any, update: Any) -> dict[str, Any]:
    if not isinstance(update, Mapping):
        raise bad_request(invalid_property_message("onPremisesExtensionAttributes"))
    merged = dict(current) if isinstance(current, Mapping) else {k: None for k in EXTENSION_ATTRIBUTE_KEYS}
    canonical = {k.lower(): k for k in EXTENSION_ATTRIBUTE_KEYS}
    for key, value in update.items():
        if "@odata." in key:
            continue
        name = canonical.get(key.lower())
        if name is None or (value is not None and (not isinstance(value, str) or len(value) > 1024)):
            raise bad_request(invalid_property_message("onPremisesExtensionAttributes"))
        merged[name] = value
    return merged


def create_user(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    body = req.json_object()
    present = {k.lower(): k for k in body}
    for prop in REQUIRED_ON_CREATE:
        if prop.lower() not in present or body[present[prop.lower()]] is None:
            raise bad_request(required_property_message(prop))
    upn = body[present["userprincipalname"]]
    user_id = str(uuid.uuid4())
    props = default_user_props(user_id, upn if isinstance(upn, str) else "", "")
    password = _apply(tenant, props, body)
    conflict = tenant.upn_taken(props["userPrincipalName"])
    if conflict is not None:
        raise bad_request(
            MSG_DUPLICATE_UPN,
            details=[
                {"code": "ObjectConflict", "message": MSG_DUPLICATE_UPN, "target": "userPrincipalName"},
                {"code": "ConflictingObjects", "message": MSG_DUPLICATE_UPN, "target": f"User_{conflict.id}"},
            ],
        )
    if not props["identities"]:
        props["identities"] = [
            {
                "signInType": "userPrincipalName",
                "issuer": tenant.initial_domain,
                "issuerAssignedId": props["userPrincipalName"],
            }
        ]
    lag = tenant.effective_lag()
    tenant.insert_user(props, password, visible_after=time.monotonic() + lag if lag > 0 else 0.0)
    result = {"@odata.context": entity_context("users", None), **user_view(props, None)}
    return SimResponse(201, result)


def get_user(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    record = find_user(tenant, params["id"])
    select = checked_select(req, USER_PROPERTIES, "user")
    return SimResponse(200, {"@odata.context": entity_context("users", select), **user_view(record.props, select)})


def _filtered_users(tenant: Tenant, req: SimRequest) -> list[Mapping[str, Any]]:
    # Filter the stored props directly: absent properties resolve to null anyway.
    users = [r.props for r in tenant.user_records.values() if tenant.is_visible(r)]
    search = req.query.get("$search")
    if search is not None:
        if not req.eventual:
            raise unsupported_query(MSG_SEARCH_NEEDS_EVENTUAL)
        users = [u for u in users if _search_matches(u, search)]
    filtered = apply_filter(users, req.query.get("$filter"), USER_FILTERS.checker(req))
    result = list(filtered)
    orderby = req.query.get("$orderby")
    if orderby:
        if req.query.get("$filter") is not None and not advanced_query(req):
            raise unsupported_query("Sorting not supported for current query.")
        field, _, direction = orderby.strip().partition(" ")
        result.sort(
            key=lambda u: str(u.get(field) or "").lower(),
            reverse=direction.strip().lower() == "desc",
        )
    return result


def _search_matches(user: Mapping[str, Any], search: str) -> bool:
    # $search="displayName:adele" (tokenised prefix search in Graph; substring here).
    clauses = [c.strip().strip('"') for c in re.split(r"\s+(?:OR|AND)\s+", search.strip().strip('"'))]
    for clause in clauses:
        prop, _, term = clause.partition(":")
        value = user.get(prop.strip())
        if isinstance(value, str) and term.strip().lower() in value.lower():
            return True
    return False


def list_users(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    select = checked_select(req, USER_PROPERTIES, "user")
    users = _filtered_users(tenant, req)
    items = [user_view(u, select) for u in users]
    return SimResponse(200, collection(req, list_context("users", select), items))


def count_users(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    if not req.eventual:
        raise bad_request(MSG_COUNT_UNSUPPORTED)
    return SimResponse(200, str(len(_filtered_users(tenant, req))))


def _check_sensitive_update(req: SimRequest, record: UserRecord, body: Mapping[str, Any]) -> None:
    """App-only updates of sensitive properties follow Microsoft's tables (sensitive.py, user-update.md)."""
    keys = {k.lower() for k in body if "@" not in k}
    if "passwordprofile" in keys:
        # user-update.md: "In app-only scenarios, the calling app must be assigned a supported permission and at
        # least the User Administrator Microsoft Entra role" - and "Who can reset passwords" decides for admins.
        req.auth.require_sensitive(record.id, RESET_PASSWORDS, always_needs_role=True)
    if keys & (SENSITIVE_PROPERTIES - {"passwordprofile"}):
        req.auth.require_sensitive(record.id, SENSITIVE_ACTIONS)


def update_user(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    record = find_user(tenant, params["id"])
    body = req.json_object()
    _check_sensitive_update(req, record, body)
    props = dict(record.props)
    password = _apply(tenant, props, body)
    conflict = tenant.upn_taken(props["userPrincipalName"], except_id=record.id)
    if conflict is not None:
        raise bad_request(
            MSG_DUPLICATE_UPN,
            details=[{"code": "ObjectConflict", "message": MSG_DUPLICATE_UPN, "target": "userPrincipalName"}],
        )
    if password is not None:
        record.password = password
        # An admin's reset counts as a change of the password (assumption, BEHAVIOUR.md section 9).
        props["lastPasswordChangeDateTime"] = iso_now()
    record.props = props
    return SimResponse(204)


def delete_user(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    record = find_user(tenant, params["id"])
    # user-delete.md: in app-only scenarios User.ReadWrite.All "isn't enough privilege to delete users with
    # privileged administrative roles"; the app needs a role from "Who can perform sensitive actions".
    req.auth.require_sensitive(record.id, SENSITIVE_ACTIONS)
    if not tenant.accept_deletes_without_effect:
        tenant.soft_delete_user(record)
    return SimResponse(204)


def revoke_sessions(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    record = find_user(tenant, params["id"])
    stamp = iso_now()
    record.props["signInSessionsValidFromDateTime"] = stamp
    record.revocations.append(stamp)
    return SimResponse(
        200,
        {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": True},
    )


def send_mail(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    record = find_user(tenant, params["id"])
    if not record.has_mailbox:
        # Exchange Online answers for a user without a mailbox (a user created through Graph has none until
        # licensed): see BEHAVIOUR.md for the recorded responses.
        raise GraphError(
            404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
        )
    body = req.json_object()
    message = body.get("message") or body.get("Message")
    if not isinstance(message, Mapping):
        raise bad_request("Required property 'message' is missing.", code="ErrorInvalidParameter")
    recipients = message.get("toRecipients") or []
    if not isinstance(recipients, list) or not recipients:
        raise bad_request(
            "At least one recipient is not valid., A message can't be sent because it contains no recipients.",
            code="ErrorInvalidRecipients",
        )
    # Graph reads action parameters case-insensitively; msgraph-sdk writes this one as "SaveToSentItems".
    save = next((v for k, v in body.items() if k.lower() == "savetosentitems"), True)
    tenant.sent.append(SentMessage(record.id, record.upn, dict(message), bool(save), iso_now(precise=True)))
    return SimResponse(202)


def directory_role_view(tenant: Tenant, role_template_id: str) -> dict[str, Any]:
    """A directoryRole object (the activated role) as memberOf lists it (json-batching.md response example 1)."""
    definition = tenant.role_definitions.get(role_template_id, {})
    return {
        "@odata.type": "#microsoft.graph.directoryRole",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"directoryRole:{tenant.id}:{role_template_id}")),
        "deletedDateTime": None,
        "description": definition.get("description"),
        "displayName": definition.get("displayName"),
        "roleTemplateId": role_template_id,
    }


def _group_entry(group: GroupRecord) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.group", **group.props}


def _with_select(req: SimRequest, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    select = parse_select(req.query.get("$select"))
    if not select:
        return items
    wanted = {s.lower() for s in select} | {"@odata.type"}
    return [{k: v for k, v in item.items() if k.lower() in wanted} for item in items]


def member_of(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    """Direct groups, and the directory roles the user holds directly (memberOf lists directoryRole objects)."""
    record = find_user(tenant, params["id"])
    items = [_group_entry(g) for g in tenant.groups_of(record.id)]
    items += [directory_role_view(tenant, r) for r in sorted(tenant.roles_of(record.id, include_groups=False))]
    return SimResponse(200, collection(req, list_context("directoryObjects", None), _with_select(req, items)))


def transitive_member_of(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    """Groups through nesting, and directory roles held directly or through role-assignable groups."""
    record = find_user(tenant, params["id"])
    items = [_group_entry(g) for g in tenant.groups_of(record.id, transitive=True)]
    items += [directory_role_view(tenant, r) for r in sorted(tenant.roles_of(record.id))]
    return SimResponse(200, collection(req, list_context("directoryObjects", None), _with_select(req, items)))


def register(router: Router) -> None:
    router.add("POST", "/users", create_user)
    router.add("GET", "/users", list_users)
    router.add("GET", "/users/$count", count_users)
    router.add("GET", "/users/{id}", get_user)
    router.add("PATCH", "/users/{id}", update_user)
    router.add("DELETE", "/users/{id}", delete_user)
    router.add("POST", "/users/{id}/revokeSignInSessions", revoke_sessions)
    router.add("POST", "/users/{id}/sendMail", send_mail)
    router.add("GET", "/users/{id}/memberOf", member_of)
    router.add("GET", "/users/{id}/transitiveMemberOf", transitive_member_of)
