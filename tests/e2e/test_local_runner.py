"""The README's run command, as a person would use it: start the runner, curl it, see the grant move."""

from __future__ import annotations

import time

import httpx


def request_body() -> dict[str, object]:
    return {
        "tenantId": "demo.onmicrosoft.com",
        "user": {"type": "new", "displayName": "JIT admin for ticket 4711"},
        "duration": "PT1H",
        "roles": ["Exchange Administrator"],
        "reason": "Mailbox migration, ticket 4711",
    }


def test_the_curl_example_ends_with_an_active_grant_and_a_tap(runner: str) -> None:
    with httpx.Client(base_url=runner, timeout=10) as client:
        created = client.post("/api/jit/requests", json=request_body())
        assert created.status_code == 202
        location = created.headers["location"]
        assert location.startswith(runner)
        grant_id = created.json()["id"]
        # Poll as Power Automate would: 202 + Retry-After until the grant settles.
        deadline = time.monotonic() + 30
        answer = client.get(location)
        while answer.status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = client.get(location)
        assert answer.status_code == 200
        assert answer.json()["status"] == "Active", answer.json()
        credentials = client.get(f"/api/jit/requests/{grant_id}/credentials")
        assert credentials.status_code == 200
        assert len(credentials.json()["temporaryAccessPass"]) >= 8
        assert credentials.json()["userPrincipalName"].endswith("@demo.onmicrosoft.com")
        assert client.get(f"/api/jit/requests/{grant_id}/credentials").status_code == 410
        listed = client.get("/api/jit/requests", params={"tenantId": "demo.onmicrosoft.com"}).json()
        assert grant_id in [g["id"] for g in listed["value"]]
        roles = client.get("/api/jit/tenants/demo.onmicrosoft.com/roles").json()["value"]
        assert "Global Administrator" in [r["displayName"] for r in roles]


def test_bad_input_gets_a_precise_400(runner: str) -> None:
    with httpx.Client(base_url=runner, timeout=10) as client:
        body = request_body() | {"duration": "PT99H"}
        response = client.post("/api/jit/requests", json=body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["duration"]
        assert client.get("/api/health").json() == {"status": "healthy"}
