"""Administration: policies (with their history), request templates, named notification channels, drift findings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from jit.api.http import Call, answer, parse
from jit.api.problems import TooLarge
from jit.api.schemas import TemplateBody, TemplateName
from jit.domain.caller import AppRole
from jit.domain.errors import FieldError, NotFound, ValidationFailed
from jit.domain.policy import Policy
from jit.domain.policy_document import PolicyBody, policy_json
from jit.services import templates
from jit.services.policies import DEFAULT_SCOPE

TEMPLATE_NAME: TypeAdapter[str] = TypeAdapter(TemplateName)
# A stored document is one Table property: 64 KiB of UTF-16. Well below it, with room for the rest of the row.
MAX_DOCUMENT_BYTES = 24_000
_READERS = (AppRole.REQUESTER, AppRole.APPROVER, AppRole.ADMIN)


# Policies ---------------------------------------------------------------------------------------------------------


def _policy_scope(call: Call) -> str:
    scope = call.path("scope")
    if scope.lower() == DEFAULT_SCOPE:
        return DEFAULT_SCOPE
    registration = call.services.tenants.find(scope)
    if registration is None:
        raise ValidationFailed([FieldError("scope", "must be 'default' or an onboarded tenant (its GUID or a verified domain)")])
    return str(registration.id)


def get_policy(call: Call) -> func.HttpResponse:
    call.require(*_READERS)
    services = call.services
    scope = _policy_scope(call)
    # The policy in force for this scope: its own, else the default one, else the built-in default.
    own = services.policies.for_scope(scope)
    if own is not None:
        return answer(policy_json(own), headers={"ETag": f'"{own.version}"'})
    inherited = (services.policies.effective(scope) if scope != DEFAULT_SCOPE else None) or Policy()
    # The ETag is the version of this scope's own policy: none yet, so "0" (what a first PUT's If-Match says).
    body = {**policy_json(inherited), "inheritedFrom": inherited.scope or "built-in"}
    return answer(body, headers={"ETag": '"0"'})


def put_policy(call: Call) -> func.HttpResponse:
    caller = call.require(AppRole.ADMIN)
    services = call.services
    scope = _policy_scope(call)
    raw = call.body()
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise TooLarge(f"a policy must not exceed {MAX_DOCUMENT_BYTES} bytes")
    body = parse(PolicyBody, raw)
    expected = None
    if_match = (call.req.headers.get("If-Match") or "").strip().strip('"')
    if if_match:
        if not if_match.isdigit():
            raise ValidationFailed([FieldError("If-Match", "must be the policy's version, as its ETag gave it")])
        expected = int(if_match)
    policy = services.policies.save(scope, body, by=caller.actor, at=services.clock.now(), expected_version=expected)
    return answer(policy_json(policy), headers={"ETag": f'"{policy.version}"'})


def policy_history(call: Call) -> func.HttpResponse:
    call.require(AppRole.ADMIN)
    return answer({"value": call.services.policies.history(_policy_scope(call))})


# Templates --------------------------------------------------------------------------------------------------------


def _template_scope(call: Call) -> str:
    errors: list[FieldError] = []
    tenant = call.tenant_param(errors)
    if errors:
        raise ValidationFailed(errors)
    return tenant or templates.GLOBAL


def _template_name(call: Call) -> str:
    name = call.path("name")
    try:
        TEMPLATE_NAME.validate_python(name)
    except PydanticValidationError:
        raise ValidationFailed([FieldError("name", "letters, digits, space, '.', '_' or '-', at most 64")]) from None
    return name


def list_templates(call: Call) -> func.HttpResponse:
    call.require(*_READERS)
    scope = _template_scope(call)
    scopes = [templates.GLOBAL] if scope == templates.GLOBAL else [scope, templates.GLOBAL]
    return answer({"value": call.services.templates.list(scopes)})


def get_template(call: Call) -> func.HttpResponse:
    call.require(*_READERS)
    found = call.services.templates.get(_template_scope(call), _template_name(call))
    if found is None:
        raise NotFound(f"no template {call.path('name')}")
    return answer(found)


def put_template(call: Call) -> func.HttpResponse:
    caller = call.require(AppRole.ADMIN)
    scope, name = _template_scope(call), _template_name(call)
    body = parse(TemplateBody, call.body())
    document = body.model_dump(mode="json", exclude_none=True)
    created = call.services.templates.put(scope, name, document, by=caller.actor, at=call.services.clock.now())
    return answer({"name": name, "scope": scope, **document}, 201 if created else 200)


def delete_template(call: Call) -> func.HttpResponse:
    caller = call.require(AppRole.ADMIN)
    scope, name = _template_scope(call), _template_name(call)
    if not call.services.templates.delete(scope, name, by=caller.actor, at=call.services.clock.now()):
        raise NotFound(f"no template {name}")
    return func.HttpResponse(status_code=204)


# Named notification channels --------------------------------------------------------------------------------------

ChannelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")]
_EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


class ChannelBody(BaseModel):
    """A destination admins configure and requesters name: mailboxes, a Teams/Workflows URL, or a webhook URL."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["email", "teams", "webhook"]
    addresses: Annotated[
        list[Annotated[str, StringConstraints(min_length=3, max_length=2048)]], Field(min_length=1, max_length=20)
    ]
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    # Web addresses on loopback, private, link-local or metadata networks are refused unless an admin allows it here.
    allowPrivateNetwork: bool = False


def list_channels(call: Call) -> func.HttpResponse:
    call.require(*_READERS)
    channels = call.services.channels.list()
    if not call.caller.is_admin:
        # Requesters choose by name; the addresses (which may carry signatures) are for admins.
        channels = [{"name": c["name"], "kind": c.get("kind"), "description": c.get("description", "")} for c in channels]
    return answer({"value": channels})


def put_channel(call: Call) -> func.HttpResponse:
    caller = call.require(AppRole.ADMIN)
    name = _channel_name(call)
    body = parse(ChannelBody, call.body())
    _check_addresses(body)
    if body.kind == "webhook" and not call.services.settings.notify.webhook_secret:
        # Unsigned deliveries would be dropped one by one; say so now, to the admin, instead.
        raise ValidationFailed(
            [FieldError("kind", "webhook deliveries are signed with JIT_WEBHOOK_SECRET, which is not set on this service")]
        )
    document = body.model_dump(mode="json")
    created = call.services.channels.put(name, document, by=caller.actor, at=call.services.clock.now())
    return answer({"name": name, **document}, 201 if created else 200)


def delete_channel(call: Call) -> func.HttpResponse:
    caller = call.require(AppRole.ADMIN)
    name = _channel_name(call)
    if not call.services.channels.delete(name, by=caller.actor, at=call.services.clock.now()):
        raise NotFound(f"no channel {name}")
    return func.HttpResponse(status_code=204)


def _channel_name(call: Call) -> str:
    name = call.path("name")
    try:
        TypeAdapter(ChannelName).validate_python(name)
    except PydanticValidationError:
        raise ValidationFailed([FieldError("name", "letters, digits, space, '.', '_' or '-', at most 64")]) from None
    return name


def _check_addresses(body: ChannelBody) -> None:
    import re
    from urllib.parse import urlsplit

    errors = []
    for address in body.addresses:
        if body.kind == "email":
            if not re.match(_EMAIL, address):
                errors.append(FieldError("addresses", f"{address!r} is not an email address"))
        else:
            parts = urlsplit(address)
            if parts.scheme != "https" and not (parts.scheme == "http" and body.allowPrivateNetwork):
                errors.append(FieldError("addresses", "web addresses must be https (http only with allowPrivateNetwork)"))
            elif not parts.hostname:
                errors.append(FieldError("addresses", f"{parts.scheme}://… has no host"))
    if errors:
        raise ValidationFailed(errors)


# Drift ------------------------------------------------------------------------------------------------------------


def drift(call: Call) -> func.HttpResponse:
    """Findings of the drift check, newest first (default: the last 7 days)."""
    call.require(AppRole.APPROVER, AppRole.ADMIN)
    services = call.services
    params = call.params
    errors: list[FieldError] = []
    tenant = call.tenant_param(errors)
    since = services.clock.now() - timedelta(days=7)
    if params.get("since"):
        try:
            since = datetime.fromisoformat(params["since"])
            if since.tzinfo is None:
                raise ValueError("no offset")
        except ValueError:
            errors.append(FieldError("since", "must be an ISO 8601 date-time with an offset"))
    top_text = params.get("top", "100")
    if not top_text.isdigit() or not 1 <= int(top_text) <= 1000:
        errors.append(FieldError("top", "must be a whole number from 1 to 1000"))
    if errors:
        raise ValidationFailed(errors)
    findings = services.drift_log.since(since, tenant, int(top_text))
    value: list[dict[str, Any]] = [
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
    return answer({"value": value})
