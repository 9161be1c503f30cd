"""Many grants stored as the product stores them (each with its audit chain), for tests and benchmarks at scale."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

from jit.adapters.schedule_store import _to_entity as schedule_entity
from jit.bootstrap import Services
from jit.domain.grant import Grant, Status
from jit.domain.ids import new_grant_id
from jit.domain.request import ExpirationAction, GrantRequest, TapSettings, UserKind, UserSpec
from jit.domain.work import ScheduleItem, Step, WorkItem


def active_grants(services: Services, tenant: str, count: int, *, now: datetime, ends_in: timedelta) -> list[Grant]:
    """`count` Active grants of one tenant with their end wake-ups, as activation would have left them."""
    grants = []
    for i in range(count):
        request = GrantRequest(
            tenant_id=tenant,
            user=UserSpec(UserKind.NEW, display_name=f"Bulk {i}"),
            start=now - timedelta(hours=1),
            end=now + ends_in,
            roles=("Exchange Administrator",),
            groups=(),
            reason="bulk grant for scale tests",
            expiration_actions=(ExpirationAction.DELETE_USER,),
            tap=TapSettings(enabled=False),
        )
        grant = Grant.open(new_grant_id(now + timedelta(microseconds=i)), request, now=now, actor="bulk", needs_approval=False)
        grants.append(replace(grant, status=Status.ACTIVE))
    with ThreadPoolExecutor(max_workers=16) as pool:  # Azurite answers each add in milliseconds; many at once
        stored = list(pool.map(services.grants.add, grants))
    schedule = services.storage.table(services.settings.schedule_table)
    for start in range(0, count, 100):
        items = [ScheduleItem(g.request.end, WorkItem(tenant, g.id, Step.EXPIRE)) for g in stored[start : start + 100]]
        schedule.submit_transaction([("upsert", schedule_entity(i)) for i in items])
    return stored
