"""Tokens: only ones the simulator issued are accepted; tenant identity comes from `tid`; tenants are isolated."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator, Tenant, forge_unsigned_token
from devstack.graph_simulator.tokens import TokenIssuer, decode_claims

from .helpers import assert_graph_error, create_user


def _header(token: str) -> dict[str, object]:
    part = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_issued_token_shape(sim: GraphSimulator, tenant: Tenant) -> None:
    token = sim.token_for(tenant.id, lifetime_s=60)
    assert _header(token)["alg"] == "HS256"
    claims = decode_claims(token)
    assert claims["tid"] == tenant.id and claims["idtyp"] == "app" and claims["aud"] == "https://graph.microsoft.com"
    assert claims["exp"] - claims["iat"] == 60
    assert set(claims["roles"]) == tenant.app_permissions
    sp = tenant.service_principals[claims["appid"]]
    assert claims["oid"] == sp.id
    assert claims["wids"] == ["7be44c8a-adaf-4e2a-84d6-ab2649e08a13"]  # Privileged Authentication Administrator


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
    token = sim.token_for(tenant.id, lifetime_s=-5)
    response = httpx.get(f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {token}"})
    assert_graph_error(response, 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")


def test_client_minted_tokens_are_refused(sim: GraphSimulator, tenant: Tenant) -> None:
    """A token the client made itself (unsigned, or signed with a key of its own) is not Entra's: 401."""
    forged = forge_unsigned_token(tenant.id, roles=["Directory.ReadWrite.All"])
    response = httpx.get(f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {forged}"})
    assert_graph_error(response, 401, "InvalidAuthenticationToken", "Signature is invalid.")
    other_key = TokenIssuer().issue(tenant.id, "app", str(uuid.uuid4()), ["Directory.Read.All"])
    response = httpx.get(f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {other_key}"})
    assert_graph_error(response, 401, "InvalidAuthenticationToken", "Signature is invalid.")
    # Tampering with a genuine token's claims breaks its signature too.
    genuine = sim.token_for(tenant.id)
    head, _, signature = genuine.split(".")
    claims = decode_claims(genuine) | {"roles": ["Directory.ReadWrite.All", "User.ReadWrite.All"]}
    tampered_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    response = httpx.get(
        f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {head}.{tampered_payload}.{signature}"}
    )
    assert_graph_error(response, 401, "InvalidAuthenticationToken", "Signature is invalid.")


def test_token_for_a_removed_tenant(sim: GraphSimulator) -> None:
    gone = sim.add_tenant()
    token = sim.token_for(gone.id)
    sim.remove_tenant(gone.id)
    response = httpx.get(f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {token}"})
    assert_graph_error(response, 401, "InvalidAuthenticationToken", "Access token validation failure.")


def test_request_and_client_request_ids_are_returned(client: httpx.Client) -> None:
    response = client.get("/organization", headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    assert uuid.UUID(response.headers["request-id"])


def test_tenants_are_isolated(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    user_a = create_user(client, tenant, "alice")
    group_a = tenant.add_group("A only")
    other = sim.add_tenant(initial_domain="fabrikam.onmicrosoft.com", display_name="Fabrikam")
    try:
        headers_b = {"Authorization": f"Bearer {sim.token_for(other.id)}"}
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
