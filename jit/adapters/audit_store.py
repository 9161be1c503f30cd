"""The audit trail in Azure Table Storage: append-only and hash-chained, one partition per tenant.

Layout of a tenant's partition:
- RowKey `000000000001`, `000000000002`, …: the entries, keyed by a per-tenant sequence number (zero-padded, so the
  partition reads in append order and a deleted entry leaves a gap). Each holds `PrevHash` and
  `Hash = SHA-256(PrevHash + canonical JSON of its fields, sequence included)`.
- RowKey `~head` (sorts after every entry): the last sequence number and hash. It is what serializes appends from
  several function instances (every move is conditional on its ETag), and it is what shows a truncated tail.

Writes: the entry (`create`, never upsert, so no slot is ever overwritten) and the head's move (conditional on its
ETag) go in one entity-group transaction, so they commit together or not at all, in two round trips (read the head,
submit). An entry stored past the head without it (by an older writer that wrote the two separately and crashed in
between) makes the transaction fail on its slot; the append then moves the head past the entries it finds there
(keeping them, linked as they are) and tries again. So the head may lag the entries, never lead them.

What the chain detects: an entry edited (its hash no longer matches), deleted (a sequence gap) or replaced (the next
entry's PrevHash no longer matches), and the newest entries deleted (the head counts more than exist). Someone with
write access to the table who recomputes every later hash and the head is not detected by the chain alone; exporting
the head's hash elsewhere from time to time (or keying the hash with a secret) would close that.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from jit.domain.audit import AuditEntry
from jit.domain.errors import ConcurrencyConflict

HEAD_KEY = "~head"
GENESIS_HASH = "0" * 64
_SEQUENCE_WIDTH = 12
_SEQUENCE_KEY = re.compile(rf"^\d{{{_SEQUENCE_WIDTH}}}$")
# Losing a race costs one retry; with n concurrent appenders each round commits at least one of them.
MAX_APPEND_ATTEMPTS = 60


@dataclass(frozen=True)
class ChainedEntry:
    """An audit entry as stored: its place in the tenant's chain and the hashes that link it."""

    sequence: int
    entry: AuditEntry
    hash: str
    prev_hash: str


@dataclass(frozen=True)
class Verification:
    """The result of recomputing a tenant's chain: `broken_at` is the first sequence number where it breaks."""

    intact: bool
    checked: int
    broken_at: int | None = None
    problem: str | None = None


@dataclass(frozen=True)
class AuditRead:
    entries: list[ChainedEntry]
    verification: Verification


@dataclass(frozen=True)
class _Head:
    sequence: int
    hash: str
    etag: str | None  # None: no head stored yet


class TableAuditLog:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def append(self, entry: AuditEntry) -> None:
        """Add `entry` at the end of its tenant's chain; safe to call from any number of instances at once."""
        self.append_many([entry])

    def append_many(self, entries: list[AuditEntry]) -> None:
        """Add entries of one tenant in order, in one transaction (fewer round trips, and less contention on the
        chain's head than one append each). At most 99 entries: a transaction holds 100 operations."""
        tenants = list(dict.fromkeys(e.tenant_id for e in entries))
        if len(tenants) > 1 or len(entries) > 99:
            for tenant_id in tenants:
                own = [e for e in entries if e.tenant_id == tenant_id]
                for start in range(0, len(own), 99):
                    self._append_chunk(tenant_id, own[start : start + 99])
        elif entries:
            self._append_chunk(tenants[0], entries)

    def _append_chunk(self, tenant: str, entries: list[AuditEntry]) -> None:
        for attempt in range(MAX_APPEND_ATTEMPTS):
            head = self._head(tenant)
            entities: list[dict[str, Any]] = []
            previous = head.hash
            for offset, entry in enumerate(entries, start=1):
                entities.append(_to_entity(entry, head.sequence + offset, previous))
                previous = entities[-1]["Hash"]
            sequence = head.sequence + len(entries)
            moved = {"PartitionKey": tenant, "RowKey": HEAD_KEY, "Sequence": sequence, "Hash": previous}
            conditional = {"mode": UpdateMode.REPLACE, "etag": head.etag, "match_condition": MatchConditions.IfNotModified}
            head_write: Any = ("create", moved) if head.etag is None else ("update", moved, conditional)
            try:
                self._table.submit_transaction([*(("create", entity) for entity in entities), head_write])
            except TableTransactionError:
                # Another instance appended first (the head moved), or an entry sits past the head: move the head
                # past whatever is stored there, and take the next slot.
                self._catch_up(tenant, head)
                time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
                continue
            return
        raise ConcurrencyConflict(f"audit trail of {tenant} kept changing; gave up after {MAX_APPEND_ATTEMPTS} attempts")

    def entries(self, tenant_id: str) -> list[AuditEntry]:
        """Every entry of one tenant, oldest first (in append order)."""
        return [c.entry for c in _chained_entries(self._chain_rows(tenant_id))]

    def read(self, tenant_id: str, start: datetime, end: datetime) -> AuditRead:
        """The tenant's entries with `start <= at <= end`, in append order, and the verification of its whole chain
        (recomputed from the first entry, whatever the range, so that a break before the range is reported too)."""
        # The head first: it only moves after its entry exists, so every entry it counts must be in the scan that
        # follows, even while other instances append.
        head = self._head(tenant_id)
        rows = list(self._chain_rows(tenant_id))
        verification = verify_chain(rows, head.sequence if head.etag else 0, head.hash)
        return AuditRead([c for c in _chained_entries(rows) if start <= c.entry.at <= end], verification)

    def _chain_rows(self, tenant_id: str) -> Iterable[Any]:
        return self._table.query_entities("PartitionKey eq @t and RowKey lt @head", parameters={"t": tenant_id, "head": HEAD_KEY})

    def _head(self, tenant_id: str) -> _Head:
        try:
            head = self._table.get_entity(tenant_id, HEAD_KEY)
        except ResourceNotFoundError:
            return _Head(0, GENESIS_HASH, None)
        return _Head(int(head["Sequence"]), str(head["Hash"]), head.metadata["etag"])

    def _catch_up(self, tenant_id: str, head: _Head) -> None:
        """Move the head to the last entry stored after it (normally the one entry of a lost race or a crash)."""
        rows = self._table.query_entities(
            "PartitionKey eq @t and RowKey gt @after and RowKey lt @head",
            parameters={"t": tenant_id, "after": _row_key(head.sequence), "head": HEAD_KEY},
            select=["RowKey", "Hash"],
        )
        last = None
        for row in rows:
            if _sequence_of(row["RowKey"]) is not None:
                last = row
        if last is not None:
            self._move_head(tenant_id, head, int(last["RowKey"]), str(last.get("Hash") or ""))

    def _move_head(self, tenant_id: str, head: _Head, sequence: int, hash_: str) -> None:
        """Move the head from what was read to `sequence`; a no-op when somebody moved it meanwhile. The entry is
        committed already, and whoever moved the head moved it at least this far (it never moves backwards)."""
        moved = {"PartitionKey": tenant_id, "RowKey": HEAD_KEY, "Sequence": sequence, "Hash": hash_}
        try:
            if head.etag is None:
                self._table.create_entity(moved)
            else:
                self._table.update_entity(
                    moved, mode=UpdateMode.REPLACE, etag=head.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            pass


def verify_chain(rows: Iterable[Mapping[str, Any]], head_sequence: int, head_hash: str) -> Verification:
    """Recompute a chain from its first entry: the first sequence number where it breaks, and how."""
    checked = 0
    expected_sequence, expected_prev = 1, GENESIS_HASH
    hashes: dict[int, str] = {}
    broken: tuple[int, str] | None = None

    def note(sequence: int, problem: str) -> None:
        nonlocal broken
        broken = broken or (sequence, problem)

    for row in rows:
        checked += 1
        sequence = _sequence_of(row["RowKey"])
        if sequence is None:
            note(expected_sequence, f"an entity with key {row['RowKey']!r} is not part of the chain")
            continue
        if sequence != expected_sequence:
            missing = str(expected_sequence) if sequence == expected_sequence + 1 else f"{expected_sequence}-{sequence - 1}"
            note(expected_sequence, f"entry {missing} is missing (deleted)")
        elif row.get("PrevHash") != expected_prev:
            note(sequence, f"entry {sequence} does not follow entry {sequence - 1}: the one before it was replaced")
        stored = str(row.get("Hash") or "")
        if entry_hash(str(row.get("PrevHash") or ""), hashed_fields(row, sequence)) != stored:
            note(sequence, f"entry {sequence} was altered: its content does not match its hash")
        hashes[sequence] = stored
        expected_sequence, expected_prev = sequence + 1, stored
    last = expected_sequence - 1
    if head_sequence > last:
        note(last + 1, f"entries {last + 1}-{head_sequence} are missing: the trail ends at {last}, its head at {head_sequence}")
    elif head_sequence and hashes.get(head_sequence) != head_hash:
        note(head_sequence, f"entry {head_sequence} is not the one the head recorded")
    if broken is None:
        return Verification(True, checked)
    return Verification(False, checked, broken[0], broken[1])


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def hashed_fields(row: Mapping[str, Any], sequence: int) -> dict[str, Any]:
    """What an entry's hash covers, read back from its columns (a missing column hashes as null)."""
    at = row.get("At")
    return {
        "sequence": sequence,
        "at": _canonical_time(at) if isinstance(at, datetime) else at,
        "tenantId": row.get("PartitionKey"),
        "grantId": row.get("GrantId"),
        "actor": row.get("Actor"),
        "action": row.get("Action"),
        "outcome": row.get("Outcome"),
        "detail": row.get("Detail"),
    }


def _to_entity(entry: AuditEntry, sequence: int, prev_hash: str) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": entry.tenant_id,
        "RowKey": _row_key(sequence),
        "At": _utc(entry.at),
        "GrantId": entry.grant_id,
        "Actor": entry.actor,
        "Action": entry.action,
        "Outcome": entry.outcome,
        "Detail": entry.detail,
        "PrevHash": prev_hash,
    }
    entity["Hash"] = entry_hash(prev_hash, hashed_fields(entity, sequence))
    return entity


def _chained_entries(rows: Iterable[Mapping[str, Any]]) -> list[ChainedEntry]:
    """The rows that are chain entries (anything else in the partition is reported by verification, not served)."""
    return [_chained(r) for r in rows if _sequence_of(r["RowKey"]) is not None]


def _chained(row: Mapping[str, Any]) -> ChainedEntry:
    entry = AuditEntry(
        at=_utc(row["At"]),
        tenant_id=row["PartitionKey"],
        grant_id=row.get("GrantId") or "",
        actor=row.get("Actor") or "",
        action=row.get("Action") or "",
        outcome=row.get("Outcome") or "",
        detail=row.get("Detail") or "",
    )
    return ChainedEntry(int(row["RowKey"]), entry, str(row.get("Hash") or ""), str(row.get("PrevHash") or ""))


def _row_key(sequence: int) -> str:
    return f"{sequence:0{_SEQUENCE_WIDTH}d}"


def _sequence_of(row_key: str) -> int | None:
    return int(row_key) if _SEQUENCE_KEY.match(row_key) else None


def _utc(value: datetime) -> datetime:
    """Table timestamps come back as a datetime subclass; keep plain aware UTC datetimes."""
    return datetime.fromisoformat(value.isoformat()).astimezone(UTC)


def _canonical_time(value: datetime) -> str:
    # Microseconds: what Table Storage keeps of a datetime, so the hash survives the round trip.
    return _utc(value).isoformat(timespec="microseconds")
