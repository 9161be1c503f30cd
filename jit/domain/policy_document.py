"""A policy as a document: the JSON shape (camelCase) the API accepts and the store keeps, validated on write, and
its translation to `Policy`. (Pydantic, no I/O.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from jit.domain.policy import ExistingAccountCredentials, Policy
from jit.domain.request import ExpirationAction

Guid = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
RoleName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class TapBounds(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    minLifetimeInMinutes: Annotated[int, Field(ge=10, le=43200)] | None = None
    maxLifetimeInMinutes: Annotated[int, Field(ge=10, le=43200)] | None = None

    @model_validator(mode="after")
    def ordered(self) -> TapBounds:
        if self.minLifetimeInMinutes and self.maxLifetimeInMinutes and self.minLifetimeInMinutes > self.maxLifetimeInMinutes:
            raise ValueError("minLifetimeInMinutes must not exceed maxLifetimeInMinutes")
        return self


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    allowedRoles: Annotated[list[RoleName], Field(max_length=200)] = []
    allowedGroups: Annotated[list[Guid], Field(max_length=500)] = []
    # Role-assignable groups need approval (they can hold directory roles) unless listed here.
    groupsWithoutApproval: Annotated[list[Guid], Field(max_length=500)] = []
    maxDuration: timedelta | None = None
    maxDurationPerRole: Annotated[dict[RoleName, timedelta], Field(max_length=200)] = {}
    approvalRequired: bool = False
    rolesRequiringApproval: Annotated[list[RoleName], Field(max_length=200)] | None = None
    ticketRequired: bool = False
    ticketPattern: Annotated[str, StringConstraints(max_length=200)] | None = None
    temporaryAccessPass: TapBounds | None = None
    maxConcurrentGrantsPerUser: Annotated[int, Field(ge=1, le=1000)] | None = None
    allowedExpirationActions: Annotated[list[ExpirationAction], Field(max_length=4)] = []
    existingAccountCredentials: ExistingAccountCredentials = ExistingAccountCredentials.NEVER

    @field_validator("ticketPattern")
    @classmethod
    def compiles(cls, pattern: str | None) -> str | None:
        """Patterns run on RE2, which matches in linear time: no pattern can make a request slow. RE2 has no
        back-references or look-around; a pattern using them is refused here, at save."""
        if pattern is not None:
            import re2

            try:
                re2.compile(pattern)
            except re2.error as bad:
                raise ValueError(f"is not a regular expression RE2 accepts (no back-references or look-around): {bad}") from None
        return pattern

    @field_validator("maxDuration")
    @classmethod
    def positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be positive")
        return value

    @field_validator("maxDurationPerRole")
    @classmethod
    def all_positive(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        if any(v <= timedelta(0) for v in value.values()):
            raise ValueError("every duration must be positive")
        return value


def to_policy(body: PolicyBody, *, version: int, scope: str) -> Policy:
    tap = body.temporaryAccessPass or TapBounds()
    approval = Policy().roles_requiring_approval if body.rolesRequiringApproval is None else tuple(body.rolesRequiringApproval)
    return Policy(
        allowed_roles=tuple(body.allowedRoles),
        allowed_groups=tuple(g.lower() for g in body.allowedGroups),
        groups_without_approval=tuple(g.lower() for g in body.groupsWithoutApproval),
        max_duration=body.maxDuration,
        max_duration_per_role=dict(body.maxDurationPerRole),
        approval_required=body.approvalRequired,
        roles_requiring_approval=approval,
        ticket_required=body.ticketRequired,
        ticket_pattern=body.ticketPattern,
        tap_min_lifetime_minutes=tap.minLifetimeInMinutes,
        tap_max_lifetime_minutes=tap.maxLifetimeInMinutes,
        max_concurrent_grants_per_user=body.maxConcurrentGrantsPerUser,
        allowed_expiration_actions=tuple(body.allowedExpirationActions),
        existing_account_credentials=body.existingAccountCredentials,
        version=version,
        scope=scope,
    )


def policy_json(policy: Policy) -> dict[str, Any]:
    return {
        "scope": policy.scope,
        "version": policy.version,
        "allowedRoles": list(policy.allowed_roles),
        "allowedGroups": list(policy.allowed_groups),
        "groupsWithoutApproval": list(policy.groups_without_approval),
        "maxDuration": _iso(policy.max_duration),
        "maxDurationPerRole": {role: _iso(limit) for role, limit in policy.max_duration_per_role.items()},
        "approvalRequired": policy.approval_required,
        "rolesRequiringApproval": list(policy.roles_requiring_approval),
        "ticketRequired": policy.ticket_required,
        "ticketPattern": policy.ticket_pattern,
        "temporaryAccessPass": {
            "minLifetimeInMinutes": policy.tap_min_lifetime_minutes,
            "maxLifetimeInMinutes": policy.tap_max_lifetime_minutes,
        },
        "maxConcurrentGrantsPerUser": policy.max_concurrent_grants_per_user,
        "allowedExpirationActions": [a.value for a in policy.allowed_expiration_actions],
        "existingAccountCredentials": policy.existing_account_credentials.value,
    }


def _iso(span: timedelta | None) -> str | None:
    if span is None:
        return None
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "") if (days or time) else "PT0S"
