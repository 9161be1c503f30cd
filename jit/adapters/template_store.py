"""Request templates in Azure Table Storage: PartitionKey = `global` or a tenant, RowKey = the name (case-folded)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

GLOBAL = "global"


class TableTemplateStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def put(self, scope: str, name: str, document: dict[str, Any], *, by: str, at: datetime) -> bool:
        """Store a template; True when it is new."""
        existed = self.get(scope, name) is not None
        self._table.upsert_entity(
            {
                "PartitionKey": scope,
                "RowKey": name.casefold(),
                "Name": name,
                "Document": json.dumps(document),
                "UpdatedBy": by,
                "UpdatedAt": at,
            },
            mode=UpdateMode.REPLACE,
        )
        return not existed

    def get(self, scope: str, name: str) -> dict[str, Any] | None:
        try:
            entity = self._table.get_entity(scope, name.casefold())
        except ResourceNotFoundError:
            return None
        return _template(entity)

    def delete(self, scope: str, name: str) -> bool:
        if self.get(scope, name) is None:
            return False
        self._table.delete_entity(scope, name.casefold())
        return True

    def list(self, scopes: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for scope in scopes:
            found += [_template(e) for e in self._table.query_entities("PartitionKey eq @s", parameters={"s": scope})]
        return found


def _template(entity: Any) -> dict[str, Any]:
    return {"name": entity["Name"], "scope": entity["PartitionKey"], **json.loads(entity["Document"])}
