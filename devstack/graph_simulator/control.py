"""HTTP control surface under /_simulator/ for other processes (local runner, benchmarks).

Unauthenticated on purpose: the simulator only listens on loopback. Request
bodies accept camelCase or snake_case keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from .apps import DEV_APP_ID
from .faults import FaultRule
from .licences import Sku, entra_id_p2
from .messages import SimResponse
from .state import LAG_STATUSES

if TYPE_CHECKING:
    from .simulator import GraphSimulator

PREFIX = "/_simulator"


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _pick(data: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if name in data:
            return data[name]
    return default


def _body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ControlError(400, f"invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ControlError(400, "JSON object expected")
    return data


def handle(sim: GraphSimulator, method: str, path: str, query: str, raw: bytes) -> SimResponse:
    try:
        status, body = _route(sim, method, path, parse_qs(query), raw)
    except ControlError as err:
        status, body = err.status, {"error": {"code": "SimulatorControlError", "message": err.message}}
    except (KeyError, ValueError, TypeError) as err:
        status, body = 400, {"error": {"code": "SimulatorControlError", "message": str(err)}}
    return SimResponse(status, body)


def _route(sim: GraphSimulator, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any]:
    parts = [unquote(p) for p in path[len(PREFIX) :].strip("/").split("/") if p]
    key = (method, parts[0] if parts else "")
    if key == ("GET", ""):
        return 200, sim.info()
    if parts and parts[0] == "tenants":
        return _tenants(sim, method, parts[1:], query, raw)
    if parts and parts[0] == "faults":
        return _faults(sim, method, parts[1:], raw)
    if key == ("GET", "counters"):
        return 200, sim.counters.snapshot()
    if key == ("DELETE", "counters"):
        sim.reset_counters()
        return 204, None
    if key == ("GET", "replication-lag"):
        return 200, {"seconds": sim.replication_lag_seconds}
    if key in (("PUT", "replication-lag"), ("POST", "replication-lag")):
        sim.replication_lag_seconds = float(_body(raw)["seconds"])
        return 200, {"seconds": sim.replication_lag_seconds}
    if key == ("GET", "clock"):
        return 200, {"offsetSeconds": sim.clock_offset, "now": sim.clock.now().isoformat()}
    if key in (("PUT", "clock"), ("PATCH", "clock")):
        data = _body(raw)
        if "advanceSeconds" in data or "advance_seconds" in data:
            sim.advance(float(_pick(data, "advanceSeconds", "advance_seconds")))
        if "offsetSeconds" in data or "offset_seconds" in data:
            sim.clock_offset = float(_pick(data, "offsetSeconds", "offset_seconds"))
        return 200, {"offsetSeconds": sim.clock_offset, "now": sim.clock.now().isoformat()}
    if key == ("GET", "served"):
        return 200, {
            "served": [s._asdict() for s in sorted(sim.served)],
            "denied": [d._asdict() for d in sorted(sim.denied)],
        }
    if key == ("DELETE", "served"):
        sim.reset_served()
        return 204, None
    if key == ("POST", "apps"):
        data = _body(raw)
        sim.register_app(_pick(data, "clientId", "client_id", "appId"), _pick(data, "displayName", "display_name", default="app"))
        return 201, {"apps": dict(sim.apps)}
    if key == ("POST", "reset"):
        sim.reset_faults()
        sim.reset_counters()
        sim.reset_served()
        if _pick(_body(raw), "tenants", default=False):
            for tenant_id in list(sim.tenants):
                sim.remove_tenant(tenant_id)
        return 204, None
    raise ControlError(404, f"no control route {method} {path}")


def _tenants(
    sim: GraphSimulator,
    method: str,
    parts: list[str],
    query: dict[str, list[str]],
    raw: bytes,
) -> tuple[int, Any]:
    if not parts:
        if method == "GET":
            return 200, {
                "value": [
                    {"id": t.id, "displayName": t.display_name, "initialDomain": t.initial_domain} for t in sim.tenants.values()
                ]
            }
        if method == "POST":
            data = _body(raw)
            tenant = sim.add_tenant(
                tenant_id=_pick(data, "tenantId", "tenant_id", "id"),
                initial_domain=_pick(data, "initialDomain", "initial_domain", default="contoso.onmicrosoft.com"),
                display_name=_pick(data, "displayName", "display_name", default="Contoso"),
                extra_verified_domains=_pick(data, "extraVerifiedDomains", "extra_verified_domains", default=()),
                consent=bool(_pick(data, "consent", default=True)),
            )
            _patch_tenant(sim, tenant.id, data)
            return 201, {"id": tenant.id, "initialDomain": tenant.initial_domain}
        raise ControlError(405, "method not allowed")
    try:
        tenant = sim.tenant(parts[0])
    except KeyError as exc:
        raise ControlError(404, f"no tenant {parts[0]}") from exc
    rest = parts[1:]
    if not rest:
        if method == "GET":
            return 200, tenant.dump()
        if method == "DELETE":
            sim.remove_tenant(tenant.id)
            return 204, None
        if method == "PATCH":
            _patch_tenant(sim, tenant.id, _body(raw))
            return 200, tenant.dump()
        raise ControlError(405, "method not allowed")
    data = _body(raw) if method in ("POST", "PUT", "PATCH") else {}
    if rest == ["groups"] and method == "POST":
        gid = tenant.add_group(
            _pick(data, "displayName", "display_name"),
            _pick(data, "id", "groupId", "group_id"),
            description=_pick(data, "description"),
            members=_pick(data, "members", default=()),
            owners=_pick(data, "owners", default=()),
            is_assignable_to_role=bool(_pick(data, "isAssignableToRole", "is_assignable_to_role", default=False)),
        )
        return 201, {"id": gid}
    if rest == ["users"] and method == "POST":
        known = {"userPrincipalName", "upn", "displayName", "display_name", "id", "userId", "user_id"}
        known |= {"hasMailbox", "has_mailbox", "roles"}
        extra = {k: v for k, v in data.items() if k not in known}
        uid = tenant.add_user(
            _pick(data, "userPrincipalName", "upn"),
            _pick(data, "displayName", "display_name"),
            user_id=_pick(data, "id", "userId", "user_id"),
            has_mailbox=bool(_pick(data, "hasMailbox", "has_mailbox", default=False)),
            **extra,
        )
        for role in _pick(data, "roles", default=()):
            tenant.assign_role(uid, role)
        return 201, {"id": uid}
    if len(rest) == 3 and rest[0] == "users" and rest[2] == "mailbox" and method in ("PUT", "PATCH"):
        tenant.set_mailbox(rest[1], bool(_pick(data, "hasMailbox", "has_mailbox", default=True)))
        return 200, {"id": rest[1], "hasMailbox": bool(_pick(data, "hasMailbox", "has_mailbox", default=True))}
    if rest == ["roleAssignments"] and method == "POST":
        ra = tenant.assign_role(_pick(data, "principalId", "principal_id"), _pick(data, "role", "roleDefinitionId"))
        return 201, {"id": ra}
    if rest == ["consent"] and method in ("PUT", "POST"):
        sp = tenant.consent(
            _pick(data, "appId", "app_id", "clientId", default=DEV_APP_ID),
            _pick(data, "permissions"),
            directory_roles=_pick(data, "directoryRoles", "directory_roles"),
        )
        return 200, {"servicePrincipalId": sp.id, "permissions": sorted(sp.permissions)}
    if rest == ["consent"] and method == "DELETE":
        tenant.revoke_consent(query.get("appId", [DEV_APP_ID])[0])
        return 204, None
    if rest == ["domains"] and method == "POST":
        tenant.add_domain(_pick(data, "name"), bool(_pick(data, "verified", "isVerified", default=True)))
        return 201, {"name": _pick(data, "name")}
    if rest == ["roleDefinitions"] and method == "POST":
        rid = tenant.add_role_definition(
            _pick(data, "displayName", "display_name"),
            role_id=_pick(data, "id", "roleId", "role_id"),
            description=_pick(data, "description", default=""),
            allowed_resource_actions=_pick(data, "allowedResourceActions", default=()),
        )
        return 201, {"id": rid}
    if rest == ["token"] and method in ("GET", "POST"):
        lifetime = _pick(data, "lifetimeSeconds", "lifetime_s", default=None)
        if lifetime is None:
            lifetime = int(query.get("lifetime", ["3600"])[0])
        roles = _pick(data, "roles")
        token = sim.token_for(tenant.id, int(lifetime), roles=roles)
        return 200, {"accessToken": token, "tokenType": "Bearer"}
    raise ControlError(404, f"no control route {method} /tenants/{'/'.join(parts)}")


def _patch_tenant(sim: GraphSimulator, tenant_id: str, data: Mapping[str, Any]) -> None:
    tenant = sim.tenant(tenant_id)
    with sim.lock:
        if any(k in data for k in ("replicationLagSeconds", "replication_lag_seconds")):
            lag = _pick(data, "replicationLagSeconds", "replication_lag_seconds")
            tenant.replication_lag_seconds = None if lag is None else float(lag)
        flag = _pick(data, "acceptDeletesWithoutEffect", "accept_deletes_without_effect")
        if flag is not None:
            tenant.accept_deletes_without_effect = bool(flag)
        replace = _pick(data, "tapReplaceExisting", "tap_replace_existing")
        if replace is not None:
            tenant.tap_replace_existing = bool(replace)
        policy = _pick(data, "tapPolicy", "tap_policy")
        if policy:
            tenant.tap_policy = tenant.tap_policy.updated(policy)
        lag_status = _pick(data, "lagStatus", "lag_status")
        if lag_status is not None:
            if str(lag_status) not in LAG_STATUSES:
                raise ControlError(400, f"lagStatus must be one of {LAG_STATUSES}")
            tenant.lag_status = str(lag_status)
        if any(k in data for k in ("appDirectoryRoles", "app_directory_roles")):
            tenant.set_app_directory_roles(_pick(data, "appDirectoryRoles", "app_directory_roles"))
        if any(k in data for k in ("appPermissions", "app_permissions")):
            tenant.app_permissions = _pick(data, "appPermissions", "app_permissions")
        skus = _pick(data, "subscribedSkus", "skus")
        if skus is not None:
            tenant.set_skus(_sku(s) for s in skus)


def _sku(data: Any) -> Sku:
    """"AAD_PREMIUM_P2" (the built-in one) or {skuId, skuPartNumber, servicePlans: {name: id}, capabilityStatus}."""
    if data == "AAD_PREMIUM_P2":
        return entra_id_p2()
    if isinstance(data, Mapping):
        return Sku(
            str(data["skuId"]),
            str(data["skuPartNumber"]),
            dict(data.get("servicePlans", {})),
            str(data.get("capabilityStatus", "Enabled")),
        )
    raise ControlError(400, f"unknown SKU {data!r}")


def _faults(sim: GraphSimulator, method: str, parts: list[str], raw: bytes) -> tuple[int, Any]:
    if parts:
        if method == "DELETE" and len(parts) == 1:
            if sim.faults.remove(parts[0]):
                return 204, None
            raise ControlError(404, f"no fault rule {parts[0]}")
        raise ControlError(404, "no such faults route")
    if method == "GET":
        return 200, sim.faults.snapshot()
    if method == "DELETE":
        sim.reset_faults()
        return 204, None
    data = _body(raw)
    if method == "PUT":
        if "seed" in data:
            sim.faults.seed(int(data["seed"]))
        sim.faults.load(data.get("rules", []), replace=True)
        return 200, sim.faults.snapshot()
    if method == "POST":
        rule = sim.faults.add(FaultRule.from_dict(data))
        return 201, rule.to_dict()
    raise ControlError(405, "method not allowed")
