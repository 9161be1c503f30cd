"""Taking a request in: resolve its tenant, check it against policy, store it, schedule it, and answer at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from jit.domain.caller import Caller
from jit.domain.clock import Clock
from jit.domain.errors import Conflict, FieldError, NotFound, PolicyDenied, ValidationFailed
from jit.domain.grant import Grant, Status
from jit.domain.ids import new_grant_id
from jit.domain.policy import PolicyViolation
from jit.domain.request import GrantRequest
from jit.domain.tenant import TenantRegistration, directory_problem
from jit.domain.work import PROVISION_GRACE, ScheduleItem, Step, Wakeup, WorkItem
from jit.services.grant_writer import GrantWriter
from jit.services.ports import IdempotencyRecord, IdempotencyStore, ScheduleIndex, WorkQueue
from jit.services.provision import PolicySource
from jit.services.roles import RoleCatalog


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
class Assessment:
    """What policy says of a request, without storing anything (the portal shows it next to the fields)."""

    request: GrantRequest
    violations: list[PolicyViolation]
    approval_reasons: list[str]


class TenantResolver(Protocol):
    def resolve(self, reference: str) -> TenantRegistration:
        """The registration of the tenant a GUID or a verified domain names; ValidationFailed naming `tenantId`
        (and saying how to onboard it) when no registered tenant goes by that name."""


class OpenGrants(Protocol):
    def open_grants_of(self, tenant_id: str, requester_id: str) -> int: ...


@dataclass(frozen=True)
class Intake:
    writer: GrantWriter
    schedule: ScheduleIndex
    queue: WorkQueue
    idempotency: IdempotencyStore
    clock: Clock
    idempotency_ttl: timedelta
    policies: PolicySource
    tenants: TenantResolver
    catalog: RoleCatalog
    approval_timeout: timedelta = timedelta(hours=4)

    def assess(
        self, build: Callable[[datetime], GrantRequest], *, caller: Caller, now: datetime | None = None
    ) -> Assessment:
        """Validate a request and say what policy thinks of it; nothing is stored."""
        request = self._resolved(build(now or self.clock.now()))
        policy = self.policies.effective(request.tenant_id)
        open_grants = (
            self.writer.grants.open_grants_of(request.tenant_id, caller.id)
            if policy.max_concurrent_grants_per_user is not None
            else 0
        )
        index = self.catalog.index(request.tenant_id)
        violations = policy.violations(request, roles=index, open_grants_of_requester=open_grants)
        return Assessment(request, violations, policy.approval_reasons(request, roles=index))

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
        # One `now` for the whole intake: a start "now" read a moment after the grant's creation time would put its
        # provisioning message a second into the future (queue delays are whole seconds).
        assessment = self.assess(build, caller=caller, now=now)
        if assessment.violations:
            raise PolicyDenied([(v.rule, v.message) for v in assessment.violations])  # nothing written
        request = assessment.request
        grant_id = new_grant_id(now)
        if claim is not None:
            mine = IdempotencyRecord(claim.fingerprint, grant_id, request.tenant_id)
            stored = self.idempotency.claim(claim.scope, claim.key, mine, now=now, ttl=self.idempotency_ttl)
            if stored.grant_id != grant_id:
                replay = self._replay(stored, claim)
                if replay is not None:
                    return replay
                grant_id = stored.grant_id  # the first attempt died before storing its grant: finish it
        reasons = assessment.approval_reasons
        grant = Grant.open(
            grant_id,
            request,
            now=now,
            actor=caller.actor,
            needs_approval=bool(reasons),
            requester_id=caller.id,
            requester_name=caller.name,
            reason="requested" + (": approval needed: " + "; ".join(reasons) if reasons else ""),
        )
        if grant.status is Status.AWAITING_APPROVAL:
            return Submission(self._store_awaiting_approval(grant, now), created=True)
        return Submission(self._store_and_schedule(grant, now), created=True)

    def _resolved(self, request: GrantRequest) -> GrantRequest:
        """The request under its tenant's GUID, for a directory the tenant uses."""
        registration = self.tenants.resolve(request.tenant_id)
        directory = request.directory or registration.default_directory
        problem = directory_problem(registration, directory)
        if problem is not None:
            raise ValidationFailed([FieldError(*problem)])
        return replace(request, tenant_id=registration.id, directory=directory)

    def _store_awaiting_approval(self, grant: Grant, now: datetime) -> Grant:
        """No message: nothing happens until an approver decides, or the wait times out (then it is denied)."""
        work = WorkItem(grant.tenant_id, grant.id, Step.APPROVAL_TIMEOUT)
        self.schedule.put(ScheduleItem(due=now + self.approval_timeout, work=work))
        return self.writer.add(grant)

    def _replay(self, seen: IdempotencyRecord, claim: IdempotencyClaim) -> Submission | None:
        if seen.fingerprint != claim.fingerprint:
            raise Conflict("this Idempotency-Key was already used with a different request body")
        try:
            return Submission(self.writer.grants.get(seen.grant_id, seen.tenant_id), created=False)
        except NotFound:
            return None

    def _store_and_schedule(self, grant: Grant, now: datetime) -> Grant:
        work = WorkItem(grant.tenant_id, grant.id, Step.PROVISION)
        wakeup = Wakeup.at(work, grant.request.start, now=now, grace=PROVISION_GRACE)
        self.schedule.put(wakeup.item)
        stored = self.writer.add(grant)
        if wakeup.message_delay is not None:
            self.queue.send(work, visible_after=wakeup.message_delay)
        return stored
