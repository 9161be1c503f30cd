"""The audit trail in Azure Table Storage: append-only, one partition per tenant, keys in time order."""

from __future__ import annotations

from datetime import UTC

from azure.data.tables import TableClient
from ulid import ULID

from jit.domain.work import AuditEntry


class TableAuditLog:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def append(self, entry: AuditEntry) -> None:
        at = entry.at.astimezone(UTC)
        # create_entity, never upsert: an existing entry can not be overwritten through this adapter.
        self._table.create_entity(
            {
                "PartitionKey": entry.tenant_id,
                "RowKey": f"{at:%Y%m%dT%H%M%S%fZ}-{ULID()}",
                "At": at,
                "GrantId": entry.grant_id,
                "Actor": entry.actor,
                "Action": entry.action,
                "Outcome": entry.outcome,
                "Detail": entry.detail,
            }
        )

    def entries(self, tenant_id: str) -> list[AuditEntry]:
        """Every entry of one tenant, oldest first."""
        return [
            AuditEntry(
                at=e["At"],
                tenant_id=e["PartitionKey"],
                grant_id=e["GrantId"],
                actor=e["Actor"],
                action=e["Action"],
                outcome=e["Outcome"],
                detail=e["Detail"],
            )
            for e in self._table.query_entities("PartitionKey eq @t", parameters={"t": tenant_id})
        ]
