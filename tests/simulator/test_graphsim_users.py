"""/users over real HTTP: create/read/filter/update/delete and their documented errors."""

from __future__ import annotations

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator, Tenant

from .helpers import STRONG_PASSWORD, assert_graph_error, create_user, new_user_body


def test_create_user_returns_201_with_default_projection_and_stores_extras(client: httpx.Client, tenant: Tenant) -> None:
    body = new_user_body(
        tenant,
        "jit-adm-1",
        employeeType="JITAdmin",
        usageLocation="us",
        onPremisesExtensionAttributes={"extensionAttribute1": "req-42"},
    )
    response = client.post("/users", json=body)
    assert response.status_code == 201
    created = response.json()
    assert created["@odata.context"].endswith("$metadata#users/$entity")
    assert created["userPrincipalName"] == body["userPrincipalName"]
    assert "employeeType" not in created  # not in Graph's default property set
    assert "passwordProfile" not in created
    stored = tenant.user(created["id"])
    assert stored is not None
    assert stored["employeeType"] == "JITAdmin"
    assert stored["usageLocation"] == "US"
    assert stored["onPremisesExtensionAttributes"]["extensionAttribute1"] == "req-42"
    assert stored["onPremisesExtensionAttributes"]["extensionAttribute15"] is None
    assert stored["createdDateTime"].endswith("Z")
    assert tenant.password_of(created["id"]) == STRONG_PASSWORD


@pytest.mark.parametrize("missing", ["accountEnabled", "displayName", "mailNickname", "passwordProfile", "userPrincipalName"])
def test_create_user_missing_required_property(client: httpx.Client, tenant: Tenant, missing: str) -> None:
    body = new_user_body(tenant)
    del body[missing]
    response = client.post("/users", json=body)
    assert_graph_error(response, 400, "Request_BadRequest", f"A value is required for property '{missing}' of resource 'User'.")
    assert tenant.users == []


@pytest.mark.parametrize(
    "upn", ["no-at-sign", "a@b@c.com", "jose\u00e9@x.onmicrosoft.com", "trailing.@x.onmicrosoft.com", "sp ace@x.com"]
)
def test_create_user_invalid_upn(client: httpx.Client, tenant: Tenant, upn: str) -> None:
    response = client.post("/users", json=new_user_body(tenant, userPrincipalName=upn))
    error = assert_graph_error(response, 400, "Request_BadRequest", "Property userPrincipalName is invalid.")
    assert error["details"][0]["target"] == "userPrincipalName"


def test_create_user_unverified_domain(client: httpx.Client, tenant: Tenant) -> None:
    tenant.add_domain("pending.example.com", verified=False)
    for domain in ("pending.example.com", "not-mine.example.org"):
        response = client.post("/users", json=new_user_body(tenant, userPrincipalName=f"a@{domain}"))
        error = assert_graph_error(response, 400, "Request_BadRequest")
        assert error["message"].startswith("The domain portion of the userPrincipalName property is invalid.")
        assert error["details"] == [{"code": "InvalidValue", "message": error["message"], "target": "userPrincipalName"}]


def test_create_user_in_extra_verified_domain(sim: GraphSimulator) -> None:
    tenant = sim.add_tenant(extra_verified_domains=["fabrikam.com"])
    try:
        headers = {"Authorization": f"Bearer {sim.token_for(tenant.id)}"}
        body = new_user_body(tenant, userPrincipalName="admin-x@fabrikam.com")
        response = httpx.post(f"{sim.base_url}/users", json=body, headers=headers)
        assert response.status_code == 201
    finally:
        sim.remove_tenant(tenant.id)


@pytest.mark.parametrize("password", ["short1A!", "alllowercase1", "NoDigitsOrSymbols", "Ünïcode1234!A"])
def test_create_user_password_complexity(client: httpx.Client, tenant: Tenant, password: str) -> None:
    body = new_user_body(tenant, passwordProfile={"password": password})
    response = client.post("/users", json=body)
    if password == "short1A!":  # 8 chars, 4 classes: compliant
        assert response.status_code == 201
        return
    assert_graph_error(
        response,
        400,
        "Request_BadRequest",
        "The specified password does not comply with password complexity requirements. Please provide a different password.",
    )


def test_create_user_duplicate_upn_is_case_insensitive(client: httpx.Client, tenant: Tenant) -> None:
    first = create_user(client, tenant, "dup")
    body = new_user_body(tenant, "dup", userPrincipalName=f"DUP@{tenant.initial_domain.upper()}")
    response = client.post("/users", json=body)
    error = assert_graph_error(
        response, 400, "Request_BadRequest", "Another object with the same value for property userPrincipalName already exists."
    )
    assert error["details"][0] == {"code": "ObjectConflict", "message": error["message"], "target": "userPrincipalName"}
    assert error["details"][1]["target"] == f"User_{first}"
    assert len(tenant.users) == 1


def test_create_user_unknown_property_and_bad_payloads(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post("/users", json=new_user_body(tenant, favouriteColour="blue"))
    assert_graph_error(
        response,
        400,
        "Request_BadRequest",
        "Property 'favouriteColour' does not exist as a declared property or extension property.",
    )
    response = client.post("/users", content=b"", headers={"Content-Type": "application/json"})
    assert_graph_error(response, 400, "BadRequest", "Empty Payload. JSON content expected.")
    response = client.post("/users", content=b"{not json", headers={"Content-Type": "application/json"})
    assert_graph_error(response, 400, "BadRequest")


def test_get_user_by_id_and_upn_with_select(client: httpx.Client, tenant: Tenant) -> None:
    user_id = create_user(client, tenant, "reader", employeeType="JITAdmin")
    upn = f"reader@{tenant.initial_domain}"
    by_id = client.get(f"/users/{user_id}").json()
    by_upn = client.get(f"/users/{upn.upper()}").json()
    assert by_id["id"] == by_upn["id"] == user_id
    selected = client.get(f"/users/{upn}", params={"$select": "id,accountEnabled,employeeType,passwordProfile"}).json()
    assert selected == {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,accountEnabled,employeeType,passwordProfile)/$entity",
        "id": user_id,
        "accountEnabled": True,
        "employeeType": "JITAdmin",
        "passwordProfile": None,
    }
    response = client.get(f"/users/{user_id}", params={"$select": "id,shoeSize"})
    assert_graph_error(
        response, 400, "Request_UnsupportedQuery", "Property 'shoeSize' does not exist as a declared property or extension property."
    )


def test_get_unknown_user_is_404_with_graph_message(client: httpx.Client) -> None:
    response = client.get("/users/ghost@nowhere.example")
    assert_graph_error(
        response,
        404,
        "Request_ResourceNotFound",
        "Resource 'ghost@nowhere.example' does not exist or one of its queried reference-property objects are not present.",
    )


def test_filter_upn_with_escaped_quote(client: httpx.Client, tenant: Tenant) -> None:
    user_id = create_user(client, tenant, "o'neil")
    create_user(client, tenant, "oneil")
    expression = f"userPrincipalName eq 'o''neil@{tenant.initial_domain}'"
    result = client.get("/users", params={"$filter": expression, "$select": "id,userPrincipalName"}).json()
    assert [u["id"] for u in result["value"]] == [user_id]
    assert result["value"][0]["userPrincipalName"] == f"o'neil@{tenant.initial_domain}"
    # An unescaped quote is a syntax error, as in Graph.
    response = client.get("/users", params={"$filter": f"userPrincipalName eq 'o'neil@{tenant.initial_domain}'"})
    error = assert_graph_error(response, 400, "BadRequest")
    assert error["message"].startswith("Invalid filter clause")


@pytest.mark.parametrize(
    "expression",
    ["userPrincipalName eq", "(displayName eq 'a'", "displayName eq 'a' and", "startswith(displayName)", "'unterminated"],
)
def test_unparseable_filter_is_400(client: httpx.Client, expression: str) -> None:
    assert_graph_error(client.get("/users", params={"$filter": expression}), 400, "BadRequest")


def test_filter_startswith_in_and_logic(client: httpx.Client, tenant: Tenant) -> None:
    a = create_user(client, tenant, "jit-a")
    b = create_user(client, tenant, "jit-b")
    create_user(client, tenant, "other")
    starts = client.get("/users", params={"$filter": "startswith(userPrincipalName,'JIT-')"}).json()
    assert {u["id"] for u in starts["value"]} == {a, b}
    upns = f"'jit-a@{tenant.initial_domain}','other@{tenant.initial_domain}'"
    both = client.get(
        "/users", params={"$filter": f"userPrincipalName in ({upns}) and startsWith(displayName, 'User jit')"}
    ).json()
    assert [u["id"] for u in both["value"]] == [a]


def test_employee_type_filter_needs_advanced_query(client: httpx.Client, tenant: Tenant) -> None:
    jit = create_user(client, tenant, "jit-c", employeeType="JITAdmin")
    create_user(client, tenant, "staff", employeeType="Employee")
    params = {"$filter": "employeeType eq 'JITAdmin'"}
    assert_graph_error(
        client.get("/users", params=params),
        400,
        "Request_UnsupportedQuery",
        "Unsupported or invalid query filter clause specified for property 'employeeType' of resource 'User'.",
    )
    # ConsistencyLevel alone is not enough: $count=true is also required.
    assert client.get("/users", params=params, headers={"ConsistencyLevel": "eventual"}).status_code == 400
    ok = client.get("/users", params={**params, "$count": "true"}, headers={"ConsistencyLevel": "eventual"}).json()
    assert ok["@odata.count"] == 1
    assert [u["id"] for u in ok["value"]] == [jit]


def test_endswith_and_ne_need_advanced_query(client: httpx.Client, tenant: Tenant) -> None:
    create_user(client, tenant, "e1")
    response = client.get("/users", params={"$filter": "endswith(userPrincipalName,'.onmicrosoft.com')"})
    error = assert_graph_error(response, 400, "Request_UnsupportedQuery")
    assert error["message"].startswith("Operator 'endsWith' is not supported because the required parameters might be missing.")
    response = client.get("/users", params={"$filter": "displayName ne 'x'"})
    assert "Operator 'ne'" in assert_graph_error(response, 400, "Request_UnsupportedQuery")["message"]
    advanced = client.get(
        "/users",
        params={"$filter": "endswith(userPrincipalName,'.onmicrosoft.com')", "$count": "true"},
        headers={"ConsistencyLevel": "eventual"},
    )
    assert advanced.json()["@odata.count"] == 1


def test_count_is_ignored_without_eventual_and_count_segment(client: httpx.Client, tenant: Tenant) -> None:
    create_user(client, tenant, "c1")
    create_user(client, tenant, "c2")
    silent = client.get("/users", params={"$count": "true"}).json()
    assert "@odata.count" not in silent and len(silent["value"]) == 2
    assert_graph_error(client.get("/users/$count"), 400, "Request_BadRequest", "$count is not currently supported.")
    counted = client.get("/users/$count", headers={"ConsistencyLevel": "eventual"})
    assert counted.status_code == 200 and counted.text == "2"
    assert counted.headers["content-type"].startswith("text/plain")


def test_top_pages_with_next_link(client: httpx.Client, tenant: Tenant) -> None:
    ids = {create_user(client, tenant, f"p{i}") for i in range(5)}
    seen: set[str] = set()
    page = client.get("/users", params={"$top": "2", "$select": "id"}).json()
    pages = 1
    while "@odata.nextLink" in page:
        seen |= {u["id"] for u in page["value"]}
        page = client.get(page["@odata.nextLink"]).json()
        pages += 1
    seen |= {u["id"] for u in page["value"]}
    assert seen == ids and pages == 3
    assert_graph_error(client.get("/users", params={"$top": "1000"}), 400, "Request_UnsupportedQuery")


def test_search_requires_eventual(client: httpx.Client, tenant: Tenant) -> None:
    found = create_user(client, tenant, "searchme")
    assert_graph_error(client.get("/users", params={"$search": '"displayName:searchme"'}), 400, "Request_UnsupportedQuery")
    result = client.get("/users", params={"$search": '"displayName:searchme"'}, headers={"ConsistencyLevel": "eventual"})
    assert [u["id"] for u in result.json()["value"]] == [found]


def test_patch_user(client: httpx.Client, tenant: Tenant) -> None:
    user_id = create_user(client, tenant, "patchme")
    response = client.patch(
        f"/users/{user_id}",
        json={
            "accountEnabled": False,
            "displayName": "Renamed",
            "employeeType": "Expired",
            "passwordProfile": {"password": "N3w!Passw0rd"},
        },
    )
    assert response.status_code == 204 and response.content == b""
    stored = tenant.user(user_id)
    assert stored is not None
    assert (stored["accountEnabled"], stored["displayName"], stored["employeeType"]) == (False, "Renamed", "Expired")
    assert tenant.password_of(user_id) == "N3w!Passw0rd"
    weak = client.patch(f"/users/{user_id}", json={"passwordProfile": {"password": "weak"}})
    assert_graph_error(weak, 400, "Request_BadRequest")
    bad_type = client.patch(f"/users/{user_id}", json={"accountEnabled": "no"})
    assert_graph_error(
        bad_type, 400, "Request_BadRequest", "Invalid value specified for property 'accountEnabled' of resource 'User'."
    )
    assert_graph_error(client.patch(f"/users/{user_id}", content=b""), 400, "BadRequest", "Empty Payload. JSON content expected.")
    assert tenant.password_of(user_id) == "N3w!Passw0rd"
    assert_graph_error(client.patch("/users/ghost@x.com", json={"displayName": "x"}), 404, "Request_ResourceNotFound")


def test_delete_soft_deletes_and_deleted_items_lifecycle(client: httpx.Client, tenant: Tenant) -> None:
    user_id = create_user(client, tenant, "leaver")
    assert client.delete(f"/users/{user_id}").status_code == 204
    assert_graph_error(client.get(f"/users/{user_id}"), 404, "Request_ResourceNotFound")
    listing = client.get("/directory/deletedItems/microsoft.graph.user").json()
    assert [u["id"] for u in listing["value"]] == [user_id]
    assert listing["value"][0]["@odata.type"] == "#microsoft.graph.user"
    assert listing["value"][0]["deletedDateTime"]
    item = client.get(f"/directory/deletedItems/{user_id}").json()
    assert item["userPrincipalName"] == f"leaver@{tenant.initial_domain}"
    restored = client.post(f"/directory/deletedItems/{user_id}/restore")
    assert restored.status_code == 200 and restored.json()["id"] == user_id
    assert client.get(f"/users/{user_id}").status_code == 200
    assert client.delete(f"/users/{user_id}").status_code == 204
    assert client.delete(f"/directory/deletedItems/{user_id}").status_code == 204
    assert tenant.deleted_items == [] and tenant.users == []
    assert_graph_error(client.get(f"/directory/deletedItems/{user_id}"), 404, "Request_ResourceNotFound")
    assert_graph_error(client.delete(f"/users/{user_id}"), 404, "Request_ResourceNotFound")


def test_restore_conflicts_when_upn_reused(client: httpx.Client, tenant: Tenant) -> None:
    old = create_user(client, tenant, "reuse")
    client.delete(f"/users/{old}")
    create_user(client, tenant, "reuse")  # a deleted user's UPN can be reused
    assert_graph_error(client.post(f"/directory/deletedItems/{old}/restore"), 400, "Request_BadRequest")


def test_accept_deletes_without_effect(client: httpx.Client, tenant: Tenant) -> None:
    user_id = create_user(client, tenant, "sticky")
    tenant.accept_deletes_without_effect = True
    assert client.delete(f"/users/{user_id}").status_code == 204
    assert client.get(f"/users/{user_id}").status_code == 200
    assert tenant.deleted_items == []


def test_revoke_sign_in_sessions_records_timestamp(client: httpx.Client, tenant: Tenant) -> None:
    user_id = create_user(client, tenant, "revoked")
    response = client.post(f"/users/{user_id}/revokeSignInSessions")
    assert response.status_code == 200
    assert response.json() == {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": True}
    revocations = tenant.revocations(user_id)
    assert len(revocations) == 1
    selected = client.get(f"/users/{user_id}", params={"$select": "signInSessionsValidFromDateTime"}).json()
    assert selected["signInSessionsValidFromDateTime"] == revocations[0]


def test_send_mail_is_kept_for_assertions(client: httpx.Client, tenant: Tenant) -> None:
    sender = tenant.add_user(f"notifier@{tenant.initial_domain}", "Notifier", has_mailbox=True)
    message = {
        "subject": "Your JIT access expires soon",
        "body": {"contentType": "Text", "content": "Hi"},
        "toRecipients": [{"emailAddress": {"address": "someone@example.com"}}],
    }
    response = client.post(f"/users/{sender}/sendMail", json={"message": message, "saveToSentItems": False})
    assert response.status_code == 202 and response.content == b""
    [sent] = tenant.sent_messages
    assert sent["sender_id"] == sender and sent["message"]["subject"] == message["subject"]
    assert sent["save_to_sent_items"] is False
    assert client.post(f"/users/{sender}/sendMail", json={}).status_code == 400


def test_send_mail_from_a_user_without_a_mailbox(client: httpx.Client, tenant: Tenant) -> None:
    """Users created through Graph have no Exchange Online mailbox: sendMail fails as Exchange answers."""
    sender = create_user(client, tenant, "nomailbox")
    message = {"subject": "x", "body": {"content": "y"}, "toRecipients": [{"emailAddress": {"address": "a@example.com"}}]}
    response = client.post(f"/users/{sender}/sendMail", json={"message": message})
    assert_graph_error(
        response, 404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
    )
    assert tenant.sent_messages == []
    tenant.set_mailbox(sender)  # the knob: the user got a licensed mailbox
    assert client.post(f"/users/{sender}/sendMail", json={"message": message}).status_code == 202


def test_unknown_segment_and_method(client: httpx.Client) -> None:
    assert_graph_error(client.get("/nonsense/thing"), 400, "BadRequest", "Resource not found for the segment 'nonsense'.")
    assert_graph_error(
        client.put("/users"), 405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
    )
