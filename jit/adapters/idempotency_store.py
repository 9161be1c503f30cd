"""Idempotency keys in Azure Table Storage: the first request with a key wins, later ones read its record."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from jit.services.ports import IdempotencyRecord


class TableIdempotencyStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def find(self, scope: str, key: str, *, now: datetime) -> IdempotencyRecord | None:
        try:
            stored = self._table.get_entity(_partition(scope, key), "")
        except ResourceNotFoundError:
            return None
        if _expires(stored) <= now:
            return None
        return IdempotencyRecord(stored["Fingerprint"], stored["GrantId"], stored["TenantId"])

    def claim(self, scope: str, key: str, record: IdempotencyRecord, *, now: datetime, ttl: timedelta) -> IdempotencyRecord:
        partition = _partition(scope, key)
        entity = {
            "PartitionKey": partition,
            "RowKey": "",
            "Fingerprint": record.fingerprint,
            "GrantId": record.grant_id,
            "TenantId": record.tenant_id,
            "ExpiresAt": now + ttl,
        }
        for _ in range(4):
            try:
                self._table.create_entity(entity)
                return record
            except ResourceExistsError:
                pass
            try:
                stored = self._table.get_entity(partition, "")
            except ResourceNotFoundError:
                continue  # expired and removed between the two calls: try to claim again
            if _expires(stored) > now:
                return IdempotencyRecord(stored["Fingerprint"], stored["GrantId"], stored["TenantId"])
            try:  # an expired claim may be taken over, but only by one caller
                self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=stored.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
                return record
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
        raise ResourceExistsError("idempotency key is contended")


def _partition(scope: str, key: str) -> str:
    # Keys are caller-chosen text: hash them (with their scope) into a safe, fixed-size PartitionKey.
    return hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()


def _expires(entity: Any) -> datetime:
    value: datetime = entity["ExpiresAt"]
    return value.astimezone(UTC)
