"""Who may ask for what: a tenant's (or the default) policy, checked at request, at approval and at provisioning.

Every rule compares roles by their canonical id (template id) resolved from the tenant's role definitions, never by
the words a request or a policy happened to use, so naming a role by its template id, its display name or an alias
gets around no rule. Roles a requested group confers (a role-assignable group holding roles) count as requested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from jit.domain.request import ExpirationAction, GrantRequest, UserKind, human
from jit.domain.roles import (
    GLOBAL_ADMINISTRATOR,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    PRIVILEGED_ROLE_ADMINISTRATOR,
    RoleIndex,
)


class ExistingAccountCredentials(StrEnum):
    """Whether a Temporary Access Pass may be issued to an account the product did not create. A TAP satisfies MFA:
    issuing one to somebody's account is taking it over, so it is a decision of its own."""

    NEVER = "never"
    WITH_APPROVAL = "withApproval"  # by an approver who is neither the requester nor the account's owner


@dataclass(frozen=True)
class PolicyViolation:
    rule: str
    message: str


@dataclass(frozen=True)
class GroupRoles:
    """What the directory says a requested group is: role-assignable or not, and the roles it holds (template ids)."""

    role_assignable: bool
    confers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """Empty lists mean "no restriction". `version` counts the stored revisions (0 for the built-in default)."""

    allowed_roles: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ()
    max_duration: timedelta | None = None
    max_duration_per_role: dict[str, timedelta] = field(default_factory=dict)
    approval_required: bool = False
    roles_requiring_approval: tuple[str, ...] = (
        GLOBAL_ADMINISTRATOR,
        PRIVILEGED_ROLE_ADMINISTRATOR,
        PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    )
    # Role-assignable groups are privileged by nature and need approval, unless an admin listed them here.
    groups_without_approval: tuple[str, ...] = ()
    ticket_required: bool = False
    ticket_pattern: str | None = None
    tap_min_lifetime_minutes: int | None = None
    tap_max_lifetime_minutes: int | None = None
    max_concurrent_grants_per_user: int | None = None
    allowed_expiration_actions: tuple[ExpirationAction, ...] = ()
    existing_account_credentials: ExistingAccountCredentials = ExistingAccountCredentials.NEVER
    version: int = 0
    scope: str = "built-in default"

    def violations(
        self,
        request: GrantRequest,
        *,
        roles: RoleIndex,
        groups: Mapping[str, GroupRoles] | None = None,
        open_grants_of_requester: int = 0,
        duration: timedelta | None = None,
    ) -> list[PolicyViolation]:
        """What the request breaks. `duration` replaces the request's own (an extension's new window)."""
        found: list[PolicyViolation] = []
        window = duration if duration is not None else request.duration

        def deny(rule: str, message: str) -> None:
            found.append(PolicyViolation(rule, message))

        wanted = self.roles_of(request, roles=roles, groups=groups)
        if self.allowed_roles:
            allowed = {roles.canonical(r) for r in self.allowed_roles}
            denied = [name for key, name in wanted.items() if key not in allowed]
            if denied:
                deny("allowedRoles", f"the policy does not allow {', '.join(denied)}")
        if self.allowed_groups:
            allowed_groups = {g.lower() for g in self.allowed_groups}
            denied_groups = [g for g in request.groups if g.lower() not in allowed_groups]
            if denied_groups:
                deny("allowedGroups", f"the policy does not allow group {', '.join(denied_groups)}")
        if self.max_duration is not None and window > self.max_duration:
            deny("maxDuration", f"the policy allows at most {human(self.max_duration)} per grant")
        for role, limit in self.max_duration_per_role.items():
            key = roles.canonical(role)
            if key in wanted and window > limit:
                deny("maxDurationPerRole", f"the policy allows {wanted[key]} for at most {human(limit)}")
        if self.ticket_required and not request.ticket_id:
            deny("ticketRequired", "the policy requires a ticketId")
        if self.ticket_pattern and request.ticket_id and not ticket_matches(self.ticket_pattern, request.ticket_id):
            deny("ticketPattern", f"ticketId must match {self.ticket_pattern}")
        lifetime = request.tap.lifetime_in_minutes if request.tap.enabled else None
        if lifetime is not None and self.tap_min_lifetime_minutes is not None and lifetime < self.tap_min_lifetime_minutes:
            deny("temporaryAccessPass", f"a TAP must live at least {self.tap_min_lifetime_minutes} minutes")
        if lifetime is not None and self.tap_max_lifetime_minutes is not None and lifetime > self.tap_max_lifetime_minutes:
            deny("temporaryAccessPass", f"a TAP may live at most {self.tap_max_lifetime_minutes} minutes")
        existing_account = request.user.kind is UserKind.EXISTING
        if request.tap.enabled and existing_account and self.existing_account_credentials is ExistingAccountCredentials.NEVER:
            deny(
                "existingAccountCredentials",
                "the policy does not issue a Temporary Access Pass to an account the product did not create",
            )
        if self.allowed_expiration_actions:
            denied_actions = [a.value for a in request.expiration_actions if a not in self.allowed_expiration_actions]
            if denied_actions:
                deny("allowedExpirationActions", f"the policy does not allow {', '.join(denied_actions)}")
        limit_open = self.max_concurrent_grants_per_user
        if limit_open is not None and open_grants_of_requester >= limit_open:
            deny("maxConcurrentGrantsPerUser", f"the policy allows {limit_open} open grants per requester")
        return found

    def roles_of(
        self, request: GrantRequest, *, roles: RoleIndex, groups: Mapping[str, GroupRoles] | None = None
    ) -> dict[str, str]:
        """Every role the request would give, requested or conferred by its groups: canonical id -> a name for it."""
        wanted: dict[str, str] = {}
        for text in request.roles:
            found = roles.find(text)
            wanted.setdefault(roles.canonical(text), found.display_name if found else text)
        for group_id, facts in (groups or {}).items():
            for template in facts.confers:
                found = roles.find(template)
                name = found.display_name if found else template
                wanted.setdefault(template.lower(), f"{name} (through group {group_id})")
        return wanted

    def approval_reasons(
        self, request: GrantRequest, *, roles: RoleIndex, groups: Mapping[str, GroupRoles] | None = None
    ) -> list[str]:
        """Why the request needs an approver (empty: it does not). Said to the approver, and to the requester."""
        reasons: list[str] = []
        if self.approval_required:
            reasons.append("approvalRequired: the policy requires approval for every request")
        gated = {roles.canonical(r) for r in self.roles_requiring_approval}
        for key, name in self.roles_of(request, roles=roles, groups=groups).items():
            if key in gated:
                reasons.append(f"rolesRequiringApproval: {name}")
        exempt = {g.lower() for g in self.groups_without_approval}
        for group_id, facts in (groups or {}).items():
            if facts.role_assignable and group_id.lower() not in exempt:
                reasons.append(f"roleAssignableGroup: group {group_id} can hold directory roles")
        if (
            request.tap.enabled
            and request.user.kind is UserKind.EXISTING
            and self.existing_account_credentials is ExistingAccountCredentials.WITH_APPROVAL
        ):
            reasons.append("existingAccountCredentials: a Temporary Access Pass for an existing account")
        return reasons


def ticket_matches(pattern: str, ticket: str) -> bool:
    """Full match in linear time (RE2): an admin's pattern can not make a request take seconds."""
    import re2

    return re2.fullmatch(pattern, ticket) is not None
