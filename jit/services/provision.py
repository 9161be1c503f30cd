"""The provisioning saga: a due grant becomes real access — user, role assignments, group memberships, TAP.

    ensure user -> ensure role assignments + group memberships + TAP (one $batch) -> Active

Every step is idempotent and resumable: progress is written to the grant (under its ETag) before and after each
Graph write, a message delivered twice or a worker killed between two Graph calls ends in the same state, and a
lease keeps two workers from running the same grant at once. Transient Graph failures are retried within a budget
and then left to the queue's redelivery and the sweep; anything else fails the grant and undoes what it made.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from jit.domain.accounts import generated_upn, is_marked_for, mail_nickname, marker, random_password
from jit.domain.clock import Clock
from jit.domain.errors import IllegalTransition
from jit.domain.grant import Grant, Status
from jit.domain.policy import role_key
from jit.domain.request import UserKind
from jit.domain.work import END_GRACE, ScheduleItem, Step, Wakeup, WorkItem
from jit.services import access, progress
from jit.services.directory import (
    AddMember,
    AlreadyExists,
    AssignRole,
    CreateTap,
    Denied,
    Directory,
    DirectoryError,
    DirectoryProvider,
    DirectoryUser,
    NewUser,
    NotFoundInDirectory,
    RoleDefinition,
    TapPolicy,
    TenantInfo,
    Write,
    WriteResult,
)
from jit.services.leases import Lease, LeaseHeld
from jit.services.policies import Policies
from jit.services.ports import AuditLog, GrantRepository, ScheduleIndex, TapVault, WorkQueue
from jit.services.retrying import RetryPolicy
from jit.services.roles import RoleCatalog

log = logging.getLogger(__name__)

SYSTEM = "system"
MAX_UPN_ATTEMPTS = 5


class ProvisioningFailed(Exception):
    """A failure no retry will mend: the grant becomes Failed with this reason, and what it made is undone."""

    def __init__(self, step: str, message: str, graph: DirectoryError | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.message = message
        self.graph = graph

    def describe(self) -> dict[str, str]:
        described = {"step": self.step, "message": self.message}
        if self.graph is not None:
            described.update({"code": self.graph.code or type(self.graph).__name__, "graphRequestId": self.graph.request_id})
        return described


@dataclass(frozen=True)
class Plan:
    """What the grant needs, resolved against the tenant before anything is written."""

    tenant: TenantInfo
    roles: dict[str, str]  # role definition id -> the name the request used
    groups: list[str]
    tap_policy: TapPolicy | None


@dataclass
class ProvisioningSaga:
    grants: GrantRepository
    directories: DirectoryProvider
    vault: TapVault
    schedule: ScheduleIndex
    queue: WorkQueue
    audit: AuditLog
    clock: Clock
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    roles: RoleCatalog = field(default_factory=RoleCatalog)
    lease: timedelta = timedelta(minutes=5)
    deadline: timedelta = timedelta(hours=1)
    policies: Policies | None = None
    expiring_lead: timedelta | None = None

    async def __call__(self, grant: Grant) -> Grant:
        lease = Lease(self.grants, self.audit, self.clock, Status.PROVISIONING, self.lease)
        claimed = await lease.try_claim(grant)
        if claimed is None:
            return await asyncio.to_thread(self.grants.get, grant.id, grant.tenant_id)
        grant = claimed
        directory = self.directories.for_tenant(grant.tenant_id)
        try:
            plan = await self._plan(directory, grant)
            grant = await self._ensure_user(directory, grant, plan, lease)
            grant = await self._ensure_access(directory, grant, plan, lease)
            return await self._activate(grant, lease)
        except ProvisioningFailed as failure:
            return await self._fail(directory, grant, failure, lease)
        except DirectoryError as error:
            if not error.transient:
                return await self._fail(directory, grant, ProvisioningFailed("graph", _refusal(error), error), lease)
            if self.clock.now() - grant.request.start > self.deadline:
                gave_up = ProvisioningFailed(
                    "graph", f"Graph kept failing for longer than {self.deadline}: {error.message}", error
                )
                return await self._fail(directory, grant, gave_up, lease)
            await lease.release(grant)
            raise  # transient: the queue redelivers, the sweep backs it up
        except (IllegalTransition, LeaseHeld):
            # Revoked meanwhile (expiration takes over and removes whatever was made), or taken over.
            await lease.release(grant)
            return await asyncio.to_thread(self.grants.get, grant.id, grant.tenant_id)

    # Steps ----------------------------------------------------------------------------------------------------

    async def _plan(self, directory: Directory, grant: Grant) -> Plan:
        request = grant.request
        # One $batch reads the tenant, the groups and the TAP policy; role definitions come from the catalogue.
        wants_tap = request.tap.enabled and (grant.progress.get("tap") or {}).get("state") != progress.DONE
        survey = await self.retry.run(directory.survey, list(request.groups), tap_policy=wants_tap)
        tenant = survey.tenant
        resolution = await self.retry.run(self.roles.resolve, grant.tenant_id, directory, request.roles)
        origin = f" (from template {request.template_name})" if request.template_name else ""
        if resolution.unknown:
            raise ProvisioningFailed("roles", "no such role in the tenant: " + ", ".join(resolution.unknown) + origin)
        self._check_policy_again(grant, list(resolution.found.values()))
        if survey.missing_groups:
            raise ProvisioningFailed("groups", "no such group in the tenant: " + ", ".join(survey.missing_groups) + origin)
        tap_policy = survey.tap_policy
        if tap_policy is not None and not tap_policy.enabled:
            raise ProvisioningFailed(
                "temporaryAccessPass",
                "the tenant's Temporary Access Pass policy is disabled: enable it under Authentication methods, "
                "or request without a TAP",
            )
        upn = request.user.user_principal_name
        if request.user.kind is UserKind.NEW and upn:
            domain = upn.rsplit("@", 1)[1].lower()
            if domain not in {d.lower() for d in tenant.verified_domains}:
                raise ProvisioningFailed("user", f"{domain} is not a verified domain of the tenant")
        return Plan(
            tenant=tenant,
            roles={d.id: name for name, d in resolution.found.items()},
            groups=list(request.groups),
            tap_policy=tap_policy,
        )

    def _check_policy_again(self, grant: Grant, roles: list[RoleDefinition]) -> None:
        """Intake compared role names as written; now that the tenant's definitions are known, compare each role
        by name and template id, so naming a role differently gets around neither an allow-list nor an approval."""
        if self.policies is None:
            return
        policy = self.policies.effective(grant.tenant_id)
        names = {r.id: (r.display_name, r.template_id) for r in roles}
        if policy.allowed_roles:
            allowed = {role_key(r) for r in policy.allowed_roles}
            denied = [n for n, t in names.values() if role_key(n) not in allowed and role_key(t) not in allowed]
            if denied:
                raise ProvisioningFailed("policy", f"the policy does not allow {', '.join(denied)}")
        approved = any(t.from_status is Status.AWAITING_APPROVAL and t.to_status is Status.SCHEDULED for t in grant.history)
        gated = [n for n, t in names.values() if policy.needs_approval((n,)) or policy.needs_approval((t,))]
        if gated and not approved:
            raise ProvisioningFailed("policy", f"{', '.join(gated)} needs approval, and this grant was not approved")

    async def _ensure_user(self, directory: Directory, grant: Grant, plan: Plan, lease: Lease) -> Grant:
        user = progress.user_of(grant)
        if user.get("state") == progress.DONE:
            return grant
        spec = grant.request.user
        if spec.kind is UserKind.EXISTING:
            key = spec.object_id or spec.user_principal_name or ""
            found = await self.retry.run(directory.find_user, key)
            if found is None:
                raise ProvisioningFailed("user", f"user {key} does not exist in the tenant")
            record = {"id": found.id, "userPrincipalName": found.user_principal_name, "created": False, "state": progress.DONE}
            return await lease.save(grant, lambda g: progress.with_progress(g, user=record))
        created = await self._create_user(directory, grant, plan, user, lease)
        record = {"id": created.id, "userPrincipalName": created.user_principal_name, "created": True, "state": progress.DONE}
        return await lease.save(grant, lambda g: progress.with_progress(g, user=record))

    async def _create_user(
        self, directory: Directory, grant: Grant, plan: Plan, user: dict[str, Any], lease: Lease
    ) -> DirectoryUser:
        spec = grant.request.user
        attempt = int(user.get("attempt", 0))
        while attempt < MAX_UPN_ATTEMPTS:
            upn = spec.user_principal_name or generated_upn(
                spec.display_name or "admin", grant.id, plan.tenant.initial_domain, attempt
            )
            if user.get("state") == progress.PENDING and user.get("userPrincipalName") == upn:
                # An earlier run may have created it and died before recording it: look before creating again.
                found = await self.retry.run(directory.find_user, upn)
                if found is not None and is_marked_for(found.employee_type, grant.id):
                    return found
            user = {"userPrincipalName": upn, "attempt": attempt, "created": True, "state": progress.PENDING}
            grant = await lease.save(grant, functools.partial(progress.with_progress, user=user))
            new_user = NewUser(
                display_name=spec.display_name or upn,
                user_principal_name=upn,
                mail_nickname=mail_nickname(upn),
                password=random_password(),
                employee_type=marker(grant.id),
            )
            try:
                return await self.retry.run(directory.create_user, new_user)
            except AlreadyExists as taken:
                # Ours from an earlier run that Graph had not shown yet, or somebody else's account.
                found = await self.retry.run(directory.find_user, upn, not_found_is_lag=True)
                if found is not None and is_marked_for(found.employee_type, grant.id):
                    return found
                if spec.user_principal_name:
                    raise ProvisioningFailed("user", f"{upn} is already in use in the tenant", taken) from None
                attempt += 1
            except DirectoryError as error:
                if error.transient:
                    raise
                raise ProvisioningFailed("user", f"Graph refused to create the user: {error.message}", error) from None
        raise ProvisioningFailed("user", f"no free user principal name after {MAX_UPN_ATTEMPTS} attempts")

    async def _ensure_access(self, directory: Directory, grant: Grant, plan: Plan, lease: Lease) -> Grant:
        user = progress.user_of(grant)
        user_id = user["id"]
        fresh = bool(user.get("created"))
        roles = progress.entries(grant, "roles")
        groups = progress.entries(grant, "groups")
        tap = dict(grant.progress.get("tap") or {})

        # What is there already: skipped for a user this grant just made and has not touched yet.
        untouched = fresh and not roles and not groups
        assigned = (
            {
                a.role_definition_id: a.id
                for a in await self.retry.run(directory.role_assignments, user_id, not_found_is_lag=fresh)
                if a.directory_scope_id == "/"
            }
            if plan.roles and not untouched
            else {}
        )
        member_of = (
            await self.retry.run(directory.group_ids_of, user_id, not_found_is_lag=fresh)
            if plan.groups and not untouched
            else set()
        )

        for role_id, name in plan.roles.items():
            entry = roles.get(role_id, {"name": name})
            if role_id in assigned:
                entry["assignmentId"] = assigned[role_id]
                entry.setdefault("state", progress.PREEXISTING)
                if entry["state"] == progress.PENDING:
                    entry["state"] = progress.DONE
            else:
                entry["state"] = progress.PENDING
            roles[role_id] = entry
        for group_id in plan.groups:
            entry = groups.get(group_id, {})
            if group_id in member_of:
                entry.setdefault("state", progress.PREEXISTING)
                if entry["state"] == progress.PENDING:
                    entry["state"] = progress.DONE
            else:
                entry["state"] = progress.PENDING
            groups[group_id] = entry

        writes: list[Write] = [AssignRole(user_id, r) for r, e in roles.items() if e["state"] == progress.PENDING]
        writes += [AddMember(g, user_id) for g, e in groups.items() if e["state"] == progress.PENDING]
        if grant.request.tap.enabled and tap.get("state") != progress.DONE:
            assert plan.tap_policy is not None
            await self._clear_unclaimed_tap(directory, grant, tap, fresh)
            lifetime, once = _tap_shape(grant, plan.tap_policy)
            tap = {"state": progress.PENDING, "lifetimeInMinutes": lifetime, "isUsableOnce": once}
            writes.append(CreateTap(user_id, lifetime, once))
        if not writes:
            return grant

        intent = {"roles": roles, "groups": groups, "tap": tap or None}
        grant = await lease.save(grant, lambda g: progress.with_progress(g, **intent))
        results = await self._apply(directory, writes, lag_possible=fresh)
        for result in results:
            self._record(result, roles, groups, tap, grant)
        outcome = {"roles": roles, "groups": groups, "tap": tap or None}
        return await lease.save(grant, lambda g: progress.with_progress(g, **outcome))

    async def _clear_unclaimed_tap(self, directory: Directory, grant: Grant, tap: dict[str, Any], fresh: bool) -> None:
        """Graph allows one TAP per user. One left by an earlier run of this grant (whose value was lost with it) is
        replaced; one the user had before the grant is not ours to delete."""
        if fresh and not tap:
            return
        user_id = progress.user_of(grant)["id"]
        existing = await self.retry.run(directory.temporary_access_passes, user_id, not_found_is_lag=fresh)
        for method in existing:
            if fresh or tap.get("state") == progress.PENDING:
                await self.retry.run(directory.delete_temporary_access_pass, user_id, method.id)
            else:
                raise ProvisioningFailed(
                    "temporaryAccessPass", "the user already has a Temporary Access Pass; remove it, or request without a TAP"
                )

    async def _apply(self, directory: Directory, writes: list[Write], *, lag_possible: bool) -> list[WriteResult]:
        """Send the writes in batches; retry the items that failed transiently (or on replication lag) until the
        budget runs out. An item that already exists counts as done."""
        pending = list(writes)
        done: dict[int, WriteResult] = {}
        index = {id(w): i for i, w in enumerate(writes)}

        async def attempt() -> None:
            nonlocal pending
            results = await directory.apply(pending)
            retry_these: list[Write] = []
            first_error: DirectoryError | None = None
            for result in results:
                error = result.error
                if error is None or isinstance(error, AlreadyExists):
                    done[index[id(result.write)]] = WriteResult(result.write) if error else result
                elif error.transient or (lag_possible and isinstance(error, NotFoundInDirectory)):
                    retry_these.append(result.write)
                    first_error = first_error or error
                else:
                    raise ProvisioningFailed(_step_of(result.write), f"Graph refused: {error.message}", error)
            pending = retry_these
            if first_error is not None:
                raise first_error

        await self.retry.run(attempt, not_found_is_lag=lag_possible)
        return [done[i] for i in range(len(writes))]

    def _record(
        self, result: WriteResult, roles: dict[str, Any], groups: dict[str, Any], tap: dict[str, Any], grant: Grant
    ) -> None:
        write = result.write
        if isinstance(write, AssignRole):
            roles[write.role_definition_id]["state"] = progress.DONE
            if result.assignment is not None and result.assignment.id:
                roles[write.role_definition_id]["assignmentId"] = result.assignment.id
        elif isinstance(write, AddMember):
            groups[write.group_id]["state"] = progress.DONE
        elif result.tap is not None and result.tap.value:
            # Sealed into the vault before the grant says "issued": a crash in between re-issues, never loses it.
            self.vault.put(grant.tenant_id, grant.id, result.tap.value, result.tap.expires_at)
            tap.update(
                state=progress.DONE,
                id=result.tap.id,
                expiresAt=result.tap.expires_at.isoformat() if result.tap.expires_at else None,
            )

    async def _activate(self, grant: Grant, lease: Lease) -> Grant:
        now = self.clock.now()

        grant = await lease.finish(grant, lambda g: g.move_to(Status.ACTIVE, at=now, actor=SYSTEM, reason="access provisioned"))
        end = grant.request.end
        wakeup = Wakeup.at(WorkItem(grant.tenant_id, grant.id, Step.EXPIRE), end, now=now, grace=END_GRACE)
        await asyncio.to_thread(self.schedule.put, wakeup.item)
        if self.expiring_lead is not None and end - self.expiring_lead > now:
            soon = WorkItem(grant.tenant_id, grant.id, Step.EXPIRING_SOON)
            await asyncio.to_thread(self.schedule.put, ScheduleItem(due=end - self.expiring_lead, work=soon))
        if wakeup.message_delay is not None:
            await asyncio.to_thread(self.queue.send, wakeup.item.work, wakeup.message_delay)
        log.info("grant %s is active until %s", grant.id, end.isoformat())
        return grant

    async def _fail(self, directory: Directory, grant: Grant, failure: ProvisioningFailed, lease: Lease) -> Grant:
        """Undo what this grant made, then mark it Failed. If the undo cannot finish now, the grant stays
        Provisioning and the next run (which meets the same failure) finishes the undo."""
        log.warning("grant %s failed at %s: %s", grant.id, failure.step, failure.message)
        current = await asyncio.to_thread(self.grants.get, grant.id, grant.tenant_id)
        if progress.user_of(current).get("created"):
            if not await access.delete_created_user(directory, current, self.retry):
                log.error("grant %s: the account it recorded is not marked as its own; left in place", grant.id)
        else:
            await access.remove_role_assignments(directory, current, self.retry)
            await access.remove_group_memberships(directory, current, self.retry)
            await access.delete_issued_tap(directory, current, self.retry)
        await asyncio.to_thread(self.vault.erase, grant.id)
        now = self.clock.now()

        def fail(g: Grant) -> Grant:
            failed = g.move_to(Status.FAILED, at=now, actor=SYSTEM, reason=failure.message)
            return replace(failed, error=failure.describe())

        return await lease.finish(grant, fail)


def _refusal(error: DirectoryError) -> str:
    if isinstance(error, Denied):
        return (
            f"the app is not allowed to do this in the tenant (admin consent or a Graph permission is missing): {error.message}"
        )
    return f"Graph refused: {error.message}"


def _tap_shape(grant: Grant, policy: TapPolicy) -> tuple[int, bool]:
    """The requested lifetime, kept within the tenant's policy (Graph refuses anything outside it)."""
    wanted = grant.request.tap.lifetime_in_minutes
    lifetime = min(max(wanted, policy.minimum_lifetime_minutes), policy.maximum_lifetime_minutes)
    return lifetime, grant.request.tap.is_usable_once or policy.usable_once_enforced


def _step_of(write: Write) -> str:
    if isinstance(write, AssignRole):
        return "roles"
    if isinstance(write, AddMember):
        return "groups"
    return "temporaryAccessPass"
