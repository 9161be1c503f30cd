"""What the route table (jit/api/routes.py) does not say about each route: its summary and description, tag, answers,
parameters, body, examples, place in the Power Platform connector and side effects — by route name.

Method, path and who may call (and so the security of each registered path) come from `routes.ROUTES`; the
document builders join the two tables by name, and tests/unit/test_openapi.py fails when a name is in one and not
the other. Descriptions follow the handlers (jit/api/*_api.py); answers follow views.py, problems.py and the models
in `models.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

from jit.api.admin_api import ChannelBody, ChannelName
from jit.api.requests_api import DecisionBody, ExtendBody, RevokeBody
from jit.api.schemas import GrantRequestBody, TemplateBody, TemplateName
from jit.api.tenants_api import ConfigureBody, OnboardBody
from jit.domain.policy_document import PolicyBody

SCHEMA_REF = "#/components/schemas/{model}"
JSON = "application/json"
PROBLEM_MEDIA_TYPE = "application/problem+json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"

Visibility = Literal["important", "advanced", "internal"]


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter. Path parameters come from PATH_PARAMS by name unless an operation gives
    its own (two routes may call different things `{name}`)."""

    name: str
    where: Literal["query", "header", "path"]
    schema: dict[str, Any]
    description: str
    required: bool = False
    summary: str = ""
    visibility: Visibility | None = None
    example: Any = None
    machines_only: bool = False  # read only on the function-key path (api/svc/...)


@dataclass(frozen=True)
class Answer:
    status: str  # "200", "202", ... or "default"
    description: str
    schema: str | None = None  # a component name; None for an answer without a body
    media_type: str = JSON
    headers: tuple[str, ...] = ()  # names from HEADERS
    also: tuple[tuple[str, str], ...] = ()  # further (media type, component) the same status may answer with
    item_schema: str | None = None  # newline-delimited JSON: the component each line is


@dataclass(frozen=True)
class Doc:
    summary: str
    description: str
    tag: str
    answers: tuple[Answer, ...]
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_example: dict[str, Any] | None = None
    visibility: Visibility = "advanced"  # in the connector
    in_connector: bool = True
    side_effects: bool = False  # x-ms-no-generic-test: the connector's generic test must not call it
    persons_only: bool = False  # a person's delegated token: applications and keys are refused (403)


HEADERS: dict[str, dict[str, Any]] = {
    "Location": {
        "description": "Where the resource can be polled: GET /api/jit/requests/{id} (a grant), /api/jit/tenants/{tenantId}.",
        "schema": {"type": "string", "format": "uri"},
    },
    "Retry-After": {
        "description": "Seconds to wait before polling again (JIT_POLL_INTERVAL_SECONDS; for a grant scheduled later, "
        "until its start).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "ETag": {"description": "The policy's version, quoted; send it back in If-Match.", "schema": {"type": "string"}},
    "Cache-Control": {"description": "no-store: not to be kept by any cache.", "schema": {"type": "string"}},
    "Pragma": {"description": "no-cache, for HTTP/1.0 caches.", "schema": {"type": "string"}},
    "X-Audit-Intact": {"description": "true when every chain verified, else false.", "schema": {"type": "string"}},
    "WWW-Authenticate": {
        "description": 'Bearer (no token), or Bearer error="invalid_token" (a token that was refused).',
        "schema": {"type": "string"},
    },
    "Content-Disposition": {
        "description": 'attachment; filename="jit-access-<tenant>-<month>.csv".',
        "schema": {"type": "string"},
    },
}

_GUID_OR_DOMAIN = "the tenant's GUID, or one of its verified domains (e.g. its initial domain, *.onmicrosoft.com)"
_NAME_SCHEMA = TypeAdapter(TemplateName).json_schema()
PATH_PARAMS: dict[str, Param] = {
    "id": Param(
        "id", "path", {"type": "string", "minLength": 1}, "The grant's id (a ULID).", True, "Grant ID", "important",
        "01JB0000000000000000000000",
    ),
    "tenantId": Param(
        "tenantId", "path", {"type": "string", "minLength": 1}, f"The tenant: {_GUID_OR_DOMAIN}.", True, "Tenant",
        "important", "demo.onmicrosoft.com",
    ),
    "scope": Param(
        "scope", "path", {"type": "string", "minLength": 1}, f"`default`, or an onboarded tenant: {_GUID_OR_DOMAIN}.",
        True, "Policy Scope", "important", "default",
    ),
    "name": Param("name", "path", _NAME_SCHEMA, "The template's name.", True, "Template Name", "important", "mailbox-admin"),
}  # fmt: skip
_CHANNEL_NAME = Param(
    "name", "path", TypeAdapter(ChannelName).json_schema(), "The channel's name.", True, "Channel Name", "important", "helpdesk"
)

_TENANT_QUERY = Param(
    "tenantId", "query", {"type": "string"}, f"Only this onboarded tenant: {_GUID_OR_DOMAIN}.", summary="Tenant"
)
_TEMPLATE_SCOPE = Param(
    "tenantId",
    "query",
    {"type": "string"},
    f"The onboarded tenant whose template is meant ({_GUID_OR_DOMAIN}); absent: the global template.",
    summary="Tenant",
    visibility="advanced",
)
_TENANT_REQUIRED = Param(
    "tenantId", "query", {"type": "string"}, f"The onboarded tenant: {_GUID_OR_DOMAIN}.", True, "Tenant",
    example="demo.onmicrosoft.com",
)  # fmt: skip
_IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "A retry with the same key and body returns the same grant and creates nothing; the same key with another body "
    "is a 409. Keys are the caller's own. Use the ticket's or the form response's id.",
    summary="Idempotency Key",
    visibility="advanced",
)
_REQUESTED_FOR = Param(
    "X-JIT-Requested-For",
    "header",
    {"type": "string", "maxLength": 256},
    "The person a flow or script acts for; recorded with the service identity as asserted (`requestedBy`), never "
    "trusted for decisions.",
    summary="Requested For",
    visibility="advanced",
    machines_only=True,
)
_IF_MATCH = Param(
    "If-Match",
    "header",
    {"type": "string"},
    'The version of the scope\'s own policy as its ETag gave it ("0" before its first save): the save fails with 409 '
    "when someone saved in between.",
    summary="Expected Version",
    visibility="advanced",
)


def _problem(status: str, description: str, *headers: str) -> Answer:
    return Answer(status, description, "Problem", PROBLEM_MEDIA_TYPE, headers)


DEFAULT = _problem("default", "A problem (RFC 9457): `type` names it, `errors` the fields or rules at fault.")
_INVALID = _problem("400", "The request is invalid; nothing was stored (`errors` names each bad field).")
_ROLE = _problem("403", "The caller lacks the app role this needs.")
_FORBIDDEN = _problem("403", "The caller lacks the app role, or the request is outside the policy (`errors` names the rules).")
_NOT_FOUND = _problem("404", "No such grant (or not one the caller may see).")
_FINAL = _problem("409", "The grant has ended, or is in a state that does not allow this.")
_GRAPH_DENIED = _problem("502", "The directory refused the app in this tenant (admin consent or a permission is missing).")
_GRAPH_DOWN = _problem("503", "The directory is unavailable or throttling; try again.", "Retry-After")
_MOVING = ("Location", "Retry-After")
_GRANT_SETTLED = Answer("200", "The grant; it is in a settled state.", "Grant", headers=("Location",))
_GRANT_MOVING = Answer("202", "The grant; it is still moving: poll Location after Retry-After seconds.", "Grant", headers=_MOVING)
_TENANT_READERS = "Jit.Requester, Jit.Approver or Jit.Admin"

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
_EXAMPLE_CHANNEL: dict[str, Any] = {
    "kind": "email",
    "addresses": ["helpdesk@contoso.com"],
    "description": "The helpdesk's shared mailbox",
}

DOCS: dict[str, Doc] = {
    # Requests and grants ------------------------------------------------------------------------------------------
    "create_request": Doc(
        "Request admin access",
        "Asks for roles and groups in an onboarded tenant for a while, for a new JIT account or an existing user "
        "(Jit.Requester or Jit.Admin). The answer is 202 with the grant, Location and Retry-After: poll Location until "
        "it answers 200 (Active, Failed, Denied…); directory work never happens in this call. A request the policy "
        "gates waits in AwaitingApproval for an approver. A templateName fills the fields the request leaves out.",
        "Requests",
        (
            Answer("202", "Accepted: the grant, with Location and Retry-After to poll.", "Grant", headers=_MOVING),
            _INVALID,
            _FORBIDDEN,
            _problem("409", "The Idempotency-Key was used with another body."),
            _problem("503", "Storage was busy; try again.", "Retry-After"),
            DEFAULT,
        ),
        params=(_IDEMPOTENCY_KEY, _REQUESTED_FOR),
        body=GrantRequestBody,
        body_example=_EXAMPLE_REQUEST,
        visibility="important",
        side_effects=True,
    ),
    "assess_request": Doc(
        "Check a request against the policy",
        "A dry run of Request admin access (Jit.Requester or Jit.Admin): the same body, validated and resolved the "
        "same way (template, tenant, directory, start and end), then what the policy in force says of it: the rules it "
        "breaks and whether it would need approval. Nothing is stored; 200 whether or not it is allowed.",
        "Requests",
        (Answer("200", "What the policy says.", "Assessment"), _INVALID, _ROLE, DEFAULT),
        body=GrantRequestBody,
        body_example=_EXAMPLE_REQUEST,
    ),
    "list_requests": Doc(
        "List grants",
        "Grants, newest first; a requester sees its own, approvers and admins all. Follow nextLink for more.",
        "Requests",
        (Answer("200", "A page of grants.", "GrantList"), _INVALID, DEFAULT),
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
    "get_request": Doc(
        "Get a grant",
        "The grant: 202 with Retry-After while it is moving (AwaitingApproval, Scheduled, Provisioning, Expiring), 200 "
        "in any other state. This is the status URL of the asynchronous pattern. A requester sees its own grants only.",
        "Requests",
        (_GRANT_SETTLED, _GRANT_MOVING, _NOT_FOUND, DEFAULT),
        visibility="important",
    ),
    "revoke_request": Doc(
        "End a grant early",
        "The requester or a Jit.Admin ends a grant: one that has not started becomes Cancelled (200); one that has "
        "becomes Expiring (202) and its expiration actions run at once: poll Location until Revoked.",
        "Requests",
        (_GRANT_SETTLED, _GRANT_MOVING, _INVALID, _FORBIDDEN, _NOT_FOUND, _FINAL, DEFAULT),
        body=RevokeBody,
        body_required=False,
        visibility="important",
        side_effects=True,
    ),
    "extend_request": Doc(
        "Move the end of a grant",
        "The requester or a Jit.Admin asks for a new end of a grant that has not ended (later, or earlier but in the "
        "future), within JIT_MAX_DURATION. An extension is a request: the policy's duration rules apply to the new "
        "window (403 naming them), and a later end for access the policy gates waits for an approver without "
        "touching the running grant (`extension.status` AwaitingApproval); otherwise it applies at once (Approved). "
        "The answer is the grant: 200, or 202 while it is still on its way to Active.",
        "Requests",
        (_GRANT_SETTLED, _GRANT_MOVING, _INVALID, _FORBIDDEN, _NOT_FOUND, _FINAL, DEFAULT),
        body=ExtendBody,
        side_effects=True,
    ),
    "approve_request": Doc(
        "Approve a request",
        "Approves a request, or an extension, that awaits approval (Jit.Approver or Jit.Admin, as a person: never "
        "one's own request, never access for oneself). The policy is checked again; the decision is audited. An "
        "approved request becomes Scheduled (202: poll until Active); an approved extension moves the end (200).",
        "Approvals",
        (
            _GRANT_SETTLED,
            _GRANT_MOVING,
            _INVALID,
            _problem("403", "Not an approver, not a person, the caller's own request, or outside the policy now."),
            _NOT_FOUND,
            _problem("409", "Nothing of the grant awaits approval, or it can no longer be approved."),
            DEFAULT,
        ),
        body=DecisionBody,
        body_required=False,
        visibility="important",
        side_effects=True,
        persons_only=True,
    ),
    "deny_request": Doc(
        "Deny a request",
        "Denies a request (it becomes Denied) or an extension (the grant keeps its end) that awaits approval "
        "(Jit.Approver or Jit.Admin, as a person: never one's own). The decision is audited.",
        "Approvals",
        (
            _GRANT_SETTLED,
            _GRANT_MOVING,
            _INVALID,
            _problem("403", "Not an approver, not a person, or the caller's own request."),
            _NOT_FOUND,
            _problem("409", "Nothing of the grant awaits approval."),
            DEFAULT,
        ),
        body=DecisionBody,
        body_required=False,
        visibility="important",
        side_effects=True,
        persons_only=True,
    ),
    "get_credentials": Doc(
        "Retrieve the sign-in credential once",
        "The grant's sign-in credential (a Temporary Access Pass in Entra ID, a one-time password in an on-premises "
        "domain), exactly once, to the person who requested the grant (never to a key or an application, nor to "
        "anybody else, admins included), while the grant is Active; erased as it is handed out, and audited. 409 "
        "before it is issued (with Retry-After while the grant moves), 410 once retrieved, expired or ended.",
        "Credentials",
        (
            Answer("200", "The credential. Never store or log it.", "Credentials", headers=("Cache-Control", "Pragma")),
            _problem("403", "Only the person who requested the grant may retrieve the credential."),
            _problem("404", "No such grant, or the grant has no sign-in credential."),
            _problem("409", "The credential is not issued yet.", "Retry-After"),
            _problem("410", "The credential was already retrieved, has expired, or the grant has ended."),
            _problem("503", "The credential is kept but cannot be opened with this service's keys; it stays stored."),
            DEFAULT,
        ),
        visibility="important",
        side_effects=True,
        persons_only=True,
    ),
    "list_approvals": Doc(
        "List requests awaiting approval",
        "The approver's inbox (Jit.Approver or Jit.Admin): requests in AwaitingApproval and extensions of Active "
        "grants waiting for a decision, each a grant with why it needs approval and whether this caller may decide it.",
        "Approvals",
        (Answer("200", "What waits for a decision.", "ApprovalList"), _ROLE, DEFAULT),
        visibility="important",
    ),
    "whoami": Doc(
        "Who am I",
        "The caller as this service sees it: the object id, a name, the kind (person, application, service-key) and "
        "the app roles it holds. Creating a connection calls it.",
        "Service",
        (Answer("200", "The caller.", "WhoAmI"), DEFAULT),
    ),
    # Tenants ------------------------------------------------------------------------------------------------------
    "list_tenants": Doc(
        "List tenants",
        f"The onboarded tenants, by name ({_TENANT_READERS}); a Jit.Admin also sees the ones waiting to be checked.",
        "Tenants",
        (Answer("200", "The tenants.", "TenantList"), _ROLE, DEFAULT),
    ),
    "onboard_tenant": Doc(
        "Onboard a tenant",
        "Asks for a tenant to be served (Jit.Admin): the directory is asked who it is (its GUID, name, domains, whether "
        "the app has consent and PIM is licensed) in the background. 202 with Location while that runs; 200 with the "
        "registration when the tenant is onboarded already.",
        "Tenants",
        (
            Answer("200", "The tenant is onboarded already.", "Tenant", headers=("Location",)),
            Answer("202", "Being checked: poll Location.", "TenantOnboarding", headers=_MOVING),
            _INVALID,
            _ROLE,
            DEFAULT,
        ),
        body=OnboardBody,
        body_example={"tenant": "contoso.onmicrosoft.com", "directories": ["entra", "entra-pim"]},
        visibility="internal",
        side_effects=True,
    ),
    "get_tenant": Doc(
        "Get a tenant",
        f"An onboarded tenant ({_TENANT_READERS}). To a Jit.Admin, a tenant still being checked answers 202 with "
        "Retry-After and what the check says so far.",
        "Tenants",
        (
            Answer("200", "The tenant.", "Tenant"),
            Answer("202", "Still being checked.", "TenantOnboarding", headers=("Retry-After",)),
            _INVALID,
            _ROLE,
            _problem("404", "The tenant is not onboarded."),
            DEFAULT,
        ),
    ),
    "configure_tenant": Doc(
        "Configure a tenant",
        "Changes which directories a tenant's requests may use and the default one, or offboards it (no new requests; "
        "what is live ends normally) or takes it back (it is checked again). Jit.Admin; fields left out keep their "
        "value.",
        "Tenants",
        (
            Answer("200", "The tenant, changed.", "Tenant"),
            _INVALID,
            _ROLE,
            _problem("404", "The tenant is not onboarded."),
            _problem("409", "The tenant was changed meanwhile; try again."),
            DEFAULT,
        ),
        body=ConfigureBody,
        body_example={"directories": ["entra", "entra-pim"], "defaultDirectory": "entra"},
        visibility="internal",
        side_effects=True,
    ),
    "check_tenant": Doc(
        "Check a tenant again",
        "Queues a new check of an onboarded or waiting tenant against its directory (Jit.Admin): after consent was "
        "granted, or to refresh its name, domains and licences.",
        "Tenants",
        (
            Answer("202", "Queued: poll Location.", "TenantCheckQueued", headers=("Location",)),
            _INVALID,
            _ROLE,
            _problem("404", "The tenant is neither onboarded nor waiting to be."),
            DEFAULT,
        ),
        visibility="internal",
        side_effects=True,
    ),
    "list_tenant_roles": Doc(
        "List the tenant's roles",
        f"The tenant's live Entra role definitions, sorted by name, for drop-downs ({_TENANT_READERS}); `privileged` "
        "marks the roles Microsoft labels privileged.",
        "Tenants",
        (
            Answer("200", "The role definitions.", "RoleList"),
            _problem("400", "Not an onboarded tenant."),
            _ROLE,
            _GRAPH_DENIED,
            _GRAPH_DOWN,
            DEFAULT,
        ),
    ),
    "list_tenant_groups": Doc(
        "Find the tenant's groups",
        f"Groups of the tenant whose name starts with `search`, read live, for the request form ({_TENANT_READERS}).",
        "Tenants",
        (
            Answer("200", "The groups found.", "GroupList"),
            _INVALID,
            _ROLE,
            _GRAPH_DENIED,
            _GRAPH_DOWN,
            DEFAULT,
        ),
        params=(
            Param(
                "search",
                "query",
                {"type": "string", "minLength": 2, "maxLength": 100},
                "The start of a group's name (2 to 100 characters).",
                True,
                "Search",
                example="Help",
            ),
        ),
    ),
    # Administration -----------------------------------------------------------------------------------------------
    "get_policy": Doc(
        "Get the policy in force",
        f"The policy in force for the scope ({_TENANT_READERS}): the tenant's own, else the default one, else the "
        "built-in default.",
        "Policies",
        (Answer("200", "The policy; its version is the ETag.", "Policy", headers=("ETag",)), _INVALID, _ROLE, DEFAULT),
    ),
    "put_policy": Doc(
        "Save a policy",
        "Saves a new revision of the scope's policy (Jit.Admin). Every revision is kept (see the history); If-Match is honoured.",
        "Policies",
        (
            Answer("200", "The saved policy; its version is the ETag.", "Policy", headers=("ETag",)),
            _INVALID,
            _ROLE,
            _problem("409", "The policy is at another version than If-Match said, or was saved meanwhile."),
            _problem("413", "The policy is larger than a stored document may be."),
            DEFAULT,
        ),
        params=(_IF_MATCH,),
        body=PolicyBody,
        body_example=_EXAMPLE_POLICY,
        visibility="internal",
        side_effects=True,
    ),
    "policy_history": Doc(
        "Policy history",
        "Every saved revision of the scope's own policy: version, who saved it and when, and the document (Jit.Admin).",
        "Policies",
        (Answer("200", "The revisions.", "PolicyHistory"), _INVALID, _ROLE, DEFAULT),
        visibility="internal",
    ),
    "list_templates": Doc(
        "List request templates",
        f"The global templates, and with tenantId also that tenant's own ({_TENANT_READERS}).",
        "Templates",
        (Answer("200", "The templates.", "TemplateList"), _INVALID, _ROLE, DEFAULT),
        params=(_TEMPLATE_SCOPE,),
    ),
    "get_template": Doc(
        "Get a request template",
        f"The template of that name: the tenant's own with tenantId, else the global one ({_TENANT_READERS}).",
        "Templates",
        (Answer("200", "The template.", "Template"), _INVALID, _ROLE, _problem("404", "No template of that name."), DEFAULT),
        params=(_TEMPLATE_SCOPE,),
    ),
    "put_template": Doc(
        "Save a request template",
        "Saves a template (Jit.Admin): any request field but the tenant and the user, and a prefix for the reason. A "
        "request naming it in templateName gets its fields unless it gives its own.",
        "Templates",
        (
            Answer("200", "The template, replaced.", "Template"),
            Answer("201", "The template, new.", "Template"),
            _INVALID,
            _ROLE,
            _problem("409", "The template was changed meanwhile; try again."),
            DEFAULT,
        ),
        params=(_TEMPLATE_SCOPE,),
        body=TemplateBody,
        body_example=_EXAMPLE_TEMPLATE,
        visibility="internal",
        side_effects=True,
    ),
    "delete_template": Doc(
        "Delete a request template",
        "Deletes a template (Jit.Admin).",
        "Templates",
        (Answer("204", "Deleted."), _INVALID, _ROLE, _problem("404", "No template of that name."), DEFAULT),
        params=(_TEMPLATE_SCOPE,),
        visibility="internal",
        side_effects=True,
    ),
    "list_channels": Doc(
        "List notification channels",
        f"The named channels a request may send its notifications to ({_TENANT_READERS}). Their addresses, which may "
        "carry signatures, are shown to Jit.Admin only.",
        "Channels",
        (Answer("200", "The channels.", "ChannelList"), _ROLE, DEFAULT),
    ),
    "put_channel": Doc(
        "Save a notification channel",
        "Saves a named channel (Jit.Admin): mailboxes, a Teams (Workflows) address or a webhook address. Web addresses "
        "must be https; addresses on loopback, private, link-local or metadata networks are refused when delivered "
        "unless allowPrivateNetwork says otherwise.",
        "Channels",
        (
            Answer("200", "The channel, replaced.", "Channel"),
            Answer("201", "The channel, new.", "Channel"),
            _INVALID,
            _ROLE,
            _problem("409", "The channel was changed meanwhile; try again."),
            DEFAULT,
        ),
        params=(_CHANNEL_NAME,),
        body=ChannelBody,
        body_example=_EXAMPLE_CHANNEL,
        visibility="internal",
        side_effects=True,
    ),
    "delete_channel": Doc(
        "Delete a notification channel",
        "Deletes a named channel (Jit.Admin); requests naming it afterwards are refused.",
        "Channels",
        (Answer("204", "Deleted."), _INVALID, _ROLE, _problem("404", "No channel of that name."), DEFAULT),
        params=(_CHANNEL_NAME,),
        visibility="internal",
        side_effects=True,
    ),
    "list_drift": Doc(
        "List drift findings",
        "Findings of the daily drift check, newest first (default: the last 7 days). Jit.Approver or Jit.Admin.",
        "Drift",
        (Answer("200", "The findings.", "DriftList"), _INVALID, _ROLE, DEFAULT),
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
    # Audit --------------------------------------------------------------------------------------------------------
    "read_audit": Doc(
        "Read the audit trail",
        "One JSON object per line per audit entry in the range (default: the 30 days up to `to`), in time order, then "
        "one line with the verification of every hash chain of the partition (Jit.Admin). tenantId `global` reads "
        "what belongs to no tenant: the default policy, global templates, channels.",
        "Audit",
        (
            Answer(
                "200",
                "Newline-delimited JSON: AuditEntry lines, then one AuditVerificationLine.",
                "AuditLines",
                NDJSON,
                ("X-Audit-Intact", "Cache-Control"),
                item_schema="AuditLine",
            ),
            _INVALID,
            _ROLE,
            DEFAULT,
        ),
        params=(
            Param(
                "tenantId",
                "query",
                {"type": "string"},
                f"An onboarded tenant ({_GUID_OR_DOMAIN}), or `global`.",
                True,
                "Tenant",
                example="demo.onmicrosoft.com",
            ),
            Param("from", "query", {"type": "string", "format": "date-time"}, "Start of the range.", summary="From"),
            Param("to", "query", {"type": "string", "format": "date-time"}, "End of the range (default now).", summary="To"),
        ),
        visibility="internal",
    ),
    "monthly_report": Doc(
        "Monthly access report",
        "Who had which access in the tenant during the month (from becoming Active to verified removal), for how long, "
        "why and with which ticket (Jit.Approver or Jit.Admin). JSON, or CSV for a spreadsheet with format=csv.",
        "Audit",
        (
            Answer(
                "200",
                "The report (JSON, or CSV as an attachment with format=csv).",
                "MonthlyReport",
                headers=("Content-Disposition",),
                also=((CSV, "ReportCsv"),),
            ),
            _INVALID,
            _ROLE,
            DEFAULT,
        ),
        params=(
            _TENANT_REQUIRED,
            Param(
                "month",
                "query",
                {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"},
                "YYYY-MM, from 1970-01.",
                True,
                "Month",
                example="2025-01",
            ),
            Param(
                "format",
                "query",
                {"type": "string", "enum": ["json", "csv"], "default": "json"},
                "json, or csv for a spreadsheet.",
                summary="Format",
                visibility="advanced",
            ),
        ),
    ),
    # The service --------------------------------------------------------------------------------------------------
    "health": Doc(
        "Health check",
        "200 when storage answers, 503 otherwise. Needs no sign-in.",
        "Service",
        (Answer("200", "Healthy.", "Health"), Answer("503", "Unhealthy: storage does not answer.", "Health")),
        in_connector=False,
    ),
    "get_openapi": Doc(
        "This API description",
        "This OpenAPI 3.1 document, built from the route table that registers the functions, like the Power Platform "
        "connector. Needs no sign-in.",
        "Service",
        (Answer("200", "The OpenAPI document.", "OpenApiDocument"), DEFAULT),
        in_connector=False,
    ),
    "portal_settings": Doc(
        "The portal's sign-in settings",
        "What the web portal signs people in with: the authority, the portal's client id and the API's scope (nothing "
        "secret; from JIT_AUTH_* and JIT_PORTAL_CLIENT_ID). `signIn` is false when bearer tokens or the portal are not "
        "configured. Needs no sign-in.",
        "Service",
        (Answer("200", "The settings.", "PortalSettings", headers=("Cache-Control",)), DEFAULT),
        in_connector=False,
    ),
}
