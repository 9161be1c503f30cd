"""PIM mode (directory `entra-pim`), end to end from the HTTP API against the Graph simulator: roles and group
memberships are PIM active assignments that Graph itself ends at the grant's end (the "double lock"), while the
product's expiry still runs, verifies, and ends the account."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.graph_simulator import Tenant
from jit.domain.work import Step, WorkItem
from tests.conftest import GROUP_HELPDESK, GROUP_SECURITY, TENANT, TENANT_GUID, Stack, audit_entries, body_of, valid_request

EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
ROLE_REQUESTS = "/roleManagement/directory/roleAssignmentScheduleRequests"
ROLE_INSTANCES = "/roleManagement/directory/roleAssignmentScheduleInstances"
GROUP_REQUESTS = "/identityGovernance/privilegedAccess/group/assignmentScheduleRequests"
GROUP_INSTANCES = "/identityGovernance/privilegedAccess/group/assignmentScheduleInstances"
FIVE_MINUTES = 5 * 60


@pytest.fixture
def pim(make_stack: Any) -> Stack:
    """Contoso onboarded with both Entra directories; its default SKUs carry Entra ID P2."""
    stack: Stack = make_stack(onboard=())
    registration = stack.onboard(TENANT, directories=("entra", "entra-pim"))
    assert registration["pimLicensed"] is True and registration["detail"] is None
    return stack


def pim_grant(stack: Stack, **overrides: Any) -> dict[str, Any]:
    body = valid_request(**{"directory": "entra-pim", "groups": [GROUP_HELPDESK], **overrides})
    created = stack.post_request(body)
    assert created.status_code == 202, created.get_body()
    stack.drain()
    grant = body_of(stack.call("GET", f"/api/jit/requests/{body_of(created)['id']}"))
    assert grant["status"] == "Active", grant
    return grant


def graph_get(stack: Stack, path: str, **query: str) -> list[dict[str, Any]]:
    """Graph's answer, read the way an auditor would (not the simulator's internals)."""
    answer = httpx.get(
        stack.graph.base_url + path, params=query, headers={"Authorization": f"Bearer {stack.graph.token_for(TENANT_GUID)}"}
    )
    assert answer.status_code == 200, answer.text
    value: list[dict[str, Any]] = answer.json()["value"]
    return value


def user_of(stack: Stack, grant: dict[str, Any]) -> str:
    account = stack.services.grants.get(grant["id"]).progress.account
    assert account is not None and account.id
    return account.id


def end_of(stack: Stack, grant: dict[str, Any]) -> datetime:
    return stack.services.grants.get(grant["id"]).request.end


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def roles_of(tenant: Tenant, user_id: str) -> list[str]:
    return sorted(a["roleDefinitionId"] for a in tenant.role_assignments if a["principalId"] == user_id)


def sim_seconds_until(stack: Stack, moment: datetime) -> float:
    """How far the simulator's directory clock is from `moment` (the product's clock is the test's own)."""
    return (moment - stack.graph.clock.now()).total_seconds()


def reach_the_end(stack: Stack, grant: dict[str, Any]) -> dict[str, Any]:
    """Past the grant's end on the product's clock and on Graph's (as in life, the two agree), its end message
    delivered and the sweep run."""
    stack.clock.current = end_of(stack, grant) + timedelta(seconds=5)
    stack.graph.advance(max(sim_seconds_until(stack, stack.clock.current), 0))
    stack.services.lifecycle.queue.send(WorkItem(grant["tenantId"], grant["id"], Step.EXPIRE))
    stack.host.fire("schedule_sweep")
    stack.drain()
    return body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))


def test_a_new_user_gets_role_and_group_as_schedules_that_end_with_the_grant(pim: Stack) -> None:
    grant = pim_grant(pim, temporaryAccessPass={"enabled": True, "lifetimeInMinutes": 60})
    user_id = user_of(pim, grant)
    end = end_of(pim, grant)
    assert roles_of(pim.tenant, user_id) == [EXCHANGE_ADMIN]
    assert user_id in pim.tenant.group_members(GROUP_HELPDESK)
    assert len(pim.tenant.taps(user_id)) == 1  # the pass is the Entra backend's, unchanged

    [role] = graph_get(pim, ROLE_INSTANCES, **{"$filter": f"principalId eq '{user_id}'"})
    assert role["roleDefinitionId"] == EXCHANGE_ADMIN and role["assignmentType"] == "Assigned"
    assert abs(when(role["endDateTime"]) - end) < timedelta(seconds=1)  # the grant's end, to the second
    [membership] = graph_get(pim, GROUP_INSTANCES, **{"$filter": f"principalId eq '{user_id}'"})
    assert (membership["groupId"], membership["accessId"]) == (GROUP_HELPDESK, "member")
    assert abs(when(membership["endDateTime"]) - end) < timedelta(seconds=1)

    [request] = graph_get(pim, ROLE_REQUESTS, **{"$filter": f"principalId eq '{user_id}'"})
    assert request["action"] == "adminAssign"
    assert request["scheduleInfo"]["expiration"]["type"] == "afterDateTime"
    assert request["justification"] == f"Mailbox migration for ticket 4711 (JIT grant {grant['id']})"
    assert request["ticketInfo"]["ticketNumber"] == "4711"
    [group_request] = graph_get(pim, GROUP_REQUESTS, **{"$filter": f"principalId eq '{user_id}'"})
    assert (group_request["action"], group_request["accessId"]) == ("adminAssign", "member")

    # What the grant records is the schedule each request made; the audit names the backend.
    progress = pim.services.grants.get(grant["id"]).progress
    assert [r.reference for r in progress.roles] == [request["targetScheduleId"]]
    writes = [e for e in audit_entries(pim, grant_id=grant["id"]) if e.action == "directory.access.grant"]
    assert len(writes) == 1 and "(entra-pim)" in writes[0].detail and writes[0].outcome == "success"


def test_access_disappears_at_its_end_with_every_worker_stopped(pim: Stack) -> None:
    grant = pim_grant(pim)
    user_id = user_of(pim, grant)
    # From here nothing of the product runs: no message is delivered, no sweep fires.
    pim.graph.advance(sim_seconds_until(pim, end_of(pim, grant)) - 60)
    assert roles_of(pim.tenant, user_id) == [EXCHANGE_ADMIN]  # a minute before the end it is all there
    pim.graph.advance(61 + 1)
    assert graph_get(pim, "/roleManagement/directory/roleAssignments", **{"$filter": f"principalId eq '{user_id}'"}) == []
    assert graph_get(pim, ROLE_INSTANCES, **{"$filter": f"principalId eq '{user_id}'"}) == []
    assert user_id not in [m["id"] for m in graph_get(pim, f"/groups/{GROUP_HELPDESK}/members")]
    assert graph_get(pim, GROUP_INSTANCES, **{"$filter": f"principalId eq '{user_id}'"}) == []
    # Graph did it alone: the product still thinks the grant is running.
    assert pim.services.grants.get(grant["id"]).status.value == "Active"


@pytest.mark.parametrize("actions", [["DeleteUser"], ["DisableUser"]])
def test_expiry_after_graph_ended_the_schedules_completes_and_ends_the_account(pim: Stack, actions: list[str]) -> None:
    grant = pim_grant(pim, expirationActions=actions)
    user_id = user_of(pim, grant)
    pim.graph.advance(sim_seconds_until(pim, end_of(pim, grant)) + 1)
    assert roles_of(pim.tenant, user_id) == []
    ended = reach_the_end(pim, grant)
    assert ended["status"] == "Expired", ended
    assert ended["access"]["expiration"]["verifiedAt"] is not None
    if actions == ["DeleteUser"]:
        assert pim.tenant.user(user_id) is None and [d["id"] for d in pim.tenant.deleted_items] == [user_id]
    else:
        user = pim.tenant.user(user_id)
        assert user is not None and user["accountEnabled"] is False
        assert len(pim.tenant.revocations(user_id)) == 1
    # Removing what PIM had ended already is "present", not a failure; one attempt did it.
    [removal] = [e for e in audit_entries(pim, grant_id=grant["id"]) if e.action.startswith("directory.access.remove")]
    assert removal.outcome == "success"
    assert f"role {EXCHANGE_ADMIN}: present" in removal.detail and f"group {GROUP_HELPDESK}: present" in removal.detail
    assert [r["action"] for r in graph_get(pim, ROLE_REQUESTS, **{"$filter": f"principalId eq '{user_id}'"})] == [
        "adminAssign"
    ]  # the adminRemove Graph refused (RoleAssignmentDoesNotExist) made no request


def test_an_early_revoke_removes_the_schedules_with_admin_remove_and_verifies(pim: Stack) -> None:
    grant = pim_grant(pim)
    user_id = user_of(pim, grant)
    pim.graph.advance(FIVE_MINUTES + 60)
    pim.clock.advance(minutes=6)
    response = pim.call("POST", f"/api/jit/requests/{grant['id']}/revoke", {"reason": "work finished early"})
    assert response.status_code == 202
    pim.drain()
    final = body_of(pim.call("GET", f"/api/jit/requests/{grant['id']}"))
    assert final["status"] == "Revoked", final
    assert final["access"]["expiration"]["verifiedAt"] is not None
    assert roles_of(pim.tenant, user_id) == [] and pim.tenant.group_members(GROUP_HELPDESK) == []
    [assign, remove] = graph_get(pim, ROLE_REQUESTS, **{"$filter": f"principalId eq '{user_id}'"})
    assert (assign["action"], remove["action"], remove["status"]) == ("adminAssign", "adminRemove", "Revoked")
    [_, group_remove] = graph_get(pim, GROUP_REQUESTS, **{"$filter": f"principalId eq '{user_id}'"})
    assert (group_remove["action"], group_remove["status"]) == ("adminRemove", "Revoked")
    assert pim.tenant.user(user_id) is None  # the account's end followed


def test_a_revoke_in_the_first_five_minutes_disables_the_account_and_finishes_when_pim_allows(pim: Stack) -> None:
    grant = pim_grant(pim)
    user_id = user_of(pim, grant)
    response = pim.call("POST", f"/api/jit/requests/{grant['id']}/revoke", {"reason": "wrong person"})
    assert response.status_code == 202
    pim.drain()
    pending = pim.services.grants.get(grant["id"])
    assert pending.status.value == "Expiring"
    expiration = pending.progress.expiration
    assert expiration is not None and "at least five minutes" in " ".join(expiration.remaining)
    # PIM keeps the role five minutes; meanwhile the account is disabled and its sessions revoked.
    assert roles_of(pim.tenant, user_id) == [EXCHANGE_ADMIN]
    user = pim.tenant.user(user_id)
    assert user is not None and user["accountEnabled"] is False and len(pim.tenant.revocations(user_id)) == 1
    # Five minutes on, the sweep brings the expiry back and it completes.
    pim.graph.advance(FIVE_MINUTES)
    pim.clock.advance(minutes=5)
    pim.host.fire("schedule_sweep")
    pim.drain()
    assert body_of(pim.call("GET", f"/api/jit/requests/{grant['id']}"))["status"] == "Revoked"
    assert roles_of(pim.tenant, user_id) == [] and pim.tenant.user(user_id) is None


def test_an_extension_moves_the_end_graph_holds(pim: Stack) -> None:
    grant = pim_grant(pim, duration="PT2H")
    user_id = user_of(pim, grant)
    old_end = end_of(pim, grant)
    new_end = old_end + timedelta(hours=3)
    response = pim.call(
        "POST", f"/api/jit/requests/{grant['id']}/extend", {"endDateTime": new_end.isoformat(), "reason": "overran"}
    )
    assert response.status_code == 200, response.get_body()
    pim.drain()  # the extension's message: adminExtend, then the new end read back
    [role] = graph_get(pim, ROLE_INSTANCES, **{"$filter": f"principalId eq '{user_id}'"})
    [membership] = graph_get(pim, GROUP_INSTANCES, **{"$filter": f"principalId eq '{user_id}'"})
    assert abs(when(role["endDateTime"]) - new_end) < timedelta(seconds=1)
    assert abs(when(membership["endDateTime"]) - new_end) < timedelta(seconds=1)
    actions = [r["action"] for r in graph_get(pim, ROLE_REQUESTS, **{"$filter": f"principalId eq '{user_id}'"})]
    assert actions == ["adminAssign", "adminExtend"]
    [extended] = [e for e in audit_entries(pim, grant_id=grant["id"]) if e.action == "directory.access.extend"]
    assert extended.outcome == "success" and f"role {EXCHANGE_ADMIN}: made" in extended.detail
    # Past the old end Graph keeps the access; past the new one it ends it, with no worker running.
    pim.graph.advance(sim_seconds_until(pim, old_end) + 60)
    assert roles_of(pim.tenant, user_id) == [EXCHANGE_ADMIN] and user_id in pim.tenant.group_members(GROUP_HELPDESK)
    pim.graph.advance(sim_seconds_until(pim, new_end) + 1)
    assert roles_of(pim.tenant, user_id) == [] and user_id not in pim.tenant.group_members(GROUP_HELPDESK)


def test_a_tenant_without_entra_id_p2_refuses_pim_at_request_time(make_stack: Any) -> None:
    stack: Stack = make_stack(onboard=())
    stack.tenant.set_skus([])
    registration = stack.onboard(TENANT, directories=("entra", "entra-pim"))
    assert registration["pimLicensed"] is False
    assert "Entra ID P2" in registration["detail"] and "entra-pim" in registration["detail"]
    refused = stack.post_request(valid_request(directory="entra-pim"))
    assert refused.status_code == 400
    [error] = body_of(refused)["errors"]
    assert error["field"] == "directory" and "Entra ID P2" in error["detail"]
    assert stack.queued() == 0 and stack.tenant.role_assignments == []
    # The direct backend still serves the tenant.
    assert stack.post_request(valid_request(directory="entra")).status_code == 202


def test_a_group_pim_refuses_fails_the_grant_and_the_undo_waits_for_pim(pim: Stack) -> None:
    """PIM for Groups takes no dynamic group: the grant fails, and what it made is undone. The role it made moments
    ago is kept by PIM for five minutes: the account is disabled meanwhile, and deleted once PIM lets the role go."""
    dynamic = pim.tenant.add_group("All staff", group_types=["DynamicMembership"])
    created = body_of(pim.post_request(valid_request(directory="entra-pim", groups=[dynamic])))
    pim.drain()
    grant = pim.services.grants.get(created["id"])
    assert grant.status.value == "Provisioning"  # failing, its undo not finished
    user_id = grant.progress.account_id
    assert user_id is not None
    user = pim.tenant.user(user_id)
    assert user is not None and user["accountEnabled"] is False
    assert roles_of(pim.tenant, user_id) == [EXCHANGE_ADMIN]
    pim.graph.advance(FIVE_MINUTES)
    pim.clock.advance(minutes=6)
    pim.host.fire("schedule_sweep")
    pim.drain()
    failed = body_of(pim.call("GET", f"/api/jit/requests/{created['id']}"))
    assert failed["status"] == "Failed", failed
    assert "The group can't be managed in PIM for Groups" in failed["error"]["message"]
    assert roles_of(pim.tenant, user_id) == [] and pim.tenant.user(user_id) is None


def test_an_existing_user_keeps_its_own_access_and_loses_only_the_schedules(pim: Stack) -> None:
    user_id = pim.tenant.add_user("ada@contoso.onmicrosoft.com", "Ada Lovelace")
    pim.tenant.add_member(GROUP_SECURITY, user_id)  # hers before any grant
    grant = pim_grant(
        pim,
        user={"type": "existing", "userPrincipalName": "ada@contoso.onmicrosoft.com"},
        groups=[GROUP_HELPDESK, GROUP_SECURITY],
    )
    assert roles_of(pim.tenant, user_id) == [EXCHANGE_ADMIN]
    [membership] = graph_get(pim, GROUP_INSTANCES, **{"$filter": f"principalId eq '{user_id}'"})
    assert membership["groupId"] == GROUP_HELPDESK  # the membership she had is not put on a schedule
    ended = reach_the_end(pim, grant)
    assert ended["status"] == "Expired", ended
    assert roles_of(pim.tenant, user_id) == []
    assert pim.tenant.group_members(GROUP_HELPDESK) == [] and pim.tenant.group_members(GROUP_SECURITY) == [user_id]
    user = pim.tenant.user(user_id)
    assert user is not None and user["accountEnabled"] is True


@pytest.mark.parametrize("lag_status", ["400", "404"])
def test_pim_not_yet_seeing_a_new_account_is_waited_out(pim: Stack, lag_status: str) -> None:
    """PIM's replica may not know an account made a moment ago: 400 SubjectNotFound (or 404) is lag, not a refusal."""
    pim.tenant.replication_lag_seconds = 1.0
    pim.tenant.lag_status = lag_status
    grant = pim_grant(pim)
    assert roles_of(pim.tenant, user_of(pim, grant)) == [EXCHANGE_ADMIN]


def test_a_licence_that_lapsed_after_onboarding_fails_the_grant_with_a_clear_reason(pim: Stack) -> None:
    pim.tenant.set_skus([])
    created = body_of(pim.post_request(valid_request(directory="entra-pim")))
    pim.drain()
    failed = body_of(pim.call("GET", f"/api/jit/requests/{created['id']}"))
    assert failed["status"] == "Failed", failed
    assert failed["error"]["code"] == "AadPremiumLicenseRequired"
    assert "needs Microsoft Entra ID P2 or Governance" in failed["error"]["message"]
    # What it made is undone: the account it created is gone again.
    assert pim.tenant.role_assignments == []
    assert [u for u in pim.tenant.users if str(u.get("employeeType", "")).startswith("JIT:")] == []
