"""Response models: what the handlers answer, as JSON, field for field (jit/api/views.py, problems.py, the handlers).

Keys that are always present are required (null where the view gives None); keys a view adds only sometimes are
optional (`X | SkipJsonSchema[None] = None`: absent, never null). Every model forbids unknown keys, except where a
model says why it does not (`extra="allow"`): there the answer may carry more than this file names.

tests/unit/test_openapi.py feeds the views' real output through these models; the fuzz test
(tests/e2e/test_fuzz_api.py) checks live answers against the schemas made from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from jit.api.schemas import TemplateBody
from jit.domain.caller import AppRole, CallerKind
from jit.domain.drift import DriftKind
from jit.domain.grant import ExtensionState, Status
from jit.domain.notification import Event
from jit.domain.policy import ExistingAccountCredentials
from jit.domain.policy_document import PolicyBody
from jit.domain.progress import ItemState
from jit.domain.request import ExpirationAction
from jit.domain.tenant import OnboardingState


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Grants (views.grant_json) -----------------------------------------------------------------------------------------
class GrantUser(_Answer):
    """The user as the request named it."""

    type: Literal["new", "existing"]
    displayName: str | SkipJsonSchema[None] = None
    userPrincipalName: str | SkipJsonSchema[None] = None
    id: str | SkipJsonSchema[None] = None


class GrantTemporaryAccessPass(_Answer):
    """The Temporary Access Pass the request asked for (its settings, never a value)."""

    enabled: bool
    lifetimeInMinutes: int
    isUsableOnce: bool


class GrantNotifications(_Answer):
    """Who hears about the grant, as the request said. Grants stored before named channels may carry the addresses
    they were given (webhook addresses without their query strings: `?…`); those keys stay optional."""

    channels: list[str] | SkipJsonSchema[None] = None
    ticketNotes: bool | SkipJsonSchema[None] = None
    events: list[Event] | SkipJsonSchema[None] = None
    emails: list[str] | SkipJsonSchema[None] = None
    teamsWebhookUrls: list[str] | SkipJsonSchema[None] = None
    webhookUrls: list[str] | SkipJsonSchema[None] = None


class AccessUser(_Answer):
    """The account the grant works on: one it created, or one that existed (`created` false)."""

    id: str | None
    userPrincipalName: str | None
    created: bool


class AccessRole(_Answer):
    """A role the grant gives. `state`: made by this grant (`done`), there before (`preexisting`), another live
    grant's too (`shared`), handed over at the end (`kept`), taken away (`removed`), or about to be made (`pending`)."""

    roleDefinitionId: str
    templateId: str | None
    name: str
    state: ItemState


class AccessGroup(_Answer):
    id: str
    name: str | None
    state: ItemState


class AccessCredential(_Answer):
    """The sign-in credential issued for the grant: its kind and state, never its value (that is handed out once, by
    GET .../credentials)."""

    kind: Literal["temporaryAccessPass", "password"] = Field(
        description="A Temporary Access Pass (Entra ID), or a one-time password (an on-premises domain)."
    )
    state: ItemState
    expiresAt: datetime | None
    retrievedAt: datetime | None


class AccessTemporaryAccessPass(_Answer):
    """The same credential when it is a Temporary Access Pass (kept for clients written before other kinds)."""

    state: ItemState
    expiresAt: datetime | None
    retrievedAt: datetime | None


class DirectoryHealth(_Answer):
    """Whether the directory can be reached now, as far as the service knows without asking it (an on-premises
    agent's heartbeat): shown while a grant there is unfinished, and with the tenant."""

    available: bool
    detail: str | None
    lastSeen: datetime | None
    facts: dict[str, str] = Field(description="For an on-premises agent: its version, host and key id.")


class AccessExpiration(_Answer):
    """How taking the access away went: verified, or what remains and since when (only the keys that apply)."""

    verifiedAt: datetime | SkipJsonSchema[None] = None
    actions: list[str] | SkipJsonSchema[None] = None
    remaining: list[str] | SkipJsonSchema[None] = None
    attempts: int | SkipJsonSchema[None] = None
    lastAttemptAt: datetime | SkipJsonSchema[None] = None
    alertedAt: datetime | SkipJsonSchema[None] = None
    flag: str | SkipJsonSchema[None] = None


class GrantAccess(_Answer):
    """What the grant holds in the directory, as far as the system knows."""

    user: AccessUser | None
    roles: list[AccessRole]
    groups: list[AccessGroup]
    credential: AccessCredential | None
    temporaryAccessPass: AccessTemporaryAccessPass | None
    rolesConferredByGroups: list[str] | SkipJsonSchema[None] = Field(
        default=None, description="Template ids of the roles the grant's role-assignable groups confer."
    )
    expiration: AccessExpiration | SkipJsonSchema[None] = None


class GrantExtension(_Answer):
    """The latest request to move the grant's end: applied at once (`Approved` by policy), or waiting for an
    approver, or denied. The grant's own `endDateTime` changes only once it is approved."""

    endDateTime: datetime
    previousEndDateTime: datetime | None
    status: ExtensionState
    requestedBy: str
    requestedDateTime: datetime
    reason: str
    decidedBy: str | None
    decidedDateTime: datetime | None
    comment: str | None


class GrantError(_Answer):
    """Why the grant failed: the step, a message, and the directory's error code and request id when it refused."""

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
    directory: str = Field(description="Where the access lives: `entra`, `entra-pim` or `ad:<site>`.")
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
    notifications: GrantNotifications | None
    templateName: str | None
    requestedBy: str
    requesterId: str = Field(description="The requester's object id (`service:<name>` for a function key).")
    createdDateTime: datetime
    lastModifiedDateTime: datetime
    revokeRequestedDateTime: datetime | None
    revokedDateTime: datetime | None
    latenessSeconds: float | None
    access: GrantAccess
    extension: GrantExtension | None
    error: GrantError | None
    history: list[Transition]
    directoryHealth: DirectoryHealth | SkipJsonSchema[None] = Field(
        default=None, description="While the grant is unfinished, when its directory says how reachable it is."
    )


class GrantList(_Answer):
    value: list[Grant]
    continuationToken: str | None
    nextLink: str | SkipJsonSchema[None] = None


class ApprovalItem(Grant):
    """A grant waiting for a decision: the request itself, or an extension of a live grant."""

    approvalKind: Literal["request", "extension"]
    approvalReasons: list[str]
    canDecide: bool = Field(description="Whether this caller may decide it (never their own, never as a key or app).")
    cannotDecideReason: str | SkipJsonSchema[None] = Field(default=None, description="Why not, when canDecide is false.")


class ApprovalList(_Answer):
    value: list[ApprovalItem]


class Violation(_Answer):
    rule: str
    detail: str


class Assessment(_Answer):
    """What policy says of a request, nothing stored: whether it is allowed, and whether it would need approval."""

    tenantId: str
    directory: str
    startDateTime: datetime
    endDateTime: datetime
    allowed: bool
    violations: list[Violation]
    needsApproval: bool
    approvalReasons: list[str]


class HandedCredential(_Answer):
    kind: Literal["temporaryAccessPass", "password"]
    value: str = Field(description="The secret itself. Never store or log it.")
    expiresAt: datetime | None


class Credentials(_Answer):
    """The grant's sign-in credential, handed out once."""

    grantId: str
    userPrincipalName: str | None
    credential: HandedCredential
    temporaryAccessPass: str | SkipJsonSchema[None] = Field(
        default=None, description="A pass's value again, for clients written before `credential` (passes only)."
    )
    expiresDateTime: datetime | None
    isUsableOnce: bool


class WhoAmI(_Answer):
    """The caller as the service sees it: the object id (`service:<name>` for a function key), a name for display,
    the kind, and the app roles it holds here."""

    id: str
    name: str
    kind: CallerKind
    roles: list[AppRole]


# Problems (problems.py) ------------------------------------------------------------------------------------------
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


# Tenants (tenants_api.py) ----------------------------------------------------------------------------------------
class Tenant(_Answer):
    """An onboarded tenant (`registration_json`)."""

    id: str
    displayName: str
    initialDomain: str
    domains: list[str]
    state: OnboardingState
    directories: list[str]
    defaultDirectory: str
    pimLicensed: bool | None
    detail: str | None
    onboardedBy: str | None
    onboardedDateTime: datetime | None
    checkedDateTime: datetime | None
    directoryHealth: dict[str, DirectoryHealth] | SkipJsonSchema[None] = Field(
        default=None, description="Per directory that says how reachable it is (on-premises sites: the agent)."
    )


class PendingTenant(_Answer):
    """A tenant an admin asked for, not checked yet (or whose check failed: see detail)."""

    tenant: str
    requestedBy: str | None
    requestedAt: datetime | None
    detail: str


class TenantList(_Answer):
    value: list[Tenant]
    pending: list[PendingTenant] | SkipJsonSchema[None] = Field(default=None, description="For Jit.Admin only.")


class TenantOnboarding(_Answer):
    """A tenant being onboarded: the directory is being asked who it is. `state` is `Pending`, or the kind of the
    last check's problem (the text before the first ':' of `detail`)."""

    tenant: str
    state: str
    detail: str | None


class TenantCheckQueued(_Answer):
    tenant: str
    detail: str


class RoleDefinition(_Answer):
    id: str
    templateId: str
    displayName: str
    privileged: bool


class RoleList(_Answer):
    value: list[RoleDefinition]


class DirectoryGroup(_Answer):
    id: str
    displayName: str
    isAssignableToRole: bool


class GroupList(_Answer):
    value: list[DirectoryGroup]


# Administration (admin_api.py) -----------------------------------------------------------------------------------
class PolicyTemporaryAccessPass(_Answer):
    minLifetimeInMinutes: int | None
    maxLifetimeInMinutes: int | None


class Policy(_Answer):
    """The policy in force for a scope (jit/domain/policy_document.py `policy_json`); `version` is also the ETag."""

    scope: str
    version: int
    allowedRoles: list[str]
    allowedGroups: list[str]
    groupsWithoutApproval: list[str]
    maxDuration: str | None
    maxDurationPerRole: dict[str, str | None]
    approvalRequired: bool
    rolesRequiringApproval: list[str]
    ticketRequired: bool
    ticketPattern: str | None
    temporaryAccessPass: PolicyTemporaryAccessPass
    maxConcurrentGrantsPerUser: int | None
    allowedExpirationActions: list[ExpirationAction]
    existingAccountCredentials: ExistingAccountCredentials
    # The scope has no policy of its own yet: whose is in force (`default` or `built-in`).
    inheritedFrom: str | SkipJsonSchema[None] = None


class PolicyRevision(_Answer):
    version: int
    updatedBy: str
    updatedDateTime: datetime
    document: PolicyBody


class PolicyHistory(_Answer):
    """Every saved revision of the scope's own policy, oldest first."""

    value: list[PolicyRevision]


class Template(TemplateBody):
    """A stored template: its name and scope (`global` or a tenant) and the fields it was saved with."""

    name: str
    scope: str


class TemplateList(_Answer):
    value: list[Template]


class Channel(_Answer):
    """A named notification channel. Its addresses (which may carry signatures) are shown to Jit.Admin only."""

    name: str
    kind: Literal["email", "teams", "webhook"]
    description: str
    addresses: list[str] | SkipJsonSchema[None] = None
    allowPrivateNetwork: bool | SkipJsonSchema[None] = None


class ChannelList(_Answer):
    value: list[Channel]


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


# Audit (audit_api.py) --------------------------------------------------------------------------------------------
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
    requestedBy: str


class MonthlyReport(_Answer):
    tenantId: str
    month: str
    rows: list[ReportRow]


class AuditEntry(_Answer):
    """One line of the audit trail: an entry of one hash chain (a grant's, a policy's, a template's …)."""

    at: datetime
    chain: str
    sequence: int
    tenantId: str
    grantId: str
    actor: str
    action: str
    outcome: str
    detail: str
    hash: str
    prevHash: str


class AuditVerification(_Answer):
    intact: bool
    checked: int
    chains: int
    brokenAt: str | None
    problem: str | None
    problems: list[str]


class AuditVerificationLine(_Answer):
    """The last line of the audit trail: the verification of every chain of the partition."""

    verification: AuditVerification


# The service (service_api.py) ------------------------------------------------------------------------------------
class Health(_Answer):
    status: Literal["healthy", "unhealthy"]
    reason: str | SkipJsonSchema[None] = None


class PortalSettings(_Answer):
    """What the portal signs people in with (nothing secret)."""

    signIn: bool
    authority: str | None
    clientId: str | None
    scope: str | None


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Grant,
    GrantList,
    ApprovalList,
    Assessment,
    Credentials,
    WhoAmI,
    Problem,
    Tenant,
    TenantList,
    TenantOnboarding,
    TenantCheckQueued,
    RoleList,
    GroupList,
    Policy,
    PolicyHistory,
    Template,
    TemplateList,
    Channel,
    ChannelList,
    DriftList,
    MonthlyReport,
    AuditEntry,
    AuditVerificationLine,
    Health,
    PortalSettings,
)
# Free-form answers (not models): the description itself, the audit trail's lines, the report as CSV.
EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "OpenApiDocument": {"title": "OpenApiDocument", "type": "object", "description": "This document."},
    "AuditLines": {
        "title": "AuditLines",
        "type": "string",
        "description": "Newline-delimited JSON: one AuditEntry per line, then one AuditVerificationLine.",
    },
    "AuditLine": {
        "title": "AuditLine",
        "anyOf": [{"$ref": "#/components/schemas/AuditEntry"}, {"$ref": "#/components/schemas/AuditVerificationLine"}],
    },
    "ReportCsv": {
        "title": "ReportCsv",
        "type": "string",
        "description": "CSV with a header row: grantId, user, roles, groups, from, to, durationMinutes, reason, ticketId, "
        "status, requestedBy (lists joined with '; '; a cell that a spreadsheet would run as a formula starts with ').",
    },
}
