"""One worker at a time per grant: a lease on the grant, with its own expiry so a dead worker blocks nobody for long.

Every write a worker makes while it works goes through `save`, which applies only while the grant is still in the
state the worker works on and the lease is still the worker's; so a revoke, or a second worker after a lease
expired, stops the first one at its next write instead of letting both write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jit.domain.clock import Clock
from jit.domain.errors import IllegalTransition
from jit.domain.grant import Grant, Status
from jit.services.audit import record_new_transitions
from jit.services.ports import AuditLog, GrantRepository
from jit.services.progress import with_progress

LEASE = "lease"
log = logging.getLogger(__name__)


class LeaseHeld(Exception):
    """Another worker holds this grant right now."""


@dataclass
class Lease:
    grants: GrantRepository
    audit: AuditLog
    clock: Clock
    status: Status
    duration: timedelta = timedelta(minutes=5)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    async def claim(self, grant: Grant) -> Grant:
        """Take the lease; LeaseHeld if someone else's is still running, IllegalTransition if the state moved on."""

        def claim(current: Grant) -> Grant:
            if current.status is not self.status:
                raise IllegalTransition(f"grant {current.id} is {current.status.value}, not {self.status.value}")
            now = self.clock.now()
            held = current.progress.get(LEASE) or {}
            if held and held.get("owner") != self.owner and datetime.fromisoformat(held["until"]) > now:
                raise LeaseHeld(current.id)
            return with_progress(current, **{LEASE: {"owner": self.owner, "until": (now + self.duration).isoformat()}})

        return await self._write(grant, claim)

    async def try_claim(self, grant: Grant) -> Grant | None:
        """The claimed grant, or None when there is nothing for this worker to do now: another worker holds it
        (it comes back through the sweep), or its state has moved on."""
        try:
            return await self.claim(grant)
        except LeaseHeld:
            log.info("grant %s is held by another worker", grant.id)
        except IllegalTransition:
            pass
        return None

    async def save(self, grant: Grant, change: Callable[[Grant], Grant]) -> Grant:
        """Apply `change` while the grant is still ours to work on."""
        return await self._write(grant, self._guarded(change))

    async def finish(self, grant: Grant, change: Callable[[Grant], Grant]) -> Grant:
        """Apply the last `change` (usually a transition) and give the lease back in the same write."""
        return await self._write(grant, self._guarded(lambda g: with_progress(change(g), **{LEASE: None})))

    async def release(self, grant: Grant) -> None:
        """Give the lease back, whatever state the grant is in now (nothing if it is not ours any more)."""

        def release(current: Grant) -> Grant:
            if (current.progress.get(LEASE) or {}).get("owner") != self.owner:
                return current
            return with_progress(current, **{LEASE: None})

        with contextlib.suppress(Exception):
            await self._write(grant, release)

    def _guarded(self, change: Callable[[Grant], Grant]) -> Callable[[Grant], Grant]:
        def guarded(current: Grant) -> Grant:
            if current.status is not self.status:
                raise IllegalTransition(f"grant {current.id} became {current.status.value}")
            if (current.progress.get(LEASE) or {}).get("owner") != self.owner:
                raise LeaseHeld(current.id)
            return change(current)

        return guarded

    async def _write(self, grant: Grant, change: Callable[[Grant], Grant]) -> Grant:
        """Apply `change` under the grant's ETag, off the event loop (the Table SDK is synchronous), and audit
        any transition it made."""
        before: list[Grant] = []

        def tracked(current: Grant) -> Grant:
            before[:] = [current]
            return change(current)

        after = await asyncio.to_thread(self.grants.update, grant.id, tracked, grant.tenant_id)
        if before:
            await asyncio.to_thread(record_new_transitions, self.audit, before[0], after)
        return after
