"""Moving grants along their lifecycle: the worker's entry point, decisions, early revocation, extensions, and the
schedule sweep."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from jit.domain.audit import AuditEntry
from jit.domain.caller import AppRole, Caller
from jit.domain.clock import Clock
from jit.domain.errors import Conflict, FieldError, Forbidden, NotFound, PolicyDenied, ValidationFailed
from jit.domain.grant import Extension, ExtensionState, Grant, Status
from jit.domain.notification import Event
from jit.domain.policy import GroupRoles
from jit.domain.request import RequestLimits, UserKind, human
from jit.domain.work import END_GRACE, PROVISION_GRACE, ScheduleItem, Step, Wakeup, WorkItem
from jit.services.audited_backend import WorkAudit, working_on
from jit.services.grant_writer import GrantWriter
from jit.services.notify import NotifyQueue, announce
from jit.services.ports import ScheduleIndex, WorkQueue
from jit.services.provision import PolicySource
from jit.services.roles import RoleCatalog
from jit.services.tenants import Onboarding

log = logging.getLogger(__name__)

SYSTEM = "system"
# A schedule entry whose grant never appeared (intake died between the two writes) is dropped after this long.
ORPHAN_AFTER = timedelta(minutes=10)
_DURATION_RULES = ("maxDuration", "maxDurationPerRole")


class Saga(Protocol):
    async def __call__(self, grant: Grant, work: WorkAudit) -> Grant:
        """Carry the grant as far as it can go and return it."""


@dataclass(frozen=True)
class SweepResult:
    due: int
    enqueued: int
    dropped: int


@dataclass(frozen=True)
class Lifecycle:
    writer: GrantWriter
    schedule: ScheduleIndex
    queue: WorkQueue
    clock: Clock
    policies: PolicySource
    catalog: RoleCatalog
    limits: RequestLimits
    provisioner: Saga | None = None
    expirer: Saga | None = None
    extender: Saga | None = None
    onboarding: Onboarding | None = None
    notify_queue: NotifyQueue | None = None
    approval_timeout: timedelta = timedelta(hours=4)

    async def handle(self, item: WorkItem) -> Grant | None:
        """Do what a queue message asks; a message for work already done, or not yet due, changes nothing."""
        if item.step is Step.ONBOARD:
            if self.onboarding is not None:
                await self.onboarding.check(item.tenant_id)
            return None
        try:
            grant = await asyncio.to_thread(self.writer.grants.get, item.grant_id, item.tenant_id)
        except NotFound:
            log.warning("work item for unknown grant %s dropped", item.grant_id)
            return None
        now = self.clock.now()
        saga: Saga | None = None
        if item.step is Step.PROVISION and (grant.status is Status.PROVISIONING or grant.is_due_to_start(now)):
            saga = self.provisioner
        elif item.step is Step.EXPIRE and (grant.status is Status.EXPIRING or grant.is_due_to_end(now)):
            saga = self.expirer
        elif item.step is Step.EXTEND and grant.status is Status.ACTIVE:
            saga = self.extender
        elif item.step is Step.APPROVAL_TIMEOUT:
            return await asyncio.to_thread(self.time_out_approval, grant.id, grant.tenant_id)
        if saga is None:
            return grant
        with working_on(grant.tenant_id, grant.id) as work:
            return await saga(grant, work)

    # People's decisions -----------------------------------------------------------------------------------------

    def revoke(self, grant_id: str, *, actor: str, reason: str, current: Grant | None = None) -> Grant:
        """End a grant early: one that has not started is cancelled; one that has is set expiring, now."""
        now = self.clock.now()

        def end_early(grant: Grant) -> Grant:
            if grant.status in (Status.AWAITING_APPROVAL, Status.SCHEDULED):
                return grant.move_to(Status.CANCELLED, at=now, actor=actor, reason=reason)
            if grant.status is Status.EXPIRING:
                return grant  # already on its way out
            if grant.status.is_final:
                raise Conflict(f"grant {grant.id} is {grant.status.value}: it has ended already")
            moved = grant.move_to(Status.EXPIRING, at=now, actor=actor, reason=reason)
            return replace(moved, revoke_requested_at=now)

        grant = self.writer.update(grant_id, end_early, current.tenant_id if current else None, current=current)
        if grant.status is Status.EXPIRING:
            work = WorkItem(grant.tenant_id, grant.id, Step.EXPIRE)
            self.schedule.put(ScheduleItem(due=now + timedelta(minutes=1), work=work))
            self.queue.send(work)
        return grant

    def decide(self, grant_id: str, *, approve: bool, caller: Caller, comment: str, current: Grant | None = None) -> Grant:
        """An approver's decision on a request, or on an extension waiting for one. Nobody decides on a grant they
        asked for or that gives them access, no machine decides, and the policy is checked again."""
        if not caller.has(AppRole.APPROVER, AppRole.ADMIN):
            raise Forbidden("approving or denying needs the Jit.Approver or Jit.Admin app role")
        if not caller.is_person:
            raise Forbidden("only a person signed in with Entra ID can approve or deny; a key or an application can not")
        now = self.clock.now()
        decided: list[str] = []

        def decision(grant: Grant) -> Grant | tuple[Grant, list[AuditEntry]]:
            check_decider(grant, caller)
            if grant.status is Status.AWAITING_APPROVAL:
                decided[:] = ["grant"]
                if not approve:
                    return grant.move_to(Status.DENIED, at=now, actor=caller.actor, reason=comment or "denied")
                if grant.request.end <= now:
                    raise Conflict(f"grant {grant.id} ended at {grant.request.end.isoformat()} before it was approved")
                self._enforce(grant)
                return grant.move_to(Status.SCHEDULED, at=now, actor=caller.actor, reason=comment or "approved")
            extension = grant.extension
            if extension is not None and extension.state is ExtensionState.AWAITING_APPROVAL:
                decided[:] = ["extension"]
                return self._decide_extension(grant, extension, approve=approve, caller=caller, comment=comment, now=now)
            raise Conflict(f"grant {grant.id} is {grant.status.value}, and nothing of it awaits approval")

        grant = self.writer.update(grant_id, decision, current.tenant_id if current else None, current=current)
        if decided == ["grant"] and grant.status is Status.SCHEDULED:
            work = WorkItem(grant.tenant_id, grant.id, Step.PROVISION)
            self.wake(Wakeup.at(work, grant.request.start, now=now, grace=PROVISION_GRACE))
        if decided == ["extension"] and grant.extension is not None and grant.extension.state is ExtensionState.APPROVED:
            self._extended(grant, now)
        return grant

    def extend(self, grant_id: str, *, new_end: datetime, caller: Caller, reason: str, current: Grant | None = None) -> Grant:
        """Ask for a new end. An extension is a request: the policy applies to the new window, and one that needs
        approval waits for it without touching the running grant."""
        now = self.clock.now()
        applied: list[bool] = []

        def change(grant: Grant) -> tuple[Grant, list[AuditEntry]]:
            if grant.status in (Status.EXPIRING, Status.EXPIRED, Status.REVOKED) or grant.status.is_final:
                raise Conflict(f"grant {grant.id} is {grant.status.value}; only a grant that has not ended can be extended")
            if grant.request.end <= now:
                raise Conflict(f"grant {grant.id} ended at {grant.request.end.isoformat()}; it can not be extended any more")
            errors: list[FieldError] = []
            window = new_end - grant.request.start
            if new_end <= now:
                errors.append(FieldError("endDateTime", "must be in the future"))
            elif window > self.limits.max_duration:
                errors.append(
                    FieldError(
                        "endDateTime", f"the grant would last longer than the maximum of {human(self.limits.max_duration)}"
                    )
                )
            if errors:
                raise ValidationFailed(errors)
            policy = self.policies.effective(grant.tenant_id)
            index = self.catalog.index(grant.tenant_id)
            groups = _conferred_groups(grant)
            violations = [
                v
                for v in policy.violations(grant.request, roles=index, groups=groups, duration=window)
                if v.rule in _DURATION_RULES
            ]
            if violations:
                raise PolicyDenied([(v.rule, v.message) for v in violations])
            reasons = policy.approval_reasons(grant.request, roles=index, groups=groups)
            longer = new_end > grant.request.end
            detail = f"end {grant.request.end.isoformat()} -> {new_end.isoformat()}" + (f": {reason}" if reason else "")
            if reasons and longer and grant.status is not Status.AWAITING_APPROVAL:
                waiting = Extension(
                    end=new_end,
                    requested_at=now,
                    requested_by=caller.actor,
                    requester_id=caller.id,
                    reason=reason,
                    state=ExtensionState.AWAITING_APPROVAL,
                    previous_end=grant.request.end,
                )
                entry = _entry(
                    now,
                    grant,
                    caller.actor,
                    "grant.extension-requested",
                    detail + " (needs approval: " + "; ".join(reasons) + ")",
                )
                applied[:] = [False]
                return replace(grant, extension=waiting), [entry]
            applied[:] = [True]
            extension = Extension(
                end=new_end,
                requested_at=now,
                requested_by=caller.actor,
                requester_id=caller.id,
                reason=reason,
                state=ExtensionState.APPROVED,
                previous_end=grant.request.end,
                decided_by="policy",
                decided_at=now,
            )
            moved = replace(grant, request=replace(grant.request, end=new_end), extension=extension)
            return moved, [_entry(now, grant, caller.actor, "grant.extended", detail)]

        grant = self.writer.update(grant_id, change, current.tenant_id if current else None, current=current)
        if applied == [True]:
            self._extended(grant, now)
        elif applied == [False]:
            work = WorkItem(grant.tenant_id, grant.id, Step.APPROVAL_TIMEOUT)
            self.schedule.put(ScheduleItem(due=now + self.approval_timeout, work=work))
            if self.notify_queue is not None:
                announce(self.notify_queue, grant.tenant_id, grant.id, Event.AWAITING_APPROVAL, now, extension=True)
        return grant

    def _decide_extension(
        self, grant: Grant, extension: Extension, *, approve: bool, caller: Caller, comment: str, now: datetime
    ) -> tuple[Grant, list[AuditEntry]]:
        decided = replace(extension, decided_by=caller.actor, decided_at=now, comment=comment)
        detail = f"end {grant.request.end.isoformat()} -> {extension.end.isoformat()}" + (f": {comment}" if comment else "")
        if not approve:
            return replace(grant, extension=replace(decided, state=ExtensionState.DENIED)), [
                _entry(now, grant, caller.actor, "grant.extension-denied", detail)
            ]
        if extension.end <= now or grant.status not in (Status.SCHEDULED, Status.PROVISIONING, Status.ACTIVE):
            raise Conflict(f"the extension of grant {grant.id} can not be approved any more: the grant is {grant.status.value}")
        window = extension.end - grant.request.start
        policy = self.policies.effective(grant.tenant_id)
        index = self.catalog.index(grant.tenant_id)
        violations = [
            v
            for v in policy.violations(grant.request, roles=index, groups=_conferred_groups(grant), duration=window)
            if v.rule in _DURATION_RULES
        ]
        if violations:
            raise PolicyDenied([(v.rule, v.message) for v in violations])
        moved = replace(
            grant, request=replace(grant.request, end=extension.end), extension=replace(decided, state=ExtensionState.APPROVED)
        )
        return moved, [_entry(now, grant, caller.actor, "grant.extended", detail + " (approved)")]

    def _extended(self, grant: Grant, now: datetime) -> None:
        if grant.status is Status.ACTIVE:
            # The old end's message and wake-up find the grant not due and do nothing.
            self.wake(Wakeup.at(WorkItem(grant.tenant_id, grant.id, Step.EXPIRE), grant.request.end, now=now, grace=END_GRACE))
            # Directories that hold access on a schedule (PIM) move their end too.
            self.queue.send(WorkItem(grant.tenant_id, grant.id, Step.EXTEND))

    def _enforce(self, grant: Grant) -> None:
        policy = self.policies.effective(grant.tenant_id)
        index = self.catalog.index(grant.tenant_id)
        violations = [
            v
            for v in policy.violations(grant.request, roles=index, groups=_conferred_groups(grant))
            if v.rule != "maxConcurrentGrantsPerUser"
        ]
        if violations:
            raise PolicyDenied([(v.rule, v.message) for v in violations])

    def wake(self, wakeup: Wakeup) -> None:
        self.schedule.put(wakeup.item)
        if wakeup.message_delay is not None:
            self.queue.send(wakeup.item.work, visible_after=wakeup.message_delay)

    def time_out_approval(self, grant_id: str, tenant_id: str | None = None) -> Grant:
        now = self.clock.now()

        def deny(grant: Grant) -> Grant | tuple[Grant, list[AuditEntry]]:
            if grant.status is Status.AWAITING_APPROVAL:
                return grant.move_to(Status.DENIED, at=now, actor=SYSTEM, reason="no decision before the approval timeout")
            extension = grant.extension
            if (
                extension is not None
                and extension.state is ExtensionState.AWAITING_APPROVAL
                and now - extension.requested_at >= self.approval_timeout
            ):
                timed_out = replace(
                    extension, state=ExtensionState.DENIED, decided_by=SYSTEM, decided_at=now, comment="no decision in time"
                )
                return replace(grant, extension=timed_out), [
                    _entry(now, grant, SYSTEM, "grant.extension-denied", "no decision before the approval timeout")
                ]
            return grant

        return self.writer.update(grant_id, deny, tenant_id)

    # The sweep --------------------------------------------------------------------------------------------------

    def _expiring_soon(self, item: ScheduleItem, now: datetime) -> int:
        """Announce that an active grant ends soon, once; the wake-up is removed either way."""
        try:
            grant = self.writer.grants.get(item.work.grant_id, item.work.tenant_id)
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
                grant = self.writer.grants.get(item.work.grant_id, item.work.tenant_id)
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


def check_decider(grant: Grant, caller: Caller) -> None:
    """The approver is neither the requester nor the person who receives access (by object id, and by sign-in name
    for an account in another tenant)."""
    extension = grant.extension
    asking = {grant.requester_id}
    if extension is not None and extension.state is ExtensionState.AWAITING_APPROVAL:
        asking.add(extension.requester_id)
    if caller.id in asking:
        raise Forbidden("the requester of a grant can not decide on it")
    user = grant.request.user
    receiving_ids = {user.object_id or "", grant.progress.account_id or ""} - {""}
    receiving_names = {(user.user_principal_name or "").casefold()} - {""}
    if user.kind is UserKind.NEW:
        # A new account's credential goes to the requester: the requester receives the access.
        receiving_ids.add(grant.requester_id)
        receiving_names.add(grant.requester_name.casefold())
    if caller.id.lower() in {i.lower() for i in receiving_ids} or caller.name.casefold() in receiving_names:
        raise Forbidden("the person who receives the access can not approve it")


def _conferred_groups(grant: Grant) -> dict[str, GroupRoles]:
    """What provisioning found the grant's groups confer (known once it surveyed the directory)."""
    if not grant.progress.conferred_roles:
        return {}
    return {"of this grant": GroupRoles(role_assignable=True, confers=grant.progress.conferred_roles)}


def _entry(now: datetime, grant: Grant, actor: str, action: str, detail: str) -> AuditEntry:
    return AuditEntry(now, grant.tenant_id, grant.id, actor, action, detail=detail)


def _still_needed(grant: Grant, step: Step, now: datetime) -> bool:
    if step is Step.PROVISION:
        return grant.status in (Status.SCHEDULED, Status.PROVISIONING)
    if step is Step.APPROVAL_TIMEOUT:
        extension = grant.extension
        return grant.status is Status.AWAITING_APPROVAL or (
            extension is not None and extension.state is ExtensionState.AWAITING_APPROVAL
        )
    if step is Step.EXTEND:
        return False  # the message itself does it; nothing to retry from the schedule
    return grant.status is Status.EXPIRING or grant.is_due_to_end(now)
