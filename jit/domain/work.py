"""Work the background functions do for a grant, and the schedule that says when it falls due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Step(StrEnum):
    PROVISION = "provision"
    EXPIRE = "expire"
    # A request still awaiting approval when this falls due is denied.
    APPROVAL_TIMEOUT = "approval-timeout"
    # Tell people an active grant ends soon (handled by the sweep itself: it only enqueues a notification).
    EXPIRING_SOON = "expiring-soon"


@dataclass(frozen=True)
class WorkItem:
    """What a queue message says: ids only, never personal data or secrets."""

    tenant_id: str
    grant_id: str
    step: Step


@dataclass(frozen=True)
class ScheduleItem:
    """A wake-up: at `due`, make sure `work` has been done. The sweep reads only items that are due."""

    due: datetime
    work: WorkItem
    attempt: int = 0

    def retry_after(self, now: datetime) -> ScheduleItem:
        """The same wake-up later, backing off (1, 2, 4 … minutes, at most 30) while the work stays undone."""
        delay = min(timedelta(minutes=2**self.attempt), timedelta(minutes=30))
        return ScheduleItem(due=now + delay, work=self.work, attempt=self.attempt + 1)


@dataclass(frozen=True)
class AuditEntry:
    """One thing the system did or was asked to do, appended to the audit trail and never changed."""

    at: datetime
    tenant_id: str
    grant_id: str
    actor: str
    action: str
    outcome: str = "success"
    detail: str = ""
