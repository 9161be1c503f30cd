"""Drift findings in Azure Table Storage: one partition per tenant, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient
from ulid import ULID

from jit.domain.drift import DriftFinding, DriftKind
from jit.domain.ids import newest_first_key


class TableDriftLog:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def record(self, findings: list[DriftFinding]) -> None:
        """Each tenant's findings in transactions of up to 100 (one round trip each, not one per finding)."""
        by_tenant: dict[str, list[dict[str, Any]]] = {}
        for finding in findings:
            key = newest_first_key(str(ULID.from_datetime(finding.found_at)))
            by_tenant.setdefault(finding.tenant_id, []).append(
                {
                    "PartitionKey": finding.tenant_id,
                    "RowKey": key,
                    "Kind": finding.kind.value,
                    "FoundAt": finding.found_at,
                    "Detail": finding.detail,
                    "GrantId": finding.grant_id,
                    "UserId": finding.user_id,
                    "Remediated": finding.remediated,
                }
            )
        for rows in by_tenant.values():
            for start in range(0, len(rows), 100):
                self._table.submit_transaction([("upsert", row) for row in rows[start : start + 100]])

    def since(self, moment: datetime, tenant_id: str | None, top: int) -> list[DriftFinding]:
        query = "FoundAt ge @since" + (" and PartitionKey eq @tenant" if tenant_id else "")
        parameters: dict[str, Any] = {"since": moment.astimezone(UTC)}
        if tenant_id:
            parameters["tenant"] = tenant_id
        found = [_finding(e) for e in self._table.query_entities(query, parameters=parameters)]
        return sorted(found, key=lambda f: f.found_at, reverse=True)[:top]


def _finding(entity: Any) -> DriftFinding:
    return DriftFinding(
        tenant_id=entity["PartitionKey"],
        kind=DriftKind(entity["Kind"]),
        found_at=entity["FoundAt"],
        detail=entity["Detail"],
        grant_id=entity.get("GrantId", ""),
        user_id=entity.get("UserId", ""),
        remediated=bool(entity.get("Remediated", False)),
    )
