"""Authorization: application permissions from the token, Entra roles of the app, sensitive actions on admins."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator, Served, Tenant

from .helpers import assert_graph_error, create_user

DENIED = "Insufficient privileges to complete the operation."
GLOBAL_ADMIN = "Global Administrator"
HELPDESK_ADMIN = "Helpdesk Administrator"
USER_ADMIN = "User Administrator"
PAA = "Privileged Authentication Administrator"


@pytest.fixture
def as_app(sim: GraphSimulator, tenant: Tenant) -> Iterator[object]:
    """`as_app(*roles)`: an httpx client whose token carries exactly these application permissions."""
    clients: list[httpx.Client] = []

    def make(*roles: str) -> httpx.Client:
        token = sim.token_for(tenant.id, roles=roles)
        http = httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        clients.append(http)
        return http

    yield make
    for http in clients:
        http.close()


def test_a_call_without_its_permission_is_denied(sim: GraphSimulator, tenant: Tenant, as_app) -> None:
    user = tenant.add_user(f"u@{tenant.initial_domain}", "U")
    reader = as_app("User.Read.All")
    assert reader.get(f"/users/{user}").status_code == 200
    assert_graph_error(reader.get(f"/users/{user}/memberOf"), 403, "Authorization_RequestDenied", DENIED)
    assert_graph_error(reader.delete(f"/users/{user}"), 403, "Authorization_RequestDenied", DENIED)
    assert_graph_error(reader.get("/roleManagement/directory/roleDefinitions"), 403, "Authorization_RequestDenied", DENIED)
    assert tenant.user(user) is not None
    assert Served("GET", "/users/{id}", "User.Read.All") in sim.served
    assert {(d.method, d.template) for d in sim.denied} >= {("GET", "/users/{id}/memberOf"), ("DELETE", "/users/{id}")}


def test_403_comes_before_404(tenant: Tenant, as_app) -> None:
    """Authorization is decided on the call, before Graph looks for the object."""
    assert_graph_error(as_app().get("/users/ghost@nowhere.example"), 403, "Authorization_RequestDenied")


def test_higher_privileged_permissions_also_authorize(tenant: Tenant, as_app) -> None:
    user = tenant.add_user(f"h@{tenant.initial_domain}", "H")
    assert as_app("Directory.ReadWrite.All").get(f"/users/{user}/memberOf").status_code == 200
    assert as_app("User.ReadWrite.All").get("/users").status_code == 200
    assert as_app("RoleManagement.ReadWrite.Directory").get("/roleManagement/directory/roleDefinitions").status_code == 200
    # ...but only those the map lists: Directory.ReadWrite.All "does not allow user or group deletion".
    assert_graph_error(as_app("Directory.ReadWrite.All").delete(f"/users/{user}"), 403, "Authorization_RequestDenied")


def test_property_scoped_patch_permissions(sim: GraphSimulator, tenant: Tenant, as_app) -> None:
    user = tenant.add_user(f"p@{tenant.initial_domain}", "P")
    disabler = as_app("User.EnableDisableAccount.All")
    assert disabler.patch(f"/users/{user}", json={"accountEnabled": False}).status_code == 204
    assert_graph_error(disabler.patch(f"/users/{user}", json={"displayName": "x"}), 403, "Authorization_RequestDenied")
    assert_graph_error(
        disabler.patch(f"/users/{user}", json={"accountEnabled": True, "passwordProfile": {"password": "Xw9!kLm#2qRt"}}),
        403,
        "Authorization_RequestDenied",
    )
    both = as_app("User.EnableDisableAccount.All", "User-PasswordProfile.ReadWrite.All")
    body = {"accountEnabled": True, "passwordProfile": {"password": "Xw9!kLm#2qRt"}}
    assert both.patch(f"/users/{user}", json=body).status_code == 204
    assert Served("PATCH", "/users/{id}", "User.EnableDisableAccount.All+User-PasswordProfile.ReadWrite.All") in sim.served


def test_role_assignable_groups_need_role_management(sim: GraphSimulator, tenant: Tenant, as_app) -> None:
    plain = tenant.add_group("plain")
    assignable = tenant.add_group("admins", is_assignable_to_role=True)
    user = tenant.add_user(f"m@{tenant.initial_domain}", "M")
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user}"}
    members_only = as_app("GroupMember.ReadWrite.All")
    assert members_only.post(f"/groups/{plain}/members/$ref", json=ref).status_code == 204
    assert_graph_error(members_only.post(f"/groups/{assignable}/members/$ref", json=ref), 403, "Authorization_RequestDenied")
    both = as_app("GroupMember.ReadWrite.All", "RoleManagement.ReadWrite.Directory")
    assert both.post(f"/groups/{assignable}/members/$ref", json=ref).status_code == 204
    assert_graph_error(members_only.delete(f"/groups/{assignable}/members/{user}/$ref"), 403, "Authorization_RequestDenied")
    assert both.delete(f"/groups/{assignable}/members/{user}/$ref").status_code == 204
    assert Served("POST", "/groups/{id}/members/$ref", "GroupMember.ReadWrite.All+RoleManagement.ReadWrite.Directory") in sim.served


def test_deleting_an_admin_needs_a_sensitive_action_role(tenant: Tenant, client: httpx.Client) -> None:
    """user-delete.md: User.ReadWrite.All alone can't delete privileged admins; the table decides which role can."""
    admin = tenant.add_user(f"ga@{tenant.initial_domain}", "GA")
    tenant.assign_role(admin, GLOBAL_ADMIN)
    plain = tenant.add_user(f"plain@{tenant.initial_domain}", "Plain")
    tenant.set_app_directory_roles([USER_ADMIN])
    assert_graph_error(client.delete(f"/users/{admin}"), 403, "Authorization_RequestDenied", DENIED)
    assert client.delete(f"/users/{plain}").status_code == 204  # no admin role: the permission suffices
    tenant.set_app_directory_roles([PAA])
    assert client.delete(f"/users/{admin}").status_code == 204


@pytest.mark.parametrize(
    ("target_roles", "app_roles", "allowed"),
    [
        ([], [], True),  # non-admin: the Graph permission alone
        ([HELPDESK_ADMIN], [], False),
        ([HELPDESK_ADMIN], [USER_ADMIN], True),
        ([USER_ADMIN], ["Authentication Administrator"], False),
        ([GLOBAL_ADMIN], [USER_ADMIN], False),
        ([GLOBAL_ADMIN], [PAA], True),
        (["Exchange Administrator"], [USER_ADMIN], False),  # "All other built-in and custom roles"
        (["Exchange Administrator"], [GLOBAL_ADMIN], True),
    ],
)
def test_disabling_follows_who_can_perform_sensitive_actions(
    tenant: Tenant, client: httpx.Client, target_roles: list[str], app_roles: list[str], allowed: bool
) -> None:
    target = tenant.add_user(f"t@{tenant.initial_domain}", "T")
    for role in target_roles:
        tenant.assign_role(target, role)
    tenant.set_app_directory_roles(app_roles)
    response = client.patch(f"/users/{target}", json={"accountEnabled": False})
    if allowed:
        assert response.status_code == 204
    else:
        assert_graph_error(response, 403, "Authorization_RequestDenied", DENIED)
    assert tenant.user(target)["accountEnabled"] is (not allowed)


def test_password_reset_follows_who_can_reset_passwords(tenant: Tenant, client: httpx.Client) -> None:
    plain = tenant.add_user(f"pw@{tenant.initial_domain}", "PW")
    body = {"passwordProfile": {"password": "N3w!Passw0rd", "forceChangePasswordNextSignIn": True}}
    tenant.set_app_directory_roles([])
    # user-update.md: app-only passwordProfile updates need an Entra role even for non-admins.
    assert_graph_error(client.patch(f"/users/{plain}", json=body), 403, "Authorization_RequestDenied")
    tenant.set_app_directory_roles([HELPDESK_ADMIN])
    assert client.patch(f"/users/{plain}", json=body).status_code == 204
    user_admin = tenant.add_user(f"ua@{tenant.initial_domain}", "UA")
    tenant.assign_role(user_admin, USER_ADMIN)
    assert_graph_error(client.patch(f"/users/{user_admin}", json=body), 403, "Authorization_RequestDenied")
    # Member of a role-assignable group: only Privileged Authentication Administrator or Global Administrator.
    in_group = tenant.add_user(f"rag@{tenant.initial_domain}", "RAG")
    tenant.add_group("tier0", members=[in_group], is_assignable_to_role=True)
    tenant.set_app_directory_roles([USER_ADMIN])
    assert_graph_error(client.patch(f"/users/{in_group}", json=body), 403, "Authorization_RequestDenied")
    tenant.set_app_directory_roles([PAA])
    assert client.patch(f"/users/{in_group}", json=body).status_code == 204


def test_roles_held_through_a_role_assignable_group_count(tenant: Tenant, client: httpx.Client) -> None:
    admin = tenant.add_user(f"via@{tenant.initial_domain}", "Via group")
    group = tenant.add_group("GA group", members=[admin], is_assignable_to_role=True)
    tenant.assign_role(group, GLOBAL_ADMIN)
    tenant.set_app_directory_roles([USER_ADMIN])
    assert_graph_error(client.delete(f"/users/{admin}"), 403, "Authorization_RequestDenied")


def test_permissions_and_roles_apply_inside_batch(tenant: Tenant, as_app) -> None:
    admin = tenant.add_user(f"bga@{tenant.initial_domain}", "BGA")
    tenant.assign_role(admin, GLOBAL_ADMIN)
    tenant.set_app_directory_roles([USER_ADMIN])
    http = as_app("User.Read.All", "User.ReadWrite.All")
    requests = [
        {"id": "1", "method": "GET", "url": f"/users/{admin}"},
        {"id": "2", "method": "GET", "url": f"/users/{admin}/memberOf"},
        {"id": "3", "method": "DELETE", "url": f"/users/{admin}"},
    ]
    responses = {r["id"]: r for r in http.post("/$batch", json={"requests": requests}).json()["responses"]}
    assert [responses[i]["status"] for i in "123"] == [200, 403, 403]
    assert responses["2"]["body"]["error"] == {**responses["2"]["body"]["error"], "code": "Authorization_RequestDenied", "message": DENIED}


def test_app_directory_roles_knob_over_the_control_api(sim: GraphSimulator, tenant: Tenant, client: httpx.Client) -> None:
    admin = tenant.add_user(f"ctl@{tenant.initial_domain}", "Ctl")
    tenant.assign_role(admin, GLOBAL_ADMIN)
    with httpx.Client(base_url=sim.control_url) as control:
        control.patch(f"/tenants/{tenant.id}", json={"appDirectoryRoles": [USER_ADMIN]}).raise_for_status()
        dump = control.get(f"/tenants/{tenant.id}").json()
        assert dump["servicePrincipals"][0]["directoryRoles"] == ["fe930be7-5e62-47db-91af-98c3a49a38b1"]
    assert client.delete(f"/users/{admin}").status_code == 403
    assert tenant.app_directory_roles() == {"fe930be7-5e62-47db-91af-98c3a49a38b1"}


def test_served_log_lists_every_call_with_its_permission(sim: GraphSimulator, tenant: Tenant, client: httpx.Client) -> None:
    user = create_user(client, tenant, "logged")
    client.get(f"/users/{user}/memberOf")
    client.post("/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/organization"}]})
    served = {(s.method, s.template): s.permission for s in sim.served}
    assert served[("POST", "/users")] == "User.ReadWrite.All"
    assert served[("GET", "/users/{id}/memberOf")] == "Directory.Read.All"
    assert ("GET", "/organization") in served  # batch items are recorded too
    assert all(s.permission for s in sim.served)
