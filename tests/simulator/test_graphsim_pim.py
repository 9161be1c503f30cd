"""PIM: Entra role and group-membership schedules that end on the directory clock; licences; role-assignable groups."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator, Tenant

from .helpers import assert_graph_error, create_user

GA = "62e90394-69f5-4237-9190-012177145e10"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
ROLE_REQUESTS = "/roleManagement/directory/roleAssignmentScheduleRequests"
ROLE_INSTANCES = "/roleManagement/directory/roleAssignmentScheduleInstances"
ROLE_SCHEDULES = "/roleManagement/directory/roleAssignmentSchedules"
ASSIGNMENTS = "/roleManagement/directory/roleAssignments"
GROUP_REQUESTS = "/identityGovernance/privilegedAccess/group/assignmentScheduleRequests"
GROUP_INSTANCES = "/identityGovernance/privilegedAccess/group/assignmentScheduleInstances"


def role_request(principal: str, role: str = EXCHANGE_ADMIN, action: str = "adminAssign", **expiration: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": action,
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": "/",
        "justification": "JIT ticket 4711",
        "ticketInfo": {"ticketNumber": "4711", "ticketSystem": "PSA"},
        "scheduleInfo": {"expiration": expiration or {"type": "afterDuration", "duration": "PT1H"}},
    }
    return body


def active_roles(client: httpx.Client, principal: str) -> list[str]:
    listing = client.get(ASSIGNMENTS, params={"$filter": f"principalId eq '{principal}'"}).json()["value"]
    return [a["roleDefinitionId"] for a in listing]


def test_an_active_assignment_ends_on_the_simulator_clock(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "pim")
    created = client.post(ROLE_REQUESTS, json=role_request(user))
    assert created.status_code == 201, created.text
    request = created.json()
    assert (request["status"], request["action"], request["principalId"]) == ("Provisioned", "adminAssign", user)
    assert active_roles(client, user) == [EXCHANGE_ADMIN]
    [instance] = client.get(ROLE_INSTANCES, params={"$filter": f"principalId eq '{user}'"}).json()["value"]
    assert instance["roleDefinitionId"] == EXCHANGE_ADMIN and instance["endDateTime"]
    assert instance["roleAssignmentScheduleId"] == request["targetScheduleId"]
    member_of = client.get(f"/users/{user}/memberOf").json()["value"]
    assert [m["roleTemplateId"] for m in member_of if m["@odata.type"] == "#microsoft.graph.directoryRole"] == [EXCHANGE_ADMIN]
    sim.advance(59 * 60)
    assert active_roles(client, user) == [EXCHANGE_ADMIN]
    sim.advance(2 * 60)  # past the hour: Graph ends the access with no further request
    assert active_roles(client, user) == []
    assert client.get(ROLE_INSTANCES, params={"$filter": f"principalId eq '{user}'"}).json()["value"] == []
    assert client.get(ROLE_SCHEDULES).json()["value"] == []
    assert tenant.role_assignments == [] and tenant.roles_of(user) == set()


def test_expiration_kinds_extend_and_remove(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "kinds")
    end = sim.clock.now().timestamp() + 7200
    from datetime import UTC, datetime

    end_text = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.post(ROLE_REQUESTS, json=role_request(user, type="afterDateTime", endDateTime=end_text)).status_code == 201
    duplicate = client.post(ROLE_REQUESTS, json=role_request(user))
    assert_graph_error(duplicate, 400, "RoleAssignmentExists", "The Role assignment already exists.")
    extended = client.post(ROLE_REQUESTS, json=role_request(user, action="adminExtend", type="afterDuration", duration="PT4H"))
    assert extended.status_code == 201
    sim.advance(3 * 3600)
    assert active_roles(client, user) == [EXCHANGE_ADMIN]  # the original end (2 h) moved
    removed = client.post(ROLE_REQUESTS, json={**role_request(user, action="adminRemove"), "scheduleInfo": None})
    assert removed.status_code == 201 and removed.json()["status"] == "Revoked"
    assert active_roles(client, user) == []
    gone = client.post(ROLE_REQUESTS, json=role_request(user, action="adminRemove"))
    assert_graph_error(gone, 400, "RoleAssignmentDoesNotExist")
    forever = client.post(ROLE_REQUESTS, json=role_request(user, GA, type="noExpiration"))
    assert forever.status_code == 201
    sim.advance(365 * 24 * 3600)
    assert active_roles(client, user) == [GA]
    requests = client.get(ROLE_REQUESTS, params={"$filter": f"principalId eq '{user}'"}).json()["value"]
    assert [r["action"] for r in requests] == ["adminAssign", "adminExtend", "adminRemove", "adminAssign"]


def test_an_active_role_assignment_is_kept_five_minutes(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    """PIM refuses to remove an active assignment in its first five minutes (ActiveDurationTooShort); a direct one,
    or one that ended, is not subject to it."""
    user = create_user(client, tenant, "floor")
    assert client.post(ROLE_REQUESTS, json=role_request(user)).status_code == 201
    remove = {**role_request(user, action="adminRemove"), "scheduleInfo": None}
    too_soon = client.post(ROLE_REQUESTS, json=remove)
    message = "The Active duration is too short. Miniumum Required is 5 minutes."
    assert_graph_error(too_soon, 400, "ActiveDurationTooShort", message)
    assert active_roles(client, user) == [EXCHANGE_ADMIN]
    sim.advance(4 * 60)
    assert_graph_error(client.post(ROLE_REQUESTS, json=remove), 400, "ActiveDurationTooShort")
    sim.advance(60)
    assert client.post(ROLE_REQUESTS, json=remove).status_code == 201
    assert active_roles(client, user) == []
    direct = {"principalId": user, "roleDefinitionId": GA, "directoryScopeId": "/"}
    assert client.post(ASSIGNMENTS, json=direct).status_code == 201
    remove_direct = {**role_request(user, GA, action="adminRemove"), "scheduleInfo": None}
    assert client.post(ROLE_REQUESTS, json=remove_direct).status_code == 201


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"scheduleInfo": None}, "InvalidRoleAssignmentRequest"),
        ({"scheduleInfo": {"expiration": {"type": "afterDuration"}}}, "InvalidRoleAssignmentRequest"),
        ({"scheduleInfo": {"expiration": {"type": "afterDateTime"}}}, "InvalidRoleAssignmentRequest"),
        ({"scheduleInfo": {"expiration": {"type": "whenever"}}}, "InvalidRoleAssignmentRequest"),
        ({"scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "two hours"}}}, "InvalidRoleAssignmentRequest"),
        ({"action": "makeMeAdmin"}, "InvalidRoleAssignmentRequest"),
        ({"principalId": None}, "InvalidRoleAssignmentRequest"),
        ({"directoryScopeId": None}, "InvalidRoleAssignmentRequest"),
        ({"principalId": "6e7b768e-07e2-4810-8459-485f84f8f204"}, "SubjectNotFound"),
    ],
)
def test_request_validation(client: httpx.Client, tenant: Tenant, change: dict[str, Any], code: str) -> None:
    user = create_user(client, tenant, "v")
    body = {**role_request(user), **change}
    assert_graph_error(client.post(ROLE_REQUESTS, json=body), 400, code)
    assert tenant.role_assignments == []


def test_unmodelled_actions_and_undeclared_properties(client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "u")
    assert_graph_error(client.post(ROLE_REQUESTS, json=role_request(user, action="selfActivate")), 501, "NotImplemented")
    undeclared = {**role_request(user), "durationHours": 2}
    assert_graph_error(client.post(ROLE_REQUESTS, json=undeclared), 400, "Request_BadRequest")


def test_pim_needs_entra_id_p2(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    skus = client.get("/subscribedSkus").json()["value"]
    plans = {p["servicePlanName"] for s in skus for p in s["servicePlans"]}
    assert "AAD_PREMIUM_P2" in plans and skus[0]["capabilityStatus"] == "Enabled"
    user = create_user(client, tenant, "nolicence")
    tenant.set_skus([])
    for response in (
        client.post(ROLE_REQUESTS, json=role_request(user)),
        client.get(ROLE_INSTANCES),
        client.get(GROUP_INSTANCES),
    ):
        assert_graph_error(response, 400, "AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license.")
    from devstack.graph_simulator import entra_id_p2

    tenant.set_skus([entra_id_p2(capability_status="Suspended")])
    assert_graph_error(client.post(ROLE_REQUESTS, json=role_request(user)), 400, "AadPremiumLicenseRequired")
    tenant.set_skus([entra_id_p2()])
    assert client.post(ROLE_REQUESTS, json=role_request(user)).status_code == 201


def test_replication_lag_in_pim(client: httpx.Client, tenant: Tenant) -> None:
    """PIM answers 400 SubjectNotFound for a principal its replica hasn't seen (EasyPIM #22), or 404."""
    tenant.replication_lag_seconds = 30
    tenant.lag_status = "400"
    user = create_user(client, tenant, "fresh")
    assert_graph_error(client.post(ROLE_REQUESTS, json=role_request(user)), 400, "SubjectNotFound", "The subject is not found.")
    tenant.lag_status = "404"
    assert_graph_error(client.post(ROLE_REQUESTS, json=role_request(user)), 404, "Request_ResourceNotFound")


def test_roles_for_groups_need_role_assignable_groups(client: httpx.Client, tenant: Tenant) -> None:
    plain = tenant.add_group("plain")
    assignable = tenant.add_group("Tier 0 admins", is_assignable_to_role=True)
    member = create_user(client, tenant, "viagroup")
    tenant.add_member(assignable, member)
    message = "Groups without IsAssignableToRole property set cannot be assigned to roles."
    direct = {"principalId": plain, "roleDefinitionId": GA, "directoryScopeId": "/"}
    assert_graph_error(client.post(ASSIGNMENTS, json=direct), 400, "Request_BadRequest", message)
    assert_graph_error(client.post(ROLE_REQUESTS, json=role_request(plain, GA)), 400, "Request_BadRequest", message)
    assert client.get(f"/groups/{assignable}", params={"$select": "id,displayName,isAssignableToRole"}).json()["isAssignableToRole"]
    assert client.post(ROLE_REQUESTS, json=role_request(assignable, GA)).status_code == 201
    assert active_roles(client, assignable) == [GA]
    # The member holds GA through the group: transitiveMemberOf lists the role, memberOf only the group.
    transitive = client.get(f"/users/{member}/transitiveMemberOf").json()["value"]
    assert {(m["@odata.type"], m.get("roleTemplateId")) for m in transitive} == {
        ("#microsoft.graph.group", None),
        ("#microsoft.graph.directoryRole", GA),
    }
    direct_only = client.get(f"/users/{member}/memberOf").json()["value"]
    assert [m["@odata.type"] for m in direct_only] == ["#microsoft.graph.group"]


def test_pim_role_counts_for_sensitive_actions_until_it_ends(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "tempga")
    assert client.post(ROLE_REQUESTS, json=role_request(user, GA)).status_code == 201
    tenant.set_app_directory_roles(["User Administrator"])
    assert_graph_error(client.delete(f"/users/{user}"), 403, "Authorization_RequestDenied")
    sim.advance(3601)
    assert client.delete(f"/users/{user}").status_code == 204


def group_request(group: str, principal: str, access: str = "member", action: str = "adminAssign", duration: str = "PT2H") -> dict[str, Any]:
    return {
        "accessId": access,
        "principalId": principal,
        "groupId": group,
        "action": action,
        "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": duration}},
        "justification": "JIT",
    }


def test_pim_for_groups_membership_ends_on_the_clock(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    group = tenant.add_group("PIM managed")
    user = create_user(client, tenant, "pimgroup")
    created = client.post(GROUP_REQUESTS, json=group_request(group, user))
    assert created.status_code == 201, created.text
    assert created.json()["targetScheduleId"].startswith(f"{group}_member_")
    assert tenant.group_members(group) == [user]
    members = client.get(f"/groups/{group}/members", params={"$select": "id"}).json()["value"]
    assert [m["id"] for m in members] == [user]
    [instance] = client.get(GROUP_INSTANCES, params={"$filter": f"groupId eq '{group}' and principalId eq '{user}'"}).json()["value"]
    assert instance["accessId"] == "member" and instance["endDateTime"]
    owner = client.post(GROUP_REQUESTS, json=group_request(group, user, access="owner"))
    assert owner.status_code == 201 and tenant.owners_of(group) == [user]
    duplicate = client.post(GROUP_REQUESTS, json=group_request(group, user))
    assert_graph_error(duplicate, 400, "RoleAssignmentExists")
    sim.advance(2 * 3600 + 1)
    assert tenant.group_members(group) == [] and tenant.owners_of(group) == []
    assert client.get(f"/groups/{group}/members").json()["value"] == []
    assert client.get(GROUP_INSTANCES).json()["value"] == []
    assert_graph_error(client.post(GROUP_REQUESTS, json=group_request(group, user, action="adminRemove")), 400, "RoleAssignmentDoesNotExist")


def test_pim_for_groups_remove_and_eligible_groups(client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "elig")
    group = tenant.add_group("security")
    assert client.post(GROUP_REQUESTS, json=group_request(group, user)).status_code == 201
    removed = client.post(GROUP_REQUESTS, json=group_request(group, user, action="adminRemove"))
    assert removed.status_code == 201 and removed.json()["status"] == "Revoked"
    assert tenant.group_members(group) == []
    dynamic = tenant.add_group("dynamic", group_types=["DynamicMembership"])
    synced = tenant.add_group("synced")
    tenant.group_records[synced].props["onPremisesSyncEnabled"] = True
    for ineligible in (dynamic, synced):
        assert_graph_error(client.post(GROUP_REQUESTS, json=group_request(ineligible, user)), 400, "InvalidRoleAssignmentRequest")
    assert_graph_error(client.post(GROUP_REQUESTS, json={**group_request(group, user), "accessId": "boss"}), 400, "InvalidRoleAssignmentRequest")
