"""Policies in Azure Table Storage: per tenant (or `default`), every revision kept, the current one guarded by ETag."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from jit.domain.errors import Conflict

CURRENT = "current"
DEFAULT_SCOPE = "default"


class TablePolicyStore:
    """Stores policy documents (the validated JSON); the API layer turns them into domain policies."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def current(self, scope: str) -> tuple[dict[str, Any], int] | None:
        try:
            entity = self._table.get_entity(scope, CURRENT)
        except ResourceNotFoundError:
            return None
        return json.loads(entity["Document"]), int(entity["Version"])

    def save(self, scope: str, document: dict[str, Any], *, by: str, at: datetime, expected_version: int | None) -> int:
        """Store a new revision; Conflict when `expected_version` is given and is not the current one."""
        try:
            existing = self._table.get_entity(scope, CURRENT)
        except ResourceNotFoundError:
            existing = None
        version = int(existing["Version"]) + 1 if existing else 1
        if expected_version is not None and expected_version != version - 1:
            raise Conflict(f"the policy is at version {version - 1}, not {expected_version}")
        entity = {
            "PartitionKey": scope,
            "RowKey": CURRENT,
            "Document": json.dumps(document),
            "Version": version,
            "UpdatedBy": by,
            "UpdatedAt": at,
        }
        try:
            if existing is None:
                self._table.create_entity(entity)
            else:
                self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=existing.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError):
            raise Conflict("the policy was changed meanwhile; read it again") from None
        self._table.upsert_entity({**entity, "RowKey": f"v{version:06d}"})  # the revision history
        return version

    def history(self, scope: str) -> list[tuple[int, str, datetime]]:
        rows = self._table.query_entities("PartitionKey eq @s and RowKey ge 'v' and RowKey lt 'w'", parameters={"s": scope})
        return [(int(r["Version"]), str(r["UpdatedBy"]), r["UpdatedAt"]) for r in rows]
