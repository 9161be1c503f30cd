"""Policies in Azure Table Storage, in the partition of the tenant they govern (`global` for the default policy) of
the Grants table: `~p|current` (the document, its version, and the head of the `policy` audit chain) and one row per
revision (`~p|v000001`, ...). A revision and its audit entry commit in one transaction, conditional on the ETag.

Policies written by earlier versions live in table `<prefix>Policies` (PartitionKey = scope): read there when the
new place has none, and moved on first read.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from jit.adapters import audit_chain
from jit.adapters.audit_chain import AuditKeys
from jit.domain.audit import AuditEntry
from jit.domain.errors import Conflict

CURRENT = "~p|current"
DEFAULT_SCOPE = "default"
GLOBAL_PARTITION = "global"
CHAIN = "policy"


def partition_of(scope: str) -> str:
    return GLOBAL_PARTITION if scope == DEFAULT_SCOPE else scope


class TablePolicyStore:
    """Stores policy documents (the validated JSON); the service turns them into domain policies."""

    def __init__(self, table: TableClient, keys: AuditKeys, legacy: TableClient | None = None) -> None:
        self._table = table
        self._keys = keys
        self._legacy = legacy

    def current(self, scope: str) -> tuple[dict[str, Any], int] | None:
        try:
            entity = self._table.get_entity(partition_of(scope), CURRENT)
        except ResourceNotFoundError:
            return self._moved_from_legacy(scope)
        return json.loads(entity["Document"]), int(entity["Version"])

    def save(self, scope: str, document: dict[str, Any], *, by: str, at: datetime, expected_version: int | None) -> int:
        """Store a new revision with its audit entry; Conflict when `expected_version` is not the current one."""
        self.current(scope)  # a policy kept where an earlier version kept it moves first
        return self._write(scope, document, by=by, at=at, expected_version=expected_version)

    def _write(self, scope: str, document: dict[str, Any], *, by: str, at: datetime, expected_version: int | None) -> int:
        partition = partition_of(scope)
        try:
            existing = self._table.get_entity(partition, CURRENT)
        except ResourceNotFoundError:
            existing = None
        version = int(existing["Version"]) + 1 if existing else 1
        if expected_version is not None and expected_version != version - 1:
            raise Conflict(f"the policy is at version {version - 1}, not {expected_version}")
        record = {"Document": json.dumps(document), "Version": version, "UpdatedBy": by, "UpdatedAt": at}
        entry = AuditEntry(at, partition, "", by, "policy.updated", detail=f"{scope}: version {version}", subject=CHAIN)
        history = ("upsert", {"PartitionKey": partition, "RowKey": f"~p|v{version:06d}", **record})
        audit_chain.commit_record(
            self._table, partition, CURRENT, record, CHAIN, existing, [entry], self._keys,
            conflict="the policy was changed meanwhile; read it again", extra=[history],
        )
        return version

    def history(self, scope: str) -> list[dict[str, Any]]:
        rows = self._table.query_entities(
            "PartitionKey eq @p and RowKey ge '~p|v' and RowKey lt '~p|w'", parameters={"p": partition_of(scope)}
        )
        return [
            {
                "version": int(r["Version"]),
                "updatedBy": str(r["UpdatedBy"]),
                "updatedDateTime": _iso(r["UpdatedAt"]),
                "document": json.loads(r["Document"]),
            }
            for r in rows
        ]

    def _moved_from_legacy(self, scope: str) -> tuple[dict[str, Any], int] | None:
        if self._legacy is None:
            return None
        try:
            entity = self._legacy.get_entity(scope, "current")
        except ResourceNotFoundError:
            return None
        document = json.loads(entity["Document"])
        with contextlib.suppress(Conflict):
            self._write(scope, document, by=str(entity.get("UpdatedBy") or "migration"), at=datetime.now(UTC), expected_version=0)
        self._legacy.delete_entity(scope, "current")
        try:
            moved = self._table.get_entity(partition_of(scope), CURRENT)
        except ResourceNotFoundError:
            return None
        return json.loads(moved["Document"]), int(moved["Version"])


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
