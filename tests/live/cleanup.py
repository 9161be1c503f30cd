"""Removing what the live suite created: after every run (a finalizer, even when a test failed), and on demand for
what interrupted runs left behind (`scripts/test-live --cleanup-only`).

Everything the suite creates carries a display name starting with the run's id (`jitlive-<time>-<hex>`), users
the product creates for it included (the suite names them). A sweep finds objects by that prefix, so it never
touches anything else in the tenant: role assignments go first (an account that holds a role is a "privileged
user" whose deletion needs more than a Graph permission), then users, then the soft-deleted users are purged,
then groups.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .config import MARKER_PREFIX, LiveSetupError, live_tenant
from .graph import GRAPH_BASE_URL, CertificateTokens, DirectoryApi, GraphClient, GraphError

log = logging.getLogger(__name__)


@dataclass
class Swept:
    role_assignments: int = 0
    users: int = 0
    purged: int = 0
    groups: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def found_nothing(self) -> bool:
        return not (self.role_assignments or self.users or self.purged or self.groups or self.failures)

    def add(self, other: Swept) -> None:
        self.role_assignments += other.role_assignments
        self.users += other.users
        self.purged += other.purged
        self.groups += other.groups

    def __str__(self) -> str:
        text = (
            f"{self.role_assignments} role assignments, {self.users} users, {self.purged} deleted users purged, "
            f"{self.groups} groups"
        )
        return text + (f"; {len(self.failures)} failures: " + "; ".join(self.failures) if self.failures else "")


def sweep(api: DirectoryApi, prefix: str, *, purge: bool = True) -> Swept:
    """Remove every user and group whose display name starts with `prefix` (a run id, or the marker for all runs)."""
    if not prefix.startswith(MARKER_PREFIX):
        raise ValueError(f"refusing to sweep {prefix!r}: only names starting with {MARKER_PREFIX!r} are the suite's")
    swept = Swept()
    users = api.users_named(prefix)
    for user in users:
        for assignment in api.role_assignments(str(user["id"])):
            swept.role_assignments += _try(swept, api, f"/roleManagement/directory/roleAssignments/{assignment['id']}")
    for user in users:
        swept.users += _try(swept, api, f"/users/{user['id']}")
    if purge:
        for deleted in api.deleted_users_named(prefix):
            swept.purged += _try(swept, api, f"/directory/deletedItems/{deleted['id']}")
    for group in api.groups_named(prefix):
        swept.groups += _try(swept, api, f"/groups/{group['id']}")
    return swept


def sweep_until_clean(api: DirectoryApi, prefix: str, *, timeout_s: float, interval_s: float) -> Swept:
    """Sweep again until a sweep finds nothing: a user deleted a moment ago reaches deleted items (to be purged)
    only after replication, and a role that was just removed may still block its holder's deletion."""
    total = Swept()
    deadline = time.monotonic() + timeout_s
    for attempt in itertools.count(1):
        swept = sweep(api, prefix)
        total.add(swept)
        if swept.found_nothing:
            break
        if attempt >= 2 and time.monotonic() >= deadline:
            total.failures = swept.failures or [f"objects named {prefix}* were still being found when time ran out"]
            break
        time.sleep(interval_s)
    return total


def _try(swept: Swept, api: DirectoryApi, path: str) -> int:
    try:
        return 1 if api.remove(path) else 0
    except GraphError as error:  # keep going: one refusal must not leave the rest behind
        swept.failures.append(str(error))
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tests.live.cleanup`: sweep every earlier run's leftovers from the live tenant."""
    import os

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        tenant = live_tenant(os.environ)
    except LiveSetupError as error:
        print(f"cleanup: {error}", file=sys.stderr)
        return 2
    if tenant is None:
        print("cleanup: simulator mode (no JIT_LIVE_* variables): the simulator forgets everything when it stops; nothing to clean")
        return 0
    graph = GraphClient(GRAPH_BASE_URL, CertificateTokens(tenant))
    try:
        swept = sweep_until_clean(DirectoryApi(graph), MARKER_PREFIX, timeout_s=180, interval_s=15)
    finally:
        graph.close()
    print(f"cleanup: tenant {tenant.tenant}: removed {swept}")
    return 1 if swept.failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
