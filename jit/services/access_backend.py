"""Where access lives: the one port every kind of directory implements (Entra role assignments, Entra PIM schedules,
on-premises Active Directory through an agent), in the user's words.

A backend can make or find the account, grant roles and group memberships, issue a sign-in credential, take each
back, disable or delete the account, read back what is really there (for verification and drift), and say what it
can grant. The sagas, the drift check and the roles endpoint talk to backends through this port only.

Its errors are a small family, so sagas decide "retry" or "give up" on kinds, not on status codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Protocol

from jit.domain.roles import RoleDefinition


class DirectoryError(Exception):
    """The directory refused or failed; `code` and `message` are its own, `request_id` its id for support."""

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
    """The object does not exist, or not yet (replication) — the caller knows which it may be."""


class ReferenceNotFound(DirectoryError):
    """A write named an object the directory does not know (yet): Graph answers 400 for this right after a create,
    where a read would answer 404. Lag when the object was just made, a refusal otherwise."""


class AlreadyExists(DirectoryError):
    """The object or link is already there (duplicate name, member, role assignment)."""


class Throttled(DirectoryError):
    """Asked to slow down for `retry_after` seconds."""

    transient = True

    def __init__(self, message: str, *, retry_after: float = 0, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class Unavailable(DirectoryError):
    """5xx, a timeout, a dropped connection, an agent that did not answer in time: try again later."""

    transient = True


class Denied(DirectoryError):
    """The app lacks a permission, consent or directory role for this."""


class Rejected(DirectoryError):
    """Anything else the directory will not do as asked."""


class WrongDirectory(DirectoryError):
    """The directory answering is not the one the grant is for (a credential that ignores the tenant)."""


# What a backend is asked and what it answers -----------------------------------------------------------------------


class ItemKind(StrEnum):
    ROLE = "role"
    GROUP = "group"
    CREDENTIAL = "credential"
    ACCOUNT = "account"  # only in outcomes: the end of an account (disable, delete, purge)


@dataclass(frozen=True)
class Item:
    """One piece of access: a role (its definition id), a group (its id) or a sign-in credential."""

    kind: ItemKind
    key: str
    lifetime_minutes: int = 60  # credentials only
    usable_once: bool = False  # credentials only
    reference: str | None = None  # the directory's id of the thing, when known (what taking it away addresses)
    # A credential the directory grants only to members of a group this grant adds: it must come after them.
    after_memberships: bool = False


@dataclass(frozen=True)
class Window:
    """The grant's window and why, for directories that hold access on a schedule (PIM) and for audit."""

    grant_id: str
    start: datetime
    end: datetime
    justification: str
    ticket: str | None = None


@dataclass(frozen=True)
class Account:
    """An account as the directory shows it."""

    id: str
    principal_name: str
    marker: str | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class NewAccount:
    display_name: str
    principal_name: str
    mail_nickname: str
    password: str = field(repr=False)
    marker: str


@dataclass(frozen=True)
class GroupFacts:
    id: str
    display_name: str
    role_assignable: bool = False
    # Roles the group holds (and so confers on its members): template ids.
    confers: tuple[str, ...] = ()


@dataclass(frozen=True)
class CredentialPolicy:
    """Whether the directory lets this account get a sign-in credential, and within which bounds."""

    enabled: bool
    minimum_lifetime_minutes: int = 60
    maximum_lifetime_minutes: int = 480
    usable_once_enforced: bool = False
    # False when the policy targets groups the account is not (and will not be, through this grant) a member of.
    targets_account: bool = True
    # True when it targets the account only through a group this grant adds.
    through_requested_groups: bool = False
    detail: str = ""
    # Which credential the directory issues (a `CredentialKind` value), and whether it can be limited to one use.
    kind: str = "temporaryAccessPass"
    usable_once_available: bool = True


@dataclass(frozen=True)
class Need:
    """What the survey is asked about, before anything is written."""

    directory_id: str  # the directory the grant is for (a tenant GUID, an on-premises site)
    roles: tuple[str, ...] = ()  # as the request named them
    groups: tuple[str, ...] = ()
    existing_account: str | None = None  # an object id or principal name
    new_account_domain: str | None = None  # the domain of a requested principal name
    credential: bool = False


@dataclass(frozen=True)
class Survey:
    """The directory's answer to a `Need`: what exists, what the request means there, and what would be refused."""

    directory_id: str
    display_name: str
    initial_domain: str
    verified_domains: tuple[str, ...]
    roles: dict[str, RoleDefinition]  # requested text -> definition
    unknown_roles: tuple[str, ...]
    groups: tuple[GroupFacts, ...]
    missing_groups: tuple[str, ...]
    account: Account | None = None
    # What the existing account holds directly (roles by template id, groups by id): access a grant finds there
    # was not made by it.
    account_direct_roles: frozenset[str] = frozenset()
    account_direct_groups: frozenset[str] = frozenset()
    # ... and through group nesting (transitive): what decides whether it is privileged, and TAP policy targeting.
    account_roles: frozenset[str] = frozenset()
    account_groups: frozenset[str] = frozenset()
    # A member of a role-assignable group holds whatever roles that group holds: privileged by nature.
    account_in_role_assignable_group: bool = False
    account_credentials: tuple[str, ...] = ()  # ids of sign-in credentials it has (TAPs)
    credential_policy: CredentialPolicy | None = None
    definitions: tuple[RoleDefinition, ...] = ()


class OutcomeStatus(StrEnum):
    MADE = "made"  # the directory did it now
    PRESENT = "present"  # it was already so (added before, or already gone when taking away)
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    item: Item
    status: OutcomeStatus
    reference: str | None = None
    secret: str | None = field(default=None, repr=False)  # a credential's value: only in the answer to its creation
    expires_at: datetime | None = None
    error: DirectoryError | None = None


class AccountEnd(StrEnum):
    """What happens to an account the grant created, after its access is taken away."""

    DISABLE = "disable"  # disabled, a new password nobody knows, sessions revoked
    DELETE = "delete"  # deleted (soft, where the directory has a recycle bin)
    PURGE = "purge"  # deleted and removed from the recycle bin


@dataclass(frozen=True)
class Holdings:
    """What the directory really holds for an account, read back."""

    account: Account | None
    roles: dict[str, str | None]  # role definition id -> assignment id
    groups: frozenset[str]
    credentials: tuple[str, ...]  # credential ids
    in_recycle_bin: bool = False


@dataclass(frozen=True)
class DirectoryFacts:
    """Who a directory is, as it says itself: what onboarding records about a tenant (or a site)."""

    id: str
    display_name: str
    initial_domain: str = ""
    domains: tuple[str, ...] = ()
    definitions: tuple[RoleDefinition, ...] = ()
    # Whether the directory can hold access on a schedule that ends by itself (Entra ID P2 / Governance for PIM).
    schedules_available: bool | None = None
    detail: str = ""


@dataclass(frozen=True)
class Catalog:
    """What a backend can grant."""

    roles: tuple[RoleDefinition, ...]
    groups: tuple[GroupFacts, ...] = ()


@dataclass(frozen=True)
class Health:
    """Whether the directory can be reached now, as far as the backend knows without asking it (an on-premises
    agent's heartbeat, say): shown with the tenant and its unfinished grants, and an alert when it is not."""

    available: bool
    detail: str = ""
    last_seen: datetime | None = None
    facts: dict[str, str] = field(default_factory=dict)  # e.g. the agent's version, host and key id


class AccessBackend(Protocol):
    """One directory (one tenant, or one on-premises site)."""

    kind: ClassVar[str]

    async def describe(self) -> DirectoryFacts:
        """Who the directory is (onboarding): its id, names, role definitions and what it supports."""

    async def survey(self, need: Need) -> Survey:
        """Read everything provisioning must know before it writes anything, in as few round trips as possible."""

    async def find_account(self, key: str) -> Account | None:
        """An account by object id or principal name; None when there is none."""

    async def create_account(self, account: NewAccount) -> Account: ...

    async def grant(self, account: Account, items: Sequence[Item], window: Window) -> list[Outcome]:
        """Add roles, memberships and a credential; one outcome per item, in order."""

    async def extend(self, account: Account, items: Sequence[Item], window: Window) -> list[Outcome]:
        """Move the end of access the directory holds on a schedule; directories without schedules do nothing."""

    async def take_away(
        self, account: Account, items: Sequence[Item], *, end: AccountEnd | None = None, new_password: str | None = None
    ) -> list[Outcome]:
        """Remove the items (each addressed by its reference where it has one), then end the account as asked; one
        outcome per item in order, then one for the account's end when asked (kind `account`)."""

    async def holdings(self, account_key: str, *, recycle_bin: bool = False) -> Holdings:
        """What the directory holds for the account now (and whether it sits in the recycle bin, when asked)."""

    async def catalog(self, group_search: str = "") -> Catalog:
        """The roles it can grant, and (when asked) the groups whose name starts with `group_search`."""

    async def marked_accounts(self, prefix: str) -> list[Account]:
        """Every account whose marker starts with `prefix` (drift's search for orphans)."""

    async def health(self) -> Health | None:
        """What the backend knows of the directory's reachability without a round trip to it; None when it has
        nothing to say (a cloud directory is reached on each call)."""


class BackendProvider(Protocol):
    def backend(self, tenant_id: str, directory: str) -> AccessBackend:
        """The backend that serves `directory` ("entra", "entra-pim", "ad:<site>") of a tenant."""

    def serves(self, directory: str) -> bool:
        """Whether some backend serves a directory of that name (onboarding checks names with it)."""
