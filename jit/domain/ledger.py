"""The access ledger of an existing account: which live grants rely on each role and group membership it holds,
and whether a grant made it or it was there before any grant.

Two grants may give one account the same role. The role is taken away only when the last grant that needs it ends,
and never when it was there before any grant. Every grant that touches the account updates the ledger in the same
transaction as its own progress (same partition, conditional on both ETags), so two grants starting and ending at
once cannot both conclude "someone else still needs it" or "nobody needs it".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class Origin(StrEnum):
    PREEXISTING = "preexisting"  # the account had it before any grant: never removed
    GRANT = "grant"  # a grant added it: removed when its last holder ends


@dataclass(frozen=True)
class LedgerEntry:
    origin: Origin
    holders: tuple[str, ...] = ()  # grant ids relying on it
    reference: str | None = None  # the directory's id of it (a role assignment id)
    removing: str | None = None  # the grant taking it away right now (others wait until it is gone)


@dataclass(frozen=True)
class Ledger:
    account_id: str
    entries: dict[str, LedgerEntry] = field(default_factory=dict)
    etag: str | None = None  # None: not stored yet

    @staticmethod
    def key(kind: str, item_id: str) -> str:
        return f"{kind}:{item_id.lower()}"

    def entry(self, key: str) -> LedgerEntry | None:
        return self.entries.get(key)

    def with_entry(self, key: str, entry: LedgerEntry | None) -> Ledger:
        entries = dict(self.entries)
        if entry is None:
            entries.pop(key, None)
        else:
            entries[key] = entry
        return replace(self, entries=entries)

    def others(self, key: str, grant_id: str, live: frozenset[str] | None = None) -> tuple[str, ...]:
        """The other grants holding `key` (only those in `live`, when given)."""
        entry = self.entries.get(key)
        if entry is None:
            return ()
        return tuple(h for h in entry.holders if h != grant_id and (live is None or h in live))

    def join(self, key: str, grant_id: str, origin: Origin, reference: str | None = None) -> Ledger:
        entry = self.entries.get(key) or LedgerEntry(origin)
        holders = entry.holders if grant_id in entry.holders else (*entry.holders, grant_id)
        return self.with_entry(key, replace(entry, holders=holders, reference=reference or entry.reference))

    def leave(self, key: str, grant_id: str) -> Ledger:
        entry = self.entries.get(key)
        if entry is None:
            return self
        holders = tuple(h for h in entry.holders if h != grant_id)
        if not holders and entry.removing is None:
            return self.with_entry(key, None)
        return self.with_entry(key, replace(entry, holders=holders))


@dataclass(frozen=True)
class LedgerWrite:
    """A ledger as it was read (its ETag) and as it should be stored, written with the grant's change."""

    before: Ledger
    after: Ledger
