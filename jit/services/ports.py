"""The small interfaces services need from the outside world. Adapters implement them; tests may too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from jit.domain.grant import Grant, Status
from jit.domain.work import AuditEntry, ScheduleItem, WorkItem


@dataclass(frozen=True)
class GrantPage:
    grants: list[Grant]
    continuation_token: str | None


class GrantRepository(Protocol):
    def add(self, grant: Grant) -> Grant:
        """Store a new grant; raises Conflict when a grant with its id exists."""

    def get(self, grant_id: str, tenant_id: str | None = None) -> Grant:
        """The grant, with its version; NotFound when unknown (or in another tenant than the one named)."""

    def update(self, grant_id: str, change: Callable[[Grant], Grant], tenant_id: str | None = None) -> Grant:
        """Apply `change` to the latest version and store it only if nobody changed it meanwhile, re-reading and
        re-applying on a lost race. `change` returning its argument unchanged stores nothing."""

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


class TapVault(Protocol):
    """Where an issued Temporary Access Pass waits, encrypted, for its one retrieval."""

    def put(self, tenant_id: str, grant_id: str, value: str, expires_at: datetime | None) -> None: ...

    def has(self, grant_id: str) -> bool: ...

    def take(self, tenant_id: str, grant_id: str, now: datetime) -> tuple[str, datetime | None] | None: ...

    def erase(self, grant_id: str) -> None: ...
