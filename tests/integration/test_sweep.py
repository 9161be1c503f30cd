"""The timer's sweep: enqueue what is due and undone, drop what is done, back off while work stays undone."""

from __future__ import annotations

from datetime import timedelta

from jit.domain.grant import Status
from jit.domain.work import ScheduleItem, Step, WorkItem
from tests.conftest import TENANT, Stack, body_of, valid_request


def test_a_scheduled_grant_is_picked_up_by_the_sweep_when_due(stack: Stack) -> None:
    start = stack.clock.now() + timedelta(days=10)  # beyond a queue message's 7-day reach: only the sweep wakes it
    grant = body_of(stack.post_request(valid_request(startDateTime=start.isoformat(), duration="PT1H")))
    assert stack.queued() == 0
    stack.host.fire("schedule_sweep")
    assert stack.queued() == 0  # not due yet

    stack.clock.current = start + timedelta(seconds=1)
    stack.host.fire("schedule_sweep")
    assert stack.drain() == 1
    assert stack.services.grants.get(grant["id"]).status is Status.ACTIVE


def test_the_sweep_backs_off_and_drops_finished_work(stack: Stack) -> None:
    grant = body_of(stack.post_request(valid_request()))
    lifecycle = stack.services.lifecycle
    # The message has not done its work (say, it was lost): the safety net fires after its grace.
    stack.clock.advance(minutes=3)
    first = lifecycle.sweep()
    assert (first.due, first.enqueued) == (1, 1)
    assert lifecycle.sweep().due == 0  # pushed back, not re-sent every minute
    stack.clock.advance(minutes=2)
    assert lifecycle.sweep().enqueued == 1
    # Once the grant is Active the wake-up has nothing left to do and is dropped.
    stack.drain()
    assert stack.services.grants.get(grant["id"]).status is Status.ACTIVE
    stack.clock.advance(minutes=10)
    result = lifecycle.sweep()
    assert (result.due, result.enqueued, result.dropped) == (1, 0, 1)
    assert lifecycle.sweep().due == 0


def test_the_sweep_drops_wake_ups_whose_grant_never_appeared(stack: Stack) -> None:
    schedule = stack.services.lifecycle.schedule
    orphan = ScheduleItem(
        stack.clock.now() - timedelta(minutes=1), WorkItem(TENANT, "01JD0000000000000000000099", Step.PROVISION)
    )
    schedule.put(orphan)
    assert stack.services.lifecycle.sweep().dropped == 0  # young: intake may still be writing the grant
    stack.clock.advance(minutes=20)
    assert stack.services.lifecycle.sweep().dropped == 1
    assert schedule.due(stack.clock.now() + timedelta(days=1), 10) == []


def test_the_sweep_reports_a_late_run(stack: Stack, caplog) -> None:
    stack.host.fire("schedule_sweep", past_due=True)
    assert "running late" in caplog.text
