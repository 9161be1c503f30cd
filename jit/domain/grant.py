"""A grant: the access a request asked for, and where it is in its life.

The states and the transitions between them are explicit; a grant only moves along `TRANSITIONS`, and every move is
recorded with who or what caused it, so the audit trail can be rebuilt from the grant itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from jit.domain.errors import IllegalTransition
from jit.domain.progress import Progress
from jit.domain.request import GrantRequest


class Status(StrEnum):
    AWAITING_APPROVAL = "AwaitingApproval"
    SCHEDULED = "Scheduled"
    PROVISIONING = "Provisioning"
    ACTIVE = "Active"
    EXPIRING = "Expiring"
    EXPIRED = "Expired"
    REVOKED = "Revoked"
    DENIED = "Denied"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_final(self) -> bool:
        return not TRANSITIONS[self]

    @property
    def in_progress(self) -> bool:
        """On its way to Active or out of access: a poller should keep polling."""
        return self in (Status.AWAITING_APPROVAL, Status.SCHEDULED, Status.PROVISIONING, Status.EXPIRING)


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.AWAITING_APPROVAL: frozenset({Status.SCHEDULED, Status.DENIED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset({Status.PROVISIONING, Status.CANCELLED}),
    # Provisioning may be ended early: what it already created is then taken away by the expiration actions. It
    # goes back to AwaitingApproval (before writing anything) when the directory shows the request needs approval
    # that intake could not know of (a group that confers a privileged role).
    Status.PROVISIONING: frozenset({Status.ACTIVE, Status.FAILED, Status.EXPIRING, Status.AWAITING_APPROVAL}),
    Status.ACTIVE: frozenset({Status.EXPIRING}),
    # Expired when the window ran out, Revoked when it was ended early.
    Status.EXPIRING: frozenset({Status.EXPIRED, Status.REVOKED}),
    Status.EXPIRED: frozenset(),
    Status.REVOKED: frozenset(),
    Status.DENIED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}


@dataclass(frozen=True)
class Transition:
    """One move of a grant: from, to, when, by whom or what, and why."""

    from_status: Status | None
    to_status: Status
    at: datetime
    actor: str
    reason: str = ""


class ExtensionState(StrEnum):
    AWAITING_APPROVAL = "AwaitingApproval"
    APPROVED = "Approved"
    DENIED = "Denied"


@dataclass(frozen=True)
class Extension:
    """A request to move a live grant's end. One that needs approval waits here without touching the grant."""

    end: datetime
    requested_at: datetime
    requested_by: str
    requester_id: str
    reason: str
    state: ExtensionState
    previous_end: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str = ""


@dataclass(frozen=True)
class Stamp:
    """What the store needs to write the grant again: its ETag and the head of its audit chain. Opaque here."""

    etag: str
    chain_sequence: int = 0
    chain_hash: str = ""


@dataclass(frozen=True)
class Grant:
    """A stored request and its state. `stamp` is the store's concurrency token and chain head, opaque here."""

    id: str
    request: GrantRequest
    status: Status
    created_at: datetime
    requested_by: str
    history: tuple[Transition, ...] = ()
    revoke_requested_at: datetime | None = None
    # When access was verified gone (Expired or Revoked).
    revoked_at: datetime | None = None
    # What the sagas have done: the account, each role and group, the credential, the end, the lease.
    progress: Progress = field(default_factory=Progress)
    error: dict[str, str] | None = None
    stamp: Stamp | None = None
    # The requester's principal id (an object id): who may see the grant, and who may never approve it.
    requester_id: str = ""
    # The requester's sign-in name, to tell it apart from the account the grant is for.
    requester_name: str = ""
    extension: Extension | None = None

    @property
    def tenant_id(self) -> str:
        return self.request.tenant_id

    @property
    def updated_at(self) -> datetime:
        return self.history[-1].at if self.history else self.created_at

    @property
    def version(self) -> str | None:
        return self.stamp.etag if self.stamp else None

    def with_progress(self, progress: Progress) -> Grant:
        return replace(self, progress=progress)

    @classmethod
    def open(
        cls,
        grant_id: str,
        request: GrantRequest,
        *,
        now: datetime,
        actor: str,
        needs_approval: bool,
        requester_id: str = "",
        requester_name: str = "",
        reason: str = "requested",
    ) -> Grant:
        """The grant a new request starts as: awaiting approval, or scheduled for its start."""
        first = Status.AWAITING_APPROVAL if needs_approval else Status.SCHEDULED
        return cls(
            id=grant_id,
            request=request,
            status=first,
            created_at=now,
            requested_by=actor,
            history=(Transition(None, first, now, actor, reason),),
            requester_id=requester_id,
            requester_name=requester_name,
        )

    def can_move_to(self, target: Status) -> bool:
        return target in TRANSITIONS[self.status]

    def move_to(self, target: Status, *, at: datetime, actor: str, reason: str = "") -> Grant:
        """The grant in its new state, with the move recorded; IllegalTransition when the state machine forbids it."""
        if not self.can_move_to(target):
            raise IllegalTransition(f"grant {self.id} is {self.status.value} and cannot become {target.value}")
        step = Transition(self.status, target, at, actor, reason)
        return replace(self, status=target, history=(*self.history, step))

    def is_due_to_start(self, now: datetime) -> bool:
        return self.status is Status.SCHEDULED and self.request.start <= now

    def is_due_to_end(self, now: datetime) -> bool:
        return self.status in (Status.PROVISIONING, Status.ACTIVE) and self.request.end <= now

    @property
    def access_should_end_at(self) -> datetime:
        """When access was due to go: the requested end, or the moment an early revoke was asked for."""
        if self.revoke_requested_at is not None and self.revoke_requested_at < self.request.end:
            return self.revoke_requested_at
        return self.request.end

    @property
    def lateness(self) -> timedelta | None:
        """How long after it was due access was verified gone."""
        return None if self.revoked_at is None else self.revoked_at - self.access_should_end_at
