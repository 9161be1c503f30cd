"""Expiration that never misses: apply a grant's expiration actions, read back from Graph, and only then say Expired.

    claim -> take away (what this grant made, never more) -> verify by reading Graph -> Expired / Revoked

A grant stays Expiring until Graph shows the access gone: a delete Graph accepted but did not perform, or a role
still assigned, is retried (the queue redelivers, the sweep backs it up) and raises an alert once it is later than
`alert_after`. The system never deletes or disables an account it did not create, and never one whose marker does
not name this grant: such an account is left alone and the grant is flagged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from jit.domain.accounts import is_marked_for, random_password
from jit.domain.clock import Clock
from jit.domain.errors import IllegalTransition
from jit.domain.grant import Grant, Status
from jit.domain.request import ExpirationAction
from jit.domain.work import AuditEntry
from jit.services import access, progress
from jit.services.directory import Directory, DirectoryError, DirectoryProvider, DirectoryUser, NotFoundInDirectory
from jit.services.leases import Lease, LeaseHeld
from jit.services.ports import AuditLog, GrantRepository, TapVault
from jit.services.retrying import RetryPolicy

log = logging.getLogger(__name__)

SYSTEM = "system"


class AccessRemains(Exception):
    """Graph still shows access the grant should no longer give; the grant stays Expiring."""

    def __init__(self, findings: list[str]) -> None:
        super().__init__("; ".join(findings))
        self.findings = findings


@dataclass
class ExpirationSaga:
    grants: GrantRepository
    directories: DirectoryProvider
    vault: TapVault
    audit: AuditLog
    clock: Clock
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease: timedelta = timedelta(minutes=5)
    alert_after: timedelta = timedelta(minutes=10)
    permanent_delete: bool = False

    async def __call__(self, grant: Grant) -> Grant:
        lease = Lease(self.grants, self.audit, self.clock, Status.EXPIRING, self.lease)
        # A provisioning still running stops at its next write; the sweep brings expiry back.
        claimed = await lease.try_claim(grant)
        if claimed is None:
            return await asyncio.to_thread(self.grants.get, grant.id, grant.tenant_id)
        grant = claimed
        directory = self.directories.for_tenant(grant.tenant_id)
        try:
            user = await self._user(directory, grant)
            left_alone = (
                user is not None and progress.user_of(grant).get("created") and not is_marked_for(user.employee_type, grant.id)
            )
            if not left_alone:
                await self._take_away(directory, grant, user)
                await self._verify(directory, grant)
            await asyncio.to_thread(self.vault.erase, grant.id)
            return await self._finish(grant, lease, left_alone=bool(left_alone))
        except (AccessRemains, DirectoryError) as remaining:
            await self._still_pending(grant, lease, remaining)
            raise
        except (IllegalTransition, LeaseHeld):
            await lease.release(grant)
            return await asyncio.to_thread(self.grants.get, grant.id, grant.tenant_id)

    async def _user(self, directory: Directory, grant: Grant) -> DirectoryUser | None:
        """The grant's user as Graph has it now (None when there is none, or it is gone)."""
        user = progress.user_of(grant)
        # A create that was pending when provisioning stopped may still have happened: its UPN finds it.
        key = user.get("id") or (user.get("userPrincipalName") if user.get("created") else None)
        if not key:
            return None
        return await self.retry.run(directory.find_user, key)

    async def _take_away(self, directory: Directory, grant: Grant, user: DirectoryUser | None) -> None:
        actions = set(grant.request.expiration_actions)
        created = bool(progress.user_of(grant).get("created"))
        if user is None:
            if created and self.permanent_delete and ExpirationAction.DELETE_USER in actions:
                await self._purge(directory, grant)
            return
        grant = _with_user_id(grant, user.id)
        await access.delete_issued_tap(directory, grant, self.retry)
        # Roles and memberships go first even before a delete: a deleted account restored by an admin must not
        # come back holding the grant's roles.
        if actions & {ExpirationAction.REMOVE_ROLES, ExpirationAction.DELETE_USER}:
            await access.remove_role_assignments(directory, grant, self.retry)
        if actions & {ExpirationAction.REMOVE_GROUPS, ExpirationAction.DELETE_USER}:
            await access.remove_group_memberships(directory, grant, self.retry)
        if not created:
            return  # an existing account: nothing but what the grant added is ever touched
        if ExpirationAction.DELETE_USER in actions:
            with contextlib.suppress(NotFoundInDirectory):
                await self.retry.run(directory.delete_user, user.id)
            if self.permanent_delete:
                await self._purge(directory, grant, user.id)
        elif ExpirationAction.DISABLE_USER in actions:
            await self.retry.run(directory.disable_user, user.id, random_password())
            await self.retry.run(directory.revoke_sign_in_sessions, user.id)
            for method in await self.retry.run(directory.temporary_access_passes, user.id):
                with contextlib.suppress(NotFoundInDirectory):
                    await self.retry.run(directory.delete_temporary_access_pass, user.id, method.id)

    async def _purge(self, directory: Directory, grant: Grant, user_id: str | None = None) -> None:
        user_id = user_id or progress.user_of(grant).get("id")
        if user_id:
            # Right after the delete, deleted items may not show the user yet (replication): that 404 is retried.
            with contextlib.suppress(NotFoundInDirectory):
                await self.retry.run(directory.purge_deleted_user, user_id, not_found_is_lag=False)

    async def _verify(self, directory: Directory, grant: Grant) -> None:
        """Read Graph back; AccessRemains lists whatever is still there."""
        actions = set(grant.request.expiration_actions)
        record = progress.user_of(grant)
        created = bool(record.get("created"))
        user = await self._user(directory, grant)
        if user is None:
            purged = created and self.permanent_delete and ExpirationAction.DELETE_USER in actions and record.get("id")
            if purged and await self.retry.run(directory.deleted_user_exists, record["id"]):
                raise AccessRemains(["the account is still in deleted items"])
            return
        findings: list[str] = []
        if created and ExpirationAction.DELETE_USER in actions:
            findings.append(f"account {user.user_principal_name} still exists")
        if created and ExpirationAction.DISABLE_USER in actions and user.account_enabled is not False:
            findings.append(f"account {user.user_principal_name} is still enabled")
        # Only what the actions promised is checked: DisableUser alone leaves the disabled account its roles.
        ours_roles = progress.made_by_grant(grant, "roles") if actions & {ExpirationAction.REMOVE_ROLES} else {}
        if ours_roles:
            still = {a.role_definition_id for a in await self.retry.run(directory.role_assignments, user.id)}
            findings += [f"role {e.get('name', r)} is still assigned" for r, e in ours_roles.items() if r in still]
        ours_groups = progress.made_by_grant(grant, "groups") if actions & {ExpirationAction.REMOVE_GROUPS} else {}
        if ours_groups:
            member_of = await self.retry.run(directory.group_ids_of, user.id)
            findings += [f"still a member of group {g}" for g in ours_groups if g in member_of]
        # On an account the system created every TAP is the grant's; on an existing one only the TAP it issued.
        tap_id = (grant.progress.get("tap") or {}).get("id")
        if created or tap_id:
            passes = await self.retry.run(directory.temporary_access_passes, user.id)
            if any(created or p.id == tap_id for p in passes):
                findings.append("a Temporary Access Pass is still there")
        if findings:
            raise AccessRemains(findings)

    async def _finish(self, grant: Grant, lease: Lease, *, left_alone: bool) -> Grant:
        now = self.clock.now()
        ended_early = grant.revoke_requested_at is not None and grant.revoke_requested_at < grant.request.end
        target = Status.REVOKED if ended_early else Status.EXPIRED
        record = dict(grant.progress.get("expiration") or {})
        record.update(verifiedAt=now.isoformat(), actions=[a.value for a in grant.request.expiration_actions])
        if left_alone:
            record["flag"] = "the account does not carry this grant's marker: left alone, check it by hand"

        def end(current: Grant) -> Grant:
            reason = "access removed and verified" if not left_alone else "account left alone: marker mismatch"
            ended = current.move_to(target, at=now, actor=SYSTEM, reason=reason)
            return progress.with_progress(replace(ended, revoked_at=now), expiration=record)

        grant = await lease.finish(grant, end)
        lateness = grant.lateness.total_seconds() if grant.lateness is not None else 0.0
        await asyncio.to_thread(
            self.audit.append,
            AuditEntry(
                now,
                grant.tenant_id,
                grant.id,
                SYSTEM,
                "grant.access-removed",
                "flagged" if left_alone else "success",
                f"lateness {lateness:.1f}s; actions {', '.join(record['actions'])}",
            ),
        )
        if left_alone:
            log.error("ALERT grant %s: its account no longer carries the grant's marker and was left alone", grant.id)
        return grant

    async def _still_pending(self, grant: Grant, lease: Lease, remaining: Exception) -> None:
        """Record why the grant is still Expiring; alert once when it is later than allowed."""
        now = self.clock.now()
        late = now - grant.access_should_end_at
        findings = remaining.findings if isinstance(remaining, AccessRemains) else [f"Graph: {remaining}"]
        alert = late > self.alert_after and not (grant.progress.get("expiration") or {}).get("alertedAt")

        def note(current: Grant) -> Grant:
            record: dict[str, Any] = dict(current.progress.get("expiration") or {})
            record.update(attempts=int(record.get("attempts", 0)) + 1, lastAttemptAt=now.isoformat(), remaining=findings)
            if alert:
                record["alertedAt"] = now.isoformat()
            return progress.with_progress(current, expiration=record)

        with contextlib.suppress(IllegalTransition, LeaseHeld):
            await lease.save(grant, note)
        await lease.release(grant)
        if alert:
            log.error(
                "ALERT grant %s still has access %.0fs after it should have ended: %s", grant.id, late.total_seconds(), findings
            )
            await asyncio.to_thread(
                self.audit.append,
                AuditEntry(now, grant.tenant_id, grant.id, SYSTEM, "grant.expiry-overdue", "alert", "; ".join(findings)),
            )
        else:
            log.warning("grant %s not yet verified revoked: %s", grant.id, findings)


def _with_user_id(grant: Grant, user_id: str) -> Grant:
    user = progress.user_of(grant)
    if user.get("id") == user_id:
        return grant
    return progress.with_progress(grant, user={**user, "id": user_id})
