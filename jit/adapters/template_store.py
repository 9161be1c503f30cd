"""Request templates in Azure Table Storage, in the partition of their tenant (`global` for global ones) of the
Grants table: `~m|<name, case-folded>`, carrying the head of its audit chain (`template:<name>`). A save or a delete
commits with its audit entry; a deleted template stays as a tombstone so its chain keeps its head.

Templates written by earlier versions live in table `<prefix>Templates` (PartitionKey = scope): read there when the
new place has none, and moved on first read.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from jit.adapters import audit_chain
from jit.adapters.audit_chain import AuditKeys
from jit.domain.audit import AuditEntry
from jit.domain.errors import Conflict

GLOBAL = "global"
PREFIX = "~m|"


class TableTemplateStore:
    def __init__(self, table: TableClient, keys: AuditKeys, legacy: TableClient | None = None) -> None:
        self._table = table
        self._keys = keys
        self._legacy = legacy

    def put(self, scope: str, name: str, document: dict[str, Any], *, by: str, at: datetime) -> bool:
        """Store a template with its audit entry; True when it is new."""
        existing = self._row(scope, name)
        created = existing is None or bool(existing.get("Deleted"))
        record = {"Name": name, "Document": json.dumps(document), "UpdatedBy": by, "UpdatedAt": at, "Deleted": False}
        self._commit(scope, name, existing, record, AuditEntry(at, scope, "", by, "template.saved", detail=name))
        return created

    def get(self, scope: str, name: str) -> dict[str, Any] | None:
        row = self._row(scope, name)
        if row is None or row.get("Deleted"):
            return None
        return _template(row, scope)

    def delete(self, scope: str, name: str, *, by: str, at: datetime) -> bool:
        existing = self._row(scope, name)
        if existing is None or existing.get("Deleted"):
            return False
        record = {"Name": existing.get("Name", name), "Document": "{}", "UpdatedBy": by, "UpdatedAt": at, "Deleted": True}
        self._commit(scope, name, existing, record, AuditEntry(at, scope, "", by, "template.deleted", detail=name))
        return True

    def list(self, scopes: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for scope in scopes:
            self._move_legacy_scope(scope)
            rows = self._table.query_entities(
                "PartitionKey eq @s and RowKey ge @low and RowKey lt @high", parameters={"s": scope, "low": PREFIX, "high": "~m}"}
            )
            found += [_template(r, scope) for r in rows if not r.get("Deleted")]
        return found

    def _commit(self, scope: str, name: str, existing: Any, record: dict[str, Any], entry: AuditEntry) -> None:
        chain = f"template:{name.casefold()}"
        entry = replace(entry, subject=chain)
        audit_chain.commit_record(
            self._table, scope, PREFIX + name.casefold(), record, chain, existing, [entry], self._keys,
            conflict=f"template {name} was changed meanwhile; try again",
        )

    def _row(self, scope: str, name: str) -> Any:
        with contextlib.suppress(ResourceNotFoundError):
            return self._table.get_entity(scope, PREFIX + name.casefold())
        if self._legacy is None:
            return None
        try:
            legacy = self._legacy.get_entity(scope, name.casefold())
        except ResourceNotFoundError:
            return None
        self._move(scope, legacy)
        try:
            return self._table.get_entity(scope, PREFIX + name.casefold())
        except ResourceNotFoundError:
            return None

    def _move_legacy_scope(self, scope: str) -> None:
        if self._legacy is None:
            return
        for legacy in list(self._legacy.query_entities("PartitionKey eq @s", parameters={"s": scope})):
            self._move(scope, legacy)

    def _move(self, scope: str, legacy: Any) -> None:
        name = str(legacy["Name"])
        record = {
            "Name": name,
            "Document": legacy["Document"],
            "UpdatedBy": legacy.get("UpdatedBy", "migration"),
            "UpdatedAt": legacy["UpdatedAt"],
            "Deleted": False,
        }
        entry = AuditEntry(legacy["UpdatedAt"], scope, "", "migration", "template.moved", detail=name)
        with contextlib.suppress(Conflict):  # moved by another instance
            self._commit(scope, name, None, record, entry)
        self._legacy.delete_entity(scope, str(legacy["RowKey"]))  # type: ignore[union-attr]


def _template(entity: Any, scope: str) -> dict[str, Any]:
    return {"name": entity["Name"], "scope": scope, **json.loads(entity["Document"])}
