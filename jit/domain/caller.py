"""Who is asking, and what their app roles let them do."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class AppRole(StrEnum):
    REQUESTER = "Jit.Requester"
    APPROVER = "Jit.Approver"
    ADMIN = "Jit.Admin"


@dataclass(frozen=True)
class Caller:
    """A signed-in principal (App Service Authentication), or the service identity a function key stands for."""

    id: str
    name: str
    roles: frozenset[AppRole] = field(default_factory=frozenset)
    # With a function key, the person a flow or script says it acts for: recorded, never trusted for decisions.
    asserted_for: str | None = None

    def has(self, *roles: AppRole) -> bool:
        return bool(self.roles & set(roles))

    @property
    def is_admin(self) -> bool:
        return AppRole.ADMIN in self.roles

    @property
    def actor(self) -> str:
        """How the caller appears in history and audit."""
        return f"{self.name} (for {self.asserted_for}, asserted)" if self.asserted_for else self.name
