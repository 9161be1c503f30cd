"""The daily drift check: compare what Graph holds with what the grants say, record the differences, and take away
again what an ended grant's account has got back.

Active grants are checked for access removed or added out of band; recently ended ones for an account that is back,
enabled again, or holding the grant's roles (those are re-revoked); every tenant with grants for JIT-marked accounts
that no grant explains (recorded for a person to look at, never deleted blindly).
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from jit.domain.accounts import MARKER_PREFIX, is_marked_for, random_password
from jit.domain.clock import Clock
from jit.domain.drift import DriftFinding, DriftKind
from jit.domain.grant import Grant, Status
from jit.domain.notification import Event
from jit.domain.request import ExpirationAction
from jit.services import access, progress
from jit.services.directory import Directory, DirectoryError, DirectoryProvider, DirectoryUser, NotFoundInDirectory
from jit.services.notify import NotifyQueue, announce
from jit.services.retrying import RetryPolicy

log = logging.getLogger(__name__)


class GrantsToCheck(Protocol):
    def active_and_recently_ended(self, since: datetime) -> list[Grant]: ...

    def tenants(self) -> list[str]: ...


class DriftLog(Protocol):
    def record(self, findings: list[DriftFinding]) -> None: ...


@dataclass
class DriftCheck:
    grants: GrantsToCheck
    findings: DriftLog
    directories: DirectoryProvider
    clock: Clock
    lookback: timedelta = timedelta(days=7)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    notify_queue: NotifyQueue | None = None

    async def run(self) -> list[DriftFinding]:
        now = self.clock.now()
        by_tenant: dict[str, list[Grant]] = defaultdict(list)
        for tenant in self.grants.tenants():
            by_tenant[tenant] = []
        for grant in self.grants.active_and_recently_ended(now - self.lookback):
            by_tenant[grant.tenant_id].append(grant)
        found: list[DriftFinding] = []
        for tenant, grants in by_tenant.items():
            directory = self.directories.for_tenant(tenant)
            try:
                found += await self._check_tenant(directory, tenant, grants, now)
            except DirectoryError as error:
                log.error("drift check of tenant %s failed: %s", tenant, error.message)
        self.findings.record(found)
        if self.notify_queue is not None:
            for tenant in sorted({f.tenant_id for f in found}):
                count = sum(1 for f in found if f.tenant_id == tenant)
                announce(self.notify_queue, tenant, "", Event.DRIFT_FOUND, now, count=count)
        log.info("drift check: %d findings in %d tenants", len(found), len(by_tenant))
        return found

    async def _check_tenant(self, directory: Directory, tenant: str, grants: list[Grant], now: datetime) -> list[DriftFinding]:
        found: list[DriftFinding] = []
        for grant in grants:
            finder = self._check_active if grant.status is Status.ACTIVE else self._check_ended
            found += await finder(directory, grant, now)
        # Accounts carrying a marker of a grant the system does not know (or no longer keeps) are orphans.
        known = {g.id for g in grants}
        ended_long_ago = await self._marked_accounts(directory)
        for user in ended_long_ago:
            grant_id = (user.employee_type or "")[len(MARKER_PREFIX) :]
            if grant_id not in known:
                detail = f"{user.user_principal_name} carries {user.employee_type} but no current grant explains it"
                found.append(DriftFinding(tenant, DriftKind.ORPHANED_ACCOUNT, now, detail, grant_id=grant_id, user_id=user.id))
        return found

    async def _marked_accounts(self, directory: Directory) -> list[DirectoryUser]:
        return await self.retry.run(directory.users_marked, MARKER_PREFIX)

    async def _check_active(self, directory: Directory, grant: Grant, now: datetime) -> list[DriftFinding]:
        user_id = progress.user_of(grant).get("id")
        if not user_id:
            return []
        user = await self.retry.run(directory.find_user, user_id)
        if user is None:
            return [self._finding(grant, DriftKind.ACCOUNT_MISSING, now, "the grant's account no longer exists", user_id)]
        found: list[DriftFinding] = []
        assigned = {
            a.role_definition_id for a in await self.retry.run(directory.role_assignments, user_id) if a.directory_scope_id == "/"
        }
        granted = progress.entries(grant, "roles")
        for role_id, entry in granted.items():
            if role_id not in assigned:
                found.append(
                    self._finding(grant, DriftKind.ROLE_REMOVED, now, f"role {entry.get('name', role_id)} was removed", user_id)
                )
        if progress.user_of(grant).get("created"):
            for role_id in sorted(assigned - set(granted)):
                found.append(
                    self._finding(grant, DriftKind.ROLE_ADDED, now, f"role {role_id} was added outside the grant", user_id)
                )
        groups = progress.entries(grant, "groups")
        if groups:
            member_of = await self.retry.run(directory.group_ids_of, user_id)
            for group_id in groups:
                if group_id not in member_of:
                    found.append(
                        self._finding(grant, DriftKind.GROUP_REMOVED, now, f"membership of group {group_id} was removed", user_id)
                    )
        return found

    async def _check_ended(self, directory: Directory, grant: Grant, now: datetime) -> list[DriftFinding]:
        record = progress.user_of(grant)
        user_id = record.get("id")
        if not user_id:
            return []
        user = await self.retry.run(directory.find_user, user_id)
        if user is None:
            return []
        created = bool(record.get("created"))
        if created and not is_marked_for(user.employee_type, grant.id):
            return []  # no longer ours: expiration flagged it already
        actions = set(grant.request.expiration_actions)
        problems: list[str] = []
        if created and ExpirationAction.DELETE_USER in actions:
            problems.append("the deleted account exists again")
        if created and ExpirationAction.DISABLE_USER in actions and user.account_enabled:
            problems.append("the disabled account is enabled again")
        ours = progress.made_by_grant(grant, "roles")
        if ours and actions & {ExpirationAction.REMOVE_ROLES, ExpirationAction.DELETE_USER}:
            assigned = {a.role_definition_id for a in await self.retry.run(directory.role_assignments, user_id)}
            problems += [f"it holds role {e.get('name', r)} again" for r, e in ours.items() if r in assigned]
        if not problems:
            return []
        remediated = await self._revoke_again(directory, grant, user)
        return [self._finding(grant, DriftKind.ENDED_ACCESS_BACK, now, "; ".join(problems), user_id, remediated=remediated)]

    async def _revoke_again(self, directory: Directory, grant: Grant, user: DirectoryUser) -> bool:
        actions = set(grant.request.expiration_actions)
        try:
            if actions & {ExpirationAction.REMOVE_ROLES, ExpirationAction.DELETE_USER}:
                await access.remove_role_assignments(directory, grant, self.retry)
            if actions & {ExpirationAction.REMOVE_GROUPS, ExpirationAction.DELETE_USER}:
                await access.remove_group_memberships(directory, grant, self.retry)
            if progress.user_of(grant).get("created"):
                if ExpirationAction.DELETE_USER in actions:
                    with contextlib.suppress(NotFoundInDirectory):
                        await self.retry.run(directory.delete_user, user.id)
                elif ExpirationAction.DISABLE_USER in actions:
                    await self.retry.run(directory.disable_user, user.id, random_password())
                    await self.retry.run(directory.revoke_sign_in_sessions, user.id)
        except DirectoryError as error:
            log.error("ALERT grant %s: re-revoking its account failed: %s", grant.id, error.message)
            return False
        log.warning("grant %s: access that came back after its end was taken away again", grant.id)
        return True

    @staticmethod
    def _finding(
        grant: Grant, kind: DriftKind, now: datetime, detail: str, user_id: str, *, remediated: bool = False
    ) -> DriftFinding:
        return DriftFinding(grant.tenant_id, kind, now, detail, grant_id=grant.id, user_id=user_id, remediated=remediated)
