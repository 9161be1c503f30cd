"""Drift: a difference between what the directory holds and what the grants explain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DriftKind(StrEnum):
    ROLE_REMOVED = "RoleRemovedOutOfBand"  # an active grant's role is gone
    ROLE_ADDED = "RoleAddedOutOfBand"  # a JIT account holds a role its grant did not give
    GROUP_REMOVED = "GroupMembershipRemovedOutOfBand"
    ACCOUNT_MISSING = "ActiveGrantAccountMissing"
    ENDED_ACCESS_BACK = "EndedGrantAccessPresent"  # an ended grant's account is back, enabled, or holds its roles
    ORPHANED_ACCOUNT = "JitAccountWithoutGrant"  # a JIT-marked account no grant explains
    # The directory could not be checked: it refused or could not be reached (an on-premises agent that stopped
    # reporting, say). Its grants can be neither provisioned nor ended until it answers again.
    DIRECTORY_UNREACHABLE = "DirectoryUnreachable"


@dataclass(frozen=True)
class DriftFinding:
    tenant_id: str
    kind: DriftKind
    found_at: datetime
    detail: str
    grant_id: str = ""
    user_id: str = ""
    remediated: bool = False
