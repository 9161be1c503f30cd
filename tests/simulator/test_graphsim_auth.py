"""Tenant identity from the bearer token, and isolation between tenants."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator, Tenant, make_dev_token

from .helpers import assert_graph_error, create_user


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_make_dev_token_shape() -> None:
    tenant_id = str(uuid.uuid4())
    token = make_dev_token(tenant_id, lifetime_s=60)
    header, _payload, signature = token.split(".")
    assert signature == ""
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"] == "none"
    claims = _claims(token)
    assert claims["tid"] == tenant_id
    assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Access token is empty."),
        ("Bearer", "Access token is empty."),
        ("Basic dXNlcjpwYXNz", "Access token is empty."),
        ("Bearer not-a-jwt", "CompactToken parsing failed with error code: 80049217"),
        ("Bearer a.!!!.b", "CompactToken parsing failed with error code: 80049217"),
    ],
)
def test_missing_or_malformed_token(sim: GraphSimulator, authorization: str | None, message: str) -> None:
    headers = {"client-request-id": "my-correlation-id"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.get(f"{sim.base_url}/organization", headers=headers)
    error = assert_graph_error(response, 401, "InvalidAuthenticationToken", message)
    assert error["innerError"]["client-request-id"] == "my-correlation-id"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token(sim: GraphSimulator, tenant: Tenant) -> None:
    token = make_dev_token(tenant.id, lifetime_s=-5)
    response = httpx.get(f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {token}"})
    assert_graph_error(response, 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")


def test_unknown_tenant_and_missing_tid(sim: GraphSimulator) -> None:
    unknown = make_dev_token(str(uuid.uuid4()))
    response = httpx.get(f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {unknown}"})
    assert_graph_error(response, 401, "InvalidAuthenticationToken", "Access token validation failure.")
    no_tid = make_dev_token("x", extra_claims={"tid": None})
    response = httpx.get(f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {no_tid}"})
    assert_graph_error(response, 401, "InvalidAuthenticationToken")


def test_signature_is_not_checked(sim: GraphSimulator, tenant: Tenant) -> None:
    token = make_dev_token(tenant.id) + "c2lnbmF0dXJl"  # any signature part is accepted
    response = httpx.get(f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_request_and_client_request_ids_are_returned(client: httpx.Client) -> None:
    response = client.get("/organization", headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    assert uuid.UUID(response.headers["request-id"])


def test_tenants_are_isolated(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    user_a = create_user(client, tenant, "alice")
    group_a = tenant.add_group("A only")
    other = sim.add_tenant(initial_domain="fabrikam.onmicrosoft.com", display_name="Fabrikam")
    try:
        headers_b = {"Authorization": f"Bearer {make_dev_token(other.id)}"}
        with httpx.Client(base_url=sim.base_url, headers=headers_b) as client_b:
            assert client_b.get(f"/users/{user_a}").status_code == 404
            assert client_b.get(f"/users/alice@{tenant.initial_domain}").status_code == 404
            assert client_b.get("/users").json()["value"] == []
            assert client_b.get(f"/groups/{group_a}").status_code == 404
            assert client_b.get("/organization").json()["value"][0]["id"] == other.id
            # The same UPN local part in B's own domain is fine; A's domain is not B's.
            body = {
                "accountEnabled": True,
                "displayName": "x",
                "mailNickname": "alice",
                "userPrincipalName": f"alice@{tenant.initial_domain}",
                "passwordProfile": {"password": "Xw9!kLm#2qRt"},
            }
            assert client_b.post("/users", json=body).status_code == 400
            ra = {"principalId": user_a, "roleDefinitionId": "fe930be7-5e62-47db-91af-98c3a49a38b1", "directoryScopeId": "/"}
            assert client_b.post("/roleManagement/directory/roleAssignments", json=ra).status_code == 404
        assert other.users == [] and len(tenant.users) == 1
    finally:
        sim.remove_tenant(other.id)
