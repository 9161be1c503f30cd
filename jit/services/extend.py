"""After an extension: directories that hold access on a schedule of their own (PIM) move its end too. Directories
without schedules answer "nothing to do"; the expiration saga ends their access at the grant's (new) end."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from jit.domain.grant import Grant, Status
from jit.services.access_backend import Account, BackendProvider, Item, ItemKind, OutcomeStatus, Unavailable, Window
from jit.services.audited_backend import WorkAudit
from jit.services.grant_writer import GrantWriter
from jit.services.retrying import RetryPolicy


@dataclass
class ExtensionSaga:
    writer: GrantWriter
    backends: BackendProvider
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    async def __call__(self, grant: Grant, work: WorkAudit) -> Grant:
        progress = grant.progress
        if grant.status is not Status.ACTIVE or progress.account is None or not progress.account.id:
            return grant
        items = [Item(ItemKind.ROLE, r.role_id, reference=r.reference) for r in progress.roles if r.state.made_here]
        items += [Item(ItemKind.GROUP, g.group_id) for g in progress.groups if g.state.made_here]
        if not items:
            return grant
        backend = self.backends.backend(grant.tenant_id, grant.request.directory)
        request = grant.request
        window = Window(grant.id, request.start, request.end, request.reason, request.ticket_id)
        account = Account(progress.account.id, progress.account.principal_name or "")
        outcomes = await self.retry.run(backend.extend, account, items, window)
        entries = work.drain()
        if entries:
            grant = await asyncio.to_thread(self.writer.update, grant.id, lambda g: (g, entries), grant.tenant_id)
        failed = [o for o in outcomes if o.status is OutcomeStatus.FAILED]
        if failed:
            raise failed[0].error or Unavailable(f"the end of grant {grant.id} could not be moved in the directory")
        return grant
