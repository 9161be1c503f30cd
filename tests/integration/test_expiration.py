"""Expiration: each action and combination, verified by reading Graph back, on time, and never more than it may."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from jit.domain.grant import Status
from tests.conftest import (
    GROUP_HELPDESK,
    GROUP_SECURITY,
    TENANT,
    TENANT_GUID,
    Stack,
    audit_entries,
    body_of,
    principal,
    valid_request,
)

EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"


def active_grant(stack: Stack, **overrides: Any) -> dict[str, Any]:
    grant = body_of(stack.post_request(valid_request(**overrides)))
    stack.drain()
    grant = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))
    assert grant["status"] == "Active", grant
    return grant


def reach_the_end(stack: Stack, grant: dict[str, Any], *, after: timedelta = timedelta(seconds=5)) -> dict[str, Any]:
    """Let the clock pass the grant's end and deliver the end's message, as Azure would when its hidden message
    becomes visible (the test clock is not Azurite's, so the message is delivered by hand); the timer runs too."""
    from jit.domain.work import Step, WorkItem

    stack.clock.current = stack.services.grants.get(grant["id"]).request.end + after
    stack.services.lifecycle.queue.send(WorkItem(grant["tenantId"], grant["id"], Step.EXPIRE))
    stack.host.fire("schedule_sweep")
    stack.drain()
    return body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))


def user_of(stack: Stack, grant: dict[str, Any]) -> str:
    account = stack.services.grants.get(grant["id"]).progress.account
    assert account is not None and account.id
    return account.id


def roles_of(stack: Stack, user_id: str) -> list[str]:
    return sorted(a["roleDefinitionId"] for a in stack.tenant.role_assignments if a["principalId"] == user_id)


def assign(stack: Stack, user_id: str, role_id: str) -> str:
    response = httpx.post(
        f"{stack.graph.base_url}/roleManagement/directory/roleAssignments",
        json={"principalId": user_id, "roleDefinitionId": role_id, "directoryScopeId": "/"},
        headers={"Authorization": f"Bearer {stack.graph.token_for(TENANT_GUID)}"},
    )
    assert response.status_code == 201
    return str(response.json()["id"])


def test_activation_schedules_the_end_as_a_hidden_message_and_a_wake_up(stack: Stack) -> None:
    grant = active_grant(stack)
    assert stack.queued() == 1  # the end's message, hidden until endDateTime
    assert stack.drain() == 0
    end = stack.services.grants.get(grant["id"]).request.end
    due = stack.services.lifecycle.schedule.due(end + timedelta(minutes=1), 10)
    assert [(i.work.step.value, i.due) for i in due if i.work.step.value == "expire"] == [("expire", end + timedelta(minutes=1))]


def test_the_sweep_ends_a_grant_whose_message_was_lost(stack: Stack) -> None:
    grant = active_grant(stack)
    stack.clock.current = stack.services.grants.get(grant["id"]).request.end + timedelta(seconds=61)
    stack.host.fire("schedule_sweep")
    stack.drain()
    final = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))
    assert final["status"] == "Expired"
    assert 60 < final["latenessSeconds"] < 70


def test_delete_user_removes_the_account_its_roles_and_groups(stack: Stack) -> None:
    grant = active_grant(stack, groups=[GROUP_HELPDESK])
    user_id = user_of(stack, grant)
    ended = reach_the_end(stack, grant)
    assert ended["status"] == "Expired"
    assert stack.tenant.user(user_id) is None
    assert [d["id"] for d in stack.tenant.deleted_items] == [user_id]  # soft delete: restorable for 30 days
    assert roles_of(stack, user_id) == []
    assert stack.tenant.group_members(GROUP_HELPDESK) == []
    assert ended["revokedDateTime"] is not None
    assert 0 <= ended["latenessSeconds"] <= 10
    assert ended["access"]["expiration"]["actions"] == ["DeleteUser"]
    actions = [e.action for e in audit_entries(stack, grant_id=grant["id"])]
    assert actions[-3:] == ["directory.access.remove+account.delete", "grant.access-removed", "grant.Expired"]


def test_permanent_delete_empties_deleted_items_too(make_stack: Any) -> None:
    stack = make_stack(JIT_PERMANENT_DELETE="true")
    grant = active_grant(stack)
    assert reach_the_end(stack, grant)["status"] == "Expired"
    assert stack.tenant.deleted_items == []
    assert stack.tenant.user(user_of(stack, grant)) is None


def test_disable_user_disables_rotates_revokes_and_removes_taps(stack: Stack) -> None:
    grant = active_grant(stack, expirationActions=["DisableUser"])
    user_id = user_of(stack, grant)
    password_before = stack.tenant.password_of(user_id)
    assert len(stack.tenant.taps(user_id)) == 1
    ended = reach_the_end(stack, grant)
    assert ended["status"] == "Expired"
    user = stack.tenant.user(user_id)
    assert user is not None and user["accountEnabled"] is False
    assert stack.tenant.password_of(user_id) != password_before
    assert len(stack.tenant.revocations(user_id)) == 1
    assert stack.tenant.taps(user_id) == []
    # Its roles go first: Graph refuses to disable an admin unless the app holds a privileged role itself, and a
    # disabled account has no use for them.
    assert roles_of(stack, user_id) == []


def test_disable_and_remove_everything(stack: Stack) -> None:
    grant = active_grant(stack, groups=[GROUP_HELPDESK], expirationActions=["DisableUser", "RemoveRoles", "RemoveGroups"])
    user_id = user_of(stack, grant)
    assert reach_the_end(stack, grant)["status"] == "Expired"
    assert stack.tenant.user(user_id)["accountEnabled"] is False
    assert roles_of(stack, user_id) == []
    assert stack.tenant.group_members(GROUP_HELPDESK) == []


@pytest.mark.parametrize(
    ("actions", "roles_left", "groups_left"),
    [
        (["RemoveRoles"], [], [GROUP_HELPDESK]),
        (["RemoveGroups"], [EXCHANGE_ADMIN], []),
        (["RemoveRoles", "RemoveGroups"], [], []),
    ],
)
def test_remove_actions_on_a_jit_account_keep_it_enabled_without_its_tap(
    stack: Stack, actions: list[str], roles_left: list[str], groups_left: list[str]
) -> None:
    grant = active_grant(stack, groups=[GROUP_HELPDESK], expirationActions=actions)
    user_id = user_of(stack, grant)
    assert reach_the_end(stack, grant)["status"] == "Expired"
    assert stack.tenant.user(user_id)["accountEnabled"] is True
    assert roles_of(stack, user_id) == roles_left
    assert [m for m in stack.tenant.group_members(GROUP_HELPDESK) if m == user_id] == [user_id] * len(groups_left)
    assert stack.tenant.taps(user_id) == []  # a TAP must never outlive its grant


def test_an_existing_user_loses_only_what_the_grant_added(stack: Stack) -> None:
    user_id = stack.tenant.add_user("ada@contoso.onmicrosoft.com", "Ada")
    kept_role = assign(stack, user_id, GLOBAL_READER)
    stack.tenant.add_member(GROUP_HELPDESK, user_id)
    grant = active_grant(
        stack,
        user={"type": "existing", "id": user_id},
        roles=["Global Reader", "Exchange Administrator"],
        groups=[GROUP_HELPDESK, GROUP_SECURITY],
    )
    assert reach_the_end(stack, grant)["status"] == "Expired"
    user = stack.tenant.user(user_id)
    assert user is not None and user["accountEnabled"] is True  # never deleted or disabled
    assert [a["id"] for a in stack.tenant.role_assignments if a["principalId"] == user_id] == [kept_role]
    assert stack.tenant.group_members(GROUP_HELPDESK) == [user_id]
    assert stack.tenant.group_members(GROUP_SECURITY) == []
    assert stack.tenant.taps(user_id) == []


def test_an_account_whose_marker_changed_is_left_alone_and_flagged(stack: Stack, caplog: Any) -> None:
    grant = active_grant(stack)
    user_id = user_of(stack, grant)
    response = httpx.patch(
        f"{stack.graph.base_url}/users/{user_id}",
        json={"employeeType": "Employee"},
        headers={"Authorization": f"Bearer {stack.graph.token_for(TENANT_GUID)}"},
    )
    assert response.status_code == 204
    ended = reach_the_end(stack, grant)
    assert ended["status"] == "Expired"
    assert "left alone" in ended["access"]["expiration"]["flag"]
    assert stack.tenant.user(user_id) is not None  # not ours any more: not deleted
    assert "ALERT" in caplog.text


def test_a_delete_graph_accepts_but_does_not_perform_keeps_the_grant_expiring_and_alerts(make_stack: Any, caplog: Any) -> None:
    stack = make_stack(JIT_GRAPH_RETRY_BUDGET="PT1S", JIT_EXPIRY_ALERT_AFTER="PT5M")
    stack.host.retry_visibility_seconds = 0
    grant = active_grant(stack)
    user_id = user_of(stack, grant)
    stack.tenant.accept_deletes_without_effect = True
    ended = reach_the_end(stack, grant)
    assert ended["status"] == "Expiring"  # never "Expired" while the account is still there
    assert stack.tenant.user(user_id) is not None
    assert any("still exists" in r for r in ended["access"]["expiration"]["remaining"])
    assert stack.host.failures  # the function failed, so the queue and the sweep come back
    assert "ALERT" not in caplog.text

    stack.clock.advance(minutes=10)  # later than the alert threshold
    stack.host.fire("schedule_sweep")
    stack.drain(rounds=2)
    assert "ALERT" in caplog.text
    overdue = [e for e in audit_entries(stack, grant_id=grant["id"]) if e.action == "grant.expiry-overdue"]
    assert len(overdue) == 1 and overdue[0].outcome == "alert"

    stack.tenant.accept_deletes_without_effect = False  # Graph recovers
    stack.clock.advance(minutes=10)
    stack.host.fire("schedule_sweep")
    stack.drain()
    final = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))
    assert final["status"] == "Expired"
    assert stack.tenant.user(user_id) is None
    assert final["latenessSeconds"] > 600


def test_a_role_removal_graph_ignores_keeps_the_grant_expiring(make_stack: Any) -> None:
    stack = make_stack(JIT_GRAPH_RETRY_BUDGET="PT1S")
    stack.host.retry_visibility_seconds = 0
    grant = active_grant(stack, expirationActions=["RemoveRoles"])
    stack.tenant.accept_deletes_without_effect = True
    ended = reach_the_end(stack, grant)
    assert ended["status"] == "Expiring"
    assert any("still assigned" in r for r in ended["access"]["expiration"]["remaining"])


def test_expiry_messages_delivered_twice_end_in_the_same_state(stack: Stack) -> None:
    from jit.domain.work import Step, WorkItem

    grant = active_grant(stack)
    stack.clock.current = stack.services.grants.get(grant["id"]).request.end + timedelta(seconds=1)
    work = WorkItem(grant["tenantId"], grant["id"], Step.EXPIRE)
    stack.services.lifecycle.queue.send(work)
    stack.services.lifecycle.queue.send(work)
    stack.drain()
    final = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))
    assert final["status"] == "Expired"
    assert [h["to"] for h in final["history"]] == ["Scheduled", "Provisioning", "Active", "Expiring", "Expired"]
    assert stack.host.failures == []


def test_an_early_message_does_nothing(stack: Stack) -> None:
    from jit.domain.work import Step, WorkItem

    grant = active_grant(stack)
    stack.services.lifecycle.queue.send(WorkItem(grant["tenantId"], grant["id"], Step.EXPIRE))
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))["status"] == "Active"


def test_revoke_removes_access_now_and_measures_lateness_from_the_request(stack: Stack) -> None:
    grant = active_grant(stack)
    user_id = user_of(stack, grant)
    stack.clock.advance(minutes=10)
    response = stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke", {"reason": "work finished early"})
    assert response.status_code == 202
    stack.drain()
    final = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))
    assert final["status"] == "Revoked"
    assert stack.tenant.user(user_id) is None
    assert 0 <= final["latenessSeconds"] < 5


def test_extend_moves_the_end(stack: Stack) -> None:
    grant = active_grant(stack, duration="PT2H")
    old_end = stack.services.grants.get(grant["id"]).request.end
    new_end = old_end + timedelta(hours=3)
    response = stack.call(
        "POST", f"/api/jit/requests/{grant['id']}/extend", {"endDateTime": new_end.isoformat(), "reason": "migration overran"}
    )
    assert response.status_code == 200
    assert body_of(response)["endDateTime"].startswith(new_end.strftime("%Y-%m-%dT%H:%M"))
    # The old end passes: nothing happens.
    stack.clock.current = old_end + timedelta(minutes=5)
    stack.host.fire("schedule_sweep")
    stack.drain()
    assert stack.services.grants.get(grant["id"]).status is Status.ACTIVE
    # The new end passes: access goes.
    stack.clock.current = new_end + timedelta(minutes=2)
    stack.host.fire("schedule_sweep")
    stack.drain()
    assert stack.services.grants.get(grant["id"]).status is Status.EXPIRED
    assert any(e.action == "grant.extended" and "migration overran" in e.detail for e in audit_entries(stack, grant_id=grant["id"]))


@pytest.mark.parametrize(
    ("shift", "status"),
    [(timedelta(hours=10), 400), (timedelta(hours=-5), 400)],
)
def test_extend_is_bounded(stack: Stack, shift: timedelta, status: int) -> None:
    grant = active_grant(stack, duration="PT2H")
    end = stack.services.grants.get(grant["id"]).request.end
    response = stack.call("POST", f"/api/jit/requests/{grant['id']}/extend", {"endDateTime": (end + shift).isoformat()})
    assert response.status_code == status
    assert body_of(response)["errors"][0]["field"] == "endDateTime"


def test_an_ended_grant_cannot_be_extended(stack: Stack) -> None:
    grant = active_grant(stack)
    reach_the_end(stack, grant)
    later = stack.clock.now() + timedelta(hours=1)
    response = stack.call("POST", f"/api/jit/requests/{grant['id']}/extend", {"endDateTime": later.isoformat()})
    assert response.status_code == 409


# Two grants, one existing account ---------------------------------------------------------------------------


def test_a_role_two_grants_share_stays_until_the_last_one_ends(stack: Stack) -> None:
    user_id = stack.tenant.add_user("sam@contoso.onmicrosoft.com", "Sam")
    existing = {"type": "existing", "id": user_id}
    first = active_grant(stack, user=existing, roles=["Exchange Administrator"], duration="PT1H")
    second = active_grant(stack, user=existing, roles=["Exchange Administrator"], duration="PT3H", ticketId="4712")
    # The second found the role there, put there by a live grant: it shares it.
    assert [r["state"] for r in second["access"]["roles"]] == ["shared"]
    ended = reach_the_end(stack, first)
    assert ended["status"] == "Expired"
    assert roles_of(stack, user_id) == [EXCHANGE_ADMIN]  # the second grant still needs it
    assert [r["state"] for r in ended["access"]["roles"]] == ["kept"]
    assert reach_the_end(stack, second)["status"] == "Expired"
    assert roles_of(stack, user_id) == []  # the last grant that needed it ended: gone


def test_a_role_the_account_had_before_any_grant_outlives_them_all(stack: Stack) -> None:
    user_id = stack.tenant.add_user("pat@contoso.onmicrosoft.com", "Pat")
    permanent = assign(stack, user_id, EXCHANGE_ADMIN)
    grant = active_grant(stack, user={"type": "existing", "id": user_id}, roles=["Exchange Administrator"])
    assert [r["state"] for r in grant["access"]["roles"]] == ["preexisting"]
    assert reach_the_end(stack, grant)["status"] == "Expired"
    assert [a["id"] for a in stack.tenant.role_assignments if a["principalId"] == user_id] == [permanent]


# Extensions are requests --------------------------------------------------------------------------------------


def approve_global_admin(stack: Stack, **overrides: Any) -> dict[str, Any]:
    created = body_of(stack.post_request(valid_request(roles=["Global Administrator"], duration="PT1H", **overrides)))
    stack.call("POST", f"/api/jit/requests/{created['id']}/approve", {}, principal("ann@msp.com", "Jit.Approver"))
    stack.drain()
    grant = body_of(stack.call("GET", f"/api/jit/requests/{created['id']}"))
    assert grant["status"] == "Active", grant
    return grant


def test_extending_a_role_that_needs_approval_waits_for_it_without_touching_the_grant(stack: Stack) -> None:
    grant = approve_global_admin(stack)
    end = stack.services.grants.get(grant["id"]).request.end
    response = stack.call("POST", f"/api/jit/requests/{grant['id']}/extend", {"endDateTime": (end + timedelta(hours=7)).isoformat()})
    assert response.status_code == 200
    waiting = body_of(response)
    assert waiting["extension"]["status"] == "AwaitingApproval"
    assert stack.services.grants.get(grant["id"]).request.end == end  # the running grant is untouched
    # The approver decides; the requester can't.
    assert stack.call("POST", f"/api/jit/requests/{grant['id']}/approve", {}).status_code == 403
    inbox = body_of(stack.call("GET", "/api/jit/approvals", headers=principal("ann@msp.com", "Jit.Approver")))["value"]
    assert [(g["id"], g["approvalKind"]) for g in inbox] == [(grant["id"], "extension")]
    approved = stack.call("POST", f"/api/jit/requests/{grant['id']}/approve", {"comment": "ok"}, principal("ann@msp.com", "Jit.Approver"))
    assert approved.status_code == 200, approved.get_body()
    assert stack.services.grants.get(grant["id"]).request.end == end + timedelta(hours=7)
    assert [e.action for e in audit_entries(stack, grant_id=grant["id"])][-2:] == ["grant.extension-requested", "grant.extended"]


def test_an_extension_keeps_to_the_per_role_maximum_named_any_way(stack: Stack) -> None:
    policy = {"maxDuration": "PT8H", "maxDurationPerRole": {"Exchange Administrator": "PT2H"}}
    assert stack.call("PUT", f"/api/jit/policies/{TENANT}", policy).status_code == 200
    grant = active_grant(stack, roles=[EXCHANGE_ADMIN], duration="PT1H")  # by its template id
    end = stack.services.grants.get(grant["id"]).request.end
    response = stack.call("POST", f"/api/jit/requests/{grant['id']}/extend", {"endDateTime": (end + timedelta(hours=3)).isoformat()})
    assert response.status_code == 403
    assert [e["rule"] for e in body_of(response)["errors"]] == ["maxDurationPerRole"]
    assert stack.services.grants.get(grant["id"]).request.end == end


def test_an_extension_asked_after_the_end_passed_is_refused(stack: Stack) -> None:
    grant = active_grant(stack)
    end = stack.services.grants.get(grant["id"]).request.end
    stack.clock.current = end + timedelta(seconds=30)  # the end passed; expiry has not run yet
    response = stack.call("POST", f"/api/jit/requests/{grant['id']}/extend", {"endDateTime": (end + timedelta(hours=1)).isoformat()})
    assert response.status_code == 409
