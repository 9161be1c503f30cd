"""The README's run command, as a person and a machine would use it: start the runner, call it, see grants move."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import Stack


def request_body() -> dict[str, object]:
    return {
        "tenantId": "demo.onmicrosoft.com",
        "user": {"type": "new", "displayName": "JIT admin for ticket 4711"},
        "duration": "PT1H",
        "roles": ["Exchange Administrator"],
        "reason": "Mailbox migration, ticket 4711",
    }


def settle(client: httpx.Client, location: str, headers: dict[str, str]) -> httpx.Response:
    """Poll as Power Automate would: 202 + Retry-After until the grant settles."""
    deadline = time.monotonic() + 30
    answer = client.get(location, headers=headers)
    while answer.status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = client.get(location, headers=headers)
    return answer


def test_a_person_gets_an_active_grant_and_its_tap_once(stack: Stack) -> None:
    tess = {"Authorization": f"Bearer {stack.person('Tess Technician').token}"}
    with httpx.Client(base_url=stack.base, timeout=10) as client:
        created = client.post("/api/jit/requests", json=request_body(), headers=tess)
        assert created.status_code == 202, created.text
        location = created.headers["location"]
        assert location == f"{stack.base}/api/jit/requests/{created.json()['id']}"
        grant_id = created.json()["id"]
        answer = settle(client, location, tess)
        assert answer.status_code == 200
        assert answer.json()["status"] == "Active", answer.json()
        credentials = client.get(f"/api/jit/requests/{grant_id}/credentials", headers=tess)
        assert credentials.status_code == 200
        assert len(credentials.json()["temporaryAccessPass"]) >= 8
        assert credentials.json()["userPrincipalName"].endswith("@demo.onmicrosoft.com")
        assert client.get(f"/api/jit/requests/{grant_id}/credentials", headers=tess).status_code == 410
        listed = client.get("/api/jit/requests", params={"tenantId": "demo.onmicrosoft.com"}, headers=tess).json()
        assert grant_id in [g["id"] for g in listed["value"]]
        roles = client.get("/api/jit/tenants/demo.onmicrosoft.com/roles", headers=tess).json()["value"]
        assert "Global Administrator" in [r["displayName"] for r in roles]


def test_the_banners_curl_example_works_with_the_function_key(stack: Stack) -> None:
    key = {"x-functions-key": stack.machine_key}
    with httpx.Client(base_url=stack.base, timeout=10) as client:
        created = client.post("/api/svc/jit/requests", json=request_body(), headers=key)
        assert created.status_code == 202, created.text
        grant_id = created.json()["id"]
        answer = settle(client, f"/api/svc/jit/requests/{grant_id}", key)
        assert answer.status_code == 200
        assert answer.json()["status"] == "Active", answer.json()
        assert answer.json()["requesterId"] == "service:function-key"
        # A key never receives a credential: that route exists for people only.
        assert client.get(f"/api/svc/jit/requests/{grant_id}/credentials", headers=key).status_code == 404
        assert client.post("/api/svc/jit/requests", json=request_body()).status_code == 401, "no key, no entry"


def test_a_machine_can_poll_the_location_it_is_given(stack: Stack) -> None:
    key = {"x-functions-key": stack.machine_key}
    with httpx.Client(base_url=stack.base, timeout=10) as client:
        created = client.post("/api/svc/jit/requests", json=request_body(), headers=key)
        assert created.status_code == 202, created.text
        assert "/api/svc/jit/requests/" in created.headers["location"]
        assert client.get(created.headers["location"], headers=key).status_code in (200, 202)
        listed = client.get("/api/svc/jit/requests", params={"top": 1}, headers=key).json()
        if listed.get("nextLink"):
            assert client.get(listed["nextLink"], headers=key).status_code == 200


def test_bad_input_gets_a_precise_400(stack: Stack) -> None:
    key = {"x-functions-key": stack.machine_key}
    with httpx.Client(base_url=stack.base, timeout=10) as client:
        body = request_body() | {"duration": "PT99H"}
        response = client.post("/api/svc/jit/requests", json=body, headers=key)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["duration"]
        assert client.get("/api/health").json() == {"status": "healthy"}


def test_people_routes_want_a_bearer_token(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base, timeout=10) as client:
        anonymous = client.get("/api/jit/requests")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        refused = client.get("/api/jit/requests", headers={"Authorization": "Bearer not-a-token"})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        with_key = client.get("/api/jit/requests", headers={"x-functions-key": stack.machine_key})
        assert with_key.status_code == 401, "a function key opens /api/svc/ only"


def test_a_tenant_name_no_table_can_hold_is_a_400(stack: Stack) -> None:
    key = {"x-functions-key": stack.machine_key}
    with httpx.Client(base_url=stack.base, timeout=10) as client:
        for name in ("a/b", "a#b", "a?b", "a\\b"):
            answer = client.get("/api/svc/jit/templates", params={"tenantId": name}, headers=key)
            assert answer.status_code in (400, 404), (name, answer.status_code, answer.text)
