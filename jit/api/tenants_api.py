"""Tenants: onboarding (admins), the registry (everyone signed in: the request form's tenant picker), and what a
tenant offers (its roles and groups, read from its directory)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from jit.api.http import Call, answer, parse
from jit.api.requests_api import directory_health
from jit.api.schemas import DirectoryName
from jit.api.views import health_json
from jit.domain.caller import AppRole
from jit.domain.errors import FieldError, NotFound, ValidationFailed
from jit.domain.tenant import ENTRA, TenantRegistration
from jit.services.tenants import tenant_reference

Directory = DirectoryName


class OnboardBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    tenant: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253)]
    directories: Annotated[list[Directory], Field(min_length=1, max_length=10)] = [ENTRA]
    defaultDirectory: Directory | None = None


class ConfigureBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    directories: Annotated[list[Directory], Field(min_length=1, max_length=10)] | None = None
    defaultDirectory: Directory | None = None
    offboarded: bool | None = None


def registration_json(registration: TenantRegistration) -> dict[str, Any]:
    return {
        "id": registration.id,
        "displayName": registration.display_name,
        "initialDomain": registration.initial_domain,
        "domains": list(registration.domains),
        "state": registration.state.value,
        "directories": list(registration.directories),
        "defaultDirectory": registration.default_directory,
        "pimLicensed": registration.pim_licensed,
        "detail": registration.detail or None,
        "onboardedBy": registration.onboarded_by or None,
        "onboardedDateTime": _iso(registration.onboarded_at),
        "checkedDateTime": _iso(registration.checked_at),
    }


def list_tenants(call: Call) -> func.HttpResponse:
    call.require(AppRole.REQUESTER, AppRole.APPROVER, AppRole.ADMIN)
    services = call.services
    body: dict[str, Any] = {"value": [registration_json(r) for r in services.tenants.list()]}
    if call.caller.is_admin:
        body["pending"] = [{**p, "requestedAt": _iso(p.get("requestedAt"))} for p in services.tenants.pending()]
    return answer(body)


def onboard(call: Call) -> func.HttpResponse:
    caller = call.require(AppRole.ADMIN)
    body = parse(OnboardBody, call.body())
    reference = tenant_reference(body.tenant)
    default = body.defaultDirectory or body.directories[0]
    existing = call.services.onboarding.request(reference, caller=caller, directories=list(body.directories), default=default)
    location = {"Location": call.absolute(f"/api/jit/tenants/{reference}")}
    if existing is not None:
        return answer(registration_json(existing), 200, location)
    return answer(
        {"tenant": reference, "state": "Pending", "detail": "the directory is being asked who the tenant is"},
        202,
        {**location, "Retry-After": "2"},
    )


async def get(call: Call) -> func.HttpResponse:
    """The tenant's registration, with the health of each directory whose backend knows it (an on-premises site's
    agent heartbeat: when it last reported, and whether that is too long ago)."""
    await asyncio.to_thread(call.require, AppRole.REQUESTER, AppRole.APPROVER, AppRole.ADMIN)
    reference = tenant_reference(call.path("tenantId"), "tenantId")
    found = await asyncio.to_thread(call.services.tenants.find, reference)
    if found is not None:
        healths = {d: await directory_health(call, found.id, d) for d in found.directories}
        known = {d: health_json(h) for d, h in healths.items() if h is not None}
        return answer(registration_json(found) | ({"directoryHealth": known} if known else {}))
    return await asyncio.to_thread(_pending, call, reference)


def _pending(call: Call, reference: str) -> func.HttpResponse:
    services = call.services
    pending = services.tenants.pending_request(reference) if call.caller.is_admin else None
    if pending is None:
        raise NotFound(f"tenant {reference} is not onboarded")
    state = "Pending" if not pending.get("detail") else str(pending["detail"]).split(":", 1)[0]
    return answer({"tenant": reference, "state": state, "detail": pending.get("detail") or None}, 202, {"Retry-After": "2"})


def configure(call: Call) -> func.HttpResponse:
    caller = call.require(AppRole.ADMIN)
    body = parse(ConfigureBody, call.body())
    reference = tenant_reference(call.path("tenantId"), "tenantId")
    saved = call.services.onboarding.configure(
        reference, caller=caller, directories=body.directories, default=body.defaultDirectory, offboard=body.offboarded
    )
    return answer(registration_json(saved))


def check(call: Call) -> func.HttpResponse:
    call.require(AppRole.ADMIN)
    reference = tenant_reference(call.path("tenantId"), "tenantId")
    call.services.onboarding.recheck(reference)
    return answer(
        {"tenant": reference, "detail": "a check of the tenant is queued"},
        202,
        {"Location": call.absolute(f"/api/jit/tenants/{reference}")},
    )


async def roles(call: Call) -> func.HttpResponse:
    """The tenant's Entra role definitions, for forms' drop-downs (read live, cached a few minutes)."""
    registration = await _registration(call)
    catalog = await call.services.backends.backend(registration.id, ENTRA).catalog()
    call.services.catalog.remember(registration.id, catalog.roles)
    value = [
        {"id": d.id, "templateId": d.template_id, "displayName": d.display_name, "privileged": d.privileged}
        for d in catalog.roles
    ]
    return answer({"value": sorted(value, key=lambda d: d["displayName"].casefold())})


async def groups(call: Call) -> func.HttpResponse:
    """Groups of the tenant whose name starts with `search` (at least 2 characters), for the request form."""
    search = (call.params.get("search") or "").strip()
    if not 2 <= len(search) <= 100:
        raise ValidationFailed([FieldError("search", "must be 2 to 100 characters: the start of a group's name")])
    registration = await _registration(call)
    catalog = await call.services.backends.backend(registration.id, ENTRA).catalog(search)
    value = [{"id": g.id, "displayName": g.display_name, "isAssignableToRole": g.role_assignable} for g in catalog.groups]
    return answer({"value": value})


async def _registration(call: Call) -> TenantRegistration:
    await asyncio.to_thread(call.require, AppRole.REQUESTER, AppRole.APPROVER, AppRole.ADMIN)
    reference = tenant_reference(call.path("tenantId"), "tenantId")
    found: TenantRegistration = await asyncio.to_thread(call.services.tenants.resolve, reference)
    return found


def _iso(moment: Any) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None
