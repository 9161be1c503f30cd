"""Creating and deleting security groups (group-post-groups.md, group-delete.md), and lastPasswordChangeDateTime."""

from __future__ import annotations

import time

import httpx

from devstack.graph_simulator import GraphSimulator, Tenant

from .helpers import STRONG_PASSWORD, assert_graph_error, create_user

SECURITY_GROUP = {"displayName": "Ops 2026", "mailEnabled": False, "mailNickname": "ops2026", "securityEnabled": True}
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"


def as_app(sim: GraphSimulator, tenant: Tenant, *roles: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {sim.token_for(tenant.id, roles=roles)}"}
    return httpx.Client(base_url=sim.base_url, headers=headers, timeout=10)


def test_a_security_group_is_created_read_and_deleted_for_good(sim: GraphSimulator, tenant: Tenant) -> None:
    with as_app(sim, tenant, "Group.ReadWrite.All", "User.ReadWrite.All", "Directory.Read.All") as client:
        created = client.post("/groups", json={**SECURITY_GROUP, "description": "for the live suite"})
        assert created.status_code == 201, created.text
        group = created.json()
        assert group["@odata.context"].endswith("$metadata#groups/$entity")
        assert (group["displayName"], group["mailNickname"], group["securityEnabled"], group["mailEnabled"]) == (
            "Ops 2026", "ops2026", True, False
        )
        assert group["groupTypes"] == [] and group["description"] == "for the live suite"
        assert client.get(f"/groups/{group['id']}").json()["displayName"] == "Ops 2026"
        listed = client.get("/groups", params={"$filter": "startswith(displayName,'Ops 20')"}).json()["value"]
        assert [g["id"] for g in listed] == [group["id"]]

        user_id = create_user(client, tenant, "gm")
        ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}"}
        assert client.post(f"/groups/{group['id']}/members/$ref", json=ref).status_code == 204

        assert client.delete(f"/groups/{group['id']}").status_code == 204
        assert_graph_error(client.get(f"/groups/{group['id']}"), 404, "Request_ResourceNotFound")
        assert_graph_error(client.delete(f"/groups/{group['id']}"), 404, "Request_ResourceNotFound")
        # Security groups are not soft-deleted: nothing in deleted items, no membership left behind.
        assert client.get("/directory/deletedItems/microsoft.graph.group").json()["value"] == []
        assert client.get(f"/users/{user_id}/memberOf").json()["value"] == []


def test_group_create_and_delete_need_their_permissions(sim: GraphSimulator, tenant: Tenant) -> None:
    with as_app(sim, tenant, "GroupMember.ReadWrite.All", "Directory.Read.All") as client:
        assert_graph_error(client.post("/groups", json=SECURITY_GROUP), 403, "Authorization_RequestDenied")
    with as_app(sim, tenant, "Group.Create") as client:
        created = client.post("/groups", json=SECURITY_GROUP)
        assert created.status_code == 201, created.text
        # group-delete.md lists Group.ReadWrite.All alone.
        assert_graph_error(client.delete(f"/groups/{created.json()['id']}"), 403, "Authorization_RequestDenied")
    with as_app(sim, tenant, "Group.ReadWrite.All") as client:
        role_assignable = client.post("/groups", json={**SECURITY_GROUP, "isAssignableToRole": True})
        assert_graph_error(role_assignable, 403, "Authorization_RequestDenied")
    with as_app(sim, tenant, "Group.ReadWrite.All", "RoleManagement.ReadWrite.Directory") as client:
        role_assignable = client.post("/groups", json={**SECURITY_GROUP, "isAssignableToRole": True})
        assert role_assignable.status_code == 201 and role_assignable.json()["isAssignableToRole"] is True


def test_group_create_validation(sim: GraphSimulator, tenant: Tenant) -> None:
    with as_app(sim, tenant, "Group.ReadWrite.All") as client:
        for missing in ("displayName", "mailEnabled", "mailNickname", "securityEnabled"):
            body = {k: v for k, v in SECURITY_GROUP.items() if k != missing}
            message = f"A value is required for property '{missing}' of resource 'Group'."
            assert_graph_error(client.post("/groups", json=body), 400, "Request_BadRequest", message)
        for nickname in ("has space", "a.b", "x" * 65, "ünï"):
            response = client.post("/groups", json={**SECURITY_GROUP, "mailNickname": nickname})
            message = "Invalid value specified for property 'mailNickname' of resource 'Group'."
            assert_graph_error(response, 400, "Request_BadRequest", message)
        too_long = client.post("/groups", json={**SECURITY_GROUP, "displayName": "n" * 257})
        assert_graph_error(too_long, 400, "Request_BadRequest")
        # Kinds the simulator does not model say so rather than pretend.
        unified = {**SECURITY_GROUP, "groupTypes": ["Unified"], "mailEnabled": True}
        assert_graph_error(client.post("/groups", json=unified), 501, "NotImplemented")
        with_owner = {**SECURITY_GROUP, "owners@odata.bind": [f"https://graph.microsoft.com/v1.0/users/{tenant.id}"]}
        assert_graph_error(client.post("/groups", json=with_owner), 501, "NotImplemented")


def test_deleting_a_group_ends_the_roles_it_held(sim: GraphSimulator, tenant: Tenant) -> None:
    group_id = tenant.add_group("Role holders", is_assignable_to_role=True)
    tenant.assign_role(group_id, EXCHANGE_ADMIN)
    with as_app(sim, tenant, "Group.ReadWrite.All", "RoleManagement.ReadWrite.Directory") as client:
        assert client.delete(f"/groups/{group_id}").status_code == 204
        left = client.get("/roleManagement/directory/roleAssignments", params={"$filter": f"principalId eq '{group_id}'"})
        assert left.json()["value"] == []


def test_last_password_change_is_the_creation_then_each_reset(client: httpx.Client, tenant: Tenant) -> None:
    user_id = create_user(client, tenant, "pw")
    select = {"$select": "lastPasswordChangeDateTime,createdDateTime"}
    created = client.get(f"/users/{user_id}", params=select).json()
    assert created["lastPasswordChangeDateTime"] == created["createdDateTime"]
    time.sleep(1.05)  # directory timestamps have whole seconds
    profile = {"passwordProfile": {"forceChangePasswordNextSignIn": False, "password": STRONG_PASSWORD + "x"}}
    assert client.patch(f"/users/{user_id}", json=profile).status_code == 204
    changed = client.get(f"/users/{user_id}", params=select).json()["lastPasswordChangeDateTime"]
    assert changed > created["lastPasswordChangeDateTime"]
    # Other updates leave it alone.
    assert client.patch(f"/users/{user_id}", json={"jobTitle": "Ops"}).status_code == 204
    assert client.get(f"/users/{user_id}", params=select).json()["lastPasswordChangeDateTime"] == changed
