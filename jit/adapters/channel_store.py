"""Named notification channels in Azure Table Storage (Grants table, partition `global`, rows `~n|<name>`), each
change committed with its audit entry (chain `channel:<name>`). Admins configure them; requesters only name them."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from jit.adapters import audit_chain
from jit.adapters.audit_chain import AuditKeys
from jit.domain.audit import AuditEntry

PARTITION = "global"
PREFIX = "~n|"


class TableChannelStore:
    def __init__(self, table: TableClient, keys: AuditKeys) -> None:
        self._table = table
        self._keys = keys

    def get(self, name: str) -> dict[str, Any] | None:
        row = self._row(name)
        if row is None or row.get("Deleted"):
            return None
        return {"name": row["Name"], **json.loads(row["Document"])}

    def list(self) -> list[dict[str, Any]]:
        rows = self._table.query_entities(
            "PartitionKey eq @p and RowKey ge @low and RowKey lt @high", parameters={"p": PARTITION, "low": PREFIX, "high": "~n}"}
        )
        return [{"name": r["Name"], **json.loads(r["Document"])} for r in rows if not r.get("Deleted")]

    def put(self, name: str, document: dict[str, Any], *, by: str, at: datetime) -> bool:
        existing = self._row(name)
        created = existing is None or bool(existing.get("Deleted"))
        record = {"Name": name, "Document": json.dumps(document), "UpdatedBy": by, "UpdatedAt": at, "Deleted": False}
        detail = f"{name}: {document.get('kind')}" + (" (private network allowed)" if document.get("allowPrivateNetwork") else "")
        self._commit(name, existing, record, AuditEntry(at, PARTITION, "", by, "channel.saved", detail=detail))
        return created

    def delete(self, name: str, *, by: str, at: datetime) -> bool:
        existing = self._row(name)
        if existing is None or existing.get("Deleted"):
            return False
        record = {"Name": existing["Name"], "Document": "{}", "UpdatedBy": by, "UpdatedAt": at, "Deleted": True}
        self._commit(name, existing, record, AuditEntry(at, PARTITION, "", by, "channel.deleted", detail=name))
        return True

    def _commit(self, name: str, existing: Any, record: dict[str, Any], entry: AuditEntry) -> None:
        chain = f"channel:{name.casefold()}"
        entry = replace(entry, subject=chain)
        audit_chain.commit_record(
            self._table, PARTITION, PREFIX + name.casefold(), record, chain, existing, [entry], self._keys,
            conflict=f"channel {name} was changed meanwhile; try again",
        )

    def _row(self, name: str) -> Any:
        try:
            return self._table.get_entity(PARTITION, PREFIX + name.casefold())
        except ResourceNotFoundError:
            return None
