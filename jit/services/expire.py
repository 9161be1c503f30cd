"""Expiration that never misses: take away what the grant made, read the directory back, and only then say Expired.

    claim (-> Expiring) -> take away (what this grant made and no other live grant needs) -> verify -> Expired / Revoked

A grant stays Expiring until the directory shows the access gone: a delete the directory accepted but did not
perform, or a role still assigned, is retried (the queue redelivers, the sweep backs it up) and raises an alert once
it is later than `alert_after`. The system never deletes or disables an account it did not create, and never one
whose marker does not name this grant: such an account is left alone and the grant is flagged. On an existing
account, access another live grant still needs is left in place and handed over (the access ledger).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from jit.domain.accounts import is_marked_for, random_password
from jit.domain.audit import AuditEntry
from jit.domain.clock import Clock
from jit.domain.errors import IllegalTransition
from jit.domain.grant import Grant, Status
from jit.domain.ledger import Ledger, LedgerWrite, Origin
from jit.domain.progress import CredentialKind, ExpirationRecord, GroupRecord, ItemState, RoleRecord
from jit.domain.request import ExpirationAction
from jit.services.access_backend import (
    AccessBackend,
    Account,
    AccountEnd,
    BackendProvider,
    DirectoryError,
    Item,
    ItemKind,
    NotFoundInDirectory,
    Outcome,
    OutcomeStatus,
    Unavailable,
)
from jit.services.audited_backend import WorkAudit
from jit.services.grant_writer import GrantWriter
from jit.services.leases import Lease, LeaseHeld
from jit.services.ports import StaleGrant
from jit.services.retrying import RetryPolicy

log = logging.getLogger(__name__)

SYSTEM = "system"
# How long after a soft delete the recycle bin may still not show the account (replication): a purge that finds
# nothing in that time is retried rather than believed.
RECYCLE_BIN_LAG = timedelta(minutes=5)


@dataclass(frozen=True)
class Removal:
    """What taking access away did, as a change to the grant (and to the account's ledger), stored with the next
    write of the grant: its end, or the note of what remains."""

    record: Callable[[Grant], Grant]
    ledger: Callable[[Grant], LedgerWrite | None] | None = None

    def applied(self, grant: Grant) -> Grant:
        return self.record(grant)


class AccessRemains(Exception):
    """The directory still shows access the grant should no longer give; the grant stays Expiring."""

    def __init__(self, findings: list[str]) -> None:
        super().__init__("; ".join(findings))
        self.findings = findings


@dataclass
class ExpirationSaga:
    writer: GrantWriter
    backends: BackendProvider
    clock: Clock
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease: timedelta = timedelta(minutes=5)
    alert_after: timedelta = timedelta(minutes=10)
    permanent_delete: bool = False

    async def __call__(self, grant: Grant, work: WorkAudit) -> Grant:
        now = self.clock.now()
        lease = Lease(self.writer, self.clock, Status.EXPIRING, self.lease, work)

        def start(current: Grant) -> Grant:
            if current.is_due_to_end(now):
                return current.move_to(Status.EXPIRING, at=now, actor=SYSTEM, reason="end reached")
            return current

        # A provisioning still running stops at its next write; the sweep brings expiry back.
        claimed = await lease.try_claim(grant, start)
        if claimed is None:
            return await asyncio.to_thread(self.writer.grants.get, grant.id, grant.tenant_id)
        grant = claimed
        backend = self.backends.backend(grant.tenant_id, grant.request.directory)
        try:
            removal = None
            account = await self._account(backend, grant)
            record = grant.progress.account
            left_alone = (
                account is not None and record is not None and record.created and not is_marked_for(account.marker, grant.id)
            )
            if not left_alone:
                grant, removal = await self._take_away(backend, grant, account, lease)
                # Verified against what the removal made of the grant; that is stored with the grant's end, in one
                # write (a crash before it repeats the removals, which find nothing left to take).
                await self._verify(backend, removal.applied(grant) if removal else grant, account)
            return await self._finish(grant, lease, left_alone=left_alone, removal=removal)
        except (AccessRemains, DirectoryError) as remaining:
            await self._still_pending(grant, lease, remaining, removal)
            raise
        except StaleGrant:
            await lease.release(grant)
            raise Unavailable(f"grant {grant.id}: the account's access changed meanwhile; trying again") from None
        except (IllegalTransition, LeaseHeld):
            await lease.release(grant)
            return await asyncio.to_thread(self.writer.grants.get, grant.id, grant.tenant_id)

    async def _account(self, backend: AccessBackend, grant: Grant) -> Account | None:
        """The grant's account as the directory has it now (None when there is none, or it is gone)."""
        record = grant.progress.account
        if record is None:
            return None
        # A create that was pending when provisioning stopped may still have happened: its name finds it.
        key = record.id or (record.principal_name if record.created else None)
        if not key:
            return None
        return await self.retry.run(backend.find_account, key)

    async def _take_away(
        self, backend: AccessBackend, grant: Grant, account: Account | None, lease: Lease
    ) -> tuple[Grant, Removal | None]:
        """Remove what the grant owns; the grant as stored now, and what to record of the removal (not stored yet)."""
        progress = grant.progress
        actions = set(grant.request.expiration_actions)
        created = progress.created_account
        end = _account_end(actions, created, self.permanent_delete)
        if account is None:
            if end is AccountEnd.PURGE and progress.account_id:
                return grant, await self._purge_only(backend, grant, progress.account_id)
            return grant, None

        items: list[Item] = []
        ledger: Ledger | None = None
        live: frozenset[str] = frozenset()
        kept: set[str] = set()
        if not created:
            ledger = await asyncio.to_thread(self.writer.grants.ledger, grant.tenant_id, account.id)
            live = await asyncio.to_thread(self.writer.grants.live_grants_of_account, grant.tenant_id, account.id)
        # Everything the grant made goes, roles first even before a delete or a disable: an account restored by an
        # admin must not come back privileged, and Graph refuses to disable or delete an admin without a privileged
        # role of its own. On an existing account, only what the expiration actions name, and what no other live
        # grant still needs.
        take_roles = end is not None or ExpirationAction.REMOVE_ROLES in actions
        take_groups = end is not None or ExpirationAction.REMOVE_GROUPS in actions
        for role in _ours(progress.roles, "role", lambda r: r.role_id, ledger) if take_roles else ():
            key = Ledger.key("role", role.role_id)
            if ledger is not None and ledger.others(key, grant.id, live):
                kept.add(key)
                continue
            entry = ledger.entry(key) if ledger is not None else None
            items.append(Item(ItemKind.ROLE, role.role_id, reference=role.reference or (entry.reference if entry else None)))
        for group in _ours(progress.groups, "group", lambda g: g.group_id, ledger) if take_groups else ():
            key = Ledger.key("group", group.group_id)
            if ledger is not None and ledger.others(key, grant.id, live):
                kept.add(key)
                continue
            items.append(Item(ItemKind.GROUP, group.group_id))
        credential = progress.credential
        if created:
            # Every credential on a JIT account (all its passes; a password becomes one nobody knows).
            kind = credential.kind.value if credential is not None else CredentialKind.TEMPORARY_ACCESS_PASS.value
            items.append(Item(ItemKind.CREDENTIAL, kind, reference="*"))
        elif credential is not None and credential.state.made_here:
            items.append(Item(ItemKind.CREDENTIAL, credential.kind.value, reference=credential.id or "*"))

        if ledger is not None:
            # Mark what this grant is removing, so a grant starting meanwhile waits for it instead of finding it
            # "already there" moments before it disappears.
            marked = ledger
            for item in items:
                if item.kind is not ItemKind.CREDENTIAL:
                    key = Ledger.key(item.kind.value, item.key)
                    entry = marked.entry(key)
                    if entry is not None:
                        marked = marked.with_entry(key, replace(entry, removing=grant.id))
            if marked != ledger:
                write = LedgerWrite(ledger, marked)
                grant = await lease.save(grant, lambda g: g, ledger=lambda _: write)

        outcomes = await self.retry.run(backend.take_away, account, items, end=end, new_password=random_password())
        failed = [o for o in outcomes if o.status is OutcomeStatus.FAILED and not _lagging_purge(o, grant, self.clock.now())]
        if failed:
            error = failed[0].error
            if error is not None:
                raise error
            raise AccessRemains([f"{o.item.kind.value} {o.item.key} could not be taken away" for o in failed])
        return grant, await self._removal(grant, outcomes, kept, end)

    async def _purge_only(self, backend: AccessBackend, grant: Grant, account_id: str) -> Removal | None:
        expiration = grant.progress.expiration or ExpirationRecord()
        if expiration.account_purged:
            return None
        outcomes = await self.retry.run(backend.take_away, Account(account_id, ""), [], end=AccountEnd.PURGE)
        purge = outcomes[-1] if outcomes else None
        if purge is not None and purge.status is OutcomeStatus.FAILED and not _lagging_purge(purge, grant, self.clock.now()):
            raise purge.error or AccessRemains(["the account is still in deleted items"])
        return await self._removal(grant, outcomes, set(), AccountEnd.PURGE)

    async def _removal(self, grant: Grant, outcomes: list[Outcome], kept: set[str], end: AccountEnd | None) -> Removal:
        now = self.clock.now()
        removed = {Ledger.key(o.item.kind.value, o.item.key) for o in outcomes if o.status is not OutcomeStatus.FAILED}
        account_outcome = next((o for o in outcomes if o.item.kind is ItemKind.ACCOUNT), None)
        progress_account = grant.progress.account
        ledger = None
        if progress_account is not None and not progress_account.created and progress_account.id:
            ledger = await asyncio.to_thread(self.writer.grants.ledger, grant.tenant_id, progress_account.id)

        def record(current: Grant) -> Grant:
            progress = current.progress
            for role in _ours(progress.roles, "role", lambda r: r.role_id, ledger):
                key = Ledger.key("role", role.role_id)
                if key in kept:
                    progress = progress.with_role(replace(role, state=ItemState.KEPT))
                elif key in removed:
                    progress = progress.with_role(replace(role, state=ItemState.REMOVED))
            for group in _ours(progress.groups, "group", lambda g: g.group_id, ledger):
                key = Ledger.key("group", group.group_id)
                if key in kept:
                    progress = progress.with_group(replace(group, state=ItemState.KEPT))
                elif key in removed:
                    progress = progress.with_group(replace(group, state=ItemState.REMOVED))
            expiration = progress.expiration or ExpirationRecord()
            if (
                account_outcome is not None
                and end in (AccountEnd.DELETE, AccountEnd.PURGE)
                and expiration.account_deleted_at is None
            ):
                expiration = replace(expiration, account_deleted_at=now)
            if end is AccountEnd.PURGE and account_outcome is not None and account_outcome.status is OutcomeStatus.MADE:
                expiration = replace(expiration, account_purged=True)
            return current.with_progress(replace(progress, expiration=expiration))

        def ledger_write(_: Grant) -> LedgerWrite | None:
            if ledger is None:
                return None
            after = ledger
            for key in removed | kept:
                after = after.leave(key, grant.id)
                entry = after.entry(key)
                if entry is not None and entry.removing == grant.id:
                    after = after.with_entry(key, replace(entry, removing=None) if entry.holders else None)
            return LedgerWrite(ledger, after)

        return Removal(record, ledger_write if ledger is not None else None)

    async def _verify(self, backend: AccessBackend, grant: Grant, account: Account | None) -> None:
        """Read the directory back; AccessRemains lists whatever is still there."""
        progress = grant.progress
        actions = set(grant.request.expiration_actions)
        created = progress.created_account
        end = _account_end(actions, created, self.permanent_delete)
        account_id = progress.account_id or (account.id if account else None)
        if not account_id:
            return
        expiration = progress.expiration or ExpirationRecord()
        holdings = await self.retry.run(backend.holdings, account_id, recycle_bin=end is AccountEnd.PURGE)
        findings: list[str] = []
        if end is AccountEnd.PURGE and holdings.account is None:
            lag_over = (
                expiration.account_deleted_at is not None and self.clock.now() - expiration.account_deleted_at > RECYCLE_BIN_LAG
            )
            if holdings.in_recycle_bin or not (expiration.account_purged or lag_over):
                findings.append("the account is still in deleted items (or the recycle bin has not caught up yet)")
        if holdings.account is None:
            if findings:
                raise AccessRemains(findings)
            return
        name = holdings.account.principal_name
        if end in (AccountEnd.DELETE, AccountEnd.PURGE):
            findings.append(f"account {name} still exists")
        if end is AccountEnd.DISABLE and holdings.account.enabled is not False:
            findings.append(f"account {name} is still enabled")
        removed_roles = [r for r in progress.roles if r.state is ItemState.REMOVED]
        findings += [
            f"role {r.name or r.role_id} is still assigned" for r in removed_roles if r.role_id.lower() in holdings.roles
        ]
        removed_groups = [g for g in progress.groups if g.state is ItemState.REMOVED]
        findings += [f"still a member of group {g.group_id}" for g in removed_groups if g.group_id.lower() in holdings.groups]
        # On an account the system created every pass is the grant's; on an existing one only the pass it issued.
        credential = progress.credential
        ours = credential.id if credential is not None and credential.state.made_here else None
        if (created and holdings.credentials) or (ours and ours in holdings.credentials):
            findings.append("a Temporary Access Pass is still there")
        if findings:
            raise AccessRemains(findings)

    async def _finish(self, grant: Grant, lease: Lease, *, left_alone: bool, removal: Removal | None = None) -> Grant:
        now = self.clock.now()
        ended_early = grant.revoke_requested_at is not None and grant.revoke_requested_at < grant.request.end
        target = Status.REVOKED if ended_early else Status.EXPIRED
        actions = tuple(a.value for a in grant.request.expiration_actions)
        flag = "the account does not carry this grant's marker: left alone, check it by hand" if left_alone else None
        reason = "access removed and verified" if not left_alone else "account left alone: marker mismatch"
        lateness = (now - grant.access_should_end_at).total_seconds()
        entry = AuditEntry(
            now,
            grant.tenant_id,
            grant.id,
            SYSTEM,
            "grant.access-removed",
            "flagged" if left_alone else "success",
            f"lateness {lateness:.1f}s; actions {', '.join(actions)}",
        )
        if lease.work is not None:
            lease.work.entries.append(entry)

        def end(current: Grant) -> Grant:
            if removal is not None:
                current = removal.record(current)
            expiration = replace(current.progress.expiration or ExpirationRecord(), verified_at=now, actions=actions, flag=flag)
            ended = current.move_to(target, at=now, actor=SYSTEM, reason=reason)
            return replace(ended, revoked_at=now).with_progress(replace(current.progress, expiration=expiration))

        # The sealed credential, if nobody took it, goes with the grant's end.
        secret = await asyncio.to_thread(self.writer.grants.secret, grant)
        grant = await lease.finish(grant, end, drop_secret=secret, ledger=removal.ledger if removal else None)
        if left_alone:
            log.error("ALERT grant %s: its account no longer carries the grant's marker and was left alone", grant.id)
        return grant

    async def _still_pending(self, grant: Grant, lease: Lease, remaining: Exception, removal: Removal | None = None) -> None:
        """Record why the grant is still Expiring; alert once when it is later than allowed."""
        now = self.clock.now()
        late = now - grant.access_should_end_at
        findings = remaining.findings if isinstance(remaining, AccessRemains) else [f"directory: {remaining}"]
        alert = late > self.alert_after and not (grant.progress.expiration or ExpirationRecord()).alerted_at
        if alert and lease.work is not None:
            lease.work.entries.append(
                AuditEntry(now, grant.tenant_id, grant.id, SYSTEM, "grant.expiry-overdue", "alert", "; ".join(findings))
            )

        def note(current: Grant) -> Grant:
            if removal is not None:
                current = removal.record(current)  # what was taken away is kept, with what remains
            record = current.progress.expiration or ExpirationRecord()
            record = replace(record, attempts=record.attempts + 1, last_attempt_at=now, remaining=tuple(findings))
            if alert:
                record = replace(record, alerted_at=now)
            return current.with_progress(replace(current.progress, expiration=record))

        try:
            await lease.finish(grant, note, ledger=removal.ledger if removal else None)
        except (IllegalTransition, LeaseHeld, StaleGrant):
            await lease.release(grant)
        if alert:
            log.error(
                "ALERT grant %s still has access %.0fs after it should have ended: %s", grant.id, late.total_seconds(), findings
            )
        else:
            log.warning("grant %s not yet verified revoked: %s", grant.id, findings)


def _account_end(actions: set[ExpirationAction], created: bool, permanent_delete: bool) -> AccountEnd | None:
    if not created:
        return None  # an existing account: nothing but what the grant added is ever touched
    if ExpirationAction.DELETE_USER in actions:
        return AccountEnd.PURGE if permanent_delete else AccountEnd.DELETE
    if ExpirationAction.DISABLE_USER in actions:
        return AccountEnd.DISABLE
    return None


def _lagging_purge(outcome: Outcome, grant: Grant, now: datetime) -> bool:
    """A purge that found nothing in the recycle bin: right after the delete that is lag, later it is gone already.
    Either way not a failure here: verification reads the bin and decides (with the lag window in mind)."""
    return outcome.item.kind is ItemKind.ACCOUNT and isinstance(outcome.error, NotFoundInDirectory)


_Record = TypeVar("_Record", RoleRecord, GroupRecord)


def _ours(records: tuple[_Record, ...], kind: str, ident: Callable[[_Record], str], ledger: Ledger | None) -> list[_Record]:
    """The access this grant's end answers for: what it added, and what it shares with grants that added it (handed
    over to it when they ended). Access the account had before any grant is never among them."""
    ours = []
    for record in records:
        if record.state.made_here:
            ours.append(record)
        elif record.state is ItemState.SHARED and ledger is not None:
            entry = ledger.entry(Ledger.key(kind, ident(record)))
            if entry is not None and entry.origin is Origin.GRANT:
                ours.append(record)
    return ours
