"""The daily drift check: compare what each directory holds with what the grants say, record the differences, and
take back only what a grant made and still owns.

Active grants are checked for access removed or added out of band; recently ended ones for an account the grant
created that is back or enabled again (taken away again: the account carries the grant's marker, so it is the
grant's) and for access that reappeared on an existing account (reported, never removed: once a grant's removal was
verified, anything there now was put there by someone else — an admin's permanent assignment, say). JIT-marked
accounts no grant explains are reported, never deleted blindly.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from jit.domain.accounts import MARKER_PREFIX, is_marked_for, random_password
from jit.domain.clock import Clock
from jit.domain.drift import DriftFinding, DriftKind
from jit.domain.grant import Grant, Status
from jit.domain.notification import Event
from jit.domain.progress import ItemState
from jit.domain.request import ExpirationAction
from jit.domain.tenant import ENTRA, OnboardingState, TenantRegistration
from jit.services.access_backend import AccessBackend, AccountEnd, BackendProvider, DirectoryError, Item, ItemKind
from jit.services.audited_backend import working_on
from jit.services.notify import NotifyQueue, announce
from jit.services.ports import AuditLog
from jit.services.retrying import RetryPolicy

log = logging.getLogger(__name__)
ALERT_REPEAT = timedelta(hours=1)


class GrantsToCheck(Protocol):
    def active_and_recently_ended(self, since: datetime) -> list[Grant]: ...

    def tenants(self) -> list[str]: ...


class TenantDirectories(Protocol):
    def list(self) -> list[TenantRegistration]: ...


class DriftLog(Protocol):
    def record(self, findings: list[DriftFinding]) -> None: ...


@dataclass
class DriftCheck:
    grants: GrantsToCheck
    findings: DriftLog
    backends: BackendProvider
    clock: Clock
    lookback: timedelta = timedelta(days=7)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    notify_queue: NotifyQueue | None = None
    # Where the audit entries of re-revocations go (the subject chains; drift changes no grant).
    audit: AuditLog | None = None
    # The onboarded tenants: every directory they use is checked, with or without grants (orphans, reachability).
    registry: TenantDirectories | None = None
    _alerted: dict[tuple[str, str], datetime] = field(default_factory=dict, init=False, repr=False)

    async def watch_directories(self) -> list[DriftFinding]:
        """Every minute (with the sweep): a directory the backend says it cannot reach now (an on-premises agent
        whose heartbeat stopped) is an alert at once, not at the next daily drift check. One alert per directory
        per ALERT_REPEAT, per process; the answer costs no call to the directory (the backend knows from its own
        records, e.g. the agent's heartbeat row)."""
        if self.registry is None:
            return []
        now = self.clock.now()
        found: list[DriftFinding] = []
        registrations = await asyncio.to_thread(self.registry.list)  # storage: off the event loop
        for registration in registrations:
            if registration.state in (OnboardingState.PENDING, OnboardingState.OFFBOARDED):
                continue
            for directory in registration.directories:
                try:
                    health = await self.backends.backend(registration.id, directory).health()
                except (LookupError, DirectoryError):
                    continue
                key = (registration.id, directory)
                if health is None or health.available:
                    self._alerted.pop(key, None)
                    continue
                last = self._alerted.get(key)
                if last is not None and now - last < ALERT_REPEAT:
                    continue
                self._alerted[key] = now
                log.error("ALERT %s of tenant %s is unreachable: %s", directory, registration.id, health.detail)
                detail = f"{directory} is unreachable: {health.detail}"
                found.append(DriftFinding(registration.id, DriftKind.DIRECTORY_UNREACHABLE, now, detail))
        if found:
            await asyncio.to_thread(self._record_and_announce, found, now)
        return found

    def _record_and_announce(self, found: list[DriftFinding], now: datetime) -> None:
        self.findings.record(found)
        if self.notify_queue is not None:
            for tenant in sorted({f.tenant_id for f in found}):
                count = sum(f.tenant_id == tenant for f in found)
                announce(self.notify_queue, tenant, "", Event.DRIFT_FOUND, now, count=count)

    async def run(self) -> list[DriftFinding]:
        now = self.clock.now()
        by_directory: dict[tuple[str, str], list[Grant]] = defaultdict(list)
        # Storage reads run off the event loop: other invocations of the instance keep going meanwhile.
        tenants, registrations, grants_to_check = await asyncio.to_thread(
            lambda: (
                self.grants.tenants(),
                self.registry.list() if self.registry is not None else [],
                self.grants.active_and_recently_ended(now - self.lookback),
            )
        )
        for tenant in tenants:
            by_directory[(tenant, ENTRA)] = []
        for registration in registrations:
            if registration.state not in (OnboardingState.PENDING, OnboardingState.OFFBOARDED):
                for directory in registration.directories:
                    by_directory.setdefault((registration.id, directory), [])
        for grant in grants_to_check:
            by_directory[(grant.tenant_id, grant.request.directory or ENTRA)].append(grant)
        # A marked account is explained by a grant of its tenant in any directory (Entra and Entra PIM list the same
        # accounts).
        known: dict[str, set[str]] = defaultdict(set)
        for (tenant, _), grants in by_directory.items():
            known[tenant] |= {g.id for g in grants}
        found: list[DriftFinding] = []
        for (tenant, directory), grants in by_directory.items():
            try:
                backend = self.backends.backend(tenant, directory)
            except LookupError:
                if grants:
                    log.error("drift check: no backend serves %s (tenant %s)", directory, tenant)
                continue
            try:
                found += await self._check(backend, tenant, grants, now, known[tenant])
            except DirectoryError as error:
                # Reported, not only logged: a directory nobody can check (an agent that stopped reporting) is
                # one whose grants can neither start nor end.
                log.error("ALERT drift check of %s in tenant %s failed: %s", directory, tenant, error.message)
                detail = f"{directory} could not be checked: {error.message}"
                found.append(DriftFinding(tenant, DriftKind.DIRECTORY_UNREACHABLE, now, detail))
        found = list({(f.tenant_id, f.kind, f.user_id, f.grant_id, f.detail): f for f in found}.values())
        await asyncio.to_thread(self._record_and_announce, found, now)
        log.info("drift check: %d findings in %d directories", len(found), len(by_directory))
        return found

    async def _check(
        self, backend: AccessBackend, tenant: str, grants: list[Grant], now: datetime, known: set[str]
    ) -> list[DriftFinding]:
        found: list[DriftFinding] = []
        for grant in grants:
            with working_on(grant.tenant_id, grant.id) as work:
                finder = self._check_active if grant.status is Status.ACTIVE else self._check_ended
                found += await finder(backend, grant, now)
                if work.entries and self.audit is not None:
                    await asyncio.to_thread(self.audit.append_many, [replace(e, subject="drift") for e in work.drain()])
        # Accounts carrying a marker of a grant the system does not know (or no longer keeps) are orphans.
        for account in await self.retry.run(backend.marked_accounts, MARKER_PREFIX):
            grant_id = (account.marker or "")[len(MARKER_PREFIX) :]
            if grant_id not in known:
                detail = f"{account.principal_name} carries {account.marker} but no current grant explains it"
                found.append(DriftFinding(tenant, DriftKind.ORPHANED_ACCOUNT, now, detail, grant_id=grant_id, user_id=account.id))
        return found

    async def _check_active(self, backend: AccessBackend, grant: Grant, now: datetime) -> list[DriftFinding]:
        account_id = grant.progress.account_id
        if not account_id:
            return []
        holdings = await self.retry.run(backend.holdings, account_id)
        if holdings.account is None:
            return [_finding(grant, DriftKind.ACCOUNT_MISSING, now, "the grant's account no longer exists", account_id)]
        found: list[DriftFinding] = []
        granted = {r.role_id.lower(): r for r in grant.progress.roles if r.state.held}
        for role_id, record in granted.items():
            if role_id not in holdings.roles:
                found.append(
                    _finding(grant, DriftKind.ROLE_REMOVED, now, f"role {record.name or role_id} was removed", account_id)
                )
        if grant.progress.created_account:
            for role_id in sorted(set(holdings.roles) - set(granted)):
                found.append(
                    _finding(grant, DriftKind.ROLE_ADDED, now, f"role {role_id} was added outside the grant", account_id)
                )
        for group in grant.progress.groups:
            if group.state.held and group.group_id.lower() not in holdings.groups:
                found.append(
                    _finding(grant, DriftKind.GROUP_REMOVED, now, f"membership of group {group.group_id} was removed", account_id)
                )
        return found

    async def _check_ended(self, backend: AccessBackend, grant: Grant, now: datetime) -> list[DriftFinding]:
        progress = grant.progress
        account_id = progress.account_id
        if not account_id:
            return []
        holdings = await self.retry.run(backend.holdings, account_id)
        account = holdings.account
        if account is None:
            return []
        created = progress.created_account
        if created and not is_marked_for(account.marker, grant.id):
            return []  # no longer ours: expiration flagged it already
        actions = set(grant.request.expiration_actions)
        removed_roles = [r for r in progress.roles if r.state is ItemState.REMOVED and r.role_id.lower() in holdings.roles]
        removed_groups = [g for g in progress.groups if g.state is ItemState.REMOVED and g.group_id.lower() in holdings.groups]
        if not created:
            # Verified gone at the end: what is there now somebody else put there. Report, never take it.
            problems = [f"role {r.name or r.role_id} is assigned again (not by this grant: left in place)" for r in removed_roles]
            problems += [f"member of group {g.group_id} again (not by this grant: left in place)" for g in removed_groups]
            if not problems:
                return []
            return [_finding(grant, DriftKind.ENDED_ACCESS_BACK, now, "; ".join(problems), account_id)]
        problems = []
        end: AccountEnd | None = None
        if ExpirationAction.DELETE_USER in actions:
            problems.append("the deleted account exists again")
            end = AccountEnd.DELETE
        elif ExpirationAction.DISABLE_USER in actions and account.enabled:
            problems.append("the disabled account is enabled again")
            end = AccountEnd.DISABLE
        problems += [f"it holds role {r.name or r.role_id} again" for r in removed_roles]
        if not problems:
            return []
        # The account is the grant's (its marker says so): it loses everything again.
        items = [Item(ItemKind.ROLE, role_id) for role_id in holdings.roles]
        items += [Item(ItemKind.GROUP, g.group_id) for g in removed_groups]
        items.append(Item(ItemKind.CREDENTIAL, "temporaryAccessPass", reference="*"))
        remediated = True
        try:
            await self.retry.run(backend.take_away, account, items, end=end or AccountEnd.DISABLE, new_password=random_password())
        except DirectoryError as error:
            log.error("ALERT grant %s: re-revoking its account failed: %s", grant.id, error.message)
            remediated = False
        if remediated:
            log.warning("grant %s: access that came back on its account after its end was taken away again", grant.id)
        return [_finding(grant, DriftKind.ENDED_ACCESS_BACK, now, "; ".join(problems), account_id, remediated=remediated)]


def _finding(
    grant: Grant, kind: DriftKind, now: datetime, detail: str, user_id: str, *, remediated: bool = False
) -> DriftFinding:
    return DriftFinding(grant.tenant_id, kind, now, detail, grant_id=grant.id, user_id=user_id, remediated=remediated)
