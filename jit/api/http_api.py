"""HTTP API v1 (blueprint). Each handler parses the request, calls a service, and shapes the answer."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode, urlsplit

import azure.functions as func
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from jit import bootstrap
from jit.api import problems
from jit.api.caller import caller as caller_of
from jit.api.schemas import TemplateBody, TemplateName, parse_grant_request
from jit.api.views import grant_json
from jit.domain.caller import AppRole, Caller
from jit.domain.errors import FieldError, Forbidden, NotFound, ValidationFailed
from jit.domain.grant import Grant, Status
from jit.domain.ids import normalize_tenant
from jit.domain.policy import Policy
from jit.domain.policy_document import PolicyBody, policy_json
from jit.domain.work import AuditEntry
from jit.services import templates
from jit.services.intake import IdempotencyClaim
from jit.services.policies import DEFAULT_SCOPE
from jit.services.progress import with_progress

log = logging.getLogger(__name__)

bp = func.Blueprint()
ModelT = TypeVar("ModelT", bound=BaseModel)
TEMPLATE_NAME: TypeAdapter[str] = TypeAdapter(TemplateName)

_JSON = "application/json"
_MAX_IDEMPOTENCY_KEY = 255


def _answer(handler: Callable[[], func.HttpResponse]) -> func.HttpResponse:
    try:
        return handler()
    except Exception as error:  # noqa: BLE001 - every error becomes a problem-details answer
        return problems.from_error(error)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=_JSON, headers=headers)


def _grant_answer(req: func.HttpRequest, grant: Grant, status: int | None = None) -> func.HttpResponse:
    """200 for a settled grant; 202 with Location and Retry-After while it is moving (towards Active, or out of
    access), which is the asynchronous pattern Power Automate's HTTP action follows by itself."""
    settings = bootstrap.services().settings
    location = _absolute(req, f"/api/jit/requests/{grant.id}")
    headers = {"Location": location}
    pending = grant.status.in_progress
    if pending:
        headers["Retry-After"] = str(settings.poll_interval_seconds)
    return _json(grant_json(grant), status or (202 if pending else 200), headers)


def _require(caller: Caller, *roles: AppRole) -> None:
    if not caller.has(*roles):
        raise Forbidden(f"this needs one of the app roles {', '.join(r.value for r in roles)}")


def _visible(caller: Caller, grant: Grant) -> Grant:
    """A requester sees its own grants; approvers and admins see all. Not allowed to see answers as not found."""
    if grant.requester_id == caller.id or caller.has(AppRole.APPROVER, AppRole.ADMIN):
        return grant
    raise NotFound(f"grant {grant.id} not found")


def _own_or_admin(caller: Caller, grant: Grant) -> Grant:
    _visible(caller, grant)
    if grant.requester_id != caller.id and not caller.is_admin:
        raise Forbidden("only the requester or a Jit.Admin may do this")
    return grant


def _absolute(req: func.HttpRequest, path: str) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}{path}" if parts.netloc else path


@bp.route(route="jit/requests", methods=["POST"])
def create_request(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _create(req))


def _create(req: func.HttpRequest) -> func.HttpResponse:
    services = bootstrap.services()
    raw = req.get_body()
    _check_body(req, raw, services.settings.max_body_bytes)
    caller = caller_of(req)
    _require(caller, AppRole.REQUESTER, AppRole.ADMIN)
    claim = _idempotency_claim(req, raw, caller)
    limits = services.settings.limits
    request_raw = _with_template(raw, services)
    submission = services.intake.submit(
        lambda now: parse_grant_request(request_raw, now=now, limits=limits), caller=caller, claim=claim
    )
    return _grant_answer(req, submission.grant, status=202)


def _with_template(raw: bytes, services: bootstrap.Services) -> bytes:
    """The body with its template applied (the request's own fields win); as given when it names none."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw  # the schema reports it
    tenant = normalize_tenant(body["tenantId"]) if isinstance(body, dict) and isinstance(body.get("tenantId"), str) else None
    expanded = templates.expand(services.templates, body, tenant)
    return raw if expanded is body else json.dumps(expanded).encode()


def _check_body(req: func.HttpRequest, raw: bytes, limit: int) -> None:
    content_type = (req.headers.get("Content-Type") or _JSON).split(";")[0].strip().lower()
    if content_type != _JSON and not content_type.endswith("+json"):
        raise ValidationFailed([FieldError("body", f"must be sent as {_JSON}, not {content_type}")])
    if len(raw) > limit:
        raise ValidationFailed([FieldError("body", f"must not exceed {limit} bytes")])


def _idempotency_claim(req: func.HttpRequest, raw: bytes, caller: Caller) -> IdempotencyClaim | None:
    key = req.headers.get("Idempotency-Key")
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


@bp.route(route="jit/requests/{id}", methods=["GET"])
def get_request(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _grant_answer(req, _visible(caller_of(req), bootstrap.services().grants.get(req.route_params["id"]))))


@bp.route(route="jit/requests", methods=["GET"])
def list_requests(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _list(req))


def _list(req: func.HttpRequest) -> func.HttpResponse:
    params = req.params
    errors: list[FieldError] = []
    tenant = None
    if params.get("tenantId"):
        tenant = normalize_tenant(params["tenantId"])
        if tenant is None:
            errors.append(FieldError("tenantId", "must be the tenant's GUID or its initial domain"))
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
    caller = caller_of(req)
    # A requester lists its own grants; approvers and admins list all.
    own_only = None if caller.has(AppRole.APPROVER, AppRole.ADMIN) else caller.id
    page = bootstrap.services().grants.list(
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
        body["nextLink"] = _absolute(req, "/api/jit/requests?" + urlencode(query))
    return _json(body)


class _RevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)] = "revoked on request"


@bp.route(route="jit/requests/{id}/revoke", methods=["POST"])
def revoke_request(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _revoke(req))


def _revoke(req: func.HttpRequest) -> func.HttpResponse:
    body = _parse(_RevokeBody, req.get_body())
    caller = caller_of(req)
    services = bootstrap.services()
    _own_or_admin(caller, services.grants.get(req.route_params["id"]))
    grant = services.lifecycle.revoke(req.route_params["id"], actor=caller.actor, reason=body.reason)
    return _grant_answer(req, grant)


class _ExtendBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    endDateTime: AwareDatetime
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


@bp.route(route="jit/requests/{id}/extend", methods=["POST"])
def extend_request(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _extend(req))


def _extend(req: func.HttpRequest) -> func.HttpResponse:
    body = _parse(_ExtendBody, req.get_body())
    services = bootstrap.services()
    caller = caller_of(req)
    _own_or_admin(caller, services.grants.get(req.route_params["id"]))
    grant = services.lifecycle.extend(
        req.route_params["id"],
        new_end=body.endDateTime,
        actor=caller.actor,
        reason=body.reason,
        max_duration=services.settings.limits.max_duration,
    )
    return _grant_answer(req, grant)


def _parse(model: type[ModelT], raw: bytes) -> ModelT:
    try:
        return model.model_validate_json(raw or b"{}")
    except PydanticValidationError as invalid:
        raise ValidationFailed(
            [FieldError(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in invalid.errors()]
        ) from None


class _DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


@bp.route(route="jit/requests/{id}/approve", methods=["POST"])
def approve_request(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _decide(req, approve=True))


@bp.route(route="jit/requests/{id}/deny", methods=["POST"])
def deny_request(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _decide(req, approve=False))


def _decide(req: func.HttpRequest, *, approve: bool) -> func.HttpResponse:
    body = _parse(_DecisionBody, req.get_body())
    services = bootstrap.services()
    caller = caller_of(req)
    _visible(caller, services.grants.get(req.route_params["id"]))
    grant = services.lifecycle.decide(
        req.route_params["id"], approve=approve, caller=caller, comment=body.comment, policy_for=services.policies.effective
    )
    return _grant_answer(req, grant)


@bp.route(route="jit/policies/{scope}", methods=["GET"])
def get_policy(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _get_policy(req))


def _policy_scope(req: func.HttpRequest) -> str:
    scope = req.route_params["scope"]
    if scope.lower() == DEFAULT_SCOPE:
        return DEFAULT_SCOPE
    tenant = normalize_tenant(scope)
    if tenant is None:
        raise ValidationFailed([FieldError("scope", "must be 'default', a tenant GUID or its initial domain")])
    return tenant


def _get_policy(req: func.HttpRequest) -> func.HttpResponse:
    services = bootstrap.services()
    _require(caller_of(req), AppRole.REQUESTER, AppRole.APPROVER, AppRole.ADMIN)
    scope = _policy_scope(req)
    # The policy in force for this scope: its own, else the default one, else the built-in default.
    policy = services.policies.for_scope(scope) or (services.policies.effective(scope) if scope != DEFAULT_SCOPE else None)
    policy = policy or Policy()
    return _json(policy_json(policy), headers={"ETag": f'"{policy.version}"'})


@bp.route(route="jit/policies/{scope}", methods=["PUT"])
def put_policy(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _put_policy(req))


def _put_policy(req: func.HttpRequest) -> func.HttpResponse:
    services = bootstrap.services()
    caller = caller_of(req)
    _require(caller, AppRole.ADMIN)
    scope = _policy_scope(req)
    body = _parse(PolicyBody, req.get_body())
    expected = None
    if_match = (req.headers.get("If-Match") or "").strip().strip('"')
    if if_match:
        if not if_match.isdigit():
            raise ValidationFailed([FieldError("If-Match", "must be the policy's version, as its ETag gave it")])
        expected = int(if_match)
    policy = services.policies.save(scope, body, by=caller.actor, at=services.clock.now(), expected_version=expected)
    services.audit.append(
        AuditEntry(services.clock.now(), scope, "", caller.actor, "policy.updated", detail=f"version {policy.version}")
    )
    return _json(policy_json(policy), headers={"ETag": f'"{policy.version}"'})


def _template_scope(req: func.HttpRequest) -> str:
    given = req.params.get("tenantId")
    if not given:
        return templates.GLOBAL
    tenant = normalize_tenant(given)
    if tenant is None:
        raise ValidationFailed([FieldError("tenantId", "must be the tenant's GUID or its initial domain")])
    return tenant


def _template_name(req: func.HttpRequest) -> str:
    name = str(req.route_params["name"])
    try:
        TEMPLATE_NAME.validate_python(name)
    except PydanticValidationError:
        raise ValidationFailed([FieldError("name", "letters, digits, space, '.', '_' or '-', at most 64")]) from None
    return name


@bp.route(route="jit/templates", methods=["GET"])
def list_templates(req: func.HttpRequest) -> func.HttpResponse:
    def answer() -> func.HttpResponse:
        services = bootstrap.services()
        _require(caller_of(req), AppRole.REQUESTER, AppRole.APPROVER, AppRole.ADMIN)
        scope = _template_scope(req)
        scopes = [templates.GLOBAL] if scope == templates.GLOBAL else [scope, templates.GLOBAL]
        return _json({"value": services.templates.list(scopes)})

    return _answer(answer)


@bp.route(route="jit/templates/{name}", methods=["GET"])
def get_template(req: func.HttpRequest) -> func.HttpResponse:
    def answer() -> func.HttpResponse:
        services = bootstrap.services()
        _require(caller_of(req), AppRole.REQUESTER, AppRole.APPROVER, AppRole.ADMIN)
        found = services.templates.get(_template_scope(req), _template_name(req))
        if found is None:
            raise NotFound(f"no template {req.route_params['name']}")
        return _json(found)

    return _answer(answer)


@bp.route(route="jit/templates/{name}", methods=["PUT"])
def put_template(req: func.HttpRequest) -> func.HttpResponse:
    def answer() -> func.HttpResponse:
        services = bootstrap.services()
        caller = caller_of(req)
        _require(caller, AppRole.ADMIN)
        scope, name = _template_scope(req), _template_name(req)
        body = _parse(TemplateBody, req.get_body())
        document = body.model_dump(mode="json", exclude_none=True)
        created = services.templates.put(scope, name, document, by=caller.actor, at=services.clock.now())
        services.audit.append(AuditEntry(services.clock.now(), scope, "", caller.actor, "template.saved", detail=name))
        return _json({"name": name, "scope": scope, **document}, 201 if created else 200)

    return _answer(answer)


@bp.route(route="jit/templates/{name}", methods=["DELETE"])
def delete_template(req: func.HttpRequest) -> func.HttpResponse:
    def answer() -> func.HttpResponse:
        services = bootstrap.services()
        caller = caller_of(req)
        _require(caller, AppRole.ADMIN)
        scope, name = _template_scope(req), _template_name(req)
        if not services.templates.delete(scope, name):
            raise NotFound(f"no template {name}")
        services.audit.append(AuditEntry(services.clock.now(), scope, "", caller.actor, "template.deleted", detail=name))
        return func.HttpResponse(status_code=204)

    return _answer(answer)


@bp.route(route="jit/requests/{id}/credentials", methods=["GET"])
def get_credentials(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _credentials(req))


def _credentials(req: func.HttpRequest) -> func.HttpResponse:
    """The grant's Temporary Access Pass, exactly once: it is erased as it is handed out."""
    services = bootstrap.services()
    caller = caller_of(req)
    grant = _visible(caller, services.grants.get(req.route_params["id"]))
    if grant.requester_id != caller.id:
        # The pass belongs to whoever asked for it; nobody else, admins included, may take it.
        raise Forbidden("only the requester may retrieve a grant's Temporary Access Pass")
    if not grant.request.tap.enabled:
        raise NotFound(f"grant {grant.id} has no Temporary Access Pass")
    tap = grant.progress.get("tap") or {}
    if tap.get("retrievedAt"):
        return problems.problem(
            410, "gone", "Already retrieved", f"the TAP of grant {grant.id} was retrieved at {tap['retrievedAt']}"
        )
    if tap.get("state") != "done":
        headers = {"Retry-After": str(services.settings.poll_interval_seconds)} if grant.status.in_progress else None
        return problems.problem(
            409, "not-issued", "Not issued", f"grant {grant.id} is {grant.status.value}; no TAP issued", headers=headers
        )
    now = services.clock.now()
    taken = services.vault.take(grant.tenant_id, grant.id, now)
    if taken is None:
        return problems.problem(410, "gone", "Gone", f"the TAP of grant {grant.id} was already retrieved or has expired")
    value, expires_at = taken
    who = caller.actor
    services.grants.update(
        grant.id,
        lambda g: with_progress(g, tap={**(g.progress.get("tap") or {}), "retrievedAt": now.isoformat(), "retrievedBy": who}),
    )
    services.audit.append(
        AuditEntry(now, grant.tenant_id, grant.id, who, "credentials.retrieved", detail="temporary access pass")
    )
    body = {
        "grantId": grant.id,
        "userPrincipalName": (grant.progress.get("user") or {}).get("userPrincipalName"),
        "temporaryAccessPass": value,
        "expiresDateTime": expires_at.isoformat().replace("+00:00", "Z") if expires_at else None,
        "isUsableOnce": tap.get("isUsableOnce"),
    }
    return _json(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@bp.route(route="jit/tenants/{tenantId}/roles", methods=["GET"])
async def list_tenant_roles(req: func.HttpRequest) -> func.HttpResponse:
    """The tenant's live Entra role definitions, for forms' drop-downs."""
    try:
        tenant = normalize_tenant(req.route_params["tenantId"])
        if tenant is None:
            raise ValidationFailed([FieldError("tenantId", "must be the tenant's GUID or its initial domain")])
        services = bootstrap.services()
        definitions = await services.roles.definitions(tenant, services.directories.for_tenant(tenant))
    except Exception as error:  # noqa: BLE001 - every error becomes a problem-details answer
        return problems.from_error(error)
    value = [{"id": d.id, "templateId": d.template_id, "displayName": d.display_name} for d in definitions]
    return _json({"value": sorted(value, key=lambda d: d["displayName"].casefold())})


@bp.route(route="jit/drift", methods=["GET"])
def list_drift(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(lambda: _drift(req))


def _drift(req: func.HttpRequest) -> func.HttpResponse:
    """Findings of the drift check, newest first (default: the last 7 days)."""
    services = bootstrap.services()
    _require(caller_of(req), AppRole.APPROVER, AppRole.ADMIN)
    errors: list[FieldError] = []
    tenant = None
    if req.params.get("tenantId"):
        tenant = normalize_tenant(req.params["tenantId"])
        if tenant is None:
            errors.append(FieldError("tenantId", "must be the tenant's GUID or its initial domain"))
    since = services.clock.now() - timedelta(days=7)
    if req.params.get("since"):
        try:
            since = datetime.fromisoformat(req.params["since"])
            if since.tzinfo is None:
                raise ValueError("no offset")
        except ValueError:
            errors.append(FieldError("since", "must be an ISO 8601 date-time with an offset"))
    top_text = req.params.get("top", "100")
    if not top_text.isdigit() or not 1 <= int(top_text) <= 1000:
        errors.append(FieldError("top", "must be a whole number from 1 to 1000"))
    if errors:
        raise ValidationFailed(errors)
    findings = services.drift_log.since(since, tenant, int(top_text))
    value = [
        {
            "tenantId": f.tenant_id,
            "kind": f.kind.value,
            "foundDateTime": f.found_at.isoformat().replace("+00:00", "Z"),
            "detail": f.detail,
            "grantId": f.grant_id or None,
            "userId": f.user_id or None,
            "remediated": f.remediated,
        }
        for f in findings
    ]
    return _json({"value": value})


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    try:
        services = bootstrap.services()
        services.storage.tables.get_service_properties()
    except Exception as error:  # noqa: BLE001 - health reports, it does not raise
        log.warning("health check failed: %s", type(error).__name__)
        return _json({"status": "unhealthy", "reason": type(error).__name__}, 503)
    return _json({"status": "healthy"})
