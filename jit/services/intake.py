"""Taking a request in: store it, schedule it, hand it to the queue, and answer at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from jit.domain.caller import Caller
from jit.domain.clock import Clock
from jit.domain.errors import Conflict, NotFound
from jit.domain.grant import Grant, Status
from jit.domain.ids import new_grant_id
from jit.domain.request import GrantRequest
from jit.domain.work import PROVISION_GRACE, ScheduleItem, Step, Wakeup, WorkItem
from jit.services.audit import record_new_transitions
from jit.services.policies import Policies, enforce
from jit.services.ports import AuditLog, GrantRepository, IdempotencyRecord, IdempotencyStore, ScheduleIndex, WorkQueue


@dataclass(frozen=True)
class IdempotencyClaim:
    """A caller's Idempotency-Key, the scope it is unique in (the caller), and the body's fingerprint."""

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Submission:
    grant: Grant
    created: bool


@dataclass(frozen=True)
class Intake:
    grants: GrantRepository
    schedule: ScheduleIndex
    queue: WorkQueue
    audit: AuditLog
    idempotency: IdempotencyStore
    clock: Clock
    idempotency_ttl: timedelta
    policies: Policies
    approval_timeout: timedelta = timedelta(hours=4)

    def submit(
        self, build: Callable[[datetime], GrantRequest], *, caller: Caller, claim: IdempotencyClaim | None = None
    ) -> Submission:
        """Validate a request (`build` raises ValidationFailed), store it as a new grant and queue its provisioning.

        A retry with an Idempotency-Key already seen returns that grant before anything is validated again (its
        start may have passed since). Writes go in an order that a crash at any point leaves recoverable: the
        schedule entry first (the sweep drops an entry whose grant never appeared), then the grant, then the
        message; a retry with the same key finishes what a crashed attempt began.
        """
        now = self.clock.now()
        if claim is not None:
            seen = self.idempotency.find(claim.scope, claim.key, now=now)
            if seen is not None:
                replay = self._replay(seen, claim)
                if replay is not None:
                    return replay
        request = build(now)
        policy = self.policies.effective(request.tenant_id)
        open_grants = (
            self.grants.open_grants_of(request.tenant_id, caller.id) if policy.max_concurrent_grants_per_user is not None else 0
        )
        enforce(policy, request, open_grants_of_requester=open_grants)  # PolicyDenied: nothing written
        grant_id = new_grant_id(now)
        if claim is not None:
            mine = IdempotencyRecord(claim.fingerprint, grant_id, request.tenant_id)
            stored = self.idempotency.claim(claim.scope, claim.key, mine, now=now, ttl=self.idempotency_ttl)
            if stored.grant_id != grant_id:
                replay = self._replay(stored, claim)
                if replay is not None:
                    return replay
                grant_id = stored.grant_id  # the first attempt died before storing its grant: finish it
        grant = Grant.open(
            grant_id,
            request,
            now=now,
            actor=caller.actor,
            needs_approval=policy.needs_approval(request.roles),
            requester_id=caller.id,
        )
        if grant.status is Status.AWAITING_APPROVAL:
            return Submission(self._store_awaiting_approval(grant, now), created=True)
        return Submission(self._store_and_schedule(grant, now), created=True)

    def _store_awaiting_approval(self, grant: Grant, now: datetime) -> Grant:
        """No message: nothing happens until an approver decides, or the wait times out (then it is denied)."""
        work = WorkItem(grant.tenant_id, grant.id, Step.APPROVAL_TIMEOUT)
        self.schedule.put(ScheduleItem(due=now + self.approval_timeout, work=work))
        stored = self.grants.add(grant)
        record_new_transitions(self.audit, None, stored)
        return stored

    def _replay(self, seen: IdempotencyRecord, claim: IdempotencyClaim) -> Submission | None:
        if seen.fingerprint != claim.fingerprint:
            raise Conflict("this Idempotency-Key was already used with a different request body")
        try:
            return Submission(self.grants.get(seen.grant_id, seen.tenant_id), created=False)
        except NotFound:
            return None

    def _store_and_schedule(self, grant: Grant, now: datetime) -> Grant:
        work = WorkItem(grant.tenant_id, grant.id, Step.PROVISION)
        wakeup = Wakeup.at(work, grant.request.start, now=now, grace=PROVISION_GRACE)
        self.schedule.put(wakeup.item)
        stored = self.grants.add(grant)
        record_new_transitions(self.audit, None, stored)
        if wakeup.message_delay is not None:
            self.queue.send(work, visible_after=wakeup.message_delay)
        return stored
