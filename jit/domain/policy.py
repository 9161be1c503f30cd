"""Who may ask for what: a tenant's (or the default) policy, checked at request, at approval and at provisioning."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from jit.domain.request import ExpirationAction, GrantRequest

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"
# Names that mean the same role. Policies and requests may name a role by display name or template id; until the
# tenant's definitions are read (at provisioning, where the check runs again) these are the equivalences known.
_SAME_ROLE = {
    "company administrator": GLOBAL_ADMINISTRATOR,
    "global administrator": GLOBAL_ADMINISTRATOR,
    "privileged role administrator": PRIVILEGED_ROLE_ADMINISTRATOR,
    "privileged authentication administrator": PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
}


def role_key(role: str) -> str:
    key = role.strip().casefold()
    return _SAME_ROLE.get(key, key)


@dataclass(frozen=True)
class PolicyViolation:
    rule: str
    message: str


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
    ticket_required: bool = False
    ticket_pattern: str | None = None
    tap_min_lifetime_minutes: int | None = None
    tap_max_lifetime_minutes: int | None = None
    max_concurrent_grants_per_user: int | None = None
    allowed_expiration_actions: tuple[ExpirationAction, ...] = ()
    version: int = 0
    scope: str = "built-in default"

    def violations(self, request: GrantRequest, *, open_grants_of_requester: int = 0) -> list[PolicyViolation]:
        found: list[PolicyViolation] = []

        def deny(rule: str, message: str) -> None:
            found.append(PolicyViolation(rule, message))

        if self.allowed_roles:
            allowed = {role_key(r) for r in self.allowed_roles}
            denied = [r for r in request.roles if role_key(r) not in allowed]
            if denied:
                deny("allowedRoles", f"the policy does not allow {', '.join(denied)}")
        if self.allowed_groups:
            allowed_groups = {g.lower() for g in self.allowed_groups}
            denied_groups = [g for g in request.groups if g.lower() not in allowed_groups]
            if denied_groups:
                deny("allowedGroups", f"the policy does not allow group {', '.join(denied_groups)}")
        if self.max_duration is not None and request.duration > self.max_duration:
            deny("maxDuration", f"the policy allows at most {self.max_duration} per grant")
        for role, limit in self.max_duration_per_role.items():
            if any(role_key(r) == role_key(role) for r in request.roles) and request.duration > limit:
                deny("maxDurationPerRole", f"the policy allows {role} for at most {limit}")
        if self.ticket_required and not request.ticket_id:
            deny("ticketRequired", "the policy requires a ticketId")
        if self.ticket_pattern and request.ticket_id and not re.fullmatch(self.ticket_pattern, request.ticket_id):
            deny("ticketPattern", f"ticketId must match {self.ticket_pattern}")
        lifetime = request.tap.lifetime_in_minutes if request.tap.enabled else None
        if lifetime is not None and self.tap_min_lifetime_minutes is not None and lifetime < self.tap_min_lifetime_minutes:
            deny("temporaryAccessPass", f"a TAP must live at least {self.tap_min_lifetime_minutes} minutes")
        if lifetime is not None and self.tap_max_lifetime_minutes is not None and lifetime > self.tap_max_lifetime_minutes:
            deny("temporaryAccessPass", f"a TAP may live at most {self.tap_max_lifetime_minutes} minutes")
        if self.allowed_expiration_actions:
            denied_actions = [a.value for a in request.expiration_actions if a not in self.allowed_expiration_actions]
            if denied_actions:
                deny("allowedExpirationActions", f"the policy does not allow {', '.join(denied_actions)}")
        limit_open = self.max_concurrent_grants_per_user
        if limit_open is not None and open_grants_of_requester >= limit_open:
            deny("maxConcurrentGrantsPerUser", f"the policy allows {limit_open} open grants per requester")
        return found

    def needs_approval(self, roles: tuple[str, ...]) -> bool:
        if self.approval_required:
            return True
        gated = {role_key(r) for r in self.roles_requiring_approval}
        return any(role_key(r) in gated for r in roles)
