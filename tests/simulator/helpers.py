"""Helpers shared by the simulator tests."""

from __future__ import annotations

import time
from typing import Any

import httpx
from azure.core.credentials import AccessToken

from devstack.graph_simulator import GraphSimulator, Tenant

STRONG_PASSWORD = "Xw9!kLm#2qRt"


def new_user_body(tenant: Tenant, local: str = "alex", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accountEnabled": True,
        "displayName": f"User {local}",
        "mailNickname": local.replace("'", ""),
        "userPrincipalName": f"{local}@{tenant.initial_domain}",
        "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": STRONG_PASSWORD},
    }
    body.update(extra)
    return body


def create_user(client: httpx.Client, tenant: Tenant, local: str = "alex", **extra: Any) -> str:
    response = client.post("/users", json=new_user_body(tenant, local, **extra))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_graph_error(response: httpx.Response, status: int, code: str, message: str | None = None) -> dict[str, Any]:
    """Assert Graph's error envelope, including innerError ids echoed from headers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    if message is not None:
        assert error["message"] == message
    inner = error["innerError"]
    assert inner["request-id"] == response.headers["request-id"]
    assert inner["client-request-id"] == response.headers["client-request-id"]
    assert len(inner["date"]) == 19  # yyyy-mm-ddThh:mm:ss
    return dict(error)


class DevCredential:
    """Async azure-core credential handing out tokens the simulator issued."""

    def __init__(self, sim: GraphSimulator, tenant_id: str) -> None:
        self.sim = sim
        self.tenant_id = tenant_id
        self.scopes_seen: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes_seen.append(scopes)
        return AccessToken(self.sim.token_for(self.tenant_id), int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> DevCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
