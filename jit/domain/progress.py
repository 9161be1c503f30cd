"""What the sagas have done for a grant, kept on the grant so any later run can resume, undo or verify it.

Intent is recorded before each directory write (`PENDING`) and the outcome after it (`DONE`), so that after a crash
between the two the next run can tell access this grant made from access that was already there. Everything here is
an immutable value; the grant store serializes it in one place (`jit.adapters.progress_codec`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum


class ItemState(StrEnum):
    """Where one piece of access (a role, a group membership, a credential) stands for this grant."""

    PENDING = "pending"  # this grant is about to add it (or may have added it and stopped before recording)
    DONE = "done"  # this grant added it and holds it
    PREEXISTING = "preexisting"  # the account had it before, outside any grant: never removed by a grant
    SHARED = "shared"  # another live grant added it; this grant needs it too (see the access ledger)
    KEPT = "kept"  # at this grant's end another live grant still needed it: left in place, handed over
    REMOVED = "removed"  # taken away by this grant's end

    @property
    def made_here(self) -> bool:
        """Access this grant added, or may have added: what its end must take away (unless another grant needs it)."""
        return self in (ItemState.PENDING, ItemState.DONE)

    @property
    def held(self) -> bool:
        """The grant relies on this access while it is live."""
        return self in (ItemState.PENDING, ItemState.DONE, ItemState.PREEXISTING, ItemState.SHARED)


class CredentialKind(StrEnum):
    TEMPORARY_ACCESS_PASS = "temporaryAccessPass"  # noqa: S105 - a kind of credential, not one
    PASSWORD = "password"  # noqa: S105 - a one-time password (on-premises directories), not one


@dataclass(frozen=True)
class AccountRecord:
    """The account the grant works on: one it created (and marked), or one that existed."""

    created: bool
    state: ItemState
    id: str | None = None
    principal_name: str | None = None
    # Which generated name the saga is on (a generated name taken by someone else moves on to the next).
    attempt: int = 0


@dataclass(frozen=True)
class RoleRecord:
    role_id: str  # the role definition id as the directory knows it
    name: str  # the role's display name
    state: ItemState
    template_id: str = ""
    reference: str | None = None  # the directory's id of the assignment, once known


@dataclass(frozen=True)
class GroupRecord:
    group_id: str
    state: ItemState
    name: str = ""


@dataclass(frozen=True)
class CredentialRecord:
    """A sign-in credential issued for the grant. Its secret is never here: it waits, sealed, for one retrieval."""

    kind: CredentialKind
    state: ItemState
    lifetime_minutes: int = 60
    usable_once: bool = False
    id: str | None = None
    expires_at: datetime | None = None
    retrieved_at: datetime | None = None
    retrieved_by: str | None = None


@dataclass(frozen=True)
class ExpirationRecord:
    """How taking the access away went: verified, or what remains and since when."""

    verified_at: datetime | None = None
    actions: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()
    attempts: int = 0
    last_attempt_at: datetime | None = None
    alerted_at: datetime | None = None
    flag: str | None = None
    # When the account the grant created was deleted, and whether the recycle bin confirmed its removal for good.
    account_deleted_at: datetime | None = None
    account_purged: bool = False


@dataclass(frozen=True)
class LeaseRecord:
    """One worker at a time: who holds the grant and until when (a dead worker's lease runs out)."""

    owner: str
    until: datetime


@dataclass(frozen=True)
class Progress:
    account: AccountRecord | None = None
    roles: tuple[RoleRecord, ...] = ()
    groups: tuple[GroupRecord, ...] = ()
    credential: CredentialRecord | None = None
    expiration: ExpirationRecord | None = None
    lease: LeaseRecord | None = None
    # Roles the grant's groups confer (role-assignable groups), for the view and for policy: template ids.
    conferred_roles: tuple[str, ...] = field(default=())

    def role(self, role_id: str) -> RoleRecord | None:
        return next((r for r in self.roles if r.role_id == role_id), None)

    def group(self, group_id: str) -> GroupRecord | None:
        return next((g for g in self.groups if g.group_id == group_id), None)

    def with_role(self, record: RoleRecord) -> Progress:
        if self.role(record.role_id) is None:
            return replace(self, roles=(*self.roles, record))
        return replace(self, roles=tuple(record if r.role_id == record.role_id else r for r in self.roles))

    def with_group(self, record: GroupRecord) -> Progress:
        if self.group(record.group_id) is None:
            return replace(self, groups=(*self.groups, record))
        return replace(self, groups=tuple(record if g.group_id == record.group_id else g for g in self.groups))

    @property
    def roles_made_here(self) -> tuple[RoleRecord, ...]:
        return tuple(r for r in self.roles if r.state.made_here)

    @property
    def groups_made_here(self) -> tuple[GroupRecord, ...]:
        return tuple(g for g in self.groups if g.state.made_here)

    @property
    def account_id(self) -> str | None:
        return self.account.id if self.account else None

    @property
    def created_account(self) -> bool:
        return bool(self.account and self.account.created)
