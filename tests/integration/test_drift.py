"""The drift check: what the directory holds against what the grants explain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from jit.domain.work import Step, WorkItem
from tests.conftest import GROUP_HELPDESK, TENANT, TENANT_GUID, Stack, body_of, valid_request

GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"


def graph_call(stack: Stack, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method,
        f"{stack.graph.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {stack.graph.token_for(TENANT_GUID)}"},
    )


def active(stack: Stack, **overrides: Any) -> tuple[dict[str, Any], str]:
    grant = body_of(stack.post_request(valid_request(**overrides)))
    stack.drain()
    stored = stack.services.grants.get(grant["id"])
    assert stored.progress.account is not None and stored.progress.account.id
    return grant, stored.progress.account.id


def ended(stack: Stack, grant: dict[str, Any]) -> None:
    stack.clock.current = stack.services.grants.get(grant["id"]).request.end + timedelta(seconds=5)
    stack.services.lifecycle.queue.send(WorkItem(TENANT_GUID, grant["id"], Step.EXPIRE))
    stack.drain()


def run_drift(stack: Stack) -> list[dict[str, Any]]:
    stack.host.fire("drift_check")
    response = stack.call("GET", "/api/jit/drift")
    assert response.status_code == 200
    return list(body_of(response)["value"])


def test_no_drift_no_findings(stack: Stack) -> None:
    active(stack)
    assert run_drift(stack) == []


def test_roles_removed_and_added_out_of_band_on_an_active_grant(stack: Stack) -> None:
    grant, user_id = active(stack, groups=[GROUP_HELPDESK])
    [assignment] = [a for a in stack.tenant.role_assignments if a["principalId"] == user_id]
    assert graph_call(stack, "DELETE", f"/roleManagement/directory/roleAssignments/{assignment['id']}").status_code == 204
    added = graph_call(
        stack,
        "POST",
        "/roleManagement/directory/roleAssignments",
        {"principalId": user_id, "roleDefinitionId": GLOBAL_READER, "directoryScopeId": "/"},
    )
    assert added.status_code == 201
    assert graph_call(stack, "DELETE", f"/groups/{GROUP_HELPDESK}/members/{user_id}/$ref").status_code == 204
    findings = run_drift(stack)
    kinds = sorted(f["kind"] for f in findings)
    assert kinds == ["GroupMembershipRemovedOutOfBand", "RoleAddedOutOfBand", "RoleRemovedOutOfBand"]
    assert all(f["grantId"] == grant["id"] and f["userId"] == user_id for f in findings)


def test_a_deleted_jit_account_restored_is_found_and_deleted_again(stack: Stack) -> None:
    grant, user_id = active(stack)
    ended(stack, grant)
    assert stack.tenant.user(user_id) is None
    assert graph_call(stack, "POST", f"/directory/deletedItems/{user_id}/restore").status_code in (200, 201)
    assert stack.tenant.user(user_id) is not None
    [finding] = run_drift(stack)
    assert finding["kind"] == "EndedGrantAccessPresent"
    assert "exists again" in finding["detail"]
    assert finding["remediated"] is True
    assert stack.tenant.user(user_id) is None


def test_a_disabled_jit_account_enabled_again_is_disabled_again(stack: Stack) -> None:
    grant, user_id = active(stack, expirationActions=["DisableUser"])
    ended(stack, grant)
    assert graph_call(stack, "PATCH", f"/users/{user_id}", {"accountEnabled": True}).status_code == 204
    [finding] = run_drift(stack)
    assert "enabled again" in finding["detail"]
    assert stack.tenant.user(user_id)["accountEnabled"] is False


def test_a_jit_marked_account_without_a_grant_is_reported_not_deleted(stack: Stack) -> None:
    grant = body_of(stack.post_request(valid_request(startDateTime=(stack.clock.now() + timedelta(days=1)).isoformat())))
    assert grant["status"] == "Scheduled"  # the tenant is known to the system; this grant explains no account
    orphan = stack.tenant.add_user("jit-ghost@contoso.onmicrosoft.com", "Ghost", employee_type="JIT:01JD0000000000000000000777")
    findings = run_drift(stack)
    assert [(f["kind"], f["userId"]) for f in findings] == [("JitAccountWithoutGrant", orphan)]
    assert stack.tenant.user(orphan) is not None


def test_drift_listing_filters(stack: Stack) -> None:
    stack.post_request(valid_request(startDateTime=(stack.clock.now() + timedelta(days=1)).isoformat()))
    stack.tenant.add_user("jit-ghost@contoso.onmicrosoft.com", "Ghost", employee_type="JIT:01JD0000000000000000000777")
    run_drift(stack)
    assert len(body_of(stack.call("GET", f"/api/jit/drift?tenantId={TENANT}"))["value"]) == 1
    assert body_of(stack.call("GET", "/api/jit/drift?tenantId=fabrikam.onmicrosoft.com"))["value"] == []
    future = (stack.clock.now() + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert body_of(stack.call("GET", f"/api/jit/drift?since={future}"))["value"] == []
    assert stack.call("GET", "/api/jit/drift?since=yesterday").status_code == 400


def test_access_an_admin_puts_back_on_an_existing_account_is_reported_never_taken(stack: Stack) -> None:
    """After a verified removal, a permanent assignment an admin makes is theirs: drift reports it and leaves it."""
    user_id = stack.tenant.add_user("lee@contoso.onmicrosoft.com", "Lee")
    grant, _ = active(stack, user={"type": "existing", "id": user_id}, roles=["Exchange Administrator"])
    ended(stack, grant)
    assert [a for a in stack.tenant.role_assignments if a["principalId"] == user_id] == []
    # An admin assigns the same role permanently (its id is the same one the grant's assignment had).
    added = graph_call(
        stack, "POST", "/roleManagement/directory/roleAssignments",
        {"principalId": user_id, "roleDefinitionId": "29232cdf-9323-42fd-ade2-1d097af3e4de", "directoryScopeId": "/"},
    )
    assert added.status_code == 201
    [finding] = run_drift(stack)
    assert finding["kind"] == "EndedGrantAccessPresent"
    assert "left in place" in finding["detail"]
    assert finding["remediated"] is False
    assert [a["id"] for a in stack.tenant.role_assignments if a["principalId"] == user_id] == [added.json()["id"]]


def test_more_marked_accounts_than_one_page_are_all_checked(stack: Stack) -> None:
    """Graph pages an advanced query at 999 and wants ConsistencyLevel: eventual on every page (paging.md): the
    accounts on the second page are checked too."""
    for n in range(1001):
        stack.tenant.add_user(f"jit-orphan-{n}@contoso.onmicrosoft.com", f"Orphan {n}", employee_type=f"JIT:01JD{n:022d}")
    stack.host.fire("drift_check")
    response = stack.call("GET", "/api/jit/drift?top=1000")
    findings = body_of(response)["value"]
    assert len(findings) == 1000  # the listing's own page limit
    assert {f["kind"] for f in findings} == {"JitAccountWithoutGrant"}
    assert not stack.graph.denied
    everything = stack.services.drift_log.since(stack.clock.now() - timedelta(days=1), None, 5000)
    assert len(everything) == 1001
