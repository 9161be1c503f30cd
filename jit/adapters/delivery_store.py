"""Which targets of a notification were delivered (so a retry sends only to the rest), and the dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient, UpdateMode


class TableDeliveries:
    def __init__(self, deliveries: TableClient, dead_letters: TableClient) -> None:
        self._deliveries = deliveries
        self._dead_letters = dead_letters

    def done(self, key: str) -> set[int]:
        rows = self._deliveries.query_entities("PartitionKey eq @k", parameters={"k": key}, select=["RowKey"])
        return {int(r["RowKey"]) for r in rows}

    def mark(self, key: str, index: int, state: str) -> None:
        self._deliveries.upsert_entity({"PartitionKey": key, "RowKey": str(index), "State": state}, mode=UpdateMode.REPLACE)

    def dead_letter(self, key: str, index: int, record: dict[str, Any]) -> None:
        entity = {"PartitionKey": record.get("tenantId") or "none", "RowKey": f"{key}-{index}", "At": datetime.now(UTC), **record}
        self._dead_letters.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def dead_letters(self, tenant_id: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self._dead_letters.query_entities("PartitionKey eq @t", parameters={"t": tenant_id})]
