"""The Table adapters: optimistic concurrency on grants, and a schedule index that reads only what is due."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.data.tables import TableServiceClient, UpdateMode

from jit.adapters.audit_chain import AuditKeys
from jit.adapters.grant_store import TableGrantRepository
from jit.adapters.schedule_store import TableScheduleIndex
from jit.domain.errors import ConcurrencyConflict, IllegalTransition
from jit.domain.grant import Grant, Status
from jit.domain.ids import newest_first_key
from jit.domain.progress import GroupRecord, ItemState
from jit.domain.work import ScheduleItem, Step, WorkItem
from tests.conftest import TENANT, Stack, body_of, valid_request

# Two marks a worker can leave on a grant's progress (independent of each other).
HELPDESK = GroupRecord("aaaaaaaa-0000-4000-8000-000000000001", ItemState.PENDING)
SECURITY = GroupRecord("aaaaaaaa-0000-4000-8000-000000000002", ItemState.DONE)


def with_group(grant: Grant, record: GroupRecord) -> Grant:
    return replace(grant, progress=grant.progress.with_group(record))


def second_repository(stack: Stack) -> TableGrantRepository:
    """Another process's view of the same tables (its own clients, its own cache)."""
    service = TableServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    settings = stack.services.settings
    assert settings.audit_keys is not None
    return TableGrantRepository(
        service.get_table_client(settings.grants_table),
        service.get_table_client(settings.grant_index_table),
        AuditKeys(settings.audit_keys.current, settings.audit_keys.previous),
    )


def test_a_lost_race_rereads_and_applies_the_change_to_the_winner(stack: Stack) -> None:
    grant_id = body_of(stack.post_request(valid_request()))["id"]
    rival = second_repository(stack)
    calls: list[Status] = []

    def begin_then_get_overtaken(grant: Grant) -> Grant:
        calls.append(grant.status)
        if len(calls) == 1:
            # Between our read and our write another worker records progress.
            rival.update(grant_id, lambda g: with_group(g, HELPDESK))
        return with_group(grant, SECURITY)

    result = stack.services.grants.update(grant_id, begin_then_get_overtaken)
    assert len(calls) == 2
    assert result.progress.groups == (HELPDESK, SECURITY)
    stored = stack.services.grants.get(grant_id)
    assert stored.progress.groups == (HELPDESK, SECURITY)
    read = stack.services.audit.read(stored.tenant_id, stored.created_at - timedelta(days=1), stack.clock.now() + timedelta(days=1))
    assert read.verification.intact, read.verification.problems  # both writers extended one unbroken chain


def test_a_stale_etag_cannot_overwrite(stack: Stack) -> None:
    grant_id = body_of(stack.post_request(valid_request()))["id"]
    stale = stack.services.grants.get(grant_id)
    assert stale.stamp is not None
    stack.services.grants.update(grant_id, lambda g: g.move_to(Status.CANCELLED, at=stack.clock.now(), actor="x"))
    table = TableServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"]).get_table_client(
        stack.services.settings.grants_table
    )
    entity = table.get_entity(stale.tenant_id, newest_first_key(grant_id))
    entity["Status"] = "Active"
    with pytest.raises(ResourceModifiedError):
        table.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=stale.stamp.etag, match_condition=MatchConditions.IfNotModified
        )
    assert stack.services.grants.get(grant_id).status is Status.CANCELLED


def test_an_illegal_transition_after_a_race_is_refused(stack: Stack) -> None:
    grant_id = body_of(stack.post_request(valid_request()))["id"]
    rival = second_repository(stack)
    now = stack.clock.now()
    attempts: list[int] = []

    def activate(grant: Grant) -> Grant:
        attempts.append(1)
        if len(attempts) == 1:  # a revoke wins the race and cancels the grant
            rival.update(grant_id, lambda g: g.move_to(Status.CANCELLED, at=now, actor="revoker"))
        return grant.move_to(Status.PROVISIONING, at=now, actor="worker")

    with pytest.raises(IllegalTransition):
        stack.services.grants.update(grant_id, activate)
    assert stack.services.grants.get(grant_id).status is Status.CANCELLED


def test_endless_contention_gives_up_with_a_clear_error(stack: Stack) -> None:
    grant_id = body_of(stack.post_request(valid_request()))["id"]
    rival = second_repository(stack)
    counter = iter(range(100))

    def always_overtaken(grant: Grant) -> Grant:
        n = next(counter)
        rival.update(grant_id, lambda g: with_group(g, GroupRecord(f"bbbbbbbb-0000-4000-8000-{n:012d}", ItemState.DONE)))
        return with_group(grant, SECURITY)

    with pytest.raises(ConcurrencyConflict):
        stack.services.grants.update(grant_id, always_overtaken)


def count_pages(table_client: Any) -> list[int]:
    """Wraps a TableClient's query so the test sees how many pages (round trips) a query took."""
    pages: list[int] = []
    original = table_client.query_entities

    def query(*args: Any, **kwargs: Any) -> Any:
        kwargs["raw_response_hook"] = lambda response: pages.append(1)
        return original(*args, **kwargs)

    table_client.query_entities = query
    return pages


def test_the_schedule_returns_only_what_is_due_in_one_read(stack: Stack) -> None:
    table = stack.services.storage.table(stack.services.settings.schedule_table)
    index = TableScheduleIndex(table)
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    future = [
        {
            "PartitionKey": "due",
            "RowKey": f"{(now + timedelta(minutes=1 + i)):%Y%m%dT%H%M%S%fZ}|provision|{TENANT}|F{i:05d}",
            "Step": "provision",
            "TenantId": TENANT,
            "GrantId": f"F{i:05d}",
            "Attempt": 0,
        }
        for i in range(1500)
    ]
    for chunk in range(0, len(future), 100):
        table.submit_transaction([("create", e) for e in future[chunk : chunk + 100]])
    due = [ScheduleItem(now - timedelta(minutes=m), WorkItem(TENANT, f"D{m}", Step.PROVISION)) for m in (30, 1, 5)]
    for item in due:
        index.put(item)
    index.put(ScheduleItem(now, WorkItem(TENANT, "D-now", Step.EXPIRE)))

    pages = count_pages(table)
    found = index.due(now, limit=100)
    assert [i.work.grant_id for i in found] == ["D30", "D5", "D1", "D-now"]  # oldest first
    assert found[0].due == now - timedelta(minutes=30)
    assert found[-1].work.step is Step.EXPIRE
    assert len(pages) == 1


def test_replacing_a_wake_up_moves_it(stack: Stack) -> None:
    index = TableScheduleIndex(stack.services.storage.table(stack.services.settings.schedule_table))
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    item = ScheduleItem(now - timedelta(minutes=1), WorkItem(TENANT, "G1", Step.PROVISION))
    index.put(item)
    later = item.retry_after(now)
    index.replace(item, later)
    assert index.due(now, 10) == []
    assert index.due(later.due, 10) == [later]
    assert later.attempt == 1 and later.due == now + timedelta(minutes=1)
    index.remove(later)
    index.remove(later)  # removing twice is fine
    assert index.due(later.due + timedelta(days=1), 10) == []
