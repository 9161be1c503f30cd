"""Which targets of a notification were delivered (so a retry sends only to the rest), recorded together with the
audit entry of each delivery: the marks live in the head row of the grant's notification audit chain (`n:<grant>`),
so a mark and its entry commit in one transaction. Dead letters keep their own table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient, UpdateMode

from jit.adapters.subject_audit import TableSubjectAudit
from jit.domain.audit import AuditEntry


def chain_of(grant_id: str) -> str:
    return f"n:{grant_id or 'tenant'}"


class TableDeliveries:
    def __init__(self, subjects: TableSubjectAudit, dead_letters: TableClient) -> None:
        self._subjects = subjects
        self._dead_letters = dead_letters

    def done(self, tenant_id: str, grant_id: str, key: str) -> set[int]:
        marks = self._subjects.state(tenant_id, chain_of(grant_id)).get(key) or {}
        return {int(i) for i in marks}

    def record(self, tenant_id: str, grant_id: str, key: str, index: int, state: str, entry: AuditEntry) -> None:
        """Mark one target of one notification as `state` (delivered, dead-letter) with its audit entry."""

        def mark(current: dict[str, Any]) -> dict[str, Any]:
            marks = dict(current.get(key) or {})
            marks[str(index)] = state
            return {**current, key: marks}

        chain = chain_of(grant_id)
        self._subjects.commit(tenant_id, chain, [_in_chain(entry, chain)], mark)

    def audit(self, tenant_id: str, grant_id: str, entry: AuditEntry) -> None:
        """An entry with no mark to go with it (a failed attempt that will be retried)."""
        chain = chain_of(grant_id)
        self._subjects.commit(tenant_id, chain, [_in_chain(entry, chain)])

    def dead_letter(self, key: str, index: int, record: dict[str, Any]) -> None:
        entity = {"PartitionKey": record.get("tenantId") or "none", "RowKey": f"{key}-{index}", "At": datetime.now(UTC), **record}
        self._dead_letters.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def dead_letters(self, tenant_id: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self._dead_letters.query_entities("PartitionKey eq @t", parameters={"t": tenant_id})]


def _in_chain(entry: AuditEntry, chain: str) -> AuditEntry:
    return AuditEntry(
        entry.at, entry.tenant_id, entry.grant_id, entry.actor, entry.action, entry.outcome, entry.detail, subject=chain
    )
