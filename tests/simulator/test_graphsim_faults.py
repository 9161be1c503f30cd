"""Fault injection, replication lag and request counters."""

from __future__ import annotations

import time

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator, Tenant

from .helpers import assert_graph_error, create_user, new_user_body

USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"


def test_throttle_next_request_with_retry_after(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    sim.faults.fail_next(1, "throttle", retry_after=7, endpoint="POST /users")
    throttled = client.post("/users", json=new_user_body(tenant, "t1"))
    error = assert_graph_error(throttled, 429, "TooManyRequests")
    assert throttled.headers["Retry-After"] == "7" and error["message"]
    assert tenant.users == []  # a throttled request has no effect
    assert client.post("/users", json=new_user_body(tenant, "t1")).status_code == 201


def test_fault_restricted_to_endpoint_and_method(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "scoped")
    sim.faults.throttle(endpoint="/users/{id}", method="PATCH")
    assert client.get(f"/users/{user}").status_code == 200
    assert client.patch(f"/users/{user}", json={"displayName": "x"}).status_code == 429
    sim.reset_faults()
    glob = sim.faults.unavailable(endpoint="/roleManagement/*")
    assert client.get("/organization").status_code == 200
    assert_graph_error(client.get("/roleManagement/directory/roleDefinitions"), 503, "serviceNotAvailable")
    assert sim.faults.remove(glob.id)
    assert client.get("/roleManagement/directory/roleDefinitions").status_code == 200


def test_gateway_timeout_for_next_n(sim: GraphSimulator, client: httpx.Client) -> None:
    sim.faults.fail_next(2, "gateway_timeout", endpoint="GET /organization")
    statuses = [client.get("/organization").status_code for _ in range(3)]
    assert statuses == [504, 504, 200]
    assert sim.faults.rules[0].count == 0


def test_rate_faults_are_reproducible_with_seed(sim: GraphSimulator, client: httpx.Client) -> None:
    def run() -> list[int]:
        sim.faults.reset(seed=99)
        sim.faults.throttle(rate=0.5, endpoint="GET /domains")
        return [client.get("/domains").status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second
    assert 0 < first.count(429) < 20


def test_dropped_connection(sim: GraphSimulator, client: httpx.Client) -> None:
    sim.faults.fail_next(1, "drop", endpoint="GET /organization")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/organization")
    assert client.get("/organization").status_code == 200  # a fresh connection works


def test_latency_fixed_and_range(sim: GraphSimulator, client: httpx.Client) -> None:
    sim.faults.latency(150, endpoint="GET /domains")
    start = time.perf_counter()
    client.get("/domains")
    assert time.perf_counter() - start >= 0.15
    sim.reset_faults()
    sim.faults.latency(50, 100)
    start = time.perf_counter()
    client.get("/organization")
    assert 0.05 <= time.perf_counter() - start < 1.0


def test_counters_by_template(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "counted")
    client.get(f"/users/{user}")
    client.get(f"/users/counted@{tenant.initial_domain}")
    client.get("/users/unknown@x.com")
    client.get("/nope/abc")
    counts = sim.counters.snapshot()
    assert counts["POST /users"] == 1
    assert counts["GET /users/{id}"] == 3
    assert counts["GET /nope/abc"] == 1
    assert counts["total"] == sim.counters.total == 5
    sim.reset_counters()
    assert sim.counters["POST /users"] == 0


def test_replication_lag_hides_new_user(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    sim.replication_lag_seconds = 0.6
    user = create_user(client, tenant, "fresh")
    upn = f"fresh@{tenant.initial_domain}"
    group = tenant.add_group("lagged")
    assert_graph_error(client.get(f"/users/{user}"), 404, "Request_ResourceNotFound")
    assert_graph_error(client.get(f"/users/{upn}"), 404, "Request_ResourceNotFound")
    assert_graph_error(client.patch(f"/users/{user}", json={"displayName": "x"}), 404, "Request_ResourceNotFound")
    ra = client.post(
        "/roleManagement/directory/roleAssignments",
        json={"principalId": user, "roleDefinitionId": USER_ADMIN, "directoryScopeId": "/"},
    )
    assert_graph_error(ra, 404, "Request_ResourceNotFound")
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user}"}
    assert_graph_error(client.post(f"/groups/{group}/members/$ref", json=ref), 404, "Request_ResourceNotFound")
    tap = client.post(f"/users/{user}/authentication/temporaryAccessPassMethods", json={})
    assert_graph_error(tap, 404, "Request_ResourceNotFound")
    listed = client.get("/users", params={"$filter": f"userPrincipalName eq '{upn}'"}).json()["value"]
    assert listed == []
    # The write side already knows the user: a retried create is a duplicate.
    assert client.post("/users", json=new_user_body(tenant, "fresh")).status_code == 400
    time.sleep(0.65)
    assert client.get(f"/users/{user}").status_code == 200
    assert client.post(f"/groups/{group}/members/$ref", json=ref).status_code == 204


def test_per_tenant_replication_lag_override(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    sim.replication_lag_seconds = 30
    tenant.replication_lag_seconds = 0.0
    user = create_user(client, tenant, "instant")
    assert client.get(f"/users/{user}").status_code == 200
    tenant.replication_lag_seconds = 30
    slow = create_user(client, tenant, "slow")
    assert client.get(f"/users/{slow}").status_code == 404
    assert tenant.user(slow) is not None  # test-side accessors see the authoritative copy


@pytest.mark.parametrize("lag_status", ["400", "mixed"])
def test_replication_lag_can_surface_as_400(client: httpx.Client, tenant: Tenant, lag_status: str) -> None:
    """A reference to a just-created object may answer 400 instead of 404 (tenant.lag_status)."""
    tenant.replication_lag_seconds = 30
    tenant.lag_status = lag_status
    user = create_user(client, tenant, "young")
    group = tenant.add_group("lag 400")
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user}"}
    assignment = {"principalId": user, "roleDefinitionId": USER_ADMIN, "directoryScopeId": "/"}
    statuses = [
        client.post(f"/groups/{group}/members/$ref", json=ref).status_code,
        client.post("/roleManagement/directory/roleAssignments", json=assignment).status_code,
    ]
    if lag_status == "400":
        member = client.post(f"/groups/{group}/members/$ref", json=ref)
        assert_graph_error(member, 400, "Request_BadRequest", f"Invalid object identifier '{user}'.")
        role = client.post("/roleManagement/directory/roleAssignments", json=assignment)
        assert_graph_error(
            role, 400, "Request_BadRequest", "Invalid value specified for property 'principalId' of resource 'UnifiedRoleAssignment'."
        )
        assert statuses == [400, 400]
    else:
        assert sorted(statuses) == [400, 404]
    assert client.get(f"/users/{user}").status_code == 404  # reads of the object itself stay 404
    assert tenant.group_members(group) == [] and tenant.role_assignments == []


def test_soft_deleted_user_reaches_deleted_items_after_the_lag(client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "leaving")
    tenant.replication_lag_seconds = 0.5
    assert client.delete(f"/users/{user}").status_code == 204
    assert_graph_error(client.get(f"/directory/deletedItems/{user}"), 404, "Request_ResourceNotFound")
    assert_graph_error(client.delete(f"/directory/deletedItems/{user}"), 404, "Request_ResourceNotFound")
    assert client.get("/directory/deletedItems/microsoft.graph.user").json()["value"] == []
    time.sleep(0.55)
    assert client.get(f"/directory/deletedItems/{user}").json()["id"] == user
    assert client.delete(f"/directory/deletedItems/{user}").status_code == 204
