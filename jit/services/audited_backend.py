"""Every directory write is audited: which write, for which grant, each item's outcome, and the directory's request
id when it gave one. The writes are listed here one by one (a new write on the port is not audited until it is
added here, and the type checker says so: `AuditedBackend` implements the whole port explicitly).

Entries are not written on their own: they wait in the grant's `WorkAudit` and go out with the grant's next saved
change, in the same transaction, so the record of a write and the grant's record of it cannot disagree.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from jit.domain.audit import AuditEntry
from jit.domain.clock import Clock
from jit.services.access_backend import (
    AccessBackend,
    Account,
    AccountEnd,
    BackendProvider,
    Catalog,
    DirectoryError,
    DirectoryFacts,
    Health,
    Holdings,
    Item,
    Need,
    NewAccount,
    Outcome,
    OutcomeStatus,
    Survey,
    Window,
)

SYSTEM = "system"


@dataclass
class WorkAudit:
    """Audit entries of directory writes made for one grant, waiting for the grant's next save."""

    tenant_id: str
    grant_id: str
    entries: list[AuditEntry] = field(default_factory=list)

    def drain(self) -> list[AuditEntry]:
        drained, self.entries = self.entries, []
        return drained


_current: contextvars.ContextVar[WorkAudit | None] = contextvars.ContextVar("jit_work_audit", default=None)


@contextmanager
def working_on(tenant_id: str, grant_id: str) -> Iterator[WorkAudit]:
    audit = WorkAudit(tenant_id, grant_id)
    token = _current.set(audit)
    try:
        yield audit
    finally:
        _current.reset(token)


def current_work() -> WorkAudit | None:
    return _current.get()


class AuditedBackends:
    """Wraps each backend a provider gives in `AuditedBackend`. Writes made outside a grant's work (none today)
    go to `elsewhere` at once."""

    def __init__(self, inner: BackendProvider, clock: Clock, elsewhere: Callable[[list[AuditEntry]], None]) -> None:
        self._inner = inner
        self._clock = clock
        self._elsewhere = elsewhere

    def backend(self, tenant_id: str, directory: str) -> AccessBackend:
        return AuditedBackend(self._inner.backend(tenant_id, directory), self._clock, tenant_id, self._elsewhere)

    def serves(self, directory: str) -> bool:
        return self._inner.serves(directory)


class AuditedBackend:
    kind: ClassVar[str] = "audited"

    def __init__(self, inner: AccessBackend, clock: Clock, tenant_id: str, elsewhere: Callable[[list[AuditEntry]], None]) -> None:
        self._inner = inner
        self._clock = clock
        self._tenant = tenant_id
        self._elsewhere = elsewhere

    @property
    def inner(self) -> AccessBackend:
        return self._inner

    # Reads pass through, each named.

    async def describe(self) -> DirectoryFacts:
        return await self._inner.describe()

    async def survey(self, need: Need) -> Survey:
        return await self._inner.survey(need)

    async def find_account(self, key: str) -> Account | None:
        return await self._inner.find_account(key)

    async def holdings(self, account_key: str, *, recycle_bin: bool = False) -> Holdings:
        return await self._inner.holdings(account_key, recycle_bin=recycle_bin)

    async def catalog(self, group_search: str = "") -> Catalog:
        return await self._inner.catalog(group_search)

    async def marked_accounts(self, prefix: str) -> list[Account]:
        return await self._inner.marked_accounts(prefix)

    async def health(self) -> Health | None:
        return await self._inner.health()

    # Writes are recorded.

    async def create_account(self, account: NewAccount) -> Account:
        try:
            created = await self._inner.create_account(account)
        except DirectoryError as error:
            self._record("account.create", "failure", f"{account.principal_name}: {_failure(error)}")
            raise
        self._record("account.create", "success", f"{account.principal_name} ({created.id}), marked {account.marker}")
        return created

    async def grant(self, account: Account, items: Sequence[Item], window: Window) -> list[Outcome]:
        return await self._recorded("access.grant", account, items, lambda: self._inner.grant(account, items, window))

    async def extend(self, account: Account, items: Sequence[Item], window: Window) -> list[Outcome]:
        outcomes = await self._recorded("access.extend", account, items, lambda: self._inner.extend(account, items, window))
        return outcomes

    async def take_away(
        self, account: Account, items: Sequence[Item], *, end: AccountEnd | None = None, new_password: str | None = None
    ) -> list[Outcome]:
        action = "access.remove" + (f"+account.{end.value}" if end else "")
        return await self._recorded(
            action, account, items, lambda: self._inner.take_away(account, items, end=end, new_password=new_password)
        )

    async def _recorded(
        self, action: str, account: Account, items: Sequence[Item], write: Callable[..., object]
    ) -> list[Outcome]:
        try:
            outcomes: list[Outcome] = await write()  # type: ignore[misc]
        except DirectoryError as error:
            self._record(action, "failure", f"{account.principal_name or account.id}: {_failure(error)}")
            raise
        failed = any(o.status is OutcomeStatus.FAILED for o in outcomes)
        parts = [_described(o) for o in outcomes]
        detail = f"{account.principal_name or account.id} ({self._inner.kind}): " + "; ".join(parts)
        self._record(action, "failure" if failed else "success", detail)
        return outcomes

    def _record(self, action: str, outcome: str, detail: str) -> None:
        work = _current.get()
        entry = AuditEntry(
            self._clock.now(),
            self._tenant,
            work.grant_id if work else "",
            SYSTEM,
            f"directory.{action}",
            outcome,
            detail[:8000],
            subject="" if work else "directory",
        )
        if work is not None:
            work.entries.append(entry)
        else:
            self._elsewhere([entry])


def _described(outcome: Outcome) -> str:
    item = outcome.item
    # Never a credential's value: only that one was issued, and its id.
    text = f"{item.kind.value} {item.key}: {outcome.status.value}"
    if outcome.reference:
        text += f" (id {outcome.reference})"
    if outcome.error is not None:
        text += f" {_failure(outcome.error)}"
    return text


def _failure(error: DirectoryError) -> str:
    return f"{error.code or type(error).__name__}" + (f" (request-id {error.request_id})" if error.request_id else "")
