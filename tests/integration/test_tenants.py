"""One tenant, one name: onboarding registers a tenant under its GUID, and every spelling of it (the GUID, its initial
domain, a verified custom domain) reaches the same grants, policy, limits and audit trail."""

from __future__ import annotations

from typing import Any

from azure.data.tables import TableServiceClient

from jit.domain.ids import newest_first_key
from tests.conftest import TENANT, TENANT_GUID, Stack, body_of, principal, valid_request

ALICE = principal("alice@msp.com", "Jit.Requester")


def test_a_tenant_nobody_onboarded_is_refused_with_how_to_onboard_it(make_stack: Any) -> None:
    stack: Stack = make_stack(onboard=())
    response = stack.post_request(valid_request())
    assert response.status_code == 400
    [error] = body_of(response)["errors"]
    assert error["field"] == "tenantId"
    assert "POST /api/jit/tenants" in error["detail"]
    assert stack.queued() == 0


def test_onboarding_asks_the_directory_and_every_spelling_finds_the_tenant(make_stack: Any) -> None:
    stack: Stack = make_stack(onboard=())
    stack.tenant.add_domain("contoso.com")
    assert stack.call("POST", "/api/jit/tenants", {"tenant": TENANT}, ALICE).status_code == 403  # admins only
    registration = stack.onboard("contoso.com")
    assert registration["id"] == TENANT_GUID
    assert registration["displayName"] == "Contoso"
    assert set(registration["domains"]) >= {TENANT, "contoso.com"}
    for spelling in (TENANT_GUID, TENANT, "CONTOSO.COM", "contoso.com"):
        found = stack.call("GET", f"/api/jit/tenants/{spelling}")
        assert found.status_code == 200, spelling
        assert body_of(found)["id"] == TENANT_GUID
    assert stack.call("GET", "/api/jit/tenants/unknown.example.com").status_code == 404


def test_requests_by_any_spelling_are_one_tenants_grants(stack: Stack) -> None:
    by_domain = body_of(stack.post_request(valid_request(tenantId=TENANT)))
    by_guid = body_of(stack.post_request(valid_request(tenantId=TENANT_GUID.upper(), ticketId="4712")))
    assert by_domain["tenantId"] == by_guid["tenantId"] == TENANT_GUID
    for spelling in (TENANT, TENANT_GUID):
        listed = body_of(stack.call("GET", f"/api/jit/requests?tenantId={spelling}"))["value"]
        assert {g["id"] for g in listed} == {by_domain["id"], by_guid["id"]}


def test_a_policy_saved_under_one_spelling_governs_requests_under_the_other(stack: Stack) -> None:
    assert stack.call("PUT", f"/api/jit/policies/{TENANT_GUID}", {"maxDuration": "PT1H"}).status_code == 200
    refused = stack.post_request(valid_request(tenantId=TENANT, duration="PT2H"), headers=ALICE)
    assert refused.status_code == 403
    assert [e["rule"] for e in body_of(refused)["errors"]] == ["maxDuration"]
    assert body_of(stack.call("GET", f"/api/jit/policies/{TENANT}"))["scope"] == TENANT_GUID

    assert stack.call("PUT", f"/api/jit/policies/{TENANT}", {"ticketRequired": True}).status_code == 200
    policy = body_of(stack.call("GET", f"/api/jit/policies/{TENANT_GUID}"))
    assert policy["ticketRequired"] is True and policy["version"] == 2  # the same policy's next version


def test_requester_limits_count_every_spelling(stack: Stack) -> None:
    assert stack.call("PUT", f"/api/jit/policies/{TENANT}", {"maxConcurrentGrantsPerUser": 1}).status_code == 200
    assert stack.post_request(valid_request(tenantId=TENANT), headers=ALICE).status_code == 202
    second = stack.post_request(valid_request(tenantId=TENANT_GUID, ticketId="4712"), headers=ALICE)
    assert second.status_code == 403
    assert body_of(second)["errors"][0]["rule"] == "maxConcurrentGrantsPerUser"


def test_a_tenant_that_refuses_the_app_is_reported_not_ready(make_stack: Any) -> None:
    stack: Stack = make_stack(onboard=())
    stack.tenant.revoke_consent()
    answer = stack.call("POST", "/api/jit/tenants", {"tenant": TENANT})
    assert answer.status_code == 202
    stack.drain()
    registration = body_of(stack.call("GET", f"/api/jit/tenants/{TENANT}"))
    assert registration["state"] == "ConsentMissing"
    assert "consent" in registration["detail"].lower()
    refused = stack.post_request(valid_request())
    assert refused.status_code == 400
    assert "ConsentMissing" in body_of(refused)["errors"][0]["detail"] or "consent" in body_of(refused)["errors"][0]["detail"]


def test_an_offboarded_tenant_takes_no_new_requests_but_live_grants_still_end(stack: Stack) -> None:
    live = body_of(stack.post_request(valid_request()))
    stack.drain()
    assert stack.call("PATCH", f"/api/jit/tenants/{TENANT}", {"offboarded": True}).status_code == 200
    refused = stack.post_request(valid_request(ticketId="4712"))
    assert refused.status_code == 400
    assert body_of(refused)["errors"][0]["field"] == "tenantId"
    assert stack.call("POST", f"/api/jit/requests/{live['id']}/revoke", {"reason": "done"}).status_code == 202
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{live['id']}"))["status"] == "Revoked"


def test_grants_an_earlier_version_kept_under_the_domain_move_to_the_guid(stack: Stack) -> None:
    grant = body_of(stack.post_request(valid_request()))
    service = TableServiceClient.from_connection_string(stack.env["AzureWebJobsStorage"])
    grants = service.get_table_client(stack.services.settings.grants_table)
    index = service.get_table_client(stack.services.settings.grant_index_table)
    key = newest_first_key(grant["id"])
    # As an earlier version stored it: in a partition named by the domain, the index pointing there.
    row = grants.get_entity(TENANT_GUID, key)
    grants.create_entity({**row, "PartitionKey": TENANT, "TenantId": TENANT})
    grants.delete_entity(TENANT_GUID, key)
    index.upsert_entity({"PartitionKey": "grant", "RowKey": key, "TenantId": TENANT})
    stack.services.grants._tenant_of.clear()  # type: ignore[attr-defined]  # another process, fresh

    assert stack.call("POST", f"/api/jit/tenants/{TENANT}/check").status_code in (200, 202)
    stack.drain()
    moved = stack.call("GET", f"/api/jit/requests/{grant['id']}")
    assert moved.status_code in (200, 202)
    assert body_of(moved)["tenantId"] == TENANT_GUID
    assert list(grants.query_entities("PartitionKey eq @p", parameters={"p": TENANT})) == []
