"""The API's description, built from ONE route table and the pydantic models the handlers validate with.

    ROUTES ──▶ openapi_document()       OpenAPI 3.1, served at GET /api/jit/openapi.json (tools, fuzzing, clients)
           └─▶ connector_definition()   Swagger 2.0 with x-ms-* extensions: the Power Platform custom connector
               connector_properties()   (connector/apiDefinition.swagger.json, connector/apiProperties.json)

Request schemas are the request models' own `model_json_schema()`, so the document says what the code accepts. The
response models below describe, field for field, what jit/api/views.py, problems.py and the handlers answer; the
schema-driven fuzz test (tests/e2e/test_fuzz_api.py) checks live answers against them, and tests/unit/test_openapi.py
checks that the table names exactly the HTTP functions function_app.py declares.

Run `python -m jit.api.openapi --connector connector` (scripts/generate-connector) to regenerate the connector files.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, SkipJsonSchema, models_json_schema

from jit.api.requests_api import DecisionBody, ExtendBody, RevokeBody
from jit.api.schemas import GrantRequestBody, TemplateBody, TemplateName
from jit.domain.drift import DriftKind
from jit.domain.grant import Status
from jit.domain.policy_document import PolicyBody
from jit.domain.request import ExpirationAction

API_TITLE = "JIT admin access for Microsoft Entra ID"
API_VERSION = "1.0.0"
CONNECTOR_TITLE = "JIT Admin Access"
# The connector's host until the operator sets the real one (scripts/generate-connector --host, or on import).
CONNECTOR_HOST = "your-function-app.azurewebsites.net"
ROUTE_PREFIX = "/api/"
SCHEMA_REF = "#/components/schemas/{model}"
_JSON = "application/json"
PROBLEM_MEDIA_TYPE = "application/problem+json"
_NDJSON = "application/x-ndjson"

Visibility = Literal["important", "advanced", "internal"]


# Response models: what the handlers answer, as JSON. Keys that are always present are required (null where the
# view gives None); keys a view adds only sometimes are optional (`X | SkipJsonSchema[None] = None`).
class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GrantUser(_Answer):
    """The user as the request named it."""

    type: Literal["new", "existing"]
    displayName: str | SkipJsonSchema[None] = None
    userPrincipalName: str | SkipJsonSchema[None] = None
    id: str | SkipJsonSchema[None] = None


class GrantTemporaryAccessPass(_Answer):
    enabled: bool
    lifetimeInMinutes: int
    isUsableOnce: bool


class AccessUser(_Answer):
    id: str | SkipJsonSchema[None] = None
    userPrincipalName: str | SkipJsonSchema[None] = None
    created: bool | SkipJsonSchema[None] = None


class AccessRole(_Answer):
    roleDefinitionId: str
    name: str | None
    state: str | None


class AccessGroup(_Answer):
    id: str
    state: str | None


class AccessTemporaryAccessPass(_Answer):
    """The pass's state, never its value (that is handed out once, by GET .../credentials)."""

    state: str | SkipJsonSchema[None] = None
    expiresAt: str | None = None
    retrievedAt: str | SkipJsonSchema[None] = None


class AccessCredential(_Answer):
    """The credential's kind and state, never its value (that is handed out once, by GET .../credentials)."""

    kind: Literal["temporaryAccessPass", "password"]
    state: str | SkipJsonSchema[None] = None
    expiresAt: str | None = None
    retrievedAt: str | SkipJsonSchema[None] = None


class DirectoryHealth(_Answer):
    """Whether the grant's directory can be reached now (an on-premises agent's heartbeat)."""

    available: bool
    detail: str | None
    lastSeen: str | None
    facts: dict[str, str]


class AccessExpiration(BaseModel):
    """How the end of access went: verified, or what remains and since when (more keys may follow)."""

    model_config = ConfigDict(extra="allow")
    verifiedAt: str | SkipJsonSchema[None] = None
    actions: list[str] | SkipJsonSchema[None] = None
    remaining: list[str] | SkipJsonSchema[None] = None
    attempts: int | SkipJsonSchema[None] = None
    lastAttemptAt: str | SkipJsonSchema[None] = None
    alertedAt: str | SkipJsonSchema[None] = None
    flag: str | SkipJsonSchema[None] = None


class GrantAccess(_Answer):
    """What the grant holds in the directory, as far as the system knows."""

    user: AccessUser | None
    roles: list[AccessRole]
    groups: list[AccessGroup]
    credential: AccessCredential | None
    temporaryAccessPass: AccessTemporaryAccessPass | None
    expiration: AccessExpiration | SkipJsonSchema[None] = None


class GrantError(_Answer):
    """Why the grant failed: the step, a message, and Graph's error code and request id when Graph refused."""

    step: str
    message: str
    code: str | SkipJsonSchema[None] = None
    graphRequestId: str | SkipJsonSchema[None] = None


class Transition(_Answer):
    from_: Status | None = Field(alias="from")
    to: Status
    at: datetime
    actor: str
    reason: str


class Grant(_Answer):
    """A grant (jit/api/views.py `grant_json`)."""

    id: str
    tenantId: str
    status: Status
    user: GrantUser
    startDateTime: datetime
    endDateTime: datetime
    roles: list[str]
    groups: list[str]
    reason: str
    ticketId: str | None
    temporaryAccessPass: GrantTemporaryAccessPass
    expirationActions: list[ExpirationAction]
    notifications: dict[str, Any] | None
    templateName: str | None
    requestedBy: str
    createdDateTime: datetime
    lastModifiedDateTime: datetime
    revokeRequestedDateTime: datetime | None
    revokedDateTime: datetime | None
    latenessSeconds: float | None
    access: GrantAccess
    error: GrantError | None
    history: list[Transition]
    directoryHealth: DirectoryHealth | SkipJsonSchema[None] = None


class GrantList(_Answer):
    value: list[Grant]
    continuationToken: str | None
    nextLink: str | SkipJsonSchema[None] = None


class FieldProblem(_Answer):
    field: str
    pointer: str
    detail: str


class RuleProblem(_Answer):
    rule: str
    detail: str


class Problem(_Answer):
    """RFC 9457 problem details (jit/api/problems.py): `errors` names each bad field, or each policy rule broken."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem | RuleProblem] | SkipJsonSchema[None] = None


class HandedCredential(_Answer):
    kind: Literal["temporaryAccessPass", "password"]
    value: str
    expiresAt: str | None


class Credentials(_Answer):
    grantId: str
    userPrincipalName: str | None
    credential: HandedCredential
    temporaryAccessPass: str | SkipJsonSchema[None] = None  # a pass's value again, for clients older than `credential`
    expiresDateTime: str | None
    isUsableOnce: bool | None


class RoleDefinition(_Answer):
    id: str
    templateId: str
    displayName: str


class RoleList(_Answer):
    value: list[RoleDefinition]


class DriftFinding(_Answer):
    tenantId: str
    kind: DriftKind
    foundDateTime: datetime
    detail: str
    grantId: str | None
    userId: str | None
    remediated: bool


class DriftList(_Answer):
    value: list[DriftFinding]


class PolicyTemporaryAccessPass(_Answer):
    minLifetimeInMinutes: int | None
    maxLifetimeInMinutes: int | None


class Policy(_Answer):
    """The policy in force for a scope (jit/domain/policy_document.py `policy_json`); `version` is also the ETag."""

    scope: str
    version: int
    allowedRoles: list[str]
    allowedGroups: list[str]
    maxDuration: str | None
    maxDurationPerRole: dict[str, str | None]
    approvalRequired: bool
    rolesRequiringApproval: list[str]
    ticketRequired: bool
    ticketPattern: str | None
    temporaryAccessPass: PolicyTemporaryAccessPass
    maxConcurrentGrantsPerUser: int | None
    allowedExpirationActions: list[ExpirationAction]


class Template(TemplateBody):
    """A stored template: its name and scope (`global` or a tenant) and the fields it was saved with."""

    name: str
    scope: str


class TemplateList(_Answer):
    value: list[Template]


class ReportRow(_Answer):
    grantId: str
    user: str | None
    roles: list[str]
    groups: list[str]
    from_: datetime = Field(alias="from")
    to: datetime
    durationMinutes: float
    reason: str
    ticketId: str | None
    status: Status


class MonthlyReport(_Answer):
    tenantId: str
    month: str
    rows: list[ReportRow]


class Health(_Answer):
    status: Literal["healthy", "unhealthy"]
    reason: str | SkipJsonSchema[None] = None


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    GrantRequestBody,
    RevokeBody,
    ExtendBody,
    DecisionBody,
    PolicyBody,
    TemplateBody,
)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Grant,
    GrantList,
    Problem,
    Credentials,
    RoleList,
    DriftList,
    Policy,
    Template,
    TemplateList,
    MonthlyReport,
    Health,
)
# Free-form answers (not models): the description itself, and the audit trail's lines.
EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "OpenApiDocument": {"title": "OpenApiDocument", "type": "object", "description": "This document."},
    "AuditLines": {"title": "AuditLines", "type": "string", "description": "Newline-delimited JSON objects."},
}


# The route table ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """A query or header parameter (path parameters come from PATH_PARAMS by name)."""

    name: str
    where: Literal["query", "header", "path"]
    schema: dict[str, Any]
    description: str
    required: bool = False
    summary: str = ""
    visibility: Visibility | None = None
    example: Any = None


@dataclass(frozen=True)
class Answer:
    status: str  # "200", "202", ... or "default"
    description: str
    schema: str | None = None  # a component name; None for an answer without a body
    media_type: str = _JSON
    headers: tuple[str, ...] = ()  # names from HEADERS


@dataclass(frozen=True)
class Route:
    operation_id: str  # the function's name in function_app (the HTTP function registered by a blueprint)
    method: Literal["GET", "POST", "PUT", "DELETE"]
    route: str  # the function's route, without the host's "api/" prefix
    summary: str
    description: str
    tag: str
    answers: tuple[Answer, ...]
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_example: dict[str, Any] | None = None
    anonymous: bool = False
    visibility: Visibility = "advanced"  # in the connector
    in_connector: bool = True
    side_effects: bool = False  # x-ms-no-generic-test: the connector's generic test must not call it

    @property
    def path(self) -> str:
        return ROUTE_PREFIX + self.route

    @property
    def path_names(self) -> list[str]:
        return re.findall(r"\{([^}:?]+)", self.route)


HEADERS: dict[str, dict[str, Any]] = {
    "Location": {
        "description": "Where the grant can be polled: GET /api/jit/requests/{id}.",
        "schema": {"type": "string", "format": "uri"},
    },
    "Retry-After": {
        "description": "Seconds to wait before polling again (JIT_POLL_INTERVAL_SECONDS).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "ETag": {"description": "The policy's version, quoted; send it back in If-Match.", "schema": {"type": "string"}},
    "Cache-Control": {"description": "no-store: the answer carries a secret.", "schema": {"type": "string"}},
    "X-Audit-Intact": {"description": "true when the whole hash chain verified.", "schema": {"type": "string"}},
}

_GUID_OR_DOMAIN = "the tenant's GUID, or its initial domain (*.onmicrosoft.com, *.onmicrosoft.us, *.partner.onmschina.cn)"
PATH_PARAMS: dict[str, Param] = {
    "id": Param(
        "id",
        "path",
        {"type": "string", "minLength": 1},
        "The grant's id (a ULID).",
        True,
        "Grant ID",
        "important",
        "01JB0000000000000000000000",
    ),
    "tenantId": Param(
        "tenantId",
        "path",
        {"type": "string", "minLength": 1},
        f"The tenant: {_GUID_OR_DOMAIN}.",
        True,
        "Tenant",
        "important",
        "demo.onmicrosoft.com",
    ),
    "scope": Param(
        "scope",
        "path",
        {"type": "string", "minLength": 1},
        f"`default`, or the tenant: {_GUID_OR_DOMAIN}.",
        True,
        "Policy Scope",
        "important",
        "default",
    ),
    "name": Param(
        "name",
        "path",
        TypeAdapter(TemplateName).json_schema(),
        "The template's name.",
        True,
        "Template Name",
        "important",
        "mailbox-admin",
    ),
}

_TENANT_QUERY = Param("tenantId", "query", {"type": "string"}, f"Only this tenant: {_GUID_OR_DOMAIN}.", summary="Tenant")
_TEMPLATE_SCOPE = Param(
    "tenantId",
    "query",
    {"type": "string"},
    f"The tenant whose template is meant ({_GUID_OR_DOMAIN}); absent: the global template.",
    summary="Tenant",
    visibility="advanced",
)
_TENANT_REQUIRED = Param(
    "tenantId", "query", {"type": "string"}, f"The tenant: {_GUID_OR_DOMAIN}.", True, "Tenant", example="demo.onmicrosoft.com"
)
_IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "A retry with the same key and body returns the same grant and creates nothing; the same key with another body "
    "is a 409. Use the ticket's or the form response's id.",
    summary="Idempotency Key",
    visibility="advanced",
)
_REQUESTED_FOR = Param(
    "X-JIT-Requested-For",
    "header",
    {"type": "string", "maxLength": 256},
    "The person the flow acts for; recorded as asserted, never trusted for decisions.",
    summary="Requested For",
    visibility="advanced",
)
_IF_MATCH = Param(
    "If-Match",
    "header",
    {"type": "string"},
    "The policy's version as its ETag gave it: the save fails with 409 when someone saved in between.",
    summary="Expected Version",
    visibility="advanced",
)


def _problem(status: str, description: str, *headers: str) -> Answer:
    return Answer(status, description, "Problem", PROBLEM_MEDIA_TYPE, headers)


_DEFAULT = _problem("default", "A problem (RFC 9457): `type` names it, `errors` the fields or rules at fault.")
_INVALID = _problem("400", "The request is invalid; nothing was stored (`errors` names each bad field).")
_FORBIDDEN = _problem("403", "The caller lacks the app role, or the request is outside the policy (`errors` names the rules).")
_NOT_FOUND = _problem("404", "No such grant (or not the caller's).")
_FINAL = _problem("409", "The grant has ended, or is in a state that does not allow this.")
_MOVING = ("Location", "Retry-After")
_GRANT_SETTLED = Answer("200", "The grant; it is in a settled state.", "Grant")
_GRANT_MOVING = Answer("202", "The grant; it is still moving: poll Location after Retry-After seconds.", "Grant", headers=_MOVING)
_EXAMPLE_REQUEST: dict[str, Any] = {
    "tenantId": "demo.onmicrosoft.com",
    "user": {"type": "new", "displayName": "JIT admin for ticket 4711"},
    "duration": "PT1H",
    "roles": ["Exchange Administrator"],
    "reason": "Mailbox migration, ticket 4711",
    "ticketId": "4711",
}

_EXAMPLE_POLICY: dict[str, Any] = {
    "allowedRoles": ["Exchange Administrator", "Global Administrator"],
    "maxDuration": "PT4H",
    "maxDurationPerRole": {"Global Administrator": "PT1H"},
    "rolesRequiringApproval": ["Global Administrator"],
    "ticketRequired": True,
    "ticketPattern": "^INC[0-9]{6}$",
    "temporaryAccessPass": {"minLifetimeInMinutes": 60, "maxLifetimeInMinutes": 240},
    "maxConcurrentGrantsPerUser": 2,
    "allowedExpirationActions": ["DeleteUser", "RemoveRoles", "RemoveGroups"],
}
_EXAMPLE_TEMPLATE: dict[str, Any] = {
    "description": "Exchange administration for mailbox work",
    "roles": ["Exchange Administrator"],
    "duration": "PT2H",
    "reasonPrefix": "Mailbox work:",
}

ROUTES: tuple[Route, ...] = (
    Route(
        "create_request",
        "POST",
        "jit/requests",
        "Request admin access",
        "Asks for roles and groups in a tenant for a while, for a new JIT account or an existing user. The answer is "
        "202 with the grant, Location and Retry-After: poll Location until it answers 200 (Active, Failed, Denied…); "
        "Graph work never happens in this call. Fields and defaults are those of the README's request table.",
        "Requests",
        (
            Answer("202", "Accepted: the grant, with Location and Retry-After to poll.", "Grant", headers=_MOVING),
            _INVALID,
            _FORBIDDEN,
            _problem("409", "The Idempotency-Key was used with another body."),
            _problem("503", "Storage was busy; try again.", "Retry-After"),
            _DEFAULT,
        ),
        params=(_IDEMPOTENCY_KEY, _REQUESTED_FOR),
        body=GrantRequestBody,
        body_example=_EXAMPLE_REQUEST,
        visibility="important",
        side_effects=True,
    ),
    Route(
        "list_requests",
        "GET",
        "jit/requests",
        "List grants",
        "Grants, newest first; a requester sees its own, approvers and admins all. Follow nextLink for more.",
        "Requests",
        (Answer("200", "A page of grants.", "GrantList"), _INVALID, _DEFAULT),
        params=(
            _TENANT_QUERY,
            Param("status", "query", {"$ref": SCHEMA_REF.format(model="Status")}, "Only grants in this state.", summary="Status"),
            Param(
                "top",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                "Page size.",
                summary="Page Size",
                visibility="advanced",
            ),
            Param(
                "continuationToken",
                "query",
                {"type": "string"},
                "The token of the previous page.",
                summary="Continuation Token",
                visibility="advanced",
            ),
        ),
    ),
    Route(
        "get_request",
        "GET",
        "jit/requests/{id}",
        "Get a grant",
        "The grant: 202 with Retry-After while it is moving (AwaitingApproval, Scheduled, Provisioning, Expiring), 200 "
        "in any other state. This is the status URL of the asynchronous pattern.",
        "Requests",
        (_GRANT_SETTLED, _GRANT_MOVING, _NOT_FOUND, _DEFAULT),
        visibility="important",
    ),
    Route(
        "revoke_request",
        "POST",
        "jit/requests/{id}/revoke",
        "End a grant early",
        "A grant that has not started becomes Cancelled (200); one that has becomes Expiring (202) and its expiration "
        "actions run at once: poll Location until Revoked.",
        "Requests",
        (_GRANT_SETTLED, _GRANT_MOVING, _INVALID, _FORBIDDEN, _NOT_FOUND, _FINAL, _DEFAULT),
        body=RevokeBody,
        body_required=False,
        visibility="important",
        side_effects=True,
    ),
    Route(
        "extend_request",
        "POST",
        "jit/requests/{id}/extend",
        "Move the end of a grant",
        "Moves the end of a grant that has not ended (later, or earlier but in the future), within JIT_MAX_DURATION.",
        "Requests",
        (_GRANT_SETTLED, _GRANT_MOVING, _INVALID, _FORBIDDEN, _NOT_FOUND, _FINAL, _DEFAULT),
        body=ExtendBody,
        side_effects=True,
    ),
    Route(
        "approve_request",
        "POST",
        "jit/requests/{id}/approve",
        "Approve a request",
        "Approves a request that awaits approval (Jit.Approver; never one's own). The decision is audited.",
        "Approvals",
        (_GRANT_SETTLED, _GRANT_MOVING, _INVALID, _FORBIDDEN, _NOT_FOUND, _FINAL, _DEFAULT),
        body=DecisionBody,
        body_required=False,
        visibility="important",
        side_effects=True,
    ),
    Route(
        "deny_request",
        "POST",
        "jit/requests/{id}/deny",
        "Deny a request",
        "Denies a request that awaits approval (Jit.Approver; never one's own). The decision is audited.",
        "Approvals",
        (_GRANT_SETTLED, _GRANT_MOVING, _INVALID, _FORBIDDEN, _NOT_FOUND, _FINAL, _DEFAULT),
        body=DecisionBody,
        body_required=False,
        visibility="important",
        side_effects=True,
    ),
    Route(
        "get_credentials",
        "GET",
        "jit/requests/{id}/credentials",
        "Retrieve the sign-in credential once",
        "The grant's sign-in credential (a Temporary Access Pass in Entra ID, a one-time password in an on-premises "
        "domain), exactly once, for the requester only; erased as it is handed out and audited. 409 (with Retry-After "
        "while the grant moves) before it is issued, 410 once retrieved or expired.",
        "Credentials",
        (
            Answer("200", "The credential. Never store or log it.", "Credentials", headers=("Cache-Control",)),
            _problem("403", "Only the requester may retrieve the credential."),
            _problem("404", "No such grant, or the grant has no sign-in credential."),
            _problem("409", "The credential is not issued yet.", "Retry-After"),
            _problem("410", "The credential was already retrieved, or has expired."),
            _DEFAULT,
        ),
        visibility="important",
        side_effects=True,
    ),
    Route(
        "list_tenant_roles",
        "GET",
        "jit/tenants/{tenantId}/roles",
        "List the tenant's roles",
        "The tenant's live Entra role definitions, sorted by name, for drop-downs.",
        "Directory",
        (
            Answer("200", "The role definitions.", "RoleList"),
            _INVALID,
            _problem("502", "Graph refused the app in this tenant (admin consent or a permission is missing)."),
            _problem("503", "Graph is unavailable or throttling; try again.", "Retry-After"),
            _DEFAULT,
        ),
    ),
    Route(
        "list_drift",
        "GET",
        "jit/drift",
        "List drift findings",
        "Findings of the daily drift check, newest first (default: the last 7 days). Jit.Approver or Jit.Admin.",
        "Drift",
        (Answer("200", "The findings.", "DriftList"), _INVALID, _FORBIDDEN, _DEFAULT),
        params=(
            _TENANT_QUERY,
            Param(
                "since",
                "query",
                {"type": "string", "format": "date-time"},
                "Findings from this moment on (ISO 8601 with an offset).",
                summary="Since",
            ),
            Param(
                "top",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                "At most this many.",
                summary="Top",
                visibility="advanced",
            ),
        ),
    ),
    Route(
        "get_policy",
        "GET",
        "jit/policies/{scope}",
        "Get the policy in force",
        "The policy in force for the scope: the tenant's own, else the default one, else the built-in default.",
        "Policies",
        (Answer("200", "The policy; its version is the ETag.", "Policy", headers=("ETag",)), _INVALID, _FORBIDDEN, _DEFAULT),
    ),
    Route(
        "put_policy",
        "PUT",
        "jit/policies/{scope}",
        "Save a policy",
        "Saves a new revision of the scope's policy (Jit.Admin). Every revision is kept; If-Match is honoured.",
        "Policies",
        (
            Answer("200", "The saved policy; its version is the ETag.", "Policy", headers=("ETag",)),
            _INVALID,
            _FORBIDDEN,
            _problem("409", "The policy is at another version than If-Match said."),
            _DEFAULT,
        ),
        params=(_IF_MATCH,),
        body=PolicyBody,
        body_example=_EXAMPLE_POLICY,
        visibility="internal",
        side_effects=True,
    ),
    Route(
        "list_templates",
        "GET",
        "jit/templates",
        "List request templates",
        "The global templates, and with tenantId also that tenant's own.",
        "Templates",
        (Answer("200", "The templates.", "TemplateList"), _INVALID, _FORBIDDEN, _DEFAULT),
        params=(_TEMPLATE_SCOPE,),
    ),
    Route(
        "get_template",
        "GET",
        "jit/templates/{name}",
        "Get a request template",
        "The template of that name: the tenant's own with tenantId, else the global one.",
        "Templates",
        (
            Answer("200", "The template.", "Template"),
            _INVALID,
            _FORBIDDEN,
            _problem("404", "No template of that name."),
            _DEFAULT,
        ),
        params=(_TEMPLATE_SCOPE,),
    ),
    Route(
        "put_template",
        "PUT",
        "jit/templates/{name}",
        "Save a request template",
        "Saves a template (Jit.Admin): any request field but the tenant and the user, and a prefix for the reason. A "
        "request naming it in templateName gets its fields unless it gives its own.",
        "Templates",
        (
            Answer("200", "The template, replaced.", "Template"),
            Answer("201", "The template, new.", "Template"),
            _INVALID,
            _FORBIDDEN,
            _DEFAULT,
        ),
        params=(_TEMPLATE_SCOPE,),
        body=TemplateBody,
        body_example=_EXAMPLE_TEMPLATE,
        visibility="internal",
        side_effects=True,
    ),
    Route(
        "delete_template",
        "DELETE",
        "jit/templates/{name}",
        "Delete a request template",
        "Deletes a template (Jit.Admin).",
        "Templates",
        (Answer("204", "Deleted."), _INVALID, _FORBIDDEN, _problem("404", "No template of that name."), _DEFAULT),
        params=(_TEMPLATE_SCOPE,),
        visibility="internal",
        side_effects=True,
    ),
    Route(
        "read_audit",
        "GET",
        "jit/audit",
        "Read the audit trail",
        "One JSON object per line per audit entry in the range (default: the last 30 days), then one line with the "
        "verification of the tenant's whole hash chain. Jit.Admin.",
        "Audit",
        (
            Answer("200", "Newline-delimited JSON.", "AuditLines", _NDJSON, ("X-Audit-Intact", "Cache-Control")),
            _INVALID,
            _FORBIDDEN,
            _DEFAULT,
        ),
        params=(
            _TENANT_REQUIRED,
            Param("from", "query", {"type": "string", "format": "date-time"}, "Start of the range.", summary="From"),
            Param("to", "query", {"type": "string", "format": "date-time"}, "End of the range (default now).", summary="To"),
        ),
        visibility="internal",
    ),
    Route(
        "monthly_report",
        "GET",
        "jit/reports/monthly",
        "Monthly access report",
        "Who had which access in the tenant during the month, for how long, why and with which ticket.",
        "Audit",
        (Answer("200", "The report.", "MonthlyReport"), _INVALID, _FORBIDDEN, _DEFAULT),
        params=(
            _TENANT_REQUIRED,
            Param(
                "month",
                "query",
                {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
                "YYYY-MM.",
                True,
                "Month",
                example="2025-01",
            ),
        ),
    ),
    Route(
        "health",
        "GET",
        "health",
        "Health check",
        "200 when storage answers, 503 otherwise. Needs no key.",
        "Service",
        (Answer("200", "Healthy.", "Health"), Answer("503", "Unhealthy: storage does not answer.", "Health")),
        anonymous=True,
        in_connector=False,
    ),
    Route(
        "get_openapi",
        "GET",
        "jit/openapi.json",
        "This API description",
        "This OpenAPI 3.1 document, built from the same route table as the Power Platform connector.",
        "Service",
        (Answer("200", "The OpenAPI document.", "OpenApiDocument"), _DEFAULT),
        in_connector=False,
    ),
)


# Schemas -------------------------------------------------------------------------------------------------------
def component_schemas() -> dict[str, dict[str, Any]]:
    """Every schema the document refers to: the request models as validated, the response models as answered."""
    return copy.deepcopy(_component_schemas())


@functools.cache
def _component_schemas() -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {}
    modes: tuple[tuple[tuple[type[BaseModel], ...], JsonSchemaMode], ...] = (
        (REQUEST_MODELS, "validation"),
        (RESPONSE_MODELS, "serialization"),
    )
    for models, mode in modes:
        for name, schema in _models_schemas(models, mode).items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"two different schemas are called {name}")
            schemas[name] = schema
    schemas.update(copy.deepcopy(EXTRA_SCHEMAS))
    return dict(sorted(schemas.items()))


def _models_schemas(models: tuple[type[BaseModel], ...], mode: JsonSchemaMode) -> dict[str, dict[str, Any]]:
    _, top = models_json_schema([(m, mode) for m in models], ref_template=SCHEMA_REF)
    defs: dict[str, dict[str, Any]] = top.get("$defs", {})
    if mode == "serialization":
        # Defaults mean nothing in an answer (a key is there or it is not); request models keep their schema.
        for name, schema in defs.items():
            if name in globals() and getattr(globals()[name], "__module__", "") == __name__:
                for prop in schema.get("properties", {}).values():
                    prop.pop("default", None)
    # A private model's name loses its underscore (`RevokeBody` is RevokeBody); nothing refers to those by $ref.
    return {name.lstrip("_") or name: schema for name, schema in defs.items()}


def component_name(model: type[BaseModel]) -> str:
    return model.__name__.lstrip("_")


# OpenAPI 3.1 ---------------------------------------------------------------------------------------------------
def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": API_TITLE,
            "version": API_VERSION,
            "description": "Just-in-time admin access for Microsoft Entra ID: a request becomes a grant that is "
            "provisioned through Microsoft Graph when it starts and taken away again when it ends. Every route but "
            "/api/health needs a function key (x-functions-key header or ?code=). Errors are RFC 9457 problem "
            "details (application/problem+json).",
        },
        "servers": [{"url": server_url or "/"}],
        "tags": [{"name": tag} for tag in dict.fromkeys(r.tag for r in ROUTES)],
        "security": [{"functionKey": []}, {"functionKeyQuery": []}],
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "description": route.description,
        "tags": [route.tag],
    }
    parameters = [_parameter(p) for p in (*(PATH_PARAMS[n] for n in route.path_names), *route.params)]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        media: dict[str, Any] = {"schema": {"$ref": SCHEMA_REF.format(model=component_name(route.body))}}
        if route.body_example is not None:
            media["example"] = route.body_example
        operation["requestBody"] = {"required": route.body_required, "content": {_JSON: media}}
    operation["responses"] = {a.status: _response(a) for a in route.answers}
    if route.anonymous:
        operation["security"] = []
    return operation


def _parameter(param: Param) -> dict[str, Any]:
    described: dict[str, Any] = {"name": param.name, "in": param.where, "description": param.description}
    if param.required:
        described["required"] = True
    described["schema"] = copy.deepcopy(param.schema)
    if param.example is not None:
        described["example"] = param.example
    return described


def _response(answer: Answer) -> dict[str, Any]:
    described: dict[str, Any] = {"description": answer.description}
    if answer.headers:
        described["headers"] = {name: copy.deepcopy(HEADERS[name]) for name in answer.headers}
    if answer.schema is not None:
        described["content"] = {answer.media_type: {"schema": {"$ref": SCHEMA_REF.format(model=answer.schema)}}}
    return described


# Power Platform custom connector (Swagger 2.0) -----------------------------------------------------------------
# Display names (x-ms-summary) and visibility of request fields in the flow designer.
FIELD_UI: dict[str, tuple[str, Visibility | None]] = {
    "tenantId": ("Tenant", "important"),
    "user": ("User", "important"),
    "type": ("Type", "important"),
    "displayName": ("Display Name", "important"),
    "userPrincipalName": ("User Principal Name", None),
    "id": ("ID", None),
    "duration": ("Duration (ISO 8601, e.g. PT4H)", "important"),
    "roles": ("Roles", "important"),
    "groups": ("Group IDs", "advanced"),
    "reason": ("Reason", "important"),
    "ticketId": ("Ticket ID", "important"),
    "templateName": ("Template", "advanced"),
    "startDateTime": ("Start", "advanced"),
    "endDateTime": ("End", "advanced"),
    "temporaryAccessPass": ("Temporary Access Pass", "advanced"),
    "expirationActions": ("Expiration Actions", "advanced"),
    "notifications": ("Notifications", "advanced"),
}


def connector_definition(host: str = CONNECTOR_HOST) -> dict[str, Any]:
    """The Swagger 2.0 definition Power Platform imports as a custom connector (apiDefinition.swagger.json).

    The asynchronous pattern needs no extension: an action that answers 202 with Location (and Retry-After) is
    polled by the Logic Apps / Power Automate runtime until the Location answers something else, as long as the
    action's "Asynchronous pattern" setting is on (it is by default). The definition declares those 202 answers and
    their headers so the designer shows the grant's fields for both."""
    definitions = {name: _swagger_schema(schema) for name, schema in component_schemas().items()}
    _decorate_request_fields(definitions)
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        if route.in_connector:
            paths.setdefault("/" + route.route, {})[route.method.lower()] = _connector_operation(route)
    definitions = {name: definitions[name] for name in sorted(_referenced(paths, definitions))}
    return {
        "swagger": "2.0",
        "info": {
            "title": CONNECTOR_TITLE,
            "description": "Request just-in-time admin access to Microsoft Entra ID tenants, follow the grant until it is "
            "active, retrieve its Temporary Access Pass once, and end it early.",
            "version": API_VERSION,
        },
        "host": host,
        "basePath": ROUTE_PREFIX.rstrip("/"),
        "schemes": ["https"],
        "consumes": [_JSON],
        "produces": [_JSON, PROBLEM_MEDIA_TYPE],
        "paths": paths,
        "definitions": definitions,
        "parameters": {},
        "responses": {},
        "securityDefinitions": {"api_key": {"type": "apiKey", "in": "header", "name": "x-functions-key"}},
        "security": [{"api_key": []}],
        "tags": [],
        # Creating a connection calls this, so a wrong key fails there and then rather than in the first flow run.
        "x-ms-capabilities": {"testConnection": {"operationId": "list_requests", "parameters": {}}},
    }


def connector_properties() -> dict[str, Any]:
    """apiProperties.json: the connection asks for the function key, sent as the x-functions-key header."""
    return {
        "properties": {
            "connectionParameters": {
                "api_key": {
                    "type": "securestring",
                    "uiDefinition": {
                        "displayName": "Function key",
                        "description": "A function key of the JIT function app (Function App > App keys)",
                        "tooltip": "Sent as the x-functions-key header of every call",
                        "constraints": {"tabIndex": 2, "clearText": False, "required": "true"},
                    },
                }
            },
            "iconBrandColor": "#0f6cbd",
            "capabilities": [],
            "publisher": "JIT admin access",
            "stackOwner": "JIT admin access",
            "policyTemplateInstances": [],
        }
    }


def _connector_operation(route: Route) -> dict[str, Any]:
    parameters = [_swagger_parameter(p) for p in (*(PATH_PARAMS[n] for n in route.path_names), *route.params)]
    if route.body is not None:
        parameters.append(
            {
                "name": "body",
                "in": "body",
                "required": route.body_required,
                "schema": {"$ref": f"#/definitions/{component_name(route.body)}"},
                "x-ms-summary": "Body",
            }
        )
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "description": route.description,
        "tags": [route.tag],
        "parameters": parameters,
        "responses": {a.status: _swagger_response(a) for a in route.answers},
        "x-ms-visibility": route.visibility,
    }
    if route.side_effects:
        operation["x-ms-no-generic-test"] = True
    if route.anonymous:
        operation["security"] = []
    return operation


def _swagger_parameter(param: Param) -> dict[str, Any]:
    described: dict[str, Any] = {"name": param.name, "in": param.where, "required": param.required}
    described.update(_swagger_schema(_resolve(param.schema)))
    described["description"] = param.description
    described["x-ms-summary"] = param.summary or _title(param.name)
    if param.visibility:
        described["x-ms-visibility"] = param.visibility
    return described


def _swagger_response(answer: Answer) -> dict[str, Any]:
    described: dict[str, Any] = {"description": answer.description}
    if answer.schema is not None and answer.media_type != _NDJSON:
        described["schema"] = {"$ref": f"#/definitions/{answer.schema}"}
    elif answer.schema is not None:
        described["schema"] = {"type": "string"}
    if answer.headers:
        described["headers"] = {
            name: {"description": HEADERS[name]["description"], **_swagger_schema(HEADERS[name]["schema"])}
            for name in answer.headers
        }
    return described


def _swagger_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema (2020-12, as pydantic writes it) in the Swagger 2.0 subset Power Platform reads: no null type
    (x-nullable instead), no oneOf/anyOf (a union of objects becomes one object), no const, refs to #/definitions."""
    schema = dict(schema)
    for alternatives in ("anyOf", "oneOf"):
        if alternatives in schema:
            options = schema.pop(alternatives)
            schema.pop("discriminator", None)
            schema = {**_merge_alternatives(options), **schema}
    if schema.get("type") == "null":
        return {}
    if isinstance(schema.get("type"), list):
        kinds = [t for t in schema["type"] if t != "null"]
        schema["x-nullable"] = len(kinds) < len(schema["type"])
        schema["type"] = kinds[0] if len(kinds) == 1 else "string"
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "examples" in schema:
        schema["example"] = schema.pop("examples")[0]
    if schema.get("default", "absent") is None:
        schema.pop("default")
    schema.pop("title", None)
    if "$ref" in schema:
        return {"$ref": "#/definitions/" + schema["$ref"].rsplit("/", 1)[1]}
    schema = {k: v for k, v in schema.items() if k in _SWAGGER_KEYWORDS or k.startswith("x-")}
    if "items" in schema:
        schema["items"] = _swagger_schema(schema["items"])
    if "properties" in schema:
        schema["properties"] = {k: _swagger_schema(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _swagger_schema(schema["additionalProperties"])
    return schema


# What a Swagger 2.0 Schema Object may hold (besides x-* extensions); the rest of JSON Schema is dropped.
_SWAGGER_KEYWORDS = frozenset(
    {
        "format", "title", "description", "default", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties",
        "minProperties", "required", "enum", "type", "items", "allOf", "properties", "additionalProperties", "readOnly",
        "example",
    }
)  # fmt: skip


def _merge_alternatives(options: list[dict[str, Any]]) -> dict[str, Any]:
    nullable = any(o.get("type") == "null" for o in options)
    rest = [o for o in options if o.get("type") != "null"]
    merged: dict[str, Any]
    if len(rest) == 1:
        merged = dict(rest[0])
    else:
        # A union of objects (the user body: new or existing): one object with every property, `type` telling which.
        resolved = [_resolve(o) for o in rest]
        properties: dict[str, Any] = {}
        for option in resolved:
            for name, prop in option.get("properties", {}).items():
                if name in properties and "const" in prop and "enum" in properties[name]:
                    properties[name]["enum"].append(prop["const"])
                elif name not in properties:
                    properties[name] = {**prop, "enum": [prop["const"]]} if "const" in prop else dict(prop)
                    properties[name].pop("const", None)
        required = set.intersection(*(set(o.get("required", [])) for o in resolved)) if resolved else set()
        merged = {"type": "object", "properties": properties}
        if required:
            merged["required"] = sorted(required)
    if nullable:
        merged["x-nullable"] = True
    return merged


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _component_schemas()[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _decorate_request_fields(definitions: dict[str, dict[str, Any]]) -> None:
    """Display names everywhere; visibility for the request's fields; roles from the tenant's live definitions."""
    for definition in definitions.values():
        for name, prop in definition.get("properties", {}).items():
            summary, visibility = FIELD_UI.get(name, (_title(name), None))
            prop.setdefault("x-ms-summary", summary)
            if visibility and definition is definitions.get("GrantRequestBody"):
                prop["x-ms-visibility"] = visibility
    roles = definitions["GrantRequestBody"]["properties"]["roles"]
    roles["description"] = "Entra role display names or template ids; chosen from the tenant's live role definitions."
    roles["items"]["x-ms-dynamic-values"] = {
        "operationId": "list_tenant_roles",
        "parameters": {"tenantId": {"parameter": "tenantId"}},
        "value-collection": "value",
        "value-path": "displayName",
        "value-title": "displayName",
    }
    roles["items"]["x-ms-dynamic-list"] = {
        "operationId": "list_tenant_roles",
        "itemsPath": "value",
        "itemValuePath": "displayName",
        "itemTitlePath": "displayName",
        "parameters": {"tenantId": {"parameterReference": "body/tenantId"}},
    }


def _referenced(node: Any, definitions: dict[str, dict[str, Any]], found: set[str] | None = None) -> set[str]:
    """The definitions the operations refer to, directly or through other definitions."""
    found = set() if found is None else found
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
                _referenced(definitions[name], definitions, found)
        for value in node.values():
            _referenced(value, definitions, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, definitions, found)
    return found


def _title(name: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.replace("-", " ").replace("_", " ")).split()
    return " ".join("ID" if w.lower() == "id" else w[:1].upper() + w[1:] for w in words)


# Files ---------------------------------------------------------------------------------------------------------
CONNECTOR_FILES = ("apiDefinition.swagger.json", "apiProperties.json")


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def connector_files(host: str = CONNECTOR_HOST) -> dict[str, str]:
    return {
        "apiDefinition.swagger.json": render(connector_definition(host)),
        "apiProperties.json": render(connector_properties()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the API description and the Power Platform connector files.")
    parser.add_argument("--connector", type=Path, help="write apiDefinition.swagger.json and apiProperties.json here")
    parser.add_argument("--host", default=CONNECTOR_HOST, help="the function app's host name, for the connector")
    parser.add_argument("--openapi", type=Path, help="write the OpenAPI 3.1 document to this file ('-' for stdout)")
    args = parser.parse_args(argv)
    if args.connector is None and args.openapi is None:
        parser.error("say what to write: --connector DIR and/or --openapi FILE")
    if args.connector is not None:
        args.connector.mkdir(parents=True, exist_ok=True)
        for name, text in connector_files(args.host).items():
            (args.connector / name).write_text(text)
            print(f"wrote {args.connector / name}")
    if args.openapi is not None:
        text = render(openapi_document())
        if str(args.openapi) == "-":
            sys.stdout.write(text)
        else:
            args.openapi.write_text(text)
            print(f"wrote {args.openapi}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
