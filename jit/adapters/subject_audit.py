"""Audit chains of subjects that have no record of their own to carry the chain's head: notification deliveries of
a grant (`n:<grant>`), drift findings (`drift`), directory writes made outside a grant's work (`directory`). Each
has a head row (`~h|<chain>`) in the tenant's partition of the Grants table; an append moves the head and adds the
entries in one transaction, conditional on the head's ETag. The head row may carry state that must change with the
entries (a notification's delivery marks), so the two commit together.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError

from jit.adapters import audit_chain
from jit.adapters.audit_chain import AuditKeys
from jit.domain.audit import AuditEntry
from jit.domain.errors import ConcurrencyConflict

MAX_ATTEMPTS = 8


class TableSubjectAudit:
    def __init__(self, table: TableClient, keys: AuditKeys) -> None:
        self._table = table
        self._keys = keys

    def append(self, entry: AuditEntry) -> None:
        self.append_many([entry])

    def append_many(self, entries: list[AuditEntry]) -> None:
        groups: dict[tuple[str, str], list[AuditEntry]] = defaultdict(list)
        for entry in entries:
            groups[(entry.tenant_id, entry.subject or entry.chain)].append(entry)
        for (partition, chain), own in groups.items():
            for start in range(0, len(own), 90):
                self.commit(partition, chain, own[start : start + 90])

    def state(self, partition: str, chain: str) -> dict[str, Any]:
        try:
            row = self._table.get_entity(partition, audit_chain.head_key(chain))
        except ResourceNotFoundError:
            return {}
        return dict(json.loads(row.get("State") or "{}"))

    def commit(
        self,
        partition: str,
        chain: str,
        entries: list[AuditEntry],
        change: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Append `entries` to the chain and apply `change` to the head row's state, together. Returns the state."""
        for _ in range(MAX_ATTEMPTS):
            try:
                row = self._table.get_entity(partition, audit_chain.head_key(chain))
            except ResourceNotFoundError:
                row = None
            state = dict(json.loads(row.get("State") or "{}")) if row is not None else {}
            if change is not None:
                state = change(state)
            operations, _ = audit_chain.chained_record(
                partition,
                audit_chain.head_key(chain),
                {"State": json.dumps(state)},
                chain,
                audit_chain.head_of(row),
                entries,
                self._keys,
                row.metadata["etag"] if row is not None else None,
            )
            try:
                self._table.submit_transaction(operations)
            except TableTransactionError as failed:
                if failed.status_code in (409, 412):
                    continue
                raise
            return state
        raise ConcurrencyConflict(f"audit chain {chain} of {partition} kept changing")
