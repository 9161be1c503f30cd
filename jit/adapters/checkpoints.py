"""Audit checkpoints: the heads of every chain that changed, anchored outside the audit table, keyed, write-once.

Every run of the checkpoint timer reads, per partition (a tenant, or `global`), the checkpoint-bucket rows written
since its last run (each says "chain C had its head at sequence S with hash H"), and writes them as one JSON blob
named by time into container `<prefix>-audit-checkpoints`. A blob is created once and never overwritten; in Azure
the container has a time-based immutability (WORM) policy, so nobody who can write to the tables can rewrite it.
Each checkpoint carries an HMAC under the audit key over its content and the previous checkpoint's MAC.

Verification reads the checkpoints since a date: the latest head each chain was seen at. Entries of a chain cut
after its checkpoint (or a chain deleted whole) show as a chain shorter than its checkpoint says.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from jit.adapters import audit_chain
from jit.adapters.audit_chain import AuditKeys, ChainHead

CURSOR = "~k|checkpoint"
# A bucket is read again for a minute after its own: writes in the same minute may still be landing.
_OVERLAP = timedelta(minutes=1)


@dataclass(frozen=True)
class Anchor:
    chain: str
    head: ChainHead
    at: datetime  # when the checkpoint that recorded it was written
    blob: str


class CheckpointLog:
    def __init__(self, container: Any, tables: list[TableClient], keys: AuditKeys) -> None:
        self._container = container  # azure.storage.blob.ContainerClient
        self._tables = tables  # every table whose partitions hold audit chains
        self._keys = keys
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            with contextlib.suppress(ResourceExistsError):
                self._container.create_container()
            self._ready = True

    # Writing ------------------------------------------------------------------------------------------------------

    def checkpoint(self, partitions: Iterable[str], now: datetime) -> int:
        """Anchor the heads changed since each partition's last checkpoint; how many chains were anchored."""
        self._ensure()
        anchored = 0
        for partition in partitions:
            anchored += self._checkpoint_partition(partition, now)
        return anchored

    def _checkpoint_partition(self, partition: str, now: datetime) -> int:
        table = self._tables[0]
        try:
            cursor = table.get_entity(partition, CURSOR)
        except ResourceNotFoundError:
            cursor = None
        since = str(cursor["Minute"]) if cursor is not None else "000000000000"
        heads: dict[str, tuple[int, str]] = {}
        for source in self._tables:
            rows = source.query_entities(
                "PartitionKey eq @p and RowKey ge @low and RowKey lt @high",
                parameters={"p": partition, "low": f"{audit_chain.BUCKET_PREFIX}{since}", "high": "~c}"},
                select=["RowKey", "Sequence", "Hash"],
            )
            for row in rows:
                chain = str(row["RowKey"]).split("|", 2)[2]
                sequence = int(row["Sequence"])
                if chain not in heads or heads[chain][0] < sequence:
                    heads[chain] = (sequence, str(row["Hash"]))
        if not heads:
            return 0
        previous = str(cursor["Mac"]) if cursor is not None else ""
        body = {"partition": partition, "at": now.astimezone(UTC).isoformat(), "previous": previous, "chains": heads}
        mac = _mac(self._keys.current, body)
        name = f"{partition}/{now:%Y/%m/%d/%H%M%S%f}-{os.urandom(3).hex()}.json"
        self._container.upload_blob(
            name, json.dumps({**body, "keyId": AuditKeys.key_id(self._keys.current), "mac": mac}), overwrite=False
        )
        minute = audit_chain.minute(now - _OVERLAP)
        table.upsert_entity(
            {"PartitionKey": partition, "RowKey": CURSOR, "Minute": minute, "Mac": mac, "Blob": name}, mode=UpdateMode.REPLACE
        )
        return len(heads)

    # Reading ------------------------------------------------------------------------------------------------------

    def anchors(self, partition: str, since: datetime) -> tuple[dict[str, Anchor], list[str]]:
        """The latest anchored head of each chain in checkpoints written since `since`, and problems with the
        checkpoints themselves (a MAC that does not verify)."""
        self._ensure()
        found: dict[str, Anchor] = {}
        problems: list[str] = []
        day = since.astimezone(UTC).date()
        names: list[str] = []
        for blob in self._container.list_blobs(name_starts_with=f"{partition}/"):
            stamp = blob.name[len(partition) + 1 :]
            try:
                blob_day = datetime.strptime(stamp[:10], "%Y/%m/%d").date()
            except ValueError:
                continue
            if blob_day >= day:
                names.append(blob.name)
        for name in sorted(names):
            body = json.loads(self._container.download_blob(name).readall())
            key = self._keys.find(str(body.get("keyId") or ""))
            stated = str(body.pop("mac", ""))
            body.pop("keyId", None)
            if key is None or not hmac.compare_digest(_mac(key, body), stated):
                problems.append(f"checkpoint {name} does not verify: it was altered, or its audit key is not configured")
                continue
            at = datetime.fromisoformat(body["at"])
            for chain, (sequence, hash_) in body["chains"].items():
                current = found.get(chain)
                if current is None or current.head.sequence <= sequence:
                    found[chain] = Anchor(chain, ChainHead(int(sequence), str(hash_)), at, name)
        return found, problems


def _mac(key: bytes, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
