"""What a caller asks for: a validated grant request.

Shapes and types are checked at the edge (the HTTP schema); the rules that need "now" and the configured limits are
checked here, when the request is built, so no invalid request can exist past intake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from jit.domain.errors import FieldError, ValidationFailed


class ExpirationAction(StrEnum):
    DELETE_USER = "DeleteUser"
    DISABLE_USER = "DisableUser"
    REMOVE_ROLES = "RemoveRoles"
    REMOVE_GROUPS = "RemoveGroups"


class UserKind(StrEnum):
    NEW = "new"
    EXISTING = "existing"


@dataclass(frozen=True)
class UserSpec:
    """The account the grant is for: one the system creates (`new`) or one that already exists."""

    kind: UserKind
    display_name: str | None = None
    user_principal_name: str | None = None
    object_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.kind.value}
        if self.display_name is not None:
            body["displayName"] = self.display_name
        if self.user_principal_name is not None:
            body["userPrincipalName"] = self.user_principal_name
        if self.object_id is not None:
            body["id"] = self.object_id
        return body


@dataclass(frozen=True)
class TapSettings:
    """Whether to issue a Temporary Access Pass, and its shape (Graph accepts 10 to 43200 minutes)."""

    enabled: bool
    lifetime_in_minutes: int = 60
    is_usable_once: bool = False


@dataclass(frozen=True)
class RequestLimits:
    """Configured bounds on a request's window."""

    max_duration: timedelta
    min_duration: timedelta = timedelta(minutes=5)
    # How far in the past a start may lie (clock skew between caller and service).
    start_skew: timedelta = timedelta(minutes=5)
    max_start_ahead: timedelta = timedelta(days=90)


@dataclass(frozen=True)
class GrantRequest:
    tenant_id: str
    user: UserSpec
    start: datetime
    end: datetime
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    reason: str
    expiration_actions: tuple[ExpirationAction, ...]
    tap: TapSettings
    ticket_id: str | None = None
    notifications: dict[str, Any] | None = field(default=None, compare=False)
    template_name: str | None = None
    # Where the access lives: "entra" (direct role assignments), "entra-pim" (PIM schedules), "ad:<site>"; empty
    # until intake fills in the tenant's default.
    directory: str = ""

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @classmethod
    def create(cls, *, now: datetime, limits: RequestLimits, **fields: Any) -> GrantRequest:
        """Build a request and check every rule at once, so the caller sees all problems in one answer."""
        request = cls(**fields)
        errors = request._window_errors(now, limits) + request._action_errors()
        if not request.roles and not request.groups:
            errors.append(FieldError("roles", "at least one role or group is required"))
        if errors:
            raise ValidationFailed(errors)
        return request

    def _window_errors(self, now: datetime, limits: RequestLimits) -> list[FieldError]:
        errors: list[FieldError] = []
        if self.start < now - limits.start_skew:
            errors.append(FieldError("startDateTime", f"must not lie more than {human(limits.start_skew)} in the past"))
        if self.start > now + limits.max_start_ahead:
            errors.append(FieldError("startDateTime", f"must lie within {human(limits.max_start_ahead)} from now"))
        if self.end <= self.start:
            errors.append(FieldError("endDateTime", "must be after startDateTime"))
        elif self.duration < limits.min_duration:
            errors.append(FieldError("duration", f"must be at least {human(limits.min_duration)}"))
        elif self.duration > limits.max_duration:
            errors.append(FieldError("duration", f"must not exceed the maximum of {human(limits.max_duration)}"))
        return errors

    def _action_errors(self) -> list[FieldError]:
        actions = set(self.expiration_actions)
        errors: list[FieldError] = []
        if ExpirationAction.DELETE_USER in actions and len(actions) > 1:
            errors.append(FieldError("expirationActions", "DeleteUser cannot be combined with other actions"))
        if self.user.kind is UserKind.EXISTING:
            # The system never deletes or disables an account it did not create, and access it added to an
            # existing account must be taken away by something, or it would outlive the grant.
            for forbidden in (ExpirationAction.DELETE_USER, ExpirationAction.DISABLE_USER):
                if forbidden in actions:
                    errors.append(FieldError("expirationActions", f"{forbidden.value} is only allowed for new users"))
            if self.roles and ExpirationAction.REMOVE_ROLES not in actions:
                errors.append(FieldError("expirationActions", "RemoveRoles is required for an existing user with roles"))
            if self.groups and ExpirationAction.REMOVE_GROUPS not in actions:
                errors.append(FieldError("expirationActions", "RemoveGroups is required for an existing user with groups"))
        if self.tap.enabled and not 10 <= self.tap.lifetime_in_minutes <= 43200:
            errors.append(FieldError("temporaryAccessPass.lifetimeInMinutes", "must be between 10 and 43200"))
        return errors


def default_expiration_actions(user: UserSpec) -> tuple[ExpirationAction, ...]:
    """What happens at the end when the caller does not say: a JIT account goes away, borrowed access is removed."""
    if user.kind is UserKind.NEW:
        return (ExpirationAction.DELETE_USER,)
    return (ExpirationAction.REMOVE_ROLES, ExpirationAction.REMOVE_GROUPS)


def human(span: timedelta) -> str:
    """A duration as people say it: "8 hours", "90 minutes", "1 day 2 hours"."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 seconds"
