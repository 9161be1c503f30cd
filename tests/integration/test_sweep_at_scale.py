"""A sweep over thousands of stored grants of which a few are due reads only the due ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from devstack.bulk import active_grants
from tests.conftest import TENANT, Stack


def test_the_sweep_reads_only_what_is_due(stack: Stack) -> None:
    now = stack.clock.now()
    active_grants(stack.services, TENANT, 1000, now=now, ends_in=timedelta(hours=4))
    due = active_grants(stack.services, TENANT, 5, now=now, ends_in=timedelta(minutes=-2))
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
    assert sorted(reads) == sorted(g.id for g in due)  # one point read per due grant, none for the 1000 others
    assert len(pages) == 1
    assert stack.queued() == 5
