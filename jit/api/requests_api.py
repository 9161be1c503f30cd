"""Requests and grants: each handler parses the call, asks a service, and shapes the answer."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import azure.functions as func
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from jit.api.http import Call, answer, parse
from jit.api.schemas import parse_grant_request
from jit.api.views import grant_json, health_json
from jit.domain.caller import AppRole, Caller
from jit.domain.errors import FieldError, Forbidden, NotFound, ValidationFailed
from jit.domain.grant import ExtensionState, Grant, Status
from jit.domain.progress import CredentialKind
from jit.domain.tenant import ENTRA
from jit.services import templates
from jit.services.access_backend import BackendProvider, DirectoryError, Health
from jit.services.intake import IdempotencyClaim

_MAX_IDEMPOTENCY_KEY = 255


class RevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)] = "revoked on request"


class ExtendBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    endDateTime: AwareDatetime
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


def grant_answer(call: Call, grant: Grant, status: int | None = None, extra: dict[str, Any] | None = None) -> func.HttpResponse:
    """200 for a settled grant; 202 with Location and Retry-After while it is moving (towards Active, or out of
    access), which is the asynchronous pattern Power Automate's HTTP action follows by itself. A grant scheduled
    for later says to come back at its start, not in a few seconds."""
    settings = call.services.settings
    headers = {"Location": call.absolute(f"/api/jit/requests/{grant.id}")}
    pending = grant.status.in_progress
    if pending:
        wait = settings.poll_interval_seconds
        if grant.status is Status.SCHEDULED:
            until_start = (grant.request.start - call.services.clock.now()).total_seconds()
            wait = max(wait, int(until_start) + 1)
        headers["Retry-After"] = str(wait)
    return answer(grant_json(grant) | (extra or {}), status or (202 if pending else 200), headers)


def visible(caller: Caller, grant: Grant) -> Grant:
    """A requester sees its own grants; approvers and admins see all. Not allowed to see answers as not found."""
    if grant.requester_id == caller.id or caller.has(AppRole.APPROVER, AppRole.ADMIN):
        return grant
    raise NotFound(f"grant {grant.id} not found")


def _own_or_admin(caller: Caller, grant: Grant) -> Grant:
    visible(caller, grant)
    if grant.requester_id != caller.id and not caller.is_admin:
        raise Forbidden("only the requester or a Jit.Admin may do this")
    return grant


def _grant(call: Call) -> Grant:
    return visible(call.caller, call.services.grants.get(call.path("id")))


# Requests ---------------------------------------------------------------------------------------------------------


def create(call: Call) -> func.HttpResponse:
    services = call.services
    caller = call.require(AppRole.REQUESTER, AppRole.ADMIN)
    raw = call.body()
    claim = _idempotency_claim(call, raw, caller)
    request_raw = _with_template(raw, services)
    limits = services.settings.limits
    submission = services.intake.submit(
        lambda now: parse_grant_request(request_raw, now=now, limits=limits), caller=caller, claim=claim
    )
    return grant_answer(call, submission.grant, status=202)


def assess(call: Call) -> func.HttpResponse:
    """What policy would say of a request, without storing it: the portal shows it next to the fields."""
    services = call.services
    caller = call.require(AppRole.REQUESTER, AppRole.ADMIN)
    request_raw = _with_template(call.body(), services)
    limits = services.settings.limits
    assessment = services.intake.assess(lambda now: parse_grant_request(request_raw, now=now, limits=limits), caller=caller)
    request = assessment.request
    return answer(
        {
            "tenantId": request.tenant_id,
            "directory": request.directory,
            "startDateTime": request.start.isoformat().replace("+00:00", "Z"),
            "endDateTime": request.end.isoformat().replace("+00:00", "Z"),
            "allowed": not assessment.violations,
            "violations": [{"rule": v.rule, "detail": v.message} for v in assessment.violations],
            "needsApproval": bool(assessment.approval_reasons),
            "approvalReasons": assessment.approval_reasons,
        }
    )


def _with_template(raw: bytes, services: Any) -> bytes:
    """The body with its template applied (the request's own fields win); as given when it names none."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw  # the schema reports it
    tenant = None
    if isinstance(body, dict) and isinstance(body.get("tenantId"), str):
        registration = services.tenants.find(body["tenantId"])
        tenant = registration.id if registration else None
    expanded = templates.expand(services.templates, body, tenant)
    return raw if expanded is body else json.dumps(expanded).encode()


def _idempotency_claim(call: Call, raw: bytes, caller: Caller) -> IdempotencyClaim | None:
    key = call.req.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= _MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ValidationFailed([FieldError("Idempotency-Key", f"must be 1 to {_MAX_IDEMPOTENCY_KEY} printable characters")])
    try:
        # The same JSON written differently (spacing, key order) is the same request.
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = raw
    return IdempotencyClaim(scope=caller.id, key=key, fingerprint=hashlib.sha256(canonical).hexdigest())


async def get(call: Call) -> func.HttpResponse:
    """The grant; while it is not over, with its directory's health when the backend knows it (a grant waiting for
    an on-premises agent that stopped reporting says so)."""
    grant = await asyncio.to_thread(_grant, call)
    extra = None
    if not grant.status.is_final:
        health = await directory_health(call, grant.tenant_id, grant.request.directory or ENTRA)
        extra = {"directoryHealth": health_json(health)} if health is not None else None
    return await asyncio.to_thread(grant_answer, call, grant, None, extra)


async def directory_health(call: Call, tenant_id: str, directory: str) -> Health | None:
    """What the backend serving `directory` knows of its reachability; None when it says nothing (or none serves it)."""
    backends: BackendProvider = call.services.backends
    try:
        return await backends.backend(tenant_id, directory).health()
    except (LookupError, DirectoryError):
        return None


def list_grants(call: Call) -> func.HttpResponse:
    params = call.params
    services = call.services
    errors: list[FieldError] = []
    tenant = call.tenant_param(errors)
    status = None
    if params.get("status"):
        try:
            status = Status(params["status"])
        except ValueError:
            errors.append(FieldError("status", "must be one of " + ", ".join(s.value for s in Status)))
    top_text = params.get("top", "50")
    if not top_text.isdigit() or not 1 <= int(top_text) <= 100:
        errors.append(FieldError("top", "must be a whole number from 1 to 100"))
    if errors:
        raise ValidationFailed(errors)
    caller = call.caller
    # A requester lists its own grants; approvers and admins list all.
    own_only = None if caller.has(AppRole.APPROVER, AppRole.ADMIN) else caller.id
    page = services.grants.list(
        tenant_id=tenant,
        status=status,
        top=int(top_text),
        continuation_token=params.get("continuationToken") or None,
        requester_id=own_only,
    )
    body: dict[str, Any] = {"value": [grant_json(g) for g in page.grants], "continuationToken": page.continuation_token}
    if page.continuation_token:
        query = {k: v for k, v in params.items() if k != "continuationToken"}
        query["continuationToken"] = page.continuation_token
        body["nextLink"] = call.absolute("/api/jit/requests?" + urlencode(query))
    return answer(body)


def revoke(call: Call) -> func.HttpResponse:
    body = parse(RevokeBody, call.body())
    grant = _own_or_admin(call.caller, call.services.grants.get(call.path("id")))
    revoked = call.services.lifecycle.revoke(grant.id, actor=call.caller.actor, reason=body.reason, current=grant)
    return grant_answer(call, revoked)


def extend(call: Call) -> func.HttpResponse:
    body = parse(ExtendBody, call.body())
    grant = _own_or_admin(call.caller, call.services.grants.get(call.path("id")))
    extended = call.services.lifecycle.extend(
        grant.id, new_end=body.endDateTime, caller=call.caller, reason=body.reason, current=grant
    )
    return grant_answer(call, extended)


def approve(call: Call) -> func.HttpResponse:
    return _decide(call, approve=True)


def deny(call: Call) -> func.HttpResponse:
    return _decide(call, approve=False)


def _decide(call: Call, *, approve: bool) -> func.HttpResponse:
    body = parse(DecisionBody, call.body())
    grant = _grant(call)
    decided = call.services.lifecycle.decide(grant.id, approve=approve, caller=call.caller, comment=body.comment, current=grant)
    return grant_answer(call, decided)


def approvals(call: Call) -> func.HttpResponse:
    """The approver's inbox: requests and extensions waiting for a decision that this caller may make."""
    caller = call.require(AppRole.APPROVER, AppRole.ADMIN)
    services = call.services
    waiting: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(20):
        page = services.grants.list(tenant_id=None, status=None, top=100, continuation_token=token)
        for grant in page.grants:
            extension = grant.extension
            kind = None
            if grant.status is Status.AWAITING_APPROVAL:
                kind = "request"
            elif extension is not None and extension.state is ExtensionState.AWAITING_APPROVAL and grant.status is Status.ACTIVE:
                kind = "extension"
            if kind is None:
                continue
            view = grant_json(grant)
            view["approvalKind"] = kind
            view["approvalReasons"] = _reasons(grant, kind)
            refusal = _refusal(caller, grant)
            view["canDecide"] = refusal is None
            if refusal is not None:
                view["cannotDecideReason"] = refusal
            waiting.append(view)
        token = page.continuation_token
        if not token:
            break
    return answer({"value": waiting})


def _reasons(grant: Grant, kind: str) -> list[str]:
    if kind == "extension":
        return ["an extension of a grant whose roles need approval"]
    reason = grant.history[-1].reason if grant.history else ""
    return [r.strip() for r in reason.split("approval needed:", 1)[1].split(";")] if "approval needed:" in reason else [reason]


def _refusal(caller: Caller, grant: Grant) -> str | None:
    """Why this caller may not decide on the grant, or None when they may."""
    from jit.services.lifecycle import check_decider

    if not caller.is_person:
        return "decisions are made by people signed in with Entra ID, not by applications or keys"
    try:
        check_decider(grant, caller)
    except Forbidden as refused:
        return str(refused)
    return None


def credentials(call: Call) -> func.HttpResponse:
    """The grant's sign-in credential, exactly once: it is erased as it is handed out. `credential` says which kind
    it is (a Temporary Access Pass, or an on-premises one-time password); `temporaryAccessPass` repeats a pass's value
    for clients written before other kinds existed."""
    grant = _grant(call)
    handed = call.services.credentials.take(grant, call.caller)
    expires = _iso(handed.expires_at)
    body: dict[str, Any] = {
        "grantId": handed.grant_id,
        "userPrincipalName": handed.principal_name,
        "credential": {"kind": handed.kind.value, "value": handed.value, "expiresAt": expires},
        "expiresDateTime": expires,
        "isUsableOnce": handed.usable_once,
    }
    if handed.kind is CredentialKind.TEMPORARY_ACCESS_PASS:
        body["temporaryAccessPass"] = handed.value
    return answer(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def whoami(call: Call) -> func.HttpResponse:
    caller = call.caller
    return answer(
        {"id": caller.id, "name": caller.name, "kind": caller.kind.value, "roles": sorted(r.value for r in caller.roles)}
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


__all__ = ["DecisionBody", "ExtendBody", "RevokeBody", "grant_answer", "visible"]
