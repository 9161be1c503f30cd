"""What the services need from a tenant's directory (Microsoft Graph), and the errors it can answer with.

The Graph gateway (`jit.adapters.graph`) implements `Directory` for one tenant. Graph's many error shapes are
folded into a small family here, so that the saga decides "retry" or "give up" on kinds, not on status codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class DirectoryError(Exception):
    """Graph refused or failed; `code` and `message` are Graph's own, `request_id` its request-id for support."""

    transient = False

    def __init__(self, message: str, *, code: str = "", status: int = 0, request_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.request_id = request_id

    def describe(self) -> dict[str, str]:
        return {"code": self.code or type(self).__name__, "message": self.message, "graphRequestId": self.request_id}


class NotFoundInDirectory(DirectoryError):
    """404: the object does not exist, or not yet (replication) — the caller knows which it may be."""


class AlreadyExists(DirectoryError):
    """The object or link is already there (duplicate UPN, member, role assignment)."""


class Throttled(DirectoryError):
    """429: Graph asks to slow down for `retry_after` seconds."""

    transient = True

    def __init__(self, message: str, *, retry_after: float = 0, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class Unavailable(DirectoryError):
    """5xx, a timeout or a dropped connection: try again later."""

    transient = True


class Denied(DirectoryError):
    """401/403: the app lacks a permission or consent in this tenant."""


class Rejected(DirectoryError):
    """Any other 4xx: Graph will not do this as asked."""


@dataclass(frozen=True)
class TenantInfo:
    tenant_id: str
    display_name: str
    initial_domain: str
    verified_domains: tuple[str, ...]


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    template_id: str
    display_name: str


@dataclass(frozen=True)
class TapPolicy:
    enabled: bool
    minimum_lifetime_minutes: int = 60
    maximum_lifetime_minutes: int = 480
    default_lifetime_minutes: int = 60
    usable_once_enforced: bool = False


@dataclass(frozen=True)
class Survey:
    """What provisioning must know about a tenant before it writes anything, read in one go."""

    tenant: TenantInfo
    missing_groups: list[str]
    tap_policy: TapPolicy | None


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    user_principal_name: str
    employee_type: str | None = None
    account_enabled: bool | None = None


@dataclass(frozen=True)
class NewUser:
    display_name: str
    user_principal_name: str
    mail_nickname: str
    password: str
    employee_type: str


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    role_definition_id: str
    principal_id: str
    directory_scope_id: str = "/"


@dataclass(frozen=True)
class TemporaryAccessPass:
    id: str
    value: str | None = field(repr=False, default=None)  # only in the answer to its creation; never logged
    expires_at: datetime | None = None


# Writes that can go to Graph together in a $batch -------------------------------------------------------------


@dataclass(frozen=True)
class AssignRole:
    principal_id: str
    role_definition_id: str


@dataclass(frozen=True)
class AddMember:
    group_id: str
    member_id: str


@dataclass(frozen=True)
class CreateTap:
    user_id: str
    lifetime_in_minutes: int
    is_usable_once: bool


Write = AssignRole | AddMember | CreateTap


@dataclass(frozen=True)
class WriteResult:
    write: Write
    error: DirectoryError | None = None
    assignment: RoleAssignment | None = None
    tap: TemporaryAccessPass | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Directory(Protocol):
    """One tenant's directory."""

    async def tenant(self) -> TenantInfo: ...

    async def role_definitions(self) -> list[RoleDefinition]: ...

    async def tap_policy(self) -> TapPolicy: ...

    async def survey(self, group_ids: list[str], *, tap_policy: bool) -> Survey:
        """The tenant, which of `group_ids` do not exist, and (if asked) the TAP policy, in one round trip."""

    async def find_user(self, id_or_upn: str) -> DirectoryUser | None: ...

    async def create_user(self, user: NewUser) -> DirectoryUser: ...

    async def delete_user(self, user_id: str) -> None: ...

    async def purge_deleted_user(self, user_id: str) -> None:
        """Remove a soft-deleted user from deleted items for good."""

    async def deleted_user_exists(self, user_id: str) -> bool: ...

    async def disable_user(self, user_id: str, new_password: str) -> None:
        """accountEnabled=false and a new password nobody knows, in one PATCH."""

    async def revoke_sign_in_sessions(self, user_id: str) -> None: ...

    async def users_marked(self, prefix: str) -> list[DirectoryUser]:
        """Users whose employeeType starts with `prefix` (an advanced query)."""

    async def role_assignments(self, principal_id: str) -> list[RoleAssignment]: ...

    async def group_ids_of(self, principal_id: str) -> set[str]:
        """Groups the principal is a direct member of."""

    async def remove_role_assignment(self, assignment_id: str) -> None: ...

    async def remove_member(self, group_id: str, member_id: str) -> None: ...

    async def temporary_access_passes(self, user_id: str) -> list[TemporaryAccessPass]: ...

    async def delete_temporary_access_pass(self, user_id: str, tap_id: str) -> None: ...

    async def apply(self, writes: list[Write]) -> list[WriteResult]:
        """Send the writes in as few round trips as Graph allows ($batch); one result per write, in order."""


class DirectoryProvider(Protocol):
    def for_tenant(self, tenant: str) -> Directory:
        """The directory of a tenant, by GUID or initial domain."""
