"""The provisioning saga: a due grant becomes real access — the account, its roles, its group memberships and a
sign-in credential — in whatever directory the grant names, through the `AccessBackend` port.

    claim (Scheduled -> Provisioning) -> survey (nothing written) -> account -> access (one write batch) -> Active

Every step is idempotent and resumable: intent is saved before each directory write and the outcome after it (with
the audit entries of the writes, in the same transaction), so a message delivered twice or a worker killed between
any two calls ends in the same state; a lease keeps two workers off one grant. Transient failures are retried within
a budget and then left to the queue's redelivery and the sweep; anything else fails the grant and undoes what it
made, roles first, so no account (deleted or surviving) keeps a role the grant gave it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Protocol

from jit.domain.accounts import generated_upn, is_marked_for, mail_nickname, marker, random_password
from jit.domain.clock import Clock
from jit.domain.errors import IllegalTransition
from jit.domain.grant import Grant, Status
from jit.domain.ledger import Ledger, LedgerWrite, Origin
from jit.domain.notification import Event
from jit.domain.policy import GroupRoles, Policy
from jit.domain.progress import AccountRecord, CredentialKind, CredentialRecord, GroupRecord, ItemState, Progress, RoleRecord
from jit.domain.request import UserKind
from jit.domain.roles import PRIVILEGED_ROLES, RoleDefinition, RoleIndex
from jit.domain.work import END_GRACE, ScheduleItem, Step, Wakeup, WorkItem
from jit.services.access_backend import (
    AccessBackend,
    Account,
    AccountEnd,
    AlreadyExists,
    BackendProvider,
    Denied,
    DirectoryError,
    GroupFacts,
    Item,
    ItemKind,
    Need,
    NewAccount,
    NotFoundInDirectory,
    Outcome,
    OutcomeStatus,
    ReferenceNotFound,
    Survey,
    Unavailable,
    Window,
    WrongDirectory,
)
from jit.services.audited_backend import WorkAudit
from jit.services.grant_writer import GrantWriter
from jit.services.leases import Lease, LeaseHeld
from jit.services.ports import ScheduleIndex, SealedSecret, StaleGrant, WorkQueue
from jit.services.retrying import RetryPolicy
from jit.services.roles import RoleCatalog

log = logging.getLogger(__name__)

SYSTEM = "system"
MAX_NAME_ATTEMPTS = 5


class ProvisioningFailed(Exception):
    """A failure no retry will mend: the grant becomes Failed with this reason, and what it made is undone."""

    def __init__(self, step: str, message: str, error: DirectoryError | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.message = message
        self.error = error

    def describe(self) -> dict[str, str]:
        described = {"step": self.step, "message": self.message}
        if self.error is not None:
            described.update({"code": self.error.code or type(self.error).__name__, "graphRequestId": self.error.request_id})
        return described


class NeedsApproval(Exception):
    """The directory shows what intake could not know (a group that confers a privileged role): an approver decides."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class Sealer(Protocol):
    def seal(self, tenant_id: str, grant_id: str, value: str) -> str: ...


class PolicySource(Protocol):
    def effective(self, tenant_id: str) -> Policy: ...


@dataclass(frozen=True)
class Plan:
    """What the grant needs, resolved against the directory before anything is written."""

    survey: Survey
    roles: dict[str, RoleDefinition]  # role definition id -> definition
    groups: tuple[GroupFacts, ...]
    credential: Item | None


@dataclass
class ProvisioningSaga:
    writer: GrantWriter
    backends: BackendProvider
    sealer: Sealer
    schedule: ScheduleIndex
    queue: WorkQueue
    clock: Clock
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    catalog: RoleCatalog = field(default_factory=RoleCatalog)
    policies: PolicySource | None = None
    lease: timedelta = timedelta(minutes=5)
    deadline: timedelta = timedelta(hours=1)
    approval_timeout: timedelta = timedelta(hours=4)
    expiring_lead: timedelta | None = None
    # Whether anybody hears an event of this grant (no wake-up for an "expiring soon" nobody would be told).
    hears: Callable[[Grant, Event], bool] | None = None

    async def __call__(self, grant: Grant, work: WorkAudit) -> Grant:
        now = self.clock.now()
        lease = Lease(self.writer, self.clock, Status.PROVISIONING, self.lease, work)

        def start(current: Grant) -> Grant:
            if current.status is Status.SCHEDULED and current.request.start <= now:
                return current.move_to(Status.PROVISIONING, at=now, actor=SYSTEM, reason="start reached")
            return current

        backend = self.backends.backend(grant.tenant_id, grant.request.directory)
        claimed = False
        # A due grant is surveyed first (nothing is written by a survey), and the claim carries the intent: what the
        # grant will write, recorded before the first write, in the same storage write that takes the lease.
        due = grant.status is Status.PROVISIONING or (grant.status is Status.SCHEDULED and grant.request.start <= now)
        plan: Plan | None = None

        async def claim(change: Callable[[Grant], Grant]) -> Grant | None:
            nonlocal claimed
            got = await lease.try_claim(grant, change)
            claimed = got is not None
            return got

        try:
            if due:
                plan = await self._plan(backend, grant)
                ledger = await self._ledger(grant, plan)
                planned = plan
                got = await claim(lambda g: self._with_intent(start(g), planned, ledger))
            else:
                got = await claim(start)
            if got is None:
                return await asyncio.to_thread(self.writer.grants.get, grant.id, grant.tenant_id)
            grant = got
            if plan is None:
                plan = await self._plan(backend, grant)
            grant, account, record = await self._ensure_account(backend, grant, plan, lease, intent_recorded=due)
            grant = await self._ensure_access(backend, grant, account, record, plan, lease)
            await self._schedule_end(grant)
            return grant
        except NeedsApproval as needed:
            detour = grant if claimed else await claim(start)
            if detour is None:
                return await asyncio.to_thread(self.writer.grants.get, grant.id, grant.tenant_id)
            return await self._await_approval(detour, needed, lease)
        except ProvisioningFailed as failure:
            detour = grant if claimed else await claim(start)
            if detour is None:
                return await asyncio.to_thread(self.writer.grants.get, grant.id, grant.tenant_id)
            return await self._fail(backend, detour, failure, lease)
        except DirectoryError as error:
            overdue = self.clock.now() - grant.request.start > self.deadline
            if not error.transient or overdue:
                detour = grant if claimed else await claim(start)
                if detour is None:
                    return await asyncio.to_thread(self.writer.grants.get, grant.id, grant.tenant_id)
                grant = detour
                if not error.transient:
                    return await self._fail(backend, grant, ProvisioningFailed("directory", _refusal(error), error), lease)
                message = f"the directory kept failing for longer than {self.deadline}: {error.message}"
                return await self._fail(backend, grant, ProvisioningFailed("directory", message, error), lease)
            if not claimed and due and grant.status is Status.SCHEDULED:
                # Its start has passed: it shows Provisioning while the directory is away (the survey failed before
                # the claim that would have said so).
                started = await claim(start)
                grant = started or grant
            if claimed:
                await lease.release(grant)
            raise  # transient: the queue redelivers, the sweep backs it up
        except StaleGrant:
            # Another grant changed the account's access ledger meanwhile: the next delivery starts the step over.
            if claimed:
                await lease.release(grant)
            raise Unavailable(f"grant {grant.id}: the account's access changed meanwhile; trying again") from None
        except (IllegalTransition, LeaseHeld):
            # Revoked meanwhile (expiration takes over and removes whatever was made), or taken over.
            if claimed:
                await lease.release(grant)
            return await asyncio.to_thread(self.writer.grants.get, grant.id, grant.tenant_id)

    async def _ledger(self, grant: Grant, plan: Plan) -> Ledger | None:
        """The access ledger of an existing account (None for an account the grant creates)."""
        account = plan.survey.account if grant.request.user.kind is UserKind.EXISTING else None
        if account is None:
            return None
        return await asyncio.to_thread(self.writer.grants.ledger, grant.tenant_id, account.id)

    def _with_intent(self, grant: Grant, plan: Plan, ledger: Ledger | None) -> Grant:
        """`grant` with what provisioning is about to write recorded as pending (kept as it is where already known)."""
        if grant.status is not Status.PROVISIONING:
            return grant
        progress = grant.progress
        record = progress.account
        if record is None:
            account = plan.survey.account if grant.request.user.kind is UserKind.EXISTING else None
            if account is not None:
                record = AccountRecord(created=False, state=ItemState.DONE, id=account.id, principal_name=account.principal_name)
            else:
                spec = grant.request.user
                name = spec.user_principal_name or generated_upn(
                    spec.display_name or "admin", grant.id, plan.survey.initial_domain, 0
                )
                record = AccountRecord(created=True, state=ItemState.PENDING, principal_name=name, attempt=0)
        intended, _ = self._intended(replace(progress, account=record), plan, ledger, grant.id)
        return grant.with_progress(intended)

    # Survey: nothing is written ---------------------------------------------------------------------------------

    async def _plan(self, backend: AccessBackend, grant: Grant) -> Plan:
        request = grant.request
        spec = request.user
        credential = grant.progress.credential
        wants_credential = request.tap.enabled and (credential is None or credential.state is ItemState.PENDING)
        need = Need(
            directory_id=grant.tenant_id,
            roles=request.roles,
            groups=request.groups,
            existing_account=(spec.object_id or spec.user_principal_name) if spec.kind is UserKind.EXISTING else None,
            new_account_domain=spec.user_principal_name.rsplit("@", 1)[1].lower()
            if spec.kind is UserKind.NEW and spec.user_principal_name
            else None,
            credential=wants_credential,
        )
        try:
            survey = await self.retry.run(backend.survey, need)
        except WrongDirectory as wrong:
            raise ProvisioningFailed("tenant", wrong.message, wrong) from None
        self.catalog.remember(grant.tenant_id, survey.definitions)
        origin = f" (from template {request.template_name})" if request.template_name else ""
        if survey.unknown_roles:
            raise ProvisioningFailed("roles", "no such role in the tenant: " + ", ".join(survey.unknown_roles) + origin)
        if survey.missing_groups:
            raise ProvisioningFailed("groups", "no such group in the tenant: " + ", ".join(survey.missing_groups) + origin)
        self._check_policy_again(grant, survey)
        if spec.kind is UserKind.EXISTING:
            self._check_existing_account(grant, survey)
        if need.new_account_domain and need.new_account_domain not in {d.lower() for d in survey.verified_domains}:
            raise ProvisioningFailed("user", f"{need.new_account_domain} is not a verified domain of the tenant")
        roles = {d.id: d for d in survey.roles.values()}
        return Plan(survey, roles, survey.groups, self._credential(grant, survey) if wants_credential else None)

    def _check_policy_again(self, grant: Grant, survey: Survey) -> None:
        """Intake compared roles as the tenant's definitions were known then; now the directory answers, including
        which roles each requested group confers. The same rules run again on what the request really means."""
        if self.policies is None:
            return
        policy = self.policies.effective(grant.tenant_id)
        index = RoleIndex(list(survey.definitions))
        groups = {g.id: GroupRoles(g.role_assignable, g.confers) for g in survey.groups}
        violations = [
            v for v in policy.violations(grant.request, roles=index, groups=groups) if v.rule != "maxConcurrentGrantsPerUser"
        ]
        if grant.extension is not None and grant.extension.state.value == "Approved":
            violations = [v for v in violations if v.rule not in ("maxDuration", "maxDurationPerRole")]
        if violations:
            raise ProvisioningFailed("policy", "; ".join(f"{v.rule}: {v.message}" for v in violations))
        reasons = policy.approval_reasons(grant.request, roles=index, groups=groups)
        approved = any(t.from_status is Status.AWAITING_APPROVAL and t.to_status is Status.SCHEDULED for t in grant.history)
        if reasons and not approved:
            progress = grant.progress
            untouched = progress.account is None and not progress.roles and not progress.groups and progress.credential is None
            if untouched:
                raise NeedsApproval(reasons)
            raise ProvisioningFailed("policy", "; ".join(reasons) + ": needs approval, and this grant was not approved")

    def _check_existing_account(self, grant: Grant, survey: Survey) -> None:
        request = grant.request
        key = request.user.object_id or request.user.user_principal_name
        if survey.account is None:
            raise ProvisioningFailed("user", f"user {key} does not exist in the tenant")
        if request.tap.enabled and grant.progress.credential is None:
            privileged = sorted(survey.account_roles & PRIVILEGED_ROLES)
            if privileged or survey.account_in_role_assignable_group:
                why = (
                    f"it holds the privileged role(s) {', '.join(privileged)}"
                    if privileged
                    else "it is in a role-assignable group"
                )
                raise ProvisioningFailed(
                    "temporaryAccessPass",
                    f"a Temporary Access Pass is never issued to {key}: {why}, and a pass would take the account over",
                )
            if survey.account_credentials:
                raise ProvisioningFailed(
                    "temporaryAccessPass", "the user already has a Temporary Access Pass; remove it, or request without a TAP"
                )

    def _credential(self, grant: Grant, survey: Survey) -> Item:
        policy = survey.credential_policy
        if policy is None or not policy.enabled:
            raise ProvisioningFailed(
                "temporaryAccessPass",
                "the tenant's Temporary Access Pass policy is disabled: enable it under Authentication methods, "
                "or request without a TAP",
            )
        if not policy.targets_account:
            raise ProvisioningFailed(
                "temporaryAccessPass", policy.detail + ": add the account to a targeted group, or request without a TAP"
            )
        wanted = grant.request.tap.lifetime_in_minutes
        lifetime = min(max(wanted, policy.minimum_lifetime_minutes), policy.maximum_lifetime_minutes)
        # A directory whose credential cannot be limited to one use (a password) says so; the answer shows it.
        once = policy.usable_once_available and (grant.request.tap.is_usable_once or policy.usable_once_enforced)
        return Item(
            ItemKind.CREDENTIAL,
            CredentialKind(policy.kind).value,
            lifetime_minutes=lifetime,
            usable_once=once,
            after_memberships=policy.through_requested_groups,
        )

    # The account ------------------------------------------------------------------------------------------------

    async def _ensure_account(
        self, backend: AccessBackend, grant: Grant, plan: Plan, lease: Lease, *, intent_recorded: bool = False
    ) -> tuple[Grant, Account, AccountRecord]:
        record = grant.progress.account
        if record is not None and record.state is ItemState.DONE and record.id:
            return grant, Account(record.id, record.principal_name or ""), record
        if grant.request.user.kind is UserKind.EXISTING:
            account = plan.survey.account
            assert account is not None
            return (
                grant,
                account,
                AccountRecord(created=False, state=ItemState.DONE, id=account.id, principal_name=account.principal_name),
            )
        grant, account = await self._create_account(backend, grant, plan, lease, intent_recorded=intent_recorded)
        return (
            grant,
            account,
            AccountRecord(created=True, state=ItemState.DONE, id=account.id, principal_name=account.principal_name),
        )

    async def _create_account(
        self, backend: AccessBackend, grant: Grant, plan: Plan, lease: Lease, *, intent_recorded: bool = False
    ) -> tuple[Grant, Account]:
        spec = grant.request.user
        record = grant.progress.account
        attempt = record.attempt if record else 0
        # The claim of this run recorded the intent to create this very name: nothing to look for first.
        fresh = intent_recorded and record is not None and record.state is ItemState.PENDING
        while attempt < MAX_NAME_ATTEMPTS:
            name = spec.user_principal_name or generated_upn(
                spec.display_name or "admin", grant.id, plan.survey.initial_domain, attempt
            )
            if record is not None and record.state is ItemState.PENDING and record.principal_name == name and not fresh:
                # An earlier run may have created it and died before recording it: look before creating again.
                found = await self.retry.run(backend.find_account, name)
                if found is not None and is_marked_for(found.marker, grant.id):
                    return grant, found
            fresh = False
            if record is None or record.principal_name != name or record.state is not ItemState.PENDING:
                record = AccountRecord(created=True, state=ItemState.PENDING, principal_name=name, attempt=attempt)
                grant = await lease.save(grant, functools.partial(_with_account, record=record))
            new = NewAccount(
                display_name=spec.display_name or name,
                principal_name=name,
                mail_nickname=mail_nickname(name),
                password=random_password(),
                marker=marker(grant.id),
            )
            try:
                return grant, await self.retry.run(backend.create_account, new)
            except AlreadyExists as taken:
                # Ours from an earlier run that the directory had not shown yet, or somebody else's account.
                found = await self.retry.run(backend.find_account, name, not_found_is_lag=True)
                if found is not None and is_marked_for(found.marker, grant.id):
                    return grant, found
                if spec.user_principal_name:
                    raise ProvisioningFailed("user", f"{name} is already in use in the tenant", taken) from None
                attempt += 1
            except DirectoryError as error:
                if error.transient:
                    raise
                raise ProvisioningFailed("user", f"the directory refused to create the user: {error.message}", error) from None
        raise ProvisioningFailed("user", f"no free user principal name after {MAX_NAME_ATTEMPTS} attempts")

    # Access -----------------------------------------------------------------------------------------------------

    async def _ensure_access(
        self, backend: AccessBackend, grant: Grant, account: Account, record: AccountRecord, plan: Plan, lease: Lease
    ) -> Grant:
        existing = not record.created
        ledger = await asyncio.to_thread(self.writer.grants.ledger, grant.tenant_id, account.id) if existing else None
        progress, items = self._intended(replace(grant.progress, account=record), plan, ledger, grant.id)

        outcomes: list[Outcome] = []
        if items:
            intent = progress
            stored = grant.progress
            # Recorded already (by the claim)? The account's own record may differ (now made, with its id): the
            # next write records it, and a run that dies before finds the account by its name.
            if (stored.roles, stored.groups, stored.credential) != (intent.roles, intent.groups, intent.credential):
                grant = await lease.save(grant, lambda g: g.with_progress(replace(intent, lease=g.progress.lease)))
            outcomes = await self._apply(backend, account, items, _window(grant), lag_possible=record.created)
            progress = _recorded(intent, outcomes)
        secret = None
        issued = next((o for o in outcomes if o.item.kind is ItemKind.CREDENTIAL and o.secret), None)
        if issued is not None and issued.secret:
            # Sealed into the grant's partition in the same write that says "issued": never one without the other.
            secret = SealedSecret(self.sealer.seal(grant.tenant_id, grant.id, issued.secret), issued.expires_at)
        now = self.clock.now()
        final = progress
        ledger_write = _ledger_after(ledger, final, grant.id) if ledger is not None else None

        def activate(current: Grant) -> Grant:
            active = current.with_progress(replace(final, lease=current.progress.lease))
            return active.move_to(Status.ACTIVE, at=now, actor=SYSTEM, reason="access provisioned")

        return await lease.finish(grant, activate, secret=secret, ledger=(lambda _: ledger_write) if ledger_write else None)

    def _intended(
        self, progress: Progress, plan: Plan, ledger: Ledger | None, grant_id: str
    ) -> tuple[Progress, list[Item]]:
        """What the grant will hold once provisioned, each item's state known or pending, and the items to write."""
        record = progress.account
        existing = record is not None and not record.created
        survey = plan.survey
        progress = replace(progress, conferred_roles=_conferred(plan))
        items: list[Item] = []
        for role_id, definition in plan.roles.items():
            current = progress.role(role_id)
            if current is not None and current.state is not ItemState.PENDING:
                continue
            key = Ledger.key("role", role_id)
            _wait_if_removing(ledger, key, grant_id, definition.display_name)
            if existing and current is None and definition.template_id.lower() in survey.account_direct_roles:
                state = _found_state(ledger, key, grant_id)
                progress = progress.with_role(RoleRecord(role_id, definition.display_name, state, definition.template_id))
                continue
            progress = progress.with_role(RoleRecord(role_id, definition.display_name, ItemState.PENDING, definition.template_id))
            items.append(Item(ItemKind.ROLE, role_id))
        for group in plan.groups:
            current_group = progress.group(group.id)
            if current_group is not None and current_group.state is not ItemState.PENDING:
                continue
            key = Ledger.key("group", group.id)
            _wait_if_removing(ledger, key, grant_id, group.display_name or group.id)
            if existing and current_group is None and group.id.lower() in survey.account_direct_groups:
                progress = progress.with_group(GroupRecord(group.id, _found_state(ledger, key, grant_id), group.display_name))
                continue
            progress = progress.with_group(GroupRecord(group.id, ItemState.PENDING, group.display_name))
            items.append(Item(ItemKind.GROUP, group.id))
        if plan.credential is not None:
            progress = replace(
                progress,
                credential=CredentialRecord(
                    CredentialKind(plan.credential.key),
                    ItemState.PENDING,
                    plan.credential.lifetime_minutes,
                    plan.credential.usable_once,
                ),
            )
            items.append(plan.credential)
        return progress, items

    async def _apply(
        self, backend: AccessBackend, account: Account, items: list[Item], window: Window, *, lag_possible: bool
    ) -> list[Outcome]:
        """Grant the items; retry those that failed transiently (or, on an account just made, on replication lag)
        until the budget runs out. A permanent refusal fails the grant."""
        pending = list(items)
        done: dict[int, Outcome] = {}
        index = {id(item): i for i, item in enumerate(items)}

        async def attempt() -> None:
            nonlocal pending
            outcomes = await backend.grant(account, pending, window)
            retry_these: list[Item] = []
            first: DirectoryError | None = None
            for outcome in outcomes:
                error = outcome.error
                if error is None:
                    done[index[id(outcome.item)]] = outcome
                elif error.transient or (lag_possible and isinstance(error, NotFoundInDirectory | ReferenceNotFound)):
                    retry_these.append(outcome.item)
                    first = first or error
                else:
                    done[index[id(outcome.item)]] = outcome
                    raise ProvisioningFailed(outcome.item.kind.value, f"the directory refused: {error.message}", error)
            pending = retry_these
            if first is not None:
                raise first

        await self.retry.run(attempt, not_found_is_lag=lag_possible)
        return [done[i] for i in range(len(items))]

    async def _schedule_end(self, grant: Grant) -> None:
        now = self.clock.now()
        end = grant.request.end
        wakeup = Wakeup.at(WorkItem(grant.tenant_id, grant.id, Step.EXPIRE), end, now=now, grace=END_GRACE)
        await asyncio.to_thread(self.schedule.put, wakeup.item)
        heard = self.hears is None or await asyncio.to_thread(self.hears, grant, Event.EXPIRING_SOON)
        if self.expiring_lead is not None and end - self.expiring_lead > now and heard:
            soon = WorkItem(grant.tenant_id, grant.id, Step.EXPIRING_SOON)
            await asyncio.to_thread(self.schedule.put, ScheduleItem(due=end - self.expiring_lead, work=soon))
        if wakeup.message_delay is not None:
            await asyncio.to_thread(self.queue.send, wakeup.item.work, wakeup.message_delay)
        log.info("grant %s is active until %s", grant.id, end.isoformat())

    # Detours ----------------------------------------------------------------------------------------------------

    async def _await_approval(self, grant: Grant, needed: NeedsApproval, lease: Lease) -> Grant:
        now = self.clock.now()
        reason = "approval needed: " + "; ".join(needed.reasons)
        await asyncio.to_thread(
            self.schedule.put,
            ScheduleItem(due=now + self.approval_timeout, work=WorkItem(grant.tenant_id, grant.id, Step.APPROVAL_TIMEOUT)),
        )
        return await lease.finish(grant, lambda g: g.move_to(Status.AWAITING_APPROVAL, at=now, actor=SYSTEM, reason=reason))

    async def _fail(self, backend: AccessBackend, grant: Grant, failure: ProvisioningFailed, lease: Lease) -> Grant:
        """Undo what this grant made — roles and memberships first, then the account it created — and mark it
        Failed. If the undo cannot finish now, the grant stays Provisioning and the next run finishes it."""
        log.warning("grant %s failed at %s: %s", grant.id, failure.step, failure.message)
        current = await asyncio.to_thread(self.writer.grants.get, grant.id, grant.tenant_id)
        account = await self._own_account(backend, current)
        record = current.progress.account
        if account is not None and record is not None and record.id is None:
            # Made by this run, recorded only by name so far: its id goes on record before the undo, which may
            # have to wait (PIM keeps a new assignment five minutes).
            made = replace(record, state=ItemState.DONE, id=account.id, principal_name=account.principal_name)
            current = await lease.save(current, functools.partial(_with_account, record=made))
        if account is not None:
            await self._undo(backend, current, account)
        now = self.clock.now()

        def fail(g: Grant) -> Grant:
            failed = g.move_to(Status.FAILED, at=now, actor=SYSTEM, reason=failure.message)
            return replace(failed, error=failure.describe())

        secret = await asyncio.to_thread(self.writer.grants.secret, current)
        return await lease.finish(current, fail, drop_secret=secret)

    async def _own_account(self, backend: AccessBackend, grant: Grant) -> Account | None:
        """The account the grant works on, if it exists and (when the grant created it) still carries its marker."""
        record = grant.progress.account
        if record is None:
            return None
        key = record.id or (record.principal_name if record.created else None)
        if not key:
            return None
        account = await self.retry.run(backend.find_account, key)
        if account is None:
            return None
        if record.created and not is_marked_for(account.marker, grant.id):
            log.error("grant %s: the account it recorded is not marked as its own; left in place", grant.id)
            return None
        return account

    async def _undo(self, backend: AccessBackend, grant: Grant, account: Account) -> None:
        progress = grant.progress
        record = progress.account
        assert record is not None
        items = [Item(ItemKind.ROLE, r.role_id, reference=r.reference) for r in progress.roles_made_here]
        items += [Item(ItemKind.GROUP, g.group_id) for g in progress.groups_made_here]
        credential = progress.credential
        if credential is not None and credential.state.made_here:
            items.append(
                Item(ItemKind.CREDENTIAL, credential.kind.value, reference=credential.id or ("*" if record.created else None))
            )
        end = AccountEnd.DELETE if record.created else None
        if not items and end is None:
            return
        outcomes = await self.retry.run(backend.take_away, account, items, end=end)
        failed = [o for o in outcomes if o.status is OutcomeStatus.FAILED]
        if failed:
            error = failed[0].error
            raise error if error is not None and error.transient else Unavailable(f"undo of grant {grant.id} incomplete")


def _with_account(grant: Grant, *, record: AccountRecord) -> Grant:
    return grant.with_progress(replace(grant.progress, account=record))


def _window(grant: Grant) -> Window:
    request = grant.request
    return Window(grant.id, request.start, request.end, request.reason, request.ticket_id)


def _conferred(plan: Plan) -> tuple[str, ...]:
    return tuple(sorted({role for group in plan.groups for role in group.confers}))


def _wait_if_removing(ledger: Ledger | None, key: str, grant_id: str, name: str) -> None:
    entry = ledger.entry(key) if ledger is not None else None
    if entry is not None and entry.removing and entry.removing != grant_id:
        raise Unavailable(f"{name} is being taken away by grant {entry.removing}; provisioning waits until it is gone")


def _found_state(ledger: Ledger | None, key: str, grant_id: str) -> ItemState:
    """Access the account already has: another live grant's (shared) or its own from before any grant."""
    entry = ledger.entry(key) if ledger is not None else None
    if entry is not None and entry.origin is Origin.GRANT and ledger is not None and ledger.others(key, grant_id):
        return ItemState.SHARED
    return ItemState.PREEXISTING


def _recorded(progress: Progress, outcomes: list[Outcome]) -> Progress:
    """Progress after the directory's answers: what was written (or found written: ours, since intent was saved
    before the write) is DONE, with the directory's id for it."""
    for outcome in outcomes:
        item = outcome.item
        if item.kind is ItemKind.ROLE:
            role = progress.role(item.key)
            if role is not None:
                progress = progress.with_role(replace(role, state=ItemState.DONE, reference=outcome.reference or role.reference))
        elif item.kind is ItemKind.GROUP:
            group = progress.group(item.key)
            if group is not None:
                progress = progress.with_group(replace(group, state=ItemState.DONE))
        elif item.kind is ItemKind.CREDENTIAL and outcome.secret and progress.credential is not None:
            progress = replace(
                progress,
                credential=replace(
                    progress.credential, state=ItemState.DONE, id=outcome.reference, expires_at=outcome.expires_at
                ),
            )
    return progress


def _ledger_after(ledger: Ledger, progress: Progress, grant_id: str) -> LedgerWrite:
    after = ledger
    for role in progress.roles:
        key = Ledger.key("role", role.role_id)
        origin = Origin.PREEXISTING if role.state is ItemState.PREEXISTING else Origin.GRANT
        after = after.join(key, grant_id, origin, role.reference)
    for group in progress.groups:
        key = Ledger.key("group", group.group_id)
        origin = Origin.PREEXISTING if group.state is ItemState.PREEXISTING else Origin.GRANT
        after = after.join(key, grant_id, origin)
    return LedgerWrite(ledger, after)


def _refusal(error: DirectoryError) -> str:
    if isinstance(error, Denied):
        missing = "admin consent, a permission or a directory role is missing"
        return f"the app is not allowed to do this in the tenant ({missing}): {error.message}"
    return f"the directory refused: {error.message}"
