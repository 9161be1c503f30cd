"""/organization, /domains and /directory/deletedItems (soft-deleted users)."""

from __future__ import annotations

import time
from typing import Any

from ..errors import MSG_CONFLICTING_OBJECT, bad_request, not_found
from ..messages import SimRequest, SimResponse
from ..odata import apply_filter, parse_select, project
from ..routing import Router
from ..state import Domain, Tenant, UserRecord
from .common import collection, entity_context, full_user_view, list_context, user_view


def _verified_domain_view(domain: Domain) -> dict[str, Any]:
    return {
        "capabilities": "Email, OfficeCommunicationsOnline",
        "isDefault": domain.is_default,
        "isInitial": domain.is_initial,
        "name": domain.name,
        "type": "Managed",
    }


def _organization(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "displayName": tenant.display_name,
        "createdDateTime": tenant.created,
        "tenantType": "AAD",
        "countryLetterCode": "US",
        "verifiedDomains": [_verified_domain_view(d) for d in tenant.domains.values() if d.verified],
    }


def list_organization(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    select = parse_select(req.query.get("$select"))
    body = {
        "@odata.context": list_context("organization", select),
        "value": [project(_organization(tenant), select)],
    }
    return SimResponse(200, body)


def list_skus(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    select = parse_select(req.query.get("$select"))
    values = [project(sku.view(), select) for sku in tenant.skus]
    return SimResponse(200, {"@odata.context": list_context("subscribedSkus", select), "value": values})


def get_organization(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    if params["id"].lower() != tenant.id:
        raise not_found(params["id"])
    return SimResponse(200, {"@odata.context": entity_context("organization", None), **_organization(tenant)})


def _domain_view(domain: Domain) -> dict[str, Any]:
    return {
        "id": domain.name,
        "authenticationType": "Managed",
        "isAdminManaged": True,
        "isDefault": domain.is_default,
        "isInitial": domain.is_initial,
        "isRoot": True,
        "isVerified": domain.verified,
        "passwordNotificationWindowInDays": 14,
        "passwordValidityPeriodInDays": 2147483647,
        "supportedServices": ["Email", "OfficeCommunicationsOnline"] if domain.verified else [],
        "state": None,
    }


def list_domains(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    values = [_domain_view(d) for d in tenant.domains.values()]
    return SimResponse(200, {"@odata.context": list_context("domains", None), "value": values})


def get_domain(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    domain = tenant.domains.get(params["id"].lower())
    if domain is None:
        raise not_found(params["id"])
    return SimResponse(200, {"@odata.context": entity_context("domains", None), **_domain_view(domain)})


def _deleted_view(record: UserRecord, select: list[str] | None) -> dict[str, Any]:
    fields = select or None
    view = user_view(record.props, fields)
    if fields is None:
        view["deletedDateTime"] = record.props.get("deletedDateTime")
    return {"@odata.type": "#microsoft.graph.user", **view}


def _replicated(record: UserRecord) -> bool:
    # Right after a soft delete, replicas may not list the user in deletedItems yet (tenant replication lag).
    return time.monotonic() >= record.deleted_visible_after


def list_deleted_users(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    select = parse_select(req.query.get("$select"))
    records = [r for r in tenant.deleted_user_records.values() if _replicated(r)]
    views = apply_filter([full_user_view(r.props) for r in records], req.query.get("$filter"))
    ids = {v["id"] for v in views}
    items = [_deleted_view(r, select) for r in records if r.id in ids]
    context = list_context("directory/deletedItems/microsoft.graph.user", select)
    return SimResponse(200, collection(req, context, items))


def list_deleted_groups(tenant: Tenant, req: SimRequest, _: dict[str, str]) -> SimResponse:
    # Groups are never soft-deleted by the simulator (security groups are purged in Graph).
    context = list_context("directory/deletedItems/microsoft.graph.group", None)
    return SimResponse(200, {"@odata.context": context, "value": []})


def _deleted(tenant: Tenant, object_id: str) -> UserRecord:
    record = tenant.deleted_user_records.get(object_id.lower())
    if record is None or not _replicated(record):
        raise not_found(object_id)
    return record


def get_deleted(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    select = parse_select(req.query.get("$select"))
    record = _deleted(tenant, params["id"])
    body = {"@odata.context": entity_context("directoryObjects", None), **_deleted_view(record, select)}
    return SimResponse(200, body)


def purge_deleted(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    tenant.purge_user(_deleted(tenant, params["id"]))
    return SimResponse(204)


def restore_deleted(tenant: Tenant, req: SimRequest, params: dict[str, str]) -> SimResponse:
    record = _deleted(tenant, params["id"])
    if tenant.upn_taken(record.upn) is not None:
        raise bad_request(MSG_CONFLICTING_OBJECT)
    tenant.restore_user(record)
    body = {"@odata.context": entity_context("directoryObjects", None), **_deleted_view(record, None)}
    return SimResponse(200, body)


def register(router: Router) -> None:
    router.add("GET", "/organization", list_organization)
    router.add("GET", "/subscribedSkus", list_skus)
    router.add("GET", "/organization/{id}", get_organization)
    router.add("GET", "/domains", list_domains)
    router.add("GET", "/domains/{id}", get_domain)
    router.add("GET", "/directory/deletedItems/microsoft.graph.user", list_deleted_users)
    router.add("GET", "/directory/deletedItems/microsoft.graph.group", list_deleted_groups)
    router.add("GET", "/directory/deletedItems/{id}", get_deleted)
    router.add("DELETE", "/directory/deletedItems/{id}", purge_deleted)
    router.add("POST", "/directory/deletedItems/{id}/restore", restore_deleted)
