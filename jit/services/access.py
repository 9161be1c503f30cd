"""Taking away what a grant gave: shared by the saga's undo and by expiration. Every step is idempotent (an
object already gone counts as removed) and never touches what the grant did not make."""

from __future__ import annotations

import contextlib

from jit.domain.accounts import is_marked_for
from jit.domain.grant import Grant
from jit.services import progress
from jit.services.directory import Directory, NotFoundInDirectory
from jit.services.retrying import RetryPolicy


async def delete_created_user(directory: Directory, grant: Grant, retry: RetryPolicy) -> bool:
    """Delete the account this grant created; False (and nothing done) if the account is not marked as ours."""
    user = progress.user_of(grant)
    # A create still pending when a run died may have happened: its UPN finds it.
    key = user.get("id") or user.get("userPrincipalName")
    if not user.get("created") or not key:
        return True
    found = await retry.run(directory.find_user, key)
    if found is None:
        return True
    if not is_marked_for(found.employee_type, grant.id):
        return False
    with contextlib.suppress(NotFoundInDirectory):
        await retry.run(directory.delete_user, found.id)
    return True


async def remove_role_assignments(directory: Directory, grant: Grant, retry: RetryPolicy) -> None:
    user_id = progress.user_of(grant).get("id")
    ours = progress.made_by_grant(grant, "roles")
    if not user_id or not ours:
        return
    for assignment in await retry.run(directory.role_assignments, user_id):
        entry = ours.get(assignment.role_definition_id)
        if entry is None or assignment.directory_scope_id != "/":
            continue
        # A pending entry with an assignment that is not the one we recorded cannot be told apart from ours,
        # except by its id; recorded ids must match, unrecorded (pending) ones were made by this grant.
        if entry.get("assignmentId") not in (None, assignment.id):
            continue
        with contextlib.suppress(NotFoundInDirectory):
            await retry.run(directory.remove_role_assignment, assignment.id)


async def remove_group_memberships(directory: Directory, grant: Grant, retry: RetryPolicy) -> None:
    user_id = progress.user_of(grant).get("id")
    ours = progress.made_by_grant(grant, "groups")
    if not user_id or not ours:
        return
    member_of = await retry.run(directory.group_ids_of, user_id)
    for group_id in ours:
        if group_id in member_of:
            with contextlib.suppress(NotFoundInDirectory):
                await retry.run(directory.remove_member, group_id, user_id)


async def delete_issued_tap(directory: Directory, grant: Grant, retry: RetryPolicy) -> None:
    user_id = progress.user_of(grant).get("id")
    tap = grant.progress.get("tap") or {}
    if not user_id or tap.get("state") not in (progress.PENDING, progress.DONE):
        return
    for existing in await retry.run(directory.temporary_access_passes, user_id):
        if tap.get("id") in (None, existing.id):
            with contextlib.suppress(NotFoundInDirectory):
                await retry.run(directory.delete_temporary_access_pass, user_id, existing.id)
