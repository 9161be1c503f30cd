"""Turning what happened to a grant into audit entries."""

from __future__ import annotations

from jit.domain.grant import Grant
from jit.domain.work import AuditEntry
from jit.services.ports import AuditLog


def record_new_transitions(audit: AuditLog, before: Grant | None, after: Grant) -> None:
    """Append one entry per transition `after` has that `before` did not (all of them for a new grant)."""
    known = len(before.history) if before is not None else 0
    entries = []
    for step in after.history[known:]:
        came_from = step.from_status.value if step.from_status else "none"
        entries.append(
            AuditEntry(
                at=step.at,
                tenant_id=after.tenant_id,
                grant_id=after.id,
                actor=step.actor,
                action=f"grant.{step.to_status.value}",
                detail=f"{came_from} -> {step.to_status.value}" + (f": {step.reason}" if step.reason else ""),
            )
        )
    audit.append_many(entries)
