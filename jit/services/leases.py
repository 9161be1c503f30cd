"""One worker at a time per grant: a lease on the grant, with its own expiry so a dead worker blocks nobody for long.

Every write a worker makes while it works goes through `save`, which applies only while the grant is still in the
state the worker works on and the lease is still the worker's; so a revoke, or a second worker after a lease
expired, stops the first one at its next write instead of letting both write. Writes use the ETag of the worker's
last write (no read before each write); only a lost race reads the grant again. Each write carries the audit entries
of the directory writes made since the last one (`WorkAudit`), in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from jit.domain.clock import Clock
from jit.domain.errors import ConcurrencyConflict, IllegalTransition
from jit.domain.grant import Grant, Status
from jit.domain.progress import LeaseRecord
from jit.services.audited_backend import WorkAudit
from jit.services.grant_writer import GrantWriter
from jit.services.ports import SealedSecret, StaleGrant

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8


class LeaseHeld(Exception):
    """Another worker holds this grant right now."""


@dataclass
class Lease:
    writer: GrantWriter
    clock: Clock
    status: Status
    duration: timedelta = timedelta(minutes=5)
    work: WorkAudit | None = None
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    async def try_claim(self, grant: Grant, start: Callable[[Grant], Grant] | None = None) -> Grant | None:
        """Take the lease (after `start`, a transition into the worker's state, in the same write). None when there
        is nothing for this worker to do now: another worker holds it (it comes back through the sweep), or its
        state has moved on."""

        def claim(current: Grant) -> Grant:
            if start is not None:
                current = start(current)
            if current.status is not self.status:
                raise IllegalTransition(f"grant {current.id} is {current.status.value}, not {self.status.value}")
            now = self.clock.now()
            held = current.progress.lease
            if held is not None and held.owner != self.owner and held.until > now:
                raise LeaseHeld(current.id)
            return current.with_progress(replace(current.progress, lease=LeaseRecord(self.owner, now + self.duration)))

        try:
            return await self._write(grant, claim)
        except LeaseHeld:
            log.info("grant %s is held by another worker", grant.id)
        except IllegalTransition:
            pass
        return None

    async def save(
        self,
        grant: Grant,
        change: Callable[[Grant], Grant],
        *,
        secret: SealedSecret | None = None,
        ledger: Callable[[Grant], Any] | None = None,
    ) -> Grant:
        """Apply `change` while the grant is still ours to work on (with the sealed `secret` and the `ledger` write
        it produces, if any, in the same transaction)."""
        return await self._write(grant, self._guarded(change), secret=secret, ledger=ledger)

    async def finish(
        self,
        grant: Grant,
        change: Callable[[Grant], Grant],
        *,
        secret: SealedSecret | None = None,
        drop_secret: SealedSecret | None = None,
        ledger: Callable[[Grant], Any] | None = None,
    ) -> Grant:
        """Apply the last `change` (usually a transition) and give the lease back in the same write."""

        def last(current: Grant) -> Grant:
            changed = change(current)
            return changed.with_progress(replace(changed.progress, lease=None))

        return await self._write(grant, self._guarded(last), secret=secret, drop_secret=drop_secret, ledger=ledger)

    async def release(self, grant: Grant) -> None:
        """Give the lease back, whatever state the grant is in now (nothing if it is not ours any more)."""

        def release(current: Grant) -> Grant:
            held = current.progress.lease
            if held is None or held.owner != self.owner:
                return current
            return current.with_progress(replace(current.progress, lease=None))

        with contextlib.suppress(Exception):
            await self._write(grant, release)

    def _guarded(self, change: Callable[[Grant], Grant]) -> Callable[[Grant], Grant]:
        def guarded(current: Grant) -> Grant:
            if current.status is not self.status:
                raise IllegalTransition(f"grant {current.id} became {current.status.value}")
            held = current.progress.lease
            if held is None or held.owner != self.owner:
                raise LeaseHeld(current.id)
            return change(current)

        return guarded

    async def _write(
        self,
        grant: Grant,
        change: Callable[[Grant], Grant],
        *,
        secret: SealedSecret | None = None,
        drop_secret: SealedSecret | None = None,
        ledger: Callable[[Grant], Any] | None = None,
    ) -> Grant:
        """Apply `change` to the grant as last written (re-reading only after a lost race) and store it with the
        pending audit entries, off the event loop (the Table SDK is synchronous)."""
        current: Grant | None = grant
        for _ in range(MAX_ATTEMPTS):
            if current is None:
                current = await asyncio.to_thread(self.writer.grants.get, grant.id, grant.tenant_id)
            after = change(current)
            entries = self.work.entries if self.work is not None else []
            written = ledger(after) if ledger is not None else None
            try:
                saved = await asyncio.to_thread(
                    self.writer.save, current, after, list(entries), secret=secret, drop_secret=drop_secret, ledger=written
                )
            except StaleGrant:
                if ledger is not None or drop_secret is not None:
                    raise  # the ledger or the secret must be read again too: the step starts over
                current = None
                continue
            if self.work is not None:
                self.work.drain()
            return saved
        raise ConcurrencyConflict(f"grant {grant.id} kept changing; gave up after {MAX_ATTEMPTS} attempts")
