"""Audit chains: each grant (and each other subject: a policy, a template, a tenant's registration) has its own
chain of entries, stored in the same table partition as the record it describes and written in the same transaction
as the change it records. There is no per-tenant head to fight over.

An entry's `Hash` is HMAC-SHA256 under the audit key (a secret outside the table) of the previous entry's hash and
the entry's canonical fields, so someone who can write to the table can neither edit an entry nor append one that
verifies. Each write also upserts a checkpoint-bucket row (`~c|<minute>|<chain>`: the chain's head after the write),
from which a timer anchors every changed chain's head in keyed checkpoints outside the table (`checkpoints.py`); those
are what show entries cut from the end of a chain, or a chain deleted whole.

Row keys in a partition: grants sort first (base32 ids); these rows all start with `~`, which sorts after them:
  ~a|<chain>|<sequence>   an entry
  ~c|<yyyymmddHHMM>|<chain>   the chain's head as of a write in that minute
  ~h|<chain>   the head of a chain whose record does not carry it (grant rows carry their own)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jit.domain.audit import AuditEntry

GENESIS = "0" * 64
ENTRY_PREFIX = "~a|"
BUCKET_PREFIX = "~c|"
HEAD_PREFIX = "~h|"
_SEQUENCE_WIDTH = 10
_ENTRY_KEY = re.compile(rf"^~a\|(?P<chain>.+)\|(?P<sequence>\d{{{_SEQUENCE_WIDTH}}})$")


@dataclass(frozen=True)
class AuditKeys:
    """The current key signs; every listed key verifies (rotation). Each entry names the key that signed it."""

    current: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)

    @staticmethod
    def key_id(key: bytes) -> str:
        return hashlib.sha256(b"jit-audit-key/" + key).hexdigest()[:8]

    def find(self, key_id: str) -> bytes | None:
        return next((k for k in (self.current, *self.previous) if self.key_id(k) == key_id), None)


@dataclass(frozen=True)
class ChainHead:
    sequence: int = 0
    hash: str = GENESIS


def entry_key(chain: str, sequence: int) -> str:
    return f"{ENTRY_PREFIX}{chain}|{sequence:0{_SEQUENCE_WIDTH}d}"


def chain_prefix(chain: str) -> str:
    return f"{ENTRY_PREFIX}{chain}|"


def bucket_key(at: datetime, chain: str) -> str:
    return f"{BUCKET_PREFIX}{minute(at)}|{chain}"


def minute(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d%H%M")


def head_key(chain: str) -> str:
    return f"{HEAD_PREFIX}{chain}"


def append(
    partition: str, chain: str, head: ChainHead, entries: Iterable[AuditEntry], keys: AuditKeys
) -> tuple[list[dict[str, Any]], ChainHead]:
    """The rows that add `entries` to `chain` after `head`, and the new head. Nothing is written here."""
    rows: list[dict[str, Any]] = []
    sequence, previous = head.sequence, head.hash
    key_id = keys.key_id(keys.current)
    for entry in entries:
        sequence += 1
        row: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": entry_key(chain, sequence),
            "At": entry.at.astimezone(UTC),
            "TenantId": entry.tenant_id,
            "GrantId": entry.grant_id,
            "Subject": entry.subject,
            "Actor": entry.actor,
            "Action": entry.action,
            "Outcome": entry.outcome,
            "Detail": entry.detail,
            "PrevHash": previous,
            "KeyId": key_id,
        }
        row["Hash"] = signature(keys.current, previous, hashed_fields(row, chain, sequence))
        previous = row["Hash"]
        rows.append(row)
    return rows, ChainHead(sequence, previous)


def bucket_row(partition: str, chain: str, head: ChainHead, at: datetime) -> dict[str, Any]:
    return {"PartitionKey": partition, "RowKey": bucket_key(at, chain), "Sequence": head.sequence, "Hash": head.hash}


def signature(key: bytes, previous: str, fields: Mapping[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, (previous + canonical).encode("utf-8"), hashlib.sha256).hexdigest()


def hashed_fields(row: Mapping[str, Any], chain: str, sequence: int) -> dict[str, Any]:
    """What an entry's signature covers, read back from its columns (a missing column signs as null). The chain and
    the sequence are part of it, so an entry moved to another place no longer verifies."""
    at = row.get("At")
    return {
        "chain": chain,
        "sequence": sequence,
        "partition": row.get("PartitionKey"),
        "at": _canonical_time(at) if isinstance(at, datetime) else at,
        "tenantId": row.get("TenantId"),
        "grantId": row.get("GrantId"),
        "subject": row.get("Subject"),
        "actor": row.get("Actor"),
        "action": row.get("Action"),
        "outcome": row.get("Outcome"),
        "detail": row.get("Detail"),
    }


def parse_entry_key(row_key: str) -> tuple[str, int] | None:
    match = _ENTRY_KEY.match(row_key)
    return (match["chain"], int(match["sequence"])) if match else None


def entry_of(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        at=_utc(row["At"]),
        tenant_id=str(row.get("TenantId") or ""),
        grant_id=str(row.get("GrantId") or ""),
        actor=str(row.get("Actor") or ""),
        action=str(row.get("Action") or ""),
        outcome=str(row.get("Outcome") or ""),
        detail=str(row.get("Detail") or ""),
        subject=str(row.get("Subject") or ""),
    )


@dataclass(frozen=True)
class ChainCheck:
    """One chain recomputed: how far it goes, and the first problem found (None when intact)."""

    chain: str
    last: ChainHead
    count: int
    problem: str | None = None
    broken_at: int | None = None


def verify(chain: str, rows: Iterable[Mapping[str, Any]], keys: AuditKeys) -> ChainCheck:
    """Recompute one chain from its first entry, rows in key order: edits, forgeries, gaps and reordering."""
    expected, previous = 1, GENESIS
    count = 0
    problem: tuple[int, str] | None = None
    for row in rows:
        parsed = parse_entry_key(str(row["RowKey"]))
        if parsed is None or parsed[0] != chain:
            continue
        sequence = parsed[1]
        count += 1
        if problem is None:
            if sequence != expected:
                cut = str(expected) if sequence == expected + 1 else f"{expected}-{sequence - 1}"
                problem = (expected, f"entries {cut} of {chain} are missing (deleted)")
            elif row.get("PrevHash") != previous:
                problem = (sequence, f"entry {sequence} of {chain} does not follow entry {sequence - 1} (replaced or reordered)")
            else:
                key = keys.find(str(row.get("KeyId") or ""))
                stored = str(row.get("Hash") or "")
                if key is None:
                    problem = (sequence, f"entry {sequence} of {chain} names an audit key that is not configured")
                elif not hmac.compare_digest(signature(key, previous, hashed_fields(row, chain, sequence)), stored):
                    problem = (sequence, f"entry {sequence} of {chain} was altered or forged: its signature does not match")
        expected, previous = sequence + 1, str(row.get("Hash") or "")
    last = ChainHead(expected - 1, previous)
    if problem is None:
        return ChainCheck(chain, last, count)
    return ChainCheck(chain, last, count, problem[1], problem[0])


def _utc(value: datetime) -> datetime:
    return datetime.fromisoformat(value.isoformat()).astimezone(UTC)


def _canonical_time(value: datetime) -> str:
    # Microseconds: what Table Storage keeps of a datetime, so the signature survives the round trip.
    return _utc(value).isoformat(timespec="microseconds")


def chained_record(
    partition: str,
    row_key: str,
    record: dict[str, Any],
    chain: str,
    head: ChainHead,
    entries: list[AuditEntry],
    keys: AuditKeys,
    etag: str | None,
) -> tuple[list[Any], ChainHead]:
    """Transaction operations that store a record (which carries its chain's head in `AuditSequence`/`AuditHash`)
    together with the audit entries of its change: create when `etag` is None, else replace if unchanged."""
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    rows, new_head = append(partition, chain, head, entries, keys)
    entity = {
        **record,
        "PartitionKey": partition,
        "RowKey": row_key,
        "AuditSequence": new_head.sequence,
        "AuditHash": new_head.hash,
    }
    if etag is None:
        operations: list[Any] = [("create", entity)]
    else:
        operations = [
            ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified})
        ]
    operations += [("create", row) for row in rows]
    if rows:
        at = max(e.at for e in entries)
        operations.append(("upsert", bucket_row(partition, chain, new_head, at), {"mode": UpdateMode.REPLACE}))
    return operations, new_head


def commit_record(
    table: Any,
    partition: str,
    row_key: str,
    record: dict[str, Any],
    chain: str,
    existing: Any,
    entries: list[AuditEntry],
    keys: AuditKeys,
    *,
    conflict: str,
    extra: Sequence[Any] = (),
) -> list[Any]:
    """Store a record and the audit entries of its change in one transaction (`chained_record`), conditional on the
    `existing` row as it was read (None: it must not exist yet), with `extra` operations of the same partition.
    Somebody else's change meanwhile is a Conflict saying `conflict`."""
    from azure.data.tables import TableTransactionError

    from jit.domain.errors import Conflict

    etag = existing.metadata["etag"] if existing is not None else None
    operations, _ = chained_record(partition, row_key, record, chain, head_of(existing), entries, keys, etag)
    operations += list(extra)
    try:
        results: list[Any] = table.submit_transaction(operations)
    except TableTransactionError as failed:
        if failed.status_code in (409, 412):
            raise Conflict(conflict) from None
        raise
    return results


def head_of(entity: Mapping[str, Any] | None) -> ChainHead:
    """The chain head a record carries (a record without one starts a chain)."""
    if entity is None or not entity.get("AuditHash"):
        return ChainHead()
    return ChainHead(int(entity.get("AuditSequence") or 0), str(entity["AuditHash"]))
