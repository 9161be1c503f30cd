"""The token endpoint: Entra's v2 client-credentials flow, as the simulator serves it."""

from __future__ import annotations

import httpx
import pytest

from devstack.graph_simulator import DEV_APP_ID, GraphSimulator, Tenant
from devstack.graph_simulator.tokens import decode_claims

FORM = {"grant_type": "client_credentials", "client_id": DEV_APP_ID, "scope": "https://graph.microsoft.com/.default"}
SECRET = {"client_secret": "any-value-the-simulator-accepts"}


def post_token(sim: GraphSimulator, tenant: str, **overrides: str) -> httpx.Response:
    form = {**FORM, **SECRET, **overrides}
    return httpx.post(sim.token_url(tenant), data={k: v for k, v in form.items() if v is not None})


def assert_sts_error(response: httpx.Response, status: int, error: str, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)
    return str(body["error_description"])


@pytest.mark.parametrize("reference", ["guid", "domain"])
def test_client_credentials_token_by_guid_or_domain(sim: GraphSimulator, tenant: Tenant, reference: str) -> None:
    authority = tenant.id if reference == "guid" else tenant.initial_domain.upper()
    response = post_token(sim, authority)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 3600
    claims = decode_claims(body["access_token"])
    assert claims["tid"] == tenant.id  # a domain authority resolves to the tenant's GUID
    assert claims["appid"] == DEV_APP_ID
    assert set(claims["roles"]) == tenant.app_permissions
    graph = httpx.get(f"{sim.base_url}/organization", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert graph.status_code == 200 and graph.json()["value"][0]["id"] == tenant.id


def test_roles_are_what_the_tenant_consented_to(sim: GraphSimulator, tenant: Tenant) -> None:
    tenant.app_permissions = {"User.Read.All"}
    token = post_token(sim, tenant.id).json()["access_token"]
    assert decode_claims(token)["roles"] == ["User.Read.All"]
    tenant.app_permissions = set()
    token = post_token(sim, tenant.id).json()["access_token"]
    assert "roles" not in decode_claims(token)  # no application permission: no roles claim


def test_unknown_tenant(sim: GraphSimulator) -> None:
    description = assert_sts_error(post_token(sim, "nowhere.onmicrosoft.com"), 400, "invalid_tenant", 90002)
    assert "Tenant 'nowhere.onmicrosoft.com' not found" in description


def test_app_without_consent_in_the_tenant(sim: GraphSimulator) -> None:
    unconsented = sim.add_tenant(consent=False)
    try:
        description = assert_sts_error(post_token(sim, unconsented.id), 400, "invalid_client", 7000229)
        assert f"is missing service principal in the tenant {unconsented.id}" in description
        unconsented.consent()
        assert post_token(sim, unconsented.id).status_code == 200
        unconsented.revoke_consent()
        assert_sts_error(post_token(sim, unconsented.id), 400, "invalid_client", 7000229)
    finally:
        sim.remove_tenant(unconsented.id)


def test_unknown_application_and_bad_requests(sim: GraphSimulator, tenant: Tenant) -> None:
    assert_sts_error(post_token(sim, tenant.id, client_id="11111111-1111-1111-1111-111111111111"), 400, "unauthorized_client", 700016)
    assert_sts_error(post_token(sim, tenant.id, scope="https://management.azure.com/.default"), 400, "invalid_scope", 70011)
    assert_sts_error(post_token(sim, tenant.id, grant_type="password"), 400, "unsupported_grant_type", 70003)
    assert_sts_error(post_token(sim, tenant.id, client_secret=None), 401, "invalid_client", 7000218)
    assert_sts_error(httpx.get(sim.token_url(tenant.id)), 400, "invalid_request", 900561)
