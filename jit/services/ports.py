"""The small interfaces services need from the outside world. Adapters implement them; tests may too."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from jit.domain.audit import AuditEntry
from jit.domain.grant import Grant, Status
from jit.domain.ledger import Ledger
from jit.domain.work import ScheduleItem, WorkItem


@dataclass(frozen=True)
class GrantPage:
    grants: list[Grant]
    continuation_token: str | None


class StaleGrant(Exception):
    """The grant (or a record written with it) changed since it was read: read it again and redo the step."""


@dataclass(frozen=True)
class SealedSecret:
    """A credential's value, sealed for its one retrieval (`etag`: as stored, when read back)."""

    sealed: str = field(repr=False)
    expires_at: datetime | None = None
    etag: str | None = None


class GrantRepository(Protocol):
    def add(self, grant: Grant, entries: Sequence[AuditEntry] = ()) -> Grant:
        """Store a new grant with the audit entries of its opening; raises Conflict when its id exists."""

    def get(self, grant_id: str, tenant_id: str | None = None) -> Grant:
        """The grant, with its stamp; NotFound when unknown (or in another tenant than the one named)."""

    def save(
        self,
        before: Grant,
        after: Grant,
        entries: Sequence[AuditEntry] = (),
        *,
        secret: SealedSecret | None = None,
        drop_secret: SealedSecret | None = None,
        ledger: Any = None,
    ) -> Grant:
        """Store `after` over `before` with the audit entries of its new transitions and `entries`, in one atomic
        write conditional on `before`'s stamp; StaleGrant when somebody wrote first."""

    def update(
        self, grant_id: str, change: Callable[[Grant], Grant | tuple[Grant, list[AuditEntry]]], tenant_id: str | None = None
    ) -> Grant:
        """Apply `change` to the latest version and store it only if nobody changed it meanwhile, re-reading and
        re-applying on a lost race. `change` returning its argument unchanged stores nothing."""

    def secret(self, grant: Grant) -> SealedSecret | None:
        """The grant's sealed credential, if one waits for retrieval."""

    def ledger(self, tenant_id: str, account_id: str) -> Ledger: ...

    def live_grants_of_account(self, tenant_id: str, account_id: str) -> frozenset[str]: ...

    def list(
        self,
        *,
        tenant_id: str | None,
        status: Status | None,
        top: int,
        continuation_token: str | None,
        requester_id: str | None = None,
    ) -> GrantPage:
        """Newest first; only the requester's own when `requester_id` is given."""

    def open_grants_of(self, tenant_id: str, requester_id: str) -> int:
        """How many of the requester's grants in the tenant have not ended."""


class ScheduleIndex(Protocol):
    def put(self, item: ScheduleItem) -> None: ...

    def due(self, now: datetime, limit: int) -> list[ScheduleItem]:
        """Items due at or before `now`, oldest first; reads only those."""

    def remove(self, item: ScheduleItem) -> None: ...

    def replace(self, old: ScheduleItem, new: ScheduleItem) -> None: ...


class WorkQueue(Protocol):
    def send(self, item: WorkItem, visible_after: timedelta = timedelta(0)) -> None: ...


class AuditLog(Protocol):
    """Audit entries about something other than a grant's own changes (they go with those, atomically)."""

    def append(self, entry: AuditEntry) -> None: ...

    def append_many(self, entries: list[AuditEntry]) -> None:
        """Several entries, in order, as one write where the store allows it."""


@dataclass(frozen=True)
class IdempotencyRecord:
    fingerprint: str
    grant_id: str
    tenant_id: str


class IdempotencyStore(Protocol):
    def find(self, scope: str, key: str, *, now: datetime) -> IdempotencyRecord | None:
        """The unexpired record under the key, if any."""

    def claim(self, scope: str, key: str, record: IdempotencyRecord, *, now: datetime, ttl: timedelta) -> IdempotencyRecord:
        """Record `record` under the key, unless an unexpired record is already there: then return that one."""
