"""Every change to a grant goes through here: its transitions are announced to the people who listen, then the
change is stored with its audit entries in one atomic write.

Announcing comes first, so that no transition is ever stored without its notification being on its way; a message
for a change that then failed to store finds no such transition when the notification worker reads the grant, and is
dropped there. A transition nobody listens to is not queued at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jit.domain.audit import AuditEntry
from jit.domain.errors import ConcurrencyConflict
from jit.domain.grant import Grant
from jit.services.ports import GrantRepository, SealedSecret, StaleGrant

MAX_ATTEMPTS = 8


class Announcer(Protocol):
    def transitions(self, before: Grant | None, after: Grant) -> None:
        """Queue a notification for each transition `after` has that `before` did not, where someone listens."""


@dataclass(frozen=True)
class GrantWriter:
    grants: GrantRepository
    announcer: Announcer | None = None

    def add(self, grant: Grant, entries: Sequence[AuditEntry] = ()) -> Grant:
        if self.announcer is not None:
            self.announcer.transitions(None, grant)
        return self.grants.add(grant, entries)

    def save(
        self,
        before: Grant,
        after: Grant,
        entries: Sequence[AuditEntry] = (),
        *,
        secret: SealedSecret | None = None,
        drop_secret: SealedSecret | None = None,
        ledger: Any = None,
    ) -> Grant:
        if self.announcer is not None and len(after.history) > len(before.history):
            self.announcer.transitions(before, after)
        return self.grants.save(before, after, entries, secret=secret, drop_secret=drop_secret, ledger=ledger)

    def update(
        self,
        grant_id: str,
        change: Callable[[Grant], Grant | tuple[Grant, list[AuditEntry]]],
        tenant_id: str | None = None,
        *,
        current: Grant | None = None,
    ) -> Grant:
        """Apply `change` to the grant (to `current` first, when the caller just read it) and store the result,
        re-reading and re-applying when somebody else wrote first. A change that changes nothing stores nothing."""
        for _ in range(MAX_ATTEMPTS):
            if current is None:
                current = self.grants.get(grant_id, tenant_id)
            result = change(current)
            changed, entries = result if isinstance(result, tuple) else (result, [])
            if changed == current and not entries:
                return current
            try:
                return self.save(current, changed, entries)
            except StaleGrant:
                current = None
        raise ConcurrencyConflict(f"grant {grant_id} kept changing; gave up after {MAX_ATTEMPTS} attempts")
