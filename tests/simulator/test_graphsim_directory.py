"""Organization, domains, role definitions/assignments and group membership over HTTP."""

from __future__ import annotations

import base64
import uuid

import httpx

from devstack.graph_simulator import GraphSimulator, Tenant

from .helpers import assert_graph_error, create_user

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
EXPECTED_TEMPLATES = {
    "Global Administrator": GLOBAL_ADMIN,
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "User Administrator": USER_ADMIN,
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "SharePoint Administrator": "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
    "Teams Administrator": "69091246-20e8-4a56-aa4d-066075b2a7a8",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Intune Administrator": "3a2c62db-5318-420d-8d74-23affee5d9d5",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "Authentication Administrator": "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "Billing Administrator": "b0f54661-2d74-4c50-afa3-1ec803f12efe",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Conditional Access Administrator": "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
}


def test_organization_and_domains(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    tenant.add_domain("contoso.com")
    tenant.add_domain("pending.contoso.com", verified=False)
    [org] = client.get("/organization").json()["value"]
    assert org["id"] == tenant.id
    assert org["displayName"] == "Contoso"
    names = {d["name"]: d for d in org["verifiedDomains"]}
    assert set(names) == {tenant.initial_domain, "contoso.com"}
    assert names[tenant.initial_domain]["isInitial"] and names[tenant.initial_domain]["isDefault"]
    assert names["contoso.com"]["type"] == "Managed" and "Email" in names["contoso.com"]["capabilities"]
    domains = {d["id"]: d for d in client.get("/domains").json()["value"]}
    assert domains["pending.contoso.com"]["isVerified"] is False
    assert domains[tenant.initial_domain]["authenticationType"] == "Managed"
    assert client.get("/domains/contoso.com").json()["isVerified"] is True
    # The map lists User.Read.All (not Directory.Read.All) for GET /organization/{id}; the product does not call it.
    reader = {"Authorization": f"Bearer {sim.token_for(tenant.id, roles=['User.Read.All'])}"}
    assert client.get(f"/organization/{tenant.id}", headers=reader).json()["id"] == tenant.id
    assert_graph_error(client.get("/domains/unknown.example"), 404, "Request_ResourceNotFound")


def test_builtin_role_catalogue_ids(client: httpx.Client) -> None:
    roles = client.get("/roleManagement/directory/roleDefinitions").json()["value"]
    by_name = {r["displayName"]: r for r in roles}
    for name, template in EXPECTED_TEMPLATES.items():
        role = by_name[name]
        assert role["id"] == role["templateId"] == template
        assert role["isBuiltIn"] is True and role["isEnabled"] is True


def test_role_definition_filters_select_and_get(client: httpx.Client, tenant: Tenant) -> None:
    path = "/roleManagement/directory/roleDefinitions"
    by_name = client.get(path, params={"$filter": "displayName eq 'User Administrator'", "$select": "id,displayName"}).json()
    assert by_name["value"] == [{"id": USER_ADMIN, "displayName": "User Administrator"}]
    by_template = client.get(path, params={"$filter": f"templateId eq '{GLOBAL_ADMIN}'"}).json()
    assert [r["displayName"] for r in by_template["value"]] == ["Global Administrator"]
    custom = tenant.add_role_definition("O'Brien's Helpers", description="custom")
    quoted = client.get(path, params={"$filter": "displayName eq 'O''Brien''s Helpers'"}).json()["value"]
    assert [(r["id"], r["isBuiltIn"]) for r in quoted] == [(custom, False)]
    assert client.get(f"{path}/{GLOBAL_ADMIN}").json()["displayName"] == "Global Administrator"
    assert_graph_error(client.get(f"{path}/{uuid.uuid4()}"), 404, "Request_ResourceNotFound")


def test_role_assignment_lifecycle(client: httpx.Client, tenant: Tenant) -> None:
    principal = create_user(client, tenant, "elevate")
    path = "/roleManagement/directory/roleAssignments"
    body = {"principalId": principal, "roleDefinitionId": USER_ADMIN, "directoryScopeId": "/"}
    created = client.post(path, json=body)
    assert created.status_code == 201
    ra = created.json()
    assert (ra["principalId"], ra["roleDefinitionId"], ra["directoryScopeId"]) == (principal, USER_ADMIN, "/")
    # Graph-shaped id: base64url(role GUID bytes + principal GUID bytes) + "-1".
    raw = base64.urlsafe_b64decode(ra["id"][:-2] + "=")
    assert ra["id"].endswith("-1") and raw == uuid.UUID(USER_ADMIN).bytes_le + uuid.UUID(principal).bytes_le
    assert client.get(f"{path}/{ra['id']}").json()["id"] == ra["id"]
    duplicate = client.post(path, json=body)
    assert_graph_error(
        duplicate,
        400,
        "Request_BadRequest",
        "A conflicting object with one or more of the specified property values is present in the directory.",
    )
    client.post(path, json={**body, "roleDefinitionId": GLOBAL_ADMIN})
    only_user_admin = client.get(path, params={"$filter": f"principalId eq '{principal}' and roleDefinitionId eq '{USER_ADMIN}'"})
    assert [r["id"] for r in only_user_admin.json()["value"]] == [ra["id"]]
    both = client.get(path, params={"$filter": f"principalId eq '{principal}'"}).json()["value"]
    assert len(both) == 2
    expanded = client.get(path, params={"$filter": f"principalId eq '{principal}'", "$expand": "principal"}).json()
    assert expanded["value"][0]["principal"]["id"] == principal
    assert client.delete(f"{path}/{ra['id']}").status_code == 204
    assert_graph_error(client.get(f"{path}/{ra['id']}"), 404, "Request_ResourceNotFound")
    assert_graph_error(client.delete(f"{path}/{ra['id']}"), 404, "Request_ResourceNotFound")
    assert [r["roleDefinitionId"] for r in tenant.role_assignments] == [GLOBAL_ADMIN]


def test_role_assignment_unknown_principal_or_role(client: httpx.Client, tenant: Tenant) -> None:
    path = "/roleManagement/directory/roleAssignments"
    ghost = str(uuid.uuid4())
    response = client.post(path, json={"principalId": ghost, "roleDefinitionId": USER_ADMIN, "directoryScopeId": "/"})
    assert_graph_error(
        response,
        404,
        "Request_ResourceNotFound",
        f"Resource '{ghost}' does not exist or one of its queried reference-property objects are not present.",
    )
    principal = create_user(client, tenant, "norole")
    bad_role = str(uuid.uuid4())
    response = client.post(path, json={"principalId": principal, "roleDefinitionId": bad_role, "directoryScopeId": "/"})
    assert_graph_error(response, 404, "Request_ResourceNotFound")
    assert_graph_error(client.post(path, json={"principalId": principal}), 400, "Request_BadRequest")
    assert tenant.role_assignments == []


def test_role_assignment_delete_accepted_without_effect(client: httpx.Client, tenant: Tenant) -> None:
    principal = create_user(client, tenant, "stuck")
    path = "/roleManagement/directory/roleAssignments"
    ra = client.post(path, json={"principalId": principal, "roleDefinitionId": USER_ADMIN, "directoryScopeId": "/"}).json()
    tenant.accept_deletes_without_effect = True
    assert client.delete(f"{path}/{ra['id']}").status_code == 204
    assert client.get(f"{path}/{ra['id']}").status_code == 200
    tenant.accept_deletes_without_effect = False
    assert client.delete(f"{path}/{ra['id']}").status_code == 204
    assert tenant.role_assignments == []


def test_deleting_user_removes_its_role_assignments(client: httpx.Client, tenant: Tenant) -> None:
    principal = create_user(client, tenant, "gone")
    path = "/roleManagement/directory/roleAssignments"
    client.post(path, json={"principalId": principal, "roleDefinitionId": USER_ADMIN, "directoryScopeId": "/"})
    client.delete(f"/users/{principal}")
    assert client.get(path, params={"$filter": f"principalId eq '{principal}'"}).json()["value"] == []


def test_group_membership(client: httpx.Client, tenant: Tenant) -> None:
    group = tenant.add_group("JIT Admins", description="eligible")
    member = create_user(client, tenant, "member")
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{member}"}
    assert client.get(f"/groups/{group}").json()["displayName"] == "JIT Admins"
    added = client.post(f"/groups/{group}/members/$ref", json=ref)
    assert added.status_code == 204 and added.content == b""
    assert tenant.group_members(group) == [member]
    again = client.post(f"/groups/{group}/members/$ref", json={"@odata.id": f"https://example.test/beta/users/{member}"})
    assert_graph_error(
        again,
        400,
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'members'.",
    )
    members = client.get(f"/groups/{group}/members", params={"$select": "id,userPrincipalName"}).json()["value"]
    assert members == [
        {"@odata.type": "#microsoft.graph.user", "id": member, "userPrincipalName": f"member@{tenant.initial_domain}"}
    ]
    assert client.get(f"/users/{member}/memberOf").json()["value"][0]["id"] == group
    assert client.delete(f"/groups/{group}/members/{member}/$ref").status_code == 204
    assert tenant.group_members(group) == []
    not_member = client.delete(f"/groups/{group}/members/{member}/$ref")
    assert_graph_error(
        not_member,
        400,
        "Request_BadRequest",
        "One or more removed object references do not exist for the following modified properties: 'members'.",
    )


def test_group_membership_errors(client: httpx.Client, tenant: Tenant) -> None:
    group = tenant.add_group("G")
    ghost = str(uuid.uuid4())
    missing = client.post(
        f"/groups/{group}/members/$ref", json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{ghost}"}
    )
    assert_graph_error(missing, 404, "Request_ResourceNotFound")
    assert_graph_error(client.post(f"/groups/{group}/members/$ref", json={"@odata.id": "nonsense"}), 400, "Request_BadRequest")
    assert_graph_error(client.delete(f"/groups/{group}/members/{ghost}/$ref"), 404, "Request_ResourceNotFound")
    assert_graph_error(client.delete(f"/groups/{group}/members/not-a-guid/$ref"), 400, "Request_UnsupportedQuery")
    assert_graph_error(client.get(f"/groups/{ghost}"), 404, "Request_ResourceNotFound")
    assert tenant.group_members(group) == []


def test_list_groups_filter_and_search(client: httpx.Client, tenant: Tenant) -> None:
    jit = tenant.add_group("JIT Helpdesk", description="eligible")
    tenant.add_group("Finance")
    starts = client.get("/groups", params={"$filter": "startswith(displayName,'jit')", "$select": "id,displayName"}).json()
    assert starts["value"] == [{"id": jit, "displayName": "JIT Helpdesk"}]
    # description needs an advanced query (filter-directory-objects.md, "Group properties").
    assert_graph_error(client.get("/groups", params={"$filter": "description eq 'eligible'"}), 400, "Request_UnsupportedQuery")
    assert_graph_error(client.get("/groups", params={"$search": '"displayName:JIT"'}), 400, "Request_UnsupportedQuery")
    searched = client.get("/groups", params={"$search": '"displayName:JIT"', "$count": "true"}, headers={"ConsistencyLevel": "eventual"})
    assert [g["id"] for g in searched.json()["value"]] == [jit] and searched.json()["@odata.count"] == 1
