"""Advanced queries across pages: every page needs ConsistencyLevel: eventual (concepts/paging.md)."""

from __future__ import annotations

import httpx

from devstack.graph_simulator import Tenant

from .helpers import assert_graph_error

EVENTUAL = {"ConsistencyLevel": "eventual"}


def test_jit_users_over_two_pages_of_999(client: httpx.Client, tenant: Tenant) -> None:
    """The drift check's query. "ConsistencyLevel ... not included by default in subsequent page requests" and
    "@odata.count ... present only in the first page" (concepts/paging.md)."""
    wanted = {tenant.add_user(f"jit{i}@{tenant.initial_domain}", f"JIT {i}", employee_type=f"JIT:{i}") for i in range(1001)}
    tenant.add_user(f"staff@{tenant.initial_domain}", "Staff", employee_type="Employee")
    params = {"$filter": "startswith(employeeType,'JIT:')", "$count": "true", "$select": "id,employeeType", "$top": "999"}
    first = client.get("/users", params=params, headers=EVENTUAL).json()
    assert first["@odata.count"] == 1001 and len(first["value"]) == 999
    next_link = first["@odata.nextLink"]
    assert "%24count=true" in next_link or "$count=true" in next_link  # the link keeps the query options
    # Without the header the next page is a plain query again, and employeeType needs an advanced one.
    assert_graph_error(
        client.get(next_link),
        400,
        "Request_UnsupportedQuery",
        "Unsupported or invalid query filter clause specified for property 'employeeType' of resource 'User'.",
    )
    second = client.get(next_link, headers=EVENTUAL).json()
    assert "@odata.count" not in second and "@odata.nextLink" not in second
    assert {u["id"] for u in first["value"]} | {u["id"] for u in second["value"]} == wanted


def test_advanced_operator_on_a_later_page(client: httpx.Client, tenant: Tenant) -> None:
    for i in range(3):
        tenant.add_user(f"e{i}@{tenant.initial_domain}", f"E {i}")
    params = {"$filter": f"endswith(userPrincipalName,'@{tenant.initial_domain}')", "$count": "true", "$top": "2"}
    first = client.get("/users", params=params, headers=EVENTUAL).json()
    assert first["@odata.count"] == 3
    error = assert_graph_error(client.get(first["@odata.nextLink"]), 400, "Request_UnsupportedQuery")
    assert error["message"].startswith("Operator 'endsWith' is not supported")
    assert len(client.get(first["@odata.nextLink"], headers=EVENTUAL).json()["value"]) == 1
