"""Every Graph write is an audit entry: which write, for which grant, its outcome, and Graph's request id when Graph
gave one (failures carry it). The grant a write is for travels in a context variable set by the worker, so the
directory itself stays unaware of grants."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from jit.domain.clock import Clock
from jit.domain.work import AuditEntry
from jit.services.directory import (
    AddMember,
    AssignRole,
    CreateTap,
    Directory,
    DirectoryError,
    DirectoryProvider,
    Write,
    WriteResult,
)
from jit.services.ports import AuditLog

T = TypeVar("T")
SYSTEM = "system"

_grant: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("jit_grant", default=None)


@contextmanager
def working_on(tenant_id: str, grant_id: str) -> Iterator[None]:
    token = _grant.set((tenant_id, grant_id))
    try:
        yield
    finally:
        _grant.reset(token)


class AuditedDirectories:
    def __init__(self, inner: DirectoryProvider, audit: AuditLog, clock: Clock) -> None:
        self._inner = inner
        self._audit = audit
        self._clock = clock

    def for_tenant(self, tenant: str) -> Directory:
        return AuditedDirectory(self._inner.for_tenant(tenant), self._audit, self._clock, tenant)


class AuditedDirectory:
    """Reads pass through; writes are recorded."""

    def __init__(self, inner: Directory, audit: AuditLog, clock: Clock, tenant: str) -> None:
        self._inner = inner
        self._audit = audit
        self._clock = clock
        self._tenant = tenant

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _recorded(self, action: str, detail: str, operation: Callable[..., Awaitable[T]], *args: Any) -> T:
        try:
            result = await operation(*args)
        except DirectoryError as error:
            await self._record(action, "failure", f"{detail}: {error.code or type(error).__name__}", error.request_id)
            raise
        await self._record(action, "success", detail, "")
        return result

    async def _record(self, action: str, outcome: str, detail: str, request_id: str) -> None:
        await asyncio.to_thread(self._audit.append, self._entry(action, outcome, detail, request_id))

    def _entry(self, action: str, outcome: str, detail: str, request_id: str) -> AuditEntry:
        tenant, grant_id = _grant.get() or (self._tenant, "")
        suffix = f" (Graph request-id {request_id})" if request_id else ""
        return AuditEntry(self._clock.now(), tenant, grant_id, SYSTEM, f"graph.{action}", outcome, detail + suffix)

    async def create_user(self, user: Any) -> Any:
        return await self._recorded("user.create", user.user_principal_name, self._inner.create_user, user)

    async def delete_user(self, user_id: str) -> None:
        await self._recorded("user.delete", user_id, self._inner.delete_user, user_id)

    async def purge_deleted_user(self, user_id: str) -> None:
        await self._recorded("user.purge", user_id, self._inner.purge_deleted_user, user_id)

    async def disable_user(self, user_id: str, new_password: str) -> None:
        await self._recorded(
            "user.disable", f"{user_id}: disabled, password rotated", lambda: self._inner.disable_user(user_id, new_password)
        )

    async def revoke_sign_in_sessions(self, user_id: str) -> None:
        await self._recorded("user.revoke-sessions", user_id, self._inner.revoke_sign_in_sessions, user_id)

    async def remove_role_assignment(self, assignment_id: str) -> None:
        await self._recorded("role-assignment.delete", assignment_id, self._inner.remove_role_assignment, assignment_id)

    async def remove_member(self, group_id: str, member_id: str) -> None:
        await self._recorded(
            "group-member.remove", f"{member_id} from {group_id}", lambda: self._inner.remove_member(group_id, member_id)
        )

    async def delete_temporary_access_pass(self, user_id: str, tap_id: str) -> None:
        await self._recorded(
            "tap.delete", f"{tap_id} of {user_id}", lambda: self._inner.delete_temporary_access_pass(user_id, tap_id)
        )

    async def apply(self, writes: list[Write]) -> list[WriteResult]:
        results = await self._inner.apply(writes)
        entries = []
        for result in results:
            action, detail = _describe(result.write)
            error = result.error
            outcome = "success" if error is None else "failure"
            if error is not None:
                detail = f"{detail}: {error.code or type(error).__name__}"
            # Never the TAP value: only that one was issued, and its id.
            if result.tap is not None:
                detail = f"{detail}, id {result.tap.id}"
            entries.append(self._entry(action, outcome, detail, error.request_id if error else ""))
        # One write for the whole batch: every Graph write is its own entry, appended together.
        await asyncio.to_thread(self._audit.append_many, entries)
        return results


def _describe(write: Write) -> tuple[str, str]:
    if isinstance(write, AssignRole):
        return "role-assignment.create", f"role {write.role_definition_id} to {write.principal_id}"
    if isinstance(write, AddMember):
        return "group-member.add", f"{write.member_id} to {write.group_id}"
    assert isinstance(write, CreateTap)
    return "tap.create", f"for {write.user_id}, {write.lifetime_in_minutes} minutes"
