"""The grant state machine: only legal transitions happen, and each one is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jit.domain.errors import IllegalTransition
from jit.domain.grant import TRANSITIONS, Grant, Status
from jit.domain.request import ExpirationAction, GrantRequest, TapSettings, UserKind, UserSpec

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def a_grant(status: Status = Status.SCHEDULED) -> Grant:
    request = GrantRequest(
        tenant_id="contoso.onmicrosoft.com",
        user=UserSpec(UserKind.NEW, display_name="Ada"),
        start=NOW,
        end=NOW + timedelta(hours=1),
        roles=("Global Administrator",),
        groups=(),
        reason="incident 42 needs a global admin",
        expiration_actions=(ExpirationAction.DELETE_USER,),
        tap=TapSettings(enabled=True),
    )
    grant = Grant.open("01JD0000000000000000000000", request, now=NOW, actor="alice", needs_approval=False)
    return grant if status is Status.SCHEDULED else Grant(**{**grant.__dict__, "status": status})


LEGAL = [(source, target) for source, targets in TRANSITIONS.items() for target in sorted(targets)]
ILLEGAL = [(source, target) for source in Status for target in Status if target not in TRANSITIONS[source]]


def test_the_lifecycle_of_the_issue_is_the_happy_path() -> None:
    path = [Status.SCHEDULED, Status.PROVISIONING, Status.ACTIVE, Status.EXPIRING, Status.EXPIRED]
    grant = a_grant()
    for step, target in enumerate(path[1:], start=1):
        grant = grant.move_to(target, at=NOW + timedelta(minutes=step), actor="system", reason=f"step {step}")
    assert grant.status is Status.EXPIRED
    assert [t.to_status for t in grant.history] == path
    assert grant.history[2].from_status is Status.PROVISIONING
    assert grant.history[-1].at == NOW + timedelta(minutes=4)
    assert grant.updated_at == NOW + timedelta(minutes=4)


@pytest.mark.parametrize(("source", "target"), LEGAL, ids=[f"{s.value}->{t.value}" for s, t in LEGAL])
def test_legal_transitions_are_recorded_with_actor_and_reason(source: Status, target: Status) -> None:
    moved = a_grant(source).move_to(target, at=NOW + timedelta(seconds=5), actor="bob", reason="because")
    assert moved.status is target
    last = moved.history[-1]
    assert (last.from_status, last.to_status, last.actor, last.reason) == (source, target, "bob", "because")


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=[f"{s.value}->{t.value}" for s, t in ILLEGAL])
def test_illegal_transitions_are_refused_and_change_nothing(source: Status, target: Status) -> None:
    grant = a_grant(source)
    with pytest.raises(IllegalTransition):
        grant.move_to(target, at=NOW, actor="bob")
    assert grant.status is source


def test_final_states_lead_nowhere_and_pending_states_ask_to_poll() -> None:
    finals = {s for s in Status if s.is_final}
    assert finals == {Status.EXPIRED, Status.REVOKED, Status.DENIED, Status.FAILED, Status.CANCELLED}
    assert {s for s in Status if s.in_progress} == {
        Status.AWAITING_APPROVAL,
        Status.SCHEDULED,
        Status.PROVISIONING,
        Status.EXPIRING,
    }


def test_a_grant_needing_approval_starts_awaiting_it() -> None:
    grant = Grant.open("01JD0000000000000000000001", a_grant().request, now=NOW, actor="a", needs_approval=True)
    assert grant.status is Status.AWAITING_APPROVAL
    assert grant.history[0].from_status is None


def test_due_to_start_only_when_scheduled_and_started() -> None:
    grant = a_grant()
    assert grant.is_due_to_start(NOW)
    assert not grant.is_due_to_start(NOW - timedelta(seconds=1))
    assert not a_grant(Status.ACTIVE).is_due_to_start(NOW + timedelta(hours=1))
