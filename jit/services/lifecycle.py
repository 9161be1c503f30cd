"""Moving grants along their lifecycle: the worker's entry point, early revocation, and the schedule sweep."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from jit.domain.caller import AppRole, Caller
from jit.domain.clock import Clock
from jit.domain.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from jit.domain.grant import Grant, Status
from jit.domain.notification import Event
from jit.domain.policy import Policy
from jit.domain.work import END_GRACE, PROVISION_GRACE, AuditEntry, ScheduleItem, Step, Wakeup, WorkItem
from jit.services.audit import record_new_transitions
from jit.services.audited_directory import working_on
from jit.services.notify import NotifyQueue, announce
from jit.services.policies import enforce
from jit.services.ports import AuditLog, GrantRepository, ScheduleIndex, WorkQueue

log = logging.getLogger(__name__)

SYSTEM = "system"
# A schedule entry whose grant never appeared (intake died between the two writes) is dropped after this long.
ORPHAN_AFTER = timedelta(minutes=10)


class Provisioner(Protocol):
    async def __call__(self, grant: Grant) -> Grant:
        """Carry a Provisioning grant as far as it can go (Active or Failed) and return it."""


class Expirer(Protocol):
    async def __call__(self, grant: Grant) -> Grant:
        """Carry an Expiring grant as far as it can go (Expired or Revoked) and return it."""


@dataclass(frozen=True)
class SweepResult:
    due: int
    enqueued: int
    dropped: int


@dataclass(frozen=True)
class Lifecycle:
    grants: GrantRepository
    schedule: ScheduleIndex
    queue: WorkQueue
    audit: AuditLog
    clock: Clock
    provisioner: Provisioner | None = None
    expirer: Expirer | None = None
    notify_queue: NotifyQueue | None = None

    def transition(self, grant_id: str, change: Callable[[Grant], Grant], tenant_id: str | None = None) -> Grant:
        """Update a grant under optimistic concurrency and audit every transition the change made."""
        before: list[Grant] = []

        def tracked(current: Grant) -> Grant:
            before[:] = [current]
            return change(current)

        after = self.grants.update(grant_id, tracked, tenant_id)
        record_new_transitions(self.audit, before[0] if before else None, after)
        return after

    async def handle(self, item: WorkItem) -> Grant | None:
        """Do what a queue message asks; a message for work already done, or not yet due, changes nothing."""
        try:
            grant = await asyncio.to_thread(self.grants.get, item.grant_id, item.tenant_id)
        except NotFound:
            log.warning("work item for unknown grant %s dropped", item.grant_id)
            return None
        if item.step is Step.PROVISION:
            return await self._provision(grant)
        if item.step is Step.APPROVAL_TIMEOUT:
            return await asyncio.to_thread(self.time_out_approval, grant.id, grant.tenant_id)
        return await self._expire(grant)

    async def _provision(self, grant: Grant) -> Grant:
        now = self.clock.now()
        if grant.is_due_to_start(now):

            def start(g: Grant) -> Grant:
                if g.status is not Status.SCHEDULED:
                    return g
                return g.move_to(Status.PROVISIONING, at=now, actor=SYSTEM, reason="start reached")

            grant = await asyncio.to_thread(self.transition, grant.id, start, grant.tenant_id)
        if grant.status is Status.PROVISIONING and self.provisioner is not None:
            with working_on(grant.tenant_id, grant.id):
                return await self.provisioner(grant)
        return grant

    async def _expire(self, grant: Grant) -> Grant:
        now = self.clock.now()
        if grant.is_due_to_end(now):

            def end(g: Grant) -> Grant:
                if not g.is_due_to_end(now):
                    return g  # extended, or already moving on
                return g.move_to(Status.EXPIRING, at=now, actor=SYSTEM, reason="end reached")

            grant = await asyncio.to_thread(self.transition, grant.id, end, grant.tenant_id)
        if grant.status is Status.EXPIRING and self.expirer is not None:
            with working_on(grant.tenant_id, grant.id):
                return await self.expirer(grant)
        return grant

    def revoke(self, grant_id: str, *, actor: str, reason: str) -> Grant:
        """End a grant early: one that has not started is cancelled; one that has is set expiring, now."""
        now = self.clock.now()

        def end_early(grant: Grant) -> Grant:
            if grant.status in (Status.AWAITING_APPROVAL, Status.SCHEDULED):
                return grant.move_to(Status.CANCELLED, at=now, actor=actor, reason=reason)
            if grant.status is Status.EXPIRING:
                return grant  # already on its way out
            moved = grant.move_to(Status.EXPIRING, at=now, actor=actor, reason=reason)
            return replace(moved, revoke_requested_at=now)

        grant = self.transition(grant_id, end_early)
        if grant.status is Status.EXPIRING:
            work = WorkItem(grant.tenant_id, grant.id, Step.EXPIRE)
            self.schedule.put(ScheduleItem(due=now + timedelta(minutes=1), work=work))
            self.queue.send(work)
        return grant

    def decide(self, grant_id: str, *, approve: bool, caller: Caller, comment: str, policy_for: Callable[[str], Policy]) -> Grant:
        """An approver's decision. The requester can never approve (nor deny) its own grant, and the policy is
        checked again: a request the policy no longer allows cannot be approved."""
        if not caller.has(AppRole.APPROVER, AppRole.ADMIN):
            raise Forbidden("approving or denying needs the Jit.Approver or Jit.Admin app role")
        now = self.clock.now()

        def decision(grant: Grant) -> Grant:
            if grant.status is not Status.AWAITING_APPROVAL:
                raise Conflict(f"grant {grant.id} is {grant.status.value}, not AwaitingApproval")
            if grant.requester_id == caller.id:
                raise Forbidden("the requester of a grant can not decide on it")
            if not approve:
                return grant.move_to(Status.DENIED, at=now, actor=caller.actor, reason=comment or "denied")
            if grant.request.end <= now:
                raise Conflict(f"grant {grant.id} ended at {grant.request.end.isoformat()} before it was approved")
            enforce(policy_for(grant.tenant_id), grant.request)
            return grant.move_to(Status.SCHEDULED, at=now, actor=caller.actor, reason=comment or "approved")

        grant = self.transition(grant_id, decision)
        if grant.status is Status.SCHEDULED:
            work = WorkItem(grant.tenant_id, grant.id, Step.PROVISION)
            self.wake(Wakeup.at(work, grant.request.start, now=now, grace=PROVISION_GRACE))
        return grant

    def wake(self, wakeup: Wakeup) -> None:
        self.schedule.put(wakeup.item)
        if wakeup.message_delay is not None:
            self.queue.send(wakeup.item.work, visible_after=wakeup.message_delay)

    def time_out_approval(self, grant_id: str, tenant_id: str | None = None) -> Grant:
        now = self.clock.now()

        def deny(grant: Grant) -> Grant:
            if grant.status is not Status.AWAITING_APPROVAL:
                return grant
            return grant.move_to(Status.DENIED, at=now, actor=SYSTEM, reason="no decision before the approval timeout")

        return self.transition(grant_id, deny, tenant_id)

    def extend(self, grant_id: str, *, new_end: datetime, actor: str, reason: str, max_duration: timedelta) -> Grant:
        """Move a grant's end (later, or earlier but still in the future), within the maximum duration."""
        now = self.clock.now()
        old_end: list[datetime] = []

        def change(grant: Grant) -> Grant:
            if grant.status not in (Status.AWAITING_APPROVAL, Status.SCHEDULED, Status.PROVISIONING, Status.ACTIVE):
                raise Conflict(f"grant {grant.id} is {grant.status.value}; only a grant that has not ended can be extended")
            errors: list[FieldError] = []
            if new_end <= now:
                errors.append(FieldError("endDateTime", "must be in the future"))
            elif new_end - grant.request.start > max_duration:
                errors.append(FieldError("endDateTime", f"the grant would last longer than the maximum of {max_duration}"))
            if errors:
                raise ValidationFailed(errors)
            old_end[:] = [grant.request.end]
            return replace(grant, request=replace(grant.request, end=new_end))

        grant = self.grants.update(grant_id, change)
        if old_end:
            detail = f"end {old_end[0].isoformat()} -> {new_end.isoformat()}" + (f": {reason}" if reason else "")
            self.audit.append(AuditEntry(now, grant.tenant_id, grant.id, actor, "grant.extended", detail=detail))
        if grant.status is Status.ACTIVE:
            # The old end's message and wake-up find the grant not due and do nothing.
            work = WorkItem(grant.tenant_id, grant.id, Step.EXPIRE)
            self.wake(Wakeup.at(work, new_end, now=now, grace=END_GRACE))
        return grant

    def _expiring_soon(self, item: ScheduleItem, now: datetime) -> int:
        """Announce that an active grant ends soon, once; the wake-up is removed either way."""
        try:
            grant = self.grants.get(item.work.grant_id, item.work.tenant_id)
        except NotFound:
            grant = None
        if grant is not None and grant.status is Status.ACTIVE and grant.request.end > now and self.notify_queue is not None:
            announce(self.notify_queue, grant.tenant_id, grant.id, Event.EXPIRING_SOON, now)
        self.schedule.remove(item)
        return 1

    def sweep(self, limit: int = 500) -> SweepResult:
        """Enqueue every due item whose work is still undone and push its wake-up back; drop the rest.

        Cost grows with the number of due items only: one range read, then one point read per due item.
        """
        now = self.clock.now()
        due = self.schedule.due(now, limit)
        enqueued = dropped = 0
        for item in due:
            if item.work.step is Step.EXPIRING_SOON:
                dropped += self._expiring_soon(item, now)
                continue
            try:
                grant = self.grants.get(item.work.grant_id, item.work.tenant_id)
            except NotFound:
                if now - item.due > ORPHAN_AFTER:
                    self.schedule.remove(item)
                    dropped += 1
                else:
                    self.schedule.replace(item, item.retry_after(now))
                continue
            if _still_needed(grant, item.work.step, now):
                self.queue.send(item.work)
                self.schedule.replace(item, item.retry_after(now))
                enqueued += 1
            else:
                self.schedule.remove(item)
                dropped += 1
        if due:
            log.info("sweep: %d due, %d enqueued, %d dropped", len(due), enqueued, dropped)
        return SweepResult(len(due), enqueued, dropped)


def _still_needed(grant: Grant, step: Step, now: datetime) -> bool:
    if step is Step.PROVISION:
        return grant.status in (Status.SCHEDULED, Status.PROVISIONING)
    if step is Step.APPROVAL_TIMEOUT:
        return grant.status is Status.AWAITING_APPROVAL
    return grant.status is Status.EXPIRING or grant.is_due_to_end(now)
