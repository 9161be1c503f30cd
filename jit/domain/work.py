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
    # Move the end of access a directory holds on a schedule (PIM), after an extension.
    EXTEND = "extend"
    # Ask a tenant's directory who it is and whether the app may act there (the item's tenant is the name given).
    ONBOARD = "onboard"


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


# Azure queues hide a message for at most 7 days; work due later is woken by the sweep alone.
MAX_MESSAGE_DELAY = timedelta(days=7) - timedelta(minutes=1)
# When a message was sent, the sweep steps in only if the message has not done its work this long after.
PROVISION_GRACE = timedelta(minutes=2)
END_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class Wakeup:
    """How work due at a moment gets done on time: a queue message hidden until then, and a schedule entry that
    the sweep acts on a grace later if the message did not do the work (or, beyond a message's reach, at the moment
    itself). Write the entry before what the work needs, and send the message after it."""

    item: ScheduleItem
    message_delay: timedelta | None  # None: too far ahead for a queue message

    @classmethod
    def at(cls, work: WorkItem, due: datetime, *, now: datetime, grace: timedelta) -> Wakeup:
        delay = max(due - now, timedelta(0))
        if delay <= MAX_MESSAGE_DELAY:
            return cls(ScheduleItem(due=due + grace, work=work), delay)
        return cls(ScheduleItem(due=due, work=work), None)
