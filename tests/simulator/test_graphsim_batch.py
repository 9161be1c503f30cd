"""POST /$batch: sequencing, 424s, limits, per-request faults and counters."""

from __future__ import annotations

from typing import Any

import httpx

from devstack.graph_simulator import GraphSimulator, Tenant

from .helpers import assert_graph_error, create_user, new_user_body

JSON = {"Content-Type": "application/json"}


def by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["responses"]}


def test_batch_with_depends_on_chain(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    group = tenant.add_group("batch group")
    body = new_user_body(tenant, "batched")
    upn = body["userPrincipalName"]
    requests = [
        {"id": "1", "method": "POST", "url": "/users", "headers": JSON, "body": body},
        {"id": "2", "dependsOn": ["1"], "method": "GET", "url": f"/users/{upn}?$select=id,accountEnabled"},
        {
            "id": "3",
            "dependsOn": ["2"],
            "method": "PATCH",
            "url": f"users/{upn}",  # relative without a leading slash is accepted too
            "headers": JSON,
            "body": {"employeeType": "JITAdmin"},
        },
        {"id": "4", "dependsOn": ["3"], "method": "GET", "url": f"/groups/{group}"},
    ]
    results = by_id(client.post("/$batch", json={"requests": requests}))
    assert [results[i]["status"] for i in "1234"] == [201, 200, 204, 200]
    assert results["2"]["body"] == {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,accountEnabled)/$entity",
        "id": results["1"]["body"]["id"],
        "accountEnabled": True,
    }
    assert "body" not in results["3"]
    assert results["4"]["body"]["id"] == group
    stored = tenant.user(upn)
    assert stored is not None and stored["employeeType"] == "JITAdmin"
    counts = sim.counters.snapshot()
    assert counts["POST /$batch"] == 1 and counts["total"] == 1
    assert counts["batch:POST /users"] == 1 and counts["batch:GET /users/{id}"] == 1
    assert counts["batch:PATCH /users/{id}"] == 1 and counts["batch:GET /groups/{id}"] == 1
    assert counts["batch:total"] == 4


def test_absolute_urls_fail_the_whole_batch(sim: GraphSimulator, client: httpx.Client, tenant: Tenant) -> None:
    """json-batching.md: `url` is relative (/users, not https://graph.microsoft.com/v1.0/users). Graph answers an
    absolute URL with 400 "Invalid batch payload format." for the whole batch (docs-contrib #8576)."""
    for url in (f"{sim.base_url}/organization", "https://graph.microsoft.com/v1.0/organization", "https://graph.microsoft.com/users"):
        requests = [{"id": "1", "method": "GET", "url": "/domains"}, {"id": "2", "method": "GET", "url": url}]
        assert_graph_error(client.post("/$batch", json={"requests": requests}), 400, "BadRequest", "Invalid batch payload format.")
    assert sim.counters["batch:total"] == 0  # nothing ran


def test_version_prefixed_url_is_a_missing_segment(client: httpx.Client) -> None:
    """A relative URL that keeps /v1.0 is resolved as a path: 'v1.0' is no segment Graph knows (SDK issues)."""
    results = by_id(client.post("/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/v1.0/organization"}]}))
    assert results["1"]["status"] == 400
    assert results["1"]["body"]["error"]["message"] == "Resource not found for the segment 'v1.0'."


def test_failed_dependency_yields_424(client: httpx.Client, tenant: Tenant) -> None:
    requests = [
        {"id": "a", "method": "GET", "url": "/users/missing@nowhere.example"},
        {"id": "b", "dependsOn": ["a"], "method": "DELETE", "url": "/users/missing@nowhere.example"},
        {"id": "c", "dependsOn": ["b"], "method": "GET", "url": "/organization"},
        {"id": "d", "dependsOn": ["a"], "method": "GET", "url": "/domains"},
    ]
    results = by_id(client.post("/$batch", json={"requests": requests}))
    assert results["a"]["status"] == 404
    assert results["a"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert results["b"]["status"] == 424 and results["c"]["status"] == 424 and results["d"]["status"] == 424
    assert results["b"]["body"]["error"]["code"] == "FailedDependency"
    parallel = [{"id": "x", "method": "GET", "url": "/users/missing@nowhere.example"}, {"id": "y", "method": "GET", "url": "/domains"}]
    results = by_id(client.post("/$batch", json={"requests": parallel}))
    assert (results["x"]["status"], results["y"]["status"]) == (404, 200)


def test_depends_on_rules(client: httpx.Client) -> None:
    """Fully sequential or fully parallel (json-batching.md tip; docs-contrib #2339); dependencies come earlier."""
    mixed = [
        {"id": "1", "method": "GET", "url": "/organization"},
        {"id": "2", "method": "GET", "url": "/domains"},
        {"id": "3", "dependsOn": ["1"], "method": "GET", "url": "/domains"},
    ]
    assert_graph_error(
        client.post("/$batch", json={"requests": mixed}), 400, "BadRequest", "Batch should be either fully sequential or fully parallel."
    )
    forward = [
        {"id": "1", "method": "GET", "url": "/organization"},
        {"id": "2", "dependsOn": ["3"], "method": "GET", "url": "/domains"},
        {"id": "3", "dependsOn": ["1"], "method": "GET", "url": "/domains"},
    ]
    error = assert_graph_error(client.post("/$batch", json={"requests": forward}), 400, "BadRequest")
    assert error["message"].startswith("Invalid dependency for request Id '2'")
    unknown = [{"id": "1", "method": "GET", "url": "/organization"}, {"id": "2", "method": "GET", "url": "/domains", "dependsOn": ["9"]}]
    assert_graph_error(client.post("/$batch", json={"requests": unknown}), 400, "BadRequest")


def test_batch_limits_and_validation(client: httpx.Client) -> None:
    many = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(21)]
    assert_graph_error(client.post("/$batch", json={"requests": many}), 400, "BadRequest")
    assert client.post("/$batch", json={"requests": many[:20]}).status_code == 200
    dup = [{"id": "x", "method": "GET", "url": "/organization"}, {"id": "X", "method": "GET", "url": "/domains"}]
    assert_graph_error(client.post("/$batch", json={"requests": dup}), 400, "BadRequest")
    no_type = [{"id": "1", "method": "POST", "url": "/users", "body": {}}]
    assert_graph_error(
        client.post("/$batch", json={"requests": no_type}),
        400,
        "BadRequest",
        "Write request id : 1 does not contain Content-Type header or body.",
    )
    assert_graph_error(client.post("/$batch", json={"value": []}), 400, "BadRequest")
    nested = [{"id": "1", "method": "POST", "url": "/$batch", "headers": JSON, "body": {"requests": []}}]
    assert by_id(client.post("/$batch", json={"requests": nested}))["1"]["status"] == 400


def test_inner_requests_are_throttled_individually(sim: GraphSimulator, client: httpx.Client) -> None:
    sim.faults.fail_next(1, "throttle", retry_after=3, endpoint="GET /domains")
    requests = [
        {"id": "1", "method": "GET", "url": "/domains"},
        {"id": "2", "method": "GET", "url": "/domains"},
    ]
    response = client.post("/$batch", json={"requests": requests})
    results = by_id(response)
    assert results["1"]["status"] == 429
    assert results["1"]["headers"]["Retry-After"] == "3"
    assert results["1"]["body"]["error"]["code"] == "TooManyRequests"
    assert results["2"]["status"] == 200


def test_batch_drop_faults_only_hit_the_outer_request(sim: GraphSimulator, client: httpx.Client) -> None:
    sim.faults.drop(endpoint="GET /organization")
    results = by_id(client.post("/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/organization"}]}))
    assert results["1"]["status"] == 200


def test_inner_consistency_level_header_enables_advanced_query(client: httpx.Client, tenant: Tenant) -> None:
    create_user(client, tenant, "adv", employeeType="JITAdmin")
    url = "/users?$filter=employeeType eq 'JITAdmin'&$count=true"
    requests = [
        {"id": "plain", "method": "GET", "url": url},
        {"id": "adv", "method": "GET", "url": url, "headers": {"ConsistencyLevel": "eventual"}},
    ]
    results = by_id(client.post("/$batch", json={"requests": requests}))
    assert results["plain"]["status"] == 400
    assert results["adv"]["status"] == 200 and results["adv"]["body"]["@odata.count"] == 1
