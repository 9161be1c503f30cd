"""Reading a tenant's audit trail and verifying it: every chain in the tenant's partition is recomputed under the
audit key (edits, forgeries, gaps, reordering), its end is compared with the head its record carries and with the
heads anchored in checkpoints outside the table (entries cut from the end, chains deleted whole). Verification names
what was cut.

Entries written before chains were per grant live in table `<prefix>Audit` (one hash chain per tenant); they are
read and verified as they were written, under the tenant's GUID and its domain names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.data.tables import TableClient

from jit.adapters import audit_chain
from jit.adapters.audit_chain import AuditKeys, ChainHead
from jit.adapters.audit_store import TableAuditLog
from jit.adapters.checkpoints import CheckpointLog
from jit.domain.audit import AuditEntry


@dataclass(frozen=True)
class TrailEntry:
    chain: str
    sequence: int
    entry: AuditEntry
    hash: str
    prev_hash: str


@dataclass(frozen=True)
class Verification:
    intact: bool
    checked: int
    chains: int = 0
    problems: tuple[str, ...] = ()
    broken_at: str | None = None  # "<chain>#<sequence>" of the first problem

    @property
    def problem(self) -> str | None:
        return self.problems[0] if self.problems else None


@dataclass(frozen=True)
class AuditRead:
    entries: list[TrailEntry]
    verification: Verification
    legacy: list[TrailEntry] = field(default_factory=list)


class AuditTrail:
    def __init__(
        self,
        grants: TableClient,
        checkpoints: CheckpointLog,
        keys: AuditKeys,
        legacy: TableAuditLog | None = None,
    ) -> None:
        self._grants = grants
        self._checkpoints = checkpoints
        self._keys = keys
        self._legacy = legacy

    def read(self, partition: str, start: datetime, end: datetime, *, other_names: Iterable[str] = ()) -> AuditRead:
        """Entries with `start <= at <= end`, in time order, and the verification of every chain of the partition
        (and of the legacy chains kept under its names)."""
        rows = list(
            self._grants.query_entities(
                "PartitionKey eq @p and RowKey ge @low and RowKey lt @high",
                parameters={"p": partition, "low": audit_chain.ENTRY_PREFIX, "high": "~a}"},
            )
        )
        by_chain: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for row in rows:
            parsed = audit_chain.parse_entry_key(str(row["RowKey"]))
            if parsed is not None:
                by_chain[parsed[0]].append(row)
        heads = self._record_heads(partition)
        anchors, problems = self._checkpoints.anchors(partition, start)
        found: list[tuple[str, str]] = [(p, "") for p in problems]
        for chain, chain_rows in sorted(by_chain.items()):
            check = audit_chain.verify(chain, chain_rows, self._keys)
            if check.problem:
                found.append((check.problem, f"{chain}#{check.broken_at}"))
            found += _cut(chain, check.last, heads.get(chain), anchors.get(chain))
        for chain in sorted(set(anchors) - set(by_chain)):
            anchor = anchors[chain]
            when = f"{anchor.at:%Y-%m-%d %H:%M} UTC"
            found.append(
                (
                    f"chain {chain} is missing: entries 1-{anchor.head.sequence} were cut (a checkpoint of {when} recorded them)",
                    f"{chain}#1",
                )
            )
        for chain in sorted(set(heads) - set(by_chain)):
            if heads[chain].sequence:
                found.append((f"chain {chain} is missing: its record counts {heads[chain].sequence} entries", f"{chain}#1"))
        entries = [
            TrailEntry(chain, seq, audit_chain.entry_of(row), str(row.get("Hash") or ""), str(row.get("PrevHash") or ""))
            for chain, chain_rows in by_chain.items()
            for row in chain_rows
            if (parsed := audit_chain.parse_entry_key(str(row["RowKey"]))) is not None and (seq := parsed[1]) >= 0
        ]
        entries = sorted((e for e in entries if start <= e.entry.at <= end), key=lambda e: (e.entry.at, e.chain, e.sequence))
        legacy, legacy_problems, legacy_checked = self._legacy_read([partition, *other_names], start, end)
        found += [(p, "legacy") for p in legacy_problems]
        verification = Verification(
            intact=not found,
            checked=len(rows) + legacy_checked,
            chains=len(by_chain),
            problems=tuple(p for p, _ in found),
            broken_at=next((where for _, where in found if where), None),
        )
        return AuditRead(entries, verification, legacy)

    def _record_heads(self, partition: str) -> dict[str, ChainHead]:
        """The heads the records themselves carry: each grant's row, and each other chained record."""
        heads: dict[str, ChainHead] = {}
        rows = self._grants.query_entities(
            "PartitionKey eq @p and AuditHash ne ''",
            parameters={"p": partition},
            select=["RowKey", "Id", "AuditSequence", "AuditHash"],
        )
        for row in rows:
            key = str(row["RowKey"])
            head = ChainHead(int(row.get("AuditSequence") or 0), str(row.get("AuditHash") or ""))
            if row.get("Id"):
                heads[str(row["Id"])] = head
            elif key == "~p|current":
                heads["policy"] = head
            elif key.startswith("~m|"):
                heads[f"template:{key[3:]}"] = head
            elif key == "~r|registration":
                heads["registration"] = head
            elif key.startswith(audit_chain.HEAD_PREFIX):
                heads[key[len(audit_chain.HEAD_PREFIX) :]] = head
        return heads

    def _legacy_read(self, partitions: list[str], start: datetime, end: datetime) -> tuple[list[TrailEntry], list[str], int]:
        if self._legacy is None:
            return [], [], 0
        entries: list[TrailEntry] = []
        problems: list[str] = []
        checked = 0
        for name in dict.fromkeys(partitions):
            read = self._legacy.read(name, start, end)
            checked += read.verification.checked
            if not read.verification.intact:
                problems.append(f"legacy trail of {name}: {read.verification.problem}")
            entries += [TrailEntry(f"legacy:{name}", c.sequence, c.entry, c.hash, c.prev_hash) for c in read.entries]
        return entries, problems, checked


def _cut(chain: str, last: ChainHead, head: ChainHead | None, anchor: Any) -> list[tuple[str, str]]:
    """Whether entries were cut from the end of a chain: its record, or a checkpoint, counts more than it has."""
    found: list[tuple[str, str]] = []
    if head is not None and head.sequence > last.sequence:
        found.append(
            (
                f"entries {last.sequence + 1}-{head.sequence} of {chain} were cut: its record counts {head.sequence}",
                f"{chain}#{last.sequence + 1}",
            )
        )
    elif head is not None and head.sequence == last.sequence and head.hash != last.hash:
        found.append((f"the last entry of {chain} is not the one its record counts", f"{chain}#{last.sequence}"))
    if anchor is not None and anchor.head.sequence > last.sequence:
        when = f"{anchor.at:%Y-%m-%d %H:%M} UTC"
        found.append(
            (
                f"entries {last.sequence + 1}-{anchor.head.sequence} of {chain} were cut: a checkpoint of {when} recorded them",
                f"{chain}#{last.sequence + 1}",
            )
        )
    return found
