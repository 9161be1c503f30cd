"""Who is asking, and what their app roles let them do."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class AppRole(StrEnum):
    REQUESTER = "Jit.Requester"
    APPROVER = "Jit.Approver"
    ADMIN = "Jit.Admin"


class CallerKind(StrEnum):
    PERSON = "person"  # signed in with Entra ID (a delegated token): identity is their object id
    APPLICATION = "application"  # an app with its own Entra ID token (client credentials)
    SERVICE_KEY = "service-key"  # a machine with a function key: one configured service identity


@dataclass(frozen=True)
class Caller:
    """A signed-in person, an application, or the service identity a function key stands for."""

    id: str  # the object id (people, applications), or "service:<name>" for a function key
    name: str  # for display only; never for decisions
    roles: frozenset[AppRole] = field(default_factory=frozenset)
    kind: CallerKind = CallerKind.PERSON
    # With a function key, the person a flow or script says it acts for: recorded, never trusted for decisions.
    asserted_for: str | None = None

    def has(self, *roles: AppRole) -> bool:
        return bool(self.roles & set(roles))

    @property
    def is_admin(self) -> bool:
        return AppRole.ADMIN in self.roles

    @property
    def is_person(self) -> bool:
        return self.kind is CallerKind.PERSON

    @property
    def actor(self) -> str:
        """How the caller appears in history and audit."""
        return f"{self.name} (for {self.asserted_for}, asserted)" if self.asserted_for else self.name
