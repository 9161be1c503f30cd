"""A sweep over thousands of stored grants of which a few are due reads only the due ones."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from jit.adapters.grant_store import _to_entity
from jit.adapters.schedule_store import _to_entity as schedule_entity
from jit.domain.grant import Grant, Status
from jit.domain.ids import new_grant_id
from jit.domain.request import ExpirationAction, GrantRequest, TapSettings, UserKind, UserSpec
from jit.domain.work import ScheduleItem, Step, WorkItem
from tests.conftest import TENANT, Stack


def stored_grants(stack: Stack, count: int, *, ends_in: timedelta) -> list[Grant]:
    """`count` Active grants written straight into the tables (100 to a transaction), with their end wake-ups."""
    now = stack.clock.now()
    grants = []
    for i in range(count):
        request = GrantRequest(
            tenant_id=TENANT,
            user=UserSpec(UserKind.NEW, display_name=f"Bulk {i}"),
            start=now - timedelta(hours=1),
            end=now + ends_in,
            roles=("Exchange Administrator",),
            groups=(),
            reason="bulk grant for the sweep test",
            expiration_actions=(ExpirationAction.DELETE_USER,),
            tap=TapSettings(enabled=False),
        )
        grant = Grant.open(new_grant_id(now + timedelta(milliseconds=i)), request, now=now, actor="test", needs_approval=False)
        grants.append(replace(grant, status=Status.ACTIVE))
    settings = stack.services.settings
    table = stack.services.storage.table(settings.grants_table)
    schedule = stack.services.storage.table(settings.schedule_table)
    for start in range(0, count, 100):
        chunk = grants[start : start + 100]
        table.submit_transaction([("create", _to_entity(g)) for g in chunk])
        items = [ScheduleItem(g.request.end, WorkItem(TENANT, g.id, Step.EXPIRE)) for g in chunk]
        schedule.submit_transaction([("upsert", schedule_entity(i)) for i in items])
    return grants


def test_the_sweep_reads_only_what_is_due(stack: Stack) -> None:
    stored_grants(stack, 3000, ends_in=timedelta(hours=4))
    due = stored_grants(stack, 5, ends_in=timedelta(minutes=-2))
    reads: list[str] = []
    repository = stack.services.grants
    original_get = repository.get

    def counting_get(grant_id: str, tenant_id: str | None = None) -> Any:
        reads.append(grant_id)
        return original_get(grant_id, tenant_id)

    repository.get = counting_get  # type: ignore[method-assign]
    pages: list[int] = []
    schedule_table = stack.services.lifecycle.schedule._table  # type: ignore[attr-defined]
    original_query = schedule_table.query_entities

    def counting_query(*args: Any, **kwargs: Any) -> Any:
        kwargs["raw_response_hook"] = lambda response: pages.append(1)
        return original_query(*args, **kwargs)

    schedule_table.query_entities = counting_query
    result = stack.services.lifecycle.sweep()
    assert (result.due, result.enqueued) == (5, 5)
    assert sorted(reads) == sorted(g.id for g in due)  # one point read per due grant, none for the 3000 others
    assert len(pages) == 1
    assert stack.queued() == 5
