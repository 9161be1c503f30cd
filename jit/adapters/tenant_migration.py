"""Moving records an earlier version kept under a tenant's domain name to the tenant's GUID, once the registry knows
the GUID. Idempotent: a record already moved is skipped; a crash half-way is finished by the next check.

What moves: the grants (their partition, the grant index, the schedule), policies and templates kept in their
earlier tables, drift findings, and Temporary Access Passes still waiting for retrieval (re-sealed: their sealing
names the tenant). The earlier audit trail stays where it was written, under the domain name: moving it would break
its hashes; the audit API reads it under all of the tenant's names.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from jit.adapters.sealing import Sealer
from jit.domain.tenant import TenantRegistration
from jit.settings import Settings

log = logging.getLogger(__name__)


class TenantMigration:
    def __init__(self, storage: Any, settings: Settings) -> None:
        self._storage = storage
        self._settings = settings

    def move(self, registration: TenantRegistration) -> int:
        moved = 0
        for name in {*registration.domains, registration.initial_domain} - {"", registration.id}:
            moved += self._move_name(name.lower(), registration.id)
        return moved

    def _move_name(self, old: str, new: str) -> int:
        settings = self._settings
        grants = self._storage.table(settings.grants_table)
        moved = 0
        for row in list(grants.query_entities("PartitionKey eq @p", parameters={"p": old})):
            if str(row["RowKey"]).startswith("~"):
                continue
            copy = {**row, "PartitionKey": new, "TenantId": new}
            with contextlib.suppress(ResourceExistsError):
                grants.create_entity(copy)
            grants.delete_entity(old, row["RowKey"])
            moved += 1
            self._move_secret(str(row["Id"]), old, new)
        index = self._storage.table(settings.grant_index_table)
        for row in list(index.query_entities("PartitionKey eq 'grant' and TenantId eq @t", parameters={"t": old})):
            index.upsert_entity({**row, "TenantId": new}, mode=UpdateMode.REPLACE)
        with contextlib.suppress(ResourceNotFoundError):
            index.delete_entity("tenant", old)
        if moved:
            index.upsert_entity({"PartitionKey": "tenant", "RowKey": new}, mode=UpdateMode.REPLACE)
        schedule = self._storage.table(settings.schedule_table)
        for row in list(schedule.query_entities("PartitionKey eq 'due' and TenantId eq @t", parameters={"t": old})):
            key = str(row["RowKey"]).replace(f"|{old}|", f"|{new}|")
            schedule.upsert_entity({**row, "RowKey": key, "TenantId": new}, mode=UpdateMode.REPLACE)
            schedule.delete_entity("due", row["RowKey"])
        for table_name in (settings.policies_table, settings.templates_table, settings.drift_table):
            moved += self._rename_partition(self._storage.table(table_name), old, new)
        if moved:
            log.info("moved %d records from %s to %s", moved, old, new)
        return moved

    def _rename_partition(self, table: Any, old: str, new: str) -> int:
        moved = 0
        for row in list(table.query_entities("PartitionKey eq @p", parameters={"p": old})):
            with contextlib.suppress(ResourceExistsError):
                table.create_entity({**row, "PartitionKey": new})
            table.delete_entity(old, row["RowKey"])
            moved += 1
        return moved

    def _move_secret(self, grant_id: str, old: str, new: str) -> None:
        """A TAP sealed for the grant under the domain name, re-sealed for it under the GUID."""
        if self._settings.tap_keys is None:
            return
        legacy = self._storage.table(self._settings.secrets_table)
        try:
            row = legacy.get_entity(grant_id, "tap")
        except ResourceNotFoundError:
            return
        sealer = Sealer(self._settings.tap_keys)
        try:
            value = sealer.open(str(row["Sealed"]), old, grant_id)
        except Exception:  # noqa: BLE001 - a TAP that can not be opened stays where it is, for a person to look at
            log.error(
                "the TAP of grant %s could not be re-sealed (its key is not configured); left in %s", grant_id, legacy.table_name
            )
            return
        grants = self._storage.table(self._settings.grants_table)
        grants.upsert_entity(
            {
                "PartitionKey": new,
                "RowKey": f"~s|{grant_id}",
                "Sealed": sealer.seal(new, grant_id, value),
                "ExpiresAt": row.get("ExpiresAt"),
            },
            mode=UpdateMode.REPLACE,
        )
        legacy.delete_entity(grant_id, "tap")
