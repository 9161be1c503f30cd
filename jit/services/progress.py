"""What the provisioning saga has done for a grant, kept on the grant so any later run can resume or undo it.

Intent is written before each Graph write ("assigning", "adding", "creating") and the outcome after it, so that
after a crash between the two the next run can tell an object this grant made from one that was already there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jit.domain.grant import Grant

# Role and group entry states.
PREEXISTING = "preexisting"  # was there before the grant: never removed by it
PENDING = "pending"  # this grant is about to add it
DONE = "done"  # this grant added it


def user_of(grant: Grant) -> dict[str, Any]:
    return dict(grant.progress.get("user") or {})


def entries(grant: Grant, kind: str) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in (grant.progress.get(kind) or {}).items()}


def with_progress(grant: Grant, **parts: Any) -> Grant:
    """The grant with some progress parts replaced (None removes a part)."""
    progress = dict(grant.progress)
    for key, value in parts.items():
        if value is None:
            progress.pop(key, None)
        else:
            progress[key] = value
    return replace(grant, progress=progress)


def made_by_grant(grant: Grant, kind: str) -> dict[str, dict[str, Any]]:
    """Entries this grant added, or may have added (pending when it stopped): what removal must take away."""
    return {k: v for k, v in entries(grant, kind).items() if v.get("state") in (PENDING, DONE)}
