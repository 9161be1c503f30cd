"""The audit trail's unit: one thing the system did or was asked to do, appended and never changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jit.domain.grant import Grant


@dataclass(frozen=True)
class AuditEntry:
    """What happened, to what, by whom. `grant_id` names the grant it concerns; the entry belongs to that grant's
    chain unless it names a `subject` (a policy, a template, a tenant's registration, a grant's notifications),
    which is then its chain."""

    at: datetime
    tenant_id: str
    grant_id: str
    actor: str
    action: str
    outcome: str = "success"
    detail: str = ""
    subject: str = ""

    @property
    def chain(self) -> str:
        """The chain the entry belongs to: its subject's, or its grant's."""
        return self.subject or self.grant_id or "tenant"


def transition_entries(before: Grant | None, after: Grant) -> list[AuditEntry]:
    """One entry per transition `after` has that `before` did not (all of them for a new grant)."""
    known = len(before.history) if before is not None else 0
    return [
        AuditEntry(
            at=step.at,
            tenant_id=after.tenant_id,
            grant_id=after.id,
            actor=step.actor,
            action=f"grant.{step.to_status.value}",
            detail=f"{step.from_status.value if step.from_status else 'none'} -> {step.to_status.value}"
            + (f": {step.reason}" if step.reason else ""),
        )
        for step in after.history[known:]
    ]
