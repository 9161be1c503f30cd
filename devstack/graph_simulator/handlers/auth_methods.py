"""Temporary Access Pass: the tenant policy and a user's TAP methods."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import MSG_TAP_POLICY, GraphError, bad_request, not_found
from ..messages import SimRequest, SimResponse
from ..routing import Router
from ..state import TapRecord, Tenant, iso
from .common import find_user

# Real passes look like "+drkzqAD": letters, digits and a few symbols.
_TAP_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789+@#$%&*?"
_TAP_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"


def _parse_time(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _usability(props: dict[str, Any], now: datetime) -> tuple[bool, str]:
    start = _parse_time(props["startDateTime"])
    end = start + timedelta(minutes=int(props["lifetimeInMinutes"]))
    if now < start:
        return False, "NotYetValid"
    if now >= end:
        return False, "Expired"
    return True, "EnabledByPolicy"


def _view(tenant: Tenant, record: TapRecord, *, with_secret: bool) -> dict[str, Any]:
    props = dict(record.props)
    props["isUsable"], props["methodUsabilityReason"] = _usability(props, tenant.clock.now())
    if not with_secret:
        props["temporaryAccessPass"] = None  # only returned on creation
    return {"@odata.type": _TAP_TYPE, **props}


def _targeted(tenant: Tenant, user_id: str) -> bool:
    """In includeTargets (all_users, or a member of an included group) and in no excludeTargets group."""
    policy = tenant.tap_policy
    groups = {g.id for g in tenant.groups_of(user_id)}
    included = "all_users" in policy.include_targets or bool(groups & set(policy.include_targets))
    return included and not (groups & set(policy.exclude_targets))


def get_policy(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    if params["id"].lower() != "temporaryaccesspass":
        raise not_found(params["id"])
    body = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#authenticationMethodConfigurations/$entity",
        **tenant.tap_policy.to_graph(),
    }
    return SimResponse(200, body)


def create_tap(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    user = find_user(tenant, params["id"])
    body = req.json(allow_empty=True) or {}
    if not isinstance(body, dict):
        raise bad_request("Empty Payload. JSON content expected.", code="BadRequest")
    policy = tenant.tap_policy
    if policy.state != "enabled" or not _targeted(tenant, user.id):
        # The same refusal for a disabled method and for a user the policy does not target (azure-docs #111778).
        raise GraphError(400, "BadRequest", MSG_TAP_POLICY)
    lifetime = body.get("lifetimeInMinutes", policy.default_lifetime_minutes)
    if lifetime is None:
        lifetime = policy.default_lifetime_minutes
    if (
        not isinstance(lifetime, int)
        or isinstance(lifetime, bool)
        or not (policy.minimum_lifetime_minutes <= lifetime <= policy.maximum_lifetime_minutes)
    ):
        raise GraphError(
            400,
            "BadRequest",
            f"The lifetime of the Temporary Access Pass must be between "
            f"{policy.minimum_lifetime_minutes} and {policy.maximum_lifetime_minutes} minutes.",
        )
    usable_once = body.get("isUsableOnce", policy.is_usable_once)
    if usable_once is None:
        usable_once = policy.is_usable_once
    if not isinstance(usable_once, bool):
        raise bad_request("Invalid value specified for property 'isUsableOnce'.", code="BadRequest")
    if policy.is_usable_once and not usable_once:
        raise GraphError(
            400,
            "BadRequest",
            "The Temporary Access Pass policy only allows one-time use passes (isUsableOnce).",
        )
    created = iso(tenant.clock.now(), precise=True)
    start_raw = body.get("startDateTime")
    if start_raw is None:
        start = created
    else:
        try:
            start = _parse_time(str(start_raw)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError as exc:
            raise bad_request("Invalid value specified for property 'startDateTime'.", code="BadRequest") from exc
    existing = tenant.tap_records.get(user.id, [])
    if existing and not tenant.tap_replace_existing:
        raise GraphError(
            400,
            "BadRequest",
            "A Temporary Access Pass already exists for this user. Delete it before creating a new one.",
        )
    secret = "".join(secrets.choice(_TAP_ALPHABET) for _ in range(policy.default_length))
    record = TapRecord(
        user_id=user.id,
        props={
            "id": str(uuid.uuid4()),
            "temporaryAccessPass": secret,
            "createdDateTime": created,
            "startDateTime": start,
            "lifetimeInMinutes": lifetime,
            "isUsableOnce": usable_once,
        },
    )
    # Graph docs: a user has at most one TAP; creating another replaces it.
    tenant.tap_records[user.id] = [record]
    context = f"https://graph.microsoft.com/v1.0/$metadata#users('{user.id}')/authentication/temporaryAccessPassMethods/$entity"
    return SimResponse(201, {"@odata.context": context, **_view(tenant, record, with_secret=True)})


def list_taps(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    user = find_user(tenant, params["id"])
    values = [_view(tenant, r, with_secret=False) for r in tenant.tap_records.get(user.id, [])]
    context = f"https://graph.microsoft.com/v1.0/$metadata#users('{user.id}')/authentication/temporaryAccessPassMethods"
    return SimResponse(200, {"@odata.context": context, "value": values})


def _tap(tenant: Tenant, user_id: str, method_id: str) -> TapRecord:
    for record in tenant.tap_records.get(user_id, []):
        if record.props["id"] == method_id.lower():
            return record
    raise not_found(method_id)


def get_tap(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    user = find_user(tenant, params["id"])
    record = _tap(tenant, user.id, params["methodId"])
    return SimResponse(200, _view(tenant, record, with_secret=False))


def delete_tap(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    user = find_user(tenant, params["id"])
    record = _tap(tenant, user.id, params["methodId"])
    tenant.tap_records[user.id].remove(record)
    return SimResponse(204)


def register(router: Router) -> None:
    router.add(
        "GET",
        "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{id}",
        get_policy,
    )
    base = "/users/{id}/authentication/temporaryAccessPassMethods"
    router.add("GET", base, list_taps)
    router.add("POST", base, create_tap)
    router.add("GET", base + "/{methodId}", get_tap)
    router.add("DELETE", base + "/{methodId}", delete_tap)
